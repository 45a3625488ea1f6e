"""Read-only commands never create or delete collections."""

from __future__ import annotations

from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings

from llama_index_gemini_embed import ChromaStore, StoreError
from llama_index_gemini_embed.cli import EXIT_STORE, main


def names(path: Path) -> set[str]:
    with ChromaStore("probe-collection", path=str(path)) as store:
        client = store.client
        assert isinstance(client, chromadb.api.ClientAPI)
        found = {c.name for c in client.list_collections()}
    return found - {"probe-collection"}


@pytest.mark.parametrize("command", [["info"], ["query", "anything"]])
def test_missing_collection_is_reported_and_not_created(
    command: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    path = tmp_path / "chroma"
    with ChromaStore("other", path=str(path)):
        pass
    code = main([*command, "--path", str(path), "--collection", "nope"])
    err = capsys.readouterr().err
    assert code == EXIT_STORE
    assert "Collection 'nope' does not exist" in err and err.count("\n") == 1
    assert "nope" not in names(path)


@pytest.mark.parametrize("command", [["info"], ["query", "anything"]])
def test_existing_empty_collection_is_left_alone(
    command: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    path = tmp_path / "chroma"
    with ChromaStore("keep-me", path=str(path), space="ip"):
        pass
    code = main([*command, "--path", str(path), "--collection", "keep-me"])
    assert code == EXIT_STORE
    assert "is empty" in capsys.readouterr().err
    with ChromaStore("keep-me", path=str(path), create=False) as store:
        assert store.distance_space == "ip", "the user's collection and settings survive"


def test_create_false_never_creates(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"does not exist .* ingest something first"):
        ChromaStore("absent", path=str(tmp_path / "chroma"), create=False)
    client = chromadb.PersistentClient(
        str(tmp_path / "chroma"), settings=Settings(anonymized_telemetry=False)
    )
    assert "absent" not in {c.name for c in client.list_collections()}
