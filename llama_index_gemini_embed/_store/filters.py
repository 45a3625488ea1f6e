"""LlamaIndex ``MetadataFilters`` -> Chroma ``where`` / ``where_document``; no I/O.

f = translate_filters(MetadataFilters(filters=[MetadataFilter(key="year", value=2020,
                                                             operator=FilterOperator.GT)]))
f.where            # {"year": {"$gt": 2020}}
f.where_document   # None
f.matches_nothing  # True when the filter can match no row (e.g. IN []): skip the query

Every :class:`FilterOperator` is translated:

==========================  =====================================================
EQ, NE, GT, GTE, LT, LTE    ``$eq`` ... ``$lte`` (GT..LTE take numbers only)
IN, NIN                     ``$in`` / ``$nin``
CONTAINS                    ``$contains`` on a list-valued key
ANY / ALL                   OR / AND of ``$contains`` (ALL [] = the key has a value)
TEXT_MATCH                  ``{"#document": {"$contains": v}}`` (the node text)
TEXT_MATCH_INSENSITIVE      ``where_document`` ``$regex`` ``(?i)...`` (the node text)
IS_EMPTY                    key absent, None, ``""`` or ``[]`` (via ``lige_keys``)
==========================  =====================================================

Conditions AND / OR / NOT nest freely; NOT means "none of the filters match" (as in
LlamaIndex's SimpleVectorStore) and is pushed down to the leaves, so that a negated
comparison also matches rows where the key is missing, exactly like the core store.
TEXT_MATCH and TEXT_MATCH_INSENSITIVE read the node text, so their key must be one of
``"text"``, ``"document"`` or ``"#document"``; on any other key they are refused (Chroma
has no substring test on metadata strings) with the alternatives: EQ/IN on whole values,
or a list-valued key with CONTAINS/ANY. Chroma keeps regexes out of ``where``,
so TEXT_MATCH_INSENSITIVE cannot sit under OR next to metadata filters; that, and
anything else Chroma cannot express, raises ValueError naming the operator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from .records import DOC_ID_KEY, KEYS_KEY, PACKAGE_KEY_PREFIX

__all__ = ["DOCUMENT_KEYS", "ChromaFilter", "rust_regex_escape", "translate_filters"]

#: Filter keys that mean "the node text" for TEXT_MATCH / TEXT_MATCH_INSENSITIVE.
DOCUMENT_KEYS = frozenset({"text", "document", "#document"})

Where = dict[str, Any]


@dataclass(frozen=True)
class ChromaFilter:
    """What to pass to Chroma: ``where``, ``where_document``, or nothing can match."""

    where: Where | None = None
    where_document: Where | None = None
    matches_nothing: bool = False


# ------------------------------------------------------------------ intermediate tree


@dataclass(frozen=True)
class _Const:
    value: bool


@dataclass(frozen=True)
class _W:
    """A ``where`` clause; ``doc`` is the same test as a ``where_document`` clause, if any."""

    expr: Where
    doc: Where | None = None


@dataclass(frozen=True)
class _D:
    """A clause only ``where_document`` can express (regexes)."""

    expr: Where


@dataclass(frozen=True)
class _And:
    items: tuple[_Expr, ...]


@dataclass(frozen=True)
class _Or:
    items: tuple[_Expr, ...]


_Expr = _Const | _W | _D | _And | _Or
_TRUE, _FALSE = _Const(True), _Const(False)


def _and(items: Sequence[_Expr]) -> _Expr:
    """AND, simplified: a FALSE item decides it, TRUE items drop out, nested ANDs flatten."""
    flat: list[_Expr] = []
    for item in items:
        if item == _FALSE:
            return _FALSE
        if isinstance(item, _And):
            flat.extend(item.items)
        elif item != _TRUE:
            flat.append(item)
    return _TRUE if not flat else flat[0] if len(flat) == 1 else _And(tuple(flat))


def _or(items: Sequence[_Expr]) -> _Expr:
    """OR, simplified: a TRUE item decides it, FALSE items drop out, nested ORs flatten."""
    flat: list[_Expr] = []
    for item in items:
        if item == _TRUE:
            return _TRUE
        if isinstance(item, _Or):
            flat.extend(item.items)
        elif item != _FALSE:
            flat.append(item)
    return _FALSE if not flat else flat[0] if len(flat) == 1 else _Or(tuple(flat))


# ------------------------------------------------------------------ leaves

_NEGATE = {
    "$eq": "$ne",
    "$ne": "$eq",
    "$gt": "$lte",
    "$gte": "$lt",
    "$lt": "$gte",
    "$lte": "$gt",
    "$in": "$nin",
    "$nin": "$in",
    "$contains": "$not_contains",
    "$not_contains": "$contains",
    "$regex": "$not_regex",
    "$not_regex": "$regex",
}
_COMPARISONS = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
}
_REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$#&-~")


def rust_regex_escape(text: str) -> str:
    """Escape ``text`` for Chroma's (Rust) regex engine: a literal match."""
    return "".join(f"\\{ch}" if ch in _REGEX_SPECIAL else ch for ch in text)


def _op(op: str, negate: bool) -> str:
    return _NEGATE[op] if negate else op


def _name(op: FilterOperator | str) -> str:
    return f"FilterOperator.{op.name}" if isinstance(op, FilterOperator) else repr(op)


def _missing(key: str) -> _Expr:
    """Rows where ``key`` has no value: ``lige_keys`` lists the keys that have one."""
    return _W({KEYS_KEY: {"$not_contains": key}})


def _scalar(f: MetadataFilter) -> str | int | float:
    value = f.value
    if isinstance(value, list) or value is None:
        hint = " use FilterOperator.IN for a list" if f.operator == FilterOperator.EQ else ""
        hint = " use ANY or ALL for a list" if f.operator == FilterOperator.CONTAINS else hint
        raise ValueError(
            f"{_name(f.operator)} on key {f.key!r} needs a single str/int/float value, "
            f"got {value!r};{hint or ' pass one value'}."
        )
    return value


def _values(f: MetadataFilter) -> list[str | int | float]:
    value = f.value
    if value is None:
        raise ValueError(f"{_name(f.operator)} on key {f.key!r} needs a list of values, got None.")
    return list(value) if isinstance(value, list) else [value]


def _fractional(value: object) -> bool:
    return type(value) is float and math.isfinite(value) and not value.is_integer()


def _number_clause(key: str, op: str, value: str | int | float) -> _Expr:
    """``key op value``, right for int-valued rows too.

    Chroma compares an int metadata value with a float filter value truncated to an int:
    there, 1 == 1.5 and 2 >= 2.5 hold. For a fractional filter value, one more clause on
    the neighbouring integer (int filter values compare exactly with both int and float
    rows) makes int rows answer as LlamaIndex does; float rows are unaffected.
    """
    clause = _W({key: {op: value}})
    if not _fractional(value):
        return clause
    assert isinstance(value, float)
    low, high, truncated = math.floor(value), math.ceil(value), int(value)
    fixes: dict[str, tuple[bool, str, int]] = {
        "$eq": (True, "$ne", truncated),  # AND: an int never equals a fractional value
        "$ne": (False, "$eq", truncated),  # OR: an int always differs from it
        "$gt": (False, "$eq", high),
        "$gte": (True, "$ne", low),
        "$lt": (False, "$eq", low),
        "$lte": (True, "$ne", high),
    }
    if op not in fixes:
        return clause
    conjunction, fix_op, neighbour = fixes[op]
    fix = _W({key: {fix_op: neighbour}})
    return _and([clause, fix]) if conjunction else _or([clause, fix])


def _membership(key: str, values: list[str | int | float], negate_in: bool) -> _Expr:
    """``key IN values`` (or NOT IN): one clause per value type, Chroma wants uniform lists.

    Fractional floats would also match ints equal to their truncation (see
    :func:`_number_clause`): those ints are excluded unless they are in ``values`` too.
    """
    if not values:
        return _TRUE if negate_in else _FALSE
    # Chroma refuses $in lists that mix types: one clause per value type, ORed (IN) or
    # ANDed (NOT IN: the value is none of the strings AND none of the ints ...).
    groups: dict[type, list[str | int | float]] = {}
    for v in values:
        groups.setdefault(type(v), []).append(v)
    op = "$nin" if negate_in else "$in"
    integral = {int(v) for v in values if type(v) is int or (type(v) is float and v == int(v))}
    clauses: list[_Expr] = []
    for kind, group in groups.items():
        clause: _Expr = _W({key: {op: group}})
        spurious = sorted({int(v) for v in group if _fractional(v)} - integral)
        if kind is float and spurious:
            fix = _W({key: {"$in" if negate_in else "$nin": spurious}})
            clause = _or([clause, fix]) if negate_in else _and([clause, fix])
        clauses.append(clause)
    return _and(clauses) if negate_in else _or(clauses)


def _text(f: MetadataFilter) -> str:
    if f.key not in DOCUMENT_KEYS:
        # Chroma's where has no substring test on metadata strings ($contains only looks
        # inside lists, $regex only inside the document): refuse rather than match nothing.
        raise ValueError(
            f"{_name(f.operator)} on metadata key {f.key!r} is not supported: Chroma cannot "
            "search inside metadata values. Use FilterOperator.EQ/IN for whole values, "
            "store the words as a list and use CONTAINS/ANY, or match the node text with "
            f"one of the keys {sorted(DOCUMENT_KEYS)} (e.g. key='text')."
        )
    if not isinstance(f.value, str) or not f.value:
        raise ValueError(
            f"{_name(f.operator)} needs a non-empty string to look for, got {f.value!r}."
        )
    return f.value


def _leaf(f: MetadataFilter, negate: bool) -> _Expr:
    op, key = f.operator, f.key
    if op in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE):
        text = _text(f)
        if op == FilterOperator.TEXT_MATCH:
            cond = {_op("$contains", negate): text}
            return _W({"#document": cond}, doc=cond)
        return _D({_op("$regex", negate): f"(?i){rust_regex_escape(text)}"})
    if not key or key.startswith(("$", "#")):
        raise ValueError(
            f"{_name(op)}: filter key {key!r} is not a metadata key Chroma can filter on."
        )
    if key.startswith(PACKAGE_KEY_PREFIX) and (
        op == FilterOperator.IS_EMPTY
        or (op == FilterOperator.ALL and not _values(f))
        or (negate and op in _COMPARISONS and op not in (FilterOperator.EQ, FilterOperator.NE))
    ):
        raise ValueError(
            f"{_name(op)} on {key!r} is not supported: keys starting with "
            f"{PACKAGE_KEY_PREFIX!r} are the package's own and their presence is not recorded. "
            "Filter them with EQ/NE/IN/NIN on their values."
        )
    if op in _COMPARISONS:
        value = _scalar(f)
        chroma_op = _COMPARISONS[op]
        if op not in (FilterOperator.EQ, FilterOperator.NE) and isinstance(value, str):
            raise ValueError(
                f"{_name(op)} on key {key!r} got the string {value!r}: Chroma only orders "
                "numbers. Store the value as an int/float, or use EQ/IN."
            )
        clause = _number_clause(key, _op(chroma_op, negate), value)
        # NOT (x > 5) also holds where x is missing (LlamaIndex compares nothing), but
        # Chroma's $lte never matches a missing key: add those rows explicitly.
        if negate and op not in (FilterOperator.EQ, FilterOperator.NE):
            return _or([clause, _missing(key)])
        return clause
    if op in (FilterOperator.IN, FilterOperator.NIN):
        return _membership(key, _values(f), negate_in=(op == FilterOperator.NIN) != negate)
    if op == FilterOperator.CONTAINS:
        return _W({key: {_op("$contains", negate): _scalar(f)}})
    if op == FilterOperator.ALL and not _values(f):
        # Vacuous ALL: LlamaIndex matches rows that have the key at all.
        return _W({KEYS_KEY: {_op("$contains", negate): key}})
    if op in (FilterOperator.ANY, FilterOperator.ALL):
        clauses: list[_Expr] = [_W({key: {_op("$contains", negate): v}}) for v in _values(f)]
        # ANY = OR of contains, ALL = AND; negation swaps both (De Morgan).
        use_or = (op == FilterOperator.ANY) != negate
        return _or(clauses) if use_or else _and(clauses)
    if op == FilterOperator.IS_EMPTY:
        if key == DOC_ID_KEY:
            raise ValueError(
                f"{_name(op)} on {DOC_ID_KEY!r} is not supported: Chroma cannot test for a "
                "missing ref doc id. Filter the nodes you want by doc_id instead."
            )
        return _W({KEYS_KEY: {_op("$not_contains", negate): key}})
    raise ValueError(f"Filter operator {_name(op)} is not supported by ChromaStore.")


def _compile(node: MetadataFilter | MetadataFilters, negate: bool) -> _Expr:
    if isinstance(node, MetadataFilter):
        return _leaf(node, negate)
    if not node.filters:
        return _TRUE
    condition = node.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        children = [_compile(child, negate) for child in node.filters]
        return _or(children) if negate else _and(children)
    if condition == FilterCondition.OR:
        children = [_compile(child, negate) for child in node.filters]
        return _and(children) if negate else _or(children)
    if condition == FilterCondition.NOT:
        # NOT(a, b) = none of them match = AND(not a, not b); its negation is OR(a, b).
        children = [_compile(child, not negate) for child in node.filters]
        return _or(children) if negate else _and(children)
    raise ValueError(f"Filter condition {condition!r} is not supported by ChromaStore.")


# ------------------------------------------------------------------ to Chroma


def _join(op: str, items: list[Where]) -> Where | None:
    if not items:
        return None
    return items[0] if len(items) == 1 else {op: items}


def _as_document(expr: _Expr) -> Where | None:
    """The same test as a ``where_document`` clause, if it only looks at the text."""
    if isinstance(expr, _D):
        return expr.expr
    if isinstance(expr, _W):
        return expr.doc
    if isinstance(expr, _And | _Or):
        parts = [_as_document(item) for item in expr.items]
        if any(p is None for p in parts):
            return None
        return _join("$and" if isinstance(expr, _And) else "$or", [p for p in parts if p])
    return None


def _split(expr: _Expr) -> tuple[Where | None, Where | None]:
    """An expression -> ``(where, where_document)``, which Chroma ANDs together."""
    if isinstance(expr, _W):
        return expr.expr, None
    if isinstance(expr, _D):
        return None, expr.expr
    if isinstance(expr, _And):
        pairs = [_split(item) for item in expr.items]
        return (
            _join("$and", [w for w, _ in pairs if w is not None]),
            _join("$and", [d for _, d in pairs if d is not None]),
        )
    if isinstance(expr, _Or):
        # Chroma ANDs where with where_document, so an OR can only live entirely in one of
        # them: all-metadata ORs go to where, all-text ORs (TEXT_MATCH has a where_document
        # twin) to where_document; a regex ORed with metadata cannot be expressed.
        pairs = [_split(item) for item in expr.items]
        if all(d is None for _, d in pairs):
            return _join("$or", [w for w, _ in pairs if w is not None]), None
        docs = [_as_document(item) for item in expr.items]
        if all(d is not None for d in docs):
            return None, _join("$or", [d for d in docs if d is not None])
        raise ValueError(
            "FilterOperator.TEXT_MATCH_INSENSITIVE cannot be combined with metadata filters "
            "under OR (or under NOT with AND): Chroma applies text regexes separately from "
            "metadata filters. Use TEXT_MATCH (case-sensitive), or restructure the filters so "
            "that the case-insensitive match is ANDed with the rest."
        )
    raise AssertionError(f"unexpected filter expression {expr!r}")  # pragma: no cover


def translate_filters(
    filters: MetadataFilters | None = None,
    *,
    doc_ids: Sequence[str] | None = None,
    where: Where | None = None,
    where_document: Where | None = None,
) -> ChromaFilter:
    """Translate LlamaIndex filters (and ``doc_ids``) into Chroma's ``where`` arguments.

    Args:
        filters: LlamaIndex metadata filters, nested freely.
        doc_ids: Only rows whose ref doc id is one of these (an empty list matches nothing).
        where: A raw Chroma ``where`` clause ANDed with the rest (for power users).
        where_document: A raw Chroma ``where_document`` clause ANDed with the rest.

    Raises:
        ValueError: An operator or combination Chroma cannot express; the message names it.
    """
    parts: list[_Expr] = []
    if filters is not None:
        parts.append(_compile(filters, negate=False))
    if doc_ids is not None:
        parts.append(_membership(DOC_ID_KEY, list(doc_ids), negate_in=False))
    if where:
        parts.append(_W(where))
    if where_document:
        parts.append(_D(where_document))
    expr = _and(parts)
    if expr == _FALSE:
        return ChromaFilter(matches_nothing=True)
    if expr == _TRUE:
        return ChromaFilter()
    where_out, document_out = _split(expr)
    return ChromaFilter(where=where_out, where_document=document_out)
