"""Readers beside the single writer (issue 11 items 8 and 16).

A second process opens a local store with ``read_only=True`` for ``info``/``query`` while
another process holds the writer lock; a read-only store refuses writes in one line and
creates nothing on disk; ``path=`` naming a file says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import chromadb
import pytest
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery

from llama_index_gemini_embed._errors import (
    ConfigurationError,
    FingerprintMismatchError,
    StoreError,
)
from llama_index_gemini_embed._fingerprint import Fingerprint
from llama_index_gemini_embed._store.store import ChromaStore

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
ROOT = Path(__file__).resolve().parents[2]

FP: Fingerprint = {"model": "gemini-embedding-001", "dimension": 2}


def nodes(n: int) -> list[TextNode]:
    return [
        TextNode(id_=f"n{i}", text=f"text {i}", embedding=[1.0, float(i)], metadata={"i": i})
        for i in range(n)
    ]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ANONYMIZED_TELEMETRY": "False"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_another_process_reads_while_this_one_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "chroma")
    with ChromaStore("docs", path=path, fingerprint=FP) as writer:
        writer.add(nodes(5))
        reader = run_python(
            f"""
            import json
            from llama_index.core.vector_stores.types import VectorStoreQuery
            from llama_index_gemini_embed._store.store import ChromaStore
            with ChromaStore("docs", path={path!r}, read_only=True) as store:
                hit = store.query(VectorStoreQuery(query_embedding=[1.0, 3.0], similarity_top_k=1))
                print(json.dumps([store.count(), store.fingerprint, hit.ids]))
            """
        )
        assert reader.returncode == 0, reader.stderr
        count, fingerprint, ids = json.loads(reader.stdout.strip().splitlines()[-1])
        assert count == 5 and fingerprint == FP and ids == ["n3"]
        writer.add(nodes(7))  # the writer carries on: the reader took no lock
        assert writer.count() == 7


def test_a_reader_does_not_shut_out_a_writer(tmp_path: Path) -> None:
    path = str(tmp_path / "chroma")
    with ChromaStore("docs", path=path) as writer:
        writer.add(nodes(2))
    with ChromaStore("docs", path=path, read_only=True) as reader:
        assert reader.count() == 2
        writer_process = run_python(
            f"""
            from llama_index.core.schema import TextNode
            from llama_index_gemini_embed._store.store import ChromaStore
            with ChromaStore("docs", path={path!r}) as store:
                store.add([TextNode(id_="w", text="w", embedding=[0.0, 1.0])])
                print(store.count())
            """
        )
        assert writer_process.returncode == 0, writer_process.stderr
        assert writer_process.stdout.strip().splitlines()[-1] == "3"


def test_read_only_store_refuses_writes_in_one_line(tmp_path: Path) -> None:
    path = str(tmp_path / "chroma")
    with ChromaStore("docs", path=path) as writer:
        writer.add(nodes(2))
    with ChromaStore("docs", path=path, read_only=True, fingerprint=FP) as reader:
        refusals: list[Callable[[], object]] = [
            lambda: reader.add(nodes(1)),
            lambda: reader.delete("doc"),
            lambda: reader.delete_nodes(["n0"]),
            reader.clear,
            lambda: reader.check_fingerprint(FP),  # none recorded: recording is a write
        ]
        for refuse in refusals:
            with pytest.raises(StoreError) as info:
                refuse()
            message = str(info.value)
            assert "\n" not in message
            assert message.startswith("This ChromaStore was opened with read_only=True")
        assert reader.count() == 2 and reader.fingerprint is None  # nothing was recorded
    with ChromaStore("docs", path=path, fingerprint=FP) as writer:
        assert writer.fingerprint == FP
    with ChromaStore("docs", path=path, read_only=True) as reader:
        reader.check_fingerprint(FP)  # a reader checks a recorded fingerprint without writing
        with pytest.raises(FingerprintMismatchError):
            reader.check_fingerprint({**FP, "dimension": 3})
        result = reader.query(VectorStoreQuery(query_embedding=[1.0, 1.0], similarity_top_k=1))
        assert result.ids == ["n1"]


def test_read_only_open_of_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nothing-here"
    with pytest.raises(StoreError) as info:
        ChromaStore("docs", path=str(path), read_only=True)
    assert str(info.value) == (
        f"Collection 'docs' does not exist at {path} (no Chroma store there yet): "
        "ingest something first (gemini-embed ingest PATH --path DIR), or check --path."
    )
    assert not path.exists()
    existing = tmp_path / "chroma"
    ChromaStore("other", path=str(existing)).close()
    with pytest.raises(StoreError, match="Collection 'docs' does not exist at"):
        ChromaStore("docs", path=str(existing), read_only=True)
    with ChromaStore("other", path=str(existing)) as check:
        assert check.client.count_collections() == 1  # "docs" was not created


def test_path_naming_a_file_says_so_and_creates_nothing(tmp_path: Path) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("not a store")
    for read_only in (False, True):
        with pytest.raises(ConfigurationError) as info:
            ChromaStore("docs", path=str(file), read_only=read_only)
        assert str(info.value) == (
            f"path={str(file)!r} is a file, not a directory: pass the directory of a local "
            "Chroma store (or a new one to create)."
        )
    with pytest.raises(ConfigurationError) as inside:
        ChromaStore("docs", path=str(file / "chroma"))
    assert str(inside.value) == (
        f"path={str(file / 'chroma')!r} is inside {str(file)!r}, which is a file: pass a "
        "directory for the local Chroma store."
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert file.read_text() == "not a store"


def test_a_reader_on_a_supplied_client_takes_no_lock(tmp_path: Path) -> None:
    from chromadb.config import Settings

    from tests.store.test_lock import lock_held

    path = str(tmp_path / "chroma")
    with ChromaStore("docs", path=path) as writer:
        writer.add(nodes(1))
    assert not lock_held(path)
    client = chromadb.PersistentClient(path, Settings(anonymized_telemetry=False, _env_file=None))
    with ChromaStore("docs", client=client, read_only=True) as reader:
        assert reader.count() == 1
        assert not lock_held(path)  # another process could write meanwhile
