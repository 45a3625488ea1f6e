"""Store writes: small answered batches are gathered into few writes, behind the stream."""

from __future__ import annotations

import asyncio
from pathlib import Path

from llama_index.core import Document
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

from llama_index_gemini_embed import ChromaStore, GeminiEmbedding, IngestReport, ingest
from llama_index_gemini_embed._embedding.engine import TextSpec
from llama_index_gemini_embed._ingest.report import Progress
from llama_index_gemini_embed._ingest.writer import (
    COALESCE_RECORDS,
    Pending,
    StoreWriter,
    Window,
    WriteQueue,
    coalesce_limit,
    write_capacity,
    write_lag,
)
from llama_index_gemini_embed.emulator import Emulator
from tests.ingest.test_ingest import make_embed


def test_a_thousand_small_titled_documents_take_few_requests_and_few_store_writes(
    emulator: Emulator, tmp_path: Path
) -> None:
    docs = [
        Document(
            id_=f"doc{i}", text=f"Note {i} is about topic {i % 7}.", metadata={"title": f"T{i}"}
        )
        for i in range(1000)
    ]
    embed = make_embed(emulator)
    with ChromaStore("small", path=str(tmp_path / "chroma")) as store:
        report = ingest(docs, embed_model=embed, store=store, show_progress=False)
        assert store.count() == 1000
    assert report.ok and report.embedded == report.written == 1000
    assert emulator.counters.embed_requests <= 20
    assert 1 <= report.store_writes <= 20, report.store_writes


def pending_batches(batches: int, size: int, window: Window) -> list[list[Pending]]:
    out = []
    for b in range(batches):
        batch = []
        for i in range(size):
            node = TextNode(id_=f"d{b}-{i}#0", text=f"text {b} {i}", embedding=[1.0, 0.0, float(i)])
            node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=f"d{b}-{i}")
            batch.append(Pending(node, TextSpec(node.text, "RETRIEVAL_DOCUMENT"), window))
            window.outstanding += 1
        out.append(batch)
    return out


async def write_through(
    store: ChromaStore, batches: list[list[Pending]], seconds: float
) -> IngestReport:
    """Everything queued first, then the writer runs: what it gathers depends on the rules only."""
    embed = GeminiEmbedding(api_key="unused", output_dimensionality=128)  # no call is made
    report = IngestReport()
    writer = StoreWriter(
        store, embed, report, Progress(False, None), unbound=False, coalesce_seconds=seconds
    )
    queue = WriteQueue()
    for batch in batches:
        queue.put_nowait(batch)
    queue.put_nowait(None)
    await writer.write_behind(queue)
    return report


async def test_a_writer_that_is_behind_takes_every_waiting_batch_into_one_write(
    tmp_path: Path,
) -> None:
    with ChromaStore("gather", path=str(tmp_path / "chroma")) as store:
        store.add([TextNode(id_="stale#0", text="old", embedding=[0.0, 1.0, 0.0])])
        window = Window(stale=["stale#0"])
        report = await write_through(store, pending_batches(100, 10, window), seconds=3600)
        assert report.store_writes == 1 and report.written == report.embedded == 1000
        assert store.count() == 1000 and "stale#0" not in set(store.collection.get()["ids"])
        assert window.outstanding == 0


async def feed_one_at_a_time(
    store: ChromaStore,
    batches: list[list[Pending]],
    *,
    records: int = COALESCE_RECORDS,
    seconds: float = 3600,
) -> IngestReport:
    """Each batch is queued only once the writer has stored everything before it."""
    embed = GeminiEmbedding(api_key="unused", output_dimensionality=128)  # no call is made
    report = IngestReport()
    writer = StoreWriter(
        store,
        embed,
        report,
        Progress(False, None),
        unbound=False,
        coalesce_records=records,
        coalesce_seconds=seconds,
    )
    queue = WriteQueue(capacity=1)  # a batch goes in only when nothing is held
    task = asyncio.create_task(writer.write_behind(queue))
    for batch in batches:
        await queue.put(batch)
    await queue.put(None)
    await task
    return report


async def test_a_write_is_made_at_the_count_or_when_the_oldest_answer_waited_long_enough(
    tmp_path: Path,
) -> None:
    window = Window(stale=[])
    with ChromaStore("aged", path=str(tmp_path / "chroma")) as store:
        aged = await feed_one_at_a_time(store, pending_batches(3, 5, window), seconds=0.0)
        assert aged.store_writes == 3 and store.count() == 15  # each waited long enough
    with ChromaStore("count", path=str(tmp_path / "chroma2")) as store:
        counted = await feed_one_at_a_time(store, pending_batches(3, 100, window), records=100)
        assert counted.store_writes == 3 and store.count() == 300  # each has 100 chunks
    with ChromaStore("end", path=str(tmp_path / "chroma3")) as store:
        gathered = await write_through(store, pending_batches(3, 5, window), seconds=3600)
        assert gathered.store_writes == 1  # the end of the stream writes what was gathered
    assert window.outstanding == 0


def test_the_write_queue_counts_chunks_until_they_are_stored() -> None:
    window = Window(stale=[])
    ten, ten2, ten3, forty = (
        *pending_batches(3, 10, window),
        pending_batches(1, 40, window)[0],
    )
    queue = WriteQueue(capacity=25)
    assert queue.has_room(ten) and not queue.full()
    queue.put_nowait(ten)
    queue.put_nowait(ten2)
    assert not queue.has_room(ten3) and queue.has_room(None)  # 20 + 10 > 25; the end always fits
    assert queue.get_nowait() is ten and queue.get_nowait() is ten2 and queue.empty()
    assert not queue.has_room(ten3)  # taken by the writer, not stored yet: still counted
    queue.stored(20)
    assert queue.held == 0 and queue.has_room(forty)  # larger than the capacity, alone: fits
    queue.put_nowait(forty)
    assert queue.full() and not queue.has_room(ten)


async def test_a_put_waits_until_the_writer_reports_chunks_stored() -> None:
    window = Window(stale=[])
    first, second = pending_batches(2, 10, window)
    queue = WriteQueue(capacity=15)
    await queue.put(first)
    waiting = asyncio.create_task(queue.put(second))
    assert await queue.get() is first
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done() and queue.empty()  # taken but not stored: no room yet
    queue.stored(10)
    await asyncio.wait_for(waiting, 5)
    assert queue.held == 10 and await queue.get() is second


def test_the_queue_capacity_is_the_crash_bound_store_part() -> None:
    embed = GeminiEmbedding(api_key="k" * 39, max_concurrency=8, embed_batch_size=100)
    embed.output_dimensionality = 768
    assert write_capacity(embed) == (write_lag(embed) + 1) * 100 + coalesce_limit(embed)
    assert coalesce_limit(embed) == 781  # 600,000 floats at 768-d; 1,000 at most
    # in flight (max_concurrency batches) + this: the README's (2 x 8 + 1) x 100 + 1,000
    assert 8 * 100 + write_capacity(embed) <= (2 * 8 + 1) * 100 + 1000


async def test_writes_start_at_a_hundred_and_double_up_to_the_limit(tmp_path: Path) -> None:
    """Rows show up early (the first write holds 100 chunks), later writes are larger."""
    window = Window(stale=[])
    everything = pending_batches(1, 1500, window)[0]
    # one batch per expected write: a write is made once its threshold is reached
    sizes, batches, start = (100, 200, 400, 400, 400), [], 0
    for size in sizes:
        batches.append(everything[start : start + size])
        start += size
    with ChromaStore("ramp", path=str(tmp_path / "chroma")) as store:
        report = await feed_one_at_a_time(store, batches, records=400)
        assert report.store_writes == len(sizes) and store.count() == 1500


def test_the_gathered_write_is_smaller_at_high_dimensions() -> None:
    assert coalesce_limit(GeminiEmbedding(api_key="k" * 39, output_dimensionality=128)) == 1000
    assert coalesce_limit(GeminiEmbedding(api_key="k" * 39, output_dimensionality=3072)) == 195
    assert coalesce_limit(GeminiEmbedding(api_key="k" * 39)) == 195  # -001's 3072 by default
