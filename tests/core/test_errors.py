"""The error hierarchy: public module names, declared attributes, pickling, one quota check
(issue 12, errors)."""

from __future__ import annotations

import pickle
import traceback
from typing import Any

import pytest

import llama_index_gemini_embed
from llama_index_gemini_embed import (
    APIUnreachableError,
    ConfigurationError,
    GeminiEmbedding,
    GeminiReranker,
    InvalidAPIKeyError,
    QuotaBlockedError,
)
from llama_index_gemini_embed._quota import QuotaLimiter

EXPORTED_ERRORS = [
    value
    for name in llama_index_gemini_embed.__all__
    if isinstance(value := getattr(llama_index_gemini_embed, name), type)
    and issubclass(value, BaseException)
]


def test_exported_errors_show_the_public_module() -> None:
    assert len(EXPORTED_ERRORS) >= 18
    for error_type in EXPORTED_ERRORS:
        assert error_type.__module__ == "llama_index_gemini_embed", error_type
    try:
        GeminiEmbedding(api_key="k", output_dimensionality="many")
    except ConfigurationError as error:
        text = "".join(traceback.format_exception_only(error))
        assert text.startswith("llama_index_gemini_embed.ConfigurationError: ")


@pytest.mark.parametrize("error_type", EXPORTED_ERRORS, ids=lambda t: t.__name__)
def test_every_exported_error_pickles(error_type: type[BaseException]) -> None:
    error = error_type("what happened; what to do")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is error_type and str(again) == str(error)


def test_declared_attributes_survive_pickling() -> None:
    unreachable = APIUnreachableError("x", url="http://127.0.0.1:9", reason="connection refused")
    key = InvalidAPIKeyError("y", code=400, status="INVALID_ARGUMENT", key_source="GEMINI_API_KEY")
    blocked = QuotaBlockedError("z", code=429, status="RESOURCE_EXHAUSTED", kind="prepay")
    for error in (unreachable, key, blocked):
        again = pickle.loads(pickle.dumps(error))
        assert vars(again) == vars(error)
    assert (unreachable.url, unreachable.code, unreachable.report) == (
        "http://127.0.0.1:9",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("embedder_name", "reranker_name", "value"),
    [
        ("items_per_minute", "requests_per_minute", 0),
        ("tokens_per_minute", "tokens_per_minute", -1),
        ("items_per_day", "requests_per_day", 0),
    ],
)
def test_one_check_for_quota_settings(embedder_name: str, reranker_name: str, value: int) -> None:
    """One check, one message, each naming the parameter as that component takes it: the
    embedder and the limiter count items, the reranker requests."""
    embedder_kwargs: dict[str, Any] = {embedder_name: value}
    reranker_kwargs: dict[str, Any] = {reranker_name: value}
    builds: list[tuple[str, Any]] = [
        (embedder_name, lambda: GeminiEmbedding(api_key="k", **embedder_kwargs)),
        (reranker_name, lambda: GeminiReranker(api_key="k", **reranker_kwargs)),
        (embedder_name, lambda: QuotaLimiter(**embedder_kwargs)),
    ]
    for name, build in builds:
        with pytest.raises(ConfigurationError) as info:
            build()
        assert str(info.value) == f"{name}={value} is invalid: use at least 1, or None for no limit"
