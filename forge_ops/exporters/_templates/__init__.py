"""Files the python exporter copies verbatim into an exported folder (they need only torch)."""
