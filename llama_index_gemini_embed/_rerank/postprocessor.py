"""``GeminiReranker``: rerank retrieved nodes with a Gemini model as relevance judge.

    from llama_index_gemini_embed import GeminiReranker

    reranker = GeminiReranker(top_n=5)              # key from GEMINI_API_KEY
    engine = index.as_query_engine(similarity_top_k=30, node_postprocessors=[reranker])
    nodes = reranker.postprocess_nodes(retrieved, query_str="what is RAG?")
    print(reranker.last_report, reranker.usage)     # per call; running totals

Scores: ``node.score`` is the judge's 0–10 relevance divided by 10, so 0.0–1.0 (and
``score_threshold`` is on that scale). Candidates the judge could not score (an invalid
answer twice, or an API failure after retries) get ``-(position + 1) / (n + 1)``: below
every judged node and in retrieval order. Nothing is dropped, duplicated or invented:
the result is the candidates, reordered, filtered by ``score_threshold``, cut to ``top_n``.

Only this adapter does I/O; prompt building, answer checking and ranking are the pure
functions of :mod:`.decisions`, media loading is :mod:`.media`; retries and quota pacing
are :class:`._calls.RetryingCaller`. Why ~600 lines: about a third is the pydantic field
declarations and their validation, which LlamaIndex's serialisation needs on the class.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from google import genai
from google.genai import types
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle
from llama_index_instrumentation import get_dispatcher
from pydantic import Field, PrivateAttr

from llama_index_gemini_embed._calls import RetryingCaller
from llama_index_gemini_embed._connection import GeminiConnection
from llama_index_gemini_embed._errors import (
    ConfigurationError,
    GeminiAPIError,
    InputError,
    QuotaExhaustedError,
    RerankAnswerError,
    TransientAPIError,
    UnknownModelError,
)
from llama_index_gemini_embed._models import cost_usd
from llama_index_gemini_embed._quota import CountLimits
from llama_index_gemini_embed._retry import RetryPolicy
from llama_index_gemini_embed._sync import run_sync
from llama_index_gemini_embed._tokens import estimate_tokens
from llama_index_gemini_embed._usage import Usage, UsageSnapshot

from .decisions import (
    SYSTEM_INSTRUCTION,
    Passage,
    ScoreList,
    build_parts,
    check_answer,
    compose_passage,
    final_scores,
    generation_prices,
    judge_settings,
    new_ids,
    rank,
    split_sized_batches,
)
from .media import Media, MediaPart, load_media

__all__ = ["DEFAULT_RERANK_MODEL", "GeminiReranker", "RerankAnswerError", "RerankReport"]

logger = logging.getLogger("llama_index_gemini_embed")
dispatcher = get_dispatcher(__name__)

DEFAULT_RERANK_MODEL = "gemini-3.5-flash-lite"
"""A current GA model, Google's named replacement for the retired gemini-2.5-flash
(docs/gemini-api.md, "Reranker judge models")."""

#: The API version of the judge's structured-output requests unless the user set one:
#: ``responseSchema``/``systemInstruction``/``thinkingConfig`` are documented on v1beta,
#: and v1 has rejected them (SDK 3.x defaults to v1).
RERANK_API_VERSION = "v1beta"

_unpriced_warned: set[str] = set()

#: Input tokens estimated per image or PDF sent to the judge (Gemini: 258 per image tile
#: or PDF page; the API's usageMetadata replaces the estimate once it answers).
_MEDIA_TOKENS = 258

# API failures after which the batch falls back to retrieval order (policy "fallback"):
# the next query may well succeed. Anything else (bad key, unknown model, a 400) is a
# configuration problem that every call would hit, so it is always raised.
_FALLBACK_ERRORS: tuple[type[GeminiAPIError], ...] = (TransientAPIError, QuotaExhaustedError)


@dataclass(frozen=True)
class RerankReport:
    """What one rerank call did: ``reranker.last_report``."""

    model: str
    candidates: int = 0
    returned: int = 0
    batches: int = 0
    requests: int = 0
    """generateContent calls answered (re-asks included; HTTP retries not)."""
    answer_retries: int = 0
    """Batches asked again after an invalid answer."""
    judged: int = 0
    fallbacks: int = 0
    """Candidates without a valid judge score, ranked by retrieval position."""
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    """Estimate from the model's list price (see ``GENERATION_PRICES``)."""
    problems: tuple[str, ...] = ()
    """Why candidates fell back: invalid answers, API errors."""


@dataclass
class _CallStats:
    requests: int = 0
    answer_retries: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    problems: list[str] = field(default_factory=list)
    used_ids: set[str] = field(default_factory=set)


class GeminiReranker(GeminiConnection, BaseNodePostprocessor):
    """Reorder retrieved nodes by a Gemini model's 0–10 relevance judgement of each one.

    Candidates go to the judge in batches of ``batch_size`` (concurrently, at most
    ``max_concurrency`` at a time), each as an escaped ``<passage>`` with an opaque id;
    answers are checked (ids of the batch only, one number in 0–10 each) and a bad answer
    is asked once more. Retries, quota pacing and usage accounting are shared with
    :class:`GeminiEmbedding`.

    Raises:
        MissingAPIKeyError: no key given and none in GEMINI_API_KEY / GOOGLE_API_KEY.
        ConfigurationError: an invalid setting (top_n, batch_size, ...).
    """

    top_n: int | None = Field(
        default=5, description="Nodes returned at most (>= 1); None: every node, reordered."
    )
    model: str = Field(
        default=DEFAULT_RERANK_MODEL, description="Gemini generation model used as judge."
    )
    score_threshold: float | None = Field(
        default=None,
        description="Drop judged nodes scoring below this (0-1 scale); unjudged are kept.",
    )
    batch_size: int = Field(default=20, description="Candidates per judge call (>= 1).")
    max_concurrency: int = Field(default=4, description="Judge calls in flight per rerank.")
    max_media_bytes_per_request: int = Field(
        default=14_000_000,
        description="Image/PDF bytes sent inline per judge call (a request is capped at 20 MB "
        "incl. base64); 0: judge media candidates by their text only.",
    )
    max_passage_chars: int = Field(
        default=2000, description="Characters of each candidate shown to the judge (>= 100)."
    )
    title_metadata_keys: list[str] = Field(
        default_factory=lambda: ["title", "file_name"],
        description="Node metadata keys tried in order for a title shown to the judge.",
    )
    metadata_keys: list[str] = Field(
        default_factory=list, description="Extra node metadata keys shown to the judge."
    )
    failure_policy: Literal["fallback", "raise"] = Field(
        default="fallback",
        description="Unjudgeable candidates: keep them in retrieval order, or raise.",
    )
    thinking_budget: int | Literal["auto"] | None = Field(
        default="auto",
        description="'auto': per model family (Gemini 3: thinking level LOW and "
        "temperature 1.0; 2.5 Flash/Flash-Lite: budget 0); None: no thinking setting sent; "
        "an int: sent as thinking_budget.",
    )
    price_per_million_input_tokens: float | None = Field(
        default=None, description="USD per 1M input tokens (None: built-in estimate)."
    )
    price_per_million_output_tokens: float | None = Field(
        default=None, description="USD per 1M output tokens (None: built-in estimate)."
    )
    timeout: float | None = Field(default=30.0, description="Per-request timeout, seconds.")
    max_retries: int = Field(default=3, description="HTTP retries after the first attempt.")
    requests_per_minute: int | None = Field(
        default=None, description="Quota: generateContent requests per minute."
    )
    tokens_per_minute: int | None = Field(default=None, description="Quota: input tokens/min.")
    requests_per_day: int | None = Field(default=None, description="Quota: requests per day.")
    _caller: RetryingCaller | None = PrivateAttr(default=None)
    _usage: Usage = PrivateAttr()
    _last_report: RerankReport | None = PrivateAttr(default=None)
    _id_rng: random.Random = PrivateAttr(default_factory=random.SystemRandom)
    _caller_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(
        self,
        *,
        client: genai.Client | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
        **data: Any,
    ) -> None:
        super().__init__(**data)
        self._check_settings()
        default_in, default_out = self._default_prices()
        self._usage = Usage(
            price_per_million_tokens=_or(self.price_per_million_input_tokens, default_in),
            price_per_million_output_tokens=_or(self.price_per_million_output_tokens, default_out),
        )
        self._connect(client, clock=clock, sleep=sleep, rng=rng)
        if rng is not None:
            self._id_rng = rng

    @classmethod
    def class_name(cls) -> str:
        return "LigeGeminiReranker"

    def _check_settings(self) -> None:
        def at_least(name: str, value: int | None, minimum: int, hint: str) -> None:
            if value is not None and value < minimum:
                raise ConfigurationError(f"{name}={value} is invalid: {hint}")

        at_least("top_n", self.top_n, 1, "return at least 1 node (default 5), or None for all")
        at_least("batch_size", self.batch_size, 1, "send at least 1 candidate per call (20)")
        at_least("max_concurrency", self.max_concurrency, 1, "use at least 1 (default 4)")
        at_least("max_passage_chars", self.max_passage_chars, 100, "use at least 100 (2000)")
        at_least(
            "max_media_bytes_per_request",
            self.max_media_bytes_per_request,
            0,
            "use bytes >= 0 (0: text only; default 14000000)",
        )
        at_least("max_retries", self.max_retries, 0, "use 0 to disable retries")
        # Quota limits: checked once for every component in GeminiConnection._connect.
        for name in ("price_per_million_input_tokens", "price_per_million_output_tokens"):
            price = getattr(self, name)
            if price is not None and not (math.isfinite(price) and price >= 0):
                raise ConfigurationError(f"{name}={price} is invalid: use USD >= 0, or None")
        if self.score_threshold is not None and not math.isfinite(self.score_threshold):
            raise ConfigurationError("score_threshold must be a finite number on the 0-1 scale")
        if self.timeout is not None and not self.timeout > 0:
            raise ConfigurationError(f"timeout={self.timeout} is invalid: use seconds > 0")
        if isinstance(self.thinking_budget, int) and self.thinking_budget < -1:
            raise ConfigurationError("thinking_budget must be >= -1 (-1: dynamic), or None")

    def _default_prices(self) -> tuple[float, float]:
        prices = generation_prices(self.model)
        if prices is not None:
            return prices
        priced = (self.price_per_million_input_tokens, self.price_per_million_output_tokens)
        if None in priced and self.model not in _unpriced_warned:
            _unpriced_warned.add(self.model)
            logger.warning(
                "GeminiReranker has no built-in price for model %r: its cost_usd counts "
                "unpriced tokens as $0. Pass price_per_million_input_tokens= and "
                "price_per_million_output_tokens= for real figures.",
                self.model,
            )
        return (0.0, 0.0)

    # -- wiring -----------------------------------------------------------------------

    def _count_limits(self) -> CountLimits:
        return CountLimits(
            self.requests_per_minute,
            self.requests_per_day,
            names=("requests_per_minute", "requests_per_day"),
        )

    def _quota_scope(self) -> tuple[object, ...]:
        return ("generate", self.base_url, self.model)

    @property
    def caller(self) -> RetryingCaller:
        """The shared retry/quota layer behind this instance (built on first use)."""
        with self._caller_lock:
            if self._caller is None:
                self._caller = RetryingCaller(
                    model=self.model,
                    policy=RetryPolicy(max_retries=self.max_retries),
                    limiter=self._limiter(),
                    usage=self._usage,
                    clock=self._clock or time.monotonic,
                    sleep=self._sleep or asyncio.sleep,
                    rng=self._rng,
                    secret=self._secret,
                    what="rerank",
                )
            return self._caller

    @property
    def usage(self) -> UsageSnapshot:
        """Totals so far: items = candidates sent, requests, tokens in/out, retries,
        failed_items = candidates that fell back, cost_usd (estimate)."""
        return self._usage.snapshot()

    @property
    def last_report(self) -> RerankReport | None:
        """The report of the most recent rerank call (None before the first)."""
        return self._last_report

    def title_for(self, metadata: dict[str, Any]) -> str | None:
        """The title shown to the judge (first non-empty ``title_metadata_keys`` value)."""
        for key in self.title_metadata_keys:
            value = metadata.get(key)
            if value is not None and str(value).strip():
                return str(value).strip()
        return None

    def passage_text(self, node: BaseNode) -> str:
        """What the judge reads for ``node`` (before escaping): title, metadata, text."""
        metadata = node.metadata or {}
        extra = [
            (key, metadata.get(key))
            for key in self.metadata_keys
            if key in metadata and key not in self.title_metadata_keys
        ]
        return compose_passage(
            node.get_content(metadata_mode=MetadataMode.NONE),
            title=self.title_for(metadata),
            metadata=extra,
            max_chars=self.max_passage_chars,
        )

    def _generation_config(self) -> types.GenerateContentConfig:
        family = judge_settings(self.model)
        thinking: types.ThinkingConfig | None = None
        if self.thinking_budget == "auto":
            if family.thinking_level is not None:
                thinking = types.ThinkingConfig(
                    thinking_level=types.ThinkingLevel(family.thinking_level)
                )
            elif family.thinking_budget is not None:
                thinking = types.ThinkingConfig(thinking_budget=family.thinking_budget)
        elif isinstance(self.thinking_budget, int):
            thinking = types.ThinkingConfig(thinking_budget=self.thinking_budget)
        return types.GenerateContentConfig(
            system_instruction=SYSTEM_INSTRUCTION,
            response_mime_type="application/json",
            response_schema=ScoreList,
            temperature=family.temperature,
            thinking_config=thinking,
            http_options=types.HttpOptions(api_version=self.api_version or RERANK_API_VERSION),
        )

    # -- judging ------------------------------------------------------------------------

    async def _ask(
        self, parts: Sequence[str | MediaPart], count: int, stats: _CallStats
    ) -> str | None:
        """One judge call (retried by the shared layer); returns the answer text."""
        config = self._generation_config()
        estimate = estimate_tokens(SYSTEM_INSTRUCTION) + sum(
            estimate_tokens(part) if isinstance(part, str) else _MEDIA_TOKENS for part in parts
        )
        prompt: str | list[types.Content]
        if all(isinstance(part, str) for part in parts):
            prompt = "".join(part for part in parts if isinstance(part, str))
        else:
            prompt = [
                types.Content(
                    role="user",
                    parts=[
                        types.Part(text=part)
                        if isinstance(part, str)
                        else types.Part.from_bytes(data=part.data or b"", mime_type=part.mime_type)
                        for part in parts
                    ],
                )
            ]
        client = self.client
        try:
            response = await self.caller.call(
                lambda: client.aio.models.generate_content(
                    model=self.model, contents=prompt, config=config
                ),
                items=1,  # generation quotas count requests, not candidates
                tokens=estimate,
            )
        except UnknownModelError as error:
            raise UnknownModelError(
                f"Model {self.model!r} is not available for generateContent on this API "
                f"({error.code} {error.status}): it may be retired or misspelled. Use a current "
                f"Gemini generation model such as '{DEFAULT_RERANK_MODEL}' (the default) or "
                "'gemini-3.8-flash' (embedding models cannot judge).",
                code=error.code,
                status=error.status,
            ) from None
        except GeminiAPIError as error:
            if (
                type(error) is GeminiAPIError
                and error.code == 400
                and config.thinking_config
                and "think" in str(error).lower()
            ):
                raise GeminiAPIError(
                    f"{error}. If the model rejects the thinking setting, pass "
                    "thinking_budget=None (or a budget the model accepts).",
                    code=error.code,
                    status=error.status,
                ) from None
            raise
        try:
            text = response.text
        except ValueError:
            text = None
        meta = response.usage_metadata
        tokens_in = estimate
        tokens_out = estimate_tokens(text or "")
        if meta is not None and meta.prompt_token_count is not None:
            tokens_in = meta.prompt_token_count
        if meta is not None and meta.candidates_token_count is not None:
            tokens_out = meta.candidates_token_count + (meta.thoughts_token_count or 0)
        self._usage.record_request(
            items=count,
            tokens=tokens_in,
            output_tokens=tokens_out,
            estimated=meta is None or meta.prompt_token_count is None,
        )
        stats.requests += 1
        stats.tokens_in += tokens_in
        stats.tokens_out += tokens_out
        return text

    async def _judge_batch(
        self,
        query: str,
        positions: range,
        texts: Sequence[str],
        media: Sequence[Media],
        stats: _CallStats,
    ) -> dict[int, float]:
        """Valid 0–10 scores by position for one batch; asks again once after a bad answer."""
        label = f"candidates {positions.start}-{positions.stop - 1}"
        accepted: dict[int, float] = {}
        problems: tuple[str, ...] = ()
        for attempt in range(2):
            # fresh ids for the re-ask too, never repeated within this call
            ids = new_ids(len(positions), self._id_rng, stats.used_ids)
            stats.used_ids.update(ids)
            passages = [Passage(pid, texts[p]) for pid, p in zip(ids, positions, strict=True)]
            attached = {pid: media[p].parts for pid, p in zip(ids, positions, strict=True)}
            try:
                answer = await self._ask(
                    build_parts(query, passages, attached), len(positions), stats
                )
            except _FALLBACK_ERRORS as error:
                if self.failure_policy == "raise":
                    raise
                stats.problems.append(f"{label}: {type(error).__name__}: {error}")
                return accepted
            check = check_answer(answer, ids)
            for pid, position in zip(ids, positions, strict=True):
                if pid in check.scores:
                    accepted[position] = check.scores[pid]  # the later answer wins
            if check.ok:
                return accepted
            problems = check.problems
            logger.debug("Invalid rerank answer for %s (attempt %d): %s", label, attempt, problems)
            if attempt == 0:
                stats.answer_retries += 1
        summary = "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
        missing = len(positions) - len(accepted)
        if missing:
            stats.problems.append(f"{label}: invalid answer twice ({summary})")
            if self.failure_policy == "raise":
                raise RerankAnswerError(
                    f"Gemini ({self.model}) answered the rerank request for {label} invalidly "
                    f"twice, leaving {missing} of them unscored ({summary}). Pass "
                    "failure_policy='fallback' to keep such candidates in retrieval order, "
                    "or use a stronger model."
                )
        return accepted

    async def _arerank(
        self, nodes: Sequence[NodeWithScore], query_bundle: QueryBundle | None
    ) -> list[NodeWithScore]:
        self._check_settings()
        if query_bundle is None:
            raise InputError(
                "GeminiReranker needs the query: call postprocess_nodes(nodes, query_str=...)"
            )
        query = query_bundle.query_str
        if not query or not query.strip():
            raise InputError(
                "GeminiReranker got an empty query: pass the user's question as query_str=..."
            )
        candidates = list(nodes)
        if not candidates:
            self._last_report = RerankReport(model=self.model)
            return []
        dispatcher.event(
            ReRankStartEvent(
                query=query_bundle,
                nodes=candidates,
                top_n=len(candidates) if self.top_n is None else self.top_n,
                model_name=self.model,
            )
        )
        stats = _CallStats()
        media = self._candidate_media(candidates, stats)
        texts = [
            "\n".join(filter(None, [found.label, self.passage_text(candidate.node)]))
            for found, candidate in zip(media, candidates, strict=True)
        ]
        batches = split_sized_batches(
            [found.size for found in media], self.batch_size, self.max_media_bytes_per_request
        )
        judged: dict[int, float] = {}
        semaphore = asyncio.Semaphore(self.max_concurrency)

        async def judge(positions: range) -> dict[int, float]:
            async with semaphore:
                return await self._judge_batch(query, positions, texts, media, stats)

        tasks = [asyncio.ensure_future(judge(positions)) for positions in batches]
        result: list[NodeWithScore] = []
        try:
            for scores_of_batch in await asyncio.gather(*tasks):
                judged.update(scores_of_batch)
            scores = final_scores(len(candidates), judged)
            order = rank(scores, judged, top_n=self.top_n, threshold=self.score_threshold)
            result = [NodeWithScore(node=candidates[p].node, score=scores[p]) for p in order]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._last_report = self._report(candidates, batches, judged, result, stats)
        fallbacks = len(candidates) - len(judged)
        if fallbacks:
            self._usage.record_failed(fallbacks)
            logger.warning(
                "GeminiReranker could not judge %d of %d candidates; they keep their retrieval "
                "order after the judged ones (%s)",
                fallbacks,
                len(candidates),
                "; ".join(stats.problems[:3]),
            )
        dispatcher.event(ReRankEndEvent(nodes=result))
        return result

    def _candidate_media(
        self, candidates: Sequence[NodeWithScore], stats: _CallStats
    ) -> list[Media]:
        """Each candidate's image/PDF for the judge, within ``max_media_bytes_per_request``.

        A medium that cannot be loaded or is too large is not sent (the candidate is
        judged by its text, and the report says why); no candidate is ever dropped.
        """
        budget = self.max_media_bytes_per_request
        out: list[Media] = []
        for position, candidate in enumerate(candidates):
            found = load_media(candidate.node) if budget > 0 else Media()
            if found.note:
                stats.problems.append(f"candidate {position}: {found.note}; judged by its text")
            if found.size > budget:
                stats.problems.append(
                    f"candidate {position}: its {found.parts[0].mime_type} is {found.size:,} "
                    f"bytes, over max_media_bytes_per_request={budget:,}; judged by its text"
                )
                found = Media(label=found.label)
            out.append(found)
        return out

    def _report(
        self,
        candidates: Sequence[NodeWithScore],
        batches: Sequence[range],
        judged: dict[int, float],
        result: Sequence[NodeWithScore],
        stats: _CallStats,
    ) -> RerankReport:
        return RerankReport(
            model=self.model,
            candidates=len(candidates),
            returned=len(result),
            batches=len(batches),
            requests=stats.requests,
            answer_retries=stats.answer_retries,
            judged=len(judged),
            fallbacks=len(candidates) - len(judged),
            tokens_in=stats.tokens_in,
            tokens_out=stats.tokens_out,
            cost_usd=cost_usd(
                stats.tokens_in,
                self._usage.price_per_million_tokens,
                output_tokens=stats.tokens_out,
                output_price_per_million_tokens=self._usage.price_per_million_output_tokens,
            ),
            problems=tuple(stats.problems),
        )

    # -- LlamaIndex hooks ------------------------------------------------------------------

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        return run_sync(self._arerank(nodes, query_bundle))

    @dispatcher.span
    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        return await self._arerank(nodes, query_bundle)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
