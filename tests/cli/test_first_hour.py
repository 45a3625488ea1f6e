"""Issue 11 (CLI side): one error line in CLI terms, empty input refused, nothing left on disk.

Each test runs ``gemini-embed`` in-process (or as ``python -m llama_index_gemini_embed.cli``
where a second process is the point) against the emulator and a real local Chroma.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from llama_index_gemini_embed import ChromaStore, sample_corpus_dir
from llama_index_gemini_embed.cli import main
from llama_index_gemini_embed.emulator import Emulator
from tests.cli.test_cli import SECRET, populate, run, store_args, subprocess_env
from tests.reliability.test_inputs import HOLD_LOCK

#: Python spellings a CLI user never typed; none may appear in what the CLI prints.
PYTHON_TERMS = (
    "collection_name=",
    "output_dimensionality=",
    "api_key=",
    "model_name=",
    "requests_per_minute",
    "items_per_minute",
    "client.",
    "store.clear",
    "ChromaStore(",
    "host=",
    "timeout=",
)


def one_error(err: str) -> str:
    assert err.startswith("gemini-embed: error: ") and err.count("\n") == 1, err
    message = err.removeprefix("gemini-embed: error: ").rstrip("\n")
    for term in PYTHON_TERMS:
        assert term not in message, message
    return message


def corpus(tmp_path: Path, files: dict[str, bytes]) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


# ----------------------------------------------------------------------------- one line


@pytest.mark.parametrize(
    ("how", "named"),
    [
        (["--api-key", "wrong-KEY-77c1"], "--api-key"),
        (["--api-key-env", "MY_WRONG_KEY"], "MY_WRONG_KEY"),
    ],
)
def test_bad_key_during_ingest_is_one_line_naming_where_the_key_came_from(
    emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    how: list[str],
    named: str,
) -> None:
    monkeypatch.setenv("MY_WRONG_KEY", "wrong-KEY-77c1")
    args = ["ingest", str(sample_corpus_dir()), *store_args(tmp_path), "--base-url", emu.base_url]
    code, out, err = run([*args, *how, "--max-retries", "0"], capsys)
    assert code == 3 and out == ""
    message = one_error(err)
    assert message == (
        f"The Gemini API rejected the API key from {named} (400 INVALID_ARGUMENT). Check "
        f"{named} (create a key at https://aistudio.google.com/apikey)."
    )
    assert "wrong-KEY-77c1" not in out + err


# ----------------------------------------------------------------------------- CLI terms


def test_collection_name_hint_names_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "chroma").mkdir()
    code, _, err = run(["info", "--path", str(tmp_path / "chroma"), "--collection", "ab"], capsys)
    assert code == 2
    assert one_error(err).endswith("Use for example --collection ab-docs.")


def test_dimension_hint_names_the_option(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["ingest", str(sample_corpus_dir()), *store_args(tmp_path), "--api-key", SECRET]
    code, _, err = run([*args, "--base-url", emu.base_url, "--dimension", "64"], capsys)
    assert code == 2 and one_error(err) == (
        "--dimension 64 is out of range for gemini-embedding-001: use 128-3072 (recommended "
        "768, 1536 or 3072), or leave --dimension out for the default"
    )
    assert not (tmp_path / "chroma").exists()


def test_fingerprint_mismatch_suggests_a_collection_option(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(emu, tmp_path)
    args = ["ingest", str(sample_corpus_dir()), *store_args(tmp_path), "--api-key", SECRET]
    code, _, err = run([*args, "--base-url", emu.base_url, "--dimension", "256"], capsys)
    assert code == 5
    message = one_error(err)
    assert "Use --collection cli-test-gemini-embedding-001-256 for the new model" in message
    assert message.endswith("delete collection 'cli-test' and re-ingest.")


def test_unknown_model_points_at_the_models_page(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["ingest", str(sample_corpus_dir()), *store_args(tmp_path), "--api-key", SECRET]
    code, _, err = run([*args, "--base-url", emu.base_url, "--model", "gemini-embedding-9"], capsys)
    assert code == 3
    assert one_error(err).endswith("or see https://ai.google.dev/gemini-api/docs/embeddings.")


def test_unreachable_chroma_server_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.chroma_server import free_port

    code, _, err = run(["info", "--server", f"http://127.0.0.1:{free_port()}"], capsys)
    assert code == 5 and one_error(err).endswith("or fix --server URL.")


def test_locked_store_says_to_pass_server(emu: Emulator, tmp_path: Path) -> None:
    with ChromaStore("cli-test", path=str(tmp_path / "chroma")):
        result = subprocess.run(
            [
                *(sys.executable, "-m", "llama_index_gemini_embed.cli", "ingest"),
                *(str(sample_corpus_dir()), *store_args(tmp_path), "--base-url", emu.base_url),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=subprocess_env(GEMINI_API_KEY=SECRET),
        )
    assert result.returncode == 5 and result.stdout == ""
    assert one_error(result.stderr).endswith(
        "pass --server http://localhost:8000 to every gemini-embed command."
    )


# ----------------------------------------------------------------------------- empty input


@pytest.mark.parametrize(
    ("files", "extra", "found"),
    [
        ({}, [], "{folder!r} holds no files (hidden files and folders are not read)"),
        (
            {"a.bin": b"\x00\x01\x02\xff" * 64, "b.bin": b"\x89\x00\xfe" * 50},
            [],
            "none of the 2 files in {folder!r} could be read as text (binary without a reader, "
            "or unreadable); pass text files (.md, .txt, ...) or install "
            "llama-index-readers-file for PDF and DOCX",
        ),
        (
            {"a.md": b"# A\n\ntext"},
            ["--ext", ".rst"],
            "no file in {folder!r} has one of --ext .rst (found 1 .md); change --ext or leave "
            "it out to read every file",
        ),
    ],
    ids=["empty-folder", "only-binary", "ext-matches-nothing"],
)
def test_empty_input_is_a_usage_error_and_creates_nothing(
    emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, bytes],
    extra: list[str],
    found: str,
) -> None:
    folder = corpus(tmp_path, files)
    store = tmp_path / "new" / "chroma"
    args = ["ingest", str(folder), "--path", str(store), "--base-url", emu.base_url]
    code, out, err = run([*args, "--api-key", SECRET, *extra], capsys)
    assert code == 2 and out == ""
    assert one_error(err) == "Nothing to ingest: " + found.format(folder=str(folder))
    assert not (tmp_path / "new").exists()
    assert emu.counters.requests == 0


def test_empty_query_is_refused_before_anything_is_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for text in ("", "   "):
        code, out, err = run(["query", text, *store_args(tmp_path), "--api-key", "k"], capsys)
        assert code == 2 and out == ""
        assert one_error(err).startswith("empty query: give the text to search for")
    assert not (tmp_path / "chroma").exists()


# ----------------------------------------------------------------------------- nothing on disk


def test_dry_run_creates_no_store(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "new" / "chroma"
    args = ["ingest", str(sample_corpus_dir()), "--path", str(store), "--base-url", emu.base_url]
    code, out, _ = run([*args, "--api-key", SECRET, "--dry-run"], capsys)
    assert code == 0 and "dry run" in out and "10 to embed" in out
    assert "(set --rpm / --tpm to estimate it)" in out
    assert not (tmp_path / "new").exists()
    assert emu.counters.requests == 0


def test_refused_run_creates_no_store_but_keeps_an_existing_one(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "chroma"
    args = ["ingest", str(sample_corpus_dir()), "--path", str(store), "--base-url", emu.base_url]
    code, _, _ = run([*args, "--api-key", "wrong-key", "--max-retries", "0"], capsys)
    assert code == 3 and not store.exists()
    populate(emu, tmp_path)
    code, _, _ = run([*args, "--api-key", "wrong-key", "--max-retries", "0"], capsys)
    assert code == 3
    with ChromaStore("cli-test", path=str(store)) as kept:
        assert kept.count() == 10


def test_refused_or_dry_runs_leave_no_collection_on_a_server(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], chroma_server: Any
) -> None:
    """Server mode: the run that creates a collection removes it when it stored nothing."""
    import chromadb
    from chromadb.config import Settings

    host, port = chroma_server.url.removeprefix("http://").rsplit(":", 1)
    client = chromadb.HttpClient(host, int(port), settings=Settings(anonymized_telemetry=False))

    def collections() -> set[str]:
        return {c.name for c in client.list_collections()}

    name = f"first-hour-{uuid.uuid4().hex[:8]}"
    where = ["--server", chroma_server.url, "--collection", name, "--base-url", emu.base_url]
    empty = corpus(tmp_path, {})
    code, _, err = run(["ingest", str(empty), *where, "--api-key", SECRET], capsys)
    assert code == 2 and "Nothing to ingest" in err
    code, out, _ = run(
        ["ingest", str(sample_corpus_dir()), *where, "--dry-run", "--api-key", SECRET], capsys
    )
    assert code == 0 and "dry run" in out
    code, _, _ = run(
        [
            "ingest",
            str(sample_corpus_dir()),
            *where,
            "--api-key",
            "wrong-key",
            "--max-retries",
            "0",
        ],
        capsys,
    )
    assert code == 3
    assert name not in collections()
    code, _, _ = run(["ingest", str(sample_corpus_dir()), *where, "--api-key", SECRET], capsys)
    assert code == 0 and name in collections()
    code, _, _ = run(["ingest", str(empty), *where, "--api-key", SECRET], capsys)
    assert code == 2 and name in collections(), "an existing collection is kept"
    assert client.get_collection(name).count() == 10


def test_each_warning_prints_once_in_cli_terms(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three over-length files (in separate requests): one warning line, no Python terms."""
    long_text = " ".join(["word"] * 3000)
    folder = corpus(tmp_path, {f"long{i}.txt": long_text.encode() for i in range(3)})
    args = ["ingest", str(folder), *store_args(tmp_path), "--base-url", emu.base_url]
    code, _, err = run(
        [*args, "--api-key", SECRET, "--batch-size", "1", "--chunk-size", "4000"], capsys
    )
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("gemini-embed: warning: ")]
    assert len(warnings) == 1, err
    assert "input limit of 2048" in warnings[0] and warnings[0].endswith("(shown once).")
    assert not [term for term in (*PYTHON_TERMS, "on_overlength", "usage.") if term in err]


def test_default_store_is_not_created_in_the_working_directory(
    emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = corpus(tmp_path, {})
    code = main(["ingest", str(folder), "--api-key", SECRET, "--base-url", emu.base_url])
    assert code == 2 and "Nothing to ingest" in capsys.readouterr().err
    code = main(["ingest", str(sample_corpus_dir()), "--api-key", SECRET, "--dry-run"])
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


# ----------------------------------------------------------------------------- readers


def test_info_and_query_read_a_store_another_process_writes(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11 item 8: one writer, any number of readers (the README's promise)."""
    populate(emu, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / "chroma"), "cli-test"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        code, out, err = run(["info", *store_args(tmp_path)], capsys)
        assert code == 0 and "chunks:      10" in out, err
        query = ["query", "What does the Team plan cost?", *store_args(tmp_path)]
        code, out, err = run([*query, "--api-key", SECRET, "--base-url", emu.base_url], capsys)
        assert code == 0 and "05-pricing.md" in out.splitlines()[0], err
        code, _, err = run(  # the writer's lock still keeps a second writer out
            ["ingest", str(sample_corpus_dir()), *store_args(tmp_path), "--api-key", SECRET],
            capsys,
        )
        assert code == 5 and "is in use by process" in one_error(err)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


def test_a_file_given_as_path_names_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("not a store")
    args = ["ingest", str(sample_corpus_dir()), "--path", str(afile), "--api-key", SECRET]
    code, _, err = run(args, capsys)
    assert code == 2 and one_error(err).startswith(f"--path {afile} is a file")
    assert afile.read_text() == "not a store"


# ----------------------------------------------------------------------------- emulator


def test_emulator_prints_its_key_and_the_settings_that_work(tmp_path: Path) -> None:
    """Issue 11 item 17: the printed exports are enough for the CLI to use the emulator."""
    from llama_index_gemini_embed.emulator import DEFAULT_API_KEY

    process = subprocess.Popen(
        [sys.executable, "-m", "llama_index_gemini_embed.cli", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        base_url = process.stdout.readline().strip()
        lines = [process.stderr.readline().rstrip("\n") for _ in range(8)]
        assert lines == [
            f"gemini-embed: Gemini API emulator listening on {base_url} (Ctrl-C to stop)",
            f"  API key: {DEFAULT_API_KEY}  (its built-in test key, not a Gemini key)",
            "  point the CLI and the library at it (google-genai reads both variables):",
            f"    export GOOGLE_GEMINI_BASE_URL={base_url}",
            f"    export GEMINI_API_KEY={DEFAULT_API_KEY}",
            "  or per command:",
            f"    GEMINI_API_KEY={DEFAULT_API_KEY} gemini-embed ingest ./docs "
            f"--base-url {base_url}",
            f"    GeminiEmbedding(api_key={DEFAULT_API_KEY!r}, base_url={base_url!r})",
        ]
        exports = dict(
            line.strip().removeprefix("export ").split("=", 1)
            for line in lines
            if line.strip().startswith("export ")
        )
        result = subprocess.run(
            [
                *(sys.executable, "-m", "llama_index_gemini_embed.cli", "ingest"),
                *(str(sample_corpus_dir()), *store_args(tmp_path), "--quiet"),
            ],
            capture_output=True,
            text=True,
            timeout=180,
            env=subprocess_env(**exports),
        )
        assert result.returncode == 0, result.stderr
        assert "10 written" in result.stdout
    finally:
        process.terminate()
        process.wait(timeout=30)


# ----------------------------------------------------------------------------- retries


def test_a_long_retry_wait_is_announced(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11 item 11: a wait of seconds is visible, not silent (and --quiet hides it)."""
    from llama_index_gemini_embed.emulator import Fault

    args = ["ingest", str(sample_corpus_dir()), *store_args(tmp_path), "--api-key", SECRET]
    emu.script_faults([Fault.status(429, retry_delay="2s")])
    code, out, err = run([*args, "--base-url", emu.base_url], capsys)
    assert code == 0 and "10 written" in out
    assert err == "gemini-embed: embedding: retrying in 2s (rate limited, attempt 1)\n"
    emu.script_faults([Fault.status(429, retry_delay="2s")])
    code, _, err = run(
        [*args, "--base-url", emu.base_url, "--quiet", "--collection", "quiet-run"], capsys
    )
    assert code == 0 and err == ""
