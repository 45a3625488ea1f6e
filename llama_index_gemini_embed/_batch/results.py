"""Reading a finished job's results, in whichever form the Batch API delivered them.

    results = inline_results(keys, job.dest.inlined_embed_content_responses, dimension=768)
    results = parse_results_file(keys, downloaded_bytes, dimension=768)
    results.values["doc1#0"]   # the raw vector, or the error text of a failed item
    results.tokens["doc1#0"]   # the billed tokenCount, when the API reported it

Pure: no I/O. The forms (sources in docs/gemini-api.md, "Batch API and Files API"):

* **Inline** (``inlinedResponses``): entries in request order, each with ``response``
  (``embedding.values``, ``tokenCount``) or ``error``; an entry may carry
  ``metadata.key``. Inline *requests* carry no key, so results map by ``metadata.key``
  when every entry has one of ours, else by position.
* **Results file** (JSONL): ``{"key": …, "response": {…}}``, or ``"error"``/``"status"``
  for a failed item; line order is not guaranteed. Our keys map directly; the results of
  an inline job (no keys of ours) map by an index key, else by line order.

A job may answer in the other form than it was submitted in, so both readers accept any
job's keys.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Results", "check_vector", "error_text", "inline_results", "parse_results_file"]


@dataclass
class Results:
    """A job's results: key → raw vector or error text; key → billed tokens if reported."""

    values: dict[str, list[float] | str] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)


def check_vector(values: object, dimension: int) -> list[float] | str:
    """The vector as floats, or why it cannot be used.

    >>> check_vector([1, 0], 2), check_vector([1.0], 2), check_vector(None, 2)
    ([1.0, 0.0], 'the result has 1 dimensions, expected 2', 'the result has no embedding values')
    """
    if not isinstance(values, list) or not values:
        return "the result has no embedding values"
    if len(values) != dimension:
        return f"the result has {len(values)} dimensions, expected {dimension}"
    return [float(v) for v in values]


def error_text(failure: object) -> str:
    """``"code: message"`` from an error/status object (SDK type or JSON dict).

    >>> error_text({"code": 3, "message": "bad"}), error_text("boom")
    ('3: bad', 'boom')
    """
    if isinstance(failure, dict):
        code, message = failure.get("code"), failure.get("message")
    else:
        code, message = getattr(failure, "code", None), getattr(failure, "message", None)
    if code is None and message is None:
        return str(failure)
    return f"{code}: {message}" if code is not None else str(message)


def _count(value: object) -> int | None:
    """A token count as the API spells it (an int64, i.e. a JSON string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _metadata_key(entry: object) -> str | None:
    metadata = getattr(entry, "metadata", None)
    key = metadata.get("key") if isinstance(metadata, dict) else None
    return None if key is None else str(key)


def inline_results(keys: Sequence[str], entries: Sequence[Any], *, dimension: int) -> Results:
    """Inline entries (SDK ``InlinedEmbedContentResponse``-like objects) of a job whose
    requests were ``keys``, in order."""
    out = Results()
    wanted = set(keys)
    keyed = [_metadata_key(entry) for entry in entries]
    if keyed and all(key in wanted for key in keyed):
        pairs: list[tuple[str | None, Any]] = list(zip(keyed, entries, strict=True))
    elif len(entries) == len(keys):
        pairs = list(zip(keys, entries, strict=True))
    else:
        error = (
            f"the job returned {len(entries)} results for {len(keys)} requests, so "
            "they cannot be matched by position"
        )
        out.values.update(dict.fromkeys(keys, error))
        return out
    for key, entry in pairs:
        if key is None or key in out.values:
            continue
        failure = getattr(entry, "error", None)
        if failure is not None:
            out.values[key] = error_text(failure)
            continue
        answer = getattr(entry, "response", None)
        embedding = getattr(answer, "embedding", None)
        out.values[key] = check_vector(getattr(embedding, "values", None), dimension)
        tokens = _count(getattr(answer, "token_count", None))
        if tokens is not None:
            out.tokens[key] = tokens
    return out


def parse_results_file(keys: Sequence[str], data: bytes, *, dimension: int) -> Results:
    """The JSONL results file of a job whose requests were ``keys``, in order."""
    wanted = set(keys)
    entries: list[dict[str, Any]] = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    line_keys: list[Any] = [entry.get("key") for entry in entries]
    if not any(key in wanted for key in line_keys):
        if all(isinstance(k, str) and k.isdigit() and int(k) < len(keys) for k in line_keys):
            line_keys = [keys[int(k)] for k in line_keys]
        elif len(entries) == len(keys):
            line_keys = list(keys)
    out = Results()
    for key, entry in zip(line_keys, entries, strict=True):
        if key not in wanted or key in out.values:
            continue
        failure = entry.get("error") or entry.get("status")
        if failure is not None and not entry.get("response"):
            out.values[key] = error_text(failure)
            continue
        answer = entry.get("response")
        answer = answer if isinstance(answer, dict) else entry
        embedding = answer.get("embedding")
        out.values[key] = check_vector(
            embedding.get("values") if isinstance(embedding, dict) else None, dimension
        )
        tokens = _count(answer.get("tokenCount", answer.get("token_count")))
        if tokens is not None:
            out.tokens[key] = tokens
    for key in keys:
        out.values.setdefault(key, "no line for this key in the responses file")
    return out
