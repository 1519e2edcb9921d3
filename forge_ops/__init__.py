"""Forge machine-learning domain: schema, operations, architectures, execution (no networking)."""
