"""Per-day quota exhaustion mid-run: a clean stop that says what happened and when to
resume, everything already embedded is stored (and paid once), and the re-run after the
(emulated) reset completes with the same store as an uninterrupted run.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings
from llama_index.core import Document

from llama_index_gemini_embed import ChromaStore, DailyQuotaExceededError, GeminiEmbedding
from llama_index_gemini_embed._ingest import IngestReport, ingest
from llama_index_gemini_embed.cli import main
from llama_index_gemini_embed.emulator import Emulator, QuotaConfig
from tests.fakes import FakeTime
from tests.reliability_support import (
    SECRET,
    Row,
    documents,
    make_embed,
    one_line_error,
    snapshot,
    snapshot_path,
    write_files,
)

DOCS = 120
BATCH = 10
CONCURRENCY = 4
PER_DAY = 55  # items: the quota runs out in the 6th request, with others in flight

SERVER_MESSAGE = (
    "Gemini's per-day quota for gemini-embedding-001 is exhausted (429 RESOURCE_EXHAUSTED, "
    "per-day quotaId). It resets at midnight Pacific time: run again after the reset "
    "(ingestion resumes where it stopped), or use a billed project/tier."
)


def reference(docs: list[Document]) -> dict[str, Row]:
    """What an uninterrupted run stores (in an in-memory Chroma)."""
    client = chromadb.EphemeralClient(Settings(anonymized_telemetry=False))
    name = f"quota-ref-{uuid.uuid4().hex[:8]}"
    with Emulator() as emu, ChromaStore(name, client=client) as store:
        report = ingest(docs, embed_model=make_embed(emu), store=store, show_progress=False)
        assert report.ok
        rows = snapshot(store)
        client.delete_collection(name)
    return rows


def test_server_per_day_quota_mid_run_stops_cleanly_and_resumes_after_reset(
    tmp_path: Path,
) -> None:
    docs = documents(DOCS)
    expected = reference(docs)
    with Emulator(quota=QuotaConfig(items_per_day=PER_DAY), latency=0.02) as emu:

        def embed() -> GeminiEmbedding:
            return make_embed(
                emu,
                embed_batch_size=BATCH,
                max_concurrency=CONCURRENCY,
                max_retries=3,
                sleep=FakeTime().sleep,
            )

        with ChromaStore("quota", path=str(tmp_path / "chroma")) as store:
            with pytest.raises(DailyQuotaExceededError) as info:
                ingest(docs, embed_model=embed(), store=store, show_progress=False)
            error = info.value
            report = error.report
            assert isinstance(report, IngestReport)

            # What happened and when to resume, in the error and in the report.
            assert str(error) == SERVER_MESSAGE
            assert report.fatal_error == SERVER_MESSAGE
            assert report.fatal_error_type == "DailyQuotaExceededError"
            assert error.__notes__ == [
                f"ingest stopped after writing {report.written} chunks ({report.failed} "
                f"failed, {report.pending} not attempted); run it again to resume. The "
                "report is on this error's .report attribute."
            ]
            assert f"stopped: DailyQuotaExceededError: {SERVER_MESSAGE}" in report.summary()

            # Everything the API embedded (and charged) is stored; nothing else is.
            items_day_one = emu.counters.embed_items
            assert 0 < items_day_one <= PER_DAY
            assert store.count() == report.written == report.embedded == items_day_one
            assert report.embedded + report.failed + report.pending == report.to_embed
            assert emu.counters.quota.get("day", 0) >= 1
            stored_day_one = snapshot(store)
            assert stored_day_one == {k: expected[k] for k in stored_day_one}

            # Before the reset, a re-run stops again at once and loses nothing.
            again = ingest(
                docs, embed_model=embed(), store=store, show_progress=False, raise_on_fatal=False
            )
            assert again.stopped and again.embedded == again.written == 0
            assert again.skipped == items_day_one
            assert snapshot(store) == stored_day_one

            # After the reset, the re-run completes: the store is the uninterrupted run's,
            # and no chunk was paid for twice.
            emu.reset_daily_quota()
            emu.set_quota(QuotaConfig())
            done = ingest(docs, embed_model=embed(), store=store, show_progress=False)
            assert done.ok and done.skipped == items_day_one
            assert done.embedded == DOCS - items_day_one
            assert snapshot(store) == expected
            assert emu.counters.embed_items == DOCS


def test_client_per_day_budget_stops_before_the_api_refuses_and_resumes_next_day(
    tmp_path: Path,
) -> None:
    docs = documents(DOCS)
    expected = reference(docs)
    day = FakeTime()  # the client's own per-day budget clock: moved past midnight below
    with Emulator() as emu:

        def embed() -> GeminiEmbedding:
            return make_embed(
                emu,
                embed_batch_size=BATCH,
                max_concurrency=CONCURRENCY,
                items_per_day=PER_DAY,
                clock=day.clock,
                sleep=FakeTime().sleep,
            )

        with ChromaStore("budget", path=str(tmp_path / "chroma")) as store:
            report = ingest(
                docs, embed_model=embed(), store=store, show_progress=False, raise_on_fatal=False
            )
            assert report.fatal_error == (
                f"The configured daily budget of items_per_day={PER_DAY} is spent "
                "(50 used). Gemini's per-day quota resets at midnight Pacific time: run again "
                "after the reset (ingestion resumes where it stopped), or raise "
                "items_per_day if your tier allows more."
            )
            assert report.fatal_error_type == "DailyQuotaExceededError"
            assert 429 not in emu.counters.status  # stopped by the client, not the API
            assert store.count() == report.written == emu.counters.embed_items == 50

            day.now += 86_400.0  # the next day
            done = ingest(
                docs, embed_model=embed(), store=store, show_progress=False, raise_on_fatal=False
            )
            assert done.stopped  # the day's budget is smaller than what is left
            assert store.count() == emu.counters.embed_items == 100
            day.now += 86_400.0
            done = ingest(docs, embed_model=embed(), store=store, show_progress=False)
            assert done.ok and done.embedded == DOCS - 100
            assert snapshot(store) == expected
            assert emu.counters.embed_items == DOCS


def test_cli_per_day_quota_exit_4_one_line_then_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = write_files(tmp_path / "corpus", 30, sentences=3)
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    args = [
        "ingest",
        str(corpus),
        "--path",
        str(tmp_path / "chroma"),
        "--collection",
        "quota-cli",
        "--dimension",
        "128",
        "--batch-size",
        "5",
        "--concurrency",
        "3",
        "--json",
    ]
    with Emulator(api_keys=(SECRET,), quota=QuotaConfig(items_per_day=12)) as emu:
        args += ["--base-url", emu.base_url]
        code = main(args)
        out, err = capsys.readouterr()
        assert code == 4
        assert one_line_error(err) == SERVER_MESSAGE
        report = json.loads(out)
        assert report["fatal_error_type"] == "DailyQuotaExceededError"
        stored = snapshot_path(tmp_path / "chroma", "quota-cli")
        assert len(stored) == report["written"] == emu.counters.embed_items > 0

        emu.reset_daily_quota()
        emu.set_quota(QuotaConfig())
        code = main(args)
        out, err = capsys.readouterr()
        assert code == 0 and err == ""
        report = json.loads(out)
        assert report["ok"] and report["skipped"] == len(stored)
        assert report["embedded"] == 30 - len(stored)
        assert emu.counters.embed_items == 30
        assert SECRET not in out + err
    after = snapshot_path(tmp_path / "chroma", "quota-cli")
    assert {k: after[k] for k in stored} == stored and len(after) == 30
