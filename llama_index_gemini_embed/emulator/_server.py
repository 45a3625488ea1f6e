"""The emulator's route table, its thread runner (``Emulator``) and ``serve_forever``.

    with Emulator(quota=QuotaConfig(items_per_minute=100)) as emu:
        client = genai.Client(api_key=emu.api_key,
                              http_options=types.HttpOptions(base_url=emu.base_url))
        client.models.embed_content(model="gemini-embedding-001", contents=["hi"])
        assert emu.counters.embed_items == 1

The server runs on its own event loop in a daemon thread, so synchronous tests, async tests
and the ``google-genai`` SDK (sync httpx2 and async aiohttp transports) can all talk to it.

One module per API surface, composed here: ``_embeddings`` (online embeddings, Developer API
and Vertex), ``_generate`` (generateContent, countTokens, models), ``_batch_api`` (Batch API),
``_files_api`` (Files API), ``_faults`` (429 and fault bodies), on the shared plumbing of
``_service`` (routing, auth, bodies, latency, faults, quotas).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType, TracebackType
from typing import Any

from aiohttp import web

from ._batch_api import BatchRoutes
from ._embeddings import EmbeddingRoutes
from ._files_api import FileRoutes
from ._generate import GenerateRoutes
from ._judge import Judge
from ._protocol import (
    ApiError,
    embedding_model_exists,
    vertex_not_found,
)
from ._service import CTX, Settings
from ._state import (
    BatchBehaviour,
    Counters,
    EmulatorState,
    Fault,
    FaultConfig,
    QuotaConfig,
    RequestRecord,
)
from ._vectors import Encoder

__all__ = ["DEFAULT_API_KEY", "Emulator", "serve_forever"]

DEFAULT_API_KEY = "emulator-key"

_DEV = r"(?P<ver>v1|v1beta|v1alpha)"
_VERTEX = (
    r"(?P<ver>v1|v1beta1)/(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/)?"
    r"publishers/google/models/(?P<model>[^/:]+):(?P<method>\w+)"
)


class _Service(EmbeddingRoutes, GenerateRoutes, BatchRoutes, FileRoutes):
    """Every API surface the emulator serves, routed by method and path."""

    def __init__(self, state: EmulatorState, settings: Settings) -> None:
        super().__init__(state, settings)
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

    async def dev_model_post(self, request: web.Request, m: dict[str, str]) -> web.StreamResponse:
        method = m["method"]
        model = m["model"]
        ctx = CTX.get()
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

    async def vertex_post(self, request: web.Request, m: dict[str, str]) -> web.StreamResponse:
        method, model = m["method"], m["model"]
        CTX.get().model = model
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
            served = self.settings.vertex_embedding_locations
            location = m.get("location")
            if served is not None and location is not None and location not in served:
                raise vertex_not_found(self._vertex_model_path(m))
        return await self._tracked(handler, request, m, method)


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
        self._settings = Settings(
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

    def set_v1_behaviour(
        self, *, batches_and_files: bool = True, generate_config: bool = True
    ) -> None:
        """What the Developer API's ``/v1`` serves (SDK 3.x's default version).

        Unverified for late 2026 (docs/gemini-api.md): ``batches_and_files=False`` answers
        404 on ``/v1`` Batch API and Files API routes (Google documents them on v1beta);
        ``generate_config=False`` refuses ``systemInstruction``, ``responseMimeType``,
        ``responseSchema``, ``responseJsonSchema`` and ``thinkingConfig`` on ``/v1``
        generateContent with 400 'Invalid JSON payload received. Unknown name …' as v1
        did in Sept 2025 (python-genai#1398). ``/v1beta`` and ``/v1alpha`` keep everything.
        """
        self._settings.v1_batches_and_files = batches_and_files
        self._settings.v1_generate_config = generate_config

    def set_vertex_behaviour(self, *, embedding_locations: Sequence[str] | None = None) -> None:
        """Which Vertex locations serve the embedding models (None: all, the default).

        ``embedding_locations=["us-central1"]`` makes ``locations/global`` answer Vertex's
        404 "Publisher Model … was not found …" for embeddings (audit row 11: Google's
        global-endpoint model lists omit the embedding models; UNVERIFIED). Express mode
        (no location in the path) is unaffected.
        """
        self._settings.vertex_embedding_locations = (
            None if embedding_locations is None else frozenset(embedding_locations)
        )

    def set_upload_behaviour(
        self,
        *,
        refuse_mime_types: set[str] | frozenset[str] = frozenset(),
        processing_polls: int = 0,
        processing_mime_prefixes: Sequence[str] = ("video/",),
    ) -> None:
        """How Files API uploads made from now on behave.

        ``refuse_mime_types``: refuse uploads declaring these types with 400 "Unsupported
        MIME type: …" (reported for ``application/jsonl``: python-genai#1547).
        ``processing_polls``: an upload whose type starts with one of
        ``processing_mime_prefixes`` (default: videos) stays PROCESSING for that many
        ``files.get`` calls; used in a request before it is ACTIVE it answers 400
        FAILED_PRECONDITION "The File ID is not in an ACTIVE state and usage is not allowed."
        """
        if processing_polls < 0:
            raise ValueError("processing_polls must be >= 0")
        with self._state.lock:
            self._state.refused_upload_mime_types = frozenset(m.lower() for m in refuse_mime_types)
            self._state.processing_polls = processing_polls
            self._state.processing_mime_prefixes = tuple(
                p.lower() for p in processing_mime_prefixes
            )


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
