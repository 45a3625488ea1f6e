"""Pack texts into API requests that never exceed the backend's limits (pure).

    >>> items = [Item(i, "t", None, tokens=10) for i in range(250)]
    >>> [len(b.items) for b in pack_batches(items, max_items=100, max_tokens=None)]
    [100, 100, 50]

Items are grouped by task type, and by title too unless ``per_item_titles`` (the REST
request carries a title per item; the SDK's one-config call needs grouping otherwise);
within a group, order is kept. Every item lands in exactly one batch,
and callers restore the original order through ``Item.index``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["Batch", "Item", "pack_batches"]


@dataclass(frozen=True)
class Item:
    """One text to embed: ``index`` is its position in the caller's input."""

    index: int
    text: str
    task_type: str | None
    title: str | None = None
    tokens: int = 1
    chunk: str | None = None  # the caller's text (before prefixes), reported in events


@dataclass(frozen=True)
class Batch:
    """Items that share one request config (``title`` None: each item has its own)."""

    task_type: str | None
    title: str | None
    items: tuple[Item, ...]

    @property
    def tokens(self) -> int:
        return sum(item.tokens for item in self.items)


def pack_batches(
    items: Iterable[Item],
    *,
    max_items: int,
    max_tokens: int | None,
    max_pending: int | None = None,
    per_item_titles: bool = False,
) -> Iterator[Batch]:
    """Yield batches of at most ``max_items`` items and ``max_tokens`` estimated tokens.

    Streams: a group is emitted as soon as it is full, and when more than ``max_pending``
    items wait across groups (default ``4 * max_items``) the oldest group is flushed, so
    memory stays bounded for any input. An item larger than ``max_tokens`` on its own is
    sent alone (the API truncates it; the caller reports it).
    """
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    limit_pending = max_pending if max_pending is not None else 4 * max_items
    groups: dict[tuple[str | None, str | None], list[Item]] = {}
    group_tokens: dict[tuple[str | None, str | None], int] = {}
    pending = 0

    def flush(key: tuple[str | None, str | None]) -> Batch:
        nonlocal pending
        members = groups.pop(key)
        group_tokens.pop(key)
        pending -= len(members)
        return Batch(task_type=key[0], title=key[1], items=tuple(members))

    for item in items:
        key = (item.task_type, None if per_item_titles else item.title)
        current = groups.get(key)
        if (
            current is not None
            and max_tokens is not None
            and group_tokens[key] + item.tokens > max_tokens
        ):
            yield flush(key)
            current = None
        if current is None:
            current = groups[key] = []
            group_tokens[key] = 0
        current.append(item)
        group_tokens[key] += item.tokens
        pending += 1
        if len(current) >= max_items:
            yield flush(key)
        elif pending > limit_pending:
            yield flush(next(iter(groups)))
    while groups:
        yield flush(next(iter(groups)))
