"""Half-price bulk embedding through the Gemini Batch API: submit, persist, poll, deliver.

    from llama_index_gemini_embed._batch.jobs import BatchEmbedder, BatchOptions

    batch = BatchEmbedder(embed, Path("chroma/.gemini-batch-docs.json"),
                          options=BatchOptions(max_wait=3600))
    report = await batch.run([(node_id, embed.node_input(node)), ...], upsert)
    print(report.summary())                   # jobs, batch vs online items, cost and saving
    for job in await batch.status():          # `gemini-embed batch status`
        print(job.line())
    await batch.cancel()                      # `gemini-embed batch cancel [NAME ...]`

The package's layout: :mod:`.plan` packs items into jobs (pure), :mod:`.state` keeps the
state file, :mod:`.api` makes the (retried, versioned, sized) API calls, :mod:`.results`
reads results in any form, :mod:`.report` says what happened; this module runs the loop.

* **Same vectors as online.** Items are prepared by the online engine (prefixes, task
  type, title only with RETRIEVAL_DOCUMENT, dimension) and L2-normalised the same way.
* **Resumable, never paid twice.** A job's record (keys, digests, tokens) is written to
  the state file before it is created; a run re-attaches to every recorded job and only
  submits keys no live job covers. A job leaves the file only after its vectors were
  delivered (idempotent upserts), so a crash re-delivers instead of losing vectors.
  A SUCCEEDED job whose results are not there yet is re-polled for ``results_timeout``
  before its items are embedded online (and the report says so).
* **Failures.** Per-item errors are retried online at once. FAILED/EXPIRED/CANCELLED jobs
  are reported with their keys and resubmitted by the next run, or embedded online now
  with ``fallback_online=True``.

Why ~700 lines in one module: the run loop, status and cancel share the record bookkeeping
(``_apply``/``_drop``/``_emit``) and read best in one place.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from google.genai import types

from llama_index_gemini_embed._calls import Clock, Sleep
from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding, announce_embedded
from llama_index_gemini_embed._embedding.engine import TextSpec, normalise_rows
from llama_index_gemini_embed._errors import ConfigurationError, GeminiEmbedError, InputError
from llama_index_gemini_embed._models import model_spec

from .api import BATCH_API_VERSION, JSONL_MIME_TYPES, BatchAPI
from .options import BatchOptions
from .plan import (
    JobPlan,
    PlanItem,
    batch_cost,
    expected_result_bytes,
    inline_request_bytes,
    item_digest,
    jsonl_payload,
    next_poll_delay,
    plan_jobs,
)
from .report import BatchRunReport, ItemFailure, JobOutcome, JobStatus, sample
from .results import Results, inline_results, parse_results_file
from .state import (
    TERMINAL_STATES,
    BatchState,
    BatchStateError,
    JobRecord,
    covered_keys,
    load_state,
    save_state,
    short_state,
)

__all__ = [
    "BATCH_API_VERSION",
    "JSONL_MIME_TYPES",
    "BatchEmbedder",
    "BatchOptions",
    "BatchRunReport",
    "BatchStateError",
    "ItemFailure",
    "JobOutcome",
    "JobStatus",
    "OnVectors",
    "estimate_batch_cost",
]

logger = logging.getLogger("llama_index_gemini_embed")

OnVectors = Callable[[list[tuple[str, list[float]]]], Awaitable[None]]
"""Receives ``(key, normalised vector)`` pairs; must be idempotent (e.g. a store upsert)."""

_SUCCEEDED = frozenset({"SUCCEEDED", "PARTIALLY_SUCCEEDED"})


@dataclass
class _Run:
    report: BatchRunReport
    on_vectors: OnVectors
    requested: dict[str, PlanItem] = field(default_factory=dict)
    specs: dict[str, TextSpec] = field(default_factory=dict)
    delivered: set[str] = field(default_factory=set)
    with_media: list[str] = field(default_factory=list)
    """Keys whose items carry media: embedded online (the batch path carries text only)."""

    def wants(self, key: str, digest: str) -> bool:
        item = self.requested.get(key)
        return item is not None and item.digest == digest and key not in self.delivered

    def wanted(self, record: JobRecord) -> list[str]:
        """The record's keys this run still asks for (same text, not yet delivered)."""
        return [key for key, digest, _ in record.keys if self.wants(key, digest)]


# ----------------------------------------------------------------------------- embedder


class BatchEmbedder:
    """Embeds many texts through the Gemini Batch API at half the online price.

    Args:
        embed_model: the ``GeminiEmbedding`` whose model, dimension, task types, client
            and retry policy are used (its engine embeds the online fallbacks).
        state_path: the JSON state file of this corpus' jobs (one per collection).
        options: the :class:`BatchOptions` (polling, sizes, fallback, ``on_event``…);
            ``options.state_path`` is not used here (the caller resolved it).
        sleep / clock: injectable for tests (also used by the retry layer); default: the
            options', else the embedding model's injected ones, else real time.
    """

    def __init__(
        self,
        embed_model: GeminiEmbedding,
        state_path: str | os.PathLike[str],
        *,
        options: BatchOptions | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.embed_model = embed_model
        self.state_path = Path(state_path)
        self.options = options = options or BatchOptions()
        self.spec = model_spec(embed_model.model_name)
        sleep = sleep or options.sleep or embed_model._sleep or asyncio.sleep
        clock = clock or options.clock or embed_model._clock or time.monotonic
        self._sleep, self._clock = sleep, clock
        self._run_id = uuid.uuid4().hex[:10]
        self._absent_since: dict[str, float] = {}
        self._submitted = 0
        self.api = BatchAPI(
            embed_model,
            max_inline_response_bytes=self.options.max_inline_response_bytes,
            sleep=sleep,
            clock=clock,
        )

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
        return load_state(self.state_path, fresh=self._fresh_state())

    def _save(self, state: BatchState) -> None:
        save_state(self.state_path, state)

    def _result_bytes(self, record: JobRecord) -> int:
        return expected_result_bytes(len(record.keys), self._dimension)

    async def _get(self, record: JobRecord) -> types.BatchJob | None:
        assert record.name is not None
        return await self.api.get(record.name, result_bytes=self._result_bytes(record))

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
        if self.options.on_event is not None:
            self.options.on_event(self._status(record, error))

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
        listed = await self.api.lookup(lost) if lost else {}
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
                await self.api.cancel(name)
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

    async def _drop(self, state: BatchState, record: JobRecord) -> None:
        state.jobs.remove(record)
        self._save(state)
        if record.input_file is not None:
            await self.api.delete_file(record.input_file)

    # -- run ------------------------------------------------------------------------------

    async def run(
        self,
        items: Sequence[tuple[str, TextSpec]],
        on_vectors: OnVectors,
        *,
        wait: bool | None = None,
        max_wait: float | None = None,
    ) -> BatchRunReport:
        """Embed ``items`` (``(key, TextSpec)``) through batch jobs; deliver to ``on_vectors``.

        Re-attaches to the state file's jobs, submits jobs for keys none covers, then polls
        until all are done (``wait=False``: one pass; ``max_wait``: seconds of polling,
        then it returns with ``pending_keys``, jobs kept for the next run; both default to
        the options'). As each job
        finishes, its vectors are awaited into ``on_vectors``; only then does the job leave
        the state file.

        Raises:
            BatchStateError: the state file belongs to another setup or is unreadable.
            ConfigurationError: duplicate keys, or a Vertex AI client.
            GeminiAPIError: submitting or polling failed after retries (state is kept:
                run again to resume). Exceptions from ``on_vectors`` propagate likewise.
        """
        started = self._clock()
        wait = self.options.wait if wait is None else wait
        max_wait = self.options.max_wait if max_wait is None else max_wait
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
                _ = self.api.client  # refuse Vertex before anything is written
            await self._reconcile(state)
            report.jobs_reattached = len(state.jobs)
            digests = {key: item.digest for key, item in run.requested.items()}
            covered = covered_keys(state.jobs, digests)
            todo = [item for key, item in run.requested.items() if key not in covered]
            for plan in plan_jobs(
                todo,
                dimension=self.embed_model.output_dimensionality,
                max_items_per_job=self.options.max_items_per_job,
                max_inline_bytes=self.options.max_inline_bytes,
                result_dimension=self._dimension,
                max_inline_response_bytes=self.options.max_inline_response_bytes,
            ):
                await self._submit(plan, state)
                report.jobs_submitted += 1
            if run.with_media:
                keys = run.with_media
                report.errors.append(
                    f"{len(keys)} item(s) with media{sample(keys)} embedded online at full "
                    "price: the Batch API path sends text only."
                )
                await self._embed_online(keys, run)
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
                item = next(engine.prepare_items([spec], with_media=True))
            except InputError as exc:
                run.report.failures.append(ItemFailure(key, type(exc).__name__, str(exc)))
                continue
            run.specs[key] = spec
            if item.media:  # never embedded as its text alone
                run.with_media.append(key)
                continue
            run.requested[key] = PlanItem(
                key=key,
                digest=item_digest(item.text, item.task_type, item.title),
                text=item.text,
                task_type=item.task_type,
                title=item.title,
                tokens=item.tokens,
            )

    async def _reconcile(self, state: BatchState) -> None:
        """Resolve jobs whose create call was in flight when a previous run stopped."""
        lost = [record for record in state.jobs if record.name is None]
        if not lost:
            return
        names = [record.display_name for record in lost]
        found = await self.api.lookup(names)
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
            record.input_file = await self.api.upload(payload, f"{record.display_name}.jsonl")
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
        job = await self.api.create(record.display_name, src, size_bytes=size)
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
        delay = self.options.poll_initial
        while True:
            for record in list(state.jobs):
                await self._check(record, state, run)
            if not state.jobs:
                return
            elapsed = self._clock() - started
            if not wait or (max_wait is not None and elapsed + delay > max_wait):
                break
            await self._sleep(delay)
            delay = next_poll_delay(delay, maximum=self.options.poll_max)
        report = run.report
        report.jobs_pending = len(state.jobs)
        for record in state.jobs:
            report.pending_keys.extend(run.wanted(record))

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
        if waited < self.options.results_timeout:
            logger.info(
                "Batch job %s reports %s but its results are not available yet (poll %d); "
                "polling again",
                record.name,
                record.state,
                record.absent_polls,
            )
            return
        report = run.report
        keys = run.wanted(record)
        message = (
            f"Batch job {record.name} reported {record.state} but its results never appeared "
            f"(not inline, no results file) in {waited:.0f}s and {record.absent_polls} polls "
            f"(results_timeout={self.options.results_timeout:g}s): its {len(keys)} requested "
            f"item(s){sample(keys)} were embedded online at full price."
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
        self, record: JobRecord, results: Results, state: BatchState, run: _Run
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
            # Token counters and observability see batch-embedded texts too (issue 11 item 6).
            texts = [run.specs[k].text if k in run.specs else "" for k in good_keys]
            announce_embedded(self.embed_model, texts, vectors)
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
        keys = run.wanted(record)
        message = (
            f"Batch job {record.name} ended {record.state}"
            f"{f' ({reason})' if reason else ''} holding {len(keys)} requested item(s)"
            f"{sample(keys)}: "
        )
        if self.options.fallback_online and keys:
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
        if self.options.fallback_online and keys:
            await self._embed_online(keys, run)
        else:
            error = f"BatchJob{record.state.title().replace('_', '')}"
            report.failures.extend(ItemFailure(key, error, message) for key in keys)
        await self._drop(state, record)

    async def _results(self, record: JobRecord, job: types.BatchJob) -> Results | None:
        """The job's results, from whichever form arrived (inline or a results file,
        whatever mode it was submitted in); None when they are nowhere (yet)."""
        keys = [key for key, _, _ in record.keys]
        dest = job.dest
        if dest is not None:
            inline = dest.inlined_embed_content_responses or dest.inlined_responses
            if inline:
                return inline_results(keys, list(inline), dimension=self._dimension)
            if dest.file_name:
                data = await self.api.download(
                    dest.file_name, result_bytes=self._result_bytes(record)
                )
                if data is not None:
                    return parse_results_file(keys, data, dimension=self._dimension)
        return None

    async def _deliver(self, pairs: list[tuple[str, list[float]]], run: _Run) -> None:
        size = self.options.deliver_batch_size
        for start in range(0, len(pairs), size):
            part = pairs[start : start + size]
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
                sent = [specs[index] for index in outcome.indices]
                engine = self.embed_model.engine
                report.add_online(list(engine.prepare_items(sent, with_media=True)), outcome.tokens)
        except GeminiEmbedError as exc:  # fatal (bad key, per-day quota): the rest failed
            report.failures.extend(
                ItemFailure(key, type(exc).__name__, str(exc))
                for key in keys
                if key not in resolved
            )


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
