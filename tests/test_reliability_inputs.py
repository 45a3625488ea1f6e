"""Bad inputs: each one gets an exact, clear error, and nothing already stored is lost.

Every test starts from a copy of one populated local store (the bundled sample corpus),
hits one bad case through the Python API and/or the CLI (one-line error, documented exit
code) against that same store, and then checks that the store still holds exactly the
same ids, texts, metadata and vectors.
"""

from __future__ import annotations

import datetime
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import Document

from llama_index_gemini_embed import (
    ChromaStore,
    ConfigurationError,
    GeminiEmbedding,
    StoreError,
)
from llama_index_gemini_embed._ingest import ingest, sample_corpus_dir
from llama_index_gemini_embed._store_logic import validate_collection_name
from llama_index_gemini_embed.cli import main
from llama_index_gemini_embed.emulator import Emulator
from tests.reliability_support import (
    KEY_VARS,
    SECRET,
    Row,
    make_embed,
    one_line_error,
    snapshot,
    snapshot_path,
)

COLLECTION = "matrix"


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Row]]:
    """A local store holding the sample corpus (128-d); every test works on a copy."""
    path = tmp_path_factory.mktemp("baseline") / "chroma"
    with Emulator(api_keys=(SECRET,)) as emu:
        embed = make_embed(emu)
        with ChromaStore(COLLECTION, path=str(path), embed_model=embed) as store:
            report = ingest(
                sample_corpus_dir(), embed_model=embed, store=store, show_progress=False
            )
            assert report.ok and store.count() == 10
            return path, snapshot(store)


@dataclass
class Case:
    """One test's store (a copy of the baseline), what it held, and an emulator."""

    path: Path
    before: dict[str, Row]
    emu: Emulator
    root: Path

    @property
    def where(self) -> list[str]:
        return ["--path", str(self.path), "--collection", COLLECTION]

    def api(self) -> list[str]:
        return ["--base-url", self.emu.base_url, "--max-retries", "0"]

    def embed(self, **kwargs: Any) -> GeminiEmbedding:
        return make_embed(self.emu, **kwargs)

    def store(self, **kwargs: Any) -> ChromaStore:
        return ChromaStore(COLLECTION, path=str(self.path), **kwargs)

    def assert_nothing_lost(self) -> None:
        """The store holds exactly what it held before the bad case."""
        assert snapshot_path(self.path, COLLECTION) == self.before

    def assert_baseline_kept(self) -> None:
        """Every record held before is still there, unchanged (new ones may be added)."""
        after = snapshot_path(self.path, COLLECTION)
        assert {k: v for k, v in after.items() if k in self.before} == self.before


@pytest.fixture(autouse=True)
def no_real_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture
def case(baseline: tuple[Path, dict[str, Row]], tmp_path: Path) -> Iterator[Case]:
    path, before = baseline
    copy = tmp_path / "chroma"
    shutil.copytree(path, copy)
    with Emulator(api_keys=(SECRET,)) as emu:
        yield Case(copy, before, emu, tmp_path)


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``gemini-embed ARGS`` in-process; the key never appears in what it prints."""
    code = main(args)
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    return code, out, err


# ----------------------------------------------------------------------------- metadata


def test_unstorable_metadata_fails_only_its_chunk_before_it_is_paid_for(case: Case) -> None:
    """A ``date`` or an object in metadata: that chunk fails (InputError) before embedding;
    the rest of the run, even the same request's other chunks, is stored."""
    docs = [
        Document(id_=f"m{i}", text=f"text number {i} about kappa", metadata={"n": i})
        for i in range(6)
    ]
    docs[2].metadata["when"] = datetime.date(2024, 1, 2)
    docs[4].metadata["obj"] = object()
    embed = case.embed(embed_batch_size=2)
    with case.store() as store:
        report = ingest(docs, embed_model=embed, store=store, show_progress=False)
        assert report.fatal_error is None
        assert report.failed == 2 and {f.node_id for f in report.failures} == {"m2#0", "m4#0"}
        failure = next(f for f in report.failures if f.node_id == "m2#0")
        assert failure.error_type == "InputError"
        assert failure.message == (
            "this chunk cannot be stored: Cannot store metadata ['when']: date is not "
            "JSON-serialisable. Metadata values must be str, int, float, bool, None, or "
            "lists/dicts of those."
        )
        assert report.embedded == report.written == 4
        assert case.emu.counters.embed_items == 4  # nothing paid for the refused chunks
        assert report.to_embed == report.embedded + report.failed + report.pending
        added = set(snapshot(store)) - set(case.before)
    assert sorted(added) == ["m0#0", "m1#0", "m3#0", "m5#0"]
    case.assert_baseline_kept()


def test_nested_none_and_mixed_metadata_round_trip_exactly(case: Case) -> None:
    metadata: dict[str, Any] = {
        "nested": {"a": {"b": [1, "two", None]}, "c": None},
        "none": None,
        "mixed": [1, "x", 2.5, True, None],
        "empty_list": [],
        "ints": [1, 2, 3],
        "flag": False,
        "big": 2**70,
        "weird key$": "v",
    }
    embed = case.embed()
    with case.store() as store:
        report = ingest(
            [Document(id_="meta", text="metadata round trip", metadata=metadata)],
            embed_model=embed,
            store=store,
            show_progress=False,
        )
        assert report.ok and report.written == 1
        [node] = store.get_nodes(node_ids=["meta#0"])
        assert {k: v for k, v in node.metadata.items() if not k.startswith("lige_")} == metadata
    case.assert_baseline_kept()


# ----------------------------------------------------------------------------- files


def test_sync_keeps_documents_whose_files_could_not_be_read(case: Case, tmp_path: Path) -> None:
    """--sync deletes documents gone from the input, not files present but unreadable."""
    corpus = tmp_path / "corpus"
    shutil.copytree(sample_corpus_dir(), corpus)
    embed = case.embed()
    with case.store() as store:
        ingest(corpus, embed_model=embed, store=store, show_progress=False, sync=True)
        before = snapshot(store)
        (corpus / "05-pricing.md").write_bytes(b"\x00\x01 not text any more")
        report = ingest(corpus, embed_model=embed, store=store, show_progress=False, sync=True)
        assert report.ok and report.files_skipped == 1 and report.documents == 9
        assert report.deleted == report.deleted_documents == 0
        assert (
            "1 files not read (binary without a reader, or unreadable); their stored chunks, "
            "if any, are kept"
        ) in report.summary().splitlines()
        assert snapshot(store) == before


def test_non_utf8_file_is_read_with_replacement_characters_and_a_warning(
    case: Case, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "latin1.txt").write_bytes("café crème brûlée".encode("latin-1"))
    embed = case.embed()
    with (
        caplog.at_level(logging.WARNING, logger="llama_index_gemini_embed"),
        case.store() as store,
    ):
        report = ingest(corpus, embed_model=embed, store=store, show_progress=False)
        [node] = store.get_nodes(node_ids=["latin1.txt#0"])
    assert report.ok and report.written == 1
    assert node.get_content() == "caf\ufffd cr\ufffdme br\ufffdl\ufffde"  # nothing dropped
    assert (
        f"{corpus / 'latin1.txt'} is not valid UTF-8 (byte 0xe9 at offset 3): undecodable "
        "bytes are replaced with U+FFFD. Convert the file to UTF-8 to embed its exact text."
    ) in caplog.messages
    case.assert_baseline_kept()


# ----------------------------------------------------------------------------- store


@pytest.mark.parametrize(
    ("name", "problem", "suggestion"),
    [
        ("ab", "Chroma accepts 3-512 characters", "ab-docs"),
        ("my docs", "Chroma accepts 3-512 characters", "my-docs"),
        ("-docs", "Chroma accepts 3-512 characters", "docs"),
        ("x" * 513, "Chroma accepts 3-512 characters", "x" * 512),
        ("a..b", "Chroma refuses two consecutive periods ('..') in a name", "a.b"),
        ("10.0.0.1", "Chroma refuses names that are IPv4 addresses", "10-0-0-1"),
    ],
)
def test_collection_names_chroma_rejects(
    case: Case, capsys: pytest.CaptureFixture[str], name: str, problem: str, suggestion: str
) -> None:
    expected = f"Invalid Chroma collection name {name!r}: {problem}"
    with pytest.raises(ConfigurationError) as info:
        ChromaStore(name, path=str(case.path))
    assert str(info.value).startswith(expected)
    assert str(info.value).endswith(f"Use for example collection_name={suggestion!r}.")
    validate_collection_name(suggestion)  # the suggestion itself is accepted
    code, _, err = cli(["info", "--path", str(case.path), f"--collection={name}"], capsys)
    assert code == 2 and one_line_error(err) == str(info.value)
    case.assert_nothing_lost()


def test_corrupted_store_is_a_clear_store_error(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as info:
        ChromaStore(COLLECTION, path=str(broken))
    message = str(info.value)
    assert message.startswith(f"Cannot open the local Chroma store at {broken} (InternalError: ")
    assert "file is not a database" in message
    assert "restore the directory from a backup, or move it away and ingest again" in message
    code, _, err = cli(["info", "--path", str(broken), "--collection", COLLECTION], capsys)
    assert code == 5 and one_line_error(err) == message
    # The broken directory is still unlocked for the next attempt, and the good one is intact.
    with pytest.raises(StoreError, match="Cannot open the local Chroma store"):
        ChromaStore(COLLECTION, path=str(broken))
    case.assert_nothing_lost()


# ----------------------------------------------------------------------------- CLI options


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--server", "http://127.0.0.1:9"],
            "argument --server: not allowed with argument --path "
            "(see `gemini-embed ingest --help`)",
        ),
        (
            ["--api-key-env", "OTHER_KEY_VAR"],
            "--api-key and --api-key-env both name a key: pass only one of them",
        ),
        (["--chunk-overlap", "-5"], "--chunk-overlap must be at least 0, got -5"),
        (["--max-retries", "-1"], "--max-retries must be at least 0, got -1"),
        (["--concurrency", "0"], "--concurrency must be at least 1, got 0"),
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (
            ["--chunk-size", "5"],
            "ValueError: Metadata length (27) is longer than chunk size (5). Consider "
            "increasing the chunk size or decreasing the size of your metadata to avoid this.",
        ),
        (
            ["--dimension", "64"],
            "output_dimensionality=64 is out of range for gemini-embedding-001: use 128-3072 "
            "(recommended 768, 1536 or 3072), or None for the default",
        ),
    ],
    ids=[
        "path-and-server",
        "api-key-and-api-key-env",
        "negative-overlap",
        "negative-retries",
        "zero-concurrency",
        "zero-batch",
        "chunk-smaller-than-metadata",
        "dimension-out-of-range",
    ],
)
def test_cli_conflicting_or_out_of_range_options_exit_2(
    case: Case,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    message: str,
) -> None:
    """A usage mistake is one line, exit 2, before any API call or write (never exit 5)."""
    monkeypatch.setenv("OTHER_KEY_VAR", SECRET)
    args = [
        "ingest",
        str(sample_corpus_dir()),
        *case.where,
        *case.api(),
        "--api-key",
        SECRET,
        *extra,
    ]
    if extra[0] == "--server":
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        code, err = int(str(exit_info.value.code)), capsys.readouterr().err
    else:
        code, _, err = cli(args, capsys)
    assert code == 2
    assert one_line_error(err) == message
    assert case.emu.counters.embed_requests == 0
    case.assert_nothing_lost()
