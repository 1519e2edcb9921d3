"""Widgets of the Forge TUI."""
