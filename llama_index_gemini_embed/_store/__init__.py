"""_store subpackage."""
