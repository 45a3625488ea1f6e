"""Prove a setup on the user's own key in a few tiny calls: ``gemini-embed doctor``.

    report = embed.doctor()                # or: report = await embed.adoctor()
    print(report.table())                  # one row per check, with the fix when it fails
    report.ok                              # False when a row failed

It spends at most: two embedding calls of one short text (document and query), one
countTokens call, one Batch API list and one Files API list (one page of one item, no
job or upload), and one reranker judgement of two one-line passages (skipped with
``rerank_model=None``). Every failure becomes a row, never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import (
    APIUnreachableError,
    GeminiEmbedError,
    InvalidAPIKeyError,
    MissingAPIKeyError,
    UnknownModelError,
)
from ._sync import run_sync

if TYPE_CHECKING:
    from ._embedding.embedding import GeminiEmbedding

__all__ = ["DoctorCheck", "DoctorReport", "adoctor", "doctor"]

#: The short text every probe embeds (a handful of tokens).
PROBE_TEXT = "Doctor check: does the embedding service answer?"


@dataclass(frozen=True)
class DoctorCheck:
    """One row: ``ok`` True (passed), False (failed: ``fix`` says what to do), None (n/a)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    @property
    def status(self) -> str:
        return {True: "ok", False: "FAIL", None: "-"}[self.ok]


@dataclass(frozen=True)
class DoctorReport:
    """All rows of one doctor run; ``print(report)`` shows the table."""

    checks: tuple[DoctorCheck, ...]

    @property
    def ok(self) -> bool:
        """No row failed (rows that do not apply do not count)."""
        return all(check.ok is not False for check in self.checks)

    @property
    def failures(self) -> tuple[DoctorCheck, ...]:
        return tuple(check for check in self.checks if check.ok is False)

    def table(self) -> str:
        """The rows aligned as ``check  status  detail``, each failure followed by its fix."""
        width = max(len(check.name) for check in self.checks)
        lines = []
        for check in self.checks:
            lines.append(f"{check.name:<{width}}  {check.status:<4}  {check.detail}")
            if check.ok is False and check.fix:
                lines.append(f"{'':<{width}}        fix: {check.fix}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _describe(error: BaseException) -> str:
    return str(error) if isinstance(error, GeminiEmbedError) else f"{type(error).__name__}: {error}"


async def _attempt(call: Callable[[], Awaitable[Any]]) -> tuple[Any, BaseException | None]:
    try:
        return await call(), None
    except Exception as error:  # every failure becomes a row
        return None, error


async def adoctor(embed: GeminiEmbedding, *, rerank_model: str | None = None) -> DoctorReport:
    """Run the checks with ``embed``'s key, endpoint and model (see the module docstring).

    ``rerank_model``: the judge model to check (None: skip the reranker row).
    """
    from ._tokens import estimate_tokens

    model = embed.model_name
    checks: list[DoctorCheck] = []
    document, error = await _attempt(lambda: embed.aget_text_embedding(PROBE_TEXT))
    if error is not None:
        checks.extend(_first_call_failed(model, error))
        return DoctorReport(tuple(checks))
    checks.append(DoctorCheck("API key", True, "accepted"))
    checks.append(DoctorCheck(f"model {model}", True, "reachable, answered an embedding"))

    expected = embed.dimension
    norm = math.sqrt(sum(x * x for x in document))
    shape_ok = len(document) == expected and abs(norm - 1.0) < 1e-3
    checks.append(
        DoctorCheck(
            "dimension / norm",
            shape_ok,
            f"{len(document)} (expected {expected}), norm {norm:.4f}",
            ""
            if shape_ok
            else "the API returned another shape than configured: check the "
            "model's documented output dimensions and the SDK version",
        )
    )

    query, error = await _attempt(lambda: embed.aget_query_embedding(PROBE_TEXT))
    if error is not None:
        checks.append(DoctorCheck("task types", False, _describe(error), "see the error"))
    else:
        cosine = sum(a * b for a, b in zip(document, query, strict=True))
        differ = cosine < 0.9999
        checks.append(
            DoctorCheck(
                "task types",
                differ,
                f"query vs document vector cosine {cosine:.4f}"
                + (" (they differ: honoured)" if differ else " (identical)"),
                ""
                if differ
                else "the API ignored the task type: query and document vectors "
                "must differ; check the model and the SDK version",
            )
        )

    checks.append(await _tokens(embed, estimate_tokens(PROBE_TEXT)))
    checks.append(
        DoctorCheck(
            "quota headroom",
            None,
            "unknown: the Gemini API does not report remaining quota; set your tier's limits "
            "(items and tokens per minute) so the client paces itself",
        )
    )
    # One page of one item, on the API version the batch path uses (v1beta unless set).
    page = {"page_size": 1, "http_options": {"api_version": _batch_api_version(embed)}}
    checks.append(await _lists(embed, "Batch API", lambda c: c.aio.batches.list(config=page)))
    checks.append(await _lists(embed, "Files API", lambda c: c.aio.files.list(config=page)))
    if rerank_model is not None:
        checks.append(await _reranker(embed, rerank_model))
    return DoctorReport(tuple(checks))


def _batch_api_version(embed: GeminiEmbedding) -> str:
    from ._batch.api import BATCH_API_VERSION

    return embed.api_version or BATCH_API_VERSION


def _first_call_failed(model: str, error: BaseException) -> list[DoctorCheck]:
    message = _describe(error)
    if isinstance(error, InvalidAPIKeyError | MissingAPIKeyError):
        return [
            DoctorCheck(
                "API key", False, message, "create a key at https://aistudio.google.com/apikey"
            )
        ]
    if isinstance(error, APIUnreachableError):
        return [
            DoctorCheck("API key", False, message, "check the base URL, the network and the proxy")
        ]
    if isinstance(error, UnknownModelError):
        return [
            DoctorCheck("API key", True, "accepted"),
            DoctorCheck(
                f"model {model}",
                False,
                message,
                "use gemini-embedding-001 or gemini-embedding-2 (see "
                "https://ai.google.dev/gemini-api/docs/embeddings)",
            ),
        ]
    return [DoctorCheck(f"model {model}", False, message, "see the error")]


async def _tokens(embed: GeminiEmbedding, estimate: int) -> DoctorCheck:
    async def count() -> Any:
        return await embed.client.aio.models.count_tokens(
            model=embed.model_name, contents=PROBE_TEXT
        )

    answer, error = await _attempt(count)
    if error is not None:
        return DoctorCheck("token count", False, _describe(error), "countTokens failed: see why")
    real = getattr(answer, "total_tokens", None)
    if not isinstance(real, int) or real <= 0:
        return DoctorCheck("token count", None, f"the API gave no count; estimate {estimate}")
    close = estimate <= 2 * real and real <= 2 * estimate
    return DoctorCheck(
        "token count",
        close,
        f"API {real}, our estimate {estimate}",
        "" if close else "the estimate is off by more than 2x: quota pacing may be wrong",
    )


async def _lists(
    embed: GeminiEmbedding, name: str, call: Callable[[Any], Awaitable[Any]]
) -> DoctorCheck:
    _, error = await _attempt(lambda: call(embed.client))
    if error is None:
        return DoctorCheck(name, True, "reachable (listed one page)")
    return DoctorCheck(
        name,
        False,
        _describe(error).splitlines()[0][:300],
        f"the {name} refused a list call: check that the key's project may use it",
    )


async def _reranker(embed: GeminiEmbedding, model: str) -> DoctorCheck:
    from llama_index.core.schema import NodeWithScore, TextNode

    from ._rerank.postprocessor import GeminiReranker

    name = f"reranker {model}"
    settings: dict[str, Any] = {"model": model, "top_n": 2, "failure_policy": "raise"}
    key = embed._secret()
    if key:
        settings["api_key"] = key
    if embed.base_url:
        settings["base_url"] = embed.base_url
    nodes = [
        NodeWithScore(node=TextNode(text="Embeddings map text to vectors."), score=0.5),
        NodeWithScore(node=TextNode(text="The weather is sunny today."), score=0.4),
    ]
    reranker, error = await _attempt(lambda: _async(GeminiReranker(**settings)))
    if error is None:
        _, error = await _attempt(
            lambda: reranker.apostprocess_nodes(nodes, query_str="what is an embedding?")
        )
    if error is not None:
        return DoctorCheck(name, False, _describe(error), "pick a current generation model")
    report = reranker.last_report
    if report is not None and report.fallbacks:
        problems = "; ".join(report.problems)[:300] or "no valid scores"
        return DoctorCheck(
            name,
            False,
            f"answered without valid JSON scores ({problems})",
            "pick a current generation model that supports JSON output",
        )
    return DoctorCheck(name, True, "answered valid JSON scores")


async def _async(value: Any) -> Any:
    return value


def doctor(embed: GeminiEmbedding, *, rerank_model: str | None = None) -> DoctorReport:
    """Blocking :func:`adoctor`."""
    result: DoctorReport = run_sync(adoctor(embed, rerank_model=rerank_model))
    return result
