"""Bad inputs: each one gets an exact, clear error, and nothing already stored is lost.

Every test starts from a copy of one populated local store (the bundled sample corpus),
hits one bad case through the Python API and/or the CLI (one-line error, documented exit
code) against that same store, and then checks that the store still holds exactly the
same ids, texts, metadata and vectors.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import Document
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

from llama_index_gemini_embed import (
    ChromaStore,
    ConfigurationError,
    EmptyInputError,
    FingerprintMismatchError,
    GeminiEmbedding,
    InvalidAPIKeyError,
    MissingAPIKeyError,
    StoreError,
    StoreLockedError,
    StoreUnavailableError,
    UnknownModelError,
)
from llama_index_gemini_embed._ingest import ingest, sample_corpus_dir
from llama_index_gemini_embed._store.naming import validate_collection_name
from llama_index_gemini_embed.cli import main
from llama_index_gemini_embed.cli._terms import in_cli_terms
from llama_index_gemini_embed.emulator import Emulator
from tests.chroma_server import free_port
from tests.reliability_support import (
    SECRET,
    Row,
    clean_env,
    cli_command,
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
        ingest(corpus, embed_model=embed, store=store, show_progress=False, delete_missing=True)
        before = snapshot(store)
        (corpus / "05-pricing.md").write_bytes(b"\x00\x01 not text any more")
        report = ingest(
            corpus, embed_model=embed, store=store, show_progress=False, delete_missing=True
        )
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
    assert code == 2 and one_line_error(err) == in_cli_terms(str(info.value), key_option=None)
    assert one_line_error(err).endswith(f"Use for example --collection {suggestion}.")
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
            "--dimension 64 is out of range for gemini-embedding-001: use 128-3072 "
            "(recommended 768, 1536 or 3072), or leave --dimension out for the default",
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


# ----------------------------------------------------------------------------- keys, models


def new_docs(count: int = 3) -> list[Document]:
    return [
        Document(id_=f"new{i}", text=f"A new text number {i} about omega.") for i in range(count)
    ]


def test_no_key(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(MissingAPIKeyError) as info:
        GeminiEmbedding(base_url=case.emu.base_url)
    assert str(info.value) == (
        "No Gemini API key: pass api_key=... or set GEMINI_API_KEY (or GOOGLE_API_KEY); for "
        "Vertex AI pass vertexai=True with project= and location="
    )
    code, _, err = cli(["ingest", str(sample_corpus_dir()), *case.where, *case.api()], capsys)
    assert code == 2 and one_line_error(err) == (
        "No Gemini API key: set GEMINI_API_KEY (or name another variable with --api-key-env); "
        "try `gemini-embed demo`, which runs offline without one"
    )
    assert case.emu.counters.requests == 0
    case.assert_nothing_lost()


def test_invalid_key(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = "sk-WRONG-0d9e8f7a6b"
    message = (
        "The Gemini API rejected the API key from api_key= (400 INVALID_ARGUMENT). Check "
        "api_key= (create a key at https://aistudio.google.com/apikey)."
    )
    embed = GeminiEmbedding(api_key=wrong, base_url=case.emu.base_url, output_dimensionality=128)
    with case.store() as store, pytest.raises(InvalidAPIKeyError) as info:
        ingest(new_docs(), embed_model=embed, store=store, show_progress=False)
    assert str(info.value) == message
    assert info.value.report is not None and info.value.report.written == 0
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "new.md").write_text("# New\n\nSomething to embed.")
    code, out, err = cli(
        [
            *("ingest", str(corpus), *case.where, *case.api()),
            *("--api-key", wrong, "--dimension", "128"),
        ],
        capsys,
    )
    assert code == 3 and wrong not in out + err
    assert one_line_error(err) == in_cli_terms(str(info.value), key_option="--api-key")
    case.assert_nothing_lost()


def test_unknown_model(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    message = (
        "Model 'gemini-embedding-999' is not available for embedding on this API (404 "
        "NOT_FOUND). Use a current model such as 'gemini-embedding-001' or "
        "'gemini-embedding-2', or list them with client.models.list()."
    )
    embed = case.embed(model_name="gemini-embedding-999")
    with (
        ChromaStore("other", path=str(case.path)) as other,
        pytest.raises(UnknownModelError) as info,
    ):
        ingest(new_docs(), embed_model=embed, store=other, show_progress=False)
    assert str(info.value) == message
    code, _, err = cli(
        [
            "ingest",
            str(sample_corpus_dir()),
            "--path",
            str(case.path),
            "--collection",
            "other",
            *case.api(),
            "--api-key",
            SECRET,
            "--model",
            "gemini-embedding-999",
        ],
        capsys,
    )
    assert code == 3 and one_line_error(err) == in_cli_terms(message, key_option=None)
    with ChromaStore("other", path=str(case.path)) as other:
        assert other.fingerprint is None and other.count() == 0  # left unbound and empty
    case.assert_nothing_lost()


@pytest.mark.parametrize(
    ("option", "value", "change"),
    [
        ("--dimension", "256", "dimension: 128 -> 256"),
        (
            "--model",
            "gemini-embedding-2",
            "model: 'gemini-embedding-001' -> 'gemini-embedding-2'; scheme: "
            "'task_type:RETRIEVAL_DOCUMENT' -> 'prefix:RETRIEVAL_DOCUMENT'",
        ),
    ],
)
def test_model_or_dimension_mismatch_with_the_collection(
    case: Case, capsys: pytest.CaptureFixture[str], option: str, value: str, change: str
) -> None:
    """Refused before any API call, naming what differs (API: FingerprintMismatchError)."""
    settings: dict[str, Any] = (
        {"output_dimensionality": int(value)}
        if option == "--dimension"
        else {"model_name": value, "output_dimensionality": 128}
    )
    with case.store() as store, pytest.raises(FingerprintMismatchError) as info:
        ingest(new_docs(), embed_model=case.embed(**settings), store=store, show_progress=False)
    message = str(info.value)
    assert message.startswith(
        f"Chroma collection {COLLECTION!r} holds vectors made with [dimension=128, "
        "model='gemini-embedding-001', normalised=True, scheme='task_type:RETRIEVAL_DOCUMENT'"
        "], but this store was given ["
    )
    assert f"(differs in {change}). Vectors from different embedding setups cannot be " in message
    assert message.endswith(
        f"delete collection {COLLECTION!r} (client.delete_collection({COLLECTION!r})) and "
        "re-ingest."
    )
    extra = [option, value] + (["--dimension", "128"] if option == "--model" else [])
    code, _, err = cli(
        ["ingest", str(sample_corpus_dir()), *case.where, *case.api(), "--api-key", SECRET, *extra],
        capsys,
    )
    assert code == 5 and one_line_error(err) == in_cli_terms(str(info.value), key_option=None)
    assert case.emu.counters.embed_requests == 0
    case.assert_nothing_lost()


@pytest.mark.parametrize("dimension", [0, 64, 127, 3073, 4096])
def test_dimension_out_of_range(case: Case, dimension: int) -> None:
    with pytest.raises(ConfigurationError) as info:
        case.embed(output_dimensionality=dimension)
    assert str(info.value) == (
        f"output_dimensionality={dimension} is out of range for gemini-embedding-001: use "
        "128-3072 (recommended 768, 1536 or 3072), or None for the default"
    )
    case.assert_nothing_lost()


def test_unknown_task_type(case: Case) -> None:
    with pytest.raises(ConfigurationError, match=r"^Unknown task type 'RETRIEVE' for "):
        case.embed(document_task_type="RETRIEVE")
    case.assert_nothing_lost()


# ----------------------------------------------------------------------------- documents


def test_empty_and_whitespace_only_documents(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = [
        Document(id_="empty", text=""),
        Document(id_="blank", text="  \n\t \n"),
        Document(id_="fine", text="A real sentence about theta."),
    ]
    with case.store() as store:
        report = ingest(docs, embed_model=case.embed(), store=store, show_progress=False)
        assert report.ok and report.documents == 3
        assert report.empty == 1 and report.embedded == report.written == 1
        assert "1 empty" in report.summary()
    assert case.emu.counters.embed_items == 1  # an empty text is never sent
    case.assert_baseline_kept()

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "empty.md").write_text("")
    (corpus / "blank.md").write_text("   \n\n\t\n")
    code, out, err = cli(
        ["ingest", str(corpus), *case.where, *case.api(), "--api-key", SECRET, "--json"],
        capsys,
    )
    report_json = json.loads(out)
    assert code == 0 and err == ""
    assert report_json["documents"] == 2 and report_json["empty"] == 1
    assert report_json["embedded"] == report_json["written"] == 0
    case.assert_baseline_kept()


def test_text_over_the_token_limit(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    huge = Document(id_="huge", text=" ".join(["word"] * 3000))
    small = Document(id_="small", text="Short text.")
    # Default policy: truncated to the limit before sending, counted and warned about once.
    embed = case.embed()
    with (
        caplog.at_level(logging.WARNING, logger="llama_index_gemini_embed"),
        case.store() as store,
    ):
        report = ingest(
            [huge, small], embed_model=embed, store=store, transformations=[], show_progress=False
        )
    assert report.ok and report.written == 2 and embed.usage.truncated == 1
    assert (
        "Text #0 is about 3750 tokens, over gemini-embedding-001's input limit of 2048: it is "
        "truncated to the limit before sending (counted in usage.truncated; shown once; "
        "on_overlength='raise' refuses such texts instead)."
    ) in caplog.messages
    # on_overlength="raise": that chunk fails with the reason, before any request.
    calls = case.emu.counters.embed_requests
    strict = case.embed(on_overlength="raise")
    huge2 = Document(id_="huge2", text=" ".join(["word"] * 3000))
    with case.store() as store:
        report = ingest(
            [huge2], embed_model=strict, store=store, transformations=[], show_progress=False
        )
    assert report.failed == 1 and report.failures[0].error_type == "TextTooLongError"
    assert report.failures[0].message == (
        "about 3750 tokens, over gemini-embedding-001's input limit of 2048 (on_overlength='raise')"
    )
    assert case.emu.counters.embed_requests == calls
    case.assert_baseline_kept()


def test_binary_file_is_skipped_and_reported(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "photo.jpg.bin").write_bytes(b"\xff\xd8\xff\x00\x10JFIF\x00" * 50)
    (corpus / "note.md").write_text("# Note\n\nA note about sigma.")
    with case.store() as store:
        report = ingest(corpus, embed_model=case.embed(), store=store, show_progress=False)
    assert report.ok and report.files_skipped == 1 and report.documents == 1
    assert report.written == 1
    code, out, err = cli(
        ["ingest", str(corpus), *case.where, *case.api(), "--api-key", SECRET], capsys
    )
    assert code == 0 and err == ""
    assert (
        "1 files not read (binary without a reader, or unreadable); their stored chunks, if "
        "any, are kept"
    ) in out.splitlines()
    case.assert_baseline_kept()


def test_empty_folder(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    (empty / ".hidden").mkdir(parents=True)
    (empty / ".hidden" / "secret.md").write_text("hidden files are not read")
    refusal = (
        f"Nothing to ingest: {str(empty)!r} holds no files (hidden files and folders are not read)"
    )
    with case.store() as store:
        for delete_missing in (False, True):
            with pytest.raises(EmptyInputError) as info:
                ingest(
                    empty,
                    embed_model=case.embed(),
                    store=store,
                    show_progress=False,
                    delete_missing=delete_missing,
                )
            assert str(info.value) == refusal
        with pytest.raises(ConfigurationError) as sync_info:
            ingest(
                [], embed_model=case.embed(), store=store, delete_missing=True, show_progress=False
            )
        assert str(sync_info.value) == (
            "delete_missing=True with an empty input would delete the whole collection; "
            "refusing. Use store.clear() to empty it on purpose."
        )
    base = ["ingest", str(empty), *case.where, *case.api(), "--api-key", SECRET]
    for flags in ([], ["--sync"]):
        code, _, err = cli([*base, *flags], capsys)
        assert code == 2 and one_line_error(err) == refusal
    assert case.emu.counters.requests == 0
    case.assert_nothing_lost()


def test_missing_path(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-dir"
    with case.store() as store, pytest.raises(ConfigurationError) as info:
        ingest(missing, embed_model=case.embed(), store=store, show_progress=False)
    assert str(info.value) == f"No such file or directory: {str(missing)!r}"
    code, _, err = cli(
        ["ingest", str(missing), *case.where, *case.api(), "--api-key", SECRET], capsys
    )
    assert code == 2 and one_line_error(err) == str(info.value)
    case.assert_nothing_lost()


def test_huge_file_is_chunked_under_the_limit(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 1.5 MB file: split into chunks none of which is truncated, all stored."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    words = ["alpha", "beta", "gamma", "delta", "omega"]
    text = " ".join(f"Sentence {i} is about {words[i % 5]}." for i in range(50_000))
    (corpus / "huge.txt").write_text(text)
    assert len(text) > 1_400_000
    code, out, err = cli(
        ["ingest", str(corpus), *case.where, *case.api(), "--api-key", SECRET, "--json"],
        capsys,
    )
    report = json.loads(out)
    assert code == 0 and err == "" and report["ok"]
    assert report["nodes"] == report["embedded"] == report["written"] > 300
    assert case.emu.counters.truncated_items == 0
    # A single 300 kB "word" without any boundary is split too (Python API).
    blob = Document(id_="blob", text="x" * 300_000)
    embed = case.embed()
    with case.store() as store:
        result = ingest(blob, embed_model=embed, store=store, show_progress=False)
    assert result.ok and result.nodes == result.written > 1 and embed.usage.truncated == 0
    case.assert_baseline_kept()


def test_duplicate_document_ids(case: Case) -> None:
    twice = [Document(id_="same", text="one"), Document(id_="same", text="two")]
    with case.store() as store, pytest.raises(ConfigurationError) as info:
        ingest(twice, embed_model=case.embed(), store=store, show_progress=False)
    assert str(info.value) == (
        "Document id 'same' appears twice in the input: ids must be unique (each run replaces "
        "a document's chunks by id)"
    )
    assert case.emu.counters.requests == 0
    case.assert_nothing_lost()


def test_input_that_is_not_documents(case: Case) -> None:
    mixed: list[Any] = [Document(id_="ok", text="fine"), 42]
    with case.store() as store, pytest.raises(ConfigurationError) as info:
        ingest(
            mixed,
            embed_model=case.embed(),
            store=store,
            show_progress=False,
        )
    assert str(info.value) == "ingest() takes Documents or paths; got a int in the input"
    case.assert_nothing_lost()


def test_embedding_model_inside_transformations(case: Case) -> None:
    embed = case.embed()
    with case.store() as store, pytest.raises(ConfigurationError) as info:
        ingest(
            new_docs(), embed_model=embed, store=store, transformations=[embed], show_progress=False
        )
    assert str(info.value) == (
        "Pass the embedding model as embed_model=, not in transformations: ingest() embeds "
        "(and skips unchanged chunks) itself"
    )
    case.assert_nothing_lost()


# ----------------------------------------------------------------------------- stores


def test_space_mismatch_with_the_collection(case: Case) -> None:
    with pytest.raises(ConfigurationError) as info:
        ChromaStore(COLLECTION, path=str(case.path), space="l2")
    assert str(info.value) == (
        f"Collection {COLLECTION!r} already exists with space='cosine', not 'l2'; Chroma "
        "cannot change it. Drop space=, or use another collection_name for the new space."
    )
    case.assert_nothing_lost()


def test_closed_store(case: Case) -> None:
    store = case.store()
    store.close()
    with pytest.raises(StoreError) as info:
        ingest(new_docs(), embed_model=case.embed(), store=store, show_progress=False)
    assert str(info.value) == (
        f"This ChromaStore for collection {COLLECTION!r} is closed; create a new ChromaStore "
        "to use the collection again."
    )
    assert case.emu.counters.requests == 0
    case.assert_nothing_lost()


def test_chroma_server_unreachable(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    with pytest.raises(StoreUnavailableError) as info:
        ChromaStore.from_url(f"http://127.0.0.1:{port}", collection_name=COLLECTION)
    message = str(info.value)
    assert message.startswith(
        f"Cannot reach the Chroma server at 127.0.0.1:{port} while connecting: "
    )
    assert message.endswith(
        f"Start it with `chroma run --path DIR --host 127.0.0.1 --port {port}`, or fix host=/port=."
    )
    code, _, err = cli(
        [
            "ingest",
            str(sample_corpus_dir()),
            "--server",
            f"http://127.0.0.1:{port}",
            *case.api(),
            "--api-key",
            SECRET,
        ],
        capsys,
    )
    assert code == 5
    assert one_line_error(err).startswith(f"Cannot reach the Chroma server at 127.0.0.1:{port}")
    assert case.emu.counters.requests == 0
    case.assert_nothing_lost()


HOLD_LOCK = """
import sys
from llama_index_gemini_embed import ChromaStore
store = ChromaStore(sys.argv[2], path=sys.argv[1])
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes stdin (or kills us)
"""


def test_second_writer_on_a_local_store(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(case.path), COLLECTION],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(StoreLockedError) as info:
            case.store()
        message = str(info.value)
        real = os.path.realpath(case.path)
        assert message.startswith(
            f"The local Chroma store at {real} is in use by process {holder.pid} (lock file "
        )
        assert "serve the directory with `chroma run" in message
        code, _, err = cli(
            ["ingest", str(sample_corpus_dir()), *case.where, *case.api(), "--api-key", SECRET],
            capsys,
        )
        assert code == 5 and one_line_error(err) == in_cli_terms(message, key_option=None)
        assert case.emu.counters.requests == 0
    finally:
        if holder.stdin is not None:
            holder.stdin.close()
        holder.wait(timeout=30)
    case.assert_nothing_lost()


def test_stale_lock_from_a_killed_writer_does_not_block(case: Case) -> None:
    """The lock is an flock: a holder killed with -9 leaves a lock file but no lock."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(case.path), COLLECTION],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert (case.path / ".lige.lock").read_text().strip() == str(holder.pid)
    case.assert_nothing_lost()  # opens the store: not blocked by the dead holder
    with case.store() as store:
        report = ingest(new_docs(), embed_model=case.embed(), store=store, show_progress=False)
        assert report.ok and report.written == 3
    case.assert_baseline_kept()


# ----------------------------------------------------------------------------- query CLI


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (
            ["--filter", "category:={bad json"],
            2,
            "--filter 'category:={bad json': the value after := must be JSON (Expecting "
            "property name enclosed in double quotes: line 1 column 2 (char 1))",
        ),
        (["--filter", "novalue"], 2, "--filter 'novalue': use KEY=VALUE (or KEY:=JSON)"),
        (
            ["--filter", "category:=[1, 2]"],
            2,
            "FilterOperator.EQ on key 'category' needs a single str/int/float value, got "
            "[1, 2]; use FilterOperator.IN for a list.",
        ),
        (["--top-k", "0"], 2, "--top-k must be at least 1, got 0"),
        (["--collection", "nothing-here"], 5, None),
        (["--dimension", "256"], 5, "dimension: 128 -> 256"),
    ],
    ids=["filter-bad-json", "filter-no-value", "filter-list", "top-k", "no-collection", "dim"],
)
def test_query_cli_errors(
    case: Case,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    code: int,
    message: str | None,
) -> None:
    args = ["query", "How much is the Team plan?", *case.where, "--base-url", case.emu.base_url]
    got, _, err = cli([*args, "--api-key", SECRET, *extra], capsys)
    line = one_line_error(err)
    assert got == code
    if extra[0] == "--collection":
        assert line == (
            f"Collection 'nothing-here' does not exist at {case.path}: ingest something "
            "first (gemini-embed ingest PATH --collection NAME), or check --collection and "
            "--path/--server"
        )
    else:
        assert message is not None and (line == message or message in line)
    case.assert_nothing_lost()
    with ChromaStore("nothing-here", path=str(case.path)) as probe:  # not left behind
        assert probe.count() == 0


# ----------------------------------------------------------------------------- unreadable

API_SCRIPT = """
import json, sys
from llama_index_gemini_embed import ChromaStore, GeminiEmbedding, ingest
corpus, path, collection, base_url = sys.argv[1:5]
embed = GeminiEmbedding(base_url=base_url, output_dimensionality=128, max_retries=0)
with ChromaStore(collection, path=path, embed_model=embed) as store:
    report = ingest(
        corpus, embed_model=embed, store=store, delete_missing=True, show_progress=False
    )
print(json.dumps(report.to_dict()))
"""


def enforcing_permissions(command: list[str]) -> list[str]:
    """``command`` run so that file modes apply even when the tests run as root.

    Root reads a chmod-000 file anyway (CAP_DAC_OVERRIDE). Dropping that capability and
    CAP_DAC_READ_SEARCH from the bounding set before exec (``setpriv``) makes the kernel
    check the mode bits as for anyone else; the process is still root, so it can use the
    root-owned interpreter and store.
    """
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:  # util-linux is essential on Debian; fail rather than prove nothing
        pytest.fail("running as root needs setpriv (apt-get install util-linux) to enforce chmod")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]


def test_unreadable_file_is_skipped_with_a_warning_and_sync_keeps_it(
    tmp_path: Path, emulator: Emulator
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(sample_corpus_dir(), corpus)
    store_path = tmp_path / "chroma"
    with ChromaStore(COLLECTION, path=str(store_path)) as store:
        first = ingest(corpus, embed_model=make_embed(emulator), store=store, show_progress=False)
        assert first.ok and store.count() == 10
        before = snapshot(store)
    locked = corpus / "05-pricing.md"
    locked.chmod(0o000)
    env = clean_env(GEMINI_API_KEY=emulator.api_key)
    warning = f"Skipping {locked}: [Errno 13] Permission denied: '{locked}'"

    def run(command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            enforcing_permissions(command),
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    # CLI: exit 0, a warning naming the file, the summary says so, nothing deleted.
    result = run(
        cli_command(
            *("ingest", str(corpus), "--path", str(store_path), "--collection", COLLECTION),
            *("--base-url", emulator.base_url, "--dimension", "128", "--sync"),
        )
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"gemini-embed: warning: {warning}"]
    assert (
        "1 files not read (binary without a reader, or unreadable); their stored chunks, if "
        "any, are kept"
    ) in result.stdout.splitlines()
    assert snapshot_path(store_path, COLLECTION) == before

    # Python API: the same, reported in IngestReport.files_skipped.
    result = run(
        [
            sys.executable,
            "-c",
            API_SCRIPT,
            str(corpus),
            str(store_path),
            COLLECTION,
            emulator.base_url,
        ]
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [warning]  # the library logs it as it is
    report = json.loads(result.stdout)
    assert report["ok"] and report["files_skipped"] == 1 and report["documents"] == 9
    assert report["deleted"] == 0 and report["skipped"] == 9
    assert snapshot_path(store_path, COLLECTION) == before


def test_a_rebuilt_collection_has_no_phantom_metadata(case: Case) -> None:
    """Rebuild as FingerprintMismatchError advises (delete the collection, re-ingest): the
    new records carry exactly their own metadata. Chroma alone hands the list-valued
    metadata of a deleted collection's records to new records (and to filters)."""
    tagged = [
        Document(id_=f"t{i}", text=f"tagged text {i}", metadata={"tags": ["red", "blue"]})
        for i in range(4)
    ]
    plain = [Document(id_=f"p{i}", text=f"plain text {i}", metadata={"n": i}) for i in range(4)]
    red = MetadataFilters(filters=[MetadataFilter(key="tags", value="red", operator="contains")])
    embed = case.embed()
    with ChromaStore("rebuilt", path=str(case.path)) as store:
        ingest(tagged, embed_model=embed, store=store, show_progress=False)
        assert len(store.get_nodes(filters=red)) == 4
        store.client.delete_collection("rebuilt")
    with ChromaStore("rebuilt", path=str(case.path)) as store:
        report = ingest(plain, embed_model=embed, store=store, show_progress=False)
        assert report.ok and store.count() == 4
        for node in store.get_nodes():
            user = {k: v for k, v in node.metadata.items() if not k.startswith("lige_")}
            assert user == {"n": int(node.node_id[1])}, node.metadata
        assert store.get_nodes(filters=red) == []
        raw = store.collection.get(include=["metadatas"])["metadatas"] or []
        assert all("tags" not in (m or {}) for m in raw)
    case.assert_nothing_lost()
