"""Issue 11 item 2: the same node gets the same wire request (and vector) on every path.

ingest(), IngestionPipeline, VectorStoreIndex.from_documents / insert / refresh_ref_docs and
the Batch API planner all go through GeminiEmbedding; LlamaIndex's index paths hand us only
``node.get_content(MetadataMode.EMBED)``, so the title must be recovered from that text the
same way the node paths compute it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import Document, MetadataMode, TextNode
from llama_index.core.vector_stores import SimpleVectorStore

from llama_index_gemini_embed import ChromaStore, ingest
from llama_index_gemini_embed._tasks import split_title
from llama_index_gemini_embed.emulator import Emulator
from tests.embedding.support import make

Wire = tuple[str, str | None, str | None]  # (text, title, taskType)


def wire_items(emu: Emulator, start: int = 0) -> list[Wire]:
    out: list[Wire] = []
    for record in emu.requests[start:]:
        if not record.path.endswith(":batchEmbedContents") or record.body is None:
            continue
        for item in record.body["requests"]:
            text = item["content"]["parts"][0]["text"]
            out.append((text, item.get("title"), item.get("taskType")))
    return out


def documents() -> list[Document]:
    return [
        Document(
            id_="eiffel",
            text="The Eiffel tower stands in Paris.",
            metadata={"title": "Eiffel", "author": "Gustave"},
        ),
        Document(id_="notes", text="Buy milk and bread.", metadata={"file_name": "notes.txt"}),
        Document(id_="plain", text="No title at all here.", metadata={}),
        Document(
            id_="both",
            text="Both keys present.",
            metadata={"file_name": "both.md", "title": "Both"},
        ),
    ]


SPLITTER = SentenceSplitter(chunk_size=512, chunk_overlap=0)


@pytest.mark.parametrize("model", ["gemini-embedding-001", "gemini-embedding-2"])
def test_every_path_sends_the_same_request_for_the_same_node(
    emulator: Emulator, tmp_path: Path, model: str
) -> None:
    embed = make(emulator, model_name=model, output_dimensionality=256)
    runs: dict[str, list[Wire]] = {}

    start = len(emulator.requests)
    store = ChromaStore("path-ingest", path=str(tmp_path / "a"), embed_model=embed)
    ingest(documents(), embed_model=embed, store=store)
    runs["ingest"] = wire_items(emulator, start)

    start = len(emulator.requests)
    IngestionPipeline(transformations=[SPLITTER, embed]).run(documents=documents())
    runs["pipeline"] = wire_items(emulator, start)

    start = len(emulator.requests)
    index = VectorStoreIndex.from_documents(
        documents(), embed_model=embed, transformations=[SPLITTER]
    )
    runs["from_documents"] = wire_items(emulator, start)

    empty = VectorStoreIndex(nodes=[], embed_model=embed, transformations=[SPLITTER])
    start = len(emulator.requests)
    for doc in documents():
        empty.insert(doc)
    runs["insert"] = wire_items(emulator, start)

    changed = documents()
    for doc in changed:
        doc.set_content(doc.text)  # same text; refresh re-embeds when the hash differs
        doc.metadata["rev"] = "2"
        doc.excluded_embed_metadata_keys.append("rev")
    start = len(emulator.requests)
    index.refresh_ref_docs(changed)
    runs["refresh_ref_docs"] = wire_items(emulator, start)

    expected = sorted(runs["ingest"])
    assert len(expected) == 4
    for name, items in runs.items():
        assert sorted(items) == expected, name
    if model == "gemini-embedding-001":
        assert ("The Eiffel tower stands in Paris.", "Eiffel", "RETRIEVAL_DOCUMENT") not in expected
        assert (
            "author: Gustave\n\nThe Eiffel tower stands in Paris.",
            "Eiffel",
            "RETRIEVAL_DOCUMENT",
        ) in expected
        assert ("Buy milk and bread.", "notes.txt", "RETRIEVAL_DOCUMENT") in expected
        assert ("Both keys present.", "Both", "RETRIEVAL_DOCUMENT") in expected
        assert ("No title at all here.", None, "RETRIEVAL_DOCUMENT") in expected
    else:
        assert ("title: notes.txt | text: Buy milk and bread.", None, None) in expected


def test_same_vector_from_the_index_and_from_the_pipeline(emulator: Emulator) -> None:
    embed = make(emulator, output_dimensionality=256)
    index = VectorStoreIndex.from_documents(
        documents(), embed_model=embed, transformations=[SPLITTER]
    )
    nodes = IngestionPipeline(transformations=[SPLITTER, embed]).run(documents=documents())
    by_text = {n.get_content(metadata_mode=MetadataMode.NONE): n.embedding for n in nodes}
    results = index.as_retriever(similarity_top_k=4).retrieve("Eiffel tower")
    assert len(results) == 4
    for result in results:
        store = index.vector_store
        assert isinstance(store, SimpleVectorStore)
        stored = store.get(result.node.node_id)
        assert stored == pytest.approx(by_text[result.node.get_content()], abs=1e-9)


def test_split_title_reads_the_default_metadata_header() -> None:
    keys = ["title", "file_name"]
    assert split_title("title: T\nauthor: A\n\nbody", keys) == ("author: A\n\nbody", "T")
    assert split_title("file_name: f.md\ntitle: T\n\nbody", keys) == ("body", "T")
    assert split_title("file_name: f.md\n\nbody", keys) == ("body", "f.md")
    assert split_title("title: \nfile_name: f.md\n\nbody", keys) == ("body", "f.md")
    assert split_title("just text\n\ntitle: late", keys) == ("just text\n\ntitle: late", None)
    assert split_title("title: T", keys) == ("title: T", None)  # no header/body split
    assert split_title("title: T\n\nbody", []) == ("title: T\n\nbody", None)


def test_node_input_agrees_with_the_text_path_for_custom_templates(emulator: Emulator) -> None:
    embed = make(emulator)
    node = TextNode(
        text="body",
        metadata={"title": "T", "k": "v"},
        metadata_template="{key}={value}",
    )
    spec = embed.node_input(node)
    text = node.get_content(metadata_mode=MetadataMode.EMBED)
    assert (spec.text, spec.title) == split_title(text, embed.title_metadata_keys) == (text, None)


def test_excluded_title_key_is_not_sent(emulator: Emulator) -> None:
    embed = make(emulator)
    node = TextNode(text="body", metadata={"title": "T"}, excluded_embed_metadata_keys=["title"])
    spec = embed.node_input(node)
    assert (spec.text, spec.title) == ("body", None)
