"""Store writes: small answered batches are gathered into few writes, behind the stream."""

from __future__ import annotations

import asyncio
from pathlib import Path

from llama_index.core import Document
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

from llama_index_gemini_embed import ChromaStore, GeminiEmbedding, IngestReport, ingest
from llama_index_gemini_embed._embedding.engine import TextSpec
from llama_index_gemini_embed._ingest.report import Progress
from llama_index_gemini_embed._ingest.writer import Pending, StoreWriter, Window, WriteQueue
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
    queue: WriteQueue = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    queue.put_nowait(None)
    await writer.write_behind(queue)
    return report


async def test_small_batches_are_gathered_into_writes_of_a_hundred(tmp_path: Path) -> None:
    with ChromaStore("gather", path=str(tmp_path / "chroma")) as store:
        store.add([TextNode(id_="stale#0", text="old", embedding=[0.0, 1.0, 0.0])])
        window = Window(stale=["stale#0"])
        report = await write_through(store, pending_batches(100, 10, window), seconds=3600)
        assert report.store_writes == 10 and report.written == report.embedded == 1000
        assert store.count() == 1000 and "stale#0" not in set(store.collection.get()["ids"])
        assert window.outstanding == 0


async def test_an_answer_that_waited_long_enough_is_written_alone(tmp_path: Path) -> None:
    with ChromaStore("age", path=str(tmp_path / "chroma")) as store:
        window = Window(stale=[])
        gathered = await write_through(store, pending_batches(3, 5, window), seconds=3600)
        assert gathered.store_writes == 1  # the end of the stream writes what was gathered
    with ChromaStore("age2", path=str(tmp_path / "chroma2")) as store:
        window = Window(stale=[])
        at_once = await write_through(store, pending_batches(3, 5, window), seconds=0.0)
        assert at_once.store_writes == 3 and store.count() == 15
