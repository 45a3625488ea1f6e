"""Pure planning for :func:`ingest`: ids, content hashes, what to embed, cost estimates.

    node_id_for("guides/setup.md", 3)                 # -> "guides/setup.md#3"
    h = node_hash(spec, metadata, fp_hash)            # -> "<embed part>.<metadata part>"
    plan = plan_nodes(new_nodes, stored_index)        # embed / skip / reuse / empty / stale

Nothing here does I/O (:class:`SeenIds`, which spills to disk, lives in :mod:`.seen`). Ids
are positional (``doc_id#chunk``) so they are stable across runs and readable in failure
reports; whether a chunk must be paid for again is decided by its
hash, never by its id:

* the **embed part** covers exactly what the API would see (text with EMBED metadata,
  title, task type) plus the embedding fingerprint: equal embed parts mean equal vectors;
* the **metadata part** covers the node's stored metadata, so a metadata-only change is
  written again (with the stored vector, at no API cost) instead of being left stale.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llama_index_gemini_embed._models import ModelSpec
from llama_index_gemini_embed._packing import Item, pack_batches
from llama_index_gemini_embed._tasks import wire_text
from llama_index_gemini_embed._tokens import estimate_tokens

from .seen import SeenIds  # re-exported: it lived here (the one part of planning with I/O)

__all__ = [
    "FP_KEY",
    "HASH_KEY",
    "RESERVED_PREFIX",
    "NodePlan",
    "PlannedNode",
    "RequestEstimate",
    "SeenIds",
    "SpecLike",
    "content_hash",
    "doc_id_for_path",
    "estimate_requests",
    "estimate_seconds",
    "fingerprint_hash",
    "markdown_title",
    "metadata_hash",
    "node_hash",
    "node_id_for",
    "parse_front_matter",
    "plan_nodes",
    "split_hash",
]

RESERVED_PREFIX = "lige_"
HASH_KEY = "lige_hash"
FP_KEY = "lige_fp"


class SpecLike(Protocol):
    """What the planner reads of one item to embed (the engine's ``TextSpec`` has it).

    A protocol rather than the engine's class: planning stays pure, importing neither the
    embedding engine nor the SDK.
    """

    @property
    def text(self) -> str: ...

    @property
    def task_type(self) -> str: ...

    @property
    def title(self) -> str | None: ...


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_FM_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)\s*:\s*(.*?)\s*$")


# ----------------------------------------------------------------------------- ids


def node_id_for(doc_id: str, index: int) -> str:
    """The stable id of chunk ``index`` of document ``doc_id``."""
    return f"{doc_id}#{index}"


def doc_id_for_path(relative_parts: Sequence[str]) -> str:
    """A document id from a path relative to the ingest root: POSIX separators, no ``./``."""
    parts = [part for part in relative_parts if part not in ("", ".")]
    if not parts:
        raise ValueError("a document path relative to its root must not be empty")
    return "/".join(parts)


# ----------------------------------------------------------------------------- hashes


def _digest(payload: object, length: int) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def fingerprint_hash(fingerprint: Mapping[str, Any]) -> str:
    """A short hash of an embedding fingerprint (part of every chunk's content hash).

    Stores written by 0.1.0 also have it per row as ``lige_fp`` (``FP_KEY``); it is no
    longer written (one metadata key less per row: issue 14) and was never read.
    """
    return _digest(dict(fingerprint), 16)


def content_hash(spec: SpecLike, fp_hash: str, media: str | None = None) -> str:
    """Hash of what the API would embed (text, title, task, media) under one fingerprint.

    ``media`` is the hash of the media bytes embedded with the text (None for text only,
    which keeps the hashes of text chunks what they always were).
    """
    parts = [fp_hash, spec.task_type, spec.title or "", spec.text]
    return _digest([*parts, media] if media else parts, 32)


def metadata_hash(metadata: Mapping[str, Any]) -> str:
    """Hash of a node's stored metadata, ignoring the package's ``lige_`` keys."""
    visible = {k: v for k, v in metadata.items() if not k.startswith(RESERVED_PREFIX)}
    return _digest(visible, 16)


def node_hash(
    spec: SpecLike, metadata: Mapping[str, Any], fp_hash: str, media: str | None = None
) -> str:
    """The ``lige_hash`` stored with a node: ``"<content hash>.<metadata hash>"``."""
    return f"{content_hash(spec, fp_hash, media)}.{metadata_hash(metadata)}"


def split_hash(value: str | None) -> tuple[str | None, str | None]:
    """``(content part, metadata part)`` of a stored ``lige_hash`` (None parts if absent)."""
    if not value:
        return None, None
    content, _, meta = value.partition(".")
    return content or None, meta or None


# ----------------------------------------------------------------------------- documents


def parse_front_matter(text: str) -> tuple[dict[str, str | list[str]], str]:
    """Split simple ``---`` front matter (``key: value`` lines) from a Markdown text.

    >>> parse_front_matter("---\\ncategory: sync\\ntags: [a, b]\\n---\\n# Hi")
    ({'category': 'sync', 'tags': ['a', 'b']}, '# Hi')

    Only flat ``key: value`` lines are read (quotes stripped, ``[a, b]`` lists); anything
    else (nested YAML) leaves the text unchanged, so nothing is silently mangled.
    """
    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, text
    metadata: dict[str, str | list[str]] = {}
    for line in match.group(1).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parsed = _FM_LINE.match(line)
        if parsed is None:
            return {}, text
        key, raw = parsed.group(1), parsed.group(2)
        if raw.startswith("[") and raw.endswith("]"):
            items = [_unquote(v) for v in raw[1:-1].split(",") if v.strip()]
            if items:
                metadata[key] = items
        elif raw:
            metadata[key] = _unquote(raw)
    return metadata, text[match.end() :]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def markdown_title(text: str) -> str | None:
    """The first ``# Heading`` if it is among the first non-empty lines, else None."""
    for line in text.splitlines()[:20]:
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("# "):
            return stripped[2:].strip() or None
        return None
    return None


# ----------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class PlannedNode:
    """One chunk as the planner sees it: ``hash`` is None for an empty chunk."""

    node_id: str
    doc_id: str
    hash: str | None


@dataclass
class NodePlan:
    """What to do with one window of chunks.

    ``reuse`` maps a node id to the stored node whose vector it can take (same content
    hash: only metadata changed, or the chunk moved within its document).
    """

    embed: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    reuse: dict[str, str] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)


def plan_nodes(
    nodes: Iterable[PlannedNode], stored: Mapping[str, Mapping[str, str | None]]
) -> NodePlan:
    """Decide, for each chunk, whether to embed, skip, reuse a stored vector, or drop it.

    ``stored`` is the store's index for these documents: ``{doc_id: {node_id: lige_hash}}``.
    Stale ids are stored chunks of these documents that the new chunking no longer has.
    """
    plan = NodePlan()
    by_content: dict[str, dict[str, str]] = {}
    for doc_id, entries in stored.items():
        lookup = by_content.setdefault(doc_id, {})
        for node_id, value in sorted(entries.items()):
            content, _ = split_hash(value)
            if content is not None:
                lookup.setdefault(content, node_id)
    keep: dict[str, set[str]] = {}
    for node in nodes:
        if node.hash is None:
            plan.empty.append(node.node_id)
            continue
        keep.setdefault(node.doc_id, set()).add(node.node_id)
        old = stored.get(node.doc_id, {})
        current = old.get(node.node_id)
        if current == node.hash:
            plan.skip.append(node.node_id)
            continue
        content, _ = split_hash(node.hash)
        source = None
        if content is not None:
            if split_hash(current)[0] == content:
                source = node.node_id
            else:
                source = by_content.get(node.doc_id, {}).get(content)
        if source is not None:
            plan.reuse[node.node_id] = source
        else:
            plan.embed.append(node.node_id)
    for doc_id, entries in stored.items():
        kept = keep.get(doc_id, set())
        plan.stale.extend(node_id for node_id in entries if node_id not in kept)
    return plan


# ----------------------------------------------------------------------------- estimates


@dataclass
class RequestEstimate:
    """Running totals of what embedding a stream of texts will send."""

    items: int = 0
    tokens: int = 0
    requests: int = 0


def estimate_requests(
    specs: Iterable[SpecLike],
    model: ModelSpec,
    *,
    max_items: int,
    max_tokens: int | None,
    into: RequestEstimate | None = None,
    per_item_titles: bool = False,
    media_tokens: Callable[[SpecLike], int] | None = None,
) -> RequestEstimate:
    """Count items, estimated tokens and requests exactly as the engine would pack them.

    ``per_item_titles``: the engine's ``EngineConfig.per_item_titles`` (distinct titles
    share requests). ``media_tokens``: a spec's media tokens (images, PDF pages, seconds
    of audio/video at Google's rates); a media-only item sends no text.
    """
    estimate = into or RequestEstimate()

    def items() -> Iterable[Item]:
        for index, spec in enumerate(specs):
            text = wire_text(
                spec.text, spec.task_type, spec.title, prefixes=model.uses_task_prefixes
            )
            media = media_tokens(spec) if media_tokens is not None else 0
            if media and not spec.text.strip():
                tokens = media
            else:
                tokens = min(estimate_tokens(text), model.max_input_tokens) + media
            estimate.items += 1
            estimate.tokens += tokens
            if model.uses_task_prefixes:
                yield Item(index, text, None, None, tokens)
            else:
                title = spec.title if spec.task_type == "RETRIEVAL_DOCUMENT" else None
                yield Item(index, text, spec.task_type, title or None, tokens)

    for _ in pack_batches(
        items(), max_items=max_items, max_tokens=max_tokens, per_item_titles=per_item_titles
    ):
        estimate.requests += 1
    return estimate


def estimate_seconds(
    items: int,
    tokens: int,
    *,
    items_per_minute: int | None,
    tokens_per_minute: int | None,
    window_seconds: float = 60.0,
) -> float | None:
    """Wall time the per-minute quotas impose on ``items``/``tokens`` (None: no quota set).

    The first window's budget is available at once, so the estimate is the number of
    further windows needed: ``(ceil(max(items/ipm, tokens/tpm)) - 1) * window``, at least 0.
    """
    ratios: list[float] = []
    if items_per_minute:
        ratios.append(items / items_per_minute)
    if tokens_per_minute:
        ratios.append(tokens / tokens_per_minute)
    if not ratios:
        return None
    windows = max(ratios)
    return max(0.0, (math.ceil(windows) - 1) * window_seconds) if windows > 0 else 0.0
