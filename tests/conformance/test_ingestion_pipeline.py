"""IngestionPipeline with GeminiEmbedding and ChromaStore: every docstore strategy keeps the
store in step with the documents, and nothing unchanged is embedded twice."""

from __future__ import annotations

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import Document
from llama_index.core.storage.docstore import SimpleDocumentStore

from llama_index_gemini_embed import ChromaStore, GeminiEmbedding
from tests.conformance.conftest import StoreFactory


def docs() -> list[Document]:
    return [
        Document(id_="paris", text="Paris is the capital of France.", metadata={"title": "Paris"}),
        Document(id_="fuji", text="Mount Fuji is the highest mountain in Japan."),
        Document(id_="nile", text="The Nile flows north into the Mediterranean Sea."),
    ]


def pipeline(
    embed: GeminiEmbedding, store: ChromaStore, strategy: DocstoreStrategy
) -> IngestionPipeline:
    return IngestionPipeline(
        transformations=[SentenceSplitter(chunk_size=256, chunk_overlap=0), embed],
        vector_store=store,
        docstore=SimpleDocumentStore(),
        docstore_strategy=strategy,
    )


def stored_ref_docs(store: ChromaStore) -> dict[str, str]:
    return {n.ref_doc_id or "": n.get_content() for n in store.get_nodes()}


def top_ref_doc(store: ChromaStore, embed: GeminiEmbedding, query: str) -> str | None:
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    [hit] = index.as_retriever(similarity_top_k=1).retrieve(query)
    return hit.node.ref_doc_id


@pytest.mark.parametrize("strategy", list(DocstoreStrategy))
def test_rerun_of_unchanged_documents_embeds_nothing(
    open_store: StoreFactory, embed: GeminiEmbedding, strategy: DocstoreStrategy
) -> None:
    store = open_store(embed_model=embed)
    pipe = pipeline(embed, store, strategy)
    assert len(pipe.run(documents=docs())) == 3
    assert store.count() == 3
    items = embed.usage.items
    assert pipe.run(documents=docs()) == []
    assert embed.usage.items == items
    assert store.count() == 3
    assert top_ref_doc(store, embed, "highest mountain in Japan") == "fuji"


@pytest.mark.parametrize(
    "strategy", [DocstoreStrategy.UPSERTS, DocstoreStrategy.UPSERTS_AND_DELETE]
)
def test_changed_document_replaces_its_chunks(
    open_store: StoreFactory, embed: GeminiEmbedding, strategy: DocstoreStrategy
) -> None:
    store = open_store(embed_model=embed)
    pipe = pipeline(embed, store, strategy)
    pipe.run(documents=docs())
    items = embed.usage.items
    changed = docs()
    changed[1] = Document(id_="fuji", text="Kilimanjaro is the highest mountain in Africa.")
    assert len(pipe.run(documents=changed)) == 1
    assert embed.usage.items == items + 1
    assert store.count() == 3
    assert stored_ref_docs(store)["fuji"] == "Kilimanjaro is the highest mountain in Africa."
    assert top_ref_doc(store, embed, "highest mountain in Africa") == "fuji"


def test_upserts_and_delete_removes_missing_documents(
    open_store: StoreFactory, embed: GeminiEmbedding
) -> None:
    store = open_store(embed_model=embed)
    pipe = pipeline(embed, store, DocstoreStrategy.UPSERTS_AND_DELETE)
    pipe.run(documents=docs())
    pipe.run(documents=docs()[:2])
    assert sorted(stored_ref_docs(store)) == ["fuji", "paris"]
    assert sorted(pipe.docstore.docs) == ["fuji", "paris"]  # type: ignore[union-attr]


async def test_arun_fills_the_store_like_run(
    open_store: StoreFactory, embed: GeminiEmbedding
) -> None:
    store = open_store(embed_model=embed)
    pipe = pipeline(embed, store, DocstoreStrategy.UPSERTS)
    nodes = await pipe.arun(documents=docs())
    assert len(nodes) == 3 and store.count() == 3
    assert await pipe.arun(documents=docs()) == []
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    [hit] = await index.as_retriever(similarity_top_k=1).aretrieve("capital of France")
    assert hit.node.ref_doc_id == "paris"


def test_pipeline_without_docstore_upserts_by_node_id(
    open_store: StoreFactory, embed: GeminiEmbedding
) -> None:
    store = open_store(embed_model=embed)
    pipe = IngestionPipeline(transformations=[SentenceSplitter(), embed], vector_store=store)
    pipe.run(documents=docs())
    pipe.run(documents=docs())  # same node ids (deterministic from the doc id): no duplicates
    assert store.count() == 3
