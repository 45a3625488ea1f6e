"""Build a ``google.genai.Client`` from our settings, and translate its failures.

The SDK is our only HTTP layer. Its own retries are switched off here, because retries
live in exactly one place: :mod:`._retry`, driven by :mod:`._calls`. Setting
``HttpRetryOptions(attempts=1)`` also disables the SDK's hidden aiohttp
reconnect-and-sleep (1-10 s, then one more attempt) from google-genai 2.33.0 on, which is
why pyproject.toml requires ``google-genai>=2.33`` (2.20-2.32 always slept;
docs/gemini-api.md §SDK versions).

What differs between the supported SDK versions is decided here, from the SDK itself
(never from our own guesses): see :func:`vertex_embed_route`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Literal

from google import genai
from google.genai import _transformers as _sdk_transformers
from google.genai import errors as genai_errors
from google.genai import types

from ._errors import (
    APIUnreachableError,
    ConfigurationError,
    DailyQuotaExceededError,
    GeminiAPIError,
    InvalidAPIKeyError,
    MediaFileUnavailableError,
    MissingAPIKeyError,
    QuotaBlockedError,
    QuotaExhaustedError,
    TransientAPIError,
    UnknownModelError,
    redact,
)
from ._retry import Failure, QuotaKind, classify_429

__all__ = [
    "DEFAULT_VERTEX_LOCATION",
    "KEY_ENV_VARS",
    "SDK_VERSION",
    "APIKey",
    "ClientSettings",
    "VertexEmbedRoute",
    "build_client",
    "describe_failure",
    "failure_from_exception",
    "find_api_key",
    "key_source",
    "missing_file_name",
    "reported_prompt_tokens",
    "resolve_api_key",
    "vertex_embed_route",
]

logger = logging.getLogger("llama_index_gemini_embed")

KEY_ENV_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
"""Where a key is looked up when none is given, in order. google-genai's own rule
(``_api_client.get_env_api_key``, 2.x and 3.x): GOOGLE_API_KEY wins when both are set."""

_warned_both_keys = False

SDK_VERSION: str = genai.__version__

VertexEmbedRoute = Literal["batchEmbedContents", "embedContent", "predict"]


def vertex_embed_route(model: str) -> VertexEmbedRoute:
    """Which Vertex endpoint the installed SDK sends ``embed_content`` for ``model`` to.

        >>> vertex_embed_route("gemini-embedding-2") in ("batchEmbedContents", "embedContent")
        True

    * SDK >= 3.4 (``types.EmbeddingApiType.BATCH_EMBED_CONTENTS`` exists): every
      ``gemini*`` model goes to ``:batchEmbedContents`` (many items per request).
    * Older SDKs: ``t_is_vertex_embed_content_model`` models (gemini-embedding-2 and any
      other non-001 ``gemini*``) go to ``:embedContent``, which takes ONE content per call
      (more raises ``ValueError: ...only supports one content at a time``); the rest
      (gemini-embedding-001) to ``:predict``.

    Decided by asking the SDK (its enum and its own routing predicate), not by version
    number. Sources: docs/gemini-api.md §SDK versions.
    """
    api_type = getattr(types, "EmbeddingApiType", None)
    if getattr(api_type, "BATCH_EMBED_CONTENTS", None) is not None:
        return "batchEmbedContents"
    single = getattr(_sdk_transformers, "t_is_vertex_embed_content_model", None)
    bare = model.rsplit("/", 1)[-1]
    if callable(single) and single(bare):
        return "embedContent"
    return "predict"


DEFAULT_VERTEX_LOCATION = "us-central1"
"""Vertex AI location when neither ``location=`` nor GOOGLE_CLOUD_LOCATION is set. Not
``global``: Google's list of models served on the global endpoint names only Gemini
generation models, never the embedding models, while us-central1 serves both
(docs/gemini-api.md §Vertex location)."""


@dataclass(frozen=True)
class APIKey:
    """A key and where it came from (``"api_key="`` or the environment variable's name)."""

    value: str = field(repr=False)
    source: str


def find_api_key(explicit: str | None) -> APIKey | None:
    """The explicit key, else ``GOOGLE_API_KEY``, else ``GEMINI_API_KEY`` (the SDK's rule).

        >>> find_api_key("AIza-example").source
        'api_key='

    When both variables are set to different keys, warns once (as the SDK does) that
    GOOGLE_API_KEY is used.
    """
    global _warned_both_keys
    if explicit and explicit.strip():
        return APIKey(explicit.strip(), "api_key=")
    found = [
        APIKey(value, name) for name in KEY_ENV_VARS if (value := os.environ.get(name, "").strip())
    ]
    if len(found) > 1 and found[0].value != found[1].value and not _warned_both_keys:
        _warned_both_keys = True
        logger.warning("Both GOOGLE_API_KEY and GEMINI_API_KEY are set. Using GOOGLE_API_KEY.")
    return found[0] if found else None


def resolve_api_key(explicit: str | None) -> str | None:
    """The key :func:`find_api_key` finds, or None."""
    key = find_api_key(explicit)
    return key.value if key is not None else None


def key_source(explicit: str | None) -> str:
    """Name of where the key in use comes from, for messages: ``GOOGLE_API_KEY``,
    ``GEMINI_API_KEY`` (also when that variable's value was passed on explicitly, as the
    CLI does), else ``api_key=``."""
    if explicit and explicit.strip():
        for name in KEY_ENV_VARS:
            if os.environ.get(name, "").strip() == explicit.strip():
                return name
        return "api_key="
    key = find_api_key(None)
    return key.source if key is not None else "api_key="


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes"}


@dataclass(frozen=True)
class ClientSettings:
    api_key: str | None = None
    vertexai: bool | None = None
    project: str | None = None
    location: str | None = None
    base_url: str | None = None
    api_version: str | None = None
    timeout_seconds: float | None = 60.0
    headers: tuple[tuple[str, str], ...] = ()
    http_options: types.HttpOptions | None = None
    """The user's extra SDK options (proxies, client args); ours are applied on top."""

    @property
    def use_vertex(self) -> bool:
        if self.vertexai is not None:
            return self.vertexai
        return _env_flag("GOOGLE_GENAI_USE_VERTEXAI") or _env_flag("GOOGLE_GENAI_USE_ENTERPRISE")


def build_client(settings: ClientSettings) -> genai.Client:
    """A client with our timeout applied and the SDK's retries off.

    Raises:
        MissingAPIKeyError: no key given or in the environment (Gemini Developer API).
    """
    options: dict[str, Any] = {}
    if settings.http_options is not None:
        options = settings.http_options.model_dump(exclude_none=True)
    # Retries live in our layer only, so the SDK's are always off.
    options["retry_options"] = types.HttpRetryOptions(attempts=1)
    if settings.timeout_seconds is not None:
        options["timeout"] = max(1, round(settings.timeout_seconds * 1000))
    if settings.base_url:
        options["base_url"] = settings.base_url
    if settings.api_version:
        options["api_version"] = settings.api_version
    if settings.headers:
        options["headers"] = {**(options.get("headers") or {}), **dict(settings.headers)}
    http_options = types.HttpOptions(**options)
    api_key = resolve_api_key(settings.api_key)
    if settings.use_vertex:
        project = settings.project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        location = settings.location or os.environ.get("GOOGLE_CLOUD_LOCATION")
        if api_key and not (project or location):
            return genai.Client(vertexai=True, api_key=api_key, http_options=http_options)
        if not project:
            raise ConfigurationError(
                "Vertex AI needs a project: pass project=... (and location=...) or set "
                "GOOGLE_CLOUD_PROJECT, or pass api_key=... for Vertex express mode"
            )
        return genai.Client(
            vertexai=True,
            project=project,
            location=location or DEFAULT_VERTEX_LOCATION,
            http_options=http_options,
        )
    if settings.project or settings.location:
        raise ConfigurationError(
            "project= and location= are Vertex AI settings: pass vertexai=True to use Vertex, "
            "or drop them to use the Gemini Developer API with an API key"
        )
    if not api_key:
        raise MissingAPIKeyError()
    return genai.Client(api_key=api_key, http_options=http_options)


def _transport_error_types() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [asyncio.TimeoutError, TimeoutError, ConnectionError]
    for module_name, names in (
        ("httpx", ("TimeoutException", "TransportError")),
        ("httpx2", ("TimeoutException", "TransportError")),
        ("aiohttp", ("ClientError",)),
    ):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        for name in names:
            error_type = getattr(module, name, None)
            if isinstance(error_type, type) and issubclass(error_type, BaseException):
                found.append(error_type)
    return tuple(found)


_TRANSPORT_ERRORS = _transport_error_types()


def _connect_error_types() -> tuple[type[BaseException], ...]:
    """Errors meaning no connection was ever made (refused, DNS failure, TLS handshake)."""
    found: list[type[BaseException]] = [ConnectionRefusedError, socket.gaierror]
    for module_name, name in (
        ("httpx", "ConnectError"),
        ("httpx2", "ConnectError"),
        ("aiohttp", "ClientConnectorError"),
    ):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        error_type = getattr(module, name, None)
        if isinstance(error_type, type) and issubclass(error_type, BaseException):
            found.append(error_type)
    return tuple(found)


_CONNECT_ERRORS = _connect_error_types()


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes/contexts and aiohttp's ``os_error`` (a few levels)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 8:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        os_error = getattr(current, "os_error", None)
        todo += [current.__cause__, current.__context__]
        if isinstance(os_error, BaseException):
            todo.append(os_error)
    return seen


def _connect_reason(exc: BaseException) -> str:
    chain = _chain(exc)
    if any(isinstance(e, socket.gaierror) or "DNSError" in type(e).__name__ for e in chain):
        return "DNS lookup failed"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    text = " ".join(str(e) for e in chain).lower()
    if "name or service not known" in text or "nodename nor servname" in text:
        return "DNS lookup failed"
    if "refused" in text:
        return "connection refused"
    return f"cannot connect: {type(exc).__name__}"


def _connect_target(exc: BaseException) -> str:
    """``scheme://host:port`` the failed connection was for, when the error tells."""
    host, port = getattr(exc, "host", None), getattr(exc, "port", None)
    if isinstance(host, str) and host:
        key = getattr(exc, "_conn_key", None)
        secure = bool(getattr(key, "is_ssl", False))
        scheme = "https" if secure else "http"
        return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"
    try:
        url = exc.request.url  # type: ignore[attr-defined]  # httpx/httpx2 ConnectError
    except Exception:
        return ""
    try:
        return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")
    except AttributeError:
        return ""


def failure_from_exception(exc: BaseException) -> Failure | None:
    """Reduce an SDK/transport exception to a :class:`Failure`; None if it is not one."""
    if isinstance(exc, genai_errors.APIError):
        details = exc.details if isinstance(exc.details, dict) else None
        return Failure(
            code=exc.code, status=exc.status, details=details, message=str(exc.message or "")
        )
    if isinstance(exc, _CONNECT_ERRORS):
        return Failure(
            transport=True,
            connect=True,
            message=_connect_reason(exc),
            target=_connect_target(exc),
        )
    if isinstance(exc, _TRANSPORT_ERRORS):
        return Failure(transport=True, message=type(exc).__name__)
    return None


def _reason(details: Any) -> str:
    try:
        for entry in details["error"].get("details", []):
            if isinstance(entry, dict) and entry.get("reason"):
                return str(entry["reason"])
    except (KeyError, TypeError, AttributeError):
        pass
    return ""


_BLOCKED_ADVICE: dict[QuotaKind, str] = {
    QuotaKind.NOT_IN_TIER: (
        "the quota for {model} is 0 on this project (limit: 0): the model is not included in "
        "the project's tier (e.g. the free tier). Waiting will not help: enable billing for "
        "the project in AI Studio (https://aistudio.google.com), or use a model your tier "
        "includes."
    ),
    QuotaKind.SPEND_CAP: (
        "the billing account's spending cap is reached. Waiting will not help: raise the cap "
        "in AI Studio (https://aistudio.google.com) or wait for the next billing period, then "
        "run again (ingestion resumes where it stopped)."
    ),
    QuotaKind.PREPAY: (
        "the project's prepaid credits are depleted. Waiting will not help: add funds in AI "
        "Studio (https://aistudio.google.com), then run again (ingestion resumes where it "
        "stopped)."
    ),
}


def _describe_429(failure: Failure, *, model: str, what: str) -> GeminiAPIError:
    code, status = failure.code, failure.status
    kind = classify_429(failure.details, failure.message)
    if kind is QuotaKind.PER_DAY:
        return DailyQuotaExceededError(
            f"Gemini's per-day quota for {model} is exhausted (429 RESOURCE_EXHAUSTED, "
            "per-day quotaId). It resets at midnight Pacific time: run again after the "
            "reset (ingestion resumes where it stopped), or use a billed project/tier.",
            code=code,
            status=status,
            kind=kind.value,
        )
    if kind in _BLOCKED_ADVICE:
        return QuotaBlockedError(
            f"Gemini refused the {what} request (429 {status}): "
            + _BLOCKED_ADVICE[kind].format(model=model),
            code=code,
            status=status,
            kind=kind.value,
        )
    if kind is QuotaKind.CAPACITY:
        return QuotaExhaustedError(
            f"Gemini had no capacity for {model} after every retry (429 "
            "MODEL_CAPACITY_EXHAUSTED): this is Google's side, not your quota. Run again "
            "later (completed work is kept), or use another model.",
            code=code,
            status=status,
        )
    return QuotaExhaustedError(
        f"Gemini kept answering 429 (rate limited) for {model} after every retry. "
        "Set items_per_minute= / tokens_per_minute= to your tier's limits so the "
        "client paces itself, or lower max_concurrency.",
        code=code,
        status=status,
    )


_MISSING_FILE = re.compile(r"\bFile (?:files/)?([A-Za-z0-9][A-Za-z0-9_-]*)")


def missing_file_name(message: str) -> str | None:
    """The Files API file (``files/ID``) a 403 message says is missing, else None.

        >>> missing_file_name("You do not have permission to access the File abc123 or it "
        ...                   "may not exist.")
        'files/abc123'
        >>> missing_file_name("You do not have permission to access the File files/abc123 "
        ...                   "or it may not exist.")
        'files/abc123'
        >>> missing_file_name("Method doesn't allow unregistered callers") is None
        True

    Google names the file with a capital "File" and either its bare ID or its resource
    name (both spellings are reported; docs/gemini-api.md §5). A key 403 never names one.
    """
    found = _MISSING_FILE.search(message)
    return f"files/{found.group(1)}" if found else None


def describe_failure(
    failure: Failure, *, model: str, exhausted: bool, secret: str | None, what: str = "embedding"
) -> GeminiAPIError:
    """The typed, actionable error for a failure we will not (or no longer) retry."""
    code, status = failure.code, failure.status
    message = redact(failure.message, secret)
    if failure.connect:
        where = failure.target or "its address"
        return APIUnreachableError(
            f"Could not reach the Gemini API at {where} ({message}) for {what}. Check "
            "the address (base_url), the network and the proxy; completed work is kept, so "
            "run again to resume.",
            url=failure.target or None,
            reason=message,
        )
    if failure.transport:
        return APIUnreachableError(
            f"Could not reach the Gemini API for {what}: every attempt timed out or lost its "
            f"connection ({message or 'connection error'}). Check the network, proxy and "
            "base_url, or raise timeout=; completed work is kept, so run again to resume.",
            reason=message or "connection error",
        )
    if code == 429:
        return _describe_429(failure, model=model, what=what)
    file_name = missing_file_name(message) if code in (403, 404) else None
    if file_name is not None:
        return MediaFileUnavailableError(
            f"The Files API file {file_name} is gone or not this project's (403 {status}: "
            "expired, deleted, or uploaded with another key): re-upload it or pass the "
            "bytes; Files API files expire after 48 hours.",
            file_name=file_name,
            code=code,
            status=status,
        )
    if code in (401, 403) or (
        code == 400 and ("API_KEY" in _reason(failure.details) or "API key" in message)
    ):
        source = key_source(secret)
        return InvalidAPIKeyError(
            f"The Gemini API rejected the API key from {source} ({code} {status}). Check "
            f"{source} (create a key at https://aistudio.google.com/apikey).",
            code=code,
            status=status,
            key_source=source,
        )
    if code == 404:
        return UnknownModelError(
            f"Model {model!r} is not available for {what} on this API (404 NOT_FOUND). Use a "
            "current model such as 'gemini-embedding-001' or 'gemini-embedding-2', or list "
            "them with client.models.list().",
            code=code,
            status=status,
        )
    if exhausted:
        return TransientAPIError(
            f"Gemini {what} request failed after retries ({code} {status}): {message}. Run "
            "again later: completed work is kept.",
            code=code,
            status=status,
        )
    return GeminiAPIError(
        f"The Gemini API rejected the {what} request ({code} {status}): {message}",
        code=code,
        status=status,
    )


def reported_prompt_tokens(response: object) -> int | None:
    """Input tokens the API says it counted for an embedding answer, or None.

    ``usageMetadata.promptTokenCount`` (``EmbedContentResponse.usage_metadata``, SDK 3.x;
    the Developer API's batchEmbedContents and Vertex both send it), else the sum of each
    embedding's ``statistics.token_count`` (Vertex ``:predict``) when every one has it.
    SDK 2.x has no ``usage_metadata`` field: None there, and the caller estimates.
    """
    usage = getattr(response, "usage_metadata", None)
    count = getattr(usage, "prompt_token_count", None)
    if isinstance(count, int) and count >= 0:
        return count
    embeddings = getattr(response, "embeddings", None) or []
    counts = [getattr(getattr(e, "statistics", None), "token_count", None) for e in embeddings]
    if counts and all(isinstance(c, int | float) for c in counts):
        return int(sum(c for c in counts if c is not None))
    return None
