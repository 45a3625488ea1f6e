"""Connection, authentication and quota settings shared by every Gemini-backed component.

    class GeminiEmbedding(GeminiConnection, BaseEmbedding): ...
    class GeminiReranker(GeminiConnection, BaseNodePostprocessor): ...

One definition of the key handling (a ``SecretStr`` never serialised), the endpoint
(Developer API, Vertex AI, or an emulator ``base_url``), the lazily built
``google.genai.Client`` and the pickling rule, so the two classes cannot drift apart.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Awaitable, Callable
from typing import Any, Self

from google import genai
from google.genai import types
from pydantic import BaseModel, Field, PrivateAttr, SecretStr

from ._client import ClientSettings, build_client, resolve_api_key
from ._errors import MissingAPIKeyError
from ._quota import CountLimits, QuotaLimiter, check_quota_limits, shared_limiter

__all__ = ["GeminiConnection"]


class GeminiConnection(BaseModel):
    """Mixin: where and how to reach Gemini. Put it first among the bases."""

    api_key: SecretStr | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="Gemini API key (default: GEMINI_API_KEY or GOOGLE_API_KEY). Never serialised.",
    )
    base_url: str | None = Field(default=None, description="API base URL, e.g. an emulator.")
    api_version: str | None = Field(default=None, description="API version, e.g. 'v1beta'.")
    http_headers: dict[str, str] | None = Field(
        default=None, exclude=True, repr=False, description="Extra HTTP headers (never serialised)."
    )
    http_options: types.HttpOptions | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="Extra google-genai HttpOptions (e.g. client_args for a proxy). Our "
        "timeout, base_url and api_version win, and the SDK's retries stay off.",
    )
    vertexai: bool | None = Field(default=None, description="Use Vertex AI (None: SDK env vars).")
    project: str | None = Field(default=None, description="Vertex AI project.")
    location: str | None = Field(
        default=None,
        description="Vertex AI location (default: GOOGLE_CLOUD_LOCATION, else us-central1, "
        "which serves the embedding models; the global endpoint does not list them).",
    )
    timeout: float | None = Field(default=60.0, description="Per-request timeout, seconds.")
    # Quota limits are checked in _connect (check_quota_limits), not with ge=: one check,
    # one ConfigurationError, the same for every component. What a per-minute and per-day
    # limit counts differs (embedded items for the embedder, requests for the reranker), so
    # each component declares those two fields under its own names (_count_limits).
    tokens_per_minute: int | None = Field(default=None, description="Quota: tokens/min.")
    quota_window_seconds: float = Field(
        default=60.0, description="Length of the per-minute window (compressed in tests)."
    )

    _client: genai.Client | None = PrivateAttr(default=None)
    # Injected for tests (time that never really waits). Callables default to None:
    # pydantic binds a function-valued PrivateAttr default as a method of the instance.
    _clock: Callable[[], float] | None = PrivateAttr(default=None)
    _sleep: Callable[[float], Awaitable[None]] | None = PrivateAttr(default=None)
    _rng: random.Random | None = PrivateAttr(default=None)

    def _count_limits(self) -> CountLimits:
        """The per-minute and per-day count limits, named as this component takes them."""
        return CountLimits()

    def _secret(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None

    def _client_settings(self) -> ClientSettings:
        return ClientSettings(
            api_key=self._secret(),
            vertexai=self.vertexai,
            project=self.project,
            location=self.location,
            base_url=self.base_url,
            api_version=self.api_version,
            timeout_seconds=self.timeout,
            headers=tuple(sorted((self.http_headers or {}).items())),
            http_options=self.http_options,
        )

    def _connect(
        self,
        client: genai.Client | None,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Adopt an injected client (and clock, sleep, rng), or check a client can be built.

        Raises:
            ConfigurationError: a quota limit below 1 (see :func:`check_quota_limits`).
            MissingAPIKeyError: no key and not on Vertex AI.
        """
        check_quota_limits(
            counts=self._count_limits(),
            tokens_per_minute=self.tokens_per_minute,
            window_seconds=self.quota_window_seconds,
        )
        self._client = client
        self._clock, self._sleep, self._rng = clock, sleep, rng
        needs_key = client is None and not self._client_settings().use_vertex
        if needs_key and resolve_api_key(self._secret()) is None:
            raise MissingAPIKeyError()

    def _quota_scope(self) -> tuple[object, ...]:
        """What one quota covers besides the key; components add their model."""
        return (type(self).__name__, self.base_url)

    def _limiter(self) -> QuotaLimiter:
        """The quota limiter shared by every instance with this key, scope and limits."""
        counts = self._count_limits()
        return shared_limiter(
            api_key=resolve_api_key(self._secret()),
            scope=self._quota_scope(),
            items_per_minute=counts.per_minute,
            tokens_per_minute=self.tokens_per_minute,
            items_per_day=counts.per_day,
            window_seconds=self.quota_window_seconds,
        )

    @property
    def client(self) -> genai.Client:
        """The ``google.genai.Client`` in use (built on first use)."""
        if self._client is None:
            self._client = build_client(self._client_settings())
        return self._client

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        # Settings are deep-copied and __init__ runs again: fresh engine, usage totals and
        # locks (a lock cannot be copied). The client (stateless, and maybe injected) and
        # injected clock/sleep/rng are shared, as pickling cannot but copying should.
        data = {name: copy.deepcopy(getattr(self, name), memo) for name in type(self).model_fields}
        return type(self)(
            client=self._client, clock=self._clock, sleep=self._sleep, rng=self._rng, **data
        )

    def __getstate__(self) -> dict[str, Any]:
        # Settings (and the key) travel; clients, engines, locks and injected clocks are
        # rebuilt by __init__ on load (LlamaIndex's __setstate__ calls it).
        state = BaseModel.__getstate__(self)
        state["__pydantic_private__"] = {}
        return state
