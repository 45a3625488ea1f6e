"""ChromaStore: a LlamaIndex vector store on chromadb that avoids the official store's traps.

store = ChromaStore("docs", path="./chroma", embed_model=embed_model)   # local, locked
store = ChromaStore.from_url("http://localhost:8000", collection_name="docs")  # server
index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store))

What it does differently from ``llama-index-vector-stores-chroma``: upserts (never the
silently-ignored ``add``) and removes stale metadata keys; batches by Chroma's max batch
size and, over HTTP, by request bytes; records the embedding fingerprint in the collection
and refuses a different one; scores are real similarities for the collection's space;
honours ``node_ids``/``doc_ids`` and translates every LlamaIndex filter operator Chroma can
express; paginates reads and deletes; native async on a ``chroma run`` server; one writer
process per local directory (file lock); never lets Chroma embed text.

The decisions live in pure modules: ``records`` (node <-> row codec), ``filters``
(LlamaIndex filters -> ``where``), ``flows`` (what each operation asks Chroma, sans-I/O),
``limits``/``naming``/``scores`` and the core ``_fingerprint``; ``connect`` opens clients,
drives flows and maps errors; ``lock`` is the single-writer lock. This class only opens
the collection and drives flows.

Why this module is over 600 lines: it is one class whose public surface LlamaIndex fixes
(every operation has a sync and an async twin, each with a usage docstring), plus opening
(local, reader, server, supplied client) and fingerprint checks that need its state.
Every decision inside a method is one call into the pure modules above.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from collections.abc import Collection as Container
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

import chromadb
from chromadb.api import BaseAPI, ClientAPI
from chromadb.api.models.AsyncCollection import AsyncCollection
from chromadb.api.models.Collection import Collection
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryResult,
)

from llama_index_gemini_embed._errors import (
    ConfigurationError,
    DimensionMismatchError,
    FingerprintMismatchError,
    StoreError,
)
from llama_index_gemini_embed._fingerprint import (
    Fingerprint,
    FingerprintValue,
    fingerprint_from_metadata,
    fingerprint_mismatch_message,
    fingerprint_to_metadata,
    fingerprints_equal,
    merge_collection_metadata,
    normalise_fingerprint,
)

from .connect import (
    AsyncServer,
    adrive,
    check_local_path,
    chroma_settings,
    drive,
    open_local,
    release,
    translate_chroma_errors,
)
from .filters import ChromaFilter, translate_filters
from .flows import (
    Flow,
    Limits,
    add_flow,
    count_flow,
    delete_flow,
    get_nodes_flow,
    index_flow,
    plan_query,
    query_flow,
    record_wire_bytes,
)
from .limits import DEFAULT_PAYLOAD_CAP
from .lock import PathLease, acquire_lease, join_held_lease
from .naming import parse_server_url, validate_collection_name
from .records import encode_node
from .scores import Space, as_space

__all__ = ["ChromaStore", "DimensionMismatchError", "HasFingerprint"]

T = TypeVar("T")
_log = logging.getLogger(__name__)
_HTTP_IMPLS = ("chromadb.api.fastapi.FastAPI", "chromadb.api.async_fastapi.AsyncFastAPI")
_HNSW_KEYS = frozenset(
    {
        "ef_construction",
        "ef_search",
        "max_neighbors",
        "num_threads",
        "resize_factor",
        "sync_threshold",
        "batch_size",
    }
)


@runtime_checkable
class HasFingerprint(Protocol):
    """An embedding model that says what makes its vectors comparable (e.g. GeminiEmbedding)."""

    @property
    def fingerprint(self) -> Mapping[str, FingerprintValue]: ...


def _resolve_fingerprint(
    fingerprint: Mapping[str, FingerprintValue] | None,
    embed_model: object | None,
) -> Fingerprint | None:
    from_model: Fingerprint | None = None
    if embed_model is not None:
        raw = getattr(embed_model, "fingerprint", None)
        if callable(raw):
            raw = raw()
        if not isinstance(raw, Mapping):
            raise ConfigurationError(
                f"embed_model {type(embed_model).__name__} has no 'fingerprint' mapping; "
                "pass fingerprint={'model': ..., 'dimension': ...} instead."
            )
        from_model = normalise_fingerprint(raw)
    given = normalise_fingerprint(fingerprint) if fingerprint is not None else None
    if given is not None and from_model is not None and not fingerprints_equal(given, from_model):
        raise ConfigurationError(
            f"fingerprint={given!r} disagrees with embed_model's fingerprint {from_model!r}; "
            "pass only one of them."
        )
    return given if given is not None else from_model


def _dimension_of(fingerprint: Mapping[str, FingerprintValue] | None) -> int | None:
    value = (fingerprint or {}).get("dimension")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _warn_if_nothing_asked(query: VectorStoreQuery, kwargs: Mapping[str, Any]) -> None:
    """Warn when a query has no embedding, no text and no filter: it gets unranked rows.

    The usual cause: ``QueryBundle(query_str="", image_path=...)`` given to a
    ``VectorStoreIndex`` retriever, which embeds only text, so the picture is never searched.
    """
    if query.query_embedding is not None or query.query_str or query.filters:
        return
    if any(kwargs.get(key) for key in ("node_ids", "where", "where_document")):
        return
    _log.warning(
        "ChromaStore got a query with no embedding, text or filter: it returns the first "
        "%d rows, unranked. To search by image use "
        "retriever.retrieve(embed.image_query(path)) (VectorStoreIndex retrievers do not "
        "embed QueryBundle.image_path)",
        query.similarity_top_k,
    )


class ChromaStore(BasePydanticVectorStore):
    """A LlamaIndex vector store on one Chroma collection (local directory or ``chroma run``).

    store = ChromaStore("docs", path="./chroma", embed_model=GeminiEmbedding())
    store.add(nodes_with_embeddings)          # -> ids; upserts in safe batches
    store.query(VectorStoreQuery(query_embedding=q, similarity_top_k=5))

    Local mode (the default) opens ``chromadb.PersistentClient(path)`` and locks the
    directory for this process (StoreLockedError in another process). Server mode
    (``host=``, or :meth:`from_url`) uses ``HttpClient`` and, for the ``a*`` methods,
    ``AsyncHttpClient`` (on the store's own loop thread: one connection pool whatever the
    number of caller event loops); local async methods run in a worker thread,
    serialised per collection.

    Args:
        collection_name: Chroma collection; 3-512 characters of ``[a-zA-Z0-9._-]``.
        path: Directory of the local store (ignored with ``host`` or ``client``).
        host: Chroma server host; selects server mode.
        port: Chroma server port (default 8000).
        ssl: Use HTTPS for the server.
        headers: Extra HTTP headers (e.g. auth); kept out of ``to_dict()``.
        client: An existing chromadb client to use (not closed by :meth:`close`).
        collection: An existing collection to use (its name must be ``collection_name``).
        space: Distance space of a *new* collection: ``cosine`` (default), ``l2`` or ``ip``.
            An existing collection keeps its own; naming a different one raises.
        hnsw: Extra HNSW settings for a new collection (``ef_construction``, ``ef_search``,
            ``max_neighbors``, ...).
        fingerprint: What makes the vectors comparable (model, dimension, ...); recorded
            in the collection metadata as ``lige_*`` keys and checked on open.
        embed_model: Any object with a ``fingerprint`` mapping; used instead of
            ``fingerprint``.
        create: Create the collection when it does not exist (default); False: open an
            existing one or raise :class:`StoreError` (nothing is created).
        read_only: Open for reading only (``info``, ``query``, ``get_nodes``): a local
            store takes no lock, so it can be read while another process writes to it
            (it sees what the writer has persisted); writes raise :class:`StoreError`;
            nothing is created (implies ``create=False``).
        payload_cap_bytes: Bytes per HTTP write request (default 30 MiB, under the
            server's 40 MiB limit); raise it only for a server configured with a larger
            ``max_payload_size_bytes``.

    Raises:
        ConfigurationError: Bad arguments (the message says what to pass instead).
        FingerprintMismatchError: The collection was built with another embedding setup.
        StoreLockedError: Another process holds the local directory.
        StoreUnavailableError: The Chroma server cannot be reached.
    """

    stores_text: bool = True
    flat_metadata: bool = False

    collection_name: str
    path: str | None = "./chroma"
    host: str | None = None
    port: int | None = None
    ssl: bool = False
    headers: dict[str, str] | None = Field(default=None, exclude=True, repr=False)
    space: Space = "cosine"
    hnsw: dict[str, Any] | None = None
    expected_fingerprint: Fingerprint | None = None
    payload_cap_bytes: int | None = None
    create: bool = True
    read_only: bool = False

    _client: BaseAPI | None = PrivateAttr(default=None)
    _collection: Collection | None = PrivateAttr(default=None)
    _lease: PathLease | None = PrivateAttr(default=None)
    _finalizer: weakref.finalize[Any, Any] | None = PrivateAttr(default=None)
    _closed: bool = PrivateAttr(default=False)
    _actual_space: Space = PrivateAttr(default="cosine")
    _recorded: Fingerprint | None = PrivateAttr(default=None)
    _dimension: int | None = PrivateAttr(default=None)
    _limits: Limits = PrivateAttr(default_factory=lambda: Limits(max_batch=1000))
    _op_lock: threading.RLock = PrivateAttr(default_factory=threading.RLock)
    _server: tuple[str, int, bool, dict[str, str] | None] | None = PrivateAttr(default=None)
    _aserver: AsyncServer | None = PrivateAttr(default=None)

    def __init__(
        self,
        collection_name: str,
        path: str | None = "./chroma",
        host: str | None = None,
        port: int | None = None,
        ssl: bool = False,
        headers: dict[str, str] | None = None,
        client: ClientAPI | None = None,
        collection: Collection | None = None,
        space: Space | None = None,
        hnsw: dict[str, Any] | None = None,
        fingerprint: Mapping[str, FingerprintValue] | None = None,
        embed_model: object | None = None,
        *,
        create: bool = True,
        read_only: bool = False,
        payload_cap_bytes: int | None = None,
        expected_fingerprint: Mapping[str, FingerprintValue] | None = None,
        **kwargs: Any,
    ) -> None:
        validate_collection_name(collection_name)
        if space is not None:
            as_space(space)
            # Only a space the caller chose is checked against an existing collection.
            kwargs["space"] = space
        if hnsw:
            unknown = set(hnsw) - _HNSW_KEYS
            if unknown:
                raise ConfigurationError(
                    f"Unknown hnsw settings {sorted(unknown)}: Chroma accepts "
                    f"{sorted(_HNSW_KEYS)} (set the distance with space=...)."
                )
        if port is not None and not 0 < port < 65536:
            raise ConfigurationError(f"port must be 1-65535, got {port}")
        if payload_cap_bytes is not None and payload_cap_bytes < 1024 * 1024:
            raise ConfigurationError("payload_cap_bytes must be at least 1 MiB.")
        if collection is not None and collection.name != collection_name:
            raise ConfigurationError(
                f"collection= is {collection.name!r} but collection_name={collection_name!r}; "
                "pass the same name."
            )
        resolved = _resolve_fingerprint(fingerprint or expected_fingerprint, embed_model)
        if host is None and client is None and collection is None:
            if not path:
                raise ConfigurationError(
                    "ChromaStore needs path= (a local directory) or host= (a `chroma run` server)."
                )
            check_local_path(path, must_exist=read_only or not create, collection=collection_name)
        super().__init__(
            collection_name=collection_name,
            path=path,
            host=host,
            port=port,
            ssl=ssl,
            headers=headers,
            hnsw=hnsw,
            expected_fingerprint=resolved,
            payload_cap_bytes=payload_cap_bytes,
            create=create and not read_only,
            read_only=read_only,
            **kwargs,
        )
        self._open(client, collection)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_url(cls, url: str, collection_name: str, **kwargs: Any) -> ChromaStore:
        """A server-mode store from ``http(s)://host:port``.

        store = ChromaStore.from_url("http://localhost:8000", collection_name="docs")
        """
        host, port, ssl = parse_server_url(url)
        return cls(
            collection_name=collection_name, path=None, host=host, port=port, ssl=ssl, **kwargs
        )

    @classmethod
    def class_name(cls) -> str:
        """Serialisation id; distinct from LlamaIndex's ``ChromaVectorStore``."""
        return "LigeChromaStore"

    def _open(self, client: ClientAPI | None, collection: Collection | None) -> None:
        owned: BaseAPI | None = None
        try:
            api: BaseAPI | None = client
            if collection is not None and api is None:
                api = cast(BaseAPI, collection._client)  # the collection's own server API
            if api is not None:
                self._client = api
                settings = api.get_settings()
                if settings.chroma_api_impl in _HTTP_IMPLS:
                    self._server = (
                        str(settings.chroma_server_host),
                        int(settings.chroma_server_http_port or 8000),
                        bool(settings.chroma_server_ssl_enabled),
                        dict(settings.chroma_server_headers or {}) or None,
                    )
                elif settings.is_persistent and settings.persist_directory:
                    directory = settings.persist_directory
                    # A reader shares this process's lock if it holds one, else takes none.
                    self._lease = (
                        join_held_lease(directory) if self.read_only else acquire_lease(directory)
                    )
            elif self.host is not None:
                self._server = (self.host, self.port or 8000, self.ssl, self.headers)
                with self._translate("connecting"):
                    owned = chromadb.HttpClient(
                        host=self.host,
                        port=self.port or 8000,
                        ssl=self.ssl,
                        headers=self.headers,
                        settings=chroma_settings(),
                    )
                self._client = owned
            elif self.read_only:
                # A reader takes no lock: it joins this process's writer if there is one,
                # else opens the directory on its own (readers never shut a writer out).
                assert self.path is not None
                self._lease = join_held_lease(self.path)
                if self._lease is not None:
                    lease = self._lease
                    self._client = cast(ClientAPI, lease.client(lambda: open_local(lease.path)))
                else:
                    owned = open_local(os.path.realpath(os.path.expanduser(self.path)))
                    self._client = owned
            else:
                assert self.path is not None
                lease = self._lease = acquire_lease(self.path)
                self._client = cast(ClientAPI, lease.client(lambda: open_local(lease.path)))
            if self._lease is not None:
                self._op_lock = self._lease.lock_for(self.collection_name)
            with self._translate("opening the collection"):
                self._collection = collection or self._get_or_create()
                self._actual_space = self._read_space(self._collection)
                self._limits = self._read_limits()
            self._recorded = fingerprint_from_metadata(self._collection.metadata)
            if self.expected_fingerprint is not None:
                self._check_fingerprint(self.expected_fingerprint, refresh=False)
            self._dimension = _dimension_of(self._recorded)
        except BaseException:
            release(self._lease, owned)
            self._lease = None
            self._closed = True
            raise
        if self._server is not None:
            self._aserver = AsyncServer(self.collection_name)
        self._finalizer = weakref.finalize(self, release, self._lease, owned, self._aserver)

    def _get_or_create(self) -> Collection:
        if not isinstance(self._client, ClientAPI):  # pragma: no cover - collection= path
            raise ConfigurationError("Pass client= (a chromadb client) to create a collection.")
        if not self.create:
            try:
                return self._client.get_collection(self.collection_name, embedding_function=None)
            except chromadb.errors.NotFoundError:
                where = f"{self.host}:{self.port or 8000}" if self.host else self.path
                raise StoreError(
                    f"Collection {self.collection_name!r} does not exist at {where}: ingest "
                    "something first (gemini-embed ingest PATH --collection NAME), or check "
                    "--collection and --path/--server"
                ) from None
        configuration = {"hnsw": {"space": self.space, **(self.hnsw or {})}}
        metadata = (
            fingerprint_to_metadata(self.expected_fingerprint)
            if self.expected_fingerprint is not None
            else None
        )
        return self._client.get_or_create_collection(
            self.collection_name,
            configuration=cast(Any, configuration),
            metadata=cast(Any, metadata),
            embedding_function=None,
        )

    def _read_space(self, collection: Collection) -> Space:
        config = cast(Mapping[str, Any], collection.configuration_json or {})
        index = config.get("hnsw") or config.get("spann") or {}
        actual = as_space(index.get("space") or "l2")
        if "space" in self.model_fields_set and actual != self.space:
            raise ConfigurationError(
                f"Collection {self.collection_name!r} already exists with space={actual!r}, "
                f"not {self.space!r}; Chroma cannot change it. Drop space=, or use another "
                "collection_name for the new space."
            )
        return actual

    def _read_limits(self) -> Limits:
        assert self._client is not None
        max_batch = int(self._client.get_max_batch_size())
        if self._server is None:
            return Limits(max_batch=max_batch)
        server_api = getattr(self._client, "_server", self._client)
        supports = getattr(server_api, "supports_base64_encoding", None)
        base64 = bool(supports()) if callable(supports) else False
        cap = self.payload_cap_bytes or DEFAULT_PAYLOAD_CAP
        return Limits(max_batch=max_batch, payload_cap=cap, base64=base64)

    # ------------------------------------------------------------------ errors

    @contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        """Map chromadb/httpx failures to this package's errors, chained."""
        host, port = (self._server[0], self._server[1]) if self._server else (self.host, self.port)
        with translate_chroma_errors(what, self.collection_name, host, port):
            yield

    # ------------------------------------------------------------------ drivers

    def _sync_collection(self) -> Collection:
        if self._closed:
            raise StoreError(
                f"This ChromaStore for collection {self.collection_name!r} is closed; "
                "create a new ChromaStore to use the collection again."
            )
        if self._collection is None:  # pragma: no cover - only after a failed unpickle
            self._open(None, None)
        assert self._collection is not None
        return self._collection

    def _run(self, flow: Flow[T], what: str) -> T:
        collection = self._sync_collection()
        directory = self._lease.path if self._lease is not None and not self._server else None
        with self._op_lock, self._translate(what):
            return drive(flow, collection, directory=directory)

    async def _async_collection(self, aserver: AsyncServer) -> AsyncCollection:
        """On the loop thread: the AsyncHttpClient collection, created once (per process)."""
        aserver.forget_if_forked()
        if aserver.collection is not None:
            return aserver.collection
        if aserver.lock is None:
            aserver.lock = asyncio.Lock()
        async with aserver.lock:  # concurrent first calls share one client
            if aserver.collection is None:
                assert self._server is not None
                host, port, ssl, headers = self._server
                with self._translate("connecting (async)"):
                    client = await chromadb.AsyncHttpClient(
                        host=host, port=port, ssl=ssl, headers=headers, settings=chroma_settings()
                    )
                    aserver.collection = await client.get_collection(
                        self.collection_name, embedding_function=None
                    )
            return aserver.collection

    async def _adrive_on_loop_thread(self, aserver: AsyncServer, flow: Flow[T]) -> T:
        return await adrive(flow, await self._async_collection(aserver))

    async def _arun(self, flow: Flow[T], what: str) -> T:
        """Local: the sync flow in a worker thread. Server: natively async, on the store's
        own loop thread whatever loop the caller runs (bounded sockets, see loop_thread)."""
        if self._server is None:
            return await asyncio.to_thread(self._run, flow, what)
        self._sync_collection()
        aserver = self._aserver
        assert aserver is not None
        with self._translate(what):
            return await aserver.io.run(self._adrive_on_loop_thread(aserver, flow))

    # ------------------------------------------------------------------ properties

    @property
    def client(self) -> BaseAPI:
        """The (sync) chromadb client (the server API object when only collection= was given)."""
        self._sync_collection()
        assert self._client is not None
        return self._client

    @property
    def collection(self) -> Collection:
        """The chromadb collection."""
        return self._sync_collection()

    @property
    def distance_space(self) -> Space:
        """The collection's real space (an existing collection keeps its own)."""
        return self._actual_space

    @property
    def fingerprint(self) -> Fingerprint | None:
        """The fingerprint the collection records (without the ``lige_`` prefix), or None."""
        return dict(self._recorded) if self._recorded is not None else None

    # ------------------------------------------------------------------ fingerprint

    def check_fingerprint(self, fingerprint: Mapping[str, FingerprintValue]) -> None:
        """Record ``fingerprint`` if the collection has none; raise if it records another.

        A read-only store only checks: equal passes, another one raises, and none
        recorded raises StoreError (recording it would be a write).

        Raises:
            FingerprintMismatchError: Names both fingerprints and what to do.
            StoreError: The store is read-only and the collection records no fingerprint.
        """
        expected = normalise_fingerprint(fingerprint)
        self._check_fingerprint(expected, refresh=True)
        if self._recorded is None:  # only a reader gets here: it recorded nothing
            self._refuse_write("record a fingerprint")

    def _check_fingerprint(self, expected: Fingerprint, refresh: bool) -> None:
        assert self._client is not None and self._collection is not None
        with self._op_lock, self._translate("checking the fingerprint"):
            if refresh and isinstance(self._client, ClientAPI):
                fresh = self._client.get_collection(self.collection_name, embedding_function=None)
                self._recorded = fingerprint_from_metadata(fresh.metadata)
                metadata = fresh.metadata
            else:
                metadata = self._collection.metadata
            if self._recorded is None:
                if self.read_only:  # a reader records nothing
                    return
                self._refuse_other_dimension(expected)
                merged = merge_collection_metadata(metadata, expected)
                self._collection.modify(metadata=cast(Any, merged))
                self._recorded = dict(expected)
            elif not fingerprints_equal(self._recorded, expected):
                raise FingerprintMismatchError(
                    fingerprint_mismatch_message(self.collection_name, self._recorded, expected)
                )
            self._dimension = _dimension_of(self._recorded) or self._dimension

    def _refuse_other_dimension(self, expected: Fingerprint) -> None:
        """Before recording a fingerprint: the stored vectors must have its dimension."""
        wanted = _dimension_of(expected)
        assert self._collection is not None
        if wanted is None:
            return
        probe = self._collection.get(limit=1, include=cast(Any, ["embeddings"]))
        embeddings = probe.get("embeddings")
        if embeddings is not None and len(embeddings) > 0 and len(embeddings[0]) != wanted:
            raise FingerprintMismatchError(
                f"Chroma collection {self.collection_name!r} has no recorded fingerprint but "
                f"holds {len(embeddings[0])}-dimensional vectors, and this store was given "
                f"dimension={wanted} ({expected!r}). Use another collection_name for the new "
                "model, or rebuild: delete the collection and re-ingest."
            )

    # ------------------------------------------------------------------ writes

    def _refuse_write(self, what: str) -> None:
        if self.read_only:
            raise StoreError(
                f"This ChromaStore was opened with read_only=True and cannot {what}: open it "
                "without read_only=True to change the collection (a local store allows one "
                "writer process at a time)."
            )

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Upsert nodes (with embeddings) in safe batches; returns their ids.

        A re-added id gets the new text, vector and metadata; metadata keys it no longer
        has are removed. Every vector length is checked before anything is written.
        """
        self._refuse_write("add nodes")
        flow = add_flow(nodes, self._limits, self._dimension, self.collection_name)
        ids, self._dimension = self._run(flow, "adding nodes")
        return ids

    async def async_add(
        self, nodes: Sequence[BaseNode], *, new_ids: Container[str] = frozenset(), **kwargs: Any
    ) -> list[str]:
        """Async :meth:`add`. ``new_ids``: ids the caller knows are not stored yet (ingest
        knows them from :meth:`aget_index`); their old metadata is not read before writing."""
        self._refuse_write("add nodes")
        flow = add_flow(nodes, self._limits, self._dimension, self.collection_name, new_ids=new_ids)
        ids, self._dimension = await self._arun(flow, "adding nodes")
        return ids

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node whose ref doc id is ``ref_doc_id``."""
        self._refuse_write("delete nodes")
        flow = delete_flow(None, translate_filters(doc_ids=[ref_doc_id]), self._limits)
        self._run(flow, "deleting a document")

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Async :meth:`delete`."""
        self._refuse_write("delete nodes")
        flow = delete_flow(None, translate_filters(doc_ids=[ref_doc_id]), self._limits)
        await self._arun(flow, "deleting a document")

    def _delete_nodes_flow(
        self, node_ids: Sequence[str] | None, filters: MetadataFilters | None
    ) -> Flow[None]:
        if node_ids is None and filters is None:
            return delete_flow(None, ChromaFilter(matches_nothing=True), self._limits)
        flt = translate_filters(filters)
        if node_ids is None and flt == ChromaFilter():
            raise ValueError(
                "delete_nodes() got filters without any condition, which would delete every "
                "node; call clear() to empty the collection."
            )
        return delete_flow(node_ids, flt, self._limits)

    def delete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Delete nodes by id, by filter, or by both (ids that match the filter).

        With neither, nothing is deleted: use :meth:`clear` to empty the collection.
        """
        self._refuse_write("delete nodes")
        self._run(self._delete_nodes_flow(node_ids, filters), "deleting nodes")

    async def adelete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Async :meth:`delete_nodes`."""
        self._refuse_write("delete nodes")
        await self._arun(self._delete_nodes_flow(node_ids, filters), "deleting nodes")

    def clear(self) -> None:
        """Delete every node (the collection, its settings and fingerprint stay)."""
        self._refuse_write("clear the collection")
        self._run(delete_flow(None, ChromaFilter(), self._limits), "clearing the collection")

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        self._refuse_write("clear the collection")
        await self._arun(delete_flow(None, ChromaFilter(), self._limits), "clearing")

    # ------------------------------------------------------------------ reads

    def get_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        *,
        include_embeddings: bool = False,
    ) -> list[BaseNode]:
        """Nodes by id (in the order given, missing ids skipped) and/or filter; all if neither."""
        flow = get_nodes_flow(
            node_ids, translate_filters(filters), include_embeddings, self._limits
        )
        return self._run(flow, "reading nodes")

    async def aget_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        *,
        include_embeddings: bool = False,
    ) -> list[BaseNode]:
        """Async :meth:`get_nodes`."""
        flow = get_nodes_flow(
            node_ids, translate_filters(filters), include_embeddings, self._limits
        )
        return await self._arun(flow, "reading nodes")

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Nearest nodes to ``query.query_embedding``, with similarity scores.

        Scores by space: ``cosine`` -> cosine similarity (1 - Chroma's distance), ``ip`` ->
        dot product (1 - distance), ``l2`` -> ``1 / (1 + euclidean distance)``.
        Honours ``doc_ids`` (an empty list means no restriction, as ``VectorStoreIndex``
        passes it), ``filters`` and MMR mode (``mmr_threshold``, ``mmr_prefetch_k`` or
        ``mmr_prefetch_factor`` keyword options; MMR results carry their real
        similarity). ``include_embeddings=True`` returns vectors too. Restrict by id with
        the ``node_ids=[...]`` keyword: ``query.node_ids`` is the index's docstore
        bookkeeping, not a restriction (as in ``ChromaVectorStore``). Without
        ``query_embedding`` it returns the first ``similarity_top_k`` rows matching the
        filters, with ``similarities`` None.

        Raises:
            ValueError: An unsupported mode, both MMR prefetch options, or a filter Chroma
                cannot express.
        """
        _warn_if_nothing_asked(query, kwargs)
        plan = plan_query(query, kwargs, self._actual_space, self._dimension)
        if plan is None:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        return self._run(query_flow(plan, self._limits), "querying")

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Async :meth:`query`."""
        _warn_if_nothing_asked(query, kwargs)
        plan = plan_query(query, kwargs, self._actual_space, self._dimension)
        if plan is None:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        return await self._arun(query_flow(plan, self._limits), "querying")

    def get_index(self, doc_ids: Sequence[str] | None = None) -> dict[str, dict[str, str]]:
        """``{doc_id: {node_id: lige_hash}}`` for ``doc_ids`` (all docs when None).

        Reads only ids and metadata, page by page. A node without ``lige_hash`` maps to
        ``""``; nodes without a ref doc are listed under ``""`` when ``doc_ids`` is None.
        """
        return self._run(index_flow(doc_ids, self._limits), "reading the index")

    async def aget_index(self, doc_ids: Sequence[str] | None = None) -> dict[str, dict[str, str]]:
        """Async :meth:`get_index`."""
        return await self._arun(index_flow(doc_ids, self._limits), "reading the index")

    def validate_node(self, node: BaseNode) -> None:
        """Raise ValueError if ``node`` could not be stored, whatever its embedding.

        E.g. metadata Chroma cannot hold and JSON cannot encode (a ``datetime``, an
        object), or, on a server, a record larger than one request may carry.
        ``ingest()`` calls it before paying for a vector, so such a chunk fails alone
        instead of stopping the run after it was embedded.
        """
        record = encode_node(node, embedding=[0.0] if node.embedding is None else None)
        cap = self._limits.payload_cap
        if cap is not None:
            size = record_wire_bytes(record, self._dimension or 3072, self._limits.base64)
            if size > cap:
                raise ValueError(
                    f"it needs about {size / 2**20:.1f} MiB in one HTTP request, more than "
                    f"the {cap / 2**20:.0f} MiB this store sends per request (chroma run "
                    "refuses bodies over 40 MiB); split it into smaller chunks"
                )

    def count(self) -> int:
        """Number of nodes in the collection."""
        return self._run(count_flow(), "counting")

    async def acount(self) -> int:
        """Async :meth:`count`."""
        return await self._arun(count_flow(), "counting")

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Release the client and (local mode) this store's share of the directory lock."""
        if self._closed:
            return
        self._closed = True
        self._collection = None
        if self._finalizer is not None:
            self._finalizer()
        self._lease = None

    def __enter__(self) -> ChromaStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> ChromaStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the settings only; clients are reopened on unpickling."""
        return {"__dict__": dict(self.__dict__)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["__dict__"])  # type: ignore[misc]

    def __copy__(self) -> ChromaStore:
        return type(self)(**dict(self.__dict__))

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> ChromaStore:
        return type(self)(**dict(self.__dict__))
