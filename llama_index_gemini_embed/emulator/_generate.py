"""Generation-side routes: generateContent (answered by the judge), countTokens, models list/get.

POST /v1/models/gemini-2.5-flash-lite:generateContent   -> candidates + usageMetadata
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web

from ._facts import (
    EMBEDDING_MODELS,
    GENERATION_MODELS,
    MEDIA_LIMITS,
)
from ._faults import quota_error
from ._judge import JudgeRequest, default_judge
from ._media import read_media
from ._protocol import (
    MODALITY_NAMES,
    bad_request,
    bare_model,
    embedding_model_exists,
    generation_model_exists,
    model_resource,
    not_found,
    pick,
    vertex_not_found,
)
from ._service import CTX, ServiceBase, json_response
from ._tokens import count_tokens
from ._vectors import truncate_to_tokens

__all__ = ["GenerateRoutes"]


def _details(pieces: Sequence[tuple[str, int, str]]) -> list[dict[str, Any]]:
    """``promptTokensDetails``: tokens per modality, sorted by modality name."""
    per: dict[str, int] = {}
    for _, n, modality in pieces:
        per[modality] = per.get(modality, 0) + n
    if not per:
        per["TEXT"] = 0
    return [{"modality": k, "tokenCount": v} for k, v in sorted(per.items())]


_V1_UNKNOWN_CONFIG = ("responseMimeType", "responseSchema", "responseJsonSchema", "thinkingConfig")


def _refuse_v1_fields(body: Mapping[str, Any], gen: Mapping[str, Any]) -> None:
    """The 400 that ``/v1`` generateContent gave for v1beta-only fields (python-genai#1398)."""
    if pick(body, "systemInstruction") is not None:
        raise bad_request(
            'Invalid JSON payload received. Unknown name "systemInstruction": Cannot find field.'
        )
    for name in _V1_UNKNOWN_CONFIG:
        if pick(gen, name) is not None:
            raise bad_request(
                f"Invalid JSON payload received. Unknown name \"{name}\" at 'generation_config': "
                "Cannot find field."
            )


class GenerateRoutes(ServiceBase):
    """generateContent (answered by the judge), countTokens, models list/get."""

    def _content_pieces(self, contents: Any) -> list[tuple[str, int, str]]:
        """``(text, tokens, modality)`` per part of generate/countTokens ``contents``.

        A media part becomes its embedded description (see ``_media``), in place, so the
        judge reads ``<passage id="3">`` + image as the image's description; it costs the
        media's published token rate. Media types outside the embedding model's list (the
        generation models take more) count as an image without a description.
        """
        if isinstance(contents, Mapping):
            contents = [contents]
        if isinstance(contents, str):
            return [(contents, count_tokens(contents), "TEXT")]
        out: list[tuple[str, int, str]] = []
        if not isinstance(contents, list):
            return out
        for content in contents:
            if isinstance(content, str):
                out.append((content, count_tokens(content), "TEXT"))
                continue
            parts = content.get("parts") if isinstance(content, Mapping) else None
            for part in parts or []:
                if not isinstance(part, Mapping):
                    continue
                if isinstance(part.get("text"), str):
                    out.append((part["text"], count_tokens(part["text"]), "TEXT"))
                    continue
                piece = self._media_piece(part)
                if piece is not None:
                    out.append(piece)
        return out

    def _media_piece(self, part: Mapping[str, Any]) -> tuple[str, int, str] | None:
        inline = pick(part, "inlineData")
        file_data = pick(part, "fileData")
        if isinstance(inline, Mapping):
            mime = str(pick(inline, "mimeType") or "")
            try:
                raw = str(inline.get("data") or "")  # the SDK sends URL-safe base64
                data = base64.b64decode(raw.replace("-", "+").replace("_", "/"), validate=True)
            except (binascii.Error, ValueError):
                raise bad_request(
                    "Invalid value at 'contents.parts.inline_data.data' (TYPE_BYTES)."
                ) from None
        elif isinstance(file_data, Mapping):
            file_mime, data = self._resolve_file(str(pick(file_data, "fileUri") or ""))
            mime = str(pick(file_data, "mimeType") or file_mime)
        else:
            return None
        if MEDIA_LIMITS.modality(mime) is None:
            return ("", MEDIA_LIMITS.tokens_per_image, "IMAGE")
        info = read_media(mime, data)
        return (info.description or "", info.tokens, MODALITY_NAMES[info.modality])

    async def count_tokens(self, request: web.Request, m: dict[str, str]) -> web.Response:
        self.state.count("count_tokens_requests")
        body = await self._body(request)
        model, ver = m["model"], m["ver"]
        if not (embedding_model_exists(model) or generation_model_exists(model)):
            raise not_found(model, ver, "countTokens")
        contents = pick(body, "contents")
        if contents is None:
            inner = pick(body, "generateContentRequest") or {}
            contents = pick(inner, "contents") if isinstance(inner, Mapping) else None
        pieces = self._content_pieces(contents)
        total = sum(n for _, n, _ in pieces)
        return json_response({"totalTokens": total, "promptTokensDetails": _details(pieces)})

    async def generate_content(self, request: web.Request, m: dict[str, str]) -> web.Response:
        """``:generateContent`` for generation models, answered by the judge (see ``_judge``)."""
        self.state.count("generate_requests")
        body = await self._body(request)
        model = m["model"]
        vertex = "/publishers/google/models/" in request.path
        if not generation_model_exists(model):
            if vertex:
                raise vertex_not_found(self._vertex_model_path(m))
            raise not_found(model, m["ver"], "generateContent")
        contents = pick(body, "contents")
        if not contents or not isinstance(contents, list | dict | str):
            raise bad_request(
                "* GenerateContentRequest.contents: contents is not specified\n", "contents"
            )
        prompt_pieces = self._content_pieces(contents)
        system_pieces = self._content_pieces(pick(body, "systemInstruction"))
        prompt_texts = [t for t, _, _ in prompt_pieces]
        system_texts = [t for t, _, _ in system_pieces]
        gen = pick(body, "generationConfig") or {}
        if not isinstance(gen, Mapping):
            raise bad_request("Invalid value at 'generation_config'.")
        max_out = pick(gen, "maxOutputTokens")
        if max_out is not None and (not isinstance(max_out, int) or max_out < 1):
            raise bad_request(
                f"Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), {max_out!r}"
            )
        if m.get("ver") == "v1" and not vertex and not self.settings.v1_generate_config:
            _refuse_v1_fields(body, gen)
        schema = pick(gen, "responseSchema")
        json_schema = pick(gen, "responseJsonSchema")
        await self._before_work(request, model, generate=True)
        violation = self.state.check_generate_quota(bare_model(model))
        if violation is not None:
            raise quota_error(violation)
        judge = self.settings.judge or default_judge
        answer = judge(
            JudgeRequest(
                model=bare_model(model),
                system_instruction="\n".join(system_texts) if system_texts else None,
                prompt_text="\n".join(prompt_texts),
                response_schema=schema if isinstance(schema, dict) else None,
                response_json_schema=json_schema if isinstance(json_schema, dict) else None,
                response_mime_type=pick(gen, "responseMimeType"),
            )
        )
        text = answer if isinstance(answer, str) else orjson.dumps(answer).decode()
        finish = "STOP"
        if isinstance(max_out, int) and count_tokens(text) > max_out:
            text = truncate_to_tokens(text, max_out)
            finish = "MAX_TOKENS"
        prompt_tokens = sum(n for _, n, _ in [*system_pieces, *prompt_pieces])
        out_tokens = count_tokens(text) if text else 0
        ctx = CTX.get()
        ctx.items = 1
        ctx.tokens = prompt_tokens
        return json_response(
            {
                "candidates": [
                    {
                        "content": {"parts": [{"text": text}], "role": "model"},
                        "finishReason": finish,
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": prompt_tokens,
                    "candidatesTokenCount": out_tokens,
                    "totalTokenCount": prompt_tokens + out_tokens,
                    "promptTokensDetails": _details([*system_pieces, *prompt_pieces]),
                },
                "modelVersion": bare_model(model),
                "responseId": self.state.next_id("resp"),
            }
        )

    async def list_models(self, request: web.Request, m: dict[str, str]) -> web.Response:
        page, token = self._page(request, [*EMBEDDING_MODELS, *GENERATION_MODELS])
        out: dict[str, Any] = {"models": [model_resource(n) for n in page]}
        if token:
            out["nextPageToken"] = token
        return json_response(out)

    async def get_model(self, request: web.Request, m: dict[str, str]) -> web.Response:
        model = m["model"]
        if not (embedding_model_exists(model) or generation_model_exists(model)):
            raise not_found(model, m["ver"], "get")
        return json_response(model_resource(model))

    async def vertex_count_tokens(self, request: web.Request, m: dict[str, str]) -> web.Response:
        self.state.count("count_tokens_requests")
        body = await self._body(request)
        model = m["model"]
        if not (embedding_model_exists(model, vertex=True) or generation_model_exists(model)):
            raise vertex_not_found(self._vertex_model_path(m))
        pieces = self._content_pieces(pick(body, "contents") or pick(body, "instances"))
        total = sum(n for _, n, _ in pieces)
        chars = sum(1 for t, _, m in pieces if m == "TEXT" for ch in t if not ch.isspace())
        return json_response({"totalTokens": total, "totalBillableCharacters": chars})
