"""Forge terminal client and command line (the composition root)."""
