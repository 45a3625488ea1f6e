"""HTTP plumbing every API surface shares: routing, auth, bodies, latency, faults, quotas.

    class EmbeddingRoutes(ServiceBase): ...     # one mixin per API surface
    service = Service(state, settings)          # composed in ``_server``

Handlers take ``(request, match_groups)`` and return a response or raise ``ApiError``
(answered in Google's envelope by the middleware).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from aiohttp import web

from . import _batches
from ._facts import (
    PAYLOAD_LIMIT_MESSAGE,
)
from ._faults import fault_error, quota_error
from ._judge import Judge
from ._protocol import (
    ApiError,
    ParsedItem,
    bad_request,
    bare_model,
    compute_vectors,
)
from ._state import (
    EmulatorState,
    Fault,
    FileRecord,
    RequestRecord,
)
from ._vectors import Encoder, FloatArray

__all__ = ["CTX", "Handler", "ServiceBase", "Settings", "json_response"]

log = logging.getLogger("llama_index_gemini_embed.emulator")

_V1_BATCH_OR_FILES = re.compile(
    r"^/(?:upload/|download/)?v1/(?:batches|files)(?:[/:?]|$)|^/v1/models/[^/:]+:asyncBatchEmbedContent$"
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


CTX: contextvars.ContextVar[_Ctx] = contextvars.ContextVar("emulator_request_ctx")


def json_response(
    obj: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(obj, option=_NUMPY),
        status=status,
        content_type="application/json",
        headers=headers,
    )


Handler = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]


@dataclass
class Settings:
    api_keys: tuple[str, ...]
    latency: float
    jitter: float
    strict_length: bool
    missing_key_status: int
    encoder: Encoder | None = None
    judge: Judge | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    v1_batches_and_files: bool = True
    """False: ``/v1`` has no Batch/Files routes (404), as feared in docs/gemini-api.md."""
    vertex_embedding_locations: frozenset[str] | None = None
    """Vertex locations that serve the embedding models (None: every location)."""
    v1_generate_config: bool = True
    """False: ``/v1`` generateContent refuses systemInstruction / JSON-mode / thinking fields."""


class ServiceBase:
    """State, settings and the plumbing the API-surface mixins build on."""

    def __init__(self, state: EmulatorState, settings: Settings) -> None:
        self.state = state
        self.settings = settings
        self.stopping: asyncio.Event | None = None
        self.routes: list[tuple[str, re.Pattern[str], Handler, str]] = []

    def _add(self, method: str, pattern: str, handler: Handler, auth: str = "dev") -> None:
        self.routes.append((method, re.compile(pattern + r"\Z"), handler, auth))

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024 * 1024, middlewares=[self._middleware])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        ctx = _Ctx()
        CTX.set(ctx)
        status = 500
        try:
            try:
                resp = await handler(request)
            except ApiError as err:
                resp = json_response(err.body(), status=err.code)
            except _Dropped:
                # The transport is already aborted; aiohttp discards whatever we return.
                status = 0
                await asyncio.sleep(0)
                return web.Response(status=499)
            except web.HTTPException:
                raise
            except Exception as exc:  # a bug or a failing user hook: answer like Google would
                log.exception("emulator handler failed")
                resp = json_response(ApiError(500, f"Internal error: {exc}").body(), status=500)
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
            if not self.settings.v1_batches_and_files and _V1_BATCH_OR_FILES.match(path):
                raise ApiError(404, f"The requested URL {path} was not found on this server.")
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
        ctx = CTX.get()
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
            self._record(request, CTX.get(), 0)
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
        ctx = CTX.get()
        ctx.items = len(parsed)
        ctx.tokens = tokens
        self.state.count("embed_items", len(parsed))
        self.state.count("tokens", tokens)
        truncated = sum(1 for p in parsed if p.truncated)
        if truncated:
            self.state.count("truncated_items", truncated)
        return json_response(render(vectors))

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

    @staticmethod
    def _base(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    @staticmethod
    def _page(request: web.Request, items: list[_T]) -> tuple[list[_T], str | None]:
        try:
            size = max(1, min(1000, int(request.query.get("pageSize", "50"))))
            start = int(request.query.get("pageToken", "0") or "0")
        except ValueError:
            raise bad_request("Invalid pageSize or pageToken.") from None
        nxt = str(start + size) if start + size < len(items) else None
        return items[start : start + size], nxt

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

    @staticmethod
    def _vertex_model_path(m: Mapping[str, str]) -> str:
        prefix = f"projects/{m['project']}/locations/{m['location']}/" if m.get("project") else ""
        return f"{prefix}publishers/google/models/{m['model']}"
