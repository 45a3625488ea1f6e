"""_ingest subpackage."""
