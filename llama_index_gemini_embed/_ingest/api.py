"""Streaming, incremental, resumable ingestion: documents or folders -> Gemini -> Chroma.

    from llama_index_gemini_embed import ChromaStore, GeminiEmbedding, ingest

    embed = GeminiEmbedding(output_dimensionality=768)
    store = ChromaStore("docs", path="./chroma", embed_model=embed)
    report = ingest("./docs", embed_model=embed, store=store)   # or await aingest(...)
    print(report)                                                # the human summary

What it does, and how it differs from ``IngestionPipeline``:

* **Streaming.** Documents are read and split lazily, in windows; every embedding request
  is written to the store as soon as it returns. Memory stays bounded for any corpus, and
  an interrupted run keeps everything that was already embedded.
* **Incremental.** Chunk ids are stable (``"<doc id>#<chunk>"``; a folder's doc ids are
  paths relative to it) and each chunk carries a content hash (``lige_hash``) of what the
  API embeds plus the embedding fingerprint. Unchanged chunks are skipped (a re-run of an
  unchanged corpus makes no API call), a metadata-only change reuses the stored vector,
  stale chunks of changed documents are deleted, and ``delete_missing=True`` deletes
  documents that are no longer in the input. After a crash, re-running finishes the rest.
* **Failure report.** A failing request does not stop the run: its chunks are listed in
  :attr:`IngestReport.failures`. Fatal conditions (bad key, unknown model, per-day quota,
  the store failing) stop cleanly after storing everything already embedded.
* **Estimates.** ``dry_run=True`` reports chunks, tokens, requests, cost and the time the
  configured quota imposes, without calling the API or writing.

Where the rest lives: :mod:`.sources` reads the input (:mod:`.media` for media files),
:mod:`.chunks` makes identified chunks, :mod:`.plan` decides what to embed (pure), :mod:`.run`
is the run loop, :mod:`.writer` the store side, :mod:`.report` the report.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import TransformComponent

from llama_index_gemini_embed._batch.jobs import BatchEmbedder, BatchRunReport, estimate_batch_cost
from llama_index_gemini_embed._batch.options import BatchOptions
from llama_index_gemini_embed._deprecation import warn_once
from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
from llama_index_gemini_embed._errors import (
    ConfigurationError,
    FingerprintMismatchError,
    GeminiEmbedError,
)
from llama_index_gemini_embed._fingerprint import (
    fingerprint_mismatch_message,
    fingerprints_equal,
    normalise_fingerprint,
)
from llama_index_gemini_embed._models import model_spec
from llama_index_gemini_embed._sync import run_sync
from llama_index_gemini_embed._usage import estimate_usage

from .plan import estimate_seconds
from .report import IngestReport
from .run import IngestRun, RunSettings
from .seen import DEFAULT_MEMORY_LIMIT_IDS
from .sources import IngestSource, open_source
from .writer import IngestStore, write_capacity

__all__ = ["aingest", "default_batch_state_path", "default_transformations", "ingest"]


async def aingest(
    source: IngestSource,
    *,
    store: IngestStore,
    embed_model: GeminiEmbedding | None = None,
    transformations: Sequence[TransformComponent] | None = None,
    delete_missing: bool = False,
    dry_run: bool = False,
    raise_on_fatal: bool = True,
    show_progress: bool = True,
    extensions: Sequence[str] | None = None,
    recursive: bool = True,
    window_chars: int = 2_000_000,
    window_docs: int = 2_000,
    memory_limit_ids: int = DEFAULT_MEMORY_LIMIT_IDS,
    batch: BatchOptions | bool | None = None,
    mode: Literal["online", "batch"] | None = None,
    batch_state: str | os.PathLike[str] | None = None,
    batch_wait: bool | None = None,
    batch_options: Mapping[str, Any] | None = None,
    sync: bool | None = None,
) -> IngestReport:
    """Embed ``source`` with ``embed_model`` and write it to ``store``, streaming.

        report = await aingest("./docs", embed_model=embed, store=store)
        report = await aingest(documents, embed_model=embed, store=store, delete_missing=True)
        estimate = await aingest("./docs", embed_model=embed, store=store, dry_run=True)

    Args:
        source: a folder or file path (or several), a Document, or an iterable of
            Documents (consumed lazily; give them stable ``id_``s).
        store: a ``ChromaStore`` (bound to ``embed_model``'s fingerprint before any call).
        embed_model: the ``GeminiEmbedding``; default: the store's ``embed_model``.
        transformations: node parsers/extractors run per window of documents (default:
            :func:`default_transformations`). Must not contain an embedding model.
        delete_missing: also delete documents stored in the collection but absent from
            ``source`` (mirror the input).
        dry_run: plan and estimate only: no API call, no write.
        raise_on_fatal: re-raise a fatal error (bad key, unknown model, per-day quota,
            store failure) after stopping cleanly; the report is on ``error.report``.
            False: return the report with ``fatal_error`` set.
        show_progress: show a tqdm bar (chunks/s, tokens, $, ETA) on stderr.
        extensions: for folders, only files with these suffixes (e.g. ``[".md", ".txt"]``).
        recursive: descend into sub-folders.
        window_chars / window_docs: how much input is read and planned at a time.
        memory_limit_ids: document ids of this run kept in memory (8 bytes each; default
            1,000,000 = 8 MiB) to refuse a repeated id and find what ``delete_missing``
            deletes. Beyond it they spill to a private temporary directory (``TMPDIR``),
            removed when the run ends; exact either way.
        batch: ``True`` or a :class:`BatchOptions`: embed through the Gemini Batch API at
            half the price, with hours of latency. Jobs are recorded in
            ``BatchOptions.state_path`` (default :func:`default_batch_state_path`), so a
            re-run re-attaches to running jobs instead of paying again; per-item errors are
            retried online. ``BatchOptions(wait=False)`` submits, collects what has
            finished, and returns (run again later to collect the rest).
        mode / batch_state / batch_wait / batch_options: deprecated spellings of
            ``batch=BatchOptions(...)`` (each warns once per process).
        sync: deprecated alias of ``delete_missing`` (warns once per process).

    Raises:
        FingerprintMismatchError: the collection was built with another embedding setup
            (checked before anything is embedded).
        ConfigurationError: bad input (missing path, duplicate doc ids, embed model in
            ``transformations``...).
        GeminiAPIError / StoreError: fatal errors, when ``raise_on_fatal``.
    """
    delete_missing = _resolve_delete_missing(delete_missing, sync, stacklevel=3)
    _check_memory_limit_ids(memory_limit_ids)
    options = BatchOptions.from_legacy(
        batch=batch,
        mode=mode,
        batch_state=batch_state,
        batch_wait=batch_wait,
        batch_options=batch_options,
    )
    started = time.monotonic()
    embed = _resolve_embed_model(store, embed_model)
    steps = _transformations(transformations, embed)
    unbound = await _bind_store(store, embed, dry_run=dry_run)
    settings = RunSettings(
        delete_missing=delete_missing,
        dry_run=dry_run,
        window_chars=max(1, window_chars),
        window_docs=max(1, window_docs),
        lookahead=max(2_000, 4 * embed.embed_batch_size * embed.max_concurrency),
        write_capacity=write_capacity(embed),
        memory_limit_ids=memory_limit_ids,
    )
    run = IngestRun(
        open_source(
            source,
            extensions,
            recursive,
            exclude=_store_folders(store),
            media=model_spec(embed.model_name).accepts_media,
        ),
        embed,
        store,
        steps,
        settings,
        show_progress=show_progress,
        unbound=unbound,
    )
    embedder: BatchEmbedder | None = None
    if options is not None and not dry_run:
        state_path = options.state_path or default_batch_state_path(store)
        embedder = BatchEmbedder(embed, state_path, options=options)
    before = embed.usage
    batch_result = await run.execute(embedder, wait=options is None or options.wait)
    report = run.report
    if dry_run:
        _fill_estimate(report, run, embed, batch=options is not None)
    else:
        used = embed.usage - before
        report.tokens, report.requests = used.tokens, used.requests
        report.retries, report.cost_usd = used.retries, used.cost_usd
        report.set_modality_usage(used)
        if batch_result is not None:
            _fill_batch(report, batch_result, online_cost_usd=used.cost_usd)
    report.wall_seconds = time.monotonic() - started
    if run.fatal is not None:
        _stop(report, run.fatal, raise_on_fatal=raise_on_fatal)
    return report


def ingest(
    source: IngestSource,
    *,
    store: IngestStore,
    embed_model: GeminiEmbedding | None = None,
    transformations: Sequence[TransformComponent] | None = None,
    delete_missing: bool = False,
    dry_run: bool = False,
    raise_on_fatal: bool = True,
    show_progress: bool = True,
    extensions: Sequence[str] | None = None,
    recursive: bool = True,
    window_chars: int = 2_000_000,
    window_docs: int = 2_000,
    memory_limit_ids: int = DEFAULT_MEMORY_LIMIT_IDS,
    batch: BatchOptions | bool | None = None,
    mode: Literal["online", "batch"] | None = None,
    batch_state: str | os.PathLike[str] | None = None,
    batch_wait: bool | None = None,
    batch_options: Mapping[str, Any] | None = None,
    sync: bool | None = None,
) -> IngestReport:
    """Synchronous :func:`aingest` (same arguments); works inside Jupyter too.

    report = ingest("./docs", embed_model=embed, store=store)
    print(report)
    """
    delete_missing = _resolve_delete_missing(delete_missing, sync, stacklevel=3)
    options = BatchOptions.from_legacy(
        batch=batch,
        mode=mode,
        batch_state=batch_state,
        batch_wait=batch_wait,
        batch_options=batch_options,
    )
    return run_sync(
        aingest(
            source,
            store=store,
            embed_model=embed_model,
            transformations=transformations,
            delete_missing=delete_missing,
            dry_run=dry_run,
            raise_on_fatal=raise_on_fatal,
            show_progress=show_progress,
            extensions=extensions,
            recursive=recursive,
            window_chars=window_chars,
            window_docs=window_docs,
            memory_limit_ids=memory_limit_ids,
            batch=options,
        )
    )


def default_transformations(embed_model: GeminiEmbedding) -> list[TransformComponent]:
    """A SentenceSplitter sized for the model: chunks of half its input limit (max 2048).

    gemini-embedding-001 (2,048 input tokens) gets 1,024-token chunks, overlap 100.
    """
    limit = model_spec(embed_model.model_name).max_input_tokens
    return [SentenceSplitter(chunk_size=min(limit // 2, 2048), chunk_overlap=100)]


def default_batch_state_path(store: object) -> Path:
    """Where batch mode records its jobs: beside a local store, else in the working dir."""
    name = str(getattr(store, "collection_name", "collection"))
    path = getattr(store, "path", None)
    host = getattr(store, "host", None)
    base = Path(path) if isinstance(path, str | os.PathLike) and not host else Path.cwd()
    return base / f".gemini-batch-{name}.json"


# ----------------------------------------------------------------------------- helpers


def _resolve_delete_missing(delete_missing: bool, sync: bool | None, *, stacklevel: int) -> bool:
    """``sync=`` is the old name of ``delete_missing=``: honoured, with one warning per process.

    A FutureWarning (shown by default, unlike DeprecationWarning outside ``__main__``):
    ``sync=True`` deletes data, so whoever runs the code should learn its new name.
    """
    if sync is None:
        return delete_missing
    warn_once(
        "ingest(sync=...)",
        "ingest(sync=...) is deprecated: use delete_missing=... (delete documents that "
        "are no longer in the input)",
        stacklevel=stacklevel,
    )
    return delete_missing or sync


def _check_memory_limit_ids(memory_limit_ids: object) -> None:
    if isinstance(memory_limit_ids, bool) or not isinstance(memory_limit_ids, int):
        raise ConfigurationError(
            "memory_limit_ids must be a whole number of document ids (e.g. 1_000_000), "
            f"got {memory_limit_ids!r}"
        )
    if memory_limit_ids < 1:
        raise ConfigurationError(
            f"memory_limit_ids must be at least 1 (document ids kept in memory; default "
            f"1_000_000 = 8 MiB), got {memory_limit_ids}"
        )


def _store_folders(store: object) -> list[Path]:
    """A local store's directory: never read as input (``ingest(".")`` beside ``./chroma``)."""
    path = getattr(store, "path", None)
    if isinstance(path, str | os.PathLike) and not getattr(store, "host", None):
        return [Path(path)]
    return []


def _transformations(
    transformations: Sequence[TransformComponent] | None, embed: GeminiEmbedding
) -> list[TransformComponent]:
    steps = list(transformations) if transformations is not None else default_transformations(embed)
    for step in steps:
        if isinstance(step, BaseEmbedding):
            raise ConfigurationError(
                "Pass the embedding model as embed_model=, not in transformations: ingest() "
                "embeds (and skips unchanged chunks) itself"
            )
    return steps


def _fill_estimate(
    report: IngestReport, run: IngestRun, embed: GeminiEmbedding, *, batch: bool
) -> None:
    """Dry run: tokens, requests, cost and the time the configured quotas impose."""
    estimate = run.estimate
    report.tokens = estimate.tokens
    report.requests = estimate.requests
    priced = estimate_usage(
        run.model, items=estimate.items, tokens=estimate.tokens, media_tokens=run.media_estimate
    )
    report.cost_usd = priced.cost_usd
    report.set_modality_usage(priced)
    if batch:
        # The Batch API carries the text; media items are embedded online, at their prices.
        report.mode = "batch"
        text = report.usage_by_modality.get("text")
        text_tokens, text_usd = (text["tokens"], text["cost_usd"]) if text else (0, 0.0)
        costs = estimate_batch_cost(text_tokens, embed.model_name)
        report.cost_usd = costs["batch_usd"] + priced.cost_usd - text_usd
        report.saving_usd = costs["saving_usd"]
        if text:
            text["cost_usd"] = costs["batch_usd"]
    quota = embed.engine.limiter.settings
    report.estimated_seconds = estimate_seconds(
        estimate.items,
        estimate.tokens,
        items_per_minute=quota.items_per_minute,
        tokens_per_minute=quota.tokens_per_minute,
        window_seconds=quota.window_seconds,
    )
    if quota.items_per_day:
        report.estimated_days = max(1, math.ceil(estimate.items / quota.items_per_day))


def _fill_batch(report: IngestReport, result: BatchRunReport, *, online_cost_usd: float) -> None:
    """Batch mode: the jobs' text at the batch price, plus what went online (media items,
    fallbacks) as the embedder's usage costed it, each modality at its price."""
    report.mode = "batch"
    report.batch = result.to_dict()
    report.tokens = result.batch_tokens + result.online_tokens
    report.cost_usd = result.batch_cost_usd + online_cost_usd
    report.saving_usd = result.saving_usd
    if result.embedded_batch:  # the Batch API path carries text only
        text = report.usage_by_modality.setdefault(
            "text", {"items": 0, "tokens": 0, "cost_usd": 0.0}
        )
        text["items"] += result.embedded_batch
        text["tokens"] += result.batch_tokens
        text["cost_usd"] += result.batch_cost_usd


def _stop(report: IngestReport, fatal: BaseException, *, raise_on_fatal: bool) -> None:
    """Record the fatal error in the report; re-raise it (carrying the report) if asked."""
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
