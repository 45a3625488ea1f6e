"""LlamaIndex-namespace alias: ``from llama_index.vector_stores.gemini_chroma import ChromaStore``.

The same class as ``llama_index_gemini_embed.ChromaStore``.
"""

from llama_index_gemini_embed import ChromaStore

__all__ = ["ChromaStore"]
