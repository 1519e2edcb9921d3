"""Code texts of the built-in operations (read as text by ``forge_ops.operations.library``)."""
