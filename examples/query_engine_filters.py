"""A LlamaIndex query engine over Chroma with metadata filters (and optional reranking).

    python examples/query_engine_filters.py

The sample corpus carries a ``category`` per document (from its front matter). Filters are
applied inside Chroma, before ranking. No LLM call is needed here: ``MockLLM`` stands in for
the answer synthesiser, and we look at the retrieved source nodes. Plug in any LlamaIndex LLM
(e.g. ``llama-index-llms-google-genai``) to get written answers.
"""

from __future__ import annotations

import tempfile

from _backend import gemini_backend
from llama_index.core import VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.vector_stores.types import ExactMatchFilter, MetadataFilters

from llama_index_gemini_embed import (
    ChromaStore,
    GeminiEmbedding,
    GeminiReranker,
    ingest,
    sample_corpus_dir,
)

QUESTIONS = [
    ("How much does it cost?", "billing"),
    ("How do I fix a sync error?", "support"),
    ("How do I fix a sync error?", None),
]


def main(path: str) -> None:
    with gemini_backend() as backend:
        embed = GeminiEmbedding(output_dimensionality=768, **backend.kwargs)
        with ChromaStore("example-filters", path=path, embed_model=embed) as store:
            ingest(sample_corpus_dir(), embed_model=embed, store=store, show_progress=False)
            index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
            reranker = GeminiReranker(top_n=2, **backend.kwargs)
            for question, category in QUESTIONS:
                filters = (
                    MetadataFilters(filters=[ExactMatchFilter(key="category", value=category)])
                    if category
                    else None
                )
                engine = index.as_query_engine(
                    llm=MockLLM(),
                    similarity_top_k=4,
                    filters=filters,
                    node_postprocessors=[reranker],
                )
                response = engine.query(question)
                print(f"\nQ: {question}  [category={category or 'any'}]")
                for hit in response.source_nodes:
                    meta = hit.node.metadata
                    print(
                        f"  {hit.score or 0:.2f}  {meta.get('source', '?'):<24} "
                        f"category={meta.get('category', '-'):<16} {meta.get('title', '')}"
                    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        main(scratch)
