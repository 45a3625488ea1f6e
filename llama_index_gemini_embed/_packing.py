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

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ._types import MediaPart

__all__ = ["Batch", "Item", "pack_batches", "truncate_to_tokens"]


@dataclass(frozen=True)
class Item:
    """One text to embed: ``index`` is its position in the caller's input."""

    index: int
    text: str
    task_type: str | None
    title: str | None = None
    tokens: int = 1
    chunk: str | None = None  # the caller's text (before prefixes), reported in events
    wire_bytes: int = 0  # this item's share of the request body, as the SDK serialises it
    media: tuple[MediaPart, ...] = ()  # gemini-embedding-2: parts embedded with the text


@dataclass(frozen=True)
class Batch:
    """Items that share one request config (``title`` None: each item has its own)."""

    task_type: str | None
    title: str | None
    items: tuple[Item, ...]

    @property
    def tokens(self) -> int:
        return sum(item.tokens for item in self.items)

    def split(self) -> tuple[Batch, Batch]:
        """The two halves of a batch of at least two items (same config)."""
        half = len(self.items) // 2
        return (
            Batch(self.task_type, self.title, self.items[:half]),
            Batch(self.task_type, self.title, self.items[half:]),
        )


def pack_batches(
    items: Iterable[Item],
    *,
    max_items: int,
    max_tokens: int | None,
    max_pending: int | None = None,
    per_item_titles: bool = False,
    max_bytes: int | None = None,
) -> Iterator[Batch]:
    """Yield batches of at most ``max_items`` items, ``max_tokens`` estimated tokens and
    ``max_bytes`` request-body bytes (``Item.wire_bytes`` summed).

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
    group_bytes: dict[tuple[str | None, str | None], int] = {}
    pending = 0

    def flush(key: tuple[str | None, str | None]) -> Batch:
        nonlocal pending
        members = groups.pop(key)
        group_tokens.pop(key)
        group_bytes.pop(key)
        pending -= len(members)
        return Batch(task_type=key[0], title=key[1], items=tuple(members))

    for item in items:
        key = (item.task_type, None if per_item_titles else item.title)
        current = groups.get(key)
        if current is not None and (
            (max_tokens is not None and group_tokens[key] + item.tokens > max_tokens)
            or (max_bytes is not None and group_bytes[key] + item.wire_bytes > max_bytes)
        ):
            yield flush(key)
            current = None
        if current is None:
            current = groups[key] = []
            group_tokens[key] = 0
            group_bytes[key] = 0
        current.append(item)
        group_tokens[key] += item.tokens
        group_bytes[key] += item.wire_bytes
        pending += 1
        if len(current) >= max_items:
            yield flush(key)
        elif pending > limit_pending:
            yield flush(next(iter(groups)))
    while groups:
        yield flush(next(iter(groups)))


def truncate_to_tokens(
    text: str, limit: int, *, render: Callable[[str], str], count: Callable[[str], int]
) -> str:
    """The longest prefix of ``text`` whose ``count(render(prefix))`` is at most ``limit``.

        >>> truncate_to_tokens("a b c d", 2, render=lambda t: t, count=lambda t: len(t.split()))
        'a b '

    ``render`` adds what is sent around the text (gemini-embedding-2's prefix); ``count``
    must not decrease as the prefix grows (our estimate does not). Binary search: about
    log2(len(text)) counts.
    """
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if count(render(text[:mid])) <= limit:
            low = mid
        else:
            high = mid - 1
    return text[:low]
