"""Embedding routes: Developer API batchEmbedContents / embedContent, and Vertex AI
predict / embedContent / batchEmbedContents.

    POST /v1/models/gemini-embedding-001:batchEmbedContents   -> {"embeddings", "usageMetadata"}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from ._facts import (
    MAX_ITEMS_PER_BATCH_EMBED,
    PAYLOAD_LIMIT_BYTES,
)
from ._protocol import (
    ParsedItem,
    bad_request,
    embedding_model_exists,
    not_found,
    parse_embed_item,
    pick,
    usage_metadata,
)
from ._service import ServiceBase
from ._vectors import FloatArray, part_tokens

__all__ = ["EmbeddingRoutes"]

MAX_BATCH_MESSAGE = (
    f"* BatchEmbedContentsRequest.requests: at most {MAX_ITEMS_PER_BATCH_EMBED} requests can "
    "be in one batch\n"
)
VERTEX_MAX_INSTANCES = 250
VERTEX_MAX_TOKENS = 20_000


class EmbeddingRoutes(ServiceBase):
    """Developer API and Vertex AI embedding routes."""

    def _dev_embed_model(self, model: str, ver: str) -> None:
        if not embedding_model_exists(model):
            raise not_found(model, ver, "embedContent")

    async def batch_embed_contents(self, request: web.Request, m: dict[str, str]) -> web.Response:
        self.state.count("embed_requests")
        body = await self._body(request, limit=PAYLOAD_LIMIT_BYTES)
        model, ver = m["model"], m["ver"]
        self._dev_embed_model(model, ver)
        reqs = pick(body, "requests")
        if not isinstance(reqs, list) or not 1 <= len(reqs) <= MAX_ITEMS_PER_BATCH_EMBED:
            raise bad_request(MAX_BATCH_MESSAGE, "requests")
        parsed = [
            parse_embed_item(
                r,
                where=f"BatchEmbedContentsRequest.requests[{i}]",
                field_path=f"requests[{i}]",
                url_model=model,
                api_version=ver,
                vertex=False,
                strict_length=self.settings.strict_length,
                resolve_file=self._resolve_file,
            )
            for i, r in enumerate(reqs)
        ]
        return await self._embed(
            request,
            model,
            parsed,
            lambda vs: {
                "embeddings": [{"values": v} for v in vs],
                "usageMetadata": usage_metadata(parsed),
            },
        )

    async def embed_content(self, request: web.Request, m: dict[str, str]) -> web.Response:
        self.state.count("embed_requests")
        body = await self._body(request, limit=PAYLOAD_LIMIT_BYTES)
        model, ver = m["model"], m["ver"]
        self._dev_embed_model(model, ver)
        parsed = parse_embed_item(
            body,
            where="EmbedContentRequest",
            field_path="",
            url_model=model,
            api_version=ver,
            vertex=False,
            strict_length=self.settings.strict_length,
            resolve_file=self._resolve_file,
        )
        return await self._embed(
            request,
            model,
            [parsed],
            lambda vs: {"embedding": {"values": vs[0]}, "usageMetadata": usage_metadata([parsed])},
        )

    @staticmethod
    def _vertex_count(n: int) -> None:
        if n > VERTEX_MAX_INSTANCES:
            raise bad_request(
                "Unable to submit request because it included too many instances. "
                f"The maximum number of instances is {VERTEX_MAX_INSTANCES}."
            )

    @staticmethod
    def _vertex_tokens(parsed: Sequence[ParsedItem]) -> None:
        total = sum(p.tokens for p in parsed)
        if total > VERTEX_MAX_TOKENS:
            raise bad_request(
                f"Unable to submit request because the input token count is {total} but the "
                f"model supports up to {VERTEX_MAX_TOKENS}. Reduce the input token count and "
                "try again."
            )

    def _vertex_item(self, obj: Any, where: str, path: str, model: str, ver: str) -> ParsedItem:
        return parse_embed_item(
            obj,
            where=where,
            field_path=path,
            url_model=model,
            api_version=ver,
            vertex=True,
            strict_length=self.settings.strict_length,
        )

    @staticmethod
    def _stats(p: ParsedItem) -> dict[str, Any]:
        used = sum(part_tokens(t) for t in p.item.parts)
        return {"truncated": p.truncated, "token_count": used}

    async def vertex_predict(self, request: web.Request, m: dict[str, str]) -> web.Response:
        body = await self._body(request)
        model, ver = m["model"], m["ver"]
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances:
            raise bad_request("Unable to submit request because instances is empty.")
        self._vertex_count(len(instances))
        params = body.get("parameters") or {}
        if not isinstance(params, Mapping):
            raise bad_request("Invalid value at 'parameters'.")
        cfg = {
            "outputDimensionality": pick(params, "outputDimensionality"),
            "autoTruncate": pick(params, "autoTruncate"),
        }
        parsed: list[ParsedItem] = []
        chars = 0
        for i, inst in enumerate(instances):
            if not isinstance(inst, Mapping) or not isinstance(inst.get("content"), str):
                raise bad_request(f"Invalid value at 'instances[{i}].content'.")
            text = inst["content"]
            chars += sum(1 for ch in text if not ch.isspace())
            item = {
                "content": {"parts": [{"text": text}]},
                "taskType": pick(inst, "taskType"),
                "title": inst.get("title"),
                "embedContentConfig": {k: v for k, v in cfg.items() if v is not None},
            }
            parsed.append(self._vertex_item(item, f"instances[{i}]", f"instances[{i}]", model, ver))
        self._vertex_tokens(parsed)

        def render(vs: list[FloatArray]) -> dict[str, Any]:
            return {
                "predictions": [
                    {"embeddings": {"values": v, "statistics": self._stats(p)}}
                    for v, p in zip(vs, parsed, strict=True)
                ],
                "metadata": {"billableCharacterCount": chars},
            }

        return await self._embed(request, model, parsed, render)

    async def vertex_embed_content(self, request: web.Request, m: dict[str, str]) -> web.Response:
        body = await self._body(request)
        model, ver = m["model"], m["ver"]
        p = self._vertex_item(body, "EmbedContentRequest", "", model, ver)

        def render(vs: list[FloatArray]) -> dict[str, Any]:
            used = self._stats(p)["token_count"]
            media = [(k, n) for k, n in p.details if k != "TEXT"]
            text_used = used - sum(n for _, n in media)
            details = sorted([*media, *([("TEXT", text_used)] if text_used > 0 else [])])
            return {
                "embedding": {"values": vs[0]},
                "usageMetadata": {
                    "promptTokenCount": used,
                    "promptTokensDetails": [{"modality": k, "tokenCount": n} for k, n in details],
                },
                "truncated": p.truncated,
            }

        return await self._embed(request, model, [p], render)

    async def vertex_batch_embed_contents(
        self, request: web.Request, m: dict[str, str]
    ) -> web.Response:
        body = await self._body(request)
        model, ver = m["model"], m["ver"]
        reqs = pick(body, "requests")
        if not isinstance(reqs, list) or not reqs:
            raise bad_request("Unable to submit request because requests is empty.")
        self._vertex_count(len(reqs))
        parsed = [
            self._vertex_item(r, f"requests[{i}]", f"requests[{i}]", model, ver)
            for i, r in enumerate(reqs)
        ]
        self._vertex_tokens(parsed)

        def render(vs: list[FloatArray]) -> dict[str, Any]:
            return {
                "embeddings": [
                    {"values": v, "statistics": self._stats(p)}
                    for v, p in zip(vs, parsed, strict=True)
                ]
            }

        return await self._embed(request, model, parsed, render)
