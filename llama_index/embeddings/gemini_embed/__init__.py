"""LlamaIndex-namespace alias: ``from llama_index.embeddings.gemini_embed import GeminiEmbedding``.

The same class as ``llama_index_gemini_embed.GeminiEmbedding`` (not the deprecated
``llama_index.embeddings.gemini``).
"""

from llama_index_gemini_embed import GeminiEmbedding, GeminiUsageEvent

__all__ = ["GeminiEmbedding", "GeminiUsageEvent"]
