"""What each ChromaStore operation asks Chroma, as generators (sans-I/O).

flow = add_flow(nodes, limits, expected_dim=None, collection="docs")
call = next(flow)                       # Call("get", {...})
call = flow.send(collection.get(**call.kwargs))   # ... until StopIteration(value)

A flow yields :class:`Call` objects (a collection method name and its keyword
arguments) and receives each call's result. ``ChromaStore`` drives the same flow with a
sync ``Collection`` or awaits an ``AsyncCollection``, so the decisions (batching,
pagination, stale-key removal, score conversion, MMR) exist once and run without I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import orjson
from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import (
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)

from llama_index_gemini_embed._errors import DimensionMismatchError, StoreError

from .filters import ChromaFilter, translate_filters
from .limits import check_dimensions, embedding_wire_bytes, plan_batches
from .records import DOC_ID_KEY, HASH_KEY, Record, decode_node, encode_node
from .scores import Space, distance_to_score, similarity_function

__all__ = [
    "Call",
    "Flow",
    "Limits",
    "QueryPlan",
    "add_flow",
    "count_flow",
    "delete_flow",
    "get_nodes_flow",
    "index_flow",
    "phantom_key_update",
    "plan_query",
    "query_flow",
    "record_wire_bytes",
    "stale_key_update",
]

T = TypeVar("T")
# "inherits" is not a collection method: the driver answers whether a record written now
# could inherit another record's list-valued metadata (see :func:`add_flow`).
Method = Literal["get", "upsert", "update", "delete", "query", "count", "inherits"]
Flow = Generator["Call", Any, T]
_GET_PAGE_INCLUDE: list[str] = []


@dataclass(frozen=True)
class Call:
    """One collection method call a flow wants made."""

    method: Method
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    """Request limits: rows per call, and bytes per HTTP write (None for local clients)."""

    max_batch: int
    payload_cap: int | None = None
    base64: bool = True

    def read_page(self, dim: int | None, embeddings: bool) -> int:
        """Rows per ``get``: responses carry vectors as JSON floats, so cap them by bytes too."""
        if self.payload_cap is None or not embeddings:
            return self.max_batch
        per_row = embedding_wire_bytes(dim or 3072, base64=False)
        return max(1, min(self.max_batch, self.payload_cap // per_row))


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ----------------------------------------------------------------------------- writes


def record_wire_bytes(record: Record, dim: int, base64: bool) -> int:
    """Bytes ``record`` adds to an HTTP upsert body (measured with the client's orjson)."""
    text = orjson.dumps([record.id, record.document, record.metadata])
    return len(text) + embedding_wire_bytes(dim, base64)


def stale_key_update(
    new: Mapping[str, Any] | None, old: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The metadata to upsert so the row ends up exactly ``new``.

    Chroma's upsert merges metadata key by key; keys of ``old`` missing from ``new`` are
    sent as None, which deletes them.
    """
    stale = {key: None for key in (old or {}) if key not in (new or {})}
    if not stale:
        return dict(new) if new else None
    return {**stale, **(new or {})}


def add_flow(
    nodes: Sequence[BaseNode],
    limits: Limits,
    expected_dim: int | None,
    collection: str,
    *,
    new_ids: Collection[str] = frozenset(),
) -> Flow[tuple[list[str], int | None]]:
    """Upsert ``nodes`` in payload-safe batches; returns ``(ids, dimension)``.

    Every node is encoded and its vector length checked before anything is written.
    Duplicate ids in one call: the last node wins. ``new_ids``: ids the caller knows are
    not stored (ingest knows them from the store's index); their old metadata is not read.

    Each row must end up with exactly its own metadata, but Chroma's upsert merges metadata
    key by key, and Chroma 1.5 hands the list-valued metadata of a deleted collection's
    records to new records that reuse their internal ids (chroma-core/chroma#7594). Per
    batch, the driver answers ``Call("inherits")``: can a row written now inherit such
    metadata? If so (or if it cannot tell: a server), the batch is read back after the
    upsert and every key it was not written with is removed (stale or inherited alike);
    if not, the old metadata of rows that may exist is read first and its stale keys are
    sent as None.
    """
    records = [encode_node(node) for node in nodes]
    ids = [record.id for record in records]
    if not records:
        return ids, expected_dim
    if expected_dim is None:
        probe = yield Call("get", {"limit": 1, "include": ["embeddings"]})
        embeddings = probe.get("embeddings")
        if embeddings is not None and len(embeddings) > 0:
            expected_dim = len(embeddings[0])
    dims = [len(record.embedding) for record in records]
    dim = check_dimensions(ids, dims, expected_dim, collection)
    assert dim is not None
    last = {record.id: i for i, record in enumerate(records)}
    unique = [record for i, record in enumerate(records) if last[record.id] == i]
    if limits.payload_cap is None:
        sizes = [0] * len(unique)
    else:
        sizes = [record_wire_bytes(record, dim, limits.base64) for record in unique]
    for start, end in plan_batches(sizes, limits.max_batch, limits.payload_cap):
        batch = unique[start:end]
        batch_ids = [record.id for record in batch]
        read_back = bool((yield Call("inherits", {})))
        old_metadata: dict[str, Any] = {}
        if not read_back:
            maybe_stored = [row_id for row_id in batch_ids if row_id not in new_ids]
            if maybe_stored:
                old = yield Call("get", {"ids": maybe_stored, "include": ["metadatas"]})
                old_metadata = dict(zip(old["ids"], old.get("metadatas") or [], strict=False))
        metadatas = [stale_key_update(r.metadata, old_metadata.get(r.id)) for r in batch]
        kwargs: dict[str, Any] = {
            "ids": batch_ids,
            "embeddings": np.asarray([r.embedding for r in batch], dtype=np.float32),
            "documents": [r.document for r in batch],
        }
        if any(m is not None for m in metadatas):
            kwargs["metadatas"] = metadatas
        yield Call("upsert", kwargs)
        if read_back:
            written = yield Call("get", {"ids": batch_ids, "include": ["metadatas"]})
            fix = phantom_key_update(dict(zip(batch_ids, metadatas, strict=True)), written)
            if fix:
                yield Call("update", {"ids": list(fix), "metadatas": list(fix.values())})
    return ids, dim


def phantom_key_update(
    sent: Mapping[str, Mapping[str, Any] | None], written: Mapping[str, Any]
) -> dict[str, dict[str, None]]:
    """``{id: {key: None}}`` for metadata keys a row has but was not written with.

    Such keys are either kept by the upsert from the row's old metadata, or inherited:
    Chroma (1.5) keeps the list-valued metadata of a deleted collection's records and hands
    it to new records that reuse their internal ids, where it is returned and matched by
    filters ({"tags": ["x"]} of an old record shows up on a new one). Setting such a key to
    None removes it.
    """
    fix: dict[str, dict[str, None]] = {}
    metadatas = written.get("metadatas") or []
    for row_id, metadata in zip(written.get("ids") or [], metadatas, strict=False):
        expected = {k for k, v in (sent.get(row_id) or {}).items() if v is not None}
        extra = sorted(set(metadata or {}) - expected)
        if extra:
            fix[row_id] = dict.fromkeys(extra)
    return fix


def _page_ids(flt: ChromaFilter, page: int) -> Flow[list[str]]:
    result = yield Call(
        "get",
        {
            "where": flt.where,
            "where_document": flt.where_document,
            "limit": page,
            "include": _GET_PAGE_INCLUDE,
        },
    )
    return list(result["ids"])


def delete_flow(node_ids: Sequence[str] | None, flt: ChromaFilter, limits: Limits) -> Flow[None]:
    """Delete the given ids (restricted by ``flt``), or every row ``flt`` matches, in batches.

    With neither ids nor filter conditions this deletes every row (``clear``).
    """
    if flt.matches_nothing or (node_ids is not None and not node_ids):
        return
    if node_ids is not None:
        for chunk in _chunks(_unique(node_ids), limits.max_batch):
            yield Call(
                "delete",
                {"ids": list(chunk), "where": flt.where, "where_document": flt.where_document},
            )
        return
    previous: list[str] | None = None
    while True:
        ids = yield from _page_ids(flt, limits.max_batch)
        if not ids:
            return
        if ids == previous:
            raise StoreError(
                f"Chroma did not delete {len(ids)} rows it was asked to delete; "
                "the collection may be damaged (try `chroma vacuum`, or rebuild it)."
            )
        yield Call("delete", {"ids": ids})
        previous = ids


# ----------------------------------------------------------------------------- reads


def _rows(result: Mapping[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    ids = list(result["ids"])
    documents = result.get("documents")
    metadatas = result.get("metadatas")
    embeddings = result.get("embeddings")
    return [
        (
            node_id,
            documents[i] if documents is not None else None,
            metadatas[i] if metadatas is not None else None,
            embeddings[i] if embeddings is not None else None,
        )
        for i, node_id in enumerate(ids)
    ]


def get_nodes_flow(
    node_ids: Sequence[str] | None,
    flt: ChromaFilter,
    include_embeddings: bool,
    limits: Limits,
    dim: int | None = None,
) -> Flow[list[BaseNode]]:
    """Nodes by id (in the order asked, missing ones skipped) and/or filter, paginated."""
    if flt.matches_nothing or (node_ids is not None and not node_ids):
        return []
    page = limits.read_page(dim, include_embeddings)
    include = ["metadatas", "documents"] + (["embeddings"] if include_embeddings else [])
    base = {"where": flt.where, "where_document": flt.where_document, "include": include}
    if node_ids is not None:
        wanted = _unique(node_ids)
        found: dict[str, BaseNode] = {}
        for chunk in _chunks(wanted, page):
            result = yield Call("get", {**base, "ids": list(chunk)})
            for node_id, doc, meta, emb in _rows(result):
                found[node_id] = decode_node(node_id, doc, meta, emb)
        return [found[node_id] for node_id in wanted if node_id in found]
    nodes: list[BaseNode] = []
    offset = 0
    while True:
        result = yield Call("get", {**base, "limit": page, "offset": offset})
        rows = _rows(result)
        nodes.extend(decode_node(*row) for row in rows)
        if len(rows) < page:
            return nodes
        offset += len(rows)


def index_flow(doc_ids: Sequence[str] | None, limits: Limits) -> Flow[dict[str, dict[str, str]]]:
    """``{doc_id: {node_id: lige_hash or ""}}``; rows without a ref doc go under ``""``."""
    index: dict[str, dict[str, str]] = {}
    if doc_ids is None:
        filters: list[ChromaFilter] = [ChromaFilter()]
    else:
        filters = [translate_filters(doc_ids=c) for c in _chunks(_unique(doc_ids), 1000)]
    for flt in filters:
        offset = 0
        while True:
            result = yield Call(
                "get",
                {
                    "where": flt.where,
                    "limit": limits.max_batch,
                    "offset": offset,
                    "include": ["metadatas"],
                },
            )
            rows = _rows(result)
            for node_id, _, meta, _ in rows:
                meta = meta or {}
                doc_id, content_hash = meta.get(DOC_ID_KEY), meta.get(HASH_KEY)
                key = doc_id if isinstance(doc_id, str) else ""
                index.setdefault(key, {})[node_id] = (
                    content_hash if isinstance(content_hash, str) else ""
                )
            if len(rows) < limits.max_batch:
                break
            offset += len(rows)
    return index


def count_flow() -> Flow[int]:
    """The number of rows in the collection."""
    result = yield Call("count")
    return int(result)


# ----------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class QueryPlan:
    """A validated dense, MMR or (no embedding) filter-only query, for :func:`query_flow`."""

    embedding: list[float] | None
    top_k: int
    fetch_k: int
    flt: ChromaFilter
    node_ids: list[str] | None
    space: Space
    mmr: bool = False
    mmr_threshold: float | None = None
    include_embeddings: bool = False


def _mmr_fetch_k(top_k: int, kwargs: Mapping[str, Any]) -> int:
    """Candidates MMR looks at: ``mmr_prefetch_k``, or ``top_k * mmr_prefetch_factor`` (4)."""
    prefetch_k = kwargs.get("mmr_prefetch_k")
    factor = kwargs.get("mmr_prefetch_factor")
    if prefetch_k is not None and factor is not None:
        # As ChromaVectorStore: two answers to one question are refused, not ranked.
        raise ValueError(
            "'mmr_prefetch_factor' and 'mmr_prefetch_k' cannot coexist in a call to query(): "
            "pass only one of them."
        )
    if prefetch_k is not None:
        return max(top_k, int(prefetch_k))
    return max(top_k, int(top_k * float(factor if factor is not None else 4.0)))


def plan_query(
    query: VectorStoreQuery, kwargs: Mapping[str, Any], space: Space, dimension: int | None
) -> QueryPlan | None:
    """Validate ``query``; None means the answer is empty without asking Chroma.

    Keyword options: ``node_ids`` (restrict the search to these ids), ``mmr_threshold``,
    ``mmr_prefetch_k`` or ``mmr_prefetch_factor`` (default 4; not both),
    ``include_embeddings``, and raw ``where`` / ``where_document`` clauses.

    ``query.node_ids`` is not a restriction: ``VectorStoreIndex`` fills it with the ids it
    keeps in its own docstore, which for a store that keeps text (like this one) are only
    its ``IndexNode``/``ImageNode`` objects (or every node with ``store_nodes_override``),
    never the set to search. ``ChromaVectorStore`` ignores it too; pass the ``node_ids``
    keyword (``vector_store_kwargs={"node_ids": [...]}`` on a retriever) to restrict.
    """
    if query.mode not in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR):
        raise ValueError(
            f"VectorStoreQueryMode.{query.mode.name} is not supported by ChromaStore: it "
            "answers dense vector queries (DEFAULT) and MMR."
        )
    embedding: list[float] | None = None
    if query.query_embedding is not None:
        embedding = [float(x) for x in query.query_embedding]
        if dimension is not None and len(embedding) != dimension:
            raise DimensionMismatchError(
                f"The query embedding has {len(embedding)} dimensions but the collection "
                f"holds {dimension}-dimensional vectors. Embed the query with the same model "
                "and output_dimensionality as the stored nodes."
            )
    # Empty doc_ids mean "no restriction", as VectorIndexRetriever passes them.
    flt = translate_filters(
        query.filters,
        doc_ids=query.doc_ids or None,
        where=kwargs.get("where"),
        where_document=kwargs.get("where_document"),
    )
    top_k = int(query.similarity_top_k)
    mmr = query.mode == VectorStoreQueryMode.MMR
    fetch_k = _mmr_fetch_k(top_k, kwargs) if mmr else top_k
    raw_ids = kwargs.get("node_ids")
    node_ids = [str(i) for i in raw_ids] if raw_ids is not None else None
    if top_k <= 0 or flt.matches_nothing or node_ids == []:
        return None
    threshold = kwargs.get("mmr_threshold", query.mmr_threshold)
    return QueryPlan(
        embedding=embedding,
        top_k=top_k,
        fetch_k=fetch_k,
        flt=flt,
        node_ids=node_ids,
        space=space,
        mmr=mmr and embedding is not None,
        mmr_threshold=float(threshold) if threshold is not None else None,
        include_embeddings=bool(kwargs.get("include_embeddings", False)),
    )


def _empty_result() -> VectorStoreQueryResult:
    return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])


def _filter_only(plan: QueryPlan, ids_arg: list[str] | None) -> Flow[VectorStoreQueryResult]:
    """No query vector: the first ``top_k`` matching rows, unscored (``similarities`` None)."""
    include = ["metadatas", "documents"] + (["embeddings"] if plan.include_embeddings else [])
    result = yield Call(
        "get",
        {
            "ids": ids_arg,
            "where": plan.flt.where,
            "where_document": plan.flt.where_document,
            "limit": plan.top_k,
            "include": include,
        },
    )
    rows = _rows(result)
    return VectorStoreQueryResult(
        nodes=[decode_node(*row) for row in rows], similarities=None, ids=[r[0] for r in rows]
    )


def query_flow(plan: QueryPlan, limits: Limits) -> Flow[VectorStoreQueryResult]:
    """Run a planned query; scores come from :func:`distance_to_score`.

    With ``node_ids`` the ids are first narrowed to those that exist (Chroma fails the
    whole query on an unknown id). MMR fetches ``fetch_k`` candidates with their vectors,
    picks ``top_k`` with LlamaIndex's ``get_top_k_mmr_embeddings`` (using the space's
    similarity), and reports each pick's real similarity to the query. Without an
    embedding, the first ``top_k`` rows matching the filters come back without scores,
    as ``ChromaVectorStore`` answers a filter-only query.
    """
    ids_arg: list[str] | None = None
    if plan.node_ids is not None:
        ids_arg = []
        for chunk in _chunks(_unique(plan.node_ids), limits.max_batch):
            result = yield Call("get", {"ids": list(chunk), "include": _GET_PAGE_INCLUDE})
            ids_arg.extend(result["ids"])
        if not ids_arg:
            return _empty_result()
    if plan.embedding is None:
        return (yield from _filter_only(plan, ids_arg))
    want_embeddings = plan.mmr or plan.include_embeddings
    include = ["metadatas", "documents", "distances"]
    if want_embeddings:
        include.append("embeddings")
    fetch_k = plan.fetch_k if ids_arg is None else min(plan.fetch_k, len(ids_arg))
    result = yield Call(
        "query",
        {
            "query_embeddings": [plan.embedding],
            "n_results": fetch_k,
            "where": plan.flt.where,
            "where_document": plan.flt.where_document,
            "ids": ids_arg,
            "include": include,
        },
    )
    ids = list(result["ids"][0])
    if not ids:
        return _empty_result()
    documents = result["documents"][0]
    metadatas = result["metadatas"][0]
    distances = [float(d) for d in result["distances"][0]]
    embeddings = result["embeddings"][0] if want_embeddings else None
    order = list(range(len(ids)))
    if plan.mmr:
        assert embeddings is not None
        _, picked = get_top_k_mmr_embeddings(
            plan.embedding,
            [list(map(float, e)) for e in embeddings],
            similarity_fn=similarity_function(plan.space),
            similarity_top_k=plan.top_k,
            embedding_ids=order,
            mmr_threshold=plan.mmr_threshold,
        )
        order = [int(i) for i in picked]
    order = order[: plan.top_k]
    nodes = [
        decode_node(
            ids[i],
            documents[i],
            metadatas[i],
            embeddings[i] if plan.include_embeddings and embeddings is not None else None,
        )
        for i in order
    ]
    return VectorStoreQueryResult(
        nodes=nodes,
        similarities=[distance_to_score(distances[i], plan.space) for i in order],
        ids=[ids[i] for i in order],
    )
