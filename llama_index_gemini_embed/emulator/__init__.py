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

What it serves (the API facts and their sources: docs/gemini-api.md):

* Developer API under ``/v1``, ``/v1beta``, ``/v1alpha``: ``models/{m}:batchEmbedContents``,
  ``:embedContent``, ``:countTokens``, ``:generateContent``, ``:asyncBatchEmbedContent``,
  ``GET models[/{m}]``, ``batches[/{id}[:cancel]]``, ``files[/{id}[:download]]`` and the
  resumable ``POST /upload/{ver}/files``.
* Vertex AI under ``/v1`` and ``/v1beta1``, with or without ``projects/{p}/locations/{l}/``:
  ``publishers/google/models/{m}:predict|embedContent|batchEmbedContents|countTokens|
  generateContent`` (``x-goog-api-key`` or any ``Authorization: Bearer`` token).
* Vectors: :func:`embed_text` gives exactly what the server returns for one item;
  :func:`embed_media` the same for text + media parts (gemini-embedding-2).
* Media (gemini-embedding-2 ``inlineData``/``fileData`` parts): no vision — a medium is
  placed by the description it carries (PNG ``tEXt``, JPEG comment/EXIF, WAV ``INAM``, PDF
  text layer, MP4 ``©nam``), else by a hash of its bytes; see ``_media`` and
  docs/gemini-api.md §7. :mod:`.samples` makes such files.
* Quotas count items and tokens (the emulator's own ``_tokens.count_tokens``) per model;
  a refused request gets the real 429 body with QuotaFailure and RetryInfo, and counts nothing.
* Faults (``set_faults``/``script_faults``) and latency apply to embedding and generate calls;
  ``Fault.exhausted("limit_zero"|"capacity"|"spend_cap"|"prepay_depleted")`` gives the 429s
  waiting cannot fix. Reported real-service behaviours are opt-in switches:
  ``set_batch_behaviour(results_lag_polls=, answer_mode=, item_error_form=)``,
  ``set_upload_behaviour(refuse_mime_types=, processing_polls=)``,
  ``set_v1_behaviour(batches_and_files=, generate_config=)`` (docs/gemini-api.md §6b).
* It refuses what the real API refuses: embed requests over 4,194,304 bytes, retired models
  (``gemini-2.5-flash``), ``title`` without RETRIEVAL_DOCUMENT (-001), media on -001, media
  over the documented per-item limits. It imports nothing from the client package.
* ``generateContent`` is answered by a judge: the default scores ``<passage id="…">`` blocks
  against ``<query>…</query>`` by word overlap (0–10), see :mod:`._judge`.
"""

from __future__ import annotations

from . import samples
from ._judge import Judge, JudgeRequest, default_judge
from ._protocol import embed_media
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
    "embed_media",
    "embed_text",
    "samples",
    "serve_forever",
]
