"""The set-ups users build on LlamaIndex, with GeminiEmbedding and ChromaStore underneath.

Index maintenance (insert, delete_ref_doc, refresh_ref_docs), persist and reload, chat
engines, fusion, auto-merging and recursive retrieval, objects, and the async paths. The
only LLM is LlamaIndex's MockLLM (not our code): what is checked is what gets retrieved.
"""

from __future__ import annotations

from pathlib import Path

from llama_index.core import StorageContext, VectorStoreIndex, load_index_from_storage
from llama_index.core.chat_engine.types import ChatMode
from llama_index.core.indices.vector_store.retrievers import VectorIndexRetriever
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import HierarchicalNodeParser, get_leaf_nodes
from llama_index.core.retrievers import (
    AutoMergingRetriever,
    QueryFusionRetriever,
)
from llama_index.core.retrievers.fusion_retriever import FUSION_MODES
from llama_index.core.schema import Document, TextNode

from llama_index_gemini_embed import GeminiEmbedding
from tests.conformance.conftest import StoreFactory

FACTS = {
    "paris": "Paris is the capital of France and home of the Eiffel Tower.",
    "fuji": "Mount Fuji is the highest mountain in Japan.",
    "nile": "The Nile flows north into the Mediterranean Sea.",
    "bach": "Johann Sebastian Bach composed the Brandenburg Concertos.",
}


def docs() -> list[Document]:
    return [Document(id_=k, text=v) for k, v in FACTS.items()]


def text_nodes() -> list[TextNode]:
    return [TextNode(id_=f"node-{k}", text=v) for k, v in FACTS.items()]


def index_over(open_store: StoreFactory, embed: GeminiEmbedding) -> VectorStoreIndex:
    store = open_store(embed_model=embed)
    return VectorStoreIndex.from_vector_store(store, embed_model=embed)


def top(index: VectorStoreIndex, query: str, k: int = 1) -> list[str | None]:
    return [hit.node.ref_doc_id for hit in index.as_retriever(similarity_top_k=k).retrieve(query)]


def test_insert_delete_ref_doc_and_refresh(
    open_store: StoreFactory, embed: GeminiEmbedding
) -> None:
    index = index_over(open_store, embed)
    for doc in docs():
        index.insert(doc)
    assert top(index, "highest mountain in Japan") == ["fuji"]
    index.delete_ref_doc("nile")
    assert "nile" not in top(index, "river flowing into the Mediterranean Sea", k=4)
    items = embed.usage.items
    new = [doc for doc in docs() if doc.id_ != "nile"]
    new[0] = Document(id_="paris", text="Paris hosted the Summer Olympics in 2024.")
    new.append(Document(id_="rome", text="Rome is the capital of Italy."))
    assert index.refresh_ref_docs(new) == [True, False, False, True]  # changed, same, same, new
    assert embed.usage.items == items + 2
    assert top(index, "summer olympics") == ["paris"]
    assert top(index, "capital of Italy") == ["rome"]
    stored = index.vector_store.get_nodes()
    assert sorted(n.ref_doc_id or "" for n in stored) == ["bach", "fuji", "paris", "rome"]


def test_persist_and_reload(
    open_store: StoreFactory, embed: GeminiEmbedding, tmp_path: Path
) -> None:
    store = open_store(embed_model=embed)
    context = StorageContext.from_defaults(vector_store=store)
    index = VectorStoreIndex.from_documents(docs(), storage_context=context, embed_model=embed)
    context.persist(persist_dir=str(tmp_path / "meta"))
    index_id = index.index_id
    store.close()
    reopened = open_store(embed_model=embed, name=store.collection_name)
    loaded = load_index_from_storage(
        StorageContext.from_defaults(vector_store=reopened, persist_dir=str(tmp_path / "meta")),
        embed_model=embed,
        index_id=index_id,
    )
    assert isinstance(loaded, VectorStoreIndex)
    assert top(loaded, "who composed the Brandenburg Concertos") == ["bach"]


def test_chat_engine_retrieves_context(open_store: StoreFactory, embed: GeminiEmbedding) -> None:
    index = index_over(open_store, embed)
    index.insert_nodes(text_nodes())
    chat = index.as_chat_engine(chat_mode=ChatMode.CONTEXT, llm=MockLLM(), similarity_top_k=1)
    response = chat.chat("Which river flows into the Mediterranean?")
    assert [n.node.node_id for n in response.source_nodes] == ["node-nile"]
    response = chat.chat("Who composed the Brandenburg Concertos?")
    assert [n.node.node_id for n in response.source_nodes] == ["node-bach"]


def test_query_fusion_retriever(open_store: StoreFactory, embed: GeminiEmbedding) -> None:
    first = index_over(open_store, embed)
    first.insert_nodes(text_nodes()[:2])
    second = index_over(open_store, embed)
    second.insert_nodes(text_nodes()[2:])
    fusion = QueryFusionRetriever(
        [first.as_retriever(similarity_top_k=2), second.as_retriever(similarity_top_k=2)],
        llm=MockLLM(),
        num_queries=1,  # no generated queries: the retrieval itself is under test
        mode=FUSION_MODES.SIMPLE,  # the best score per node wins: deterministic order
        similarity_top_k=2,
        use_async=True,
    )
    hits = fusion.retrieve("Which river flows into the Mediterranean?")
    assert hits[0].node.node_id == "node-nile"
    hits = fusion.retrieve("the capital of France")
    assert hits[0].node.node_id == "node-paris"


def test_auto_merging_retriever(open_store: StoreFactory, embed: GeminiEmbedding) -> None:
    volcano = " ".join(
        f"Volcano fact {i}: lava from the volcano erupts as magma and ash." for i in range(8)
    )
    other = " ".join(f"Garden note {i}: tomatoes need sun and water daily." for i in range(8))
    nodes = HierarchicalNodeParser.from_defaults(chunk_sizes=[512, 48]).get_nodes_from_documents(
        [Document(id_="volcano", text=volcano), Document(id_="garden", text=other)]
    )
    leaves = get_leaf_nodes(nodes)
    parents = {n.node_id for n in nodes} - {n.node_id for n in leaves}
    assert len(leaves) > 4 and parents
    context = StorageContext.from_defaults(vector_store=open_store(embed_model=embed))
    context.docstore.add_documents(nodes)
    index = VectorStoreIndex(leaves, storage_context=context, embed_model=embed)
    leaf_retriever = index.as_retriever(similarity_top_k=6)
    assert isinstance(leaf_retriever, VectorIndexRetriever)
    retriever = AutoMergingRetriever(leaf_retriever, context, simple_ratio_thresh=0.4)
    hits = retriever.retrieve("volcano lava magma eruption")
    merged = [h for h in hits if h.node.node_id in parents]
    assert merged, "the volcano leaves were merged into their parent"
    assert all("Volcano" in h.node.get_content() for h in merged)


#: The object behind an IndexNode: retrieving the IndexNode returns this node.
PRIME_TABLE = TextNode(id_="prime-table", text="2, 3, 5, 7, 11, 13")


async def test_async_retrieve_and_query(open_store: StoreFactory, embed: GeminiEmbedding) -> None:
    store = open_store(embed_model=embed)
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    await index.ainsert_nodes(text_nodes())
    hits = await index.as_retriever(similarity_top_k=1).aretrieve("capital of France")
    assert [h.node.node_id for h in hits] == ["node-paris"]
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=1)
    response = await engine.aquery("the highest mountain in Japan")
    assert [n.node.node_id for n in response.source_nodes] == ["node-fuji"]
