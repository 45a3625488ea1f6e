"""One API call with quota pacing and retries: the single retry layer, shared by the
embedding engine and the reranker.

    caller = RetryingCaller(policy=RetryPolicy(), limiter=limiter, usage=usage, model="m")
    result = await caller.call(lambda: client.aio.models.embed_content(...), items=100, tokens=9000)

Every wait this layer takes (a retry's backoff, or pacing to the configured quota) is
announced as a :class:`RetryEvent` to the listener installed with :func:`retry_listener`,
so a front end can show "retrying in 12s (rate limited)":

    with retry_listener(lambda event: print(event.describe())):
        embed.get_text_embedding_batch(texts)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Literal, TypeVar

from ._client import SDK_VERSION, describe_failure, failure_from_exception
from ._concurrency import AdaptiveLimit
from ._errors import GeminiEmbedError, UnexpectedAnswerError, redact
from ._quota import QuotaLimiter
from ._retry import Action, RetryPolicy, decide
from ._tokens import TokenCalibration
from ._usage import Usage

__all__ = ["Clock", "RetryEvent", "RetryListener", "RetryingCaller", "Sleep", "retry_listener"]

logger = logging.getLogger("llama_index_gemini_embed")

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryEvent:
    """One wait about to happen in the retry layer.

    RetryEvent(kind="retry", what="embedding", model="gemini-embedding-001",
               delay=12.0, reason="rate limited", attempt=2, code=429).describe()
    # 'embedding: retrying in 12s (rate limited, attempt 2)'
    """

    kind: Literal["retry", "pace"]
    """``retry``: backing off after a failure; ``pace``: waiting for the configured quota."""
    what: str
    """``embedding``, ``rerank`` or ``batch``."""
    model: str
    delay: float
    """Seconds about to be waited."""
    reason: str
    """Why: ``rate limited``, ``connection refused``, ``503 UNAVAILABLE``, ``quota``..."""
    attempt: int = 0
    """For retries: the number of this retry (1 = first); 0 for pacing."""
    code: int | None = None
    """HTTP status of the failure, None for transport failures and pacing."""

    def describe(self) -> str:
        """One short line for a progress display."""
        if self.kind == "pace":
            return f"{self.what}: waiting {self.delay:.0f}s for the quota window"
        return f"{self.what}: retrying in {self.delay:.0f}s ({self.reason}, attempt {self.attempt})"


RetryListener = Callable[[RetryEvent], None]

_listener: contextvars.ContextVar[RetryListener | None] = contextvars.ContextVar(
    "llama_index_gemini_embed_retry_listener", default=None
)


@contextlib.contextmanager
def retry_listener(listener: RetryListener | None) -> Iterator[None]:
    """Send every :class:`RetryEvent` raised within this block (and tasks it starts, also
    via the sync wrappers) to ``listener``. A listener that raises is logged, not fatal."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def _announce(event: RetryEvent) -> None:
    listener = _listener.get()
    if listener is None:
        return
    try:
        listener(event)
    except Exception:
        logger.exception("A retry listener failed; continuing")


class RetryingCaller:
    """Runs API calls: reserve quota, send, classify failures, back off, report usage."""

    def __init__(
        self,
        *,
        model: str,
        policy: RetryPolicy,
        limiter: QuotaLimiter,
        usage: Usage,
        concurrency: AdaptiveLimit | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        secret: Callable[[], str | None] = lambda: None,
        what: str = "embedding",
    ) -> None:
        self.model = model
        self.policy = policy
        self.limiter = limiter
        self.usage = usage
        self.concurrency = concurrency
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.secret = secret
        self.what = what
        self.calibration = TokenCalibration()
        """Our token estimate scaled by the counts the API reported so far."""

    def _unexpected(self, exc: Exception) -> UnexpectedAnswerError:
        """An exception from the SDK that is no API or transport failure we know (e.g. a
        ``ValueError``/``KeyError`` raised while building the request or reading the
        answer): one clear line instead of a raw traceback; the original is the cause."""
        detail = redact(" ".join(f"{type(exc).__name__}: {exc}".split()), self.secret())
        if len(detail) > 300:
            detail = detail[:297] + "..."
        return UnexpectedAnswerError(
            f"The google-genai SDK ({SDK_VERSION}) failed on the {self.what} request for "
            f"{self.model} ({detail}). This is not a failure we know how to retry; completed "
            "work is kept. Check the settings it names, or try another google-genai version "
            "and report it with both versions."
        )

    def paced_tokens(self, estimate: int) -> int:
        """Tokens to reserve for a request we estimate at ``estimate``: the estimate until
        the first reported count, then the estimate scaled by the reported/estimated ratio
        (never more than a per-minute budget, which a single request may fill)."""
        tokens = self.calibration.scale(estimate)
        budget = self.limiter.settings.tokens_per_minute
        return min(tokens, budget) if budget is not None else tokens

    async def acquire_quota(self, items: int, tokens: int) -> int:
        """Wait until the quota grants this request; returns the ticket to complete."""
        while True:
            wait, ticket = self.limiter.reserve(items, tokens, self.clock())
            if wait <= 0:
                return ticket
            _announce(RetryEvent("pace", self.what, self.model, wait, "quota"))
            await self.sleep(wait)
            # Let in-flight requests finish even if an injected sleep does not yield.
            await asyncio.sleep(0)

    async def call(
        self,
        send: Callable[[], Awaitable[T]],
        *,
        items: int,
        tokens: int,
        reported: Callable[[T], int | None] | None = None,
    ) -> T:
        """Run ``send`` until it succeeds or a typed :class:`GeminiEmbedError` is raised.

        ``tokens`` is our estimate; ``reported`` reads the API's count from the answer,
        which then replaces the reservation in the quota window and calibrates the
        estimates of later requests. Only SDK/transport failures are retried; our own
        errors propagate unchanged; any other exception becomes an
        :class:`UnexpectedAnswerError` (cause attached). Usage is recorded by the caller
        on success (it knows what was billed).
        """
        attempt = 0
        paced = self.paced_tokens(tokens)
        while True:
            ticket = await self.acquire_quota(items, paced)
            try:
                result = await send()
            except Exception as exc:
                self.limiter.complete(ticket, self.clock())
                failure = failure_from_exception(exc)
                if failure is None:
                    if isinstance(exc, GeminiEmbedError):
                        raise  # ours, already typed and worded
                    raise self._unexpected(exc) from exc
                decision = decide(
                    failure, attempt=attempt, policy=self.policy, rand=self.rng.random()
                )
                if decision.rate_limited and self.concurrency is not None:
                    self.concurrency.on_throttle(self.clock())
                if decision.action is not Action.RETRY:
                    raise describe_failure(
                        failure,
                        model=self.model,
                        exhausted=attempt >= self.policy.max_retries,
                        secret=self.secret(),
                        what=self.what,
                    ) from None
                self.usage.record_retry(throttled=decision.rate_limited)
                logger.debug(
                    "Retrying a %s request in %.2fs (%s, attempt %d)",
                    self.what,
                    decision.delay,
                    decision.reason,
                    attempt + 1,
                )
                attempt += 1
                _announce(
                    RetryEvent(
                        "retry",
                        self.what,
                        self.model,
                        decision.delay,
                        decision.reason,
                        attempt=attempt,
                        code=failure.code,
                    )
                )
                await self.sleep(decision.delay)
                continue
            counted = reported(result) if reported is not None else None
            if counted is not None:
                self.calibration.observe(estimated=tokens, reported=counted)
            self.limiter.complete(ticket, self.clock(), tokens=counted)
            if self.concurrency is not None:
                self.concurrency.on_success()
            return result
