"""BatchOptions: one typed, frozen settings object for the Batch API path (issue 12).

Used the way a user would: public imports, ``ingest(..., batch=BatchOptions(...))`` into a
real local Chroma store, the real SDK against the emulator.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import pytest

from llama_index_gemini_embed import (
    BatchOptions,
    ChromaStore,
    ConfigurationError,
    GeminiEmbedding,
    _deprecation,
    aingest,
    sample_corpus_dir,
)
from llama_index_gemini_embed.emulator import Emulator
from tests.fakes import FakeTime


def embed_for(emu: Emulator, fake: FakeTime) -> GeminiEmbedding:
    return GeminiEmbedding(
        api_key=emu.api_key,
        base_url=emu.base_url,
        output_dimensionality=768,
        clock=fake.clock,
        sleep=fake.sleep,
    )


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the deprecation warnings as a new process would."""
    monkeypatch.setattr(_deprecation, "_warned", set())


def test_options_are_frozen_typed_and_validated() -> None:
    options = BatchOptions(max_wait=60, fallback_online=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.wait = False  # type: ignore[misc]
    assert options.replace(wait=False).wait is False and options.wait is True
    assert all(f.kw_only for f in dataclasses.fields(BatchOptions))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"poll_initial": 0}, "BatchOptions(poll_initial=0): use seconds > 0"),
        ({"poll_initial": 30, "poll_max": 10}, "BatchOptions(poll_max=10) is below"),
        ({"max_wait": -1}, "BatchOptions(max_wait=-1)"),
        ({"results_timeout": float("nan")}, "BatchOptions(results_timeout=nan)"),
        ({"max_items_per_job": 0}, "BatchOptions(max_items_per_job=0): use an integer >= 1"),
        ({"max_inline_bytes": -5}, "BatchOptions(max_inline_bytes=-5): use bytes >= 0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigurationError) as exc:
            BatchOptions(**kwargs)
        assert message in str(exc.value) and "\n" not in str(exc.value)


async def test_ingest_with_batch_options(emulator: Emulator, tmp_path: Path) -> None:
    fake = FakeTime()
    emulator.set_batch_behaviour(polls_until_done=3)
    state = tmp_path / "jobs.json"
    events: list[str] = []
    with ChromaStore("docs", path=str(tmp_path / "chroma")) as store:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)  # the new spelling: no deprecation
            first = await aingest(
                sample_corpus_dir(),
                store=store,
                embed_model=embed_for(emulator, fake),
                batch=BatchOptions(
                    state_path=state, wait=False, on_event=lambda s: events.append(s.state)
                ),
                show_progress=False,
            )
        assert first.mode == "batch" and first.pending > 0 and state.exists()
        assert events and fake.sleeps == []  # one pass, no waiting
        second = await aingest(
            sample_corpus_dir(),
            store=store,
            embed_model=embed_for(emulator, fake),
            batch=BatchOptions(state_path=state, poll_initial=5, poll_max=5),
            show_progress=False,
        )
        assert second.ok and second.pending == 0 and fake.sleeps and set(fake.sleeps) == {5}
        assert emulator.counters.batch_jobs_created == 1  # re-attached, never paid twice
        assert emulator.counters.embed_items == 0
        assert store.collection.count() == first.embedded + second.embedded


async def test_batch_true_uses_the_defaults(emulator: Emulator, tmp_path: Path) -> None:
    fake = FakeTime()
    with ChromaStore("docs", path=str(tmp_path / "chroma")) as store:
        report = await aingest(
            sample_corpus_dir(),
            store=store,
            embed_model=embed_for(emulator, fake),
            batch=True,
            show_progress=False,
        )
        assert report.ok and report.mode == "batch"
        assert fake.sleeps[0] == BatchOptions().poll_initial  # the model's fake time is used
        assert (tmp_path / "chroma").exists() and store.collection.count() == report.embedded


async def test_the_old_parameters_still_work_and_warn_once(
    emulator: Emulator, tmp_path: Path
) -> None:
    fake = FakeTime()
    legacy: dict[str, Any] = {
        "mode": "batch",
        "batch_state": tmp_path / "jobs.json",
        "batch_wait": True,
        "batch_options": {"poll_initial": 2.0, "poll_max": 2.0, "sleep": fake.sleep},
    }
    with ChromaStore("docs", path=str(tmp_path / "chroma")) as store:
        with pytest.warns(FutureWarning) as caught:
            report = await aingest(
                sample_corpus_dir(),
                store=store,
                embed_model=embed_for(emulator, fake),
                show_progress=False,
                **legacy,
            )
        assert report.ok and report.mode == "batch" and set(fake.sleeps) == {2.0}
        messages = sorted(str(w.message) for w in caught if w.category is FutureWarning)
        assert len(messages) == 4
        assert all("deprecated: use batch=" in m for m in messages)
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)  # second use: silent
            BatchOptions.from_legacy(**legacy)


def test_bad_combinations_are_one_clear_line() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"batch": BatchOptions(), "mode": "batch"}, "Pass batch=BatchOptions(...) alone: mode"),
        ({"mode": "fast"}, "mode='fast' is not one of 'online', 'batch'"),
        ({"batch": "yes"}, "batch='yes' is invalid: pass True or BatchOptions(...)"),
        (
            {"mode": "batch", "batch_options": {"pol_initial": 1}},
            "batch_options has unknown key(s) pol_initial; BatchOptions fields are:",
        ),
    ]
    for kwargs, message in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            with pytest.raises(ConfigurationError) as exc:
                BatchOptions.from_legacy(**kwargs)
        assert message in str(exc.value) and "\n" not in str(exc.value)
    assert BatchOptions.from_legacy(batch=False) is None
