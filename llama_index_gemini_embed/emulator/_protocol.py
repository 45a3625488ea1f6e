"""Wire-format helpers: Google error envelopes, model catalogue, request-item parsing.

    >>> raise ApiError(400, "bad")          # the server turns it into {"error": {...}}
    Traceback (most recent call last):
    ...
    llama_index_gemini_embed.emulator._protocol.ApiError: bad

Why ~600 lines in one module: it is the one grammar of an embedding request item (text and
media parts, options, limits, token counts) that the online routes, Vertex routes and the
Batch API all share; split, the three would drift apart.

Pure functions, shared by the online handlers and the batch processor so both produce
identical vectors and errors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._facts import (
    EMBEDDING_MODELS,
    GENERATION_MODELS,
    MEDIA_LIMITS,
    RETIRED_MODELS,
)
from ._media import MediaInfo, read_media
from ._vectors import (
    TASK_TYPES,
    VERTEX_LEGACY_MODELS,
    EmbedItem,
    Encoder,
    EncodeRequest,
    FloatArray,
    MediaPart,
    Part,
    effective_title,
    finish_vector,
    is_multimodal_model,
    item_vector,
    max_dimension,
    max_input_tokens,
    part_text,
    part_tokens,
    to_json_floats,
    truncate_parts,
)

__all__ = [
    "GENERATION_MODELS",
    "ApiError",
    "ParsedItem",
    "compute_vectors",
    "embed_media",
    "embedding_model_exists",
    "generation_model_exists",
    "model_resource",
    "parse_embed_item",
    "usage_metadata",
]

STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class ApiError(Exception):
    """An error answer in Google's envelope: ``{"error": {code, message, status, details?}}``."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        status: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_NAMES.get(code, "UNKNOWN")
        self.details = details

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            err["details"] = self.details
        return {"error": err}


def bad_request(message: str, field: str | None = None) -> ApiError:
    """400 INVALID_ARGUMENT, with a BadRequest field violation when ``field`` is given."""
    details = None
    if field is not None:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        ]
    return ApiError(400, message, details=details)


# ---------------------------------------------------------------- model catalogue
_GENERATION_NAME_RE = re.compile(r"^gemini-[0-9][\w.\-]*$")


def bare_model(model: str) -> str:
    """``models/x`` or ``publishers/google/models/x`` → ``x``."""
    return model.rsplit("/", 1)[-1]


def embedding_model_exists(model: str, *, vertex: bool = False) -> bool:
    """Embedding models the emulator serves (plus Vertex's legacy text models on Vertex)."""
    bare = bare_model(model)
    return bare in EMBEDDING_MODELS or (vertex and bare in VERTEX_LEGACY_MODELS)


def generation_model_exists(model: str) -> bool:
    """Any ``gemini-<digit>…`` name that is neither an embedding model nor retired."""
    bare = bare_model(model)
    if bare in RETIRED_MODELS:
        return False
    return bare in GENERATION_MODELS or (
        _GENERATION_NAME_RE.match(bare) is not None and "embedding" not in bare
    )


def model_resource(model: str) -> dict[str, Any]:
    """The ``GET /models/{m}`` body for a known model, as the real API shapes it."""
    bare = bare_model(model)
    if bare in EMBEDDING_MODELS:
        spec = EMBEDDING_MODELS[bare]
        is2 = spec.multimodal
        return {
            "name": f"models/{bare}",
            "version": "2" if is2 else "001",
            "displayName": "Gemini Embedding 2" if is2 else "Gemini Embedding 001",
            "description": "Obtain a distributed representation of a text.",
            "inputTokenLimit": spec.max_input_tokens,
            "outputTokenLimit": 1,
            "supportedGenerationMethods": [
                "embedContent",
                "countTextTokens",
                "countTokens",
                "asyncBatchEmbedContent",
            ],
        }
    info = GENERATION_MODELS.get(bare, {"displayName": bare, "version": "001"})
    return {
        "name": f"models/{bare}",
        "version": info["version"],
        "displayName": info["displayName"],
        "description": f"Emulated {info['displayName']}.",
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": [
            "generateContent",
            "countTokens",
            "createCachedContent",
            "batchGenerateContent",
        ],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": True,
    }


def not_found(model: str, api_version: str, method: str) -> ApiError:
    """The real 404 for an unknown model or a model without ``method``.

    A model retired for new users answers Google's "no longer available" 404
    (text from a real answer quoted in ITSpecialist111/ai_automation_suggester#184).
    """
    if bare_model(model) == "gemini-2.5-flash":
        return ApiError(
            404,
            f"This model models/{bare_model(model)} is no longer available to new users. "
            "Please update your code to use a newer model for the latest features and "
            "improvements.",
        )
    return ApiError(
        404,
        f"models/{bare_model(model)} is not found for API version {api_version}, or is not "
        f"supported for {method}. Call ListModels to see the list of available models and "
        "their supported methods.",
    )


def vertex_not_found(path_model: str) -> ApiError:
    """Vertex AI's 404 for an unknown publisher model."""
    return ApiError(
        404,
        f"Publisher Model `{path_model}` was not found or your project does not have access "
        "to it. Please ensure you are using a valid model version.",
    )


# ---------------------------------------------------------------- request items
def pick(obj: Mapping[str, Any], camel: str, default: Any = None) -> Any:
    """``obj[camel]`` or its snake_case spelling (proto JSON accepts both)."""
    if camel in obj:
        return obj[camel]
    snake = re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()
    return obj.get(snake, default)


_DEV_ITEM_FIELDS = frozenset(
    {"model", "content", "taskType", "title", "outputDimensionality"}
) | frozenset({"task_type", "output_dimensionality"})


@dataclass(frozen=True)
class ParsedItem:
    """A validated request item: what to embed and how many tokens it was."""

    item: EmbedItem
    tokens: int
    truncated: bool
    details: tuple[tuple[str, int], ...] = ()
    """Tokens per modality (``TEXT``, ``IMAGE``, ``AUDIO``, ``VIDEO``, ``DOCUMENT``)."""


MODALITY_NAMES: dict[str, str] = {
    "image": "IMAGE",
    "audio": "AUDIO",
    "video": "VIDEO",
    "pdf": "DOCUMENT",
}
"""Our modality → the API's ``MediaModality`` enum (SDK types.py ``MediaModality``)."""


def usage_metadata(items: Sequence[ParsedItem]) -> dict[str, Any]:
    """``usageMetadata`` for an embedding answer: total prompt tokens and per modality."""
    total = sum(p.tokens for p in items)
    per: dict[str, int] = {}
    for p in items:
        for name, n in p.details:
            per[name] = per.get(name, 0) + n
    return {
        "promptTokenCount": total,
        "promptTokensDetails": [{"modality": k, "tokenCount": v} for k, v in sorted(per.items())],
    }


FileResolver = Callable[[str], tuple[str, bytes]]
"""``fileUri`` → (MIME type, bytes) of an uploaded file; raises ApiError when absent."""


def _media_part(
    media: Mapping[str, Any],
    *,
    inline: bool,
    where: str,
    resolve_file: FileResolver | None,
) -> tuple[MediaPart, MediaInfo]:
    kind = "inline_data" if inline else "file_data"
    mime = pick(media, "mimeType")
    if inline:
        raw = media.get("data")
        if not isinstance(raw, str):
            raise bad_request(f"* {where}.{kind}.data: data is required.\n", f"{where}.{kind}.data")
        try:
            data = base64.b64decode(raw.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise bad_request(
                f"Invalid value at '{where}.{kind}.data' (TYPE_BYTES), Base64 decoding failed.",
                f"{where}.{kind}.data",
            ) from None
    else:
        uri = pick(media, "fileUri")
        if not isinstance(uri, str) or not uri:
            raise bad_request(
                f"* {where}.{kind}.file_uri: file_uri is required.\n", f"{where}.{kind}.file_uri"
            )
        if resolve_file is None:
            raise bad_request(f"* {where}.{kind}: file_data is not supported here.\n")
        file_mime, data = resolve_file(uri)
        mime = mime or file_mime
    if not isinstance(mime, str) or not mime:
        raise bad_request(
            f"* {where}.{kind}.mime_type: mime_type is required.\n", f"{where}.{kind}.mime_type"
        )
    if MEDIA_LIMITS.modality(mime) is None:
        raise bad_request(f"Unsupported MIME type: {mime}", f"{where}.{kind}.mime_type")
    info = read_media(mime, data)
    return MediaPart(info.modality, info.description, info.digest, info.tokens), info


def _check_media_limits(where: str, media: list[tuple[MediaPart, MediaInfo]]) -> None:
    lim = MEDIA_LIMITS
    counts: dict[str, int] = {}
    for part, info in media:
        counts[part.modality] = counts.get(part.modality, 0) + 1
        if part.modality == "pdf" and info.pages is not None and info.pages > lim.max_pdf_pages:
            raise bad_request(
                f"* {where}.content: the document has {info.pages} pages; at most "
                f"{lim.max_pdf_pages} pages are supported per document.\n"
            )
        if part.modality == "video" and (info.seconds or 0.0) > lim.max_video_seconds:
            raise bad_request(
                f"* {where}.content: the video is {info.seconds:g} seconds long; at most "
                f"{lim.max_video_seconds:g} seconds are supported.\n"
            )
        if part.modality == "audio" and (info.seconds or 0.0) > lim.max_audio_seconds:
            raise bad_request(
                f"* {where}.content: the audio is {info.seconds:g} seconds long; at most "
                f"{lim.max_audio_seconds:g} seconds are supported.\n"
            )
    for modality, most, noun in (
        ("image", lim.max_images, "images"),
        ("pdf", lim.max_pdfs, "documents"),
        ("video", lim.max_videos, "videos"),
        ("audio", lim.max_audios, "audio files"),
    ):
        n = counts.get(modality, 0)
        if n > most:
            raise bad_request(
                f"* {where}.content: at most {most} {noun} are supported per content, got {n}.\n"
            )


def _parse_parts(
    content: Any, where: str, multimodal: bool, resolve_file: FileResolver | None = None
) -> tuple[Part, ...]:
    if not isinstance(content, Mapping):
        raise bad_request(f"* {where}.content: content is required.\n", f"{where}.content")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise bad_request(
            f"* {where}.content.parts: contents.parts must not be empty.\n",
            f"{where}.content.parts",
        )
    out: list[Part] = []
    media: list[tuple[MediaPart, MediaInfo]] = []
    for i, part in enumerate(parts):
        if not isinstance(part, Mapping):
            raise bad_request(f"* {where}.content.parts[{i}]: part must be an object.\n")
        text = part.get("text")
        if isinstance(text, str):
            if not text:
                raise bad_request(
                    f"* {where}.content.parts[{i}].text: text must not be empty.\n",
                    f"{where}.content.parts[{i}].text",
                )
            out.append(text)
            continue
        inline = pick(part, "inlineData")
        file_data = pick(part, "fileData")
        media_obj = inline if isinstance(inline, Mapping) else file_data
        if multimodal and isinstance(media_obj, Mapping):
            mp, info = _media_part(
                media_obj,
                inline=media_obj is inline,
                where=f"{where}.content.parts[{i}]",
                resolve_file=resolve_file,
            )
            out.append(mp)
            media.append((mp, info))
            continue
        raise bad_request(
            f"* {where}.content.parts[{i}]: only text parts are supported by this model.\n",
            f"{where}.content.parts[{i}]",
        )
    _check_media_limits(where, media)
    return tuple(out)


def hash_blob(blob: str) -> str:
    """Short stable digest of a media payload."""
    return hashlib.blake2b(blob.encode("utf-8"), digest_size=8).hexdigest()


def _parse_dimension(value: Any, where_field: str, model: str) -> int | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        dim = int(value)
        if isinstance(value, float) and value != dim:
            raise ValueError
    except (TypeError, ValueError):
        raise bad_request(
            f"Invalid value at '{where_field}' (TYPE_INT32), {value!r}", where_field
        ) from None
    top = max_dimension(model)
    low = min(128, top)
    if not low <= dim <= top:  # DIMENSION_RANGE (128-3072) or the Vertex model's maximum
        raise bad_request(
            f"* {where_field}: output_dimensionality must be between {low} and {top}, got {dim}.\n",
            where_field,
        )
    return dim


def parse_embed_item(
    obj: Any,
    *,
    where: str,
    field_path: str,
    url_model: str,
    api_version: str,
    vertex: bool,
    strict_length: bool,
    check_model: bool = True,
    resolve_file: FileResolver | None = None,
) -> ParsedItem:
    """Validate one EmbedContentRequest-like object (camelCase or snake_case).

    ``where`` is the proto path for ``*``-style messages
    (``BatchEmbedContentsRequest.requests[0]``), ``field_path`` the JSON path for
    ``Invalid value at`` messages (``requests[0]``). On Vertex,
    options may also sit in ``embedContentConfig`` and ``title`` without RETRIEVAL_DOCUMENT is
    refused. Over-long texts are truncated, or refused when ``strict_length`` (Dev API) or
    ``autoTruncate: false`` (Vertex). ``title`` without RETRIEVAL_DOCUMENT is refused for
    gemini-embedding-001 on both APIs (-2 ignores both fields). ``resolve_file`` looks up
    ``fileData`` URIs (Files API uploads).
    """
    if not isinstance(obj, Mapping):
        raise bad_request(f"* {where}: request must be an object.\n", field_path or None)
    multimodal = is_multimodal_model(url_model)
    if vertex:
        cfg = pick(obj, "embedContentConfig") or {}
        if not isinstance(cfg, Mapping):
            raise bad_request(f"Invalid value at '{field_path}.embed_content_config'")

        def opt(name: str) -> Any:
            value = pick(cfg, name)
            return pick(obj, name) if value is None else value

    else:
        unknown = [k for k in obj if k not in _DEV_ITEM_FIELDS]
        if unknown:
            at = f" at '{field_path}'" if field_path else ""
            raise bad_request(
                f'Invalid JSON payload received. Unknown name "{unknown[0]}"{at}: '
                "Cannot find field.",
                field_path or None,
            )

        def opt(name: str) -> Any:
            return pick(obj, name)

    item_model = obj.get("model")
    if (
        check_model
        and item_model is not None
        and not vertex
        and (not isinstance(item_model, str) or bare_model(item_model) != bare_model(url_model))
    ):
        raise bad_request(
            f"* {where}.model: model in the request ({item_model}) must match the model "
            f"in the URL (models/{bare_model(url_model)}).\n",
            f"{field_path}.model" if field_path else "model",
        )
    prefix = f"{field_path}." if field_path else ""
    task = opt("taskType")
    if task is not None and (not isinstance(task, str) or task not in TASK_TYPES):
        msg = (
            f"Invalid value at '{prefix}task_type' "
            f"(type.googleapis.com/google.ai.generativelanguage.{api_version}.TaskType), "
            f'"{task}"'
        )
        raise bad_request(msg, f"{prefix}task_type")
    title = opt("title")
    if title is not None and not isinstance(title, str):
        raise bad_request(f"Invalid value at '{prefix}title' (TYPE_STRING), {title!r}")
    if title and task != "RETRIEVAL_DOCUMENT" and not multimodal:
        raise bad_request(
            "Unable to submit request because the model does not support the title parameter "
            "unless the task_type is RETRIEVAL_DOCUMENT. Learn more: "
            "https://cloud.google.com/vertex-ai/generative-ai/docs/embeddings/get-text-embeddings"
        )
    dim = _parse_dimension(opt("outputDimensionality"), f"{prefix}output_dimensionality", url_model)
    auto_truncate = opt("autoTruncate") if vertex else None
    parts = _parse_parts(obj.get("content"), where, multimodal, resolve_file)
    return finish_item(
        parts,
        task=task,
        title=title,
        dim=dim,
        model=url_model,
        refuse_long=strict_length if auto_truncate is None else not bool(auto_truncate),
        vertex=vertex,
    )


def finish_item(
    parts: Sequence[Part],
    *,
    task: str | None,
    title: str | None,
    dim: int | None,
    model: str,
    refuse_long: bool,
    vertex: bool,
) -> ParsedItem:
    """Count tokens, truncate (or refuse) and apply the model's field rules."""
    tokens = sum(part_tokens(p) for p in parts)
    limit = max_input_tokens(model)
    if tokens > limit and refuse_long:
        if vertex:
            raise bad_request(
                f"Unable to submit request because the input token count is {tokens} but the "
                f"model supports up to {limit}. Reduce the input token count and try again."
            )
        raise bad_request(
            f"The input token count ({tokens}) exceeds the maximum number of tokens allowed "
            f"({limit})."
        )
    cut, truncated = truncate_parts(parts, limit) if tokens > limit else (tuple(parts), False)
    if is_multimodal_model(model):
        task, title = None, None  # gemini-embedding-2 ignores taskType/title
    item = EmbedItem(parts=cut, task_type=task, title=title, dimension=dim)
    details: dict[str, int] = {}
    for p in parts:
        key = MODALITY_NAMES[p.modality] if isinstance(p, MediaPart) else "TEXT"
        details[key] = details.get(key, 0) + part_tokens(p)
    return ParsedItem(
        item=item, tokens=tokens, truncated=truncated, details=tuple(sorted(details.items()))
    )


# ---------------------------------------------------------------- vectors
def embed_media(
    parts: Sequence[str | tuple[str, bytes]],
    *,
    model: str = "gemini-embedding-2",
    dimension: int | None = None,
) -> list[float]:
    """Exactly the vector the emulator returns for one content of text and media parts.

        embed_media([("image/png", png_with_description("a red bicycle"))])
        embed_media(["a caption", ("application/pdf", pdf_with_pages(["page one"]))])

    A text part is a ``str``; a media part is ``(mime_type, bytes)``. Limits are checked as
    the server checks them (``ApiError`` 400); the -001 model refuses media.
    """
    content: dict[str, Any] = {
        "parts": [
            {"text": p}
            if isinstance(p, str)
            else {"inlineData": {"mimeType": p[0], "data": base64.b64encode(p[1]).decode()}}
            for p in parts
        ]
    }
    request: dict[str, Any] = {"content": content}
    if dimension is not None:
        request["outputDimensionality"] = dimension
    parsed = parse_embed_item(
        request,
        where="EmbedContentRequest",
        field_path="",
        url_model=model,
        api_version="v1beta",
        vertex=False,
        strict_length=False,
    )
    return to_json_floats(compute_vectors([parsed.item], model, None)[0])


def compute_vectors(
    items: Sequence[EmbedItem], model: str, encoder: Encoder | None
) -> list[FloatArray]:
    """Output vectors for ``items`` (built-in hashing vectors or the custom encoder's)."""
    if encoder is None:
        return [finish_vector(item_vector(it, model), model, it.dimension) for it in items]
    out: list[FloatArray | None] = [None] * len(items)
    multimodal = is_multimodal_model(model)
    groups: dict[str | None, list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault(None if multimodal else it.task_type, []).append(i)
    for task, idx in groups.items():
        texts = ["\n".join(part_text(p) for p in items[i].parts) for i in idx]
        titles = [
            None if multimodal else effective_title(items[i].task_type, items[i].title) for i in idx
        ]
        dims = {items[i].dimension for i in idx}
        req = EncodeRequest(
            texts=texts,
            model=bare_model(model),
            task_type=task,
            titles=titles,
            dimension=dims.pop() if len(dims) == 1 else None,
        )
        vectors = list(encoder(req))
        if len(vectors) != len(idx):
            raise ApiError(500, f"encoder returned {len(vectors)} vectors for {len(idx)} texts")
        for i, vec in zip(idx, vectors, strict=True):
            out[i] = finish_vector(np.asarray(vec, dtype=np.float64), model, items[i].dimension)
    return [v for v in out if v is not None]
