"""The store side of :func:`ingest`: what it needs from a store, and the write-behind writer.

    writer = StoreWriter(store, embed_model, report, progress, unbound=True)
    queue = WriteQueue(write_capacity(embed_model))
    task = asyncio.create_task(writer.write_behind(queue))   # stores answered batches
    await writer.write(nodes); await writer.delete(node_ids)  # direct writes and deletes

Answered batches wait in a bounded queue while the stream keeps requesting, so a slow
store does not hold up the API calls. The writer gathers answered batches into one write:
100 chunks first (rows show up early), then twice as many each write up to 1,000 (fewer
above 600-d), or whatever arrived once the oldest answer waited 0.2 s; and it takes every
batch already waiting into the same write, so a writer that is behind makes fewer, larger
Chroma writes, which cost less CPU per row. The queue counts chunks from the moment they are queued
until they are stored, so at most ``write_lag`` batches + one batch + 1,000 chunks are
answered but not stored, however the writer gathers them. A crash loses those and the
requests in flight; the re-run embeds them again. That is the README's crash re-spend bound,
``(2 x max_concurrency + 1) x batch size + 1,000`` per kill.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import MetadataFilters

from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
from llama_index_gemini_embed._embedding.engine import TextSpec
from llama_index_gemini_embed._errors import StoreError
from llama_index_gemini_embed._models import model_spec

from .report import IngestReport, Progress, record_failures

__all__ = [
    "IngestStore",
    "Pending",
    "StoreWriter",
    "Window",
    "WriteQueue",
    "coalesce_limit",
    "new_node_ids",
    "set_vector",
    "write_capacity",
    "write_lag",
]

#: Deletes are sent in parts of at most this many ids.
DELETE_PART = 5000
#: Answered batches are gathered into one store write of this many chunks at first (rows
#: show up early), twice as many each write after, up to ``COALESCE_RECORDS`` (Chroma's
#: CPU per row at 768-d falls ~11% from 250- to 1,000-row upserts: docs/benchmarks.md),
#: or fewer at high dimensions (``coalesce_limit``)...
FIRST_WRITE_RECORDS = 100
COALESCE_RECORDS = 1000
#: Floats a gathered write may hold as Python lists (~20 MB), like ``write_lag``.
_FLOATS_BUDGET = 600_000
#: ... or until the first of them has waited this long (seconds).
COALESCE_SECONDS = 0.2


@runtime_checkable
class IngestStore(Protocol):
    """What :func:`aingest` needs from a vector store (``ChromaStore`` provides it)."""

    def check_fingerprint(self, fingerprint: Mapping[str, str | int | float | bool]) -> None: ...

    async def aget_index(
        self, doc_ids: Sequence[str] | None = None
    ) -> dict[str, dict[str, str]]: ...

    async def async_add(
        self, nodes: Sequence[BaseNode], *, new_ids: Collection[str] = ..., **kwargs: Any
    ) -> list[str]: ...

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


@dataclass
class Window:
    """One batch of documents planned together; stale chunks go once it is resolved."""

    stale: list[str]
    outstanding: int = 0


def set_vector(node: BaseNode, vector: list[float] | None) -> None:
    """``node.embedding = vector`` without pydantic's assignment validation.

    LlamaIndex nodes validate every assignment: ~28 µs for a 768-float list, paid twice per
    chunk (set when answered, cleared when stored). The engine's vectors are already lists
    of floats, so the check can only cost; pydantic keeps field values in ``__dict__``.
    """
    node.__dict__["embedding"] = vector


@dataclass
class Pending:
    """A chunk waiting to be embedded (``node.embedding`` is set once it is answered)."""

    node: BaseNode
    spec: TextSpec
    window: Window
    new: bool = False
    """True when the store's index had no row with this node's id (nothing to merge with)."""


def new_node_ids(batch: Iterable[Pending]) -> frozenset[str]:
    """Ids of ``batch``'s chunks the store has no row for: their writes merge with nothing."""
    return frozenset(p.node.node_id for p in batch if p.new)


class WriteQueue:
    """Answered batches on their way to the store; ``None`` ends the writer.

        queue = WriteQueue(capacity=900)      # chunks answered but not yet stored, at most
        await queue.put(batch)                # waits while the store is that far behind
        batch = await queue.get(); ...; queue.stored(len(batch))

    A chunk counts against ``capacity`` from :meth:`put` until the writer reports it
    :meth:`stored` (written, or resolved without a vector), not only while it is queued:
    a writer that takes every waiting batch into one write does not make room for more
    unstored answers. A batch always goes in when nothing is held (one batch larger than
    the capacity is not refused). ``capacity=None``: unbounded.
    """

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = capacity
        self.held = 0
        """Chunks put and not yet reported stored."""
        self._items: deque[list[Pending] | None] = deque()
        self._changed = asyncio.Event()

    def has_room(self, batch: list[Pending] | None) -> bool:
        """True if :meth:`put` would queue ``batch`` without waiting."""
        if batch is None or self.capacity is None or self.held == 0:
            return True
        return self.held + len(batch) <= self.capacity

    def full(self) -> bool:
        """True when no more chunks fit (a put would wait)."""
        return self.capacity is not None and self.held >= self.capacity

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, batch: list[Pending] | None) -> None:
        """Queue ``batch`` now, whatever the capacity (the caller checked it)."""
        if batch is not None:
            self.held += len(batch)
        self._items.append(batch)
        self._changed.set()

    async def put(self, batch: list[Pending] | None) -> None:
        """Queue ``batch`` once there is room for it."""
        while not self.has_room(batch):
            self._changed.clear()
            await self._changed.wait()
        self.put_nowait(batch)

    def get_nowait(self) -> list[Pending] | None:
        """The oldest queued batch; ``asyncio.QueueEmpty`` if there is none."""
        if not self._items:
            raise asyncio.QueueEmpty
        batch = self._items.popleft()
        self._changed.set()
        return batch

    async def get(self) -> list[Pending] | None:
        """The oldest queued batch, waiting for one."""
        while not self._items:
            self._changed.clear()
            await self._changed.wait()
        return self.get_nowait()

    def stored(self, chunks: int) -> None:
        """``chunks`` taken by the writer are stored (or resolved): room for more."""
        self.held = max(0, self.held - chunks)
        self._changed.set()


def _dimension(embed_model: GeminiEmbedding) -> int:
    return max(
        1,
        embed_model.output_dimensionality or model_spec(embed_model.model_name).default_dimension,
    )


def write_lag(embed_model: GeminiEmbedding) -> int:
    """Answered batches that may wait for the store: ``max_concurrency``, fewer when large.

    A crash loses at most these, the batch being written and the requests in flight
    (re-embedded on the re-run); the queued vectors (as Python floats) stay under ~20 MB.
    """
    floats_per_batch = embed_model.embed_batch_size * _dimension(embed_model)
    return max(1, min(embed_model.max_concurrency, _FLOATS_BUDGET // floats_per_batch))


def coalesce_limit(embed_model: GeminiEmbedding) -> int:
    """The most chunks one gathered write holds: 1,000, fewer above 600-d (~20 MB of floats).

    768-d: 781; 3072-d: 195; never below ``FIRST_WRITE_RECORDS``.
    """
    fits = _FLOATS_BUDGET // _dimension(embed_model)
    return min(COALESCE_RECORDS, max(FIRST_WRITE_RECORDS, fits))


def write_capacity(embed_model: GeminiEmbedding) -> int:
    """Chunks that may be answered but not yet stored: ``write_lag`` batches, one more
    batch and one gathered write (the crash re-spend bound's store part)."""
    lagging = (write_lag(embed_model) + 1) * embed_model.embed_batch_size
    return lagging + coalesce_limit(embed_model)


class StoreWriter:
    """Writes, deletes and records the fingerprint, counting everything in the report."""

    def __init__(
        self,
        store: IngestStore,
        embed_model: GeminiEmbedding,
        report: IngestReport,
        progress: Progress,
        *,
        unbound: bool,
        coalesce_records: int | None = None,
        coalesce_seconds: float = COALESCE_SECONDS,
    ) -> None:
        self.coalesce_records = (
            coalesce_limit(embed_model) if coalesce_records is None else coalesce_records
        )
        """The most answered chunks a gathered write waits for (None: ``coalesce_limit``)."""
        self.coalesce_seconds = coalesce_seconds
        self.store = store
        self.embed_model = embed_model
        self.report = report
        self.progress = progress
        self.unbound = unbound
        """True until the fingerprint is recorded in a collection that had none."""

    async def write(self, nodes: list[BaseNode], *, new_ids: Collection[str] = frozenset()) -> None:
        """Upsert ``nodes`` (with their vectors); the first write records the fingerprint.

        ``new_ids``: node ids the store's index did not have (the store need not read their
        old metadata)."""
        if self.unbound:
            await self._record_fingerprint()
            self.unbound = False
        try:
            await self.store.async_add(nodes, new_ids=new_ids)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"Writing {len(nodes)} chunks to the store failed: {exc}") from exc
        self.report.written += len(nodes)
        self.report.store_writes += 1

    async def delete(self, node_ids: list[str]) -> None:
        """Delete ``node_ids`` in parts, counting them as deleted."""
        for start in range(0, len(node_ids), DELETE_PART):
            part = node_ids[start : start + DELETE_PART]
            try:
                await self.store.adelete_nodes(node_ids=part)
            except StoreError:
                raise
            except Exception as exc:
                raise StoreError(
                    f"Deleting {len(part)} chunks from the store failed: {exc}"
                ) from exc
            self.report.deleted += len(part)

    async def window_done(self, window: Window) -> None:
        """Every chunk of ``window`` is resolved: its stale chunks can go now."""
        if window.stale:
            stale, window.stale = window.stale, []
            await self.delete(stale)

    async def resolved(self, batch: Sequence[Pending]) -> None:
        """Release ``batch``'s vectors and close the windows it completes."""
        for pending in batch:
            set_vector(pending.node, None)
            pending.window.outstanding -= 1
            if pending.window.outstanding == 0:
                await self.window_done(pending.window)

    async def write_behind(self, writes: WriteQueue) -> None:
        """Store answered batches in order until ``None`` arrives, coalescing small ones.

        Batches are gathered into one write until it holds ``FIRST_WRITE_RECORDS`` answered
        chunks (twice as many each write after, up to ``coalesce_records``) or its first
        chunk has waited ``COALESCE_SECONDS``; then every batch already waiting joins the
        same write (a writer that is behind makes fewer, larger writes: Chroma's CPU per row
        falls with the batch size). The queue's capacity bounds the total, so a write never
        holds more than the crash bound allows.
        """
        loop = asyncio.get_running_loop()
        gathered: list[Pending] = []
        deadline = 0.0
        done = False
        threshold = min(FIRST_WRITE_RECORDS, self.coalesce_records)
        try:
            while not done:
                if not gathered:
                    batch = await writes.get()
                else:
                    try:
                        if loop.time() >= deadline:
                            raise TimeoutError
                        batch = await asyncio.wait_for(writes.get(), deadline - loop.time())
                    except TimeoutError:  # the oldest answer waited long enough
                        gathered, flushing = [], gathered
                        done = await self._flush_with_waiting(flushing, writes)
                        continue
                if batch is None:
                    break
                if not gathered:
                    deadline = loop.time() + self.coalesce_seconds
                gathered.extend(batch)
                if sum(p.node.embedding is not None for p in gathered) >= threshold:
                    threshold = min(self.coalesce_records, 2 * threshold)
                    gathered, flushing = [], gathered
                    done = await self._flush_with_waiting(flushing, writes)
            gathered, flushing = [], gathered
            await self._flush(flushing, writes)
        except BaseException:
            # Answered, never written (crash, cancellation): the re-run embeds them again.
            self.report.pending += sum(p.node.embedding is not None for p in gathered)
            raise

    async def _flush_with_waiting(self, gathered: list[Pending], writes: WriteQueue) -> bool:
        """Write ``gathered`` with every batch already queued; True if the end was queued."""
        done = False
        while not writes.empty():
            batch = writes.get_nowait()
            if batch is None:
                done = True
                break
            gathered.extend(batch)
        await self._flush(gathered, writes)
        return done

    async def _flush(self, batch: list[Pending], writes: WriteQueue) -> None:
        """One store write for ``batch``'s answered chunks; then its windows move on."""
        answered = [p.node for p in batch if p.node.embedding is not None]
        if answered:
            try:
                await self.write(answered, new_ids=new_node_ids(batch))
            except asyncio.CancelledError:
                self.report.pending += len(answered)
                raise
            except Exception as exc:
                record_failures(self.report, answered, exc)
                raise
            self.report.embedded += len(answered)
        writes.stored(len(batch))
        if batch:
            self.progress.resolved(len(batch), self._usage_text())
            await self.resolved(batch)

    def _usage_text(self) -> str:
        usage = self.embed_model.usage
        return f"tokens={usage.tokens:,} ${usage.cost_usd:.4f} failed={self.report.failed}"

    async def _record_fingerprint(self) -> None:
        try:
            await asyncio.to_thread(self.store.check_fingerprint, self.embed_model.fingerprint)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"Recording the collection's fingerprint failed: {exc}") from exc
