"""`gemini-embed ingest --batch` and `gemini-embed batch status|cancel`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llama_index_gemini_embed import ChromaStore, sample_corpus_dir
from llama_index_gemini_embed.cli import EXIT_OK, EXIT_USAGE, main
from llama_index_gemini_embed.emulator import Emulator
from tests.cli.test_cli import SECRET, ingest_args, run, store_args


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_keys=(SECRET,)) as emulator:
        yield emulator


def batch_args(emu: Emulator, tmp_path: Path, *extra: str) -> list[str]:
    return [
        *ingest_args(tmp_path, emu),
        "--dimension",
        "768",
        "--batch",
        "--poll-seconds",
        "0.01",
        "--quiet",
        *extra,
    ]


def test_ingest_batch_then_status(
    emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    code, out, err = run(batch_args(emu, tmp_path), capsys)
    assert code == EXIT_OK, err
    assert "saved" in out and "batch" in out.lower()
    assert emu.counters.batch_jobs_created >= 1 and emu.counters.embed_requests == 0
    with ChromaStore("cli-test", path=str(tmp_path / "chroma")) as store:
        assert store.count() > 0
    code, out, err = run(
        ["batch", "status", *store_args(tmp_path), "--base-url", emu.base_url], capsys
    )
    assert code == EXIT_OK, err
    assert "batches/" in out or "no batch jobs recorded" in out


def test_no_wait_then_cancel(
    emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    emu.set_batch_behaviour(polls_until_running=1, polls_until_done=50)
    code, out, err = run(batch_args(emu, tmp_path, "--no-wait"), capsys)
    # Issue 11 item 14: submitting and leaving is --no-wait's normal outcome: exit 0.
    assert code == EXIT_OK, err
    last = err.strip().splitlines()[-1]  # after the job status lines
    assert "still being embedded by batch jobs" in last and "batch status" in last
    assert "error" not in err
    assert "still in running jobs" in out
    code, out, err = run(
        ["batch", "status", *store_args(tmp_path), "--base-url", emu.base_url], capsys
    )
    assert code == EXIT_OK and "batches/" in out
    code, out, _ = run(
        ["batch", "cancel", *store_args(tmp_path), "--base-url", emu.base_url], capsys
    )
    assert code == EXIT_OK and "CANCELLED" in out.upper()


@pytest.mark.parametrize("flag", ["--no-wait", "--fallback-online"])
def test_batch_flags_need_batch(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    code = main(["ingest", str(sample_corpus_dir()), *store_args(tmp_path), flag])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "go with --batch" in err and err.count("\n") == 1


def test_batch_status_without_jobs_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    code = main(["batch", "status", *store_args(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "No batch jobs recorded at" in err and "ingest --batch" in err
