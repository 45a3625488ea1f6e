"""Gemini embeddings, reranking and Chroma storage for LlamaIndex.

from llama_index_gemini_embed import GeminiEmbedding
embed = GeminiEmbedding(output_dimensionality=768)
"""

from importlib import metadata as _metadata

from ._batch.options import BatchOptions
from ._embedding.embedding import GeminiEmbedding, GeminiUsageEvent
from ._errors import (
    APIUnreachableError,
    ConfigurationError,
    DailyQuotaExceededError,
    DimensionMismatchError,
    EmptyInputError,
    EmptyTextError,
    FingerprintMismatchError,
    GeminiAPIError,
    GeminiEmbedError,
    InputError,
    InvalidAPIKeyError,
    MediaError,
    MediaFileUnavailableError,
    MissingAPIKeyError,
    QuotaBlockedError,
    QuotaExhaustedError,
    RerankAnswerError,
    StoreError,
    StoreLockedError,
    StoreUnavailableError,
    TextTooLongError,
    TransientAPIError,
    UnexpectedAnswerError,
    UnknownModelError,
)
from ._ingest import (
    IngestReport,
    NodeFailure,
    aingest,
    default_transformations,
    ingest,
    load_documents,
    sample_corpus_dir,
)
from ._rerank.postprocessor import GeminiReranker, RerankReport
from ._store.store import ChromaStore
from ._usage import UsageSnapshot

try:
    __version__ = _metadata.version("llama-index-gemini-embed")
except _metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = [
    "APIUnreachableError",
    "BatchOptions",
    "ChromaStore",
    "ConfigurationError",
    "DailyQuotaExceededError",
    "DimensionMismatchError",
    "EmptyInputError",
    "EmptyTextError",
    "FingerprintMismatchError",
    "GeminiAPIError",
    "GeminiEmbedError",
    "GeminiEmbedding",
    "GeminiReranker",
    "GeminiUsageEvent",
    "IngestReport",
    "InputError",
    "InvalidAPIKeyError",
    "MediaError",
    "MediaFileUnavailableError",
    "MissingAPIKeyError",
    "NodeFailure",
    "QuotaBlockedError",
    "QuotaExhaustedError",
    "RerankAnswerError",
    "RerankReport",
    "StoreError",
    "StoreLockedError",
    "StoreUnavailableError",
    "TextTooLongError",
    "TransientAPIError",
    "UnexpectedAnswerError",
    "UnknownModelError",
    "UsageSnapshot",
    "__version__",
    "aingest",
    "default_transformations",
    "ingest",
    "load_documents",
    "sample_corpus_dir",
]


def _show_public_module() -> None:
    """Exported exceptions name this package in tracebacks and reprs
    (``llama_index_gemini_embed.ConfigurationError``, not ``…._errors.ConfigurationError``),
    as httpx and openai do. Pickling still works: ``llama_index_gemini_embed.<Name>`` is
    the same class. Only exceptions: pydantic models resolve annotations by ``__module__``.
    """
    for name in __all__:
        value = globals().get(name)
        if isinstance(value, type) and issubclass(value, BaseException):
            value.__module__ = __name__


_show_public_module()
