"""Pure planning behind ingest(): ids, hashes, front matter, plans and estimates."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pytest

from llama_index_gemini_embed._embedding.engine import TextSpec
from llama_index_gemini_embed._ingest.plan import (
    PlannedNode,
    SeenIds,
    content_hash,
    doc_id_for_path,
    estimate_requests,
    estimate_seconds,
    fingerprint_hash,
    markdown_title,
    metadata_hash,
    node_hash,
    node_id_for,
    parse_front_matter,
    plan_nodes,
    split_hash,
)
from llama_index_gemini_embed._models import model_spec
from llama_index_gemini_embed._tokens import estimate_tokens

FP = fingerprint_hash({"model": "gemini-embedding-001", "dimension": 768})
DOC = "RETRIEVAL_DOCUMENT"


def test_ids_are_stable_and_readable() -> None:
    assert node_id_for("guides/setup.md", 3) == "guides/setup.md#3"
    assert doc_id_for_path(("guides", "setup.md")) == "guides/setup.md"
    assert doc_id_for_path((".", "a.md")) == "a.md"


def test_content_hash_covers_what_is_embedded_and_the_fingerprint() -> None:
    base = content_hash(TextSpec("text", DOC, "Title"), FP)
    assert base == content_hash(TextSpec("text", DOC, "Title"), FP)
    assert base != content_hash(TextSpec("text!", DOC, "Title"), FP)
    assert base != content_hash(TextSpec("text", DOC, "Other"), FP)
    assert base != content_hash(TextSpec("text", "CLASSIFICATION", "Title"), FP)
    other_fp = fingerprint_hash({"model": "gemini-embedding-001", "dimension": 3072})
    assert base != content_hash(TextSpec("text", DOC, "Title"), other_fp)


def test_metadata_hash_ignores_reserved_keys_and_order() -> None:
    assert metadata_hash({"a": 1, "b": "x"}) == metadata_hash({"b": "x", "a": 1, "lige_hash": "z"})
    assert metadata_hash({"a": 1}) != metadata_hash({"a": 2})


def test_node_hash_splits_into_content_and_metadata_parts() -> None:
    spec = TextSpec("hello", DOC, None)
    value = node_hash(spec, {"k": "v"}, FP)
    content, meta = split_hash(value)
    assert content == content_hash(spec, FP)
    assert meta == metadata_hash({"k": "v"})
    assert split_hash("") == (None, None)
    assert split_hash(None) == (None, None)


def test_front_matter_and_title() -> None:
    meta, body = parse_front_matter("---\ncategory: sync\ntags: [a, 'b']\n---\n# Hi\ntext")
    assert meta == {"category": "sync", "tags": ["a", "b"]}
    assert body == "# Hi\ntext"
    assert markdown_title(body) == "Hi"
    # nested YAML is left alone rather than half-parsed
    nested = "---\nauthor:\n  - name: x\n---\nbody"
    assert parse_front_matter(nested) == ({}, nested)
    assert parse_front_matter("no front matter") == ({}, "no front matter")
    assert markdown_title("intro line\n# Late heading") is None
    assert markdown_title("\n\n#   \n") is None


def _plan(new: list[PlannedNode], stored: dict[str, dict[str, str]]) -> dict[str, object]:
    plan = plan_nodes(new, stored)
    return {
        "embed": plan.embed,
        "skip": plan.skip,
        "reuse": plan.reuse,
        "empty": plan.empty,
        "stale": sorted(plan.stale),
    }


def test_plan_skips_unchanged_and_embeds_new_or_changed() -> None:
    new = [
        PlannedNode("a#0", "a", "c0.m0"),
        PlannedNode("a#1", "a", "c1.m0"),
        PlannedNode("b#0", "b", "c2.m0"),
    ]
    stored = {"a": {"a#0": "c0.m0", "a#1": "old.m0", "a#2": "c9.m0"}}
    assert _plan(new, stored) == {
        "embed": ["a#1", "b#0"],
        "skip": ["a#0"],
        "reuse": {},
        "empty": [],
        "stale": ["a#2"],
    }


def test_plan_reuses_vectors_for_metadata_changes_and_moved_chunks() -> None:
    new = [
        PlannedNode("a#0", "a", "cX.m0"),  # a new first chunk
        PlannedNode("a#1", "a", "c0.m1"),  # the old first chunk moved, metadata changed
        PlannedNode("a#2", "a", "c1.m1"),  # same id, same content, new metadata
    ]
    stored = {"a": {"a#0": "c0.m0", "a#1": "c1.m0"}}
    result = _plan(new, stored)
    assert result["embed"] == ["a#0"]
    assert result["reuse"] == {"a#1": "a#0", "a#2": "a#1"}
    assert result["stale"] == []


def test_plan_reports_empty_chunks_and_deletes_their_stored_version() -> None:
    new = [PlannedNode("a#0", "a", None), PlannedNode("a#1", "a", "c1.m0")]
    stored = {"a": {"a#0": "c0.m0", "a#1": "c1.m0"}}
    result = _plan(new, stored)
    assert result["empty"] == ["a#0"]
    assert result["skip"] == ["a#1"]
    assert result["stale"] == ["a#0"]


def test_plan_treats_nodes_without_hash_as_changed() -> None:
    result = _plan([PlannedNode("a#0", "a", "c0.m0")], {"a": {"a#0": ""}})
    assert result["embed"] == ["a#0"]


def test_estimate_requests_packs_like_the_engine() -> None:
    spec = model_spec("gemini-embedding-001")
    specs = [TextSpec(f"text {i}", DOC, None) for i in range(250)]
    estimate = estimate_requests(specs, spec, max_items=100, max_tokens=None)
    assert (estimate.items, estimate.requests) == (250, 3)
    assert estimate.tokens == sum(estimate_tokens(s.text) for s in specs)
    # one title per request on -001: two titles -> separate requests
    titled = [TextSpec("x", DOC, "A"), TextSpec("y", DOC, "B"), TextSpec("z", DOC, "A")]
    assert estimate_requests(titled, spec, max_items=100, max_tokens=None).requests == 2
    # gemini-embedding-2 puts titles in the text: one request
    two = model_spec("gemini-embedding-2")
    assert estimate_requests(titled, two, max_items=100, max_tokens=None).requests == 1
    # an over-long text is billed at the model's input limit
    long = [TextSpec("word " * 5000, DOC, None)]
    assert estimate_requests(long, spec, max_items=100, max_tokens=None).tokens == 2048


def test_estimate_seconds_at_quota() -> None:
    assert estimate_seconds(250, 10, items_per_minute=100, tokens_per_minute=None) == 120.0
    assert estimate_seconds(100, 10, items_per_minute=100, tokens_per_minute=None) == 0.0
    assert estimate_seconds(10, 90_000, items_per_minute=100, tokens_per_minute=30_000) == 120.0
    assert estimate_seconds(10, 10, items_per_minute=None, tokens_per_minute=None) is None
    assert estimate_seconds(0, 0, items_per_minute=5, tokens_per_minute=None) == 0.0
    assert (
        estimate_seconds(250, 1, items_per_minute=100, tokens_per_minute=None, window_seconds=1.0)
        == 2.0
    )


def _imported_modules(module: str) -> set[str]:
    """Every module ``module`` imports, following our own package transitively (by source)."""
    import ast
    import importlib.util

    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        package = name if spec.origin.endswith("__init__.py") else name.rpartition(".")[0]
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}" if base else parent
                targets = [base]
            for target in targets:
                if target not in seen:
                    seen.add(target)
                    if target.startswith("llama_index_gemini_embed."):
                        todo.append(target)
    return seen


def test_planning_imports_neither_the_engine_nor_the_sdk() -> None:
    imported = _imported_modules("llama_index_gemini_embed._ingest.plan")
    assert "llama_index_gemini_embed._models" in imported  # the walk does follow our imports
    assert not {
        m for m in imported if m.startswith(("google", "llama_index_gemini_embed._embedding"))
    }


def test_seen_ids_find_repeats_and_cost_8_bytes_per_document() -> None:
    seen = SeenIds()
    assert seen.add(["a.md", "b.md"]) is None
    assert seen.add(["c.md", "b.md", "a.md"]) == "b.md"  # the first repeat, in input order
    assert seen.add(["d.md", "e.md", "d.md"]) == "d.md"  # repeated within one window
    assert "a.md" in seen and "c.md" not in seen and len(seen) == 2  # refused windows add nothing
    ids = [f"folder{i % 97}/note{i}.md" for i in range(100_000)]
    for start in range(0, len(ids), 2_000):
        assert seen.add(ids[start : start + 2_000]) is None
    assert len(seen) == 100_002 and all(doc in seen for doc in ids[::997])
    assert "folder1/note100000.md" not in seen
    assert seen.nbytes == 8 * 100_002  # a set of the ids: ~10 MiB


# ------------------------------------------------------------------- seen ids past a budget


def _reference_add(reference: set[str], doc_ids: list[str]) -> str | None:
    """What SeenIds.add must answer: the first id seen before (also earlier in the call)."""
    window: set[str] = set()
    for doc_id in doc_ids:
        if doc_id in reference or doc_id in window:
            return doc_id
        window.add(doc_id)
    reference |= window
    return None


@pytest.mark.parametrize(
    ("calls", "answers"),
    [
        # repeat inside one call once the first ids have spilled
        ([["a", "b", "c"], ["d", "e", "d"]], [None, "d"]),
        # repeat of a spilled id, after others: the first repeat in input order
        ([["a", "b", "c"], ["d", "e"], ["f", "b", "e"]], [None, None, "b"]),
        # repeat of an in-memory id while older ids are on disk
        ([["a", "b", "c"], ["d"], ["e", "d"]], [None, None, "d"]),
        # one call larger than the budget goes to disk whole; still found afterwards
        ([["a", "b", "c", "d", "e", "f", "g"], ["h", "g"]], [None, "g"]),
        # a refused call adds nothing: "x" is still new afterwards
        ([["a", "b", "c"], ["x", "a"], ["x"]], [None, "a", None]),
    ],
)
def test_seen_ids_across_the_spill_boundary(
    calls: list[list[str]], answers: list[str | None]
) -> None:
    with SeenIds(memory_limit_ids=2) as seen:
        assert [seen.add(call) for call in calls] == answers
        assert seen.spilled > 0
        reference: set[str] = set()
        for call in calls:
            _reference_add(reference, call)
        assert len(seen) == len(reference)
        assert all(doc in seen for doc in reference) and "never" not in seen
        probe = [*sorted(reference), "never"]
        assert seen.contains(probe).tolist() == [True] * len(reference) + [False]


def test_seen_ids_agree_with_a_set_for_many_windows_and_budgets() -> None:
    rng = random.Random(14)
    for budget in (1, 7, 100):
        reference: set[str] = set()
        with SeenIds(memory_limit_ids=budget) as seen:
            for _ in range(300):
                window = [f"doc{rng.randrange(3_000)}.md" for _ in range(rng.randrange(1, 12))]
                assert seen.add(window) == _reference_add(reference, window)
            assert len(seen) == len(reference) and seen.spilled >= len(reference) - budget
            probe = [f"doc{i}.md" for i in range(3_000)]
            assert seen.contains(probe).tolist() == [doc in reference for doc in probe]
            assert [doc in seen for doc in probe[:400]] == [doc in reference for doc in probe[:400]]


def test_seen_ids_memory_stops_growing_at_the_budget() -> None:
    with SeenIds(memory_limit_ids=100) as seen:
        for start in range(0, 5_000, 37):
            assert seen.add([f"n{i}" for i in range(start, min(start + 37, 5_000))]) is None
            assert seen.nbytes <= 8 * 100
        assert len(seen) == 5_000 and seen.spilled >= 4_900
        assert "n0" in seen and "n4999" in seen and "n5000" not in seen
        assert seen.add(["n5000", "n17"]) == "n17"


def test_seen_ids_remove_their_spill_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen = SeenIds(memory_limit_ids=3)
    seen.add(["a", "b"])
    assert seen.spill_dir is None and list(tmp_path.iterdir()) == []  # nothing on disk yet
    seen.add(["c", "d"])
    folder = seen.spill_dir
    assert folder is not None and folder.parent == tmp_path and folder.is_dir()
    assert folder.stat().st_mode & 0o077 == 0  # private to this user
    seen.close()
    assert not folder.exists() and list(tmp_path.iterdir()) == []
    seen.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        seen.add(["e"])
    with pytest.raises(ValueError, match="closed"):
        _ = "a" in seen

    with SeenIds(memory_limit_ids=1) as other:
        other.add(["a", "b"])
        assert other.spill_dir is not None
    assert list(tmp_path.iterdir()) == []

    with pytest.raises(KeyboardInterrupt), SeenIds(memory_limit_ids=1) as third:
        third.add(["a", "b"])
        assert third.spill_dir is not None
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_seen_ids_say_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"memory_limit_ids must be at least 1 .*got 0"):
        SeenIds(memory_limit_ids=0)
    with pytest.raises(TypeError, match="memory_limit_ids must be an int, got float"):
        SeenIds(memory_limit_ids=1.5)  # type: ignore[arg-type]
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    monkeypatch.setattr(tempfile, "tempdir", str(not_a_dir))
    seen = SeenIds(memory_limit_ids=1)
    with pytest.raises(OSError, match=r"^Cannot spill the document ids .* set TMPDIR") as info:
        seen.add(["a", "b"])
    assert str(not_a_dir) in str(info.value) and "\n" not in str(info.value)
    assert len(seen) == 0 and "a" not in seen  # nothing half-added
    seen.close()


def test_set_vector_is_what_the_store_encodes_and_clears() -> None:
    from llama_index.core.schema import TextNode

    from llama_index_gemini_embed._ingest.writer import set_vector
    from llama_index_gemini_embed._store.records import encode_node

    node = TextNode(id_="d#0", text="hello")
    set_vector(node, [0.6, 0.8])
    assert node.embedding == [0.6, 0.8]
    assert list(encode_node(node).embedding) == [0.6, 0.8]
    assert node.model_dump()["embedding"] == [0.6, 0.8]
    set_vector(node, None)
    assert node.embedding is None
    with pytest.raises(ValueError, match="has no embedding"):
        encode_node(node)
    # a placeholder for the storability check leaves the node as it was
    assert list(encode_node(node, embedding=[0.0]).embedding) == [0.0]
    assert node.embedding is None
