"""What ingest() reads: nothing to read is a clear error; the store's own folder is never read."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from llama_index_gemini_embed import ChromaStore, ConfigurationError, EmptyInputError, ingest
from llama_index_gemini_embed.emulator import Emulator
from tests.ingest.test_ingest import make_embed, write_corpus


def refused(
    emulator: Emulator, tmp_path: Path, source: Path, extensions: list[str] | None = None
) -> EmptyInputError:
    with (
        ChromaStore("empty", path=str(tmp_path / "store")) as store,
        pytest.raises(EmptyInputError) as info,
    ):
        embed = make_embed(emulator)
        ingest(source, embed_model=embed, store=store, show_progress=False, extensions=extensions)
    with ChromaStore("empty", path=str(tmp_path / "store")) as store:
        assert store.count() == 0 and store.fingerprint is None  # nothing written, left unbound
    assert emulator.counters.requests == 0
    assert isinstance(info.value, ConfigurationError)  # the CLI's exit 2
    assert "\n" not in str(info.value)
    return info.value


def test_an_empty_folder_is_a_clear_error(emulator: Emulator, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / ".hidden").mkdir(parents=True)
    (empty / ".hidden" / "secret.md").write_text("hidden files are not read")
    error = refused(emulator, tmp_path, empty)
    assert str(error) == (
        f"Nothing to ingest: {str(empty)!r} holds no files (hidden files and folders are not read)"
    )
    assert (error.reason, error.paths, error.extensions) == ("no_files", (str(empty),), None)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.reason, copy.paths) == (str(error), error.reason, error.paths)


def test_an_extension_filter_matching_nothing_is_a_clear_error(
    emulator: Emulator, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path / "corpus", docs=3)
    (corpus / "readme.txt").write_text("plain text")
    error = refused(emulator, tmp_path, corpus, extensions=["rst", ".PDF"])
    assert str(error) == (
        f"Nothing to ingest: no file in {str(corpus)!r} has one of extensions=['.pdf', '.rst'] "
        "(found 3 .md, 1 .txt); change extensions= or leave it out to read every file"
    )
    assert error.reason == "no_matching_files" and error.extensions == (".pdf", ".rst")


def test_only_binary_files_is_a_clear_error(emulator: Emulator, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.bin").write_bytes(b"\x00\x01" * 100)
    (corpus / "b.dat").write_bytes(b"\xff\x00" * 100)
    error = refused(emulator, tmp_path, corpus)
    assert str(error) == (
        f"Nothing to ingest: none of the 2 files in {str(corpus)!r} could be read as text "
        "(binary without a reader, or unreadable); pass text files (.md, .txt, ...) or "
        "install llama-index-readers-file for PDF and DOCX"
    )
    assert error.reason == "no_readable_files"


def test_an_empty_list_of_documents_is_not_an_error(emulator: Emulator, tmp_path: Path) -> None:
    with ChromaStore("docs", path=str(tmp_path / "store")) as store:
        report = ingest([], embed_model=make_embed(emulator), store=store, show_progress=False)
    assert report.ok and report.documents == 0


def test_ingesting_the_folder_that_holds_the_store_never_reads_the_store(
    emulator: Emulator, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path / "project", docs=3)
    embed = make_embed(emulator)
    for _ in range(2):  # the second run finds the store's files (sqlite, lock) on disk
        with ChromaStore("docs", path=str(corpus / "chroma")) as store:
            report = ingest(corpus, embed_model=embed, store=store, show_progress=False)
            index = store.get_index()
        assert report.ok and report.files_skipped == 0 and report.documents == 3
        assert sorted(index) == ["note000.md", "note001.md", "note002.md"]
    assert any((corpus / "chroma").iterdir())


def test_print_report_shows_the_human_summary(emulator: Emulator, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", docs=2)
    with ChromaStore("docs", path=str(tmp_path / "store")) as store:
        report = ingest(corpus, embed_model=make_embed(emulator), store=store, show_progress=False)
    assert str(report) == report.summary()
    assert str(report).startswith("2 documents, 2 chunks: 2 embedded")
    assert repr(report).startswith("IngestReport(documents=2")
