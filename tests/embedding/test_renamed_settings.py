"""The embedder's quota limits count embedded items: ``items_per_minute``/``items_per_day``.

Their old names, ``requests_per_minute``/``requests_per_day`` (misleading: the reranker's
settings of those names do count requests), still work as deprecated aliases.
"""

from __future__ import annotations

import warnings

import pytest

from llama_index_gemini_embed import (
    ConfigurationError,
    GeminiEmbedding,
    GeminiReranker,
    _deprecation,
)


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the deprecation warnings as a new process would."""
    monkeypatch.setattr(_deprecation, "_warned", set())


def test_old_names_still_work_and_warn_once_per_process() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        embed = GeminiEmbedding(api_key="k", requests_per_minute=3000, requests_per_day=500)
        again = GeminiEmbedding(api_key="k", requests_per_minute=10)
    messages = [str(w.message) for w in caught if w.category is FutureWarning]
    assert messages == [
        "GeminiEmbedding(requests_per_minute=...) is deprecated: it counts embedded items, not "
        "requests; use items_per_minute=...",
        "GeminiEmbedding(requests_per_day=...) is deprecated: it counts embedded items, not "
        "requests; use items_per_day=...",
    ]
    assert caught[0].filename == __file__, "the warning points at the caller's line"
    assert (embed.items_per_minute, embed.items_per_day, again.items_per_minute) == (3000, 500, 10)
    saved = embed.to_dict()
    assert saved["items_per_minute"] == 3000 and "requests_per_minute" not in saved


def test_the_old_attribute_reads_the_new_setting_with_a_warning() -> None:
    embed = GeminiEmbedding(api_key="k", items_per_minute=120)
    with pytest.warns(FutureWarning, match="use items_per_minute"):
        assert embed.requests_per_minute == 120


def test_old_and_new_name_disagreeing_is_one_clear_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        GeminiEmbedding(api_key="k", requests_per_minute=10, items_per_minute=20)
    assert str(info.value) == (
        "requests_per_minute=10 and items_per_minute=20 disagree: pass only items_per_minute= "
        "(requests_per_minute is its deprecated old name)"
    )


def test_the_reranker_keeps_requests_per_minute_which_counts_requests() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation there: the name is accurate
        reranker = GeminiReranker(api_key="k", requests_per_minute=60)
    assert reranker.requests_per_minute == 60
