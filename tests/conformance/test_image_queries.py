"""Issue 15 §3: searching by image (image-to-image, image-to-text) with gemini-embedding-2.

LlamaIndex's way is ``MultiModalVectorStoreIndex`` (``text_retrieve``,
``text_to_image_retrieve``, ``image_to_image_retrieve``) with a text store and an image store;
ours is ``GeminiEmbedding.image_query(...)``, a ``QueryBundle`` any ``VectorStoreIndex``
retriever or query engine searches with. gemini-embedding-2 has ONE space, so ChromaStore
serves as both of LlamaIndex's stores on two collections or on one. The emulator places a
picture where its embedded description would go, so which hit comes first is known.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.indices import MultiModalVectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.schema import ImageNode, NodeWithScore, QueryBundle, TextNode

from llama_index_gemini_embed import ChromaStore, GeminiEmbedding, MediaError
from llama_index_gemini_embed.emulator import Emulator
from llama_index_gemini_embed.emulator.samples import pdf_with_pages, png_with_description
from tests.conformance.conftest import StoreFactory

PICTURES = {
    "bike": "a red bicycle at night",
    "cake": "a chocolate birthday cake",
    "cat": "a sleeping cat on a sofa",
}


@pytest.fixture
def pictures(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, text in PICTURES.items():
        paths[name] = tmp_path / f"{name}.png"
        paths[name].write_bytes(png_with_description(text))
    return paths


def nodes(pictures: dict[str, Path]) -> list[TextNode]:
    """Two passages and three pictures (ImageNodes carry their path, as readers make them)."""
    texts: list[TextNode] = [
        TextNode(id_="t-bike", text="a red bicycle at night with its lamp on"),
        TextNode(id_="t-cake", text="baking a chocolate birthday cake"),
    ]
    images = [
        ImageNode(
            id_=name,
            image_path=str(path),
            image_mimetype="image/png",
            metadata={"file_path": str(path)},
        )
        for name, path in pictures.items()
    ]
    return texts + images


def ids(hits: list[NodeWithScore]) -> list[str]:
    return [hit.node.node_id for hit in hits]


def two_collection_index(
    open_store: StoreFactory, embed2: GeminiEmbedding, pictures: dict[str, Path]
) -> tuple[MultiModalVectorStoreIndex, ChromaStore, ChromaStore]:
    """``MultiModalVectorStoreIndex`` over ``nodes(pictures)``: texts and images apart."""
    text_store, image_store = open_store(embed2), open_store(embed2)
    context = StorageContext.from_defaults(vector_store=text_store, image_store=image_store)
    index = MultiModalVectorStoreIndex(
        nodes(pictures), storage_context=context, embed_model=embed2, image_embed_model=embed2
    )
    return index, text_store, image_store


def test_multimodal_index_on_a_text_and_an_image_collection(
    open_store: StoreFactory, embed2: GeminiEmbedding, pictures: dict[str, Path]
) -> None:
    index, text_store, image_store = two_collection_index(open_store, embed2, pictures)
    assert (text_store.count(), image_store.count()) == (2, 3)

    retriever = index.as_retriever(similarity_top_k=1, image_similarity_top_k=2)
    assert ids(retriever.text_retrieve("a red bicycle at night")) == ["t-bike"]
    assert ids(retriever.text_to_image_retrieve("a red bicycle at night"))[0] == "bike"
    same = retriever.image_to_image_retrieve(str(pictures["cake"]))
    assert ids(same)[0] == "cake" and same[0].score == pytest.approx(1.0, abs=1e-4)
    assert isinstance(same[0].node, ImageNode)
    assert same[0].node.image_path == str(pictures["cake"])
    # image-to-text: one space, so the image's query vector searches the text collection
    assert ids(retriever.text_retrieve(embed2.image_query(pictures["cake"]))) == ["t-cake"]

    # reopened from the two collections alone (no docstore), it finds the same
    reopened = MultiModalVectorStoreIndex.from_vector_store(
        text_store, embed_model=embed2, image_vector_store=image_store, image_embed_model=embed2
    )
    again = reopened.as_retriever(similarity_top_k=1, image_similarity_top_k=1)
    assert ids(again.retrieve("a red bicycle at night")) == ["t-bike", "bike"]
    [hit] = again.image_to_image_retrieve(str(pictures["cat"]))
    assert isinstance(hit.node, ImageNode) and hit.node.image_path == str(pictures["cat"])


def test_one_collection_serves_as_both_stores(
    open_store: StoreFactory, embed2: GeminiEmbedding, pictures: dict[str, Path]
) -> None:
    store = open_store(embed2)
    context = StorageContext.from_defaults(vector_store=store, image_store=store)
    index = MultiModalVectorStoreIndex(
        nodes(pictures), storage_context=context, embed_model=embed2, image_embed_model=embed2
    )
    assert store.count() == 5
    retriever = index.as_retriever(similarity_top_k=2, image_similarity_top_k=2)
    # one ranked list over every modality (LlamaIndex drops the second copy of each hit)
    hits = retriever.retrieve("a red bicycle at night")
    assert set(ids(hits)) == {"bike", "t-bike"}
    by_image = retriever.image_to_image_retrieve(str(pictures["bike"]))
    assert ids(by_image) == ["bike", "t-bike"]  # the picture itself, then the passage on it


def test_image_query_searches_a_vector_store_index_and_its_query_engine(
    open_store: StoreFactory, embed2: GeminiEmbedding, pictures: dict[str, Path]
) -> None:
    store = open_store(embed2)
    context = StorageContext.from_defaults(vector_store=store)
    # VectorStoreIndex embeds the nodes it is given by their TEXT (an ImageNode's would be
    # its metadata): embed them first (embed2(...), IngestionPipeline or ingest()).
    VectorStoreIndex(embed2(nodes(pictures)), storage_context=context, embed_model=embed2)
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed2)

    query = embed2.image_query(pictures["cat"])
    assert isinstance(query, QueryBundle) and query.image_path == str(pictures["cat"])
    hits = index.as_retriever(similarity_top_k=2).retrieve(query)
    assert ids(hits)[0] == "cat" and isinstance(hits[0].node, ImageNode)

    found = index.as_retriever(similarity_top_k=2).retrieve(
        embed2.image_query(pictures["bike"].read_bytes())
    )
    assert ids(found) == ["bike", "t-bike"]  # the picture itself, then the passage on it
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=2)
    answer = engine.query(embed2.image_query(pictures["cake"], query_str="what is this?"))
    assert ids(answer.source_nodes) == ["cake", "t-cake"]


async def test_image_query_inputs_agree_and_async_matches_sync(
    embed2: GeminiEmbedding, pictures: dict[str, Path]
) -> None:
    path = pictures["bike"]
    by_path = embed2.get_image_query_embedding(path)
    assert np.allclose(by_path, embed2.get_image_query_embedding(str(path)), atol=1e-6)
    assert np.allclose(by_path, embed2.get_image_query_embedding(path.read_bytes()), atol=1e-6)
    assert np.allclose(
        by_path, embed2.get_image_query_embedding(io.BytesIO(path.read_bytes())), atol=1e-6
    )
    assert np.allclose(by_path, await embed2.aget_image_query_embedding(path), atol=1e-6)
    bundle = await embed2.aimage_query(path.read_bytes(), query_str="q")
    assert bundle.image_path is None and bundle.query_str == "q"
    assert bundle.embedding is not None and np.allclose(bundle.embedding, by_path, atol=1e-6)
    # gemini-embedding-2 has one space: the image's query vector IS its document vector
    assert np.allclose(by_path, embed2.get_image_embedding(str(path)), atol=1e-6)


def test_the_query_cache_keys_images_by_their_bytes(
    emulator: Emulator, embed2: GeminiEmbedding, tmp_path: Path
) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(png_with_description("a red bicycle at night"))
    first = embed2.get_image_query_embedding(path)
    sent = emulator.counters.embed_requests
    assert embed2.get_image_query_embedding(path) == first
    assert emulator.counters.embed_requests == sent, "a repeated image query is cached"

    path.write_bytes(png_with_description("a chocolate birthday cake"))  # same path, new image
    second = embed2.get_image_query_embedding(path)
    assert emulator.counters.embed_requests == sent + 1
    assert not np.allclose(first, second, atol=1e-3)

    # a text query that spells the path, or the description, never gets an image's vector
    for text in (str(path), "a chocolate birthday cake"):
        assert not np.allclose(embed2.get_query_embedding(text), second, atol=1e-6)
    assert emulator.counters.embed_requests == sent + 3


def test_image_query_refusals_are_one_clear_line(
    emulator: Emulator, embed2: GeminiEmbedding, pictures: dict[str, Path], tmp_path: Path
) -> None:
    embed1 = GeminiEmbedding(api_key=emulator.api_key, base_url=emulator.base_url)
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "doc.pdf").write_bytes(pdf_with_pages(["a page"]))
    cases = [
        (
            embed1,
            pictures["bike"],
            "gemini-embedding-001 embeds text only: use model_name='gemini-embedding-2' "
            "to query by image",
        ),
        (
            embed2,
            tmp_path / "missing.png",
            f"Cannot read the query image {tmp_path / 'missing.png'}: No such file or "
            "directory; pass the path of a PNG or JPEG file, or its bytes",
        ),
        (
            embed2,
            tmp_path / "notes.txt",
            f"The query image {tmp_path / 'notes.txt'} is text/plain: gemini-embedding-2 "
            "searches by image/jpeg, image/png images; convert it to PNG or JPEG",
        ),
        (
            embed2,
            (tmp_path / "doc.pdf").read_bytes(),
            "The query image (bytes) is application/pdf: gemini-embedding-2 searches by "
            "image/jpeg, image/png images; convert it to PNG or JPEG",
        ),
        (
            embed2,
            b"\x00\x01",
            "The query image (bytes) is not a recognised image: gemini-embedding-2 searches "
            "by image/jpeg, image/png images; convert it to PNG or JPEG",
        ),
    ]
    for model, image, message in cases:
        with pytest.raises(MediaError) as caught:
            model.get_image_query_embedding(image)
        assert str(caught.value) == message
    assert emulator.counters.embed_requests == 0, "every refusal comes before any spend"


async def test_async_retrievers_search_by_image_too(
    open_store: StoreFactory, embed2: GeminiEmbedding, pictures: dict[str, Path]
) -> None:
    index, text_store, _ = two_collection_index(open_store, embed2, pictures)
    retriever = index.as_retriever(similarity_top_k=1, image_similarity_top_k=1)
    assert ids(await retriever.aretrieve("a red bicycle at night")) == ["t-bike", "bike"]
    assert ids(await retriever.aimage_to_image_retrieve(str(pictures["cat"]))) == ["cat"]
    # Async image-to-text: LlamaIndex's atext_retrieve re-embeds query_str (it ignores a given
    # embedding, unlike text_retrieve), so search the text collection with a plain retriever.
    by_image = await embed2.aimage_query(pictures["cake"])
    texts = VectorStoreIndex.from_vector_store(text_store, embed_model=embed2)
    assert ids(await texts.as_retriever(similarity_top_k=1).aretrieve(by_image)) == ["t-cake"]
