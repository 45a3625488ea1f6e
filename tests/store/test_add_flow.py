"""What ``add_flow`` asks Chroma per batch, and the driver's answer to ``inherits``.

The flow is driven by hand (no I/O) to pin the calls; the probe runs against real
``PersistentClient`` files, including chroma-core/chroma#7594's deleted-collection case.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import chromadb
import pytest
from llama_index.core.schema import TextNode

from llama_index_gemini_embed._store.connect import chroma_settings, may_inherit_list_metadata
from llama_index_gemini_embed._store.flows import Call, Limits, add_flow


def _nodes(*ids: str, **metadata: Any) -> list[TextNode]:
    return [TextNode(id_=i, text=f"text {i}", embedding=[1.0, 0.0], metadata=metadata) for i in ids]


def _drive(
    nodes: list[TextNode],
    *,
    inherits: bool,
    new_ids: frozenset[str] = frozenset(),
    stored: Mapping[str, dict[str, Any]] | None = None,
) -> list[Call]:
    """Run add_flow; ``stored``: the rows Chroma holds (get answers from it; upsert merges)."""
    rows: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (stored or {}).items()}
    calls: list[Call] = []
    flow = add_flow(nodes, Limits(max_batch=100), 2, "docs", new_ids=new_ids)
    try:
        call = next(flow)
        while True:
            calls.append(call)
            answer: Any = None
            if call.method == "inherits":
                answer = inherits
            elif call.method == "get":
                ids = [i for i in call.kwargs["ids"] if i in rows]
                answer = {"ids": ids, "metadatas": [rows[i] for i in ids]}
            elif call.method in ("upsert", "update"):
                ids = call.kwargs["ids"]
                for row_id, meta in zip(
                    ids, call.kwargs.get("metadatas") or [None] * len(ids), strict=True
                ):
                    merged = {**rows.get(row_id, {}), **(meta or {})}
                    rows[row_id] = {k: v for k, v in merged.items() if v is not None}
            call = flow.send(answer)
    except StopIteration:
        pass
    return calls


def test_known_new_rows_are_written_with_no_read() -> None:
    calls = _drive(_nodes("a#0", "a#1"), inherits=False, new_ids=frozenset({"a#0", "a#1"}))
    assert [c.method for c in calls] == ["inherits", "upsert"]


def test_rows_that_may_exist_have_their_stale_keys_removed_before_the_write() -> None:
    stored = {"a#0": {"old": 1, "keep": 2}}
    calls = _drive(
        _nodes("a#0", "b#0", keep=3), inherits=False, new_ids=frozenset({"b#0"}), stored=stored
    )
    assert [c.method for c in calls] == ["inherits", "get", "upsert"]
    assert calls[1].kwargs["ids"] == ["a#0"]  # only the row that may exist is read
    sent = dict(zip(calls[2].kwargs["ids"], calls[2].kwargs["metadatas"], strict=True))
    assert sent["a#0"]["old"] is None and sent["a#0"]["keep"] == 3
    assert "old" not in sent["b#0"]


def test_when_rows_may_inherit_they_are_read_back_and_every_unwritten_key_removed() -> None:
    # "old" stays after the merge-upsert; "tags" stands for list metadata a new row inherits
    stored: dict[str, dict[str, Any]] = {"a#0": {"old": 1}, "b#0": {"tags": ["ghost"]}}
    calls = _drive(_nodes("a#0", "b#0", n=1), inherits=True, stored=stored)
    assert [c.method for c in calls] == ["inherits", "upsert", "get", "update"]
    fix = dict(zip(calls[3].kwargs["ids"], calls[3].kwargs["metadatas"], strict=True))
    assert fix == {"a#0": {"old": None}, "b#0": {"tags": None}}


def test_new_ids_do_not_skip_the_read_back_when_rows_may_inherit() -> None:
    calls = _drive(
        _nodes("a#0"), inherits=True, new_ids=frozenset({"a#0"}), stored={"a#0": {"tags": [1]}}
    )
    assert [c.method for c in calls] == ["inherits", "upsert", "get", "update"]


# ----------------------------------------------------------------------------- the probe


def _client(path: Path) -> Any:
    return chromadb.PersistentClient(str(path), settings=chroma_settings())


def test_probe_answers_false_for_a_store_without_deleted_list_metadata(tmp_path: Path) -> None:
    collection = _client(tmp_path).get_or_create_collection("docs")
    collection.add(ids=["a"], embeddings=[[1.0, 0.0]], metadatas=[{"tags": ["x", "y"]}])
    collection.delete(ids=["a"])  # a record delete removes its list metadata too
    collection.add(ids=["b"], embeddings=[[0.0, 1.0]], metadatas=[{"n": 1}])
    assert may_inherit_list_metadata(str(tmp_path)) is False


def test_probe_answers_true_after_a_deleted_collection_until_new_rows_pass_it(
    tmp_path: Path,
) -> None:
    client = _client(tmp_path)
    old = client.get_or_create_collection("old-docs")
    old.add(
        ids=["a", "b", "c"],
        embeddings=[[1.0, 0.0]] * 3,
        metadatas=[{"n": 0}, {"n": 1}, {"tags": ["ghost"]}],
    )
    client.delete_collection("old-docs")
    assert may_inherit_list_metadata(str(tmp_path)) is True
    new = client.get_or_create_collection("docs")
    new.add(ids=["x", "y"], embeddings=[[1.0, 0.0]] * 2, metadatas=[{"n": 0}, {"n": 1}])
    assert may_inherit_list_metadata(str(tmp_path)) is True  # the 3rd row would inherit
    new.add(ids=["z"], embeddings=[[1.0, 0.0]], metadatas=[{"n": 2}])
    assert new.get(ids=["z"], include=["metadatas"])["metadatas"] == [
        {"n": 2, "tags": ["ghost"]}
    ]  # Chroma's bug, which the probe foresaw; from here on no row can inherit
    assert may_inherit_list_metadata(str(tmp_path)) is False


@pytest.mark.parametrize("case", ["no directory", "no file", "not sqlite", "other schema"])
def test_probe_answers_true_when_it_cannot_tell(tmp_path: Path, case: str) -> None:
    directory: str | None = str(tmp_path)
    if case == "no directory":
        directory = None
    elif case == "not sqlite":
        (tmp_path / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    elif case == "other schema":
        sqlite3.connect(tmp_path / "chroma.sqlite3").execute("CREATE TABLE t (id INTEGER)")
    assert may_inherit_list_metadata(directory) is True
