"""_rerank subpackage."""
