"""Half-price bulk embedding through the Gemini Batch API: submit, persist, poll, deliver.

    from llama_index_gemini_embed._batch.jobs import BatchEmbedder

    embed = GeminiEmbedding(output_dimensionality=768)
    batch = BatchEmbedder(embed, Path("chroma/.gemini-batch-docs.json"))

    async def upsert(pairs: list[tuple[str, list[float]]]) -> None:
        ...  # write these (node id, vector) pairs to the store

    items = [(node.node_id, embed.node_input(node)) for node in nodes]
    report = await batch.run(items, upsert)   # waits; run(..., wait=False) submits and returns
    print(report.summary())                   # jobs, batch vs online items, cost and saving
    for job in await batch.status():          # for `gemini-embed batch status`
        print(job.line())
    await batch.cancel()                      # for `gemini-embed batch cancel [NAME ...]`

How it works:

* **Same vectors as online.** Items are prepared by the online engine
  (:meth:`EmbedEngine.prepare_items`: gemini-embedding-2 prefixes, task type, title only
  with RETRIEVAL_DOCUMENT, ``output_dimensionality``) and results are L2-normalised with
  the same :func:`normalise_rows`, so a batch-built collection equals an online one.
* **Inline or file jobs** (:func:`._batch_plan.plan_jobs`): inline while a job's items
  share one config and the body stays under ``max_inline_bytes``, else a JSONL file
  through the Files API with per-line configs (per-document titles work there).
* **Resumable.** Each job, with its ``(key, content digest, tokens)`` list, is written to the
  state file (atomically) *before* it is created and again once it has a name; a run
  re-attaches to every job in the file instead of paying again, and only keys no live
  job covers are submitted. A job leaves the file only after ``on_vectors`` returned for
  its results, so a crash re-delivers (idempotent upserts) instead of losing vectors.
  Results for keys no longer requested, or whose text changed, are ignored.
* **Failures.** Per-item errors are retried online (``embed_model.engine``) at once.
  FAILED/EXPIRED/CANCELLED jobs are reported with their keys (``report.failures``) and
  resubmitted by the next run, or embedded online now with ``fallback_online=True``.
* Every API call (create, get, list, cancel, upload, download, delete) goes through the
  package's single retry layer (:class:`RetryingCaller`); the Batch API has its own
  quota, so these calls never draw on the online embedding quota limiter.

Gemini Developer API only: the SDK does not offer embedding batches on Vertex AI.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
import os
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from google import genai
from google.genai import types

from llama_index_gemini_embed._calls import Clock, RetryingCaller, Sleep
from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
from llama_index_gemini_embed._embedding.engine import TextSpec, normalise_rows
from llama_index_gemini_embed._errors import (
    ConfigurationError,
    GeminiAPIError,
    GeminiEmbedError,
    InputError,
    UnexpectedAnswerError,
)
from llama_index_gemini_embed._models import model_spec
from llama_index_gemini_embed._quota import QuotaLimiter
from llama_index_gemini_embed._usage import Usage

from .plan import (
    MAX_INLINE_RESPONSE_BYTES,
    TERMINAL_STATES,
    BatchState,
    BatchStateError,
    JobPlan,
    JobRecord,
    PlanItem,
    batch_cost,
    covered_keys,
    expected_result_bytes,
    inline_request_bytes,
    item_digest,
    jsonl_payload,
    next_poll_delay,
    plan_jobs,
    short_state,
)

__all__ = [
    "BatchEmbedder",
    "BatchRunReport",
    "BatchStateError",
    "ItemFailure",
    "JobOutcome",
    "JobStatus",
    "OnVectors",
    "estimate_batch_cost",
]

logger = logging.getLogger("llama_index_gemini_embed")


def _quiet_experimental_warning() -> None:
    """The SDK warns on every create_embeddings call that it is experimental; we know.

    Installed per embedder (idempotent: ``filterwarnings`` replaces an equal filter), so
    it also holds where the import-time filter list was reset, e.g. under pytest.
    """
    warnings.filterwarnings("ignore", message=r"batches\.create_embeddings\(\) is experimental")


OnVectors = Callable[[list[tuple[str, list[float]]]], Awaitable[None]]
"""Receives ``(key, normalised vector)`` pairs; must be idempotent (e.g. a store upsert)."""

_SUCCEEDED = frozenset({"SUCCEEDED", "PARTIALLY_SUCCEEDED"})

#: The API version of every Batch/Files API call unless the user set one: Google documents
#: these routes (and every example uses them) on v1beta; see docs/gemini-api.md.
BATCH_API_VERSION = "v1beta"

#: MIME types tried in turn for the JSONL input file: the documented one, then one the
#: Files API has always accepted (it has refused ``application/jsonl`` at times).
JSONL_MIME_TYPES = ("application/jsonl", "text/plain")

#: SDK exceptions that mean "the answer was not what the SDK expected" (e.g. its
#: ``KeyError: 'file'`` after an upload answered 200 without a file).
_ODD_ANSWERS = (KeyError, IndexError, TypeError, AttributeError, ValueError)

#: Jobs per page when looking up lost creates: a listing may carry inline results.
_LIST_PAGE_SIZE = 20


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class JobStatus:
    """One job of the state file, as ``status()``/``cancel()`` and progress events see it."""

    name: str | None
    display_name: str
    state: str
    mode: str
    items: int
    tokens: int
    created: str | None = None
    updated: str | None = None
    error: str | None = None

    def line(self) -> str:
        """One human-readable line, e.g. for ``gemini-embed batch status``."""
        text = (
            f"{self.name or '(not created)'}  {self.state:<11} {self.mode:<6} "
            f"items={self.items:,} tokens={self.tokens:,}"
        )
        if self.created:
            text += f" created={self.created}"
        if self.updated:
            text += f" updated={self.updated}"
        if self.error:
            text += f" error={self.error}"
        return text


@dataclass(frozen=True)
class ItemFailure:
    """A requested key that was not delivered in this run, and why."""

    key: str
    error: str
    message: str


@dataclass
class JobOutcome:
    """What one finished job gave this run."""

    name: str
    state: str
    mode: str
    items: int
    delivered: int = 0
    stale: int = 0
    """Results ignored: the key is no longer requested, its text changed, or it arrived twice."""
    item_errors: int = 0
    message: str = ""


@dataclass
class BatchRunReport:
    """The outcome of :meth:`BatchEmbedder.run`.

    Every requested key ends in exactly one of: delivered (``embedded_batch`` +
    ``embedded_online``), ``failures``, or ``pending_keys`` (its job is still running:
    run again later to collect it).
    """

    model: str = ""
    requested: int = 0
    jobs_submitted: int = 0
    jobs_reattached: int = 0
    jobs_succeeded: int = 0
    jobs_failed: int = 0
    jobs_expired: int = 0
    jobs_cancelled: int = 0
    jobs_pending: int = 0
    jobs_results_missing: int = 0
    """Jobs that reported SUCCEEDED but whose results never appeared within
    ``results_timeout``: their items were embedded online (full price)."""
    embedded_batch: int = 0
    embedded_online: int = 0
    item_errors: int = 0
    """Per-item errors inside succeeded jobs (each retried online)."""
    stale_results: int = 0
    batch_tokens: int = 0
    """Estimated tokens of every successful batch result consumed (what the Batch API bills)."""
    online_tokens: int = 0
    batch_price_per_million: float = 0.0
    online_price_per_million: float = 0.0
    polls: int = 0
    wall_seconds: float = 0.0
    failures: list[ItemFailure] = field(default_factory=list)
    pending_keys: list[str] = field(default_factory=list)
    jobs: list[JobOutcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Job-level problems, one actionable line each."""

    @property
    def delivered(self) -> int:
        return self.embedded_batch + self.embedded_online

    @property
    def batch_cost_usd(self) -> float:
        return self.batch_tokens * self.batch_price_per_million / 1_000_000

    @property
    def online_equivalent_usd(self) -> float:
        """What the batch-embedded tokens would have cost through online embedding."""
        return self.batch_tokens * self.online_price_per_million / 1_000_000

    @property
    def saving_usd(self) -> float:
        return self.online_equivalent_usd - self.batch_cost_usd

    @property
    def online_cost_usd(self) -> float:
        """Cost of the online fallback (per-item errors, ``fallback_online``)."""
        return self.online_tokens * self.online_price_per_million / 1_000_000

    @property
    def cost_usd(self) -> float:
        return self.batch_cost_usd + self.online_cost_usd

    @property
    def ok(self) -> bool:
        """True when every requested key was delivered."""
        return not self.failures and not self.pending_keys

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in (
            "delivered",
            "batch_cost_usd",
            "online_equivalent_usd",
            "saving_usd",
            "online_cost_usd",
            "cost_usd",
            "ok",
        ):
            data[name] = getattr(self, name)
        return data

    def summary(self) -> str:
        lines = [
            f"Batch jobs ({self.model}): {self.jobs_submitted} submitted, "
            f"{self.jobs_reattached} re-attached; {self.jobs_succeeded} succeeded, "
            f"{self.jobs_failed} failed, {self.jobs_expired} expired, "
            f"{self.jobs_cancelled} cancelled, {self.jobs_pending} still running.",
            f"Items: {self.delivered:,} of {self.requested:,} embedded "
            f"({self.embedded_batch:,} by batch, {self.embedded_online:,} online), "
            f"{len(self.failures):,} failed, {len(self.pending_keys):,} pending.",
            f"Cost: {self.batch_tokens:,} batch tokens ≈ {_usd(self.batch_cost_usd)} "
            f"(online: {_usd(self.online_equivalent_usd)}, saved {_usd(self.saving_usd)}); "
            f"online fallback {self.online_tokens:,} tokens ≈ {_usd(self.online_cost_usd)}.",
            f"Polls: {self.polls} in {self.wall_seconds:.1f}s.",
        ]
        lines.extend(self.errors)
        if self.pending_keys:
            lines.append("Run again later (same state file) to collect the pending jobs.")
        return "\n".join(lines)


@dataclass
class _Run:
    report: BatchRunReport
    on_vectors: OnVectors
    requested: dict[str, PlanItem] = field(default_factory=dict)
    specs: dict[str, TextSpec] = field(default_factory=dict)
    delivered: set[str] = field(default_factory=set)

    def wants(self, key: str, digest: str) -> bool:
        item = self.requested.get(key)
        return item is not None and item.digest == digest and key not in self.delivered


# ----------------------------------------------------------------------------- embedder


class BatchEmbedder:
    """Embeds many texts through the Gemini Batch API at half the online price.

    Args:
        embed_model: the ``GeminiEmbedding`` whose model, dimension, task types, client
            and retry policy are used (its engine embeds the online fallbacks).
        state_path: the JSON state file of this corpus' jobs (one per collection).
        poll_initial / poll_max: first delay between polls and its cap (doubling).
        max_inline_bytes: largest inline request body; larger jobs go through a file.
        max_inline_response_bytes: largest expected inline *result* (items × dimension);
            larger jobs go through a file, so no job status carries more than this.
        max_items_per_job: items per batch job.
        results_timeout: seconds a SUCCEEDED job may lack its results (they can lag
            behind the state) while it is re-polled with backoff; only then are its
            items embedded online, and the report says so.
        fallback_online: embed the items of FAILED/EXPIRED/CANCELLED jobs online at once
            (full price) instead of resubmitting them on the next run.
        deliver_batch_size: most pairs per ``on_vectors`` call.
        on_event: called with a :class:`JobStatus` when a job is submitted or changes state.
        sleep / clock: injectable for tests (also used by the retry layer).
    """

    def __init__(
        self,
        embed_model: GeminiEmbedding,
        state_path: str | os.PathLike[str],
        *,
        poll_initial: float = 10.0,
        poll_max: float = 120.0,
        max_inline_bytes: int = 19_000_000,
        max_inline_response_bytes: int = MAX_INLINE_RESPONSE_BYTES,
        max_items_per_job: int = 10_000,
        results_timeout: float = 1800.0,
        fallback_online: bool = False,
        deliver_batch_size: int = 1000,
        on_event: Callable[[JobStatus], None] | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        if poll_initial <= 0 or poll_max < poll_initial:
            raise ConfigurationError("Need 0 < poll_initial <= poll_max (seconds)")
        if (
            max_items_per_job < 1
            or deliver_batch_size < 1
            or max_inline_bytes < 0
            or max_inline_response_bytes < 0
        ):
            raise ConfigurationError(
                "max_items_per_job and deliver_batch_size must be at least 1, "
                "max_inline_bytes and max_inline_response_bytes at least 0"
            )
        if not results_timeout >= 0:
            raise ConfigurationError("results_timeout must be >= 0 seconds")
        self.embed_model = embed_model
        self.state_path = Path(state_path)
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.max_inline_bytes = max_inline_bytes
        self.max_inline_response_bytes = max_inline_response_bytes
        self.max_items_per_job = max_items_per_job
        self.results_timeout = results_timeout
        self.fallback_online = fallback_online
        self.deliver_batch_size = deliver_batch_size
        self.on_event = on_event
        self.spec = model_spec(embed_model.model_name)
        self._sleep = sleep
        self._clock = clock
        self._run_id = uuid.uuid4().hex[:10]
        self._absent_since: dict[str, float] = {}
        _quiet_experimental_warning()
        self._submitted = 0
        self.caller = RetryingCaller(
            model=embed_model.model_name,
            policy=embed_model.engine.config.retry,
            limiter=QuotaLimiter(),  # the Batch API has its own quota
            usage=Usage(),
            clock=clock,
            sleep=sleep,
            secret=self._secret,
            what="batch",
        )

    # -- setup ---------------------------------------------------------------------------

    def _secret(self) -> str | None:
        key = self.embed_model.api_key
        return key.get_secret_value() if key is not None else None

    @property
    def client(self) -> genai.Client:
        client = self.embed_model.client
        if client.vertexai:
            raise ConfigurationError(
                "Batch embedding uses the Gemini Developer API's Batch API, which Vertex AI "
                "does not offer for embeddings: use online ingestion, or an API key without "
                "vertexai=True."
            )
        return client

    @property
    def _dimension(self) -> int:
        return self.embed_model.dimension

    def _fresh_state(self) -> BatchState:
        return BatchState(
            model=self.embed_model.model_name,
            dimension=self._dimension,
            fingerprint=dict(self.embed_model.fingerprint),
        )

    # -- state file ----------------------------------------------------------------------

    def load_state(self) -> BatchState:
        """The state file's jobs (an empty state if there is no file); no setup check.

        Raises:
            BatchStateError: the file is not a batch state file, is damaged, or has
                another schema version.
        """
        try:
            raw = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self._fresh_state()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BatchStateError(
                f"Batch state file {self.state_path} is not valid JSON ({exc}). Its jobs cannot "
                "be resumed: delete the file (unfinished keys are then resubmitted)."
            ) from None
        return BatchState.from_json(data, path=self.state_path)

    def _save(self, state: BatchState) -> None:
        """Write atomically: a crash leaves the old or the new file, never half of one."""
        path = self.state_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        data = json.dumps(state.to_json(), ensure_ascii=False, separators=(",", ":"))
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    # -- API calls (all through the retry layer) -------------------------------------------

    async def _call(self, send: Callable[[], Awaitable[Any]], what: str) -> Any:
        """``send`` through the retry layer; an answer the SDK cannot read becomes a clear
        :class:`UnexpectedAnswerError` (never a raw ``KeyError``)."""

        async def guarded() -> Any:
            try:
                return await send()
            except _ODD_ANSWERS as exc:
                raise UnexpectedAnswerError(
                    f"The Gemini API's answer to {what} could not be read by the google-genai "
                    f"SDK ({type(exc).__name__}: {exc}). Run again (the batch state is kept); "
                    "if it persists, upgrade google-genai."
                ) from exc

        return await self.caller.call(guarded, items=0, tokens=0)

    @property
    def api_version(self) -> str:
        """The user's ``api_version``, else :data:`BATCH_API_VERSION` (v1beta)."""
        return self.embed_model.api_version or BATCH_API_VERSION

    def _http_options(self, size_bytes: int = 0) -> types.HttpOptions:
        """The batch API version, and a timeout that lets ``size_bytes`` move at >= 1 MB/s."""
        base = self.embed_model.timeout
        timeout = None
        if base is not None and size_bytes > 0:
            timeout = round(max(base, 60.0 + size_bytes / 1_000_000) * 1000)
        return types.HttpOptions(api_version=self.api_version, timeout=timeout)

    def _result_bytes(self, record: JobRecord) -> int:
        return expected_result_bytes(len(record.keys), self._dimension)

    async def _files(self, method: str, **kwargs: Any) -> Any:
        """``client.aio.files.<method>``, or the sync one in a thread on SDKs without it."""
        client = self.client
        aio_method = getattr(client.aio.files, method, None)
        if aio_method is not None:
            return await aio_method(**kwargs)
        return await asyncio.to_thread(getattr(client.files, method), **kwargs)

    async def _get(self, record: JobRecord) -> types.BatchJob | None:
        """The job, or None when the API no longer knows it (404).

        The timeout is sized for the job's results, which a succeeded job may carry inline.
        """
        name = record.name
        assert name is not None
        config = types.GetBatchJobConfig(
            http_options=self._http_options(self._result_bytes(record))
        )
        try:
            job: types.BatchJob = await self._call(
                lambda: self.client.aio.batches.get(name=name, config=config),
                f"getting batch job {name}",
            )
        except GeminiAPIError as exc:
            if exc.code == 404:
                return None
            raise
        return job

    async def _lookup(self, display_names: Collection[str]) -> dict[str, types.BatchJob]:
        """Jobs created under these display names (creates whose answer was lost).

        One listing for all names; not retried by itself (callers wrap it in ``_call``).
        """
        wanted = set(display_names)
        found: dict[str, types.BatchJob] = {}
        size = _LIST_PAGE_SIZE * self.max_inline_response_bytes
        config = types.ListBatchJobsConfig(
            page_size=_LIST_PAGE_SIZE, http_options=self._http_options(size)
        )
        pager = await self.client.aio.batches.list(config=config)
        async for job in pager:
            if job.display_name in wanted:
                found[job.display_name] = job
                if len(found) == len(wanted):
                    break
        return found

    async def _create(
        self, display_name: str, src: types.EmbeddingsBatchJobSource, size_bytes: int
    ) -> types.BatchJob:
        attempts = 0
        config = types.CreateEmbeddingsBatchJobConfig(
            display_name=display_name, http_options=self._http_options(size_bytes)
        )

        async def send() -> types.BatchJob:
            nonlocal attempts
            attempts += 1
            if attempts > 1:  # the previous attempt may have created it: never pay twice
                found = await self._lookup([display_name])
                if display_name in found:
                    return found[display_name]
            return await self.client.aio.batches.create_embeddings(
                model=self.embed_model.model_name, src=src, config=config
            )

        job: types.BatchJob = await self._call(send, f"creating batch job {display_name}")
        return job

    async def _upload(self, payload: bytes, display_name: str) -> str:
        """Upload a JSONL input file; returns its name (``files/…``).

        Tries each of :data:`JSONL_MIME_TYPES` in turn: the Files API has refused the
        documented ``application/jsonl`` (400 "Unsupported MIME type") or answered it
        without a file; ``text/plain`` is accepted everywhere.
        """
        problems: list[str] = []
        for mime_type in JSONL_MIME_TYPES:
            config = types.UploadFileConfig(
                mime_type=mime_type,
                display_name=display_name,
                http_options=self._http_options(len(payload)),
            )
            try:
                uploaded = await self._call(
                    functools.partial(
                        self._files, "upload", file=io.BytesIO(payload), config=config
                    ),
                    f"uploading the batch input file as {mime_type}",
                )
            except UnexpectedAnswerError as exc:
                problems.append(f"{mime_type}: {exc}")
                continue
            except GeminiAPIError as exc:
                if type(exc) is not GeminiAPIError or exc.code != 400:
                    raise
                problems.append(f"{mime_type}: {exc}")
                continue
            name = getattr(uploaded, "name", None)
            if isinstance(name, str) and name:
                if problems:
                    logger.info("Batch input uploaded as %s after: %s", mime_type, problems)
                return name
            problems.append(f"{mime_type}: the answer names no file")
        raise UnexpectedAnswerError(
            "The Files API did not accept the batch input file under any MIME type tried ("
            + "; ".join(problems)
            + "). Run again later (nothing was submitted), or ingest without --batch."
        )

    async def _forget_input(self, record: JobRecord) -> None:
        """Delete a finished job's input file (Files API storage is capped); best effort."""
        if record.input_file is None:
            return
        name = record.input_file
        config = types.DeleteFileConfig(http_options=self._http_options())
        try:
            await self._call(
                lambda: self._files("delete", name=name, config=config), f"deleting {name}"
            )
        except GeminiEmbedError as exc:
            logger.debug("Could not delete batch input file %s: %s", name, exc)

    # -- status / cancel -----------------------------------------------------------------

    def _status(self, record: JobRecord, error: str | None = None) -> JobStatus:
        return JobStatus(
            name=record.name,
            display_name=record.display_name,
            state=record.state,
            mode=record.mode,
            items=len(record.keys),
            tokens=record.tokens,
            created=record.created,
            updated=record.updated,
            error=error,
        )

    def _emit(self, record: JobRecord, error: str | None = None) -> None:
        if self.on_event is not None:
            self.on_event(self._status(record, error))

    @staticmethod
    def _apply(record: JobRecord, job: types.BatchJob) -> None:
        record.name = job.name or record.name
        record.state = short_state(job.state)
        record.created = _iso(job.create_time) or record.created
        record.updated = _iso(job.update_time) or record.updated

    async def status(self) -> list[JobStatus]:
        """The live state of every job in the state file (one GET each).

        Works whatever embedding setup wrote the file. A job the API no longer knows is
        shown as ``MISSING``; ``(not created)`` jobs were being created when a run stopped.
        """
        state = self.load_state()
        out: list[JobStatus] = []
        for record in state.jobs:
            if record.name is None:
                out.append(self._status(record))
                continue
            job = await self._get(record)
            if job is None:
                record.state = "MISSING"
                out.append(self._status(record, "the API no longer knows this job"))
                continue
            self._apply(record, job)
            out.append(self._status(record, _job_error(job)))
        if state.jobs:
            self._save(state)
        return out

    async def cancel(self, names: Collection[str] | None = None) -> list[JobStatus]:
        """Cancel unfinished jobs of the state file (all, or those named); returns their status.

        Cancelled (and failed/expired/missing) jobs leave the state file, so the next run
        resubmits their keys; a job that already SUCCEEDED stays, to be delivered.

        Raises:
            ConfigurationError: a name is not in the state file.
        """
        state = self.load_state()
        wanted = set(names) if names is not None else None
        if wanted is not None:
            known = {r.name for r in state.jobs} | {r.display_name for r in state.jobs}
            unknown = sorted(wanted - known)
            if unknown:
                raise ConfigurationError(
                    f"No job {', '.join(unknown)} in batch state file {self.state_path}; it "
                    f"holds: {', '.join(r.name or r.display_name for r in state.jobs) or 'none'}"
                )
        targets = [
            record
            for record in state.jobs
            if wanted is None or {record.name, record.display_name} & wanted
        ]
        lost = [record.display_name for record in targets if record.name is None]
        listed: dict[str, types.BatchJob] = (
            await self._call(lambda: self._lookup(lost), "listing batch jobs") if lost else {}
        )
        out: list[JobStatus] = []
        for record in targets:
            if record.name is None:
                found = listed.get(record.display_name)
                if found is None:  # the create never happened
                    record.state = "MISSING"
                    await self._drop(state, record)
                    out.append(self._status(record, "was never created"))
                    continue
                self._apply(record, found)
            assert record.name is not None
            name = record.name
            if record.state not in TERMINAL_STATES:
                await self._cancel_job(name)
            job = await self._get(record)
            if job is None:
                record.state = "MISSING"
            else:
                self._apply(record, job)
            if record.state in ("CANCELLED", "FAILED", "EXPIRED", "MISSING"):
                await self._drop(state, record)
            else:
                self._save(state)
            out.append(self._status(record, _job_error(job) if job is not None else None))
        return out

    async def _cancel_job(self, name: str) -> None:
        config = types.CancelBatchJobConfig(http_options=self._http_options())
        try:
            await self._call(
                lambda: self.client.aio.batches.cancel(name=name, config=config),
                f"cancelling batch job {name}",
            )
        except GeminiAPIError as exc:
            if exc.code != 404:
                raise

    async def _drop(self, state: BatchState, record: JobRecord) -> None:
        state.jobs.remove(record)
        self._save(state)
        await self._forget_input(record)

    # -- run ------------------------------------------------------------------------------

    async def run(
        self,
        items: Sequence[tuple[str, TextSpec]],
        on_vectors: OnVectors,
        *,
        wait: bool = True,
        max_wait: float | None = None,
    ) -> BatchRunReport:
        """Embed ``items`` (``(key, TextSpec)``) through batch jobs; deliver to ``on_vectors``.

        Re-attaches to the state file's jobs, submits jobs for keys none covers, then polls
        until all are done (``wait=False``: one pass; ``max_wait``: seconds of polling,
        then it returns with ``pending_keys``, jobs kept for the next run). As each job
        finishes, its vectors are awaited into ``on_vectors``; only then does the job leave
        the state file.

        Raises:
            BatchStateError: the state file belongs to another setup or is unreadable.
            ConfigurationError: duplicate keys, or a Vertex AI client.
            GeminiAPIError: submitting or polling failed after retries (state is kept:
                run again to resume). Exceptions from ``on_vectors`` propagate likewise.
        """
        started = self._clock()
        report = BatchRunReport(
            model=self.embed_model.model_name,
            requested=len(items),
            batch_price_per_million=self.spec.batch_price_per_million_tokens,
            online_price_per_million=self.spec.price_per_million_tokens,
        )
        state = self.load_state()
        state.check_setup(
            self.embed_model.model_name,
            self._dimension,
            self.embed_model.fingerprint,
            path=self.state_path,
        )
        if not state.jobs:
            state = self._fresh_state()
        run = _Run(report, on_vectors)
        self._prepare(items, run)
        try:
            if run.requested or state.jobs:
                _ = self.client  # refuse Vertex before anything is written
            await self._reconcile(state)
            report.jobs_reattached = len(state.jobs)
            digests = {key: item.digest for key, item in run.requested.items()}
            covered = covered_keys(state.jobs, digests)
            todo = [item for key, item in run.requested.items() if key not in covered]
            for plan in plan_jobs(
                todo,
                dimension=self.embed_model.output_dimensionality,
                max_items_per_job=self.max_items_per_job,
                max_inline_bytes=self.max_inline_bytes,
                result_dimension=self._dimension,
                max_inline_response_bytes=self.max_inline_response_bytes,
            ):
                await self._submit(plan, state)
                report.jobs_submitted += 1
            await self._poll(state, run, started=started, wait=wait, max_wait=max_wait)
        finally:
            report.wall_seconds = self._clock() - started
        return report

    def _prepare(self, items: Sequence[tuple[str, TextSpec]], run: _Run) -> None:
        engine = self.embed_model.engine
        seen: set[str] = set()
        for key, spec in items:
            if key in seen:
                raise ConfigurationError(
                    f"Key {key!r} appears twice in the batch input: keys must be unique"
                )
            seen.add(key)
            try:
                item = next(engine.prepare_items([spec]))
            except InputError as exc:
                run.report.failures.append(ItemFailure(key, type(exc).__name__, str(exc)))
                continue
            run.requested[key] = PlanItem(
                key=key,
                digest=item_digest(item.text, item.task_type, item.title),
                text=item.text,
                task_type=item.task_type,
                title=item.title,
                tokens=item.tokens,
            )
            run.specs[key] = spec

    async def _reconcile(self, state: BatchState) -> None:
        """Resolve jobs whose create call was in flight when a previous run stopped."""
        lost = [record for record in state.jobs if record.name is None]
        if not lost:
            return
        names = [record.display_name for record in lost]
        found: dict[str, types.BatchJob] = await self._call(
            lambda: self._lookup(names), "listing batch jobs"
        )
        for record in lost:
            job = found.get(record.display_name)
            if job is None:
                logger.info("Batch job %s was never created; resubmitting", record.display_name)
                await self._drop(state, record)
            else:
                self._apply(record, job)
                self._save(state)

    async def _submit(self, plan: JobPlan, state: BatchState) -> JobRecord:
        self._submitted += 1
        record = JobRecord(
            display_name=f"gemini-embed-{self._run_id}-{self._submitted:04d}",
            mode=plan.mode,
            keys=[(item.key, item.digest, item.tokens) for item in plan.items],
        )
        state.jobs.append(record)
        self._save(state)  # before create: a lost answer is found again by display name
        dimension = self.embed_model.output_dimensionality
        if plan.mode == "file":
            payload = jsonl_payload(plan.items, dimension)
            record.input_file = await self._upload(payload, f"{record.display_name}.jsonl")
            self._save(state)
            src = types.EmbeddingsBatchJobSource(file_name=record.input_file)
            size = 1024
        else:
            contents: list[types.Content] = [
                types.Content(parts=[types.Part(text=item.text)]) for item in plan.items
            ]
            src = types.EmbeddingsBatchJobSource(
                inlined_requests=types.EmbedContentBatch(
                    contents=contents,
                    config=types.EmbedContentConfig(
                        task_type=plan.task_type,
                        title=plan.title,
                        output_dimensionality=dimension,
                    ),
                )
            )
            size = sum(inline_request_bytes(item, dimension) for item in plan.items)
        job = await self._create(record.display_name, src, size)
        self._apply(record, job)
        self._save(state)
        logger.info(
            "Submitted batch job %s (%s, %d items)", record.name, record.mode, len(record.keys)
        )
        self._emit(record)
        return record

    async def _poll(
        self, state: BatchState, run: _Run, *, started: float, wait: bool, max_wait: float | None
    ) -> None:
        delay = self.poll_initial
        while True:
            for record in list(state.jobs):
                await self._check(record, state, run)
            if not state.jobs:
                return
            elapsed = self._clock() - started
            if not wait or (max_wait is not None and elapsed + delay > max_wait):
                break
            await self._sleep(delay)
            delay = next_poll_delay(delay, maximum=self.poll_max)
        report = run.report
        report.jobs_pending = len(state.jobs)
        for record in state.jobs:
            report.pending_keys.extend(k for k, d, _ in record.keys if run.wants(k, d))

    async def _check(self, record: JobRecord, state: BatchState, run: _Run) -> None:
        assert record.name is not None
        run.report.polls += 1
        job = await self._get(record)
        if job is None:
            record.state = "MISSING"
            await self._finish_unsuccessful(
                record, state, run, "the API no longer knows this job (deleted?)"
            )
            return
        before = record.state
        self._apply(record, job)
        if record.state != before:
            self._save(state)
            if record.state not in TERMINAL_STATES:
                self._emit(record)
        if record.state in _SUCCEEDED:
            results = await self._results(record, job)
            if results is None:
                await self._results_absent(record, state, run)
            else:
                await self._consume(record, results, state, run)
        elif record.state in TERMINAL_STATES:
            await self._finish_unsuccessful(record, state, run, _job_error(job))

    async def _results_absent(self, record: JobRecord, state: BatchState, run: _Run) -> None:
        """A SUCCEEDED job without results anywhere (yet): keep polling it with backoff,
        for ``results_timeout`` seconds of this run; only then embed its items online."""
        assert record.name is not None
        record.absent_polls += 1
        self._save(state)
        since = self._absent_since.setdefault(record.display_name, self._clock())
        waited = self._clock() - since
        if waited < self.results_timeout:
            logger.info(
                "Batch job %s reports %s but its results are not available yet (poll %d); "
                "polling again",
                record.name,
                record.state,
                record.absent_polls,
            )
            return
        report = run.report
        keys = [key for key, digest, _ in record.keys if run.wants(key, digest)]
        message = (
            f"Batch job {record.name} reported {record.state} but its results never appeared "
            f"(not inline, no results file) in {waited:.0f}s and {record.absent_polls} polls "
            f"(results_timeout={self.results_timeout:g}s): its {len(keys)} requested item(s)"
            f"{_sample(keys)} were embedded online at full price."
        )
        report.errors.append(message)
        report.jobs_results_missing += 1
        report.jobs.append(
            JobOutcome(record.name, record.state, record.mode, len(record.keys), message=message)
        )
        self._emit(record, "results missing")
        if keys:
            await self._embed_online(keys, run)
        self._absent_since.pop(record.display_name, None)
        await self._drop(state, record)

    async def _consume(
        self, record: JobRecord, results: _Results, state: BatchState, run: _Run
    ) -> None:
        """Deliver a succeeded job's vectors, retry its failed items online, then forget it."""
        assert record.name is not None
        report = run.report
        self._absent_since.pop(record.display_name, None)
        outcome = JobOutcome(record.name, record.state, record.mode, len(record.keys))
        good_keys: list[str] = []
        good_values: list[list[float]] = []
        retry: list[str] = []
        first_error = ""
        for key, digest, tokens in record.keys:
            value = results.values.get(key, "no result for this key")
            succeeded = not isinstance(value, str)
            if succeeded:
                report.batch_tokens += results.tokens.get(key, tokens)  # billed, even if unused
            if not run.wants(key, digest):
                outcome.stale += int(succeeded)
                continue
            if isinstance(value, str):
                retry.append(key)
                first_error = first_error or value
            else:
                good_keys.append(key)
                good_values.append(value)
        if good_values:
            vectors = normalise_rows(np.asarray(good_values, dtype=np.float64))
            await self._deliver(list(zip(good_keys, vectors, strict=True)), run)
            report.embedded_batch += len(good_keys)
        outcome.delivered = len(good_keys)
        outcome.item_errors = len(retry)
        report.item_errors += len(retry)
        report.stale_results += outcome.stale
        if retry:
            outcome.message = (
                f"{len(retry)} item(s) failed inside batch job {record.name} (first: "
                f"{first_error}); retried online"
            )
            report.errors.append(outcome.message)
            await self._embed_online(retry, run)
        report.jobs_succeeded += 1
        report.jobs.append(outcome)
        self._emit(record)
        await self._drop(state, record)

    async def _finish_unsuccessful(
        self, record: JobRecord, state: BatchState, run: _Run, reason: str | None
    ) -> None:
        """A FAILED/EXPIRED/CANCELLED/MISSING job: report its keys, fall back or resubmit later."""
        assert record.name is not None
        report = run.report
        keys = [key for key, digest, _ in record.keys if run.wants(key, digest)]
        message = (
            f"Batch job {record.name} ended {record.state}"
            f"{f' ({reason})' if reason else ''} holding {len(keys)} requested item(s)"
            f"{_sample(keys)}: "
        )
        if self.fallback_online and keys:
            message += "embedding them online now (fallback_online=True, full price)."
        else:
            message += (
                "they are resubmitted on the next run (or pass fallback_online=True to embed "
                "them online at once, at full price)."
            )
        report.errors.append(message)
        report.jobs.append(
            JobOutcome(record.name, record.state, record.mode, len(record.keys), message=message)
        )
        if record.state == "EXPIRED":
            report.jobs_expired += 1
        elif record.state == "CANCELLED":
            report.jobs_cancelled += 1
        else:
            report.jobs_failed += 1
        self._emit(record, reason)
        if self.fallback_online and keys:
            await self._embed_online(keys, run)
        else:
            error = f"BatchJob{record.state.title().replace('_', '')}"
            report.failures.extend(ItemFailure(key, error, message) for key in keys)
        await self._drop(state, record)

    async def _results(self, record: JobRecord, job: types.BatchJob) -> _Results | None:
        """The job's results, from whichever form arrived (inline or a results file,
        whatever mode it was submitted in); None when they are nowhere (yet)."""
        dest = job.dest
        if dest is not None:
            inline = dest.inlined_embed_content_responses or dest.inlined_responses
            if inline:
                return self._inline_results(record, list(inline))
            if dest.file_name:
                return await self._file_results(record, dest.file_name)
        return None

    def _inline_results(self, record: JobRecord, entries: list[Any]) -> _Results:
        """Inline results map by their ``metadata.key`` when they carry ours, else by
        position (inline requests carry no key; file lines are in key order)."""
        keys = [key for key, _, _ in record.keys]
        out = _Results()
        keyed = [_metadata_key(entry) for entry in entries]
        if keyed and all(key in set(keys) for key in keyed):
            pairs = list(zip(keyed, entries, strict=True))
        elif len(entries) == len(keys):
            pairs = list(zip(keys, entries, strict=True))
        else:
            error = (
                f"the job returned {len(entries)} results for {len(keys)} requests, so "
                "they cannot be matched by position"
            )
            out.values.update(dict.fromkeys(keys, error))
            return out
        for key, entry in pairs:
            if key is None or key in out.values:
                continue
            failure = getattr(entry, "error", None)
            if failure is not None:
                out.values[key] = _error_text(failure)
                continue
            answer = getattr(entry, "response", None)
            embedding = getattr(answer, "embedding", None)
            out.values[key] = self._vector(getattr(embedding, "values", None))
            tokens = _count(getattr(answer, "token_count", None))
            if tokens is not None:
                out.tokens[key] = tokens
        return out

    async def _file_results(self, record: JobRecord, file_name: str) -> _Results | None:
        """Results from a responses file; None when the file is not downloadable yet."""
        config = types.DownloadFileConfig(
            http_options=self._http_options(self._result_bytes(record))
        )
        try:
            data: bytes = await self._call(
                lambda: self._files("download", file=file_name, config=config),
                f"downloading {file_name}",
            )
        except GeminiAPIError as exc:
            if exc.code in (403, 404):  # the file is announced before it exists
                logger.info("Batch results file %s is not available yet: %s", file_name, exc)
                return None
            raise
        return self._parse_results_file(record, data)

    def _parse_results_file(self, record: JobRecord, data: bytes) -> _Results:
        """Lines ``{"key": …, "response": {"embedding": …, "tokenCount": …}}``, or an
        ``"error"``/``"status"`` object for a failed item. Our keys map directly; an
        inline job's results (no keys of ours) map by index key, else by line order."""
        keys = [key for key, _, _ in record.keys]
        wanted = set(keys)
        entries: list[dict[str, Any]] = []
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        line_keys = [entry.get("key") for entry in entries]
        if not any(key in wanted for key in line_keys):
            if all(isinstance(k, str) and k.isdigit() and int(k) < len(keys) for k in line_keys):
                line_keys = [keys[int(k)] for k in line_keys]  # type: ignore[arg-type]
            elif len(entries) == len(keys):
                line_keys = list(keys)
        out = _Results()
        for key, entry in zip(line_keys, entries, strict=True):
            if key not in wanted or key in out.values:
                continue
            failure = entry.get("error") or entry.get("status")
            if failure is not None and not entry.get("response"):
                out.values[key] = _error_text(failure)
                continue
            answer = entry.get("response")
            answer = answer if isinstance(answer, dict) else entry
            embedding = answer.get("embedding")
            out.values[key] = self._vector(
                embedding.get("values") if isinstance(embedding, dict) else None
            )
            tokens = _count(answer.get("tokenCount", answer.get("token_count")))
            if tokens is not None:
                out.tokens[key] = tokens
        for key in keys:
            out.values.setdefault(key, "no line for this key in the responses file")
        return out

    def _vector(self, values: object) -> list[float] | str:
        if not isinstance(values, list) or not values:
            return "the result has no embedding values"
        if len(values) != self._dimension:
            return f"the result has {len(values)} dimensions, expected {self._dimension}"
        return [float(v) for v in values]

    async def _deliver(self, pairs: list[tuple[str, list[float]]], run: _Run) -> None:
        for start in range(0, len(pairs), self.deliver_batch_size):
            part = pairs[start : start + self.deliver_batch_size]
            await run.on_vectors(part)
            run.delivered.update(key for key, _ in part)

    async def _embed_online(self, keys: list[str], run: _Run) -> None:
        """Embed ``keys`` through the online path (same engine as GeminiEmbedding) and deliver."""
        report = run.report
        resolved: set[str] = set()
        specs = [run.specs[key] for key in keys]
        try:
            async for outcome in self.embed_model.engine.stream(specs):
                batch_keys = [keys[index] for index in outcome.indices]
                resolved.update(batch_keys)
                if outcome.error is not None:
                    error = outcome.error
                    report.failures.extend(
                        ItemFailure(key, type(error).__name__, str(error)) for key in batch_keys
                    )
                    continue
                assert outcome.vectors is not None
                await self._deliver(list(zip(batch_keys, outcome.vectors, strict=True)), run)
                report.embedded_online += len(batch_keys)
                report.online_tokens += outcome.tokens
        except GeminiEmbedError as exc:  # fatal (bad key, per-day quota): the rest failed
            report.failures.extend(
                ItemFailure(key, type(exc).__name__, str(exc))
                for key in keys
                if key not in resolved
            )


@dataclass
class _Results:
    """A job's results: key → raw vector or error text; key → billed tokens if reported."""

    values: dict[str, list[float] | str] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)


def _metadata_key(entry: object) -> str | None:
    metadata = getattr(entry, "metadata", None)
    key = metadata.get("key") if isinstance(metadata, dict) else None
    return None if key is None else str(key)


def _error_text(failure: object) -> str:
    """``"code: message"`` from an error/status object (SDK type or JSON dict)."""
    if isinstance(failure, dict):
        code, message = failure.get("code"), failure.get("message")
    else:
        code, message = getattr(failure, "code", None), getattr(failure, "message", None)
    if code is None and message is None:
        return str(failure)
    return f"{code}: {message}" if code is not None else str(message)


def _count(value: object) -> int | None:
    """A token count as the API spells it (int64 as a JSON string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _usd(amount: float) -> str:
    """Dollars, with enough digits to show small test-sized amounts."""
    return f"${amount:.4f}" if amount >= 0.01 or amount == 0 else f"${amount:.6f}"


def _sample(keys: Sequence[str], limit: int = 3) -> str:
    if not keys:
        return ""
    more = ", …" if len(keys) > limit else ""
    return f" ({', '.join(keys[:limit])}{more})"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _job_error(job: types.BatchJob) -> str | None:
    if job.error is None:
        return None
    return f"{job.error.code}: {job.error.message}" if job.error.code else job.error.message


def estimate_batch_cost(tokens: int, model: str) -> dict[str, float]:
    """Batch cost, online cost and saving in USD for ``tokens`` of ``model`` (dry runs).

    >>> estimate_batch_cost(1_000_000, "gemini-embedding-001")
    {'batch_usd': 0.075, 'online_usd': 0.15, 'saving_usd': 0.075}
    """
    cost = batch_cost(tokens, model_spec(model))
    return {
        "batch_usd": cost.batch_usd,
        "online_usd": cost.online_usd,
        "saving_usd": cost.saving_usd,
    }
