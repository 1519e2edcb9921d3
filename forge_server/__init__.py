"""Forge networking and persistence: protocol, relay, store, history, auth, sync, coordinator."""
