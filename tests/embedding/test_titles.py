"""Issue 14 goal 1: titles cost nothing. Distinct titles share requests, each item keeps its own.

The REST ``batchEmbedContents.requests[]`` carries a ``title`` per item; the SDK's
``embed_content`` takes one config per call, so the per-item list goes through the SDK's
public ``HttpOptions.extra_body`` (see docs/gemini-api.md). Checked on the emulator's
request log, i.e. on the wire.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core.schema import Document, TextNode

from llama_index_gemini_embed import ChromaStore, ingest
from llama_index_gemini_embed.emulator import Emulator, embed_text
from tests.embedding.support import embed_bodies, make, unit


def test_distinct_titles_are_packed_with_each_items_own_title(emulator: Emulator) -> None:
    embed = make(emulator, output_dimensionality=128)
    nodes = [TextNode(text=f"chunk {i}", metadata={"title": f"Doc {i}"}) for i in range(250)]
    nodes.append(TextNode(text="untitled chunk"))
    embed(nodes)
    bodies = embed_bodies(emulator)
    # Requests run concurrently: the log holds them in arrival order, not send order.
    assert sorted(len(b["requests"]) for b in bodies) == [51, 100, 100]
    sent = {
        item["content"]["parts"][0]["text"]: item.get("title")
        for body in bodies
        for item in body["requests"]
    }
    assert sent == {**{f"chunk {i}": f"Doc {i}" for i in range(250)}, "untitled chunk": None}
    for body in bodies:
        for item in body["requests"]:
            assert item["taskType"] == "RETRIEVAL_DOCUMENT"
            assert item["outputDimensionality"] == 128
            assert item["model"] == "models/gemini-embedding-001"
    # each vector is its own item's (text, title) vector: nothing shifted between items
    expected = embed_text("chunk 7", task_type="RETRIEVAL_DOCUMENT", title="Doc 7", dimension=128)
    assert nodes[7].embedding == pytest.approx(unit(expected), abs=1e-6)


def test_1000_small_titled_documents_in_at_most_20_requests(
    emulator: Emulator, tmp_path: Path
) -> None:
    embed = make(emulator, output_dimensionality=128)
    store = ChromaStore("titled-docs", path=str(tmp_path / "s"), embed_model=embed)
    docs = [
        Document(
            id_=f"f{i}.txt", text=f"small file number {i}", metadata={"file_name": f"f{i}.txt"}
        )
        for i in range(1000)
    ]
    report = ingest(docs, embed_model=embed, store=store)
    assert report.embedded == 1000
    bodies = embed_bodies(emulator)
    assert len(bodies) <= 20
    pairs = sorted(
        (item["content"]["parts"][0]["text"], item.get("title"))
        for body in bodies
        for item in body["requests"]
    )
    assert pairs == sorted((f"small file number {i}", f"f{i}.txt") for i in range(1000))


def test_query_items_never_carry_a_title(emulator: Emulator) -> None:
    embed = make(emulator)
    embed.get_query_embedding("q")
    embed.get_text_embedding_batch(["title: T\n\nbody", "plain"])
    items = [item for body in embed_bodies(emulator) for item in body["requests"]]
    assert [(i["taskType"], i.get("title")) for i in items] == [
        ("RETRIEVAL_QUERY", None),
        ("RETRIEVAL_DOCUMENT", "T"),
        ("RETRIEVAL_DOCUMENT", None),
    ]
    assert len(embed_bodies(emulator)) == 2


def test_vertex_keeps_one_title_per_request(emulator: Emulator) -> None:
    embed = make(emulator, vertexai=True)
    embed([TextNode(text=f"chunk {i}", metadata={"title": f"Doc {i % 3}"}) for i in range(9)])
    bodies = [r.body for r in emulator.requests if r.body is not None and r.status == 200]
    assert len(bodies) == 3
