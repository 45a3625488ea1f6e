"""Issue 11 item 6: every embedding path emits LlamaIndex's callback and instrumentation events.

The real TokenCountingHandler (with its default tiktoken tokenizer, shipped in
llama-index-core's cache) and a real instrumentation event handler on the root dispatcher.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.embedding import (
    EmbeddingEndEvent,
    EmbeddingStartEvent,
)
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import Document, TextNode
from llama_index.core.utils import get_tokenizer
from llama_index_instrumentation import get_dispatcher
from pydantic import Field

from llama_index_gemini_embed import ChromaStore, GeminiEmbedding, ingest
from llama_index_gemini_embed.emulator import Emulator


class _Events(BaseEventHandler):
    events: list[BaseEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "EmbeddingEvents"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, EmbeddingStartEvent | EmbeddingEndEvent):
            self.events.append(event)


@pytest.fixture
def events() -> Iterator[list[BaseEvent]]:
    handler = _Events()
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        yield handler.events
    finally:
        root.event_handlers.remove(handler)


def tokens(chunks: list[str]) -> int:
    tokenizer = get_tokenizer()
    return sum(len(tokenizer(chunk)) for chunk in chunks)


Path_ = Callable[[GeminiEmbedding, Path], Awaitable[list[str]]]


async def query_sync(embed: GeminiEmbedding, tmp: Path) -> list[str]:
    embed.get_query_embedding("where is the tower?")
    return ["where is the tower?"]


async def query_async(embed: GeminiEmbedding, tmp: Path) -> list[str]:
    await embed.aget_query_embedding("where is the tower?")
    return ["where is the tower?"]


async def text_sync(embed: GeminiEmbedding, tmp: Path) -> list[str]:
    embed.get_text_embedding("the tower is in paris")
    return ["the tower is in paris"]


async def text_async(embed: GeminiEmbedding, tmp: Path) -> list[str]:
    await embed.aget_text_embedding("the tower is in paris")
    return ["the tower is in paris"]


async def batch_sync(embed: GeminiEmbedding, tmp: Path) -> list[str]:
    texts = [f"document number {i}" for i in range(150)]
    embed.get_text_embedding_batch(texts)
    return texts


async def batch_async(embed: GeminiEmbedding, tmp: Path) -> list[str]:
    texts = [f"document number {i}" for i in range(150)]
    await embed.aget_text_embedding_batch(texts)
    return texts


async def pipeline(embed: GeminiEmbedding, tmp: Path) -> list[str]:
    nodes = [TextNode(text=f"node {i}") for i in range(3)]
    await IngestionPipeline(transformations=[embed]).arun(nodes=nodes)
    IngestionPipeline(transformations=[embed]).run(nodes=nodes)
    return [n.text for n in nodes] * 2


async def index(embed: GeminiEmbedding, tmp: Path) -> list[str]:
    docs = [Document(text=f"doc {i}") for i in range(3)]
    VectorStoreIndex.from_documents(
        docs, embed_model=embed, transformations=[SentenceSplitter(chunk_size=256)]
    )
    return [d.text for d in docs]


async def ingest_path(embed: GeminiEmbedding, tmp: Path) -> list[str]:
    docs = [Document(id_=f"d{i}", text=f"ingested doc {i}") for i in range(5)]
    store = ChromaStore("events-docs", path=str(tmp / "store"), embed_model=embed)
    await asyncio_ingest(docs, embed, store)
    return [d.text for d in docs]


async def asyncio_ingest(docs: list[Document], embed: GeminiEmbedding, store: ChromaStore) -> None:
    import asyncio

    await asyncio.to_thread(ingest, docs, embed_model=embed, store=store)


PATHS: dict[str, Path_] = {
    "query_sync": query_sync,
    "query_async": query_async,
    "text_sync": text_sync,
    "text_async": text_async,
    "batch_sync": batch_sync,
    "batch_async": batch_async,
    "pipeline": pipeline,
    "index": index,
    "ingest": ingest_path,
}


@pytest.mark.parametrize("path", sorted(PATHS))
async def test_every_path_reports_embedding_tokens_and_events(
    emulator: Emulator, tmp_path: Path, events: list[BaseEvent], path: str
) -> None:
    counter = TokenCountingHandler()
    embed = GeminiEmbedding(
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        output_dimensionality=128,
        callback_manager=CallbackManager([counter]),
    )
    if path == "index":  # the index hands the embedder its own (global) callback manager
        from llama_index.core import Settings

        previous = Settings._callback_manager
        Settings.callback_manager = CallbackManager([counter])
        try:
            chunks = await PATHS[path](embed, tmp_path)
        finally:
            Settings._callback_manager = previous
    else:
        chunks = await PATHS[path](embed, tmp_path)

    assert counter.total_embedding_token_count == tokens(chunks) > 0
    assert sorted(e.prompt for e in counter.embedding_token_counts) == sorted(chunks)
    starts = [e for e in events if isinstance(e, EmbeddingStartEvent)]
    ends = [e for e in events if isinstance(e, EmbeddingEndEvent)]
    assert len(starts) == len(ends) == embed.usage.requests
    assert sorted(c for e in ends for c in e.chunks) == sorted(chunks)
    assert all(len(e.chunks) == len(e.embeddings) for e in ends)
    assert all(e.model_dict["model_name"] == "gemini-embedding-001" for e in starts)
    assert emulator.api_key not in str([e.model_dict for e in starts])
