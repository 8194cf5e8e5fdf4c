"""Platform adapters: each translates one chat service to and from the core's types (bridge.types).

Adapters are found through the ``bridge.platforms`` entry points in pyproject.toml; the core never
imports this package.
"""
