"""ingest() with the ids-seen set past its memory budget: still exact for delete_missing.

The real SDK against the emulator, a real Chroma store in a tmp dir; ``memory_limit_ids``
tiny so the run's document ids spill to disk after the first few windows.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from llama_index.core import Document

from llama_index_gemini_embed import ConfigurationError, GeminiEmbedding, aingest, ingest
from llama_index_gemini_embed._store.store import ChromaStore
from llama_index_gemini_embed.emulator import Emulator

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def docs(ids: Iterable[str]) -> list[Document]:
    return [Document(id_=doc_id, text=f"Short note {doc_id} about whales.") for doc_id in ids]


def watched(
    documents: list[Document], tmp: Path, found: list[list[tuple[str, bool]]]
) -> Iterator[Document]:
    """The documents, lazily; once all are read, what the temporary directory holds."""
    yield from documents
    found.append(spills(tmp))


def spills(tmp: Path) -> list[tuple[str, bool]]:
    """The directories in ``tmp``, and whether each holds the spilled ids' table."""
    return [(p.name, (p / "seen.sqlite3").is_file()) for p in tmp.iterdir()]


def embed_128(emulator: Emulator) -> GeminiEmbedding:
    return GeminiEmbedding(
        api_key=emulator.api_key, base_url=emulator.base_url, output_dimensionality=128
    )


@pytest.fixture
def spill_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the run's temporary directories go (``tempfile``'s default, like TMPDIR)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_delete_missing_is_exact_when_the_seen_ids_spill_to_disk(
    emulator: Emulator, tmp_path: Path, spill_tmp: Path
) -> None:
    embed = embed_128(emulator)
    old = [f"old/{i:03d}.md" for i in range(300)]
    kept, removed, new = old[:200], old[200:], [f"new/{i:03d}.md" for i in range(100)]
    with ChromaStore("spill", path=str(tmp_path / "chroma")) as store:
        first = ingest(docs(old), embed_model=embed, store=store, show_progress=False)
        assert first.written == 300 and set(store.get_index()) == set(old)

        found: list[list[tuple[str, bool]]] = []
        report = ingest(
            watched(docs([*kept[:100], *new, *kept[100:]]), spill_tmp, found),
            embed_model=embed,
            store=store,
            show_progress=False,
            delete_missing=True,
            memory_limit_ids=16,
            window_docs=25,
        )
        # by the end of the input the run's ids were on disk (16 in memory, 300 read)
        assert len(found) == 1 and len(found[0]) == 1
        name, has_table = found[0][0]
        assert name.startswith("gemini-embed-seen-ids-") and has_table
        assert report.documents == 300 and report.embedded == 100 and report.skipped == 200
        assert report.deleted_documents == 100 and report.deleted == 100
        assert set(store.get_index()) == {*kept, *new}  # every read one kept, only unread gone
        assert not set(store.get_index()) & set(removed)
        assert list(spill_tmp.iterdir()) == []  # the spill directory is gone


def test_a_repeated_spilled_id_stops_the_run_and_removes_the_spill(
    emulator: Emulator, tmp_path: Path, spill_tmp: Path
) -> None:
    embed = embed_128(emulator)
    ids = [f"n{i:03d}.md" for i in range(120)]
    with ChromaStore("spill", path=str(tmp_path / "chroma")) as store:
        ingest(docs(ids), embed_model=embed, store=store, show_progress=False)
        with pytest.raises(ConfigurationError, match=r"Document id 'n005\.md' appears twice"):
            ingest(
                docs([*ids, "n005.md"]),  # n005.md went to disk windows ago
                embed_model=embed,
                store=store,
                show_progress=False,
                delete_missing=True,
                memory_limit_ids=8,
                window_docs=10,
            )
        assert list(spill_tmp.iterdir()) == []
        assert set(store.get_index()) == set(ids)  # nothing deleted by the stopped run


async def test_a_cancelled_run_removes_the_spill(
    emulator: Emulator, tmp_path: Path, spill_tmp: Path
) -> None:
    """Ctrl-C under ``asyncio.run`` cancels the run: the spill must go with it."""
    embed = embed_128(emulator)
    reached, release = threading.Event(), threading.Event()

    def source() -> Iterator[Document]:
        yield from docs(f"a{i:03d}" for i in range(100))
        reached.set()  # the windows before this one are split: their ids were added
        release.wait(timeout=60)
        yield from docs(["last"])

    with ChromaStore("spill", path=str(tmp_path / "chroma")) as store:
        run = asyncio.create_task(
            aingest(
                source(),
                embed_model=embed,
                store=store,
                show_progress=False,
                memory_limit_ids=8,
                window_docs=10,
            )
        )
        try:
            assert await asyncio.to_thread(reached.wait, 60)
            [(name, has_table)] = spills(spill_tmp)
            assert name.startswith("gemini-embed-seen-ids-") and has_table
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
            assert spills(spill_tmp) == []
        finally:
            release.set()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, r"^memory_limit_ids must be at least 1 \(document ids kept in memory; .*got 0$"),
        (2.5, r"^memory_limit_ids must be a whole number of document ids .*got 2\.5$"),
    ],
)
def test_memory_limit_ids_says_what_is_wrong(
    emulator: Emulator, tmp_path: Path, value: object, message: str
) -> None:
    embed = GeminiEmbedding(api_key=emulator.api_key, base_url=emulator.base_url)
    with (
        ChromaStore("bad", path=str(tmp_path / "chroma")) as store,
        pytest.raises(ConfigurationError, match=message),
    ):
        ingest(docs(["a"]), embed_model=embed, store=store, memory_limit_ids=value)  # type: ignore[arg-type]
    assert emulator.counters.embed_requests == 0
