"""An offline Gemini API emulator that the real ``google-genai`` SDK talks to unchanged.

    from google import genai
    from google.genai import types
    from llama_index_gemini_embed.emulator import Emulator, QuotaConfig, embed_text

    with Emulator(quota=QuotaConfig(items_per_minute=100)) as emu:
        client = genai.Client(api_key=emu.api_key,
                              http_options=types.HttpOptions(base_url=emu.base_url))
        resp = client.models.embed_content(model="gemini-embedding-001", contents=["hi"])
        assert resp.embeddings[0].values == embed_text("hi")

Also a CLI: ``python -m llama_index_gemini_embed.emulator --port 8765 --api-key KEY``.
"""

from __future__ import annotations

from ._judge import Judge, JudgeRequest, default_judge
from ._server import DEFAULT_API_KEY, Emulator, serve_forever
from ._state import (
    BatchBehaviour,
    Counters,
    Fault,
    FaultConfig,
    QuotaConfig,
    RequestRecord,
)
from ._vectors import Encoder, EncodeRequest, cosine, embed_text

__all__ = [
    "DEFAULT_API_KEY",
    "BatchBehaviour",
    "Counters",
    "Emulator",
    "EncodeRequest",
    "Encoder",
    "Fault",
    "FaultConfig",
    "Judge",
    "JudgeRequest",
    "QuotaConfig",
    "RequestRecord",
    "cosine",
    "default_judge",
    "embed_text",
    "serve_forever",
]
