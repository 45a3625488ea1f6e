"""Request packing (`_packing`): items per request by count, tokens, task and title."""

from __future__ import annotations

import pytest

from llama_index_gemini_embed._packing import Item, pack_batches


@pytest.mark.parametrize(
    ("n", "tokens", "max_items", "max_tokens", "sizes"),
    [
        (250, 10, 100, None, [100, 100, 50]),
        (100, 10, 100, None, [100]),
        (1, 10, 100, None, [1]),
        (0, 10, 100, None, []),
        (10, 300, 100, 1000, [3, 3, 3, 1]),
        (3, 5000, 100, 1000, [1, 1, 1]),  # each alone over budget: sent alone
        (7, 1, 2, None, [2, 2, 2, 1]),
    ],
)
def test_pack_batches_sizes(n, tokens, max_items, max_tokens, sizes):
    items = [Item(i, f"t{i}", "RETRIEVAL_DOCUMENT", None, tokens) for i in range(n)]
    batches = list(pack_batches(items, max_items=max_items, max_tokens=max_tokens))
    assert [len(b.items) for b in batches] == sizes
    assert sorted(i.index for b in batches for i in b.items) == list(range(n))


def test_pack_batches_groups_by_task_and_title_and_keeps_order():
    items = [
        Item(0, "a", "RETRIEVAL_DOCUMENT", "T1"),
        Item(1, "b", "RETRIEVAL_DOCUMENT", "T2"),
        Item(2, "c", "RETRIEVAL_DOCUMENT", "T1"),
        Item(3, "d", "RETRIEVAL_QUERY", None),
    ]
    batches = list(pack_batches(items, max_items=100, max_tokens=None))
    keyed = {(b.task_type, b.title): [i.index for i in b.items] for b in batches}
    assert keyed == {
        ("RETRIEVAL_DOCUMENT", "T1"): [0, 2],
        ("RETRIEVAL_DOCUMENT", "T2"): [1],
        ("RETRIEVAL_QUERY", None): [3],
    }


def test_pack_batches_bounds_pending_items_with_many_titles():
    items = (Item(i, "x", "RETRIEVAL_DOCUMENT", f"title{i}") for i in range(10_000))
    seen = 0
    for batch in pack_batches(items, max_items=100, max_tokens=None, max_pending=50):
        seen += len(batch.items)
    assert seen == 10_000


def test_pack_batches_rejects_zero_items():
    with pytest.raises(ValueError, match="max_items"):
        list(pack_batches([], max_items=0, max_tokens=None))
