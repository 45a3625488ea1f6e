"""Repro: types.Content objects cost ~2.5x the client CPU of the same request as dicts.

_engine._send builds `types.Content(parts=[types.Part(text=...)])` per text (needed: one
Content per text). Plain dicts `{"parts": [{"text": ...}]}` give the same request body.

    bench/.venv-bench/bin/python bench/repro/content_objects.py
"""

import asyncio
import resource
from typing import Any

from google import genai
from google.genai import types

from llama_index_gemini_embed.emulator import Emulator


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


texts = [f"chunk {i}: " + " ".join(f"word{j}" for j in range(40)) for i in range(2000)]
cfg = types.EmbedContentConfig(task_type="RETRIEVAL_DOCUMENT", output_dimensionality=768)

with Emulator() as emu:
    client = genai.Client(
        api_key=emu.api_key, http_options=types.HttpOptions(base_url=emu.base_url)
    )

    async def go(kind: str) -> None:
        for i in range(0, len(texts), 100):
            batch = texts[i : i + 100]
            contents: Any = (
                [types.Content(parts=[types.Part(text=t)]) for t in batch]
                if kind == "Content"
                else [{"parts": [{"text": t}]} for t in batch]
            )
            await client.aio.models.embed_content(
                model="gemini-embedding-001", contents=contents, config=cfg
            )

    asyncio.run(go("dict"))  # warm-up
    for kind in ("Content", "dict", "Content", "dict"):
        c = cpu()
        asyncio.run(go(kind))
        per_text = (cpu() - c) / len(texts) * 1e3
        print(f"{kind:8s} {per_text:.3f} ms CPU per text (client + in-process emulator)")
