"""The store side of :func:`ingest`: what it needs from a store, and the write-behind writer.

    writer = StoreWriter(store, embed_model, report, progress, unbound=True)
    queue = WriteQueue(write_lag(embed_model))
    task = asyncio.create_task(writer.write_behind(queue))   # stores answered batches
    await writer.write(nodes); await writer.delete(node_ids)  # direct writes and deletes

Answered batches wait in a bounded queue (``write_lag`` batches) while the stream keeps
requesting, so a slow store does not hold up the API calls; the writer gathers small
batches into one write (up to 100 chunks or 0.2 s). A crash loses at most the requests in
flight, the queued batches, and the write being gathered or made (under 100 chunks plus
one batch); the re-run embeds them again. That is the README's crash re-spend bound,
``(2 x max_concurrency + 1) x batch size + 100`` per kill.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, runtime_checkable

from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import MetadataFilters

from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
from llama_index_gemini_embed._embedding.engine import TextSpec
from llama_index_gemini_embed._errors import StoreError
from llama_index_gemini_embed._models import model_spec

from .report import IngestReport, Progress, record_failures

__all__ = ["IngestStore", "Pending", "StoreWriter", "Window", "WriteQueue", "write_lag"]

#: Deletes are sent in parts of at most this many ids.
DELETE_PART = 5000
#: Answered batches are gathered into one store write up to this many chunks...
COALESCE_RECORDS = 100
#: ... or until the first of them has waited this long (seconds).
COALESCE_SECONDS = 0.2


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


@dataclass
class Window:
    """One batch of documents planned together; stale chunks go once it is resolved."""

    stale: list[str]
    outstanding: int = 0


@dataclass
class Pending:
    """A chunk waiting to be embedded (``node.embedding`` is set once it is answered)."""

    node: BaseNode
    spec: TextSpec
    window: Window


#: Answered batches on their way to the store; ``None`` ends the writer.
WriteQueue: TypeAlias = "asyncio.Queue[list[Pending] | None]"


def write_lag(embed_model: GeminiEmbedding) -> int:
    """Answered batches that may wait for the store: ``max_concurrency``, fewer when large.

    A crash loses at most these, the batch being written and the requests in flight
    (re-embedded on the re-run); the queued vectors (as Python floats) stay under ~20 MB.
    """
    dimension = (
        embed_model.output_dimensionality or model_spec(embed_model.model_name).default_dimension
    )
    floats_per_batch = embed_model.embed_batch_size * dimension
    return max(1, min(embed_model.max_concurrency, 600_000 // max(1, floats_per_batch)))


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
        coalesce_records: int = COALESCE_RECORDS,
        coalesce_seconds: float = COALESCE_SECONDS,
    ) -> None:
        self.coalesce_records = coalesce_records
        self.coalesce_seconds = coalesce_seconds
        self.store = store
        self.embed_model = embed_model
        self.report = report
        self.progress = progress
        self.unbound = unbound
        """True until the fingerprint is recorded in a collection that had none."""

    async def write(self, nodes: list[BaseNode]) -> None:
        """Upsert ``nodes`` (with their vectors); the first write records the fingerprint."""
        if self.unbound:
            await self._record_fingerprint()
            self.unbound = False
        try:
            await self.store.async_add(nodes)
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
            pending.node.embedding = None
            pending.window.outstanding -= 1
            if pending.window.outstanding == 0:
                await self.window_done(pending.window)

    async def write_behind(self, writes: WriteQueue) -> None:
        """Store answered batches in order until ``None`` arrives, coalescing small ones.

        Batches are gathered into one write until it holds ``COALESCE_RECORDS`` answered
        chunks or its first chunk has waited ``COALESCE_SECONDS`` (then written as is), so a
        stream of one-item answers does not cost one store write each. Writes stay short: a
        local Chroma write holds the GIL, and no request goes out meanwhile.
        """
        loop = asyncio.get_running_loop()
        gathered: list[Pending] = []
        deadline = 0.0
        try:
            while True:
                if not gathered:
                    batch = await writes.get()
                else:
                    try:
                        if loop.time() >= deadline:
                            raise TimeoutError
                        batch = await asyncio.wait_for(writes.get(), deadline - loop.time())
                    except TimeoutError:  # the oldest answer waited long enough
                        gathered, flushing = [], gathered
                        await self._flush(flushing)
                        continue
                if batch is None:
                    break
                if not gathered:
                    deadline = loop.time() + self.coalesce_seconds
                gathered.extend(batch)
                if sum(p.node.embedding is not None for p in gathered) >= self.coalesce_records:
                    gathered, flushing = [], gathered
                    await self._flush(flushing)
            gathered, flushing = [], gathered
            await self._flush(flushing)
        except BaseException:
            # Answered, never written (crash, cancellation): the re-run embeds them again.
            self.report.pending += sum(p.node.embedding is not None for p in gathered)
            raise

    async def _flush(self, batch: list[Pending]) -> None:
        """One store write for ``batch``'s answered chunks; then its windows move on."""
        answered = [p.node for p in batch if p.node.embedding is not None]
        if answered:
            try:
                await self.write(answered)
            except asyncio.CancelledError:
                self.report.pending += len(answered)
                raise
            except Exception as exc:
                record_failures(self.report, answered, exc)
                raise
            self.report.embedded += len(answered)
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
