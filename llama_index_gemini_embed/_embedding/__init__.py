"""_embedding subpackage."""
