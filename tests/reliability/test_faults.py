"""Fault soak: 5,000 chunks through an emulator that injects seeded 429s, 5xx, timeouts and
dropped connections. Every chunk ends up in Chroma exactly once, with the vector of a
fault-free run, the API is charged for each chunk once, and the report's retry counts are
the emulator's fault counts.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings
from llama_index.core import Document

from llama_index_gemini_embed import ChromaStore, UsageSnapshot
from llama_index_gemini_embed._ingest import IngestReport, ingest
from llama_index_gemini_embed.emulator import Emulator
from tests.fakes import FakeTime
from tests.reliability_support import WORDS, make_embed, snapshot

CHUNKS = 5_000
BATCH = 40  # -> 125 requests, so a 1 % fault rate still hits
CONCURRENCY = 8
DIMENSION = 128
CLIENT_TIMEOUT = 2.0  # seconds: far above a healthy request, even on a loaded machine
EMULATOR_HOLD = 2.5  # a "timeout" fault holds the request this long, past the client's
# RetryInfo.retryDelay of every injected 429: above the backoff cap (60 s), so only an
# honoured RetryInfo can produce such a wait (the sleep is injected: nothing really waits)
RETRY_DELAY = 75.0
SEED = 9  # with these rates: 26 x 429, 4 x 500, 2 x 503, 2 timeouts, 2 drops
RATES = {
    "rate_429": 0.10,
    "rate_500": 0.015,
    "rate_503": 0.015,
    "rate_timeout": 0.01,
    "rate_drop": 0.01,
}


def corpus() -> list[Document]:
    """One short chunk per document (no splitting), stable ids."""
    return [
        Document(
            id_=f"c{i:05d}",
            text=f"Chunk {i} is about {WORDS[i % len(WORDS)]} and {WORDS[(i * 7) % len(WORDS)]}.",
            metadata={"n": i},
        )
        for i in range(CHUNKS)
    ]


def run_ingest(
    emu: Emulator, store: ChromaStore, fake: FakeTime
) -> tuple[IngestReport, UsageSnapshot]:
    embed = make_embed(
        emu,
        output_dimensionality=DIMENSION,
        embed_batch_size=BATCH,
        max_concurrency=CONCURRENCY,
        max_retries=8,
        timeout=CLIENT_TIMEOUT,
        sleep=fake.sleep,
    )
    report = ingest(
        corpus(), embed_model=embed, store=store, transformations=[], show_progress=False
    )
    return report, embed.usage


@pytest.mark.slow
def test_5000_chunks_under_seeded_faults_equal_a_fault_free_run(tmp_path: Path) -> None:
    # The reference: a fault-free run (into an in-memory Chroma: only its vectors matter).
    client = chromadb.EphemeralClient(Settings(anonymized_telemetry=False))
    name = f"soak-clean-{uuid.uuid4().hex[:8]}"
    with Emulator() as clean_emu, ChromaStore(name, client=client) as clean_store:
        clean, _ = run_ingest(clean_emu, clean_store, FakeTime())
        expected = snapshot(clean_store)
        client.delete_collection(name)
    assert clean.ok and clean.retries == 0 and len(expected) == CHUNKS
    assert clean.requests == CHUNKS // BATCH

    fake = FakeTime()
    with Emulator() as emu:
        emu.set_faults(
            **RATES, retry_delay_seconds=RETRY_DELAY, timeout_seconds=EMULATOR_HOLD, seed=SEED
        )
        started = time.monotonic()
        with ChromaStore("soak", path=str(tmp_path / "chroma")) as store:
            report, usage = run_ingest(emu, store, fake)
            got = snapshot(store)
            assert store.count() == CHUNKS
        elapsed = time.monotonic() - started
        counters = emu.counters

    faults = counters.faults
    injected = sum(faults.values())
    # Every kind of fault was injected, at roughly its rate (15 % of all attempts).
    assert set(faults) == {"429", "500", "503", "timeout", "drop"}, faults
    assert 0.08 <= injected / counters.embed_requests <= 0.30, faults

    # Every chunk stored exactly once, with the fault-free run's text, metadata and vector.
    assert report.ok and report.fatal_error is None
    assert report.nodes == report.embedded == report.written == CHUNKS
    assert got.keys() == expected.keys()
    assert got == expected
    # ...and the API embedded (charged for) each chunk exactly once: a faulted request
    # embeds nothing, and no request was retried after it had succeeded.
    assert counters.embed_items == CHUNKS

    # The report's retry counts are the emulator's counters.
    assert report.requests == clean.requests == CHUNKS // BATCH
    assert report.retries == injected
    assert counters.embed_requests == report.requests + report.retries
    assert counters.status[429] == faults["429"]
    assert counters.status[500] == faults["500"]
    assert counters.status[503] == faults["503"]
    # 429s are counted as throttled; each waited the RetryInfo delay (plus < 1 s jitter).
    assert usage.throttled == faults["429"] and usage.failed_items == 0
    honoured = [w for w in fake.sleeps if RETRY_DELAY <= w < RETRY_DELAY + 1.0]
    assert len(honoured) == faults["429"]
    assert len(fake.sleeps) == report.retries
    print(
        f"\nsoak: {CHUNKS} chunks, {report.requests} requests + {report.retries} retries; "
        f"faults injected {dict(sorted(faults.items()))}; "
        f"{elapsed:.1f}s ({CHUNKS / elapsed:.0f} chunks/s)"
    )
