"""kill -9 `gemini-embed ingest` at five seeded random points, re-running after each.

The final store equals a clean run's (ids, texts, metadata, vectors), and the API items
re-spent because of the kills are at most the batches that can be in flight at a kill,
plus the answered batches still waiting to be written (at most as many again):
``items embedded across all runs - corpus size <= kills x (2 x concurrency + 1) x batch``.

The CLI runs as a subprocess against an emulator in this process (with latency, so every
kill lands mid-run); the store is watched through a read-only SQLite connection because
the subprocess holds the directory lock.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from llama_index.core.node_parser import SentenceSplitter

from llama_index_gemini_embed import ChromaStore
from llama_index_gemini_embed._ingest import ingest
from llama_index_gemini_embed._ingest.writer import COALESCE_RECORDS
from llama_index_gemini_embed.emulator import Emulator
from tests.reliability_support import (
    clean_env,
    cli_command,
    make_embed,
    snapshot,
    snapshot_path,
    stored_count,
    write_files,
)

BATCH = 10
CONCURRENCY = 2
CHUNK_SIZE = 96
KILLS = 5
SEED = 5150
LATENCY = 0.1  # seconds per request: ~200 chunks/s, so a kill always finds work in flight
COLLECTION = "crash-resume"


def ingest_args(corpus: Path, store: Path, emu: Emulator) -> list[str]:
    return cli_command(
        "ingest",
        str(corpus),
        "--path",
        str(store),
        "--collection",
        COLLECTION,
        "--base-url",
        emu.base_url,
        "--dimension",
        "128",
        "--chunk-size",
        str(CHUNK_SIZE),
        "--batch-size",
        str(BATCH),
        "--concurrency",
        str(CONCURRENCY),
        "--max-retries",
        "0",
        "--quiet",
        "--json",
    )


def clean_run(corpus: Path, path: Path) -> int:
    """The reference: one uninterrupted run (in-process) with the CLI's settings."""
    with Emulator() as emu:
        embed = make_embed(emu)
        with ChromaStore(COLLECTION, path=str(path), embed_model=embed) as store:
            splitter = SentenceSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_SIZE // 2)
            report = ingest(
                corpus,
                embed_model=embed,
                store=store,
                transformations=[splitter],
                show_progress=False,
            )
            assert report.ok and store.count() == report.nodes
            return report.nodes


def count_rows(store: Path) -> int:
    """Rows stored once no process uses the store (busy for 2 s: a killed writer's journal)."""
    deadline = time.monotonic() + 2
    while (rows := stored_count(store)) < 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    if rows < 0:
        rows = stored_count(store, recover=True)
    assert rows >= 0, "the store stayed busy"
    return rows


def kill_when_stored(
    command: list[str], env: dict[str, str], store: Path, target: int, delay: float
) -> int:
    """Start ``command``; SIGKILL it ``delay`` s after ``target`` rows are stored."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if stored_count(store) >= target:
                break
            time.sleep(0.01)  # polling interval, bounded by the deadline
        else:
            _, err = process.communicate(timeout=30)
            raise AssertionError(f"the run ended (or stalled) before {target} rows: {err}")
        pause_until = time.monotonic() + delay
        while time.monotonic() < pause_until and process.poll() is None:
            time.sleep(0.005)
        assert process.poll() is None, "the run finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    return count_rows(store)


@pytest.mark.slow
def test_five_kill_9s_at_seeded_points_then_the_store_equals_a_clean_run(
    tmp_path: Path,
) -> None:
    corpus = write_files(tmp_path / "corpus", 24, sentences=36)
    total = clean_run(corpus, tmp_path / "clean")
    expected = snapshot_path(tmp_path / "clean", COLLECTION)
    assert total >= 200, total

    rng = random.Random(SEED)
    targets = sorted(rng.sample(range(total // 10, total * 8 // 10), KILLS))
    delays = [rng.uniform(0.0, 0.2) for _ in range(KILLS)]
    crashed = tmp_path / "crashed"
    history: list[tuple[int, int]] = []
    started = time.monotonic()
    with Emulator(latency=LATENCY) as emu:
        env = clean_env(GEMINI_API_KEY=emu.api_key)
        command = ingest_args(corpus, crashed, emu)
        for target, delay in zip(targets, delays, strict=True):
            # Each run must get past what the previous one stored: a kill mid-run, not
            # during start-up.
            before = count_rows(crashed)
            target = min(max(target, before + BATCH), total - CONCURRENCY * BATCH)
            after = kill_when_stored(command, env, crashed, target, delay)
            assert before < after < total, (before, target, after)
            history.append((target, after))

        spent_by_kills = emu.counters.embed_items
        survived = count_rows(crashed)
        emu.set_latency(0.0)
        final = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        spent = emu.counters.embed_items
    elapsed = time.monotonic() - started

    assert final.returncode == 0, final.stderr
    report = json.loads(final.stdout)
    assert report["ok"] and report["nodes"] == total
    # Rows the killed runs had logged but not yet applied to the table we count are
    # replayed when the store is reopened: at least the counted rows are skipped.
    assert report["skipped"] >= survived
    assert report["skipped"] + report["embedded"] == total

    # The final store is the clean run's: same ids, texts, metadata (hashes) and vectors.
    assert snapshot_path(crashed, COLLECTION) == expected

    respent = spent - total
    bound = KILLS * ((2 * CONCURRENCY + 1) * BATCH + COALESCE_RECORDS)  # README, guarantee 2
    assert 0 <= respent <= bound, (respent, history)
    print(
        f"\ncrash-resume: {total} chunks, {KILLS} kills at stored rows "
        f"{[a for _, a in history]} (targets {[t for t, _ in history]}); "
        f"{spent_by_kills} items embedded by the killed runs, {spent} in all; "
        f"re-spent {respent} (bound {bound}); {elapsed:.1f}s"
    )


def test_snapshot_helper_sees_every_record(tmp_path: Path) -> None:
    """The comparison above is only as good as snapshot(): it must see all rows."""
    with Emulator() as emu:
        embed = make_embed(emu)
        with ChromaStore(COLLECTION, path=str(tmp_path / "s"), embed_model=embed) as store:
            ingest(
                write_files(tmp_path / "c", 3), embed_model=embed, store=store, show_progress=False
            )
            rows = snapshot(store)
            assert len(rows) == store.count() == 3
            assert all(len(row.vector) == 128 for row in rows.values())
