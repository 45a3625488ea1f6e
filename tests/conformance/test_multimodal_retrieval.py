"""Issue 15 §3: a text query over a mixed collection returns each hit as the LlamaIndex node
type of its modality, through ``VectorStoreIndex`` retrievers and query engines.

ImageNode (``image_path``) for images, ``Node`` with ``audio_resource``/``video_resource``
for audio/video, a node with ``page_start``/``page_end`` for PDF page ranges, TextNode for
text: what a multimodal LLM or a notebook needs to show the hit. The LLM is LlamaIndex's own
MockLLM: what is checked is what gets retrieved and handed to it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.schema import BaseNode, ImageNode, Node, NodeWithScore, TextNode

from llama_index_gemini_embed import GeminiEmbedding, ingest
from llama_index_gemini_embed.emulator.samples import (
    mp4_with_title,
    pdf_with_pages,
    png_with_description,
    wav_with_title,
)
from tests.conformance.conftest import StoreFactory

#: question -> (file it must find first, what it is)
QUESTIONS = {
    "how to brew green tea": ("tea.md", "text"),
    "a red bicycle at night": ("bike.png", "image"),
    "the blue whale sings under the sea": ("whale.pdf", "pdf"),
    "a church bell ringing at noon": ("bell.wav", "audio"),
    "a kite flying over the beach": ("kite.mp4", "video"),
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    media = tmp_path / "mixed"
    media.mkdir()
    (media / "tea.md").write_text("# Tea\n\nHow to brew green tea at a low temperature.\n")
    (media / "bike.png").write_bytes(png_with_description("a red bicycle at night"))
    pages = ["the blue whale sings under the sea", "krill and plankton"]
    (media / "whale.pdf").write_bytes(pdf_with_pages(pages))
    (media / "bell.wav").write_bytes(wav_with_title("a church bell ringing at noon"))
    (media / "kite.mp4").write_bytes(mp4_with_title("a kite flying over the beach"))
    return media


def check_type(node: BaseNode, folder: Path, name: str, kind: str) -> None:
    path = str(folder / name)
    assert node.metadata["file_name"] == name
    if kind == "text":
        assert type(node) is TextNode and "green tea" in node.text
    elif kind == "image":
        assert isinstance(node, ImageNode) and node.image_path == path
        assert node.image is None  # the bytes stay in the file, never in the store
    elif kind == "pdf":
        assert (node.metadata["page_start"], node.metadata["page_end"]) == (1, 2)
        assert isinstance(node, Node | TextNode) and node.metadata["file_path"] == path
        assert node.metadata["mime_type"] == "application/pdf"
        assert "blue whale" in node.get_content()  # the range's text layer is the node text
    else:
        assert type(node) is Node
        resource = node.audio_resource if kind == "audio" else node.video_resource
        assert resource is not None and str(resource.path) == path
        assert resource.data is None


def test_a_text_query_returns_each_modality_as_its_node_type(
    embed2: GeminiEmbedding, open_store: StoreFactory, folder: Path
) -> None:
    embed = embed2
    store = open_store(embed)
    report = ingest(folder, embed_model=embed, store=store, show_progress=False)
    assert report.ok and report.embedded == 5

    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    retriever = index.as_retriever(similarity_top_k=5)
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=1)
    for question, (name, kind) in QUESTIONS.items():
        hits: list[NodeWithScore] = retriever.retrieve(question)
        assert len(hits) == 5  # one ranked list over every modality
        check_type(hits[0].node, folder, name, kind)
        answer = engine.query(question)
        [source] = answer.source_nodes
        check_type(source.node, folder, name, kind)
