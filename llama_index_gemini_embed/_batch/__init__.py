"""Gemini Batch API embeddings: plan (pure packing), state (the state file), api (calls),
results (reading any result form), report, options (``BatchOptions``), jobs (the loop)."""

from .jobs import BatchEmbedder, BatchRunReport, estimate_batch_cost
from .options import BatchOptions

__all__ = ["BatchEmbedder", "BatchOptions", "BatchRunReport", "estimate_batch_cost"]
