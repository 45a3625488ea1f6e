"""GeminiEmbedding behaviours that failed before this round's fixes (issue 11 items 2, 6, 10)."""

from __future__ import annotations

import copy

import numpy as np
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.embeddings.loading import load_embed_model
from llama_index.core.ingestion import DocstoreStrategy
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import TextNode

import llama_index_gemini_embed  # noqa: F401  (registers our classes where LlamaIndex looks)
from llama_index_gemini_embed import GeminiEmbedding, GeminiReranker
from tests.conformance.conftest import StoreFactory
from tests.conformance.test_ingestion_pipeline import docs, pipeline


def test_llamaindex_load_embed_model_rebuilds_it(embed: GeminiEmbedding) -> None:
    """Issue 11 item 10: LlamaIndex's own loader knows our class after the import."""
    data = embed.to_dict()
    loaded = load_embed_model({**data, "api_key": secret(embed)})
    assert isinstance(loaded, GeminiEmbedding)
    assert loaded.to_dict() == data


def test_deepcopy_gives_a_working_copy(embed: GeminiEmbedding) -> None:
    twin = copy.deepcopy(embed)
    assert twin.to_dict() == embed.to_dict()
    assert np.allclose(twin.get_query_embedding("hi"), embed.get_query_embedding("hi"), atol=1e-6)


def test_token_counting_handler_sees_embedding_tokens(embed: GeminiEmbedding) -> None:
    """Issue 11 item 6: TokenCountingHandler (and observability tools) count embedding tokens."""
    counter = TokenCountingHandler(tokenizer=str.split)
    embed.callback_manager = CallbackManager([counter])
    embed.get_query_embedding("four words right here")
    embed.get_text_embedding_batch(["two words", "three more words"])
    embed([TextNode(text="one")])
    assert counter.total_embedding_token_count > 0
    assert len(counter.embedding_token_counts) >= 3


def test_the_same_node_gets_the_same_vector_on_every_path(
    open_store: StoreFactory, embed: GeminiEmbedding
) -> None:
    """Issue 11 item 2: IngestionPipeline and VectorStoreIndex.from_documents must agree."""
    via_pipeline = open_store(embed_model=embed)
    pipeline(embed, via_pipeline, DocstoreStrategy.UPSERTS).run(documents=docs())
    via_index = open_store(embed_model=embed)

    VectorStoreIndex.from_documents(
        docs(),
        storage_context=StorageContext.from_defaults(vector_store=via_index),
        embed_model=embed,
        transformations=[SentenceSplitter(chunk_size=256, chunk_overlap=0)],
    )
    a = {n.get_content(): n.embedding for n in via_pipeline.get_nodes(include_embeddings=True)}
    b = {n.get_content(): n.embedding for n in via_index.get_nodes(include_embeddings=True)}
    assert a.keys() == b.keys()
    for text, vector in a.items():
        other = b[text]
        assert vector is not None and other is not None
        assert np.allclose(vector, other, atol=1e-5), text


def secret(model: GeminiEmbedding | GeminiReranker) -> str:
    assert model.api_key is not None
    return model.api_key.get_secret_value()
