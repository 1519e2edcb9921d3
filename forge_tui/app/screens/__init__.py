"""Screens of the Forge TUI."""
