"""aingest(batch=BatchOptions(...)): the Gemini Batch API path, end to end into Chroma."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler

from llama_index_gemini_embed import (
    BatchOptions,
    ChromaStore,
    GeminiEmbedding,
    aingest,
    sample_corpus_dir,
)
from llama_index_gemini_embed.emulator import Emulator
from tests.fakes import FakeTime


def make_embed(emu: Emulator, **kwargs: Any) -> GeminiEmbedding:
    return GeminiEmbedding(
        api_key=emu.api_key, base_url=emu.base_url, output_dimensionality=768, **kwargs
    )


def snapshot(store: ChromaStore) -> dict[str, tuple[str, np.ndarray]]:
    rows = store.collection.get(include=["documents", "embeddings"])
    texts = rows["documents"] or []
    vectors = rows["embeddings"] if rows["embeddings"] is not None else []
    return {
        node_id: (text, np.asarray(vector))
        for node_id, text, vector in zip(rows["ids"], texts, vectors, strict=True)
    }


def batch_options(fake: FakeTime, *, wait: bool = True) -> BatchOptions:
    return BatchOptions(
        sleep=fake.sleep, clock=fake.clock, poll_initial=1.0, poll_max=2.0, wait=wait
    )


async def test_batch_embedded_texts_reach_llamaindex_token_counting(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Issue 11 item 6 on the Batch API path: vectors from a job are reported to LlamaIndex's
    callbacks like an online request, so TokenCountingHandler counts the same tokens."""
    counts: dict[str, int] = {}
    for mode in ("online", "batch"):
        counter = TokenCountingHandler()
        embed = make_embed(emulator, callback_manager=CallbackManager([counter]))
        with ChromaStore(mode, path=str(tmp_path / mode)) as store:
            report = await aingest(
                sample_corpus_dir(),
                store=store,
                embed_model=embed,
                batch=batch_options(FakeTime()) if mode == "batch" else None,
                show_progress=False,
            )
        assert report.ok and report.written == 10
        assert len(counter.embedding_token_counts) >= 1
        counts[mode] = counter.total_embedding_token_count
    assert counts["batch"] == counts["online"] > 0


async def test_batch_mode_equals_online_mode_at_half_the_price(
    emulator: Emulator, tmp_path: Path
) -> None:
    fake = FakeTime()
    online_store = ChromaStore("online", path=str(tmp_path / "online"))
    batch_store = ChromaStore("batched", path=str(tmp_path / "batched"))
    online = await aingest(
        sample_corpus_dir(),
        store=online_store,
        embed_model=make_embed(emulator),
        show_progress=False,
    )
    batch = await aingest(
        sample_corpus_dir(),
        store=batch_store,
        embed_model=make_embed(emulator),
        batch=batch_options(fake),
        show_progress=False,
    )
    assert online.ok and batch.ok
    assert batch.mode == "batch" and batch.batch is not None
    assert emulator.counters.batch_jobs_created >= 1
    assert batch.embedded == online.embedded > 0
    assert batch.cost_usd == pytest.approx(online.cost_usd / 2)
    assert batch.saving_usd == pytest.approx(online.cost_usd / 2)
    a, b = snapshot(online_store), snapshot(batch_store)
    assert a.keys() == b.keys()
    for node_id, (text, vector) in a.items():
        assert b[node_id][0] == text
        np.testing.assert_allclose(b[node_id][1], vector, atol=1e-6)
    online_store.close()
    batch_store.close()


async def test_batch_mode_reattaches_instead_of_paying_twice(
    emulator: Emulator, tmp_path: Path
) -> None:
    fake = FakeTime()
    emulator.set_batch_behaviour(polls_until_running=1, polls_until_done=5)
    store = ChromaStore("resume", path=str(tmp_path / "chroma"))
    first = await aingest(
        sample_corpus_dir(),
        store=store,
        embed_model=make_embed(emulator),
        batch=batch_options(fake, wait=False),
        show_progress=False,
    )
    jobs = emulator.counters.batch_jobs_created
    assert jobs >= 1 and first.pending > 0 and store.count() == 0
    state_file = tmp_path / "chroma" / ".gemini-batch-resume.json"
    assert state_file.exists()

    second = await aingest(
        sample_corpus_dir(),
        store=store,
        embed_model=make_embed(emulator),
        batch=batch_options(fake),
        show_progress=False,
    )
    assert second.ok and second.pending == 0
    assert emulator.counters.batch_jobs_created == jobs, "re-attached, nothing resubmitted"
    assert store.count() == first.to_embed
    assert emulator.counters.embed_requests == 0, "nothing went through the online path"
    store.close()


async def test_dry_run_in_batch_mode_reports_the_batch_price(
    emulator: Emulator, tmp_path: Path
) -> None:
    store = ChromaStore("dry", path=str(tmp_path / "chroma"))
    online = await aingest(
        sample_corpus_dir(),
        store=store,
        embed_model=make_embed(emulator),
        dry_run=True,
        show_progress=False,
    )
    batch = await aingest(
        sample_corpus_dir(),
        store=store,
        embed_model=make_embed(emulator),
        dry_run=True,
        batch=True,
        show_progress=False,
    )
    assert batch.cost_usd == pytest.approx(online.cost_usd / 2)
    assert batch.saving_usd == pytest.approx(online.cost_usd / 2)
    assert emulator.counters.batch_jobs_created == 0 and emulator.counters.embed_requests == 0
    store.close()
