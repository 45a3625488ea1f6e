"""LlamaIndex-namespace alias for ``llama_index_gemini_embed.GeminiReranker``.

from llama_index.postprocessor.gemini_rerank import GeminiReranker
"""

from llama_index_gemini_embed import GeminiReranker, RerankReport

__all__ = ["GeminiReranker", "RerankReport"]
