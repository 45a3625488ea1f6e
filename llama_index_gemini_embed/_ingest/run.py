"""The ingestion run loop: read windows, plan them, embed what changed, write behind.

    run = IngestRun(source, embed, store, steps, settings, show_progress=True, unbound=False)
    await run.execute(None, wait=True)            # producer + streaming consumer
    run.report                                    # what happened

One producer task reads the input in windows (small first, then doubling), splits them into
identified chunks (:mod:`.chunks`), and asks the store which chunks it already holds
(:mod:`.plan` decides). Chunks to embed wait in a bounded ``ready`` queue; the
consumer streams them through the embedding engine, and a writer task stores each answered
batch behind the stream, so a slow store does not hold up the requests. Stale chunks of a
window are deleted once every chunk of that window is resolved. Fatal API errors stop the
run after everything already paid for is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.schema import (
    BaseNode,
    Document,
    TransformComponent,
)

from llama_index_gemini_embed._batch.jobs import BatchEmbedder, BatchRunReport
from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
from llama_index_gemini_embed._embedding.engine import FATAL_ERRORS, TextSpec
from llama_index_gemini_embed._embedding.media import check_media, media_tokens, modality
from llama_index_gemini_embed._errors import (
    ConfigurationError,
    GeminiAPIError,
    InputError,
    MediaError,
    StoreError,
    TextTooLongError,
)
from llama_index_gemini_embed._models import model_spec
from llama_index_gemini_embed._tasks import wire_text
from llama_index_gemini_embed._tokens import estimate_tokens

from .chunks import Chunker
from .media import is_media
from .plan import (
    NodePlan,
    RequestEstimate,
    estimate_requests,
    plan_nodes,
)
from .report import IngestReport, Progress, record_failures
from .seen import DEFAULT_MEMORY_LIMIT_IDS
from .sources import SourceInput
from .writer import (
    IngestStore,
    Pending,
    StoreWriter,
    Window,
    WriteQueue,
    new_node_ids,
    set_vector,
)

__all__ = ["IngestRun", "RunSettings"]

logger = logging.getLogger("llama_index_gemini_embed")

FIRST_WINDOW_DOCS = 200
"""The first window reads at most this many documents (then 400, 800, ... up to window_docs)."""
FIRST_WINDOW_CHARS = 200_000


# ----------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class RunSettings:
    """How one run reads, plans and writes (derived from :func:`aingest`'s arguments)."""

    delete_missing: bool
    dry_run: bool
    window_chars: int
    window_docs: int
    lookahead: int
    """Chunks planned ahead of the requests, at most (the producer waits beyond)."""
    write_capacity: int
    """Chunks that may be answered and not yet stored (``writer.write_capacity``)."""
    memory_limit_ids: int = DEFAULT_MEMORY_LIMIT_IDS
    """Document ids held in memory before they spill to disk (:class:`.seen.SeenIds`)."""


class _FatalStop(Exception):
    """Internal: carries the fatal error out of the consumer loop."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class IngestRun:
    """State of one ingestion run (producer task + streaming consumer)."""

    def __init__(
        self,
        source: SourceInput,
        embed_model: GeminiEmbedding,
        store: IngestStore,
        transformations: Sequence[TransformComponent],
        settings: RunSettings,
        *,
        show_progress: bool,
        unbound: bool,
    ) -> None:
        self.source = source
        self.embed_model = embed_model
        self.store = store
        self.settings = settings
        self.report = IngestReport(dry_run=settings.dry_run)
        self.chunker = Chunker(
            embed_model, transformations, memory_limit_ids=settings.memory_limit_ids
        )
        self.model = model_spec(embed_model.model_name)
        self.ready: deque[Pending] = deque()
        self.ready_changed = asyncio.Event()
        self.space_freed = asyncio.Event()
        self.producer_done = False
        self.docs_planned = 0
        self.windows_read = 0
        self.estimate = RequestEstimate()
        self.media_estimate: dict[str, int] = {}
        """Dry run: estimated media tokens per modality (the rest of the estimate is text)."""
        self.progress = Progress(show_progress, source.total)
        self.writer = StoreWriter(store, embed_model, self.report, self.progress, unbound=unbound)
        self.fatal: BaseException | None = None
        """The error that stopped the run (bad key, per-day quota, store failure), if any."""

    # -- the whole run -------------------------------------------------------------------

    async def execute(self, embedder: BatchEmbedder | None, *, wait: bool) -> BatchRunReport | None:
        """Read, plan, embed and write everything; a fatal error ends up in ``self.fatal``.

        Returns the Batch API run report in batch mode (``embedder`` given), else None.
        """
        producer = asyncio.create_task(self.produce())
        result: BatchRunReport | None = None
        try:
            if self.settings.dry_run:
                await producer
            else:
                result = await self._consume_while_producing(producer, embedder, wait=wait)
            self.progress.finished_input()
            if (nothing := self.source.nothing_readable()) is not None:
                raise nothing
            if self.settings.delete_missing:
                await self.delete_removed()
        except _FatalStop as stop:
            self.fatal = stop.error
        except (StoreError, GeminiAPIError) as error:  # batch mode: job create/poll failed
            self.fatal = error
        finally:
            if not producer.done():
                producer.cancel()
                with contextlib.suppress(BaseException):
                    await producer
            self.progress.close()
            self.chunker.close()  # the ids seen: memory and their spill directory
        media_skipped = self.source.media_skipped
        self.report.media_skipped = dict(media_skipped)
        self.report.files_skipped = len(self.source.skipped_files) - sum(media_skipped.values())
        if not self.settings.dry_run:
            self.report.pending += len(self.ready)
        return result

    async def _consume_while_producing(
        self, producer: asyncio.Task[None], embedder: BatchEmbedder | None, *, wait: bool
    ) -> BatchRunReport | None:
        consuming: Coroutine[Any, Any, BatchRunReport | None] = (
            self.consume_batch(embedder, wait=wait) if embedder is not None else self.consume()
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
        return consumed

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
        chunks = await asyncio.to_thread(self.chunker.split, docs)
        doc_ids = sorted({doc.id_ for doc in docs})
        stored = await self.store.aget_index(doc_ids)
        plan = plan_nodes((planned for _, _, planned in chunks), stored)
        report.nodes += len(chunks)
        for node, _, _ in chunks:
            modality = str(node.metadata["modality"]) if is_media(node) else "text"
            report.modalities[modality] = report.modalities.get(modality, 0) + 1
        report.skipped += len(plan.skip)
        report.empty += len(plan.empty)
        self.progress.planned(len(chunks), self.docs_planned, len(plan.skip) + len(plan.empty))
        by_id = {node.node_id: (node, spec) for node, spec, _ in chunks}
        window = Window(stale=list(plan.stale))
        if self.settings.dry_run:
            self._estimate(plan, by_id)
            report.deleted += len(plan.stale)
            return
        self._refuse_unstorable(plan, by_id)
        self._refuse_media(plan, by_id)
        to_embed = await self._write_reused(plan, by_id)
        stored_ids = {node_id for entries in stored.values() for node_id in entries}
        for node_id in to_embed:
            node, spec = by_id[node_id]
            assert spec is not None
            if self._too_long(spec):
                report.to_embed += 1
                record_failures(
                    self.report,
                    [node],
                    TextTooLongError(
                        f"about {estimate_tokens(spec.text)} tokens, over {self.model.name}'s "
                        f"input limit of {self.model.max_input_tokens} (on_overlength='raise')"
                    ),
                )
                continue
            window.outstanding += 1
            self.ready.append(Pending(node, spec, window, new=node_id not in stored_ids))
        report.to_embed += window.outstanding
        self.ready_changed.set()
        if window.outstanding == 0:
            await self.writer.window_done(window)
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
                record_failures(
                    self.report, [node], InputError(f"this chunk cannot be stored: {exc}")
                )
        if refused:
            plan.embed = [node_id for node_id in plan.embed if node_id not in refused]
            plan.reuse = {k: v for k, v in plan.reuse.items() if k not in refused}

    def _refuse_media(
        self, plan: NodePlan, by_id: Mapping[str, tuple[BaseNode, TextSpec | None]]
    ) -> None:
        """Fail media the API would refuse (a video over 120 s...) alone, before paying.

        Checked per chunk: in a request, one refused item would fail all its neighbours.
        """
        refused: set[str] = set()
        for node_id in plan.embed:
            node, spec = by_id[node_id]
            if spec is None or not is_media(node):
                continue
            try:
                check_media(
                    self.chunker.wire_spec(node, spec).media,  # read, checked, dropped
                    model=self.model.name,
                    multimodal=self.model.accepts_media,
                    index=0,
                )
            except MediaError as exc:
                refused.add(node_id)
                self.report.to_embed += 1
                record_failures(self.report, [node], exc)
        if refused:
            plan.embed = [node_id for node_id in plan.embed if node_id not in refused]

    def _estimate(
        self, plan: NodePlan, by_id: Mapping[str, tuple[BaseNode, TextSpec | None]]
    ) -> None:
        report = self.report
        chunks = [by_id[node_id] for node_id in plan.embed]
        estimate_requests(
            # media bytes are read one chunk at a time, to count their tokens
            (self.chunker.wire_spec(node, spec) for node, spec in chunks if spec is not None),
            self.model,
            max_items=_max_items(self.embed_model),
            max_tokens=_max_tokens(self.embed_model),
            into=self.estimate,
            per_item_titles=self.embed_model.engine.config.per_item_titles,
            media_tokens=self._media_tokens,
        )
        report.to_embed = self.estimate.items
        report.reused += len(plan.reuse)
        self.progress.resolved(len(plan.embed) + len(plan.reuse))

    def _media_tokens(self, spec: object) -> int:
        """A spec's media tokens, also counted per modality for the dry run's cost."""
        total = 0
        for part in getattr(spec, "media", ()):
            tokens = media_tokens([part])
            kind = modality(part.mime_type) or "other"
            self.media_estimate[kind] = self.media_estimate.get(kind, 0) + tokens
            total += tokens
        return total

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
                await self.writer.write(nodes)
                self.report.reused += len(nodes)
                self.progress.resolved(len(nodes))
        return to_embed

    # -- consuming: embed and write as each request returns ------------------------------

    async def consume(self) -> None:
        """Embed ready chunks; a writer task stores each answered batch behind the stream.

        Writing behind (up to ``write_capacity`` chunks) keeps requests going out while the
        store writes, instead of one write per answer holding up the next request.
        """
        writes = WriteQueue(self.settings.write_capacity)
        writer = asyncio.create_task(self.writer.write_behind(writes))
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

    async def _consume_stream(self, writes: WriteQueue, writer: asyncio.Task[None]) -> None:
        engine = self.embed_model.engine
        while True:
            if not self.ready:
                if self.producer_done:
                    return
                self.ready_changed.clear()
                await self.ready_changed.wait()
                continue
            taken: dict[int, Pending] = {}
            stream = engine.stream(self._drain_ready(taken))
            try:
                async with _closing(stream):
                    async for outcome in stream:
                        batch = [taken.pop(i) for i in outcome.indices]
                        if outcome.error is not None:
                            record_failures(self.report, [p.node for p in batch], outcome.error)
                        else:
                            assert outcome.vectors is not None
                            for pending, vector in zip(batch, outcome.vectors, strict=True):
                                set_vector(pending.node, vector)
                        try:
                            await self._queue_write(writes, writer, batch)
                        except BaseException:
                            if outcome.error is None:  # answered, never handed to the writer
                                self.report.pending += len(batch)
                            raise
            except FATAL_ERRORS as error:  # nothing else can succeed: stop cleanly
                raise _FatalStop(error) from error
            finally:
                # Chunks handed to the engine but never answered (fatal stop, crash).
                self.report.pending += len(taken)

    @staticmethod
    async def _queue_write(
        writes: WriteQueue,
        writer: asyncio.Task[None],
        batch: list[Pending] | None,
    ) -> None:
        if writer.done():
            writer.result()  # a failed write stops the run (raises); else the writer is gone
            raise RuntimeError("the ingestion writer stopped early")
        if writes.has_room(batch):
            writes.put_nowait(batch)
            return
        put = asyncio.ensure_future(writes.put(batch))
        await asyncio.wait({put, writer}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            writer.result()
            raise RuntimeError("the ingestion writer stopped early")

    async def _finish_writes(self, writes: WriteQueue, writer: asyncio.Task[None]) -> None:
        if not writer.done():
            await self._queue_write(writes, writer, None)
        await writer

    async def consume_batch(self, embedder: BatchEmbedder, *, wait: bool) -> BatchRunReport:
        """Batch mode: collect every chunk to embed, then let the Batch API embed them.

        Results are written job by job as each job finishes; the state file next to the
        store lets a re-run re-attach to jobs instead of paying for them again.
        """
        pending: dict[str, Pending] = {}
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
                set_vector(item.node, vector)
            await self.writer.write([item.node for item in batch], new_ids=new_node_ids(batch))
            self.report.embedded += len(batch)
            self.progress.resolved(len(batch))
            for item in batch:
                set_vector(item.node, None)
                item.window.outstanding -= 1
                if item.window.outstanding == 0:
                    await self.writer.window_done(item.window)

        result = await embedder.run(
            [(key, self.chunker.wire_spec(item.node, item.spec)) for key, item in pending.items()],
            on_vectors,
            wait=wait,
        )
        for failure in result.failures:
            item = pending[failure.key]
            record_failures(self.report, [item.node], GeminiAPIError(failure.message))
        self.report.pending += len(result.pending_keys)
        return result

    def _drain_ready(self, taken: dict[int, Pending]) -> Iterator[TextSpec]:
        """Feed ready chunks to the engine lazily; it ends when none are ready."""
        index = 0
        while self.ready:
            pending = self.ready.popleft()
            taken[index] = pending
            index += 1
            self.space_freed.set()
            yield self.chunker.wire_spec(pending.node, pending.spec)

    # -- removed documents -----------------------------------------------------------------

    async def delete_removed(self) -> None:
        if self.report.documents == 0:
            raise ConfigurationError(
                "delete_missing=True with an empty input would delete the whole collection; "
                "refusing. Use store.clear() to empty it on purpose."
            )
        index = await self.store.aget_index(None)
        # Nodes stored without a document ("" bucket) belong to no input: left alone. So do
        # files still in the input that could not be read this time (binary, unreadable).
        unread = set(self.source.skipped_files)
        docs = list(index)
        read = self.chunker.seen_docs.contains(docs).tolist()  # one lookup for all of them
        removed = {
            doc: index[doc]
            for doc, was_read in zip(docs, read, strict=True)
            if doc
            and not was_read
            and doc not in unread
            and doc.rpartition("#part")[0] not in unread
        }
        node_ids = [node_id for nodes in removed.values() for node_id in nodes]
        if self.settings.dry_run:
            self.report.deleted += len(node_ids)
        else:
            await self.writer.delete(node_ids)
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
