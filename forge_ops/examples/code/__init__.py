"""Code texts of the example project's custom operation and custom layer (read as text)."""
