"""The ``gemini-embed`` CLI: help, one-line errors, exit codes, output formats, no key leaks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from llama_index_gemini_embed import GeminiEmbedding
from llama_index_gemini_embed._ingest import ingest, sample_corpus_dir
from llama_index_gemini_embed._store.store import ChromaStore
from llama_index_gemini_embed.cli import EXIT_CODES, build_parser, exit_code_for, main
from llama_index_gemini_embed.emulator import Emulator, Fault, QuotaConfig
from tests.cli.conftest import SECRET as SECRET

COMMANDS = ("ingest", "query", "info", "emulator", "demo", "doctor")


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    return code, out, err


def store_args(tmp_path: Path, collection: str = "cli-test") -> list[str]:
    return ["--path", str(tmp_path / "chroma"), "--collection", collection]


def ingest_args(tmp_path: Path, emu: Emulator) -> list[str]:
    """``ingest SAMPLE_CORPUS --path ... --collection cli-test --base-url EMULATOR``."""
    return ["ingest", str(sample_corpus_dir()), *store_args(tmp_path), "--base-url", emu.base_url]


def populate(emu: Emulator, tmp_path: Path, collection: str = "cli-test") -> None:
    embed = GeminiEmbedding(api_key=SECRET, base_url=emu.base_url, output_dimensionality=768)
    with ChromaStore(collection, path=str(tmp_path / "chroma"), embed_model=embed) as store:
        ingest(sample_corpus_dir(), embed_model=embed, store=store, show_progress=False)


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env["ANONYMIZED_TELEMETRY"] = "False"
    env.update(extra)
    return env


# ----------------------------------------------------------------------------- help


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_command_has_help_with_exit_codes(
    command: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"] if command else ["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: gemini-embed" in out and "exit codes:" in out
    for code in EXIT_CODES:
        assert f"{code:>3}  " in out


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "gemini-embed"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "ingest" in result.stdout


def test_parser_names_every_command() -> None:
    parser = build_parser()
    help_text = parser.format_help()
    for command in COMMANDS:
        assert command in help_text


# ----------------------------------------------------------------------------- errors


def test_usage_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["ingest"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gemini-embed: error: ")
    with pytest.raises(SystemExit) as exit_info:
        main(["query", "x", "--top-k", "many"])
    assert exit_info.value.code == 2


def test_missing_path_and_missing_key_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    code, _, err = run(["ingest", str(tmp_path / "nope"), *store_args(tmp_path)], capsys)
    assert (
        code == 2
        and err == f"gemini-embed: error: No such file or directory: '{tmp_path / 'nope'}'\n"
    )
    assert not (tmp_path / "chroma").exists()
    monkeypatch.delenv("GEMINI_API_KEY")
    code, _, err = run(["ingest", str(sample_corpus_dir()), *store_args(tmp_path)], capsys)
    assert code == 2 and "GEMINI_API_KEY" in err and err.count("\n") == 1
    code, _, err = run(["ingest", ".", "--api-key-env", "NOT_SET_ANYWHERE"], capsys)
    assert code == 2 and "NOT_SET_ANYWHERE" in err
    code, _, err = run(["query", "x", "--filter", "novalue", "--api-key", "k"], capsys)
    assert code == 2 and "KEY=VALUE" in err


def test_bad_key_exit_3_and_key_never_printed(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = "wrong-KEY-77c1"
    args = ingest_args(tmp_path, emu)
    code, out, err = run([*args, "--api-key", bad, "--max-retries", "0"], capsys)
    assert code == 3
    assert err.startswith("gemini-embed: error: ") and err.count("\n") == 1
    assert "key" in err.lower() and bad not in out + err
    code, out, err = run(["--debug", *args, "--api-key", bad, "--max-retries", "0"], capsys)
    assert code == 3 and bad not in out + err


def test_unknown_model_exit_3(
    emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    code, _, err = run(
        [
            *ingest_args(tmp_path, emu),
            "--model",
            "gemini-embedding-999",
        ],
        capsys,
    )
    assert code == 3 and "gemini-embedding-999" in err


def test_quota_exhausted_exit_4_and_resume(
    emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    emu.set_quota(QuotaConfig(items_per_day=4))
    args = [
        *ingest_args(tmp_path, emu),
        "--max-retries",
        "0",
        "--concurrency",
        "1",
        "--batch-size",
        "1",
    ]
    code, out, err = run(args, capsys)
    assert code == 4
    assert "stopped: DailyQuotaExceededError" in out and "4 written" in out
    assert err.startswith("gemini-embed: error: ") and err.count("\n") == 1
    message = err.removeprefix("gemini-embed: error: ").rstrip("\n")
    assert "per-day quota" in message and (out + err).count(message) == 1  # printed once
    emu.reset_daily_quota()
    emu.set_quota(QuotaConfig())
    code, out, _ = run(args, capsys)
    assert code == 0 and "6 embedded" in out and "4 unchanged" in out


def test_partial_failure_exit_1(
    emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    emu.script_faults([Fault.status(400, message="scripted failure")])
    args = [
        *ingest_args(tmp_path, emu),
        "--max-retries",
        "0",
        "--concurrency",
        "1",
        "--batch-size",
        "1",
        "--json",
    ]
    code, out, err = run(args, capsys)
    assert code == 1 and "1 chunks failed" in err
    report = json.loads(out)
    assert report["failed"] == 1 and report["written"] == 9 and not report["ok"]
    assert report["failures"][0]["message"].endswith("scripted failure") or "scripted" in str(
        report["failures"]
    )


def test_locked_store_exit_5(emu: Emulator, tmp_path: Path) -> None:
    with ChromaStore("cli-test", path=str(tmp_path / "chroma")):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "llama_index_gemini_embed.cli",
                *ingest_args(tmp_path, emu),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=subprocess_env(GEMINI_API_KEY=SECRET),
        )
    assert result.returncode == 5, result.stderr
    assert result.stderr.startswith("gemini-embed: error: ") and result.stderr.count("\n") == 1
    assert SECRET not in result.stdout + result.stderr
    assert emu.counters.embed_requests == 0


def test_fingerprint_mismatch_exit_5(
    emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    populate(emu, tmp_path)
    calls = emu.counters.embed_requests
    code, _, err = run(
        [
            *ingest_args(tmp_path, emu),
            "--dimension",
            "256",
        ],
        capsys,
    )
    assert code == 5 and "768" in err and "256" in err
    assert emu.counters.embed_requests == calls


def test_empty_store_exit_5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["info", *store_args(tmp_path)], capsys)
    assert code == 5 and "No Chroma store" in err
    (tmp_path / "chroma").mkdir()
    code, _, err = run(["info", *store_args(tmp_path)], capsys)
    assert code == 5 and "Collection 'cli-test' does not exist" in err


def test_exit_code_mapping() -> None:
    from llama_index_gemini_embed import (
        DailyQuotaExceededError,
        InvalidAPIKeyError,
        MissingAPIKeyError,
        StoreLockedError,
        StoreUnavailableError,
        TransientAPIError,
    )

    assert exit_code_for(MissingAPIKeyError()) == 2
    assert exit_code_for(InvalidAPIKeyError("x")) == 3
    assert exit_code_for(TransientAPIError("x")) == 3
    assert exit_code_for(DailyQuotaExceededError("x")) == 4
    assert exit_code_for(StoreLockedError("x")) == 5
    assert exit_code_for(StoreUnavailableError("x")) == 5
    assert exit_code_for(KeyboardInterrupt()) == 130


# ----------------------------------------------------------------------------- commands


def test_ingest_dry_run_then_ingest_then_rerun(
    emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_KEY_VAR", SECRET)
    base = [
        *ingest_args(tmp_path, emu),
        "--api-key-env",
        "MY_KEY_VAR",
        "--dimension",
        "768",
    ]
    code, out, _ = run([*base, "--dry-run", "--rpm", "4"], capsys)
    assert code == 0 and "dry run" in out and "10 to embed" in out
    assert "time at the configured quota: ~2.0 min" in out
    assert emu.counters.embed_requests == 0
    code, out, _ = run(base, capsys)
    assert code == 0 and "10 embedded" in out and "10 written" in out
    code, out, _ = run([*base, "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["skipped"] == 10 and report["embedded"] == 0 and report["ok"]


def test_info_output(emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(emu, tmp_path)
    code, out, _ = run(["info", *store_args(tmp_path)], capsys)
    assert code == 0
    assert "model:       gemini-embedding-001" in out
    assert "dimension:   768" in out
    assert "documents:   10" in out and "chunks:      10" in out
    code, out, _ = run(["info", *store_args(tmp_path), "--json"], capsys)
    data = json.loads(out)
    assert data["fingerprint"]["dimension"] == 768 and data["chunks"] == 10


def test_query_output_filters_json_and_rerank(
    emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    populate(emu, tmp_path)
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    base = [
        "query",
        "What does the Team plan cost per month?",
        *store_args(tmp_path),
        "--base-url",
        emu.base_url,
    ]
    code, out, _ = run([*base, "--top-k", "2"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("1. [score 0.") and "05-pricing.md — Plans and pricing" in lines[0]
    assert lines[1].startswith("   ") and "Plus plan" not in lines[0]
    assert sum(1 for line in lines if line[:3] in ("1. ", "2. ")) == 2

    code, out, _ = run([*base, "--filter", "category=support", "--json"], capsys)
    results = json.loads(out)
    assert code == 0 and results and {r["metadata"]["category"] for r in results} == {"support"}
    assert all("lige_hash" not in r["metadata"] for r in results)

    code, out, _ = run([*base, "--filter", "category=nothing-like-this"], capsys)
    assert code == 0 and out.startswith("no results")

    code, out, _ = run([*base, "--rerank", "--top-k", "1"], capsys)
    assert code == 0 and out.startswith("1. [rerank ") and "(similarity 0." in out
    assert "05-pricing.md" in out.splitlines()[0]


def test_demo_runs_on_the_emulator_without_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["demo"], capsys)
    assert code == 0
    assert "running on the local emulator" in out
    answers = {
        "How do I encrypt my notebooks?": "04-security.md",
        "What does the Team plan cost per month?": "05-pricing.md",
        "How can I export a note to PDF?": "07-export-import.md",
        "Why does sync fail with error K-409?": "08-troubleshooting.md",
    }
    blocks = out.split("Q: ")[1:]
    assert len(blocks) == len(answers)
    for block in blocks:
        question, first = block.splitlines()[0], block.splitlines()[1]
        assert answers[question] in first, block


def test_emulator_command_serves_until_interrupted(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_index_gemini_embed.cli",
            "emulator",
            "--port",
            "0",
            "--api-key",
            SECRET,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        request = urllib.request.Request(
            f"{base_url}/v1beta/models", headers={"x-goog-api-key": SECRET}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body: dict[str, Any] = json.loads(response.read())
        assert any("embedding" in m["name"] for m in body["models"])
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.returncode == 0
        _, err = process.communicate(timeout=5)
        assert "listening on" in err and SECRET not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.server
def test_ingest_info_query_against_a_chroma_server(
    emu: Emulator,
    chroma_server: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    name = f"cli-server-{os.getpid()}-{time.monotonic_ns()}"
    where = ["--server", chroma_server.url, "--collection", name]
    code, out, _ = run(
        [
            "ingest",
            str(sample_corpus_dir()),
            *where,
            "--base-url",
            emu.base_url,
            "--dimension",
            "768",
        ],
        capsys,
    )
    assert code == 0 and "10 written" in out
    code, out, _ = run(["info", *where], capsys)
    assert code == 0 and "chunks:      10" in out
    code, out, _ = run(
        ["query", "What does the Team plan cost?", *where, "--base-url", emu.base_url],
        capsys,
    )
    assert code == 0 and "05-pricing.md" in out.splitlines()[0]
    with ChromaStore.from_url(chroma_server.url, collection_name=name) as store:
        store.client.delete_collection(name)


def test_unreachable_server_exit_5(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.chroma_server import free_port

    code, _, err = run(["info", "--server", f"http://127.0.0.1:{free_port()}"], capsys)
    assert code == 5 and err.startswith("gemini-embed: error: ") and err.count("\n") == 1
