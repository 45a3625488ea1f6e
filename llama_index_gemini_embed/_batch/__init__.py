"""_batch subpackage."""
