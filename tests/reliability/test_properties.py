"""Properties (hypothesis): the batch packer, metadata round trips, and filter translation
compared with a pure-Python evaluation of LlamaIndex's filters on a real Chroma collection.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import chromadb
import pytest
from chromadb.config import Settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn

from llama_index_gemini_embed import ChromaStore
from llama_index_gemini_embed._packing import Item, pack_batches
from llama_index_gemini_embed._store.filters import translate_filters
from llama_index_gemini_embed._store.records import (
    INTERNAL_KEYS,
    decode_metadata,
    decode_node,
    encode_metadata,
    encode_node,
)

#: Examples per property on a real collection; LIGE_PROPERTY_EXAMPLES=2000 for a deep run.
EXAMPLES = int(os.environ.get("LIGE_PROPERTY_EXAMPLES", "80"))
FAST = settings(max_examples=max(100, EXAMPLES), deadline=None)
CHROMA = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# ----------------------------------------------------------------------------- packer

items_strategy = st.lists(
    st.tuples(
        st.sampled_from([None, "RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY"]),
        st.sampled_from([None, "Title A", "Title B"]),
        st.integers(min_value=1, max_value=60),
    ),
    max_size=120,
)


class Counting:
    """An iterator that counts how many items the packer has pulled."""

    def __init__(self, items: list[Item]) -> None:
        self.items = items
        self.pulled = 0

    def __iter__(self) -> Iterator[Item]:
        for item in self.items:
            self.pulled += 1
            yield item


@FAST
@given(
    raw=items_strategy,
    max_items=st.integers(min_value=1, max_value=12),
    max_tokens=st.one_of(st.none(), st.integers(min_value=1, max_value=200)),
    max_pending=st.one_of(st.none(), st.integers(min_value=1, max_value=30)),
)
def test_pack_batches_respects_limits_and_keeps_every_text_once_in_order(
    raw: list[tuple[str | None, str | None, int]],
    max_items: int,
    max_tokens: int | None,
    max_pending: int | None,
) -> None:
    items = [
        Item(i, f"text {i}", task, title, tokens) for i, (task, title, tokens) in enumerate(raw)
    ]
    source = Counting(items)
    batches = []
    emitted = 0
    pending_limit = max_pending if max_pending is not None else 4 * max_items
    for batch in pack_batches(
        source, max_items=max_items, max_tokens=max_tokens, max_pending=max_pending
    ):
        emitted += len(batch.items)
        # Streaming: never more than the pending bound (+ the item that triggered the flush
        # and one full group) read ahead of what was emitted.
        assert source.pulled - emitted <= pending_limit + max_items
        batches.append(batch)

    for batch in batches:
        assert 1 <= len(batch.items) <= max_items
        if max_tokens is not None and len(batch.items) > 1:
            assert batch.tokens <= max_tokens  # only a lone over-budget item may exceed it
        assert {(i.task_type, i.title) for i in batch.items} == {(batch.task_type, batch.title)}

    flat = [item for batch in batches for item in batch.items]
    assert sorted(i.index for i in flat) == list(range(len(items)))  # each exactly once
    assert sorted(flat, key=lambda i: i.index) == items  # order restored by index
    for key in {(i.task_type, i.title) for i in items}:  # within a config, input order
        group = [i.index for i in flat if (i.task_type, i.title) == key]
        assert group == sorted(group)


# ----------------------------------------------------------------------------- metadata

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=5), inner, max_size=3),
    ),
    max_leaves=8,
)
metadata_keys = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["", "#x", "$and", "chroma:document", "lige_hash", *sorted(INTERNAL_KEYS)]),
)
metadata_strategy = st.dictionaries(metadata_keys, values, max_size=6)


def same(a: Any, b: Any) -> bool:
    """Equal including types (True is not 1, 1.0 is not 1), NaN-free; -0.0 == 0.0 allowed."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b or (math.isinf(a) and a == b)
    return bool(a == b)


def chroma_value_ok(value: Any) -> bool:
    """What Chroma accepts as a metadata value: a scalar or a non-empty one-type list."""
    if isinstance(value, list):
        return bool(value) and len({type(v) for v in value}) == 1 and chroma_value_ok(value[0])
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | bool)


@FAST
@given(metadata=metadata_strategy)
def test_metadata_encoding_round_trips_exactly(metadata: dict[str, Any]) -> None:
    encoded = encode_metadata(metadata)
    json.dumps(encoded)  # plain JSON types only
    for key, value in encoded.items():
        assert isinstance(key, str) and key
        assert chroma_value_ok(value), (key, value)
    assert same(decode_metadata(encoded), metadata)


@pytest.fixture(scope="module")
def ephemeral() -> Iterator[ChromaStore]:
    """A real (in-memory) Chroma collection: hypothesis examples rewrite its rows."""
    client = chromadb.EphemeralClient(Settings(anonymized_telemetry=False))
    name = f"props-{uuid.uuid4().hex[:8]}"
    with ChromaStore(name, client=client) as store:
        yield store
        client.delete_collection(name)


@CHROMA
@given(metadata=metadata_strategy, text=st.text(max_size=30))
def test_nodes_round_trip_through_a_real_collection(
    ephemeral: ChromaStore, metadata: dict[str, Any], text: str
) -> None:
    node = TextNode(
        id_="n1",
        text=text,
        metadata=metadata,
        embedding=[0.6, 0.8],
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="doc-1")},
    )
    record = encode_node(node)
    assert same(decode_node(record.id, record.document, record.metadata).metadata, metadata)
    ephemeral.clear()
    ephemeral.add([node])
    [back] = ephemeral.get_nodes(node_ids=["n1"], include_embeddings=True)
    assert same(back.metadata, metadata)
    assert back.get_content() == text and back.ref_doc_id == "doc-1"
    assert back.embedding == pytest.approx([0.6, 0.8])


# ----------------------------------------------------------------------------- filters

WORDS = ["Alpha", "beta", "gamma", "Delta"]
TAGS = ["x", "y", "z"]
MISSING = object()

row_strategy = st.fixed_dictionaries(
    {
        "a": st.one_of(st.just(MISSING), st.none(), st.integers(-2, 2)),
        "b": st.one_of(st.just(MISSING), st.none(), st.sampled_from(["x", "y", "xy", ""])),
        "c": st.one_of(st.just(MISSING), st.sampled_from([-1, 0, 2, -1.5, 0.0, 1.5, 2.5])),
        "tags": st.one_of(
            st.just(MISSING), st.just([]), st.lists(st.sampled_from(TAGS), min_size=1, max_size=3)
        ),
        "text": st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
    }
)

ints = st.integers(-2, 2)
numbers = st.one_of(ints, st.sampled_from([-1.5, 0.0, 1.5, 2.0, 2.5]))
strings = st.sampled_from(["x", "y", "xy", ""])
Op = FilterOperator


def leaf(key: str, value: Any, op: FilterOperator) -> MetadataFilter:
    return MetadataFilter(key=key, value=value, operator=op)


leaves = st.one_of(
    st.builds(leaf, st.just("a"), ints, st.sampled_from([Op.EQ, Op.NE])),
    st.builds(leaf, st.just("b"), strings, st.sampled_from([Op.EQ, Op.NE])),
    st.builds(leaf, st.just("c"), numbers, st.sampled_from([Op.EQ, Op.NE])),
    st.builds(
        leaf,
        st.sampled_from(["a", "c"]),
        numbers,
        st.sampled_from([Op.GT, Op.GTE, Op.LT, Op.LTE]),
    ),
    st.builds(leaf, st.just("a"), st.lists(ints, max_size=3), st.sampled_from([Op.IN, Op.NIN])),
    st.builds(leaf, st.just("b"), st.lists(strings, max_size=3), st.sampled_from([Op.IN, Op.NIN])),
    st.builds(leaf, st.just("tags"), st.sampled_from(TAGS), st.just(Op.CONTAINS)),
    st.builds(leaf, st.just("tags"), st.lists(st.sampled_from(TAGS), max_size=3), st.just(Op.ANY)),
    # ALL with an empty list is left out: LlamaIndex matches every row whose value is not
    # None, "" and [] included; Chroma cannot see an empty list, so ChromaStore matches rows
    # with a non-empty value (documented in _store_filters).
    st.builds(
        leaf,
        st.just("tags"),
        st.lists(st.sampled_from(TAGS), min_size=1, max_size=3),
        st.just(Op.ALL),
    ),
    st.builds(leaf, st.sampled_from(["a", "b", "c", "tags"]), st.none(), st.just(Op.IS_EMPTY)),
    st.builds(leaf, st.just("text"), st.sampled_from(WORDS), st.just(Op.TEXT_MATCH)),
    st.builds(
        leaf,
        st.just("text"),
        st.sampled_from(["alpha", "BETA", "delta", "mm"]),
        st.just(Op.TEXT_MATCH_INSENSITIVE),
    ),
)
conditions = st.sampled_from([FilterCondition.AND, FilterCondition.OR, FilterCondition.NOT])
filters_strategy = st.recursive(
    st.builds(
        lambda fs, c: MetadataFilters(filters=fs, condition=c),
        st.lists(leaves, min_size=1, max_size=3),
        conditions,
    ),
    lambda inner: st.builds(
        lambda fs, c: MetadataFilters(filters=fs, condition=c),
        st.lists(st.one_of(leaves, inner), min_size=1, max_size=3),
        conditions,
    ),
    max_leaves=6,
)


def evaluate(node: MetadataFilter | MetadataFilters, row: Mapping[str, Any]) -> bool:
    """LlamaIndex's own semantics: each leaf by core's ``build_metadata_filter_fn`` (as
    SimpleVectorStore evaluates it), combined by AND / OR / NOT (= none matches) at every
    level of nesting (core only evaluates one level)."""
    if isinstance(node, MetadataFilter):
        return build_metadata_filter_fn(lambda _: row, MetadataFilters(filters=[node]))("row")
    if not node.filters:
        return True
    results = [evaluate(child, row) for child in node.filters]
    condition = node.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return all(results)
    if condition == FilterCondition.OR:
        return any(results)
    return not any(results)


def load(store: ChromaStore, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Replace the collection's rows; returns what LlamaIndex sees for each node id."""
    store.clear()
    nodes, views = [], {}
    for i, row in enumerate(rows):
        metadata = {k: v for k, v in row.items() if k != "text" and v is not MISSING}
        nodes.append(
            TextNode(id_=f"r{i}", text=row["text"], metadata=metadata, embedding=[1.0, float(i)])
        )
        views[f"r{i}"] = {**metadata, "text": row["text"]}
    store.add(nodes)
    return views


@CHROMA
@given(
    rows=st.lists(row_strategy, min_size=1, max_size=8),
    queries=st.lists(filters_strategy, min_size=1, max_size=4),
)
def test_filter_translation_matches_llamaindex_semantics_on_real_chroma(
    ephemeral: ChromaStore, rows: list[dict[str, Any]], queries: list[MetadataFilters]
) -> None:
    views = load(ephemeral, rows)
    for filters in queries:
        try:
            translate_filters(filters)
        except ValueError as error:
            # Only case-insensitive matching mixed with metadata under OR is refused.
            assert "TEXT_MATCH_INSENSITIVE" in str(error)
            continue
        expected = sorted(i for i, view in views.items() if evaluate(filters, view))
        got = sorted(node.node_id for node in ephemeral.get_nodes(filters=filters))
        assert got == expected, filters


MIXED = [-3, -2, -1, 0, 1, 2, 3, -2.5, -1.5, -1.0, 0.0, 0.5, 1.5, 2.0, 2.5]


@pytest.mark.parametrize("value", [-2.5, -1.5, -1.0, -1, 0, 0.5, 1.5, 2, 2.0, 2.5])
@pytest.mark.parametrize(
    "op", [Op.EQ, Op.NE, Op.GT, Op.GTE, Op.LT, Op.LTE], ids=lambda op: str(op.name)
)
@pytest.mark.parametrize("negate", [False, True], ids=["plain", "not"])
def test_fractional_filter_values_compare_exactly_with_int_rows(
    ephemeral: ChromaStore, value: float, op: FilterOperator, negate: bool
) -> None:
    """Chroma alone says 1 == 1.5 and 2 >= 2.5 (it truncates the filter value for int
    rows); through ChromaStore, int and float rows answer as in Python."""
    rows = [{"c": v, "text": "t"} for v in MIXED] + [{"c": MISSING, "text": "t"}]
    views = load(ephemeral, rows)
    condition = FilterCondition.NOT if negate else FilterCondition.AND
    filters = MetadataFilters(filters=[leaf("c", value, op)], condition=condition)
    expected = sorted(i for i, view in views.items() if evaluate(filters, view))
    assert sorted(n.node_id for n in ephemeral.get_nodes(filters=filters)) == expected


@pytest.mark.parametrize("values", [[-1.5, 2.5], [2.0, 2.5], [1, 1.5], [0.5]])
@pytest.mark.parametrize("op", [Op.IN, Op.NIN], ids=["IN", "NIN"])
def test_fractional_values_in_membership_filters(
    ephemeral: ChromaStore, values: list[Any], op: FilterOperator
) -> None:
    rows = [{"c": v, "text": "t"} for v in MIXED] + [{"c": MISSING, "text": "t"}]
    views = load(ephemeral, rows)
    filters = MetadataFilters.model_construct(
        filters=[MetadataFilter.model_construct(key="c", value=values, operator=op)],
        condition=FilterCondition.AND,
    )
    expected = sorted(i for i, view in views.items() if evaluate(filters, view))
    assert sorted(n.node_id for n in ephemeral.get_nodes(filters=filters)) == expected


@pytest.mark.parametrize(
    "value",
    [1e-26, 3e23, 0.00021659939713061338, 3857715177957194.0, -8.58334480867075e-12, 0.1 + 0.2],
)
def test_floats_chroma_would_round_come_back_exactly(ephemeral: ChromaStore, value: float) -> None:
    """Chroma parses metadata floats with a fast, not correctly rounded algorithm (1e-26
    comes back as 9.999999999999999e-27); such values are kept exactly in lige_meta too."""
    node = TextNode(
        id_="f", text="t", metadata={"v": value, "vs": [value, 1.5]}, embedding=[1.0, 0.0]
    )
    ephemeral.clear()
    ephemeral.add([node])
    [back] = ephemeral.get_nodes(node_ids=["f"])
    assert back.metadata == {"v": value, "vs": [value, 1.5]}
    assert type(back.metadata["v"]) is float
    # Filters compare with the native copy, parsed the same way as the filter value, so
    # equality on the exact value still finds it.
    same_value = MetadataFilters(filters=[MetadataFilter(key="v", value=value)])
    assert [n.node_id for n in ephemeral.get_nodes(filters=same_value)] == ["f"]
