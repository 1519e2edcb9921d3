"""The y-websocket relay: the wire codec, connections, rooms and presence, the SQLite update
store, its settings and counters, and the aiohttp application that serves rooms."""
