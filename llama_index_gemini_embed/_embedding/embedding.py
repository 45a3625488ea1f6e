"""``GeminiEmbedding``: the LlamaIndex embedding class for Gemini embedding models.

    from llama_index_gemini_embed import GeminiEmbedding

    embed = GeminiEmbedding(output_dimensionality=768)        # key from GEMINI_API_KEY
    query_vector = embed.get_query_embedding("what is RAG?")  # RETRIEVAL_QUERY
    doc_vectors = embed.get_text_embedding_batch(["RAG is ..."])  # RETRIEVAL_DOCUMENT
    print(embed.usage)  # items, requests, tokens, retries, truncations, cost_usd

    embed2 = GeminiEmbedding(model_name="gemini-embedding-2")    # text, images, PDFs, ...
    hits = index.as_retriever().retrieve(embed2.image_query("bike.png"))  # query by image

The LlamaIndex adapter at the edge: everything is delegated to :class:`.engine.EmbedEngine`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeAlias, cast

from google import genai
from llama_index.core.base.embeddings.base import Embedding
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.embeddings import MultiModalEmbedding
from llama_index.core.embeddings.loading import RECOGNIZED_EMBEDDINGS
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.embedding import (
    EmbeddingEndEvent,
    EmbeddingStartEvent,
)
from llama_index.core.schema import BaseNode, ImageType, MetadataMode, QueryBundle
from llama_index_instrumentation import get_dispatcher
from pydantic import Field, PrivateAttr

from llama_index_gemini_embed._client import vertex_embed_route
from llama_index_gemini_embed._connection import GeminiConnection
from llama_index_gemini_embed._deprecation import warn_once
from llama_index_gemini_embed._errors import ConfigurationError, MediaError
from llama_index_gemini_embed._models import (
    BACKEND_LIMITS,
    DEFAULT_MODEL,
    model_spec,
    vertex_limits,
)
from llama_index_gemini_embed._quota import CountLimits
from llama_index_gemini_embed._retry import RetryPolicy
from llama_index_gemini_embed._sync import run_sync
from llama_index_gemini_embed._tasks import normalise_task_type, split_title
from llama_index_gemini_embed._types import MediaPart, ModalityUsage
from llama_index_gemini_embed._usage import Usage, UsageSnapshot, usage_for

if TYPE_CHECKING:
    from llama_index_gemini_embed._doctor import DoctorReport

from .engine import EmbedEngine, EngineConfig, TextSpec
from .media import MEDIA_MIME_TYPES, check_media, modality, node_media, part_from_bytes, sniff_mime
from .wire import SDK_HAS_EXTRA_BODY

__all__ = ["GeminiEmbedding", "GeminiUsageEvent", "ImageQuery"]

#: An image to search with: a file path, the image's bytes, or an open binary file.
ImageQuery: TypeAlias = str | os.PathLike[str] | bytes | IO[bytes]

#: Query-cache keys: ``("text", model, dimension, task_type, text)`` or
#: ``("image", model, dimension, mime_type, sha256 of the bytes)``: never one for the other.
_QueryKey: TypeAlias = tuple[str, str, int, str, str]

dispatcher = get_dispatcher(__name__)


class GeminiUsageEvent(BaseEvent):
    """Emitted after each embedding call with what that call used."""

    model_name: str
    items: int
    requests: int
    tokens: int
    retries: int
    truncated: int
    cost_usd: float

    @classmethod
    def class_name(cls) -> str:
        return "GeminiUsageEvent"


#: Deprecated parameter names -> their names now. ``requests_per_*`` counted embedded items,
#: not requests (the reranker's ``requests_per_*`` do count requests), so they were renamed.
RENAMED_SETTINGS = {"requests_per_minute": "items_per_minute", "requests_per_day": "items_per_day"}


def _rename_deprecated(data: dict[str, Any]) -> None:
    """Move deprecated names to their new ones (one FutureWarning per name and process)."""
    for old, new in RENAMED_SETTINGS.items():
        if old not in data:
            continue
        value = data.pop(old)
        if value is None:  # a to_dict() of the previous release writes None: nothing to say
            continue
        if data.get(new) is not None and data[new] != value:
            raise ConfigurationError(
                f"{old}={value!r} and {new}={data[new]!r} disagree: pass only {new}= "
                f"({old} is its deprecated old name)"
            )
        warn_once(
            f"GeminiEmbedding({old}=...)",
            f"GeminiEmbedding({old}=...) is deprecated: it counts embedded items, not "
            f"requests; use {new}=...",
            stacklevel=4,
        )
        data[new] = value


def _check_settings(data: dict[str, Any]) -> None:
    """Validate settings before pydantic, so users see our message and not a wrapper."""
    _rename_deprecated(data)
    for key in ("query_task_type", "document_task_type"):
        if isinstance(data.get(key), str):
            data[key] = normalise_task_type(data[key], key)
    model = data.get("model_name") or DEFAULT_MODEL
    spec = model_spec(model)
    dim = data.get("output_dimensionality")
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int)):
        raise ConfigurationError(
            f"output_dimensionality={dim!r} must be an integer, e.g. output_dimensionality=768 "
            f"({spec.min_dimension}-{spec.max_dimension}), or None for the model default"
        )
    if dim is not None and not spec.min_dimension <= dim <= spec.max_dimension:
        raise ConfigurationError(
            f"output_dimensionality={dim} is out of range for {model}: use "
            f"{spec.min_dimension}-{spec.max_dimension} (recommended 768, 1536 or 3072), "
            "or None for the default"
        )
    if data.get("embeddings_cache") is not None:
        raise ConfigurationError(
            "embeddings_cache is not supported: llama-index-core keys it on the text alone, "
            "so a query would get a document's vector and another model's vectors would "
            "leak in. Use ingest() (it skips unchanged chunks) or IngestionPipeline(cache=...)."
        )
    if data.get("rate_limiter") is not None:
        raise ConfigurationError(
            "rate_limiter counts HTTP calls, but Gemini charges quota per embedded item and "
            "token: set items_per_minute=, tokens_per_minute= and items_per_day= instead"
        )


class GeminiEmbedding(GeminiConnection, MultiModalEmbedding):
    """Gemini embeddings for LlamaIndex, on the official ``google-genai`` SDK.

    This is ``llama_index_gemini_embed.GeminiEmbedding`` (``class_name()``
    ``"LigeGeminiEmbedding"``, also importable as
    ``llama_index.embeddings.gemini_embed.GeminiEmbedding``), not the deprecated
    ``llama_index.embeddings.gemini.GeminiEmbedding`` (``class_name()`` ``"GeminiEmbedding"``,
    on the retired ``google-generativeai`` SDK). Importing this package registers it with
    LlamaIndex's ``load_embed_model`` so ``to_dict()`` round-trips (the key comes from
    ``GEMINI_API_KEY``/``GOOGLE_API_KEY``: it is never serialised).

    Queries use ``query_task_type`` and documents ``document_task_type`` on every sync and
    async path; gemini-embedding-2 models get Google's text prefixes instead. Vectors are
    always L2-normalised. Requests respect the API limits, pace themselves to the
    configured quotas, and retry 408/429/5xx/timeouts with backoff honouring ``RetryInfo``.

    Raises:
        MissingAPIKeyError: no key given and none in GEMINI_API_KEY / GOOGLE_API_KEY.
        ConfigurationError: an invalid setting (dimension, task type, limits).
    """

    model_name: str = Field(default=DEFAULT_MODEL, description="Gemini embedding model id.")
    output_dimensionality: int | None = Field(
        default=None,
        description="Matryoshka output size, 128-3072 (None = the model default, 3072).",
    )
    query_task_type: str = Field(
        default="RETRIEVAL_QUERY",
        description="Task type for queries (e.g. QUESTION_ANSWERING, CODE_RETRIEVAL_QUERY).",
    )
    document_task_type: str = Field(
        default="RETRIEVAL_DOCUMENT", description="Task type for documents and nodes."
    )
    title_metadata_keys: list[str] = Field(
        default_factory=lambda: ["title", "file_name"],
        description="Node metadata keys tried in order for a document title.",
    )
    max_retries: int = Field(default=8, ge=0, description="Retries after the first attempt.")
    max_concurrency: int = Field(default=8, ge=1, description="Requests in flight at most.")
    embed_batch_size: int = Field(
        default=100, gt=0, le=2048, description="Texts per request (capped at the API limit)."
    )
    items_per_minute: int | None = Field(
        default=None,
        description="Quota: embedded items per minute (Gemini counts items, not requests). "
        "Old name: requests_per_minute (deprecated).",
    )
    tokens_per_minute: int | None = Field(default=None, description="Quota: tokens/min.")
    items_per_day: int | None = Field(
        default=None,
        description="Quota: embedded items per day. Old name: requests_per_day (deprecated).",
    )
    on_overlength: Literal["warn", "raise"] = Field(
        default="warn",
        description="Texts over the input limit: truncate before sending (counted, warned "
        "once), or raise.",
    )
    max_inline_media_bytes: int = Field(
        default=2_000_000,
        ge=0,
        description="Media larger than this go through the Files API (uploaded once per "
        "call, reused, deleted after); smaller ones travel inline within the 4 MiB request cap.",
    )
    media_upload_timeout: float = Field(
        default=600.0,
        gt=0,
        description="Seconds to wait for an uploaded medium (videos above all) to leave the "
        "Files API's PROCESSING state; after that its item fails alone with a MediaError.",
    )
    query_cache_size: int = Field(
        default=1024,
        ge=0,
        description="Query vectors kept (least recently used evicted; 0 = off), keyed on "
        "model, dimension, task and text (image queries: the image bytes' SHA-256), so a "
        "repeated query costs no request.",
    )

    _engine: EmbedEngine | None = PrivateAttr(default=None)
    _usage: Usage = PrivateAttr()
    _engine_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _query_cache: OrderedDict[_QueryKey, list[float]] = PrivateAttr(default_factory=OrderedDict)
    _cache_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(
        self,
        *,
        client: genai.Client | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
        **data: Any,
    ) -> None:
        _check_settings(data)
        super().__init__(**data)
        self._usage = usage_for(model_spec(self.model_name))
        self._connect(client, clock=clock, sleep=sleep, rng=rng)

    @classmethod
    def class_name(cls) -> str:
        return "LigeGeminiEmbedding"

    # -- wiring -----------------------------------------------------------------------

    def _backend_limits(self) -> tuple[int, int | None]:
        """(items, tokens) per request for the backend and SDK in use."""
        if not self._client_settings().use_vertex:
            limits = BACKEND_LIMITS["gemini"]
        else:
            # What the installed SDK does on Vertex (SDK < 3.4: -2 one content per call).
            limits = vertex_limits(vertex_embed_route(self.model_name))
        return limits.max_items_per_request, limits.max_tokens_per_request

    def _count_limits(self) -> CountLimits:
        return CountLimits(self.items_per_minute, self.items_per_day)

    @property
    def requests_per_minute(self) -> int | None:
        """Deprecated: the old name of :attr:`items_per_minute` (it counts items)."""
        warn_once(
            "GeminiEmbedding.requests_per_minute",
            "GeminiEmbedding.requests_per_minute is deprecated: use items_per_minute",
        )
        return self.items_per_minute

    @property
    def requests_per_day(self) -> int | None:
        """Deprecated: the old name of :attr:`items_per_day` (it counts items)."""
        warn_once(
            "GeminiEmbedding.requests_per_day",
            "GeminiEmbedding.requests_per_day is deprecated: use items_per_day",
        )
        return self.items_per_day

    def _quota_scope(self) -> tuple[object, ...]:
        return ("embed", self.base_url, self.model_name)

    @property
    def engine(self) -> EmbedEngine:
        """The async engine behind this instance (built on first use)."""
        with self._engine_lock:
            if self._engine is None:
                max_items, max_tokens = self._backend_limits()
                self._engine = EmbedEngine(
                    EngineConfig(
                        model=self.model_name,
                        spec=model_spec(self.model_name),
                        dimension=self.output_dimensionality,
                        max_items_per_request=min(self.embed_batch_size, max_items),
                        max_tokens_per_request=max_tokens,
                        max_concurrency=self.max_concurrency,
                        retry=RetryPolicy(max_retries=self.max_retries),
                        on_overlength=self.on_overlength,
                        per_item_titles=SDK_HAS_EXTRA_BODY
                        and not self._client_settings().use_vertex,
                        files_api_version=self.api_version or "v1beta",
                        max_inline_media_bytes=self.max_inline_media_bytes,
                        upload_timeout_s=self.media_upload_timeout,
                    ),
                    client_provider=lambda: self.client,
                    limiter=self._limiter(),
                    usage=self._usage,
                    clock=self._clock or time.monotonic,
                    sleep=self._sleep or asyncio.sleep,
                    rng=self._rng,
                    secret=self._secret,
                    observer=_LlamaIndexEvents(self),
                )
            return self._engine

    @property
    def usage(self) -> UsageSnapshot:
        """Totals so far: items, requests, estimated tokens, retries, truncations, cost."""
        return self._usage.snapshot()

    async def adoctor(self, *, rerank_model: str | None = None) -> DoctorReport:
        """Check this setup on the service in a few tiny calls: ``print(await embed.adoctor())``
        (see :mod:`llama_index_gemini_embed._doctor`)."""
        from llama_index_gemini_embed._doctor import adoctor

        return await adoctor(self, rerank_model=rerank_model)

    def doctor(self, *, rerank_model: str | None = None) -> DoctorReport:
        """Blocking :meth:`adoctor`: ``print(embed.doctor())``; ``.ok`` is False if a row failed."""
        from llama_index_gemini_embed._doctor import doctor

        return doctor(self, rerank_model=rerank_model)

    @property
    def usage_by_modality(self) -> dict[str, ModalityUsage]:
        """Items, tokens and estimated cost per modality ("text", "image", "pdf", "audio",
        "video"); ``usage.assumed_prices`` names the modalities whose price is unverified."""
        return self._usage.snapshot().by_modality

    @property
    def dimension(self) -> int:
        return self.output_dimensionality or model_spec(self.model_name).default_dimension

    @property
    def fingerprint(self) -> dict[str, str | int | bool]:
        """What makes vectors comparable: stored by ChromaStore to refuse mixing setups."""
        spec = model_spec(self.model_name)
        scheme = "prefix" if spec.uses_task_prefixes else "task_type"
        return {
            "model": self.model_name,
            "dimension": self.dimension,
            "scheme": f"{scheme}:{self.document_task_type}",
            "normalised": True,
        }

    def title_for(self, metadata: dict[str, Any]) -> str | None:
        """The document title taken from ``metadata`` (first non-empty configured key)."""
        for key in self.title_metadata_keys:
            value = metadata.get(key)
            if value is not None and str(value).strip():
                return str(value).strip()
        return None

    def node_input(self, node: BaseNode) -> TextSpec:
        """What is embedded for ``node``: exactly what the index paths send for it.

        The node's EMBED text with its title line (``title_metadata_keys``) moved to the
        API ``title`` field (see :func:`._tasks.split_title`), so ``ingest()``,
        ``IngestionPipeline``, the Batch API and ``VectorStoreIndex`` (which hands us only
        the text) produce the same request, hence the same vector, for the same node.
        Media the node carries (``ImageNode``, ``image_resource``/``audio_resource``/
        ``video_resource``, PDF page ranges; gemini-embedding-2) join the text in ONE item.
        """
        spec = self._doc_spec(node.get_content(metadata_mode=MetadataMode.EMBED))
        media = node_media(node)
        if not media:
            return spec
        text = node.get_content(metadata_mode=MetadataMode.NONE)
        if not text.strip():  # a media-only node: its metadata header alone is not content
            return TextSpec("", spec.task_type, spec.title, media)
        return TextSpec(spec.text, spec.task_type, spec.title, media)

    # -- LlamaIndex hooks ------------------------------------------------------------------

    async def _aembed(self, specs: Sequence[TextSpec]) -> list[list[float]]:
        if not specs:
            return []
        multimodal = model_spec(self.model_name).uses_task_prefixes
        for index, spec in enumerate(specs):  # every media limit is checked before any spend
            check_media(spec.media, model=self.model_name, multimodal=multimodal, index=index)
        before = self._usage.snapshot()
        try:
            return await self.engine.embed(specs)
        finally:
            delta = self._usage.snapshot() - before
            dispatcher.event(
                GeminiUsageEvent(
                    model_name=self.model_name,
                    items=delta.items,
                    requests=delta.requests,
                    tokens=delta.tokens,
                    retries=delta.retries,
                    truncated=delta.truncated,
                    cost_usd=delta.cost_usd,
                )
            )

    def _query_spec(self, query: str) -> TextSpec:
        return TextSpec(query, self.query_task_type)

    def _doc_spec(self, text: str) -> TextSpec:
        task = self.document_task_type
        if task != "RETRIEVAL_DOCUMENT":  # the API takes a title only with this task
            return TextSpec(text, task)
        body, title = split_title(text, self.title_metadata_keys)
        return TextSpec(body, task, title)

    def _doc_specs(self, texts: Sequence[str]) -> list[TextSpec]:
        return [self._doc_spec(text) for text in texts]

    # BaseEmbedding's abstract hooks. The public methods below call the engine directly:
    # it emits one callback/instrumentation event per API request on every path.
    def _get_query_embedding(self, query: str) -> Embedding:
        return run_sync(self._aget_query_embedding(query))

    async def _aget_query_embedding(self, query: str) -> Embedding:
        # Not LlamaIndex's embeddings_cache (keyed on the text alone): the key says what
        # the vector is for. Documents are never cached (ingest() skips unchanged ones).
        key = ("text", self.model_name, self.dimension, self.query_task_type, query)
        return await self._cached_query(key, lambda: self._aembed([self._query_spec(query)]))

    async def _cached_query(
        self, key: _QueryKey, embed: Callable[[], Awaitable[list[Embedding]]]
    ) -> Embedding:
        """The query vector for ``key`` from the LRU cache, else ``embed()``'s (then kept)."""
        if self.query_cache_size:
            with self._cache_lock:
                hit = self._query_cache.get(key)
                if hit is not None:
                    self._query_cache.move_to_end(key)
                    return list(hit)
        vector = (await embed())[0]
        if self.query_cache_size:
            with self._cache_lock:
                self._query_cache[key] = list(vector)
                while len(self._query_cache) > self.query_cache_size:
                    self._query_cache.popitem(last=False)
        return vector

    def _get_text_embedding(self, text: str) -> Embedding:
        return run_sync(self._aembed(self._doc_specs([text])))[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._aembed(self._doc_specs([text])))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return run_sync(self._aembed(self._doc_specs(texts)))

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await self._aembed(self._doc_specs(texts))

    @dispatcher.span
    def get_query_embedding(self, query: str) -> Embedding:
        """Embed a query with ``query_task_type`` (or -2's query prefix)."""
        return self._get_query_embedding(query)

    @dispatcher.span
    async def aget_query_embedding(self, query: str) -> Embedding:
        """Async :meth:`get_query_embedding`."""
        return await self._aget_query_embedding(query)

    @dispatcher.span
    def get_text_embedding(self, text: str) -> Embedding:
        """Embed one document text with ``document_task_type`` (title line -> API title)."""
        return self._get_text_embedding(text)

    @dispatcher.span
    async def aget_text_embedding(self, text: str) -> Embedding:
        """Async :meth:`get_text_embedding`."""
        return await self._aget_text_embedding(text)

    @dispatcher.span
    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        """Embed documents: one engine run (API-sized requests, bounded concurrency)."""
        return self._get_text_embeddings(texts)

    @dispatcher.span
    async def aget_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        """Async :meth:`get_text_embedding_batch`."""
        return await self._aget_text_embeddings(texts)

    # MultiModalEmbedding: images (paths or file-like objects), as documents.
    def _image_spec(self, image: ImageType) -> TextSpec:
        name: str | None
        if isinstance(image, str | Path):
            data, name = Path(image).read_bytes(), str(image)
        else:
            data, name = image.read(), getattr(image, "name", None)
        part = part_from_bytes(data, name=name)
        return TextSpec("", self.document_task_type, None, (part,))

    def _get_image_embedding(self, img_file_path: ImageType) -> Embedding:
        return run_sync(self._aembed([self._image_spec(img_file_path)]))[0]

    async def _aget_image_embedding(self, img_file_path: ImageType) -> Embedding:
        return (await self._aembed([self._image_spec(img_file_path)]))[0]

    def _get_image_embeddings(self, img_file_paths: list[ImageType]) -> list[Embedding]:
        return run_sync(self._aembed([self._image_spec(p) for p in img_file_paths]))

    async def _aget_image_embeddings(self, img_file_paths: list[ImageType]) -> list[Embedding]:
        return await self._aembed([self._image_spec(p) for p in img_file_paths])

    @dispatcher.span
    def get_image_embedding(self, img_file_path: ImageType) -> Embedding:
        """Embed an image file (PNG/JPEG path or file object; gemini-embedding-2)."""
        return self._get_image_embedding(img_file_path)

    @dispatcher.span
    async def aget_image_embedding(self, img_file_path: ImageType) -> Embedding:
        """Async :meth:`get_image_embedding`."""
        return await self._aget_image_embedding(img_file_path)

    @dispatcher.span
    def get_image_embedding_batch(
        self, img_file_paths: list[ImageType], show_progress: bool = False
    ) -> list[Embedding]:
        """Embed images: one engine run (API-sized requests, one image per item)."""
        return self._get_image_embeddings(img_file_paths)

    @dispatcher.span
    async def aget_image_embedding_batch(
        self, img_file_paths: list[ImageType], show_progress: bool = False
    ) -> list[Embedding]:
        """Async :meth:`get_image_embedding_batch`."""
        return await self._aget_image_embeddings(img_file_paths)

    # Image queries (image-to-image and image-to-text search; gemini-embedding-2).
    def _image_query_part(self, image: ImageQuery) -> MediaPart:
        """The query image as one media part; MediaError (one line) if it cannot be one."""
        if not model_spec(self.model_name).uses_task_prefixes:
            raise MediaError(
                f"{self.model_name} embeds text only: use model_name='gemini-embedding-2' "
                "to query by image"
            )
        name: str | None
        if isinstance(image, bytes):
            data, name = image, None
        elif isinstance(image, str | os.PathLike):
            path = Path(image)
            try:
                data = path.read_bytes()
            except OSError as error:
                raise MediaError(
                    f"Cannot read the query image {path}: {error.strerror}; pass the path of "
                    "a PNG or JPEG file, or its bytes"
                ) from None
            name = str(path)
        else:
            data, name = image.read(), getattr(image, "name", None)
        mime = sniff_mime(data, name)
        if mime is None or modality(mime) != "image":
            kinds = ", ".join(sorted(MEDIA_MIME_TYPES["image"]))
            found = f"is {mime}" if mime else "is not a recognised image"
            raise MediaError(
                f"The query image {name or '(bytes)'} {found}: {self.model_name} searches by "
                f"{kinds} images; convert it to PNG or JPEG"
            )
        return MediaPart(mime, data=data)

    @dispatcher.span
    def get_image_query_embedding(self, image: ImageQuery) -> Embedding:
        """The vector to search with by image: ``embed.get_image_query_embedding("cat.png")``.

        In gemini-embedding-2's single space it finds similar images (image-to-image) and
        the text, PDF pages and clips about what the picture shows (image-to-text). The
        image is sent alone (no text part, hence no task prefix: docs/gemini-api.md §7b).
        Cached like text queries, keyed on the bytes' SHA-256 (never on a path or text).

        Raises:
            MediaError: a text-only model, an unreadable file, or not a PNG/JPEG image.
        """
        return run_sync(self.aget_image_query_embedding(image))

    @dispatcher.span
    async def aget_image_query_embedding(self, image: ImageQuery) -> Embedding:
        """Async :meth:`get_image_query_embedding`."""
        part = self._image_query_part(image)
        assert part.data is not None
        digest = hashlib.sha256(part.data).hexdigest()
        key = ("image", self.model_name, self.dimension, part.mime_type, digest)
        spec = TextSpec("", self.query_task_type, None, (part,))
        return await self._cached_query(key, lambda: self._aembed([spec]))

    def image_query(self, image: ImageQuery, *, query_str: str = "") -> QueryBundle:
        """A LlamaIndex query by image: ``index.as_retriever().retrieve(embed.image_query(p))``.

        A ``QueryBundle`` carrying the image's query vector (and ``image_path`` when given a
        path), so any ``VectorStoreIndex`` retriever or query engine searches with the
        picture. ``query_str`` is only passed on (e.g. the question for a query engine's
        LLM); the vector is the image's alone.

        Raises:
            MediaError: see :meth:`get_image_query_embedding`.
        """
        path = str(image) if isinstance(image, str | os.PathLike) else None
        vector = self.get_image_query_embedding(image)
        return QueryBundle(query_str=query_str, image_path=path, embedding=vector)

    async def aimage_query(self, image: ImageQuery, *, query_str: str = "") -> QueryBundle:
        """Async :meth:`image_query`."""
        path = str(image) if isinstance(image, str | os.PathLike) else None
        vector = await self.aget_image_query_embedding(image)
        return QueryBundle(query_str=query_str, image_path=path, embedding=vector)

    # TransformComponent path (IngestionPipeline): titles come from node metadata.
    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        vectors = run_sync(self._aembed([self.node_input(n) for n in nodes]))
        for node, vector in zip(nodes, vectors, strict=True):
            node.embedding = vector
        return nodes

    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        vectors = await self._aembed([self.node_input(n) for n in nodes])
        for node, vector in zip(nodes, vectors, strict=True):
            node.embedding = vector
        return nodes


def announce_embedded(
    embed: GeminiEmbedding, chunks: Sequence[str], vectors: Sequence[list[float]]
) -> None:
    """Report vectors that came back outside the engine (a Batch API job) to LlamaIndex's
    callbacks and instrumentation, as one embedding event, like an online request."""
    events = _LlamaIndexEvents(embed)
    events.request_ended(events.request_started(), chunks, vectors, None)


class _LlamaIndexEvents:
    """Engine observer: one ``CBEventType.EMBEDDING`` callback event and one
    ``EmbeddingStartEvent``/``EmbeddingEndEvent`` pair per API request, as LlamaIndex's
    ``BaseEmbedding`` emits per batch, so ``TokenCountingHandler`` and observability
    integrations see every path (``ingest()``, pipelines, indexes, queries).

    The callback manager is read at event time: indexes replace ``callback_manager``.
    """

    def __init__(self, embed: GeminiEmbedding) -> None:
        self._embed = embed

    def request_started(self) -> object:
        model_dict = self._embed.to_payload()
        dispatcher.event(EmbeddingStartEvent(model_dict=model_dict))
        manager = self._embed.callback_manager
        event_id = manager.on_event_start(
            CBEventType.EMBEDDING, payload={EventPayload.SERIALIZED: model_dict}
        )
        return (manager, event_id)

    def request_ended(
        self,
        token: object,
        chunks: Sequence[str],
        vectors: Sequence[list[float]] | None,
        error: BaseException | None,
    ) -> None:
        manager, event_id = cast(tuple[CallbackManager, str], token)
        if vectors is None:
            manager.on_event_end(
                CBEventType.EMBEDDING, payload={EventPayload.EXCEPTION: error}, event_id=event_id
            )
            return
        manager.on_event_end(
            CBEventType.EMBEDDING,
            payload={EventPayload.CHUNKS: list(chunks), EventPayload.EMBEDDINGS: list(vectors)},
            event_id=event_id,
        )
        dispatcher.event(EmbeddingEndEvent(chunks=list(chunks), embeddings=list(vectors)))


# LlamaIndex's own loader (llama_index.core.embeddings.loading.load_embed_model) rebuilds
# embed models from to_dict() by class_name; register ours on import.
RECOGNIZED_EMBEDDINGS[GeminiEmbedding.class_name()] = GeminiEmbedding
