"""ChromaStore behaviours that failed before this round's fixes (issue 11 items 1, 3, 7)."""

from __future__ import annotations

from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.retrievers import RecursiveRetriever
from llama_index.core.schema import ImageNode, IndexNode, TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery

from llama_index_gemini_embed import GeminiEmbedding
from tests.conformance.conftest import StoreFactory
from tests.conformance.test_applications import PRIME_TABLE, index_over, text_nodes
from tests.conformance.test_vector_store import A, corpus, f, where


def test_metadata_key_order_survives_a_round_trip(open_store: StoreFactory) -> None:
    """node.hash and the metadata text an LLM sees depend on the key order."""
    store = open_store()
    node = TextNode(
        id_="ordered",
        text="body",
        embedding=[1.0, 0.0],
        metadata={"zeta": 1, "alpha": "x", "mid": [1, 2], "beta": None},
    )
    store.add([node])
    [got] = store.get_nodes(["ordered"])
    assert list(got.metadata) == ["zeta", "alpha", "mid", "beta"]
    assert got.hash == node.hash


def test_filter_only_query_without_an_embedding(open_store: StoreFactory) -> None:
    """ChromaVectorStore answers a VectorStoreQuery that has filters and no embedding."""
    store = open_store()
    store.add(corpus())
    result = store.query(VectorStoreQuery(filters=where(f("rank", "a")), similarity_top_k=1))
    assert result.nodes is not None
    assert [n.node_id for n in result.nodes] == [A]


def test_image_node_beside_text_does_not_hide_text(
    open_store: StoreFactory, embed: GeminiEmbedding
) -> None:
    """Issue 11 item 1: an ImageNode inserted beside text nodes leaves the text retrievable."""
    index = index_over(open_store, embed)
    index.insert_nodes(text_nodes())
    index.insert_nodes([ImageNode(id_="img", text="A photo of a red bicycle at night")])
    hits = index.as_retriever(similarity_top_k=1).retrieve("highest mountain in Japan")
    assert [h.node.node_id for h in hits] == ["node-fuji"]


def test_index_with_objects_still_returns_text_nodes(
    open_store: StoreFactory, embed: GeminiEmbedding
) -> None:
    """Issue 11 item 1: an IndexNode object must not hide the text nodes."""
    store = open_store(embed_model=embed)
    index = VectorStoreIndex(
        text_nodes(),
        objects=[
            IndexNode(
                id_="obj", text="A lookup table of prime numbers", index_id="obj", obj=PRIME_TABLE
            )
        ],
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=embed,
    )
    hits = index.as_retriever(similarity_top_k=1).retrieve("highest mountain in Japan")
    assert [h.node.node_id for h in hits] == ["node-fuji"]
    hits = index.as_retriever(similarity_top_k=1).retrieve("prime numbers lookup table")
    assert [h.node.node_id for h in hits] == ["prime-table"]


def test_recursive_retriever_follows_index_nodes(
    open_store: StoreFactory, embed: GeminiEmbedding
) -> None:
    sub = index_over(open_store, embed)
    sub.insert_nodes(
        [
            TextNode(
                id_="sub-1", text="The Danube flows through ten countries into the Black Sea."
            ),
            TextNode(id_="sub-2", text="The Rhine flows into the North Sea at Rotterdam."),
        ]
    )
    top_index = index_over(open_store, embed)
    top_index.insert_nodes(
        [
            *text_nodes(),
            IndexNode(id_="rivers", text="European rivers: Danube, Rhine", index_id="sub"),
        ]
    )
    retriever = RecursiveRetriever(
        "vector",
        retriever_dict={
            "vector": top_index.as_retriever(similarity_top_k=1),
            "sub": sub.as_retriever(similarity_top_k=1),
        },
    )
    hits = retriever.retrieve("Which European river flows into the Black Sea? Danube")
    assert [h.node.node_id for h in hits] == ["sub-1"]
    hits = retriever.retrieve("Who composed the Brandenburg Concertos?")
    assert [h.node.node_id for h in hits] == ["node-bach"]
