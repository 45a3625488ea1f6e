"""Streaming, incremental, resumable ingestion: documents or folders -> Gemini -> Chroma.

    from llama_index_gemini_embed import ChromaStore, GeminiEmbedding, ingest

    embed = GeminiEmbedding(output_dimensionality=768)
    store = ChromaStore("docs", path="./chroma", embed_model=embed)
    report = ingest("./docs", embed_model=embed, store=store)   # or await aingest(...)
    print(report.summary())

What it does, and how it differs from ``IngestionPipeline``:

* **Streaming.** Documents are read and split lazily, in windows; every embedding request
  is written to the store as soon as it returns. Memory stays bounded for any corpus, and
  an interrupted run keeps everything that was already embedded.
* **Incremental.** Chunk ids are stable (``"<doc id>#<chunk>"``; a folder's doc ids are
  paths relative to it) and each chunk carries a content hash (``lige_hash``) of what the
  API embeds plus the embedding fingerprint. Unchanged chunks are skipped (a re-run of an
  unchanged corpus makes no API call), a metadata-only change reuses the stored vector,
  stale chunks of changed documents are deleted, and ``sync=True`` deletes documents that
  are no longer in the input. After a crash, re-running finishes the rest.
* **Failure report.** A failing request does not stop the run: its chunks are listed in
  :attr:`IngestReport.failures`. Fatal conditions (bad key, unknown model, per-day quota,
  the store failing) stop cleanly after storing everything already embedded.
* **Estimates.** ``dry_run=True`` reports chunks, tokens, requests, cost and the time the
  configured quota imposes, without calling the API or writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import mimetypes
import os
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.ingestion import run_transformations
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import (
    BaseNode,
    Document,
    MetadataMode,
    NodeRelationship,
    RelatedNodeInfo,
    TransformComponent,
)
from llama_index.core.vector_stores.types import MetadataFilters

from llama_index_gemini_embed._batch.jobs import BatchEmbedder, BatchRunReport, estimate_batch_cost
from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
from llama_index_gemini_embed._embedding.engine import TextSpec
from llama_index_gemini_embed._errors import (
    APIUnreachableError,
    ConfigurationError,
    FingerprintMismatchError,
    GeminiAPIError,
    GeminiEmbedError,
    InputError,
    InvalidAPIKeyError,
    QuotaBlockedError,
    StoreError,
    TextTooLongError,
    UnknownModelError,
)
from llama_index_gemini_embed._models import model_spec
from llama_index_gemini_embed._store.limits import (
    fingerprint_mismatch_message,
    fingerprints_equal,
    normalise_fingerprint,
)
from llama_index_gemini_embed._sync import run_sync
from llama_index_gemini_embed._tasks import wire_text
from llama_index_gemini_embed._tokens import estimate_tokens

from .plan import (
    FP_KEY,
    HASH_KEY,
    NodePlan,
    PlannedNode,
    RequestEstimate,
    doc_id_for_path,
    estimate_requests,
    estimate_seconds,
    fingerprint_hash,
    markdown_title,
    node_hash,
    node_id_for,
    parse_front_matter,
    plan_nodes,
)

__all__ = [
    "IngestReport",
    "IngestStore",
    "NodeFailure",
    "aingest",
    "default_transformations",
    "ingest",
    "load_documents",
    "sample_corpus_dir",
]

logger = logging.getLogger("llama_index_gemini_embed")

PathInput: TypeAlias = "str | os.PathLike[str]"
IngestSource: TypeAlias = (
    "str | os.PathLike[str] | Document | Iterable[Document] | Sequence[str | os.PathLike[str]]"
)

#: Errors after which nothing else can succeed: the run stops (cleanly) at once.
FATAL_API_ERRORS: tuple[type[GeminiEmbedError], ...] = (
    APIUnreachableError,
    InvalidAPIKeyError,
    QuotaBlockedError,  # per-day, spend cap, prepay, limit 0
    UnknownModelError,
)
#: At most this many failed chunks are listed one by one (``failed`` counts all).
MAX_LISTED_FAILURES = 10_000
FIRST_WINDOW_DOCS = 200
"""The first window reads at most this many documents (then 400, 800, ... up to window_docs)."""
FIRST_WINDOW_CHARS = 200_000
#: Metadata of files read from disk that is stored but neither embedded nor shown to LLMs
#: (LlamaIndex's choice, plus the absolute path: moving a folder must not change what is
#: embedded; the relative ``source`` path is kept instead).
_FILE_EMBED_EXCLUDED = ["file_path", "file_name", "file_type", "file_size", "last_modified_date"]
_FILE_LLM_EXCLUDED = ["file_path", "file_name", "file_type", "file_size", "last_modified_date"]
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def sample_corpus_dir() -> Path:
    """The small sample corpus bundled with the package (docs of a fictional app)."""
    return Path(__file__).parent.parent / "data" / "sample_corpus"


# ----------------------------------------------------------------------------- the store


@runtime_checkable
class IngestStore(Protocol):
    """What :func:`aingest` needs from a vector store (``ChromaStore`` provides it)."""

    def check_fingerprint(self, fingerprint: Mapping[str, str | int | float | bool]) -> None: ...

    async def aget_index(
        self, doc_ids: Sequence[str] | None = None
    ) -> dict[str, dict[str, str]]: ...

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]: ...

    async def adelete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None: ...

    async def aget_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        *,
        include_embeddings: bool = False,
    ) -> list[BaseNode]: ...


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True)
class NodeFailure:
    """A chunk that could not be embedded or stored, and why."""

    node_id: str
    doc_id: str
    error_type: str
    message: str


@dataclass
class IngestReport:
    """What one :func:`ingest` run did (or, with ``dry_run``, would do).

    Counts are chunks (nodes) unless named otherwise. ``tokens``/``requests``/``cost_usd``
    are what was sent (estimated by the local token count), or the estimate in a dry run.
    """

    documents: int = 0
    """Documents read from the input."""
    nodes: int = 0
    """Chunks produced by the transformations."""
    embedded: int = 0
    """Chunks embedded by the API in this run."""
    written: int = 0
    """Chunks written to the store (embedded + reused)."""
    reused: int = 0
    """Chunks rewritten with their stored vector (metadata changed or chunk moved): no API cost."""
    skipped: int = 0
    """Unchanged chunks: not embedded, not written."""
    empty: int = 0
    """Empty or whitespace-only chunks, skipped."""
    failed: int = 0
    """Chunks that failed (listed in ``failures``, up to 10,000)."""
    pending: int = 0
    """Chunks a fatal error left unstored: not sent yet, or answered but not yet written.

    A re-run embeds them (the latter are at most ``max_concurrency + 1`` batches).
    """
    deleted: int = 0
    """Chunks deleted: stale chunks of changed documents and (``sync``) removed documents."""
    deleted_documents: int = 0
    """Documents deleted by ``sync=True`` because they are no longer in the input."""
    files_skipped: int = 0
    """Files not read (binary without a reader, or unreadable)."""
    tokens: int = 0
    requests: int = 0
    retries: int = 0
    cost_usd: float = 0.0
    wall_seconds: float = 0.0
    dry_run: bool = False
    to_embed: int = 0
    """Chunks that needed the API (embedded + failed + pending; in a dry run: would need)."""
    estimated_seconds: float | None = None
    """Dry run: time the per-minute quota imposes (None when no quota is configured)."""
    estimated_days: int | None = None
    """Dry run: days needed under the per-day quota (None when none is configured)."""
    fatal_error: str | None = None
    fatal_error_type: str | None = None
    failures: list[NodeFailure] = field(default_factory=list)
    mode: str = "online"
    """"online", or "batch" (Gemini Batch API at half price)."""
    saving_usd: float = 0.0
    """Batch mode: what the batch-embedded tokens saved versus online embedding."""
    batch: dict[str, Any] | None = None
    """Batch mode: the Batch API run report (jobs, states, costs)."""

    @property
    def ok(self) -> bool:
        """True when every chunk was handled: none failed, none left pending, not stopped."""
        return self.failed == 0 and self.pending == 0 and self.fatal_error is None

    @property
    def stopped(self) -> bool:
        """True when a fatal error stopped the run before the input was done."""
        return self.fatal_error is not None

    @property
    def items_per_second(self) -> float:
        """Chunks embedded per second of wall time."""
        return self.embedded / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (failures included)."""
        data = asdict(self)
        data["ok"] = self.ok
        data["items_per_second"] = round(self.items_per_second, 2)
        return data

    def summary(self) -> str:
        """A few human-readable lines."""
        if self.dry_run:
            lines = [
                f"dry run: {self.documents} documents, {self.nodes} chunks; "
                f"{self.to_embed} to embed, {self.reused} to rewrite with stored vectors, "
                f"{self.skipped} unchanged, {self.empty} empty, {self.deleted} to delete",
                f"would send ~{self.tokens:,} tokens in {self.requests} requests, "
                f"estimated cost ${self.cost_usd:.4f}",
            ]
            if self.estimated_seconds is not None:
                lines.append(f"time at the configured quota: ~{_duration(self.estimated_seconds)}")
            else:
                lines.append(
                    "time: no per-minute quota configured (set requests_per_minute / "
                    "tokens_per_minute, or --rpm / --tpm, to estimate it)"
                )
            if self.estimated_days is not None and self.estimated_days > 1:
                lines.append(f"per-day quota: needs {self.estimated_days} days")
            if self.mode == "batch":
                lines.append(
                    f"batch mode (Gemini Batch API): saves ~${self.saving_usd:.4f} versus "
                    "online; jobs can take up to 24 h"
                )
            return "\n".join(lines)
        lines = [
            f"{self.documents} documents, {self.nodes} chunks: {self.embedded} embedded, "
            f"{self.reused} reused, {self.skipped} unchanged, {self.empty} empty, "
            f"{self.failed} failed; {self.written} written, {self.deleted} deleted"
            + (f" ({self.deleted_documents} removed documents)" if self.deleted_documents else ""),
            f"{self.requests} requests, ~{self.tokens:,} tokens, {self.retries} retries, "
            f"~${self.cost_usd:.4f}, {self.wall_seconds:.1f}s"
            + (f" ({self.items_per_second:.0f} chunks/s)" if self.embedded else ""),
        ]
        groups: dict[tuple[str, str], list[str]] = {}
        for failure in self.failures:
            groups.setdefault((failure.error_type, failure.message), []).append(failure.node_id)
        for (error_type, message), ids in list(groups.items())[:5]:
            more = f" and {len(ids) - 3} more" if len(ids) > 3 else ""
            lines.append(f"failed {', '.join(ids[:3])}{more}: {error_type}: {message}")
        if len(groups) > 5:
            lines.append(f"... and {len(groups) - 5} more kinds of failure")
        if self.failed > len(self.failures):
            lines.append(f"({self.failed - len(self.failures)} more failed chunks not listed)")
        if self.files_skipped:
            lines.append(
                f"{self.files_skipped} files not read (binary without a reader, or unreadable); "
                "their stored chunks, if any, are kept"
            )
        if self.mode == "batch":
            lines.append(
                f"batch mode (Gemini Batch API): saved ~${self.saving_usd:.4f} versus online"
                + (
                    f"; {self.pending} chunks still in running jobs: run the same command "
                    "again later to collect them (nothing is paid twice)"
                    if self.pending and self.fatal_error is None
                    else ""
                )
            )
        if self.fatal_error is not None:
            lines.append(
                f"stopped: {self.fatal_error_type}: {self.fatal_error} "
                f"({self.pending} planned chunks not attempted; run again to resume)"
            )
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# ----------------------------------------------------------------------------- input


def default_transformations(embed_model: GeminiEmbedding) -> list[TransformComponent]:
    """A SentenceSplitter sized for the model: chunks of half its input limit (max 2048).

    gemini-embedding-001 (2,048 input tokens) gets 1,024-token chunks, overlap 100.
    """
    limit = model_spec(embed_model.model_name).max_input_tokens
    return [SentenceSplitter(chunk_size=min(limit // 2, 2048), chunk_overlap=100)]


@dataclass
class _Input:
    """Documents to ingest, produced lazily, with a count when it is known up front."""

    documents: Iterator[Document]
    total: int | None
    skipped_files: list[str] = field(default_factory=list)


def _is_hidden(parts: Sequence[str]) -> bool:
    return any(part.startswith(".") and part not in (".", "..") for part in parts)


def _list_files(root: Path, extensions: set[str] | None, recursive: bool) -> list[Path]:
    pattern = root.rglob("*") if recursive else root.glob("*")
    files = []
    for path in pattern:
        relative = path.relative_to(root).parts
        if _is_hidden(relative) or not path.is_file():
            continue
        if extensions is not None and path.suffix.lower() not in extensions:
            continue
        files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _resolve_paths(
    paths: Sequence[PathInput], extensions: Sequence[str] | None, recursive: bool
) -> list[tuple[Path, str]]:
    """``(file, doc id)`` pairs for files and folders; doc ids relative to each root."""
    exts = (
        None
        if extensions is None
        else {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    )
    pairs: list[tuple[Path, str]] = []
    seen: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = [
                (f, doc_id_for_path(f.relative_to(path).parts))
                for f in _list_files(path, exts, recursive)
            ]
        elif path.is_file():
            found = [(path, path.name)]
        else:
            raise ConfigurationError(f"No such file or directory: {os.fspath(raw)!r}")
        for file, doc_id in found:
            if doc_id in seen and seen[doc_id] != file.resolve():
                raise ConfigurationError(
                    f"Two inputs map to the same document id {doc_id!r} ({seen[doc_id]} and "
                    f"{file}); ingest them into different collections or one common folder"
                )
            seen[doc_id] = file.resolve()
            pairs.append((file, doc_id))
    return pairs


def _file_metadata(path: Path, doc_id: str) -> dict[str, Any]:
    stat = path.stat()
    metadata: dict[str, Any] = {
        "file_path": str(path.resolve()),
        "file_name": path.name,
        "file_size": stat.st_size,
        "last_modified_date": datetime.fromtimestamp(stat.st_mtime, UTC).strftime("%Y-%m-%d"),
        "source": doc_id,
    }
    file_type = mimetypes.guess_type(path.name)[0]
    if file_type:
        metadata["file_type"] = file_type
    return metadata


def _looks_binary(path: Path) -> bool:
    with path.open("rb") as handle:
        return b"\0" in handle.read(8192)


@functools.cache
def _reader_suffixes() -> frozenset[str]:
    """Suffixes LlamaIndex has a dedicated reader for (PDF, DOCX... when installed)."""
    from llama_index.core import SimpleDirectoryReader

    readers_log = logging.getLogger("llama_index.core.readers.file.base")
    level = readers_log.level
    readers_log.setLevel(logging.ERROR)  # "llama-index-readers-file not found" is not news
    try:
        return frozenset(SimpleDirectoryReader.supported_suffix_fn())
    finally:
        readers_log.setLevel(level)


def _read_text(path: Path) -> str:
    """A text file as UTF-8; bytes that are not UTF-8 become U+FFFD, with a warning.

    Never dropped silently: "caf\\xe9" read with errors="ignore" would embed "caf".
    """
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        logger.warning(
            "%s is not valid UTF-8 (byte 0x%02x at offset %d): undecodable bytes are "
            "replaced with U+FFFD. Convert the file to UTF-8 to embed its exact text.",
            path,
            raw[exc.start],
            exc.start,
        )
        return raw.decode("utf-8", errors="replace")


def _read_file(path: Path, doc_id: str) -> list[Document]:
    """One file -> its documents, with stable ids and metadata.

    Files with a dedicated LlamaIndex reader go through ``SimpleDirectoryReader``; other
    files are read as UTF-8 text (as SimpleDirectoryReader does), binary ones skipped.
    """
    metadata = _file_metadata(path, doc_id)
    if path.suffix.lower() in _reader_suffixes():
        from llama_index.core import SimpleDirectoryReader

        docs = SimpleDirectoryReader.load_file(
            input_file=path,
            file_metadata=lambda _: dict(metadata),
            file_extractor={},
            raise_on_error=True,
        )
        texts = [(doc.text, dict(doc.metadata)) for doc in docs]
    elif _looks_binary(path):
        return []
    else:
        texts = [(_read_text(path), metadata)]
    out: list[Document] = []
    for part, (raw, meta) in enumerate(texts):
        text = raw
        if path.suffix.lower() in (".md", ".markdown", ".txt"):
            front, text = parse_front_matter(text)
            for key, value in front.items():
                meta.setdefault(key, value)
            if "title" not in meta:
                title = markdown_title(text)
                if title:
                    meta["title"] = title
        out.append(
            Document(
                text=text,
                id_=doc_id if len(texts) == 1 else f"{doc_id}#part{part}",
                metadata=meta,
                excluded_embed_metadata_keys=list(_FILE_EMBED_EXCLUDED),
                excluded_llm_metadata_keys=list(_FILE_LLM_EXCLUDED),
            )
        )
    return out


def load_documents(
    paths: PathInput | Sequence[PathInput],
    *,
    extensions: Sequence[str] | None = None,
    recursive: bool = True,
) -> Iterator[Document]:
    """Read files and folders lazily as Documents with stable ids and useful metadata.

    Doc ids are paths relative to the folder given (a file given directly: its name).
    Markdown front matter (flat ``key: value`` lines) becomes metadata and a leading
    ``# Heading`` the ``title``; hidden files and binary files without a reader are skipped.
    """
    return _open_paths(paths, extensions, recursive).documents


def _open_paths(
    paths: PathInput | Sequence[PathInput], extensions: Sequence[str] | None, recursive: bool
) -> _Input:
    items: Sequence[PathInput] = [paths] if isinstance(paths, str | os.PathLike) else paths
    pairs = _resolve_paths(items, extensions, recursive)
    skipped: list[str] = []

    def documents() -> Iterator[Document]:
        for path, doc_id in pairs:
            try:
                docs = _read_file(path, doc_id)
            except Exception as exc:
                logger.warning("Skipping %s: %s", path, exc)
                docs = []
            if not docs:
                skipped.append(doc_id)
            yield from docs

    return _Input(documents(), len(pairs), skipped)


def _open_input(source: IngestSource, extensions: Sequence[str] | None, recursive: bool) -> _Input:
    if isinstance(source, Document):
        return _Input(iter([source]), 1)
    if isinstance(source, str | os.PathLike):
        return _open_paths(source, extensions, recursive)
    if (
        isinstance(source, Sequence)
        and source
        and all(isinstance(s, str | os.PathLike) for s in source)
    ):
        return _open_paths(source, extensions, recursive)
    total = len(source) if isinstance(source, Sequence) else None
    return _Input(_documents_only(source), total)


def _documents_only(source: Iterable[object]) -> Iterator[Document]:
    warned = False
    for doc in source:
        if not isinstance(doc, Document):
            raise ConfigurationError(
                f"ingest() takes Documents or paths; got a {type(doc).__name__} in the input"
            )
        if not warned and _UUID_RE.match(doc.id_):
            warned = True
            logger.warning(
                "Document %s has a random id: re-runs cannot recognise unchanged documents. "
                "Give documents stable ids (Document(id_=...), or SimpleDirectoryReader("
                "filename_as_id=True)), or pass paths to ingest().",
                doc.id_,
            )
        yield doc


# ----------------------------------------------------------------------------- the run


@dataclass
class _Window:
    """One batch of documents planned together; stale chunks go once it is resolved."""

    stale: list[str]
    outstanding: int = 0


@dataclass
class _Pending:
    node: BaseNode
    spec: TextSpec
    window: _Window


@dataclass
class _Settings:
    sync: bool
    dry_run: bool
    window_chars: int
    window_docs: int
    lookahead: int
    write_lag: int


class _FatalStop(Exception):
    """Internal: carries the fatal error out of the consumer loop."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _Run:
    """State of one ingestion run (producer task + streaming consumer)."""

    def __init__(
        self,
        source: _Input,
        embed_model: GeminiEmbedding,
        store: IngestStore,
        transformations: Sequence[TransformComponent],
        settings: _Settings,
        show_progress: bool,
    ) -> None:
        self.source = source
        self.embed_model = embed_model
        self.store = store
        self.transformations = list(transformations)
        self.settings = settings
        self.report = IngestReport(dry_run=settings.dry_run)
        self.fp_hash = fingerprint_hash(embed_model.fingerprint)
        self.model = model_spec(embed_model.model_name)
        self.ready: deque[_Pending] = deque()
        self.ready_changed = asyncio.Event()
        self.space_freed = asyncio.Event()
        self.producer_done = False
        self.seen_docs: set[str] = set()
        self.docs_planned = 0
        self.windows_read = 0
        self.estimate = RequestEstimate()
        self.progress = _Progress(show_progress, source.total)
        self.unbound = False
        """True until the fingerprint is recorded in a collection that had none."""

    # -- producing windows -------------------------------------------------------------

    def _next_window(self) -> list[Document]:
        # Windows start small and double, so the first requests go out while the rest of
        # the first full-size window would still be read and split.
        ramp = 2 ** min(self.windows_read, 16)
        max_docs = min(self.settings.window_docs, FIRST_WINDOW_DOCS * ramp)
        max_chars = min(self.settings.window_chars, FIRST_WINDOW_CHARS * ramp)
        self.windows_read += 1
        docs: list[Document] = []
        chars = 0
        for doc in self.source.documents:
            docs.append(doc)
            chars += len(doc.text or "")
            if chars >= max_chars or len(docs) >= max_docs:
                break
        return docs

    def _split(self, docs: list[Document]) -> list[tuple[BaseNode, TextSpec | None, PlannedNode]]:
        """Transform one window of documents and give each chunk its id, spec and hash."""
        for doc in docs:
            if doc.id_ in self.seen_docs:
                raise ConfigurationError(
                    f"Document id {doc.id_!r} appears twice in the input: ids must be unique "
                    "(each run replaces a document's chunks by id)"
                )
            self.seen_docs.add(doc.id_)
        nodes = list(run_transformations(list(docs), self.transformations, in_place=False))
        inputs = {id(doc) for doc in docs}
        for position, node in enumerate(nodes):
            # Never mutate the caller's objects (a Document passes through unchanged when
            # there are no transformations; splitters may share metadata dicts).
            if id(node) in inputs:
                node = nodes[position] = node.model_copy()
            node.metadata = dict(node.metadata)
            node.excluded_embed_metadata_keys = list(node.excluded_embed_metadata_keys)
            node.excluded_llm_metadata_keys = list(node.excluded_llm_metadata_keys)
            node.relationships = dict(node.relationships)
        counters: dict[str, int] = {}
        renamed: dict[str, str] = {}
        out: list[tuple[BaseNode, TextSpec | None, PlannedNode]] = []
        for node in nodes:
            doc_id = node.ref_doc_id or node.node_id
            index = counters.get(doc_id, 0)
            counters[doc_id] = index + 1
            new_id = node_id_for(doc_id, index)
            renamed[node.node_id] = new_id
            node.id_ = new_id
            if node.ref_doc_id is None:
                node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc_id)
        for node in nodes:
            for rel in (NodeRelationship.PREVIOUS, NodeRelationship.NEXT):
                info = node.relationships.get(rel)
                if isinstance(info, RelatedNodeInfo) and info.node_id in renamed:
                    node.relationships[rel] = info.model_copy(
                        update={"node_id": renamed[info.node_id]}
                    )
            doc_id = node.ref_doc_id or node.node_id
            if not node.get_content(metadata_mode=MetadataMode.NONE).strip():
                out.append((node, None, PlannedNode(node.node_id, doc_id, None)))
                continue
            spec = self.embed_model.node_input(node)
            digest = node_hash(spec, node.metadata, self.fp_hash)
            node.metadata[HASH_KEY] = digest
            node.metadata[FP_KEY] = self.fp_hash
            for keys in (node.excluded_embed_metadata_keys, node.excluded_llm_metadata_keys):
                keys.extend(k for k in (HASH_KEY, FP_KEY) if k not in keys)
            out.append((node, spec, PlannedNode(node.node_id, doc_id, digest)))
        return out

    def _too_long(self, spec: TextSpec) -> bool:
        if self.embed_model.on_overlength != "raise":
            return False
        text = wire_text(
            spec.text, spec.task_type, spec.title, prefixes=self.model.uses_task_prefixes
        )
        return estimate_tokens(text) > self.model.max_input_tokens

    async def produce(self) -> None:
        try:
            while True:
                docs = await asyncio.to_thread(self._next_window)
                if not docs:
                    break
                await self._plan_window(docs)
        finally:
            self.producer_done = True
            self.ready_changed.set()

    async def _plan_window(self, docs: list[Document]) -> None:
        report = self.report
        report.documents += len(docs)
        self.docs_planned += len(docs)
        chunks = await asyncio.to_thread(self._split, docs)
        doc_ids = sorted({doc.id_ for doc in docs})
        stored = await self.store.aget_index(doc_ids)
        plan = plan_nodes((planned for _, _, planned in chunks), stored)
        report.nodes += len(chunks)
        report.skipped += len(plan.skip)
        report.empty += len(plan.empty)
        self.progress.planned(len(chunks), self.docs_planned, len(plan.skip) + len(plan.empty))
        by_id = {node.node_id: (node, spec) for node, spec, _ in chunks}
        window = _Window(stale=list(plan.stale))
        if self.settings.dry_run:
            self._estimate(plan, by_id)
            report.deleted += len(plan.stale)
            return
        self._refuse_unstorable(plan, by_id)
        to_embed = await self._write_reused(plan, by_id)
        for node_id in to_embed:
            node, spec = by_id[node_id]
            assert spec is not None
            if self._too_long(spec):
                report.to_embed += 1
                self._fail(
                    [node],
                    TextTooLongError(
                        f"about {estimate_tokens(spec.text)} tokens, over {self.model.name}'s "
                        f"input limit of {self.model.max_input_tokens} (on_overlength='raise')"
                    ),
                )
                continue
            window.outstanding += 1
            self.ready.append(_Pending(node, spec, window))
        report.to_embed += window.outstanding
        self.ready_changed.set()
        if window.outstanding == 0:
            await self._window_done(window)
        while len(self.ready) > self.settings.lookahead:
            self.space_freed.clear()
            await self.space_freed.wait()

    def _refuse_unstorable(
        self, plan: NodePlan, by_id: Mapping[str, tuple[BaseNode, TextSpec | None]]
    ) -> None:
        """Fail chunks the store cannot hold (e.g. a ``datetime`` in metadata) before paying.

        Otherwise the write after embedding fails: the whole batch is lost, the run stops,
        and every re-run pays for it again.
        """
        validate = getattr(self.store, "validate_node", None)
        if not callable(validate):
            return
        refused: set[str] = set()
        for node_id in [*plan.embed, *plan.reuse]:
            node = by_id[node_id][0]
            try:
                validate(node)
            except (ValueError, TypeError) as exc:
                refused.add(node_id)
                self.report.to_embed += 1
                self._fail([node], InputError(f"this chunk cannot be stored: {exc}"))
        if refused:
            plan.embed = [node_id for node_id in plan.embed if node_id not in refused]
            plan.reuse = {k: v for k, v in plan.reuse.items() if k not in refused}

    def _estimate(
        self, plan: NodePlan, by_id: Mapping[str, tuple[BaseNode, TextSpec | None]]
    ) -> None:
        report = self.report
        specs = [by_id[node_id][1] for node_id in plan.embed]
        estimate_requests(
            (spec for spec in specs if spec is not None),
            self.model,
            max_items=_max_items(self.embed_model),
            max_tokens=_max_tokens(self.embed_model),
            into=self.estimate,
        )
        report.to_embed = self.estimate.items
        report.reused += len(plan.reuse)
        self.progress.resolved(len(plan.embed) + len(plan.reuse))

    async def _write_reused(
        self, plan: NodePlan, by_id: Mapping[str, tuple[BaseNode, TextSpec | None]]
    ) -> list[str]:
        """Write chunks whose vector is already stored; returns the ids still to embed."""
        to_embed = list(plan.embed)
        if plan.reuse:
            sources = sorted(set(plan.reuse.values()))
            vectors: dict[str, list[float]] = {}
            try:
                for stored_node in await self.store.aget_nodes(
                    node_ids=sources, include_embeddings=True
                ):
                    if stored_node.embedding is not None:
                        vectors[stored_node.node_id] = list(stored_node.embedding)
            except Exception as exc:  # a store without vector reads: embed again
                logger.debug("Cannot read stored vectors (%s); embedding again", exc)
            nodes: list[BaseNode] = []
            for node_id, source in plan.reuse.items():
                vector = vectors.get(source)
                if vector is None:
                    to_embed.append(node_id)
                    continue
                node = by_id[node_id][0]
                node.embedding = vector
                nodes.append(node)
            if nodes:
                await self._store_write(nodes)
                self.report.reused += len(nodes)
                self.progress.resolved(len(nodes))
        return to_embed

    # -- consuming: embed and write as each request returns ------------------------------

    async def consume(self) -> None:
        """Embed ready chunks; a writer task stores each answered batch behind the stream.

        Writing behind (up to ``write_lag`` batches) keeps requests going out while the
        store writes, instead of one write per answer holding up the next request.
        """
        writes: asyncio.Queue[list[_Pending] | None] = asyncio.Queue(self.settings.write_lag)
        writer = asyncio.create_task(self._write_behind(writes))
        try:
            await self._consume_stream(writes, writer)
            await self._finish_writes(writes, writer)
        except _FatalStop:
            # Keep every vector already paid for, then stop.
            await self._finish_writes(writes, writer)
            raise
        finally:
            if not writer.done():
                writer.cancel()
                with contextlib.suppress(BaseException):
                    await writer
            # Answered but never written (crash, cancellation, failed write).
            while not writes.empty():
                batch = writes.get_nowait()
                if batch is not None:
                    self.report.pending += len(batch)

    async def _consume_stream(
        self, writes: asyncio.Queue[list[_Pending] | None], writer: asyncio.Task[None]
    ) -> None:
        engine = self.embed_model.engine
        while True:
            if not self.ready:
                if self.producer_done:
                    return
                self.ready_changed.clear()
                await self.ready_changed.wait()
                continue
            taken: dict[int, _Pending] = {}
            stream = engine.stream(self._drain_ready(taken))
            try:
                async with _closing(stream):
                    async for outcome in stream:
                        batch = [taken.pop(i) for i in outcome.indices]
                        if outcome.error is not None:
                            self._fail([p.node for p in batch], outcome.error)
                        else:
                            assert outcome.vectors is not None
                            for pending, vector in zip(batch, outcome.vectors, strict=True):
                                pending.node.embedding = vector
                        try:
                            await self._queue_write(writes, writer, batch)
                        except BaseException:
                            if outcome.error is None:  # answered, never handed to the writer
                                self.report.pending += len(batch)
                            raise
            except FATAL_API_ERRORS as error:
                raise _FatalStop(error) from error
            finally:
                # Chunks handed to the engine but never answered (fatal stop, crash).
                self.report.pending += len(taken)

    @staticmethod
    async def _queue_write(
        writes: asyncio.Queue[list[_Pending] | None],
        writer: asyncio.Task[None],
        batch: list[_Pending] | None,
    ) -> None:
        if writer.done():
            writer.result()  # a failed write stops the run (raises); else the writer is gone
            raise RuntimeError("the ingestion writer stopped early")
        if not writes.full():
            writes.put_nowait(batch)
            return
        put = asyncio.ensure_future(writes.put(batch))
        await asyncio.wait({put, writer}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            writer.result()
            raise RuntimeError("the ingestion writer stopped early")

    async def _finish_writes(
        self, writes: asyncio.Queue[list[_Pending] | None], writer: asyncio.Task[None]
    ) -> None:
        if not writer.done():
            await self._queue_write(writes, writer, None)
        await writer

    async def _write_behind(self, writes: asyncio.Queue[list[_Pending] | None]) -> None:
        """Store answered batches in order, one write per batch.

        Not coalesced: a local Chroma write holds the GIL (no request goes out meanwhile),
        so short writes with the event loop running in between keep requests flowing.
        """
        while (batch := await writes.get()) is not None:
            answered = [p.node for p in batch if p.node.embedding is not None]
            if answered:
                try:
                    await self._store_write(answered)
                except Exception as exc:
                    self._fail(answered, exc)
                    raise
                self.report.embedded += len(answered)
            self.progress.resolved(len(batch), self._usage_text())
            for pending in batch:
                pending.node.embedding = None
                pending.window.outstanding -= 1
                if pending.window.outstanding == 0:
                    await self._window_done(pending.window)

    async def consume_batch(self, embedder: BatchEmbedder, *, wait: bool) -> BatchRunReport:
        """Batch mode: collect every chunk to embed, then let the Batch API embed them.

        Results are written job by job as each job finishes; the state file next to the
        store lets a re-run re-attach to jobs instead of paying for them again.
        """
        pending: dict[str, _Pending] = {}
        while True:  # keep draining so the producer's lookahead never blocks
            while self.ready:
                item = self.ready.popleft()
                pending[item.node.node_id] = item
                self.space_freed.set()
            if self.producer_done:
                break
            self.ready_changed.clear()
            await self.ready_changed.wait()

        async def on_vectors(pairs: list[tuple[str, list[float]]]) -> None:
            batch = [pending[key] for key, _ in pairs]
            for item, (_, vector) in zip(batch, pairs, strict=True):
                item.node.embedding = vector
            await self._store_write([item.node for item in batch])
            self.report.embedded += len(batch)
            self.progress.resolved(len(batch))
            for item in batch:
                item.node.embedding = None
                item.window.outstanding -= 1
                if item.window.outstanding == 0:
                    await self._window_done(item.window)

        result = await embedder.run(
            [(key, item.spec) for key, item in pending.items()], on_vectors, wait=wait
        )
        for failure in result.failures:
            item = pending[failure.key]
            self._fail([item.node], GeminiAPIError(failure.message))
        self.report.pending += len(result.pending_keys)
        return result

    def _drain_ready(self, taken: dict[int, _Pending]) -> Iterator[TextSpec]:
        """Feed ready chunks to the engine lazily; it ends when none are ready."""
        index = 0
        while self.ready:
            pending = self.ready.popleft()
            taken[index] = pending
            index += 1
            self.space_freed.set()
            yield pending.spec

    async def _store_write(self, nodes: list[BaseNode]) -> None:
        if self.unbound:
            await _record_fingerprint(self.store, self.embed_model)
            self.unbound = False
        try:
            await self.store.async_add(nodes)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"Writing {len(nodes)} chunks to the store failed: {exc}") from exc
        self.report.written += len(nodes)

    async def _window_done(self, window: _Window) -> None:
        if window.stale:
            stale, window.stale = window.stale, []
            await self._store_delete(stale)

    async def _store_delete(self, node_ids: list[str]) -> None:
        for start in range(0, len(node_ids), 5000):
            part = node_ids[start : start + 5000]
            try:
                await self.store.adelete_nodes(node_ids=part)
            except StoreError:
                raise
            except Exception as exc:
                raise StoreError(
                    f"Deleting {len(part)} chunks from the store failed: {exc}"
                ) from exc
            self.report.deleted += len(part)

    def _fail(self, nodes: Sequence[BaseNode], error: BaseException) -> None:
        report = self.report
        report.failed += len(nodes)
        error_type = type(error).__name__
        message = str(error)
        room = MAX_LISTED_FAILURES - len(report.failures)
        for node in nodes[: max(0, room)]:
            report.failures.append(
                NodeFailure(node.node_id, node.ref_doc_id or node.node_id, error_type, message)
            )

    def _usage_text(self) -> str:
        usage = self.embed_model.usage
        return f"tokens={usage.tokens:,} ${usage.cost_usd:.4f} failed={self.report.failed}"

    # -- removed documents -----------------------------------------------------------------

    async def delete_removed(self) -> None:
        if self.report.documents == 0:
            raise ConfigurationError(
                "sync=True with an empty input would delete the whole collection; refusing. "
                "Use store.clear() to empty it on purpose."
            )
        index = await self.store.aget_index(None)
        # Nodes stored without a document ("" bucket) belong to no input: left alone. So do
        # files still in the input that could not be read this time (binary, unreadable).
        unread = set(self.source.skipped_files)
        removed = {
            doc: nodes
            for doc, nodes in index.items()
            if doc
            and doc not in self.seen_docs
            and doc not in unread
            and doc.rpartition("#part")[0] not in unread
        }
        node_ids = [node_id for nodes in removed.values() for node_id in nodes]
        if self.settings.dry_run:
            self.report.deleted += len(node_ids)
        else:
            await self._store_delete(node_ids)
        self.report.deleted_documents += len(removed)


def _max_items(embed_model: GeminiEmbedding) -> int:
    config = embed_model.engine.config
    quota = embed_model.engine.limiter.settings
    limit = config.max_items_per_request
    if quota.items_per_minute is not None:
        limit = min(limit, quota.items_per_minute)
    return limit


def _max_tokens(embed_model: GeminiEmbedding) -> int | None:
    config = embed_model.engine.config
    quota = embed_model.engine.limiter.settings
    limit = config.max_tokens_per_request
    if quota.tokens_per_minute is not None:
        limit = min(limit or quota.tokens_per_minute, quota.tokens_per_minute)
    return limit


@contextlib.asynccontextmanager
async def _closing(stream: AsyncIterator[Any]) -> AsyncIterator[None]:
    """Close an async generator on exit, so the engine cancels requests still in flight."""
    try:
        yield
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


class _Progress:
    """A tqdm bar over chunks; its total is extrapolated until the input is fully read."""

    def __init__(self, enabled: bool, total_docs: int | None) -> None:
        self.total_docs = total_docs
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=None, unit="chunk", desc="ingest", dynamic_ncols=True)
        self.nodes = 0

    def planned(self, nodes: int, docs_planned: int, resolved: int) -> None:
        self.nodes += nodes
        if self.bar is None:
            return
        if self.total_docs and docs_planned:
            estimate = math.ceil(self.nodes / docs_planned * max(self.total_docs, docs_planned))
            self.bar.total = max(estimate, self.bar.n + resolved)
        self.resolved(resolved)

    def finished_input(self) -> None:
        if self.bar is not None:
            self.bar.total = self.nodes
            self.bar.refresh()

    def resolved(self, count: int, postfix: str | None = None) -> None:
        if self.bar is None:
            return
        if postfix is not None:
            self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.update(count)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ----------------------------------------------------------------------------- public API


async def aingest(
    source: IngestSource,
    *,
    store: IngestStore,
    embed_model: GeminiEmbedding | None = None,
    transformations: Sequence[TransformComponent] | None = None,
    sync: bool = False,
    dry_run: bool = False,
    raise_on_fatal: bool = True,
    show_progress: bool = True,
    extensions: Sequence[str] | None = None,
    recursive: bool = True,
    window_chars: int = 2_000_000,
    window_docs: int = 2_000,
    mode: Literal["online", "batch"] = "online",
    batch_state: str | os.PathLike[str] | None = None,
    batch_wait: bool = True,
    batch_options: Mapping[str, Any] | None = None,
) -> IngestReport:
    """Embed ``source`` with ``embed_model`` and write it to ``store``, streaming.

        report = await aingest("./docs", embed_model=embed, store=store)
        report = await aingest(documents, embed_model=embed, store=store, sync=True)
        estimate = await aingest("./docs", embed_model=embed, store=store, dry_run=True)

    Args:
        source: a folder or file path (or several), a Document, or an iterable of
            Documents (consumed lazily; give them stable ``id_``s).
        store: a ``ChromaStore`` (bound to ``embed_model``'s fingerprint before any call).
        embed_model: the ``GeminiEmbedding``; default: the store's ``embed_model``.
        transformations: node parsers/extractors run per window of documents (default:
            :func:`default_transformations`). Must not contain an embedding model.
        sync: also delete documents stored in the collection but absent from ``source``.
        dry_run: plan and estimate only: no API call, no write.
        raise_on_fatal: re-raise a fatal error (bad key, unknown model, per-day quota,
            store failure) after stopping cleanly; the report is on ``error.report``.
            False: return the report with ``fatal_error`` set.
        show_progress: show a tqdm bar (chunks/s, tokens, $, ETA) on stderr.
        extensions: for folders, only files with these suffixes (e.g. ``[".md", ".txt"]``).
        recursive: descend into sub-folders.
        window_chars / window_docs: how much input is read and planned at a time.
        mode: "online" (default), or "batch": embed through the Gemini Batch API at half
            the price, with hours of latency. Jobs are recorded in ``batch_state`` (default
            :func:`default_batch_state_path`), so a re-run re-attaches to running jobs
            instead of paying again; per-item errors are retried online.
        batch_wait: batch mode: wait for every job (default), or submit, collect what has
            finished, and return (run again later to collect the rest).
        batch_options: batch mode: extra ``BatchEmbedder`` arguments (``poll_initial``,
            ``poll_max``, ``fallback_online``, ``max_inline_bytes``, ``on_event``...).

    Raises:
        FingerprintMismatchError: the collection was built with another embedding setup
            (checked before anything is embedded).
        ConfigurationError: bad input (missing path, duplicate doc ids, embed model in
            ``transformations``...).
        GeminiAPIError / StoreError: fatal errors, when ``raise_on_fatal``.
    """
    if mode not in ("online", "batch"):
        raise ConfigurationError(f"mode={mode!r} is not one of 'online', 'batch'")
    started = time.monotonic()
    embed = _resolve_embed_model(store, embed_model)
    steps = list(transformations) if transformations is not None else default_transformations(embed)
    for step in steps:
        if isinstance(step, BaseEmbedding):
            raise ConfigurationError(
                "Pass the embedding model as embed_model=, not in transformations: ingest() "
                "embeds (and skips unchanged chunks) itself"
            )
    unbound = await _bind_store(store, embed, dry_run=dry_run)
    settings = _Settings(
        sync=sync,
        dry_run=dry_run,
        window_chars=max(1, window_chars),
        window_docs=max(1, window_docs),
        lookahead=max(2_000, 4 * embed.embed_batch_size * embed.max_concurrency),
        write_lag=_write_lag(embed),
    )
    source_input = _open_input(source, extensions, recursive)
    run = _Run(source_input, embed, store, steps, settings, show_progress)
    run.unbound = unbound
    before = embed.usage
    fatal: BaseException | None = None
    batch_result: BatchRunReport | None = None
    embedder: BatchEmbedder | None = None
    if mode == "batch" and not dry_run:
        state_path = batch_state or default_batch_state_path(store)
        embedder = BatchEmbedder(embed, state_path, **dict(batch_options or {}))
    producer = asyncio.create_task(run.produce())
    try:
        if dry_run:
            await producer
        else:
            consuming: Coroutine[Any, Any, Any] = (
                run.consume_batch(embedder, wait=batch_wait)
                if embedder is not None
                else run.consume()
            )
            consumer = asyncio.create_task(consuming)
            done, _ = await asyncio.wait({producer, consumer}, return_when=asyncio.FIRST_EXCEPTION)
            if producer in done and producer.exception() is not None:
                consumer.cancel()
                with contextlib.suppress(BaseException):
                    await consumer
                producer.result()
            try:
                consumed = await consumer
            finally:
                if not producer.done():
                    producer.cancel()
            await producer
            if isinstance(consumed, BatchRunReport):
                batch_result = consumed
        run.progress.finished_input()
        if sync:
            await run.delete_removed()
    except _FatalStop as stop:
        fatal = stop.error
    except (StoreError, GeminiAPIError) as error:  # batch mode: job create/poll failed
        fatal = error
    finally:
        if not producer.done():
            producer.cancel()
            with contextlib.suppress(BaseException):
                await producer
        run.progress.close()
    report = run.report
    report.files_skipped = len(source_input.skipped_files)
    if dry_run:
        report.tokens = run.estimate.tokens
        report.requests = run.estimate.requests
        report.cost_usd = run.estimate.tokens * run.model.price_per_million_tokens / 1_000_000
        if mode == "batch":
            report.mode = "batch"
            estimate = estimate_batch_cost(run.estimate.tokens, embed.model_name)
            report.cost_usd, report.saving_usd = estimate["batch_usd"], estimate["saving_usd"]
        quota = embed.engine.limiter.settings
        report.estimated_seconds = estimate_seconds(
            run.estimate.items,
            run.estimate.tokens,
            items_per_minute=quota.items_per_minute,
            tokens_per_minute=quota.tokens_per_minute,
            window_seconds=quota.window_seconds,
        )
        if quota.items_per_day:
            report.estimated_days = max(1, math.ceil(run.estimate.items / quota.items_per_day))
    else:
        used = embed.usage - before
        report.tokens, report.requests = used.tokens, used.requests
        report.retries, report.cost_usd = used.retries, used.cost_usd
        report.pending += len(run.ready)
        if batch_result is not None:
            report.mode = "batch"
            report.batch = batch_result.to_dict()
            report.tokens = batch_result.batch_tokens + batch_result.online_tokens
            report.cost_usd = batch_result.cost_usd
            report.saving_usd = batch_result.saving_usd
    report.wall_seconds = time.monotonic() - started
    if fatal is not None:
        report.fatal_error = str(fatal)
        report.fatal_error_type = type(fatal).__name__
        if raise_on_fatal:
            fatal.add_note(
                f"ingest stopped after writing {report.written} chunks "
                f"({report.failed} failed, {report.pending} not attempted); "
                "run it again to resume. The report is on this error's .report attribute."
            )
            if isinstance(fatal, GeminiEmbedError):
                fatal.report = report  # declared on the class
            else:  # not one of ours (a bug, or the caller's code): still attach the report
                fatal.report = report  # type: ignore[attr-defined]
            raise fatal
    return report


def default_batch_state_path(store: object) -> Path:
    """Where batch mode records its jobs: beside a local store, else in the working dir."""
    name = str(getattr(store, "collection_name", "collection"))
    path = getattr(store, "path", None)
    host = getattr(store, "host", None)
    base = Path(path) if isinstance(path, str | os.PathLike) and not host else Path.cwd()
    return base / f".gemini-batch-{name}.json"


def ingest(source: IngestSource, **kwargs: Any) -> IngestReport:
    """Synchronous :func:`aingest` (same arguments); works inside Jupyter too."""
    return run_sync(aingest(source, **kwargs))


def _resolve_embed_model(
    store: IngestStore, embed_model: GeminiEmbedding | None
) -> GeminiEmbedding:
    if embed_model is not None:
        if not isinstance(embed_model, GeminiEmbedding):
            raise ConfigurationError(
                f"embed_model must be a GeminiEmbedding, got {type(embed_model).__name__}"
            )
        return embed_model
    candidate = getattr(store, "embed_model", None)
    if isinstance(candidate, GeminiEmbedding):
        return candidate
    raise ConfigurationError(
        "No embedding model: pass embed_model=GeminiEmbedding(...) (or build the store with "
        "embed_model=...)"
    )


def _write_lag(embed_model: GeminiEmbedding) -> int:
    """Answered batches that may wait for the store: ``max_concurrency``, fewer when large.

    A crash loses at most these, the batch being written and the requests in flight
    (re-embedded on the re-run); the queued vectors (as Python floats) stay under ~20 MB.
    """
    dimension = (
        embed_model.output_dimensionality or model_spec(embed_model.model_name).default_dimension
    )
    floats_per_batch = embed_model.embed_batch_size * dimension
    return max(1, min(embed_model.max_concurrency, 600_000 // max(1, floats_per_batch)))


async def _bind_store(store: IngestStore, embed_model: GeminiEmbedding, *, dry_run: bool) -> bool:
    """Check the collection's fingerprint against the model's before anything is paid for.

    Raises FingerprintMismatchError when the collection records another one. Returns True
    when the collection records none yet: it is recorded just before the first write, so
    a run that writes nothing (bad key, dry run) leaves an empty collection unbound.
    """
    recorded = getattr(store, "fingerprint", None)
    expected = normalise_fingerprint(embed_model.fingerprint)
    if isinstance(recorded, Mapping):
        if not fingerprints_equal(recorded, expected):
            name = str(getattr(store, "collection_name", "?"))
            raise FingerprintMismatchError(fingerprint_mismatch_message(name, recorded, expected))
        return False
    return not dry_run


async def _record_fingerprint(store: IngestStore, embed_model: GeminiEmbedding) -> None:
    try:
        await asyncio.to_thread(store.check_fingerprint, embed_model.fingerprint)
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"Recording the collection's fingerprint failed: {exc}") from exc
