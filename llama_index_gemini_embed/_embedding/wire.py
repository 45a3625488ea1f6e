"""What a request looks like on the wire and what each item weighs (pure).

    item_bytes("hello", "Title", "gemini-embedding-001")   # bytes json.dumps writes for it
    wire_item(item, model="gemini-embedding-001", dimension=768)  # one requests[] entry

Split from the engine (which sends) so the facts about the SDK's serialisation live in one
place: docs/gemini-api.md "Online embeddings" cites each of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from google.genai import types

from llama_index_gemini_embed._packing import Item
from llama_index_gemini_embed._types import MediaPart

__all__ = [
    "MAX_REQUEST_BYTES",
    "PAYLOAD_LIMIT_BYTES",
    "SDK_HAS_EXTRA_BODY",
    "item_bytes",
    "media_bytes",
    "modality_tokens",
    "wire_item",
]

# google-genai >= 2.20 (our floor) through 3.6.1 have HttpOptions.extra_body, merged into
# the request body by BaseApiClient._build_request (lists are replaced whole): the one
# public way to send batchEmbedContents.requests[] with a title per item. See
# docs/gemini-api.md "Per-item titles".
SDK_HAS_EXTRA_BODY = "extra_body" in types.HttpOptions.model_fields

# The Gemini API refuses request bodies over 4,194,304 bytes (400 "Request payload size
# exceeds the limit: 4194304 bytes."; docs/gemini-api.md). The SDK serialises with
# json.dumps (ASCII-escaped), so an item's share is measurable; keep 4 KiB for the envelope.
PAYLOAD_LIMIT_BYTES = 4_194_304
MAX_REQUEST_BYTES = PAYLOAD_LIMIT_BYTES - 4096


def media_bytes(media: Sequence[MediaPart], *, max_inline: int | None = None) -> int:
    """Media's share of the body: inline data as base64 (4 bytes per 3) plus the part's
    keys; a ``fileData`` reference (a URI, or data over ``max_inline`` that is uploaded)
    ~200 bytes."""
    return sum(
        len(p.data) * 4 // 3 + 4 + 60
        if p.data is not None and (max_inline is None or len(p.data) <= max_inline)
        else 200
        for p in media
    )


def item_bytes(text: str, title: str | None, model: str) -> int:
    """An item's bytes in ``batchEmbedContents.requests[]`` as ``json.dumps`` writes it."""
    # {"content": {"parts": [{"text": …}]}, "taskType": "RETRIEVAL_DOCUMENT", "title": …,
    #  "outputDimensionality": 3072, "model": "models/…"}, : ~150 bytes of keys and values.
    size = len(json.dumps(text)) + 160 + len(model)
    return size + len(json.dumps(title)) if title is not None else size


def wire_item(item: Item, *, model: str, dimension: int | None) -> dict[str, object]:
    """One ``batchEmbedContents.requests[]`` entry, as the SDK writes it (camelCase)."""
    if not model.startswith(("models/", "tunedModels/")):  # the SDK's t_model (mldev)
        model = f"models/{model}"
    entry: dict[str, object] = {"content": {"parts": [{"text": item.text}]}, "model": model}
    if item.task_type is not None:
        entry["taskType"] = item.task_type
    if item.title is not None:
        entry["title"] = item.title
    if dimension is not None:
        entry["outputDimensionality"] = dimension
    return entry


def modality_tokens(response: object) -> dict[str, int] | None:
    """``usageMetadata.promptTokensDetails`` as {"text"|"image"|"pdf"|"audio"|"video": n}."""
    usage = getattr(response, "usage_metadata", None)
    details = getattr(usage, "prompt_tokens_details", None)
    if not details:
        return None
    names = {"DOCUMENT": "pdf"}
    out: dict[str, int] = {}
    for detail in details:
        raw = getattr(detail, "modality", None)
        count = getattr(detail, "token_count", None)
        if raw is None or not isinstance(count, int):
            continue
        name = str(getattr(raw, "value", raw))
        kind = names.get(name, name.lower())
        out[kind] = out.get(kind, 0) + count
    return out or None
