"""The emulator's aiohttp server and its thread runner.

    with Emulator(quota=QuotaConfig(items_per_minute=100)) as emu:
        client = genai.Client(api_key=emu.api_key,
                              http_options=types.HttpOptions(base_url=emu.base_url))
        client.models.embed_content(model="gemini-embedding-001", contents=["hi"])
        assert emu.counters.embed_items == 1

The server runs on its own event loop in a daemon thread, so synchronous tests, async tests
and the ``google-genai`` SDK (sync httpx2 and async aiohttp transports) can all talk to it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import contextvars
import logging
import re
import secrets
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any, TypeVar

import orjson
from aiohttp import web

from . import _batches
from ._facts import (
    EMBEDDING_MODELS,
    GENERATION_MODELS,
    MAX_ITEMS_PER_BATCH_EMBED,
    MEDIA_LIMITS,
    PAYLOAD_LIMIT_BYTES,
    PAYLOAD_LIMIT_MESSAGE,
)
from ._judge import Judge, JudgeRequest, default_judge
from ._media import read_media
from ._protocol import (
    MODALITY_NAMES,
    ApiError,
    ParsedItem,
    bad_request,
    bare_model,
    compute_vectors,
    embedding_model_exists,
    fault_error,
    generation_model_exists,
    model_resource,
    not_found,
    parse_embed_item,
    pick,
    quota_error,
    usage_metadata,
    vertex_not_found,
)
from ._state import (
    BatchBehaviour,
    BatchJob,
    Counters,
    EmulatorState,
    Fault,
    FaultConfig,
    FileRecord,
    QuotaConfig,
    RequestRecord,
    rfc3339_now,
)
from ._tokens import count_tokens
from ._vectors import Encoder, FloatArray, part_tokens, truncate_to_tokens

__all__ = ["DEFAULT_API_KEY", "Emulator", "serve_forever"]

DEFAULT_API_KEY = "emulator-key"

log = logging.getLogger("llama_index_gemini_embed.emulator")

MAX_BATCH_MESSAGE = (
    f"* BatchEmbedContentsRequest.requests: at most {MAX_ITEMS_PER_BATCH_EMBED} requests can "
    "be in one batch\n"
)
VERTEX_MAX_INSTANCES = 250
VERTEX_MAX_TOKENS = 20_000

_DEV = r"(?P<ver>v1|v1beta|v1alpha)"
_VERTEX = (
    r"(?P<ver>v1|v1beta1)/(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/)?"
    r"publishers/google/models/(?P<model>[^/:]+):(?P<method>\w+)"
)
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_T = TypeVar("_T")
_WORK_METHODS = frozenset({"batchEmbedContents", "embedContent", "predict", "generateContent"})


class _Dropped(Exception):
    """The handler closed the connection without a response."""


@dataclass
class _Ctx:
    body: Any = None
    model: str | None = None
    items: int = 0
    tokens: int = 0
    recorded: bool = False


_CTX: contextvars.ContextVar[_Ctx] = contextvars.ContextVar("emulator_request_ctx")


def _json(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(obj, option=_NUMPY),
        status=status,
        content_type="application/json",
        headers=headers,
    )


Handler = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]


def _details(pieces: Sequence[tuple[str, int, str]]) -> list[dict[str, Any]]:
    """``promptTokensDetails``: tokens per modality, sorted by modality name."""
    per: dict[str, int] = {}
    for _, n, modality in pieces:
        per[modality] = per.get(modality, 0) + n
    if not per:
        per["TEXT"] = 0
    return [{"modality": k, "tokenCount": v} for k, v in sorted(per.items())]


@dataclass
class _Settings:
    api_keys: tuple[str, ...]
    latency: float
    jitter: float
    strict_length: bool
    missing_key_status: int
    encoder: Encoder | None = None
    judge: Judge | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class _Service:
    """Request handlers; all state lives in ``EmulatorState`` and ``_Settings``."""

    def __init__(self, state: EmulatorState, settings: _Settings) -> None:
        self.state = state
        self.settings = settings
        self.stopping: asyncio.Event | None = None
        self.routes: list[tuple[str, re.Pattern[str], Handler, str]] = []
        self._add("POST", rf"/{_DEV}/models/(?P<model>[^/:]+):(?P<method>\w+)", self.dev_model_post)
        self._add("GET", rf"/{_DEV}/models", self.list_models)
        self._add("GET", rf"/{_DEV}/models/(?P<model>[^/:]+)", self.get_model)
        self._add("POST", rf"/{_VERTEX}", self.vertex_post, auth="vertex")
        self._add("GET", rf"/{_DEV}/batches", self.list_batches)
        self._add("GET", rf"/{_DEV}/batches/(?P<id>[^/:]+)", self.get_batch)
        self._add("DELETE", rf"/{_DEV}/batches/(?P<id>[^/:]+)", self.delete_batch)
        self._add("POST", rf"/{_DEV}/batches/(?P<id>[^/:]+):cancel", self.cancel_batch)
        self._add("POST", rf"/upload/{_DEV}/files", self.upload_file, auth="upload")
        self._add("GET", rf"/{_DEV}/files", self.list_files)
        self._add("GET", rf"/{_DEV}/files/(?P<id>[^/:]+)", self.get_file)
        self._add("DELETE", rf"/{_DEV}/files/(?P<id>[^/:]+)", self.delete_file)
        self._add("GET", rf"/(?:download/)?{_DEV}/files/(?P<id>[^/:]+):download", self.download)

    def _add(self, method: str, pattern: str, handler: Handler, auth: str = "dev") -> None:
        self.routes.append((method, re.compile(pattern + r"\Z"), handler, auth))

    # ------------------------------------------------------------ plumbing
    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024 * 1024, middlewares=[self._middleware])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        ctx = _Ctx()
        _CTX.set(ctx)
        status = 500
        try:
            try:
                resp = await handler(request)
            except ApiError as err:
                resp = _json(err.body(), status=err.code)
            except _Dropped:
                # The transport is already aborted; aiohttp discards whatever we return.
                status = 0
                await asyncio.sleep(0)
                return web.Response(status=499)
            except web.HTTPException:
                raise
            except Exception as exc:  # a bug or a failing user hook: answer like Google would
                log.exception("emulator handler failed")
                resp = _json(ApiError(500, f"Internal error: {exc}").body(), status=500)
            status = resp.status
            return resp
        finally:
            if not ctx.recorded:
                self._record(request, ctx, status)

    def _record(self, request: web.Request, ctx: _Ctx, status: int) -> None:
        ctx.recorded = True
        self.state.record(
            RequestRecord(
                method=request.method,
                path=request.path,
                status=status,
                body=ctx.body,
                model=ctx.model,
                items=ctx.items,
                tokens=ctx.tokens,
            )
        )

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        allowed = False
        for method, pattern, handler, auth in self.routes:
            m = pattern.match(path)
            if m is None:
                continue
            allowed = True
            if method != request.method:
                continue
            if auth == "dev":
                self._check_dev_key(request)
            elif auth == "vertex":
                self._check_vertex_auth(request)
            elif auth == "upload" and "upload_id" not in request.query:
                self._check_dev_key(request)
            return await handler(request, {k: v for k, v in m.groupdict().items() if v is not None})
        if allowed:
            raise ApiError(405, f"Method {request.method} not allowed for {path}.")
        raise ApiError(404, f"The requested URL {path} was not found on this server.")

    def _check_dev_key(self, request: web.Request) -> None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            code = self.settings.missing_key_status
            raise ApiError(
                code,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if key.strip() not in self.settings.api_keys:
            raise ApiError(
                400,
                "API key not valid. Please pass a valid API key.",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    },
                    {
                        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                        "locale": "en-US",
                        "message": "API key not valid. Please pass a valid API key.",
                    },
                ],
            )

    def _check_vertex_auth(self, request: web.Request) -> None:
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer ") and auth[7:].strip():
            return
        if request.headers.get("x-goog-api-key") or request.query.get("key"):
            self._check_dev_key(request)
            return
        raise ApiError(
            401,
            "Request is missing required authentication credential. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential.",
        )

    async def _body(self, request: web.Request, *, limit: int | None = None) -> Any:
        """The JSON body; over ``limit`` bytes → the API's 400 "payload size" answer."""
        if limit is not None and (request.content_length or 0) > limit:
            raise bad_request(PAYLOAD_LIMIT_MESSAGE)
        raw = await request.read()
        if limit is not None and len(raw) > limit:
            raise bad_request(PAYLOAD_LIMIT_MESSAGE)
        ctx = _CTX.get()
        if not raw:
            ctx.body = {}
            return {}
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise bad_request(f"Invalid JSON payload received. {exc}") from None
        ctx.body = body
        if not isinstance(body, dict):
            raise bad_request("Invalid JSON payload received. Expected an object.")
        return body

    # ------------------------------------------------------------ faults / latency / quota
    async def _hold(self, seconds: float) -> None:
        if seconds <= 0:
            return
        stopping = self.stopping
        if stopping is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), seconds)

    async def _before_work(self, request: web.Request, model: str, *, generate: bool) -> None:
        """Latency, then a scripted or random fault (raises/holds/drops as configured)."""
        s = self.settings
        if s.latency > 0 or s.jitter > 0:
            await self._hold(self.state.jitter(s.latency, s.jitter))
        fault = self.state.next_fault()
        if fault is None:
            return
        await self._apply_fault(request, fault, model, generate=generate)

    async def _apply_fault(
        self, request: web.Request, fault: Fault, model: str, *, generate: bool
    ) -> None:
        if fault.kind == "status":
            self.state.count_fault(str(fault.code))
            raise fault_error(
                fault.code,
                model=model,
                generate=generate,
                retry_delay=fault.retry_delay_seconds,
                daily=fault.daily,
                message=fault.message,
                reason=fault.reason,
            )
        if fault.kind == "slow":
            await self._hold(fault.seconds or 0.0)
            return
        if fault.kind == "timeout":
            self.state.count_fault("timeout")
            seconds = fault.seconds
            await self._hold(
                self.state.fault_config.timeout_seconds if seconds is None else seconds
            )
            raise ApiError(504, "Deadline expired before operation could complete.")
        if fault.kind == "drop":
            self.state.count_fault("drop")
            # Record before the client can see the reset, so its assertions never race us.
            self._record(request, _CTX.get(), 0)
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise _Dropped()

    async def _vectors(self, items: Sequence[ParsedItem], model: str) -> list[FloatArray]:
        encoder = self.settings.encoder
        plain = [p.item for p in items]
        if encoder is None:
            return compute_vectors(plain, model, None)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, compute_vectors, plain, model, encoder)

    async def _embed(
        self,
        request: web.Request,
        model: str,
        parsed: Sequence[ParsedItem],
        render: Callable[[list[FloatArray]], Any],
    ) -> web.Response:
        await self._before_work(request, model, generate=False)
        tokens = sum(p.tokens for p in parsed)
        violation = self.state.check_quota(bare_model(model), items=len(parsed), tokens=tokens)
        if violation is not None:
            raise quota_error(violation)
        vectors = await self._vectors(parsed, model)
        ctx = _CTX.get()
        ctx.items = len(parsed)
        ctx.tokens = tokens
        self.state.count("embed_items", len(parsed))
        self.state.count("tokens", tokens)
        truncated = sum(1 for p in parsed if p.truncated)
        if truncated:
            self.state.count("truncated_items", truncated)
        return _json(render(vectors))

    # ------------------------------------------------------------ Developer API
    async def dev_model_post(self, request: web.Request, m: dict[str, str]) -> web.StreamResponse:
        method = m["method"]
        model = m["model"]
        ctx = _CTX.get()
        ctx.model = model
        handler = {
            "batchEmbedContents": self.batch_embed_contents,
            "embedContent": self.embed_content,
            "countTokens": self.count_tokens,
            "generateContent": self.generate_content,
            "asyncBatchEmbedContent": self.create_batch,
        }.get(method)
        if handler is None:
            raise ApiError(404, f"Method models.{method} is not supported by the emulator.")
        return await self._tracked(handler, request, m, method)

    async def _tracked(
        self, handler: Handler, request: web.Request, m: dict[str, str], method: str
    ) -> web.StreamResponse:
        if method not in _WORK_METHODS:
            return await handler(request, m)
        self.state.enter()
        try:
            return await handler(request, m)
        finally:
            self.state.leave()

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
                data = base64.b64decode(str(inline.get("data") or ""))
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
        return _json({"totalTokens": total, "promptTokensDetails": _details(pieces)})

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
        ctx = _CTX.get()
        ctx.items = 1
        ctx.tokens = prompt_tokens
        return _json(
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
        return _json(out)

    async def get_model(self, request: web.Request, m: dict[str, str]) -> web.Response:
        model = m["model"]
        if not (embedding_model_exists(model) or generation_model_exists(model)):
            raise not_found(model, m["ver"], "get")
        return _json(model_resource(model))

    # ------------------------------------------------------------ Batch API
    @staticmethod
    def _base(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    async def create_batch(self, request: web.Request, m: dict[str, str]) -> web.Response:
        body = await self._body(request)
        model, ver = m["model"], m["ver"]
        if not embedding_model_exists(model):
            raise not_found(model, ver, "asyncBatchEmbedContent")
        job = _batches.create_job(self.state, model=bare_model(model), body=body, api_version=ver)
        _CTX.get().items = len(job.inputs)
        return _json(_batches.operation_json(job))

    def _job(self, job_id: str) -> BatchJob:
        with self.state.lock:
            job = self.state.batches.get(job_id)
        if job is None:
            raise ApiError(404, "Requested entity was not found.")
        return job

    async def get_batch(self, request: web.Request, m: dict[str, str]) -> web.Response:
        job = self._job(m["id"])
        _CTX.get().model = job.model
        encoder = self.settings.encoder
        kwargs: dict[str, Any] = {
            "encoder": encoder,
            "strict_length": self.settings.strict_length,
            "api_version": m["ver"],
        }
        if encoder is None:
            _batches.poll(self.state, job, **kwargs)
        else:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, lambda: _batches.poll(self.state, job, **kwargs))
        return _json(_batches.operation_json(job))

    async def list_batches(self, request: web.Request, m: dict[str, str]) -> web.Response:
        with self.state.lock:
            jobs = list(self.state.batches.values())
        page, token = self._page(request, jobs)
        out: dict[str, Any] = {"operations": [_batches.operation_json(j) for j in page]}
        if token:
            out["nextPageToken"] = token
        return _json(out)

    async def cancel_batch(self, request: web.Request, m: dict[str, str]) -> web.Response:
        _batches.cancel(self._job(m["id"]))
        return _json({})

    async def delete_batch(self, request: web.Request, m: dict[str, str]) -> web.Response:
        self._job(m["id"])
        with self.state.lock:
            self.state.batches.pop(m["id"], None)
        return _json({})

    @staticmethod
    def _page(request: web.Request, items: list[_T]) -> tuple[list[_T], str | None]:
        try:
            size = max(1, min(1000, int(request.query.get("pageSize", "50"))))
            start = int(request.query.get("pageToken", "0") or "0")
        except ValueError:
            raise bad_request("Invalid pageSize or pageToken.") from None
        nxt = str(start + size) if start + size < len(items) else None
        return items[start : start + size], nxt

    # ------------------------------------------------------------ Files API
    def _file(self, file_id: str) -> FileRecord:
        with self.state.lock:
            f = self.state.files.get(file_id)
        if f is None:
            raise ApiError(
                403, f"You do not have permission to access the File {file_id} or it may not exist."
            )
        return f

    def _resolve_file(self, uri: str) -> tuple[str, bytes]:
        return _batches.resolve_file(self.state, uri)

    def _file_json(self, request: web.Request, f: FileRecord, ver: str) -> dict[str, Any]:
        generated = f.id in self.state.generated_files
        return _batches.file_json(f, self._base(request), ver, generated=generated)

    async def upload_file(self, request: web.Request, m: dict[str, str]) -> web.Response:
        ver = m["ver"]
        command = request.headers.get("X-Goog-Upload-Command", "").lower()
        upload_id = request.query.get("upload_id")
        if upload_id is None:
            if "start" not in command:
                raise bad_request("Only resumable uploads (X-Goog-Upload-Command: start) work.")
            body = await self._body(request)
            meta = pick(body, "file") or {}
            size_header = request.headers.get("X-Goog-Upload-Header-Content-Length")
            size = pick(meta, "sizeBytes") if size_header is None else size_header
            mime = request.headers.get("X-Goog-Upload-Header-Content-Type") or pick(
                meta, "mimeType", "application/octet-stream"
            )
            if str(mime).split(";", 1)[0].strip().lower() in self.state.refused_upload_mime_types:
                raise bad_request(f"Unsupported MIME type: {mime}")
            name = pick(meta, "name")
            file_id = name.removeprefix("files/") if isinstance(name, str) else None
            f = FileRecord(
                id=file_id or self.state.next_id("f"),
                display_name=pick(meta, "displayName"),
                mime_type=mime,
                data=bytearray(),
                expected_size=int(size) if size is not None else None,
                create_time=rfc3339_now(),
            )
            uid = self.state.next_id("up") + secrets.token_hex(8)
            with self.state.lock:
                if f.id in self.state.files:
                    raise ApiError(409, f"File files/{f.id} already exists.")
                self.state.files[f.id] = f
                self.state.uploads[uid] = f.id
            query = f"upload_id={uid}&upload_protocol=resumable"
            url = f"{self._base(request)}/upload/{ver}/files?{query}"
            return _json({}, headers={"X-Goog-Upload-URL": url, "X-Goog-Upload-Status": "active"})
        with self.state.lock:
            file_id = self.state.uploads.get(upload_id)
        if file_id is None:
            raise ApiError(404, "Upload session not found.")
        f = self._file(file_id)
        if command == "query":
            return web.Response(
                headers={
                    "X-Goog-Upload-Status": "final" if f.complete else "active",
                    "X-Goog-Upload-Size-Received": str(len(f.data)),
                }
            )
        if "upload" not in command:
            raise bad_request(f"Unsupported X-Goog-Upload-Command: {command!r}.")
        offset = int(request.headers.get("X-Goog-Upload-Offset", "0"))
        if offset != len(f.data):
            raise bad_request(
                f"Upload offset {offset} does not match {len(f.data)} bytes received."
            )
        f.data.extend(await request.read())
        if "finalize" not in command:
            return web.Response(headers={"X-Goog-Upload-Status": "active"})
        f.complete = True
        with self.state.lock:
            self.state.uploads.pop(upload_id, None)
        return _json(
            {"file": self._file_json(request, f, ver)}, headers={"X-Goog-Upload-Status": "final"}
        )

    async def get_file(self, request: web.Request, m: dict[str, str]) -> web.Response:
        return _json(self._file_json(request, self._file(m["id"]), m["ver"]))

    async def list_files(self, request: web.Request, m: dict[str, str]) -> web.Response:
        with self.state.lock:
            files = list(self.state.files.values())
        page, token = self._page(request, files)
        out: dict[str, Any] = {"files": [self._file_json(request, f, m["ver"]) for f in page]}
        if token:
            out["nextPageToken"] = token
        return _json(out)

    async def delete_file(self, request: web.Request, m: dict[str, str]) -> web.Response:
        self._file(m["id"])
        with self.state.lock:
            self.state.files.pop(m["id"], None)
            self.state.generated_files.discard(m["id"])
        return _json({})

    async def download(self, request: web.Request, m: dict[str, str]) -> web.Response:
        f = self._file(m["id"])
        return web.Response(body=bytes(f.data), content_type="application/octet-stream")

    # ------------------------------------------------------------ Vertex AI
    async def vertex_post(self, request: web.Request, m: dict[str, str]) -> web.StreamResponse:
        method, model = m["method"], m["model"]
        _CTX.get().model = model
        handler = {
            "predict": self.vertex_predict,
            "embedContent": self.vertex_embed_content,
            "batchEmbedContents": self.vertex_batch_embed_contents,
            "countTokens": self.vertex_count_tokens,
            "generateContent": self.generate_content,
        }.get(method)
        if handler is None:
            raise ApiError(404, f"Method {method} is not supported by the emulator.")
        if method != "generateContent" and method != "countTokens":
            self.state.count("embed_requests")
            if not embedding_model_exists(model, vertex=True):
                raise vertex_not_found(self._vertex_model_path(m))
        return await self._tracked(handler, request, m, method)

    @staticmethod
    def _vertex_model_path(m: Mapping[str, str]) -> str:
        prefix = f"projects/{m['project']}/locations/{m['location']}/" if m.get("project") else ""
        return f"{prefix}publishers/google/models/{m['model']}"

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
            return {
                "embedding": {"values": vs[0]},
                "usageMetadata": {
                    "promptTokenCount": used,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": used}],
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

    async def vertex_count_tokens(self, request: web.Request, m: dict[str, str]) -> web.Response:
        self.state.count("count_tokens_requests")
        body = await self._body(request)
        model = m["model"]
        if not (embedding_model_exists(model, vertex=True) or generation_model_exists(model)):
            raise vertex_not_found(self._vertex_model_path(m))
        pieces = self._content_pieces(pick(body, "contents") or pick(body, "instances"))
        total = sum(n for _, n, _ in pieces)
        chars = sum(1 for t, _, m in pieces if m == "TEXT" for ch in t if not ch.isspace())
        return _json({"totalTokens": total, "totalBillableCharacters": chars})


class Emulator:
    """An in-process Gemini API emulator: ``with Emulator() as emu: ... emu.base_url``.

    Serves the Developer API (``/v1``, ``/v1beta``, ``/v1alpha``) and the Vertex AI
    embedding routes on ``host:port`` (port 0 picks a free one) from a daemon thread.
    """

    def __init__(
        self,
        api_keys: Sequence[str] = (DEFAULT_API_KEY,),
        host: str = "127.0.0.1",
        port: int = 0,
        quota: QuotaConfig | None = None,
        latency: float = 0.0,
        jitter: float = 0.0,
        seed: int = 0,
        encoder: Encoder | None = None,
        strict_length: bool = False,
        missing_key_status: int = 403,
        clock: Callable[[], float] = time.monotonic,
        *,
        judge: Judge | None = None,
        request_log_limit: int = 2000,
    ) -> None:
        if not api_keys:
            raise ValueError("api_keys must name at least one key")
        self._host = host
        self._port = port
        self._state = EmulatorState(
            quota=quota, seed=seed, clock=clock, request_log_limit=request_log_limit
        )
        self._settings = _Settings(
            api_keys=tuple(api_keys),
            latency=latency,
            jitter=jitter,
            strict_length=strict_length,
            missing_key_status=missing_key_status,
            encoder=encoder,
            judge=judge,
        )
        self._service = _Service(self._state, self._settings)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> Emulator:
        """Start serving (returns once the port is bound)."""
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._astart())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="gemini-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            self._thread.join()
            self._thread = None
            self._loop = None
            raise errors[0]
        return self

    async def _astart(self) -> None:
        self._service.stopping = asyncio.Event()
        runner = web.AppRunner(self._service.app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        sock.listen(1024)
        sock.setblocking(False)
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner
        self._bound_port = sock.getsockname()[1]

    async def _astop(self) -> None:
        if self._service.stopping is not None:
            self._service.stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._astop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None
        self._runner = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Emulator:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # ------------------------------------------------------------ facts
    @property
    def port(self) -> int:
        """The bound TCP port (after ``start()``)."""
        if self._bound_port is None:
            raise RuntimeError("emulator not started")
        return self._bound_port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` without a version suffix (pass as ``HttpOptions.base_url``)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def api_key(self) -> str:
        """The first accepted API key."""
        return self._settings.api_keys[0]

    @property
    def counters(self) -> Counters:
        """A snapshot (copy) of the counters."""
        return self._state.snapshot()

    @property
    def requests(self) -> list[RequestRecord]:
        """The request log (most recent ``request_log_limit`` requests, oldest first)."""
        return self._state.request_log()

    @property
    def state(self) -> EmulatorState:
        """The underlying state object (advanced use)."""
        return self._state

    # ------------------------------------------------------------ controls
    def reset_counters(self) -> None:
        """Zero all counters and clear the request log."""
        self._state.reset_counters()

    def set_quota(self, quota: QuotaConfig) -> None:
        """Replace the quota limits (usage so far is kept)."""
        self._state.set_quota(quota)

    def reset_daily_quota(self) -> None:
        """Emulate the daily reset: per-day usage starts again from zero."""
        self._state.reset_daily_quota()

    def reset_quota_usage(self) -> None:
        """Forget all per-minute and per-day usage."""
        self._state.reset_quota_usage()

    def set_faults(
        self,
        rate_429: float = 0.0,
        rate_500: float = 0.0,
        rate_503: float = 0.0,
        rate_timeout: float = 0.0,
        rate_drop: float = 0.0,
        retry_delay_seconds: float = 1.0,
        timeout_seconds: float = 30.0,
        seed: int | None = None,
    ) -> None:
        """Random faults for embedding/generate requests, drawn from an RNG seeded with ``seed``
        (default: the emulator's seed). Calling it again restarts the RNG."""
        total = rate_429 + rate_500 + rate_503 + rate_timeout + rate_drop
        if total > 1.0 + 1e-9 or min(rate_429, rate_500, rate_503, rate_timeout, rate_drop) < 0:
            raise ValueError("fault rates must be >= 0 and add up to at most 1")
        self._state.set_faults(
            FaultConfig(
                rate_429=rate_429,
                rate_500=rate_500,
                rate_503=rate_503,
                rate_timeout=rate_timeout,
                rate_drop=rate_drop,
                retry_delay_seconds=retry_delay_seconds,
                timeout_seconds=timeout_seconds,
            ),
            seed,
        )

    def script_faults(self, faults: Sequence[Fault]) -> None:
        """Queue faults consumed one per embedding/generate request, before random ones."""
        self._state.script_faults(faults)

    def clear_faults(self) -> None:
        """Drop scripted faults and switch random faults off."""
        self._state.clear_script()
        self._state.set_faults(FaultConfig(), None)

    def set_encoder(self, encoder: Encoder | None) -> None:
        """Use ``encoder`` for vectors (None: the built-in hashing vectors)."""
        self._settings.encoder = encoder

    def set_judge(self, judge: Judge | None) -> None:
        """Use ``judge`` to answer generateContent (None: the default overlap judge)."""
        self._settings.judge = judge

    def set_latency(self, latency: float = 0.0, jitter: float = 0.0) -> None:
        """Per-request latency (+ uniform jitter) for embedding/generate requests."""
        self._settings.latency = latency
        self._settings.jitter = jitter

    def set_batch_behaviour(
        self,
        polls_until_running: int = 1,
        polls_until_done: int = 2,
        final_state: str = "SUCCEEDED",
        item_error_rate: float = 0.0,
        item_error_keys: set[str] | frozenset[str] = frozenset(),
        seed: int | None = None,
        *,
        results_lag_polls: int = 0,
        answer_mode: str = "submitted",
        inline_answer_max_items: int = 1000,
        item_error_form: str = "error",
    ) -> None:
        """How batch jobs created from now on progress (see ``BatchBehaviour``).

        Fault modes reported for the real Batch API (docs/gemini-api.md §4):
        ``results_lag_polls=N``: SUCCEEDED arrives N GETs before its ``output``;
        ``answer_mode="inline"|"file"|"auto"``: results come back inline or as a responses
        file whatever was submitted (``auto``: inline up to ``inline_answer_max_items``);
        ``item_error_form="status"``: per-item errors in a results file are ``status`` lines.
        """
        if final_state not in ("SUCCEEDED", "FAILED", "EXPIRED"):
            raise ValueError("final_state must be SUCCEEDED, FAILED or EXPIRED")
        if answer_mode not in ("submitted", "inline", "file", "auto"):
            raise ValueError("answer_mode must be 'submitted', 'inline', 'file' or 'auto'")
        if item_error_form not in ("error", "status"):
            raise ValueError("item_error_form must be 'error' or 'status'")
        if results_lag_polls < 0 or inline_answer_max_items < 0:
            raise ValueError("results_lag_polls and inline_answer_max_items must be >= 0")
        self._state.set_batch_behaviour(
            BatchBehaviour(
                polls_until_running=polls_until_running,
                polls_until_done=polls_until_done,
                final_state=final_state,  # type: ignore[arg-type]
                item_error_rate=item_error_rate,
                item_error_keys=frozenset(item_error_keys),
                seed=seed,
                results_lag_polls=results_lag_polls,
                answer_mode=answer_mode,  # type: ignore[arg-type]
                inline_answer_max_items=inline_answer_max_items,
                item_error_form=item_error_form,  # type: ignore[arg-type]
            )
        )

    def set_upload_behaviour(
        self, *, refuse_mime_types: set[str] | frozenset[str] = frozenset()
    ) -> None:
        """Refuse Files API uploads declaring these MIME types with 400 "Unsupported MIME
        type: …" (reported for ``application/jsonl``: python-genai#1547)."""
        with self._state.lock:
            self._state.refused_upload_mime_types = frozenset(m.lower() for m in refuse_mime_types)


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8765,
    api_keys: Sequence[str] = (DEFAULT_API_KEY,),
    quota: QuotaConfig | None = None,
    latency: float = 0.0,
    jitter: float = 0.0,
    seed: int = 0,
    *,
    on_ready: Callable[[Emulator], None] | None = None,
    stop_event: threading.Event | None = None,
    **kwargs: Any,
) -> None:
    """Run an emulator until SIGINT/SIGTERM (or ``stop_event``); ``on_ready(emu)`` once bound.

    Signal handlers are installed only when called from the main thread.
    """
    stop = stop_event or threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def handle(signum: int, frame: FrameType | None) -> None:
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handle)
    emu = Emulator(
        api_keys=api_keys,
        host=host,
        port=port,
        quota=quota,
        latency=latency,
        jitter=jitter,
        seed=seed,
        **kwargs,
    )
    try:
        emu.start()
        if on_ready is not None:
            on_ready(emu)
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
