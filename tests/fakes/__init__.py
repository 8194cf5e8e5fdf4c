"""Loopback fakes of the services the bridge talks to: real HTTP/websocket servers, real wire formats."""
