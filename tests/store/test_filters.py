"""LlamaIndex filters -> Chroma: the translation, then real Chroma results for every operator.

Flat cases are also checked against LlamaIndex's own filter semantics
(``build_metadata_filter_fn``, used by SimpleVectorStore), so "what Chroma returns" and
"what LlamaIndex means" are the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn

from llama_index_gemini_embed._store.filters import (
    ChromaFilter,
    rust_regex_escape,
    translate_filters,
)
from llama_index_gemini_embed._store.store import ChromaStore

Op = FilterOperator
AND, OR, NOT = FilterCondition.AND, FilterCondition.OR, FilterCondition.NOT


def f(key: str, value: Any, op: FilterOperator = Op.EQ) -> MetadataFilter:
    return MetadataFilter(key=key, value=value, operator=op)


def fs(*filters: MetadataFilter | MetadataFilters, cond: FilterCondition = AND) -> MetadataFilters:
    return MetadataFilters(filters=list(filters), condition=cond)


# ----------------------------------------------------------------------------- translation

TRANSLATIONS: list[tuple[str, MetadataFilters, ChromaFilter]] = [
    ("eq", fs(f("a", 1)), ChromaFilter(where={"a": {"$eq": 1}})),
    ("gt-int", fs(f("a", 1, Op.GT)), ChromaFilter(where={"a": {"$gt": 1}})),
    (  # Chroma truncates 1.5 to 1 for int rows: "= 2" lets the int 2 through (2 > 1.5)
        "gt-fractional",
        fs(f("a", 1.5, Op.GT)),
        ChromaFilter(where={"$or": [{"a": {"$gt": 1.5}}, {"a": {"$eq": 2}}]}),
    ),
    (
        "and",
        fs(f("a", 1), f("b", "x", Op.NE)),
        ChromaFilter(where={"$and": [{"a": {"$eq": 1}}, {"b": {"$ne": "x"}}]}),
    ),
    (
        "or",
        fs(f("a", 1), f("b", "x"), cond=OR),
        ChromaFilter(where={"$or": [{"a": {"$eq": 1}}, {"b": {"$eq": "x"}}]}),
    ),
    ("in", fs(f("a", ["x", "y"], Op.IN)), ChromaFilter(where={"a": {"$in": ["x", "y"]}})),
    (
        "in-mixed-types-split",  # pydantic would coerce [1, 2.5]; Chroma wants one type
        fs(MetadataFilter.model_construct(key="a", value=cast(Any, ["x", 2]), operator=Op.IN)),
        ChromaFilter(where={"$or": [{"a": {"$in": ["x"]}}, {"a": {"$in": [2]}}]}),
    ),
    ("nin", fs(f("a", [1], Op.NIN)), ChromaFilter(where={"a": {"$nin": [1]}})),
    ("contains", fs(f("t", "x", Op.CONTAINS)), ChromaFilter(where={"t": {"$contains": "x"}})),
    (
        "any",
        fs(f("t", ["x", "y"], Op.ANY)),
        ChromaFilter(where={"$or": [{"t": {"$contains": "x"}}, {"t": {"$contains": "y"}}]}),
    ),
    (
        "all",
        fs(f("t", ["x", "y"], Op.ALL)),
        ChromaFilter(where={"$and": [{"t": {"$contains": "x"}}, {"t": {"$contains": "y"}}]}),
    ),
    (
        "text-match",
        fs(f("text", "fox", Op.TEXT_MATCH)),
        ChromaFilter(where={"#document": {"$contains": "fox"}}),
    ),
    (
        "text-match-insensitive",
        fs(f("text", "a.b", Op.TEXT_MATCH_INSENSITIVE)),
        ChromaFilter(where_document={"$regex": "(?i)a\\.b"}),
    ),
    (
        "is-empty",
        fs(f("a", None, Op.IS_EMPTY)),
        ChromaFilter(where={"lige_keys": {"$not_contains": "a"}}),
    ),
    ("not-eq", fs(f("a", 1), cond=NOT), ChromaFilter(where={"a": {"$ne": 1}})),
    (
        "not-gt-matches-missing",
        fs(f("a", 1, Op.GT), cond=NOT),
        ChromaFilter(where={"$or": [{"a": {"$lte": 1}}, {"lige_keys": {"$not_contains": "a"}}]}),
    ),
    (
        "not-two-is-none-of",
        fs(f("a", 1), f("b", 2), cond=NOT),
        ChromaFilter(where={"$and": [{"a": {"$ne": 1}}, {"b": {"$ne": 2}}]}),
    ),
    (
        "insensitive-and-metadata",
        fs(f("text", "q", Op.TEXT_MATCH_INSENSITIVE), f("a", 1)),
        ChromaFilter(where={"a": {"$eq": 1}}, where_document={"$regex": "(?i)q"}),
    ),
    (
        "or-of-text-matches-goes-to-where-document",
        fs(f("text", "q", Op.TEXT_MATCH_INSENSITIVE), f("text", "r", Op.TEXT_MATCH), cond=OR),
        ChromaFilter(where_document={"$or": [{"$regex": "(?i)q"}, {"$contains": "r"}]}),
    ),
    ("empty", fs(), ChromaFilter()),
    ("in-empty", fs(f("a", [], Op.IN)), ChromaFilter(matches_nothing=True)),
    ("nin-empty", fs(f("a", [], Op.NIN)), ChromaFilter()),
    (
        "any-empty-or-eq",
        fs(f("t", [], Op.ANY), f("a", 1), cond=OR),
        ChromaFilter(where={"a": {"$eq": 1}}),
    ),
    ("nin-empty-or-eq", fs(f("t", [], Op.NIN), f("a", 1), cond=OR), ChromaFilter()),
]


@pytest.mark.parametrize(
    ("name", "filters", "expected"), TRANSLATIONS, ids=[t[0] for t in TRANSLATIONS]
)
def test_translation(name: str, filters: MetadataFilters, expected: ChromaFilter) -> None:
    assert translate_filters(filters) == expected


def test_doc_ids_and_raw_clauses_are_anded() -> None:
    assert translate_filters(fs(f("a", 1)), doc_ids=["d1"], where={"z": 1}) == ChromaFilter(
        where={"$and": [{"a": {"$eq": 1}}, {"doc_id": {"$in": ["d1"]}}, {"z": 1}]}
    )
    assert translate_filters(doc_ids=[]) == ChromaFilter(matches_nothing=True)
    assert translate_filters(None) == ChromaFilter()


def test_rust_regex_escape() -> None:
    assert rust_regex_escape("a.b (c)*? x") == "a\\.b \\(c\\)\\*\\? x"


UNSUPPORTED: list[tuple[str, MetadataFilters, str]] = [
    (
        "insensitive-or-metadata",
        fs(f("text", "q", Op.TEXT_MATCH_INSENSITIVE), f("a", 1), cond=OR),
        "FilterOperator.TEXT_MATCH_INSENSITIVE cannot be combined with metadata filters under OR",
    ),
    (
        "insensitive-not-and",
        fs(fs(f("text", "q", Op.TEXT_MATCH_INSENSITIVE), f("a", 1)), cond=NOT),
        "FilterOperator.TEXT_MATCH_INSENSITIVE cannot be combined",
    ),
    (
        "text-match-on-metadata",
        fs(f("genre", "sci", Op.TEXT_MATCH)),
        "FilterOperator.TEXT_MATCH on metadata key 'genre' is not supported",
    ),
    (
        "gt-string",
        fs(f("genre", "m", Op.GT)),
        "FilterOperator.GT on key 'genre' got the string 'm': Chroma only orders numbers",
    ),
    ("eq-list", fs(f("a", [1, 2])), "FilterOperator.EQ on key 'a' needs a single"),
    ("contains-list", fs(f("t", ["x"], Op.CONTAINS)), "use ANY or ALL"),
    ("is-empty-doc-id", fs(f("doc_id", None, Op.IS_EMPTY)), "FilterOperator.IS_EMPTY on 'doc_id'"),
    (
        "is-empty-package-key",
        fs(f("lige_hash", None, Op.IS_EMPTY)),
        "FilterOperator.IS_EMPTY on 'lige_hash' is not supported: keys starting with 'lige_' "
        "are the package's own and their presence is not recorded. Filter them with "
        "EQ/NE/IN/NIN on their values.",
    ),
    (
        "not-gt-package-key",
        fs(f("lige_n", 1, Op.GT), cond=NOT),
        "FilterOperator.GT on 'lige_n' is not supported",
    ),
    ("dollar-key", fs(f("$and", 1)), "filter key '$and' is not a metadata key"),
    ("text-match-empty", fs(f("text", "", Op.TEXT_MATCH)), "needs a non-empty string"),
    ("in-none", fs(f("a", None, Op.IN)), "FilterOperator.IN on key 'a' needs a list"),
    (
        "unknown-operator",
        fs(MetadataFilter.model_construct(key="a", value=1, operator=cast(Any, "regex"))),
        "'regex'",
    ),
]


@pytest.mark.parametrize(
    ("name", "filters", "message"), UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED]
)
def test_unsupported_filters_raise_naming_the_operator(
    name: str, filters: MetadataFilters, message: str
) -> None:
    with pytest.raises(ValueError) as info:
        translate_filters(filters)
    assert message in str(info.value)


# ----------------------------------------------------------------------------- real Chroma

ROWS: dict[str, tuple[str, dict[str, Any]]] = {
    "n1": (
        "The Quick brown fox",
        {"year": 2020, "genre": "scifi", "tags": ["a", "b"], "rating": 4.5, "note": ""},
    ),
    "n2": (
        "lazy dog sleeps",
        {"year": 2021, "genre": "drama", "tags": ["b", "c"], "rating": 3.0, "note": None},
    ),
    "n3": ("QUICK thinking", {"year": 2022, "genre": "scifi", "tags": ["c"], "empty": []}),
    "n4": ("nothing (here) a.b", {"genre": "comedy", "nums": [1, 2, 3], "rating": 5}),
    "n5": ("brown bear", {"year": 2019, "tags": ["a"], "note": "hello"}),
}
ALL_IDS = sorted(ROWS)

CASES: list[tuple[str, MetadataFilters, list[str]]] = [
    ("eq-str", fs(f("genre", "scifi")), ["n1", "n3"]),
    ("eq-int", fs(f("year", 2020)), ["n1"]),
    ("eq-int-matches-float", fs(f("rating", 3)), ["n2"]),
    ("ne-matches-missing", fs(f("genre", "scifi", Op.NE)), ["n2", "n4", "n5"]),
    ("gt", fs(f("year", 2020, Op.GT)), ["n2", "n3"]),
    ("gte", fs(f("year", 2020, Op.GTE)), ["n1", "n2", "n3"]),
    ("lt", fs(f("year", 2021, Op.LT)), ["n1", "n5"]),
    ("lte-float", fs(f("rating", 4.5, Op.LTE)), ["n1", "n2"]),
    ("in-str", fs(f("genre", ["scifi", "comedy"], Op.IN)), ["n1", "n3", "n4"]),
    ("in-int", fs(f("year", [2019, 2022], Op.IN)), ["n3", "n5"]),
    ("in-mixed-numbers", fs(f("rating", [3, 4.5], Op.IN)), ["n1", "n2"]),
    ("nin", fs(f("genre", ["scifi"], Op.NIN)), ["n2", "n4", "n5"]),
    ("contains-str", fs(f("tags", "a", Op.CONTAINS)), ["n1", "n5"]),
    ("contains-int", fs(f("nums", 2, Op.CONTAINS)), ["n4"]),
    ("any", fs(f("tags", ["a", "c"], Op.ANY)), ["n1", "n2", "n3", "n5"]),
    ("all", fs(f("tags", ["b", "c"], Op.ALL)), ["n2"]),
    ("text-match-case-sensitive", fs(f("text", "QUICK", Op.TEXT_MATCH)), ["n3"]),
    ("text-match", fs(f("text", "brown", Op.TEXT_MATCH)), ["n1", "n5"]),
    ("text-match-insensitive", fs(f("text", "quick", Op.TEXT_MATCH_INSENSITIVE)), ["n1", "n3"]),
    (
        "text-match-insensitive-literal",
        fs(f("text", "(HERE) A.B", Op.TEXT_MATCH_INSENSITIVE)),
        ["n4"],
    ),
    ("is-empty-none-blank-missing", fs(f("note", None, Op.IS_EMPTY)), ["n1", "n2", "n3", "n4"]),
    ("is-empty-empty-list", fs(f("empty", None, Op.IS_EMPTY)), ALL_IDS),
    ("is-empty-missing-list", fs(f("tags", None, Op.IS_EMPTY)), ["n4"]),
    ("and", fs(f("genre", "scifi"), f("year", 2020, Op.GT)), ["n3"]),
    ("or", fs(f("genre", "comedy"), f("year", 2020, Op.LT), cond=OR), ["n4", "n5"]),
    ("not-one", fs(f("genre", "scifi"), cond=NOT), ["n2", "n4", "n5"]),
    ("not-two", fs(f("genre", "scifi"), f("year", 2019), cond=NOT), ["n2", "n4"]),
    ("not-gt", fs(f("year", 2020, Op.GT), cond=NOT), ["n1", "n4", "n5"]),
    ("not-lte", fs(f("rating", 4.5, Op.LTE), cond=NOT), ["n3", "n4", "n5"]),
    ("not-contains", fs(f("tags", "a", Op.CONTAINS), cond=NOT), ["n2", "n3", "n4"]),
    ("not-any", fs(f("tags", ["a", "c"], Op.ANY), cond=NOT), ["n4"]),
    ("not-all", fs(f("tags", ["b", "c"], Op.ALL), cond=NOT), ["n1", "n3", "n4", "n5"]),
    ("not-is-empty", fs(f("note", None, Op.IS_EMPTY), cond=NOT), ["n5"]),
    ("not-text-match", fs(f("text", "brown", Op.TEXT_MATCH), cond=NOT), ["n2", "n3", "n4"]),
    (
        "not-text-match-insensitive",
        fs(f("text", "quick", Op.TEXT_MATCH_INSENSITIVE), cond=NOT),
        ["n2", "n4", "n5"],
    ),
    ("not-in", fs(f("genre", ["scifi"], Op.IN), cond=NOT), ["n2", "n4", "n5"]),
    ("not-nin", fs(f("genre", ["scifi"], Op.NIN), cond=NOT), ["n1", "n3"]),
    ("not-ne", fs(f("genre", "scifi", Op.NE), cond=NOT), ["n1", "n3"]),
    ("in-empty", fs(f("genre", [], Op.IN)), []),
    ("nin-empty", fs(f("genre", [], Op.NIN)), ALL_IDS),
    ("any-empty", fs(f("tags", [], Op.ANY)), []),
    ("all-empty-needs-the-key", fs(f("tags", [], Op.ALL)), ["n1", "n2", "n3", "n5"]),
    ("no-filters", fs(), ALL_IDS),
]

NESTED: list[tuple[str, MetadataFilters, list[str]]] = [
    (
        "and-of-or-and-not",
        fs(fs(f("genre", "scifi"), f("genre", "comedy"), cond=OR), fs(f("year", 2022), cond=NOT)),
        ["n1", "n4"],
    ),
    (
        "or-of-and-with-text",
        fs(
            fs(f("genre", "scifi"), f("text", "Quick", Op.TEXT_MATCH)),
            f("nums", 3, Op.CONTAINS),
            cond=OR,
        ),
        ["n1", "n4"],
    ),
    (
        "insensitive-and-metadata",
        fs(f("text", "quick", Op.TEXT_MATCH_INSENSITIVE), f("genre", "scifi")),
        ["n1", "n3"],
    ),
    (
        "or-of-insensitive-matches",
        fs(
            f("text", "quick", Op.TEXT_MATCH_INSENSITIVE),
            f("text", "BEAR", Op.TEXT_MATCH_INSENSITIVE),
            cond=OR,
        ),
        ["n1", "n3", "n5"],
    ),
    (
        "or-of-insensitive-and-sensitive",
        fs(
            f("text", "quick", Op.TEXT_MATCH_INSENSITIVE), f("text", "bear", Op.TEXT_MATCH), cond=OR
        ),
        ["n1", "n3", "n5"],
    ),
    (
        "not-of-or",
        fs(fs(f("genre", "scifi"), f("year", 2019), cond=OR), cond=NOT),
        ["n2", "n4"],
    ),
    (
        "not-of-and",
        fs(fs(f("genre", "scifi"), f("year", 2020, Op.GT)), cond=NOT),
        ["n1", "n2", "n4", "n5"],
    ),
    (
        "not-of-not",
        fs(fs(f("genre", "scifi"), cond=NOT), cond=NOT),
        ["n1", "n3"],
    ),
    (
        "insensitive-and-nested-or",
        fs(
            f("text", "QUICK", Op.TEXT_MATCH_INSENSITIVE),
            fs(f("year", 2022), f("rating", 4.5), cond=OR),
        ),
        ["n1", "n3"],
    ),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaStore]:
    path: Path = tmp_path_factory.mktemp("filters")
    with ChromaStore("filters", path=str(path)) as store:
        store.add(
            [
                TextNode(
                    id_=node_id,
                    text=text,
                    metadata=metadata,
                    embedding=[1.0, float(i)],
                    relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"d{i % 2}")},
                )
                for i, (node_id, (text, metadata)) in enumerate(ROWS.items())
            ]
        )
        yield store


def _chroma_ids(store: ChromaStore, filters: MetadataFilters) -> list[str]:
    return sorted(node.node_id for node in store.get_nodes(filters=filters))


@pytest.mark.parametrize(("name", "filters", "expected"), CASES, ids=[c[0] for c in CASES])
def test_filter_results_match_llamaindex_semantics(
    store: ChromaStore, name: str, filters: MetadataFilters, expected: list[str]
) -> None:
    assert _chroma_ids(store, filters) == expected
    rows = {node_id: {**meta, "text": text} for node_id, (text, meta) in ROWS.items()}
    core = build_metadata_filter_fn(lambda node_id: rows[node_id], filters)
    assert sorted(node_id for node_id in ROWS if core(node_id)) == expected


@pytest.mark.parametrize(("name", "filters", "expected"), NESTED, ids=[c[0] for c in NESTED])
def test_nested_filter_results(
    store: ChromaStore, name: str, filters: MetadataFilters, expected: list[str]
) -> None:
    assert _chroma_ids(store, filters) == expected


def test_filters_apply_to_queries_deletes_and_doc_ids(store: ChromaStore) -> None:
    query = VectorStoreQuery(
        query_embedding=[1.0, 0.0],
        similarity_top_k=10,
        filters=fs(f("text", "quick", Op.TEXT_MATCH_INSENSITIVE)),
    )
    assert sorted(store.query(query).ids or []) == ["n1", "n3"]
    query.doc_ids = ["d0"]  # n1 (i=0), n3 (i=2), n5 (i=4) belong to d0
    assert sorted(store.query(query).ids or []) == ["n1", "n3"]
    query.doc_ids = ["d1"]
    assert store.query(query).ids == []
    assert _chroma_ids(store, fs(f("doc_id", "d1"))) == ["n2", "n4"]


@pytest.mark.parametrize(
    ("name", "filters", "message"), UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED]
)
def test_unsupported_filters_raise_before_reaching_chroma(
    store: ChromaStore, name: str, filters: MetadataFilters, message: str
) -> None:
    with pytest.raises(ValueError) as info:
        store.get_nodes(filters=filters)
    assert message in str(info.value)
    with pytest.raises(ValueError):
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0], filters=filters))


def test_presence_filters_on_rows_that_carry_only_package_keys(tmp_path: Path) -> None:
    """A row whose only metadata is the package's own (no lige_keys at all) has no user key:
    IS_EMPTY matches it, "has the key" does not, as for LlamaIndex."""
    with ChromaStore("presence", path=str(tmp_path)) as store:
        store.add(
            [
                TextNode(id_="bare", text="t", metadata={"lige_hash": "h1"}, embedding=[1.0, 0.0]),
                TextNode(
                    id_="tagged",
                    text="t",
                    metadata={"author": "x", "lige_hash": "h2"},
                    embedding=[0.0, 1.0],
                ),
            ]
        )
        assert "lige_keys" not in (store.collection.get(ids=["bare"])["metadatas"] or [{}])[0]
        assert _chroma_ids(store, fs(f("author", None, Op.IS_EMPTY))) == ["bare"]
        assert _chroma_ids(store, fs(f("author", None, Op.IS_EMPTY), cond=NOT)) == ["tagged"]
        assert _chroma_ids(store, fs(f("lige_hash", "h1"))) == ["bare"]
