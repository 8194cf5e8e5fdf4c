"""Handling what outsiders control: webhook bodies, message text, model output, log lines.

``jsonbody`` parses a signed but possibly hostile body with bounds; ``text`` makes platform text
storable; ``prose`` finds the prose of a Markdown reply (outside code and URLs) for outbound
rewriting; ``logs`` logs attacker-controlled text as a bounded, escaped excerpt.

May import: ``bridge.types`` only, so that platforms and the core can both use it.
"""
