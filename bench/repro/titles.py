"""Repro: a distinct `title` per document makes one embedding request per document.

GeminiEmbedding groups requests by title because google-genai's embed_content takes one
config (one title) per call; the REST batchEmbedContents itself accepts a title per item.

    bench/.venv-bench/bin/python bench/repro/titles.py
"""

import asyncio
import tempfile

from llama_index.core.schema import Document

from llama_index_gemini_embed import ChromaStore, GeminiEmbedding
from llama_index_gemini_embed._ingest import aingest
from llama_index_gemini_embed.emulator import Emulator

with Emulator() as emu:
    embed = GeminiEmbedding(api_key=emu.api_key, base_url=emu.base_url, output_dimensionality=768)
    for titled in (False, True):
        emu.reset_counters()
        store = ChromaStore(f"titles-{titled}", path=tempfile.mkdtemp(), embed_model=embed)
        docs = [
            Document(
                text=f"body of document {i}",
                id_=f"d{i}",
                metadata={"title": f"Title {i}"} if titled else {},
            )
            for i in range(200)
        ]
        report = asyncio.run(aingest(docs, store=store, embed_model=embed, show_progress=False))
        print(
            f"titles={titled}: {report.embedded} chunks -> "
            f"{emu.counters.embed_requests} embedding requests"
        )
        store.close()
