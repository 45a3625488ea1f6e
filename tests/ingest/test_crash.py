"""kill -9 in the middle of `gemini-embed ingest`, then resume: nothing lost, nothing doubled.

The CLI runs as a subprocess against an emulator in this process (with latency, so the kill
lands mid-run). The store is peeked at through a read-only SQLite connection, because the
subprocess owns the directory lock (a second ChromaStore on it would be refused).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from llama_index_gemini_embed import GeminiEmbedding
from llama_index_gemini_embed._ingest import ingest
from llama_index_gemini_embed._ingest.writer import COALESCE_RECORDS
from llama_index_gemini_embed._store.store import ChromaStore
from llama_index_gemini_embed.emulator import Emulator
from tests.ingest.test_ingest import write_corpus
from tests.reliability.test_crash import kill_when_stored
from tests.reliability_support import cli_command, stored_count

BATCH = 10
CONCURRENCY = 2
COLLECTION = "crash-test"


def store_count(path: Path) -> int:
    with ChromaStore(COLLECTION, path=str(path)) as store:
        return store.count()


def snapshot(path: Path) -> dict[str, tuple[str, str]]:
    with ChromaStore(COLLECTION, path=str(path)) as store:
        rows = store.collection.get(include=["documents", "metadatas"])
    return {
        node_id: (document or "", str((metadata or {}).get("lige_hash")))
        for node_id, document, metadata in zip(
            rows["ids"], rows["documents"] or [], rows["metadatas"] or [], strict=True
        )
    }


def cli(corpus: Path, store: Path, emu: Emulator, *extra: str) -> list[str]:
    return cli_command(
        "ingest",
        str(corpus),
        *("--path", str(store), "--collection", COLLECTION, "--base-url", emu.base_url),
        *("--dimension", "128", "--chunk-size", "96", "--batch-size", str(BATCH)),
        *("--concurrency", str(CONCURRENCY), "--max-retries", "0", "--quiet", *extra),
    )


@dataclass(frozen=True)
class Crash:
    """What a killed-then-resumed CLI ingest did."""

    survived: int
    """Rows in the store after the kill (Chroma replays its write-ahead queue on open)."""
    spent_before_kill: int
    spent_total: int
    resumed: subprocess.CompletedProcess[str]


def crash_and_resume(corpus: Path, store: Path, total: int, *extra: str) -> Crash:
    """Run the CLI ingest against an emulator with latency, SIGKILL it once a quarter of
    ``total`` rows are stored, then run it again (no latency) to the end."""
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env["ANONYMIZED_TELEMETRY"] = "False"
    with Emulator(latency=0.15) as emu:
        env["GEMINI_API_KEY"] = emu.api_key
        kill_when_stored(cli(corpus, store, emu, *extra), env, store, total // 4, 0.0)
        spent_before_kill = emu.counters.embed_items
        # Open the store (the lock died with the process): Chroma replays its write-ahead
        # queue, so a batch committed just before the kill counts too.
        survived = store_count(store)
        assert 0 < survived < total
        emu.set_latency(0.0)
        resumed = subprocess.run(
            cli(corpus, store, emu, *extra), env=env, capture_output=True, text=True, timeout=300
        )
        assert resumed.returncode == 0, resumed.stderr
        return Crash(survived, spent_before_kill, emu.counters.embed_items, resumed)


@pytest.mark.slow
def test_kill_9_mid_ingest_then_resume(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", docs=40, sentences=40)

    # The reference: a clean, uninterrupted run.
    with Emulator() as clean_emu:
        embed = GeminiEmbedding(
            api_key=clean_emu.api_key, base_url=clean_emu.base_url, output_dimensionality=128
        )
        from llama_index.core.node_parser import SentenceSplitter

        with ChromaStore(COLLECTION, path=str(tmp_path / "clean"), embed_model=embed) as store:
            report = ingest(
                corpus,
                embed_model=embed,
                store=store,
                transformations=[SentenceSplitter(chunk_size=96, chunk_overlap=min(100, 96 // 2))],
                show_progress=False,
            )
    total = report.nodes
    assert total > 200 and report.ok
    expected = snapshot(tmp_path / "clean")

    crashed = tmp_path / "crashed"
    crash = crash_and_resume(corpus, crashed, total)
    survived, spent_before_kill, resumed = crash.survived, crash.spent_before_kill, crash.resumed

    assert snapshot(crashed) == expected  # same ids, texts and hashes: no duplicates, no loss
    respent = crash.spent_total - total
    # in flight, plus answered and waiting to be written: queued, about to be queued, and
    # the write being gathered or made (under COALESCE_RECORDS plus one batch; README,
    # guarantee 2)
    in_flight_bound = (2 * CONCURRENCY + 1) * BATCH + COALESCE_RECORDS
    assert 0 <= respent <= in_flight_bound, (respent, spent_before_kill, survived)
    assert f"{survived} unchanged" in resumed.stdout
    print(
        f"killed at {survived}/{total} stored ({spent_before_kill} embedded); "
        f"re-spent {respent} items (bound {in_flight_bound})"
    )


@pytest.mark.slow
def test_ctrl_c_exits_130_keeps_progress_and_resumes(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", docs=20, sentences=40)
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env["ANONYMIZED_TELEMETRY"] = "False"
    with Emulator(latency=0.15) as emu:
        env["GEMINI_API_KEY"] = emu.api_key
        process = subprocess.Popen(
            cli(corpus, store, emu),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and process.poll() is None:
                if stored_count(store) > 0:
                    break
                time.sleep(0.02)
            assert process.poll() is None, "the run ended before it could be interrupted"
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 130, err
        assert err.startswith("gemini-embed: error: interrupted") and err.count("\n") == 1
        kept = store_count(store)
        assert kept > 0

        emu.set_latency(0.0)
        resumed = subprocess.run(
            cli(corpus, store, emu), env=env, capture_output=True, text=True, timeout=300
        )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{kept} unchanged" in resumed.stdout
