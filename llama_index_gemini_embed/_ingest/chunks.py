"""Documents -> chunks with stable ids, the spec to embed and the hash that decides it.

    chunker = Chunker(embed_model, transformations)
    for node, spec, planned in chunker.split(window_of_documents):
        ...   # spec is None for an empty chunk; planned.hash is its ``lige_hash``

Text documents go through the transformations (a sentence splitter by default); media
files (gemini-embedding-2) become their items (:mod:`.media`). Each chunk gets the id
``<doc id>#<i>``, its embedding input from the model, and a content hash stored in its
metadata (``lige_hash``) that tells later runs whether to embed it again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypeAlias

from llama_index.core.ingestion import run_transformations
from llama_index.core.schema import (
    BaseNode,
    Document,
    MetadataMode,
    NodeRelationship,
    RelatedNodeInfo,
    TransformComponent,
)

from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
from llama_index_gemini_embed._embedding.engine import TextSpec
from llama_index_gemini_embed._errors import ConfigurationError

from .media import is_media, media_nodes
from .plan import HASH_KEY, PlannedNode, fingerprint_hash, node_hash, node_id_for
from .seen import DEFAULT_MEMORY_LIMIT_IDS, SeenIds

__all__ = ["Chunk", "Chunker"]

#: A chunk, what the API is sent for it (None: empty, not sent), and its planning facts.
Chunk: TypeAlias = "tuple[BaseNode, TextSpec | None, PlannedNode]"


class Chunker:
    """Splits windows of documents into identified chunks; remembers the ids it has seen.

    ``memory_limit_ids``: document ids held in memory before they spill to disk
    (:class:`SeenIds`); :meth:`close` removes the spill when the run ends.
    """

    def __init__(
        self,
        embed_model: GeminiEmbedding,
        transformations: Sequence[TransformComponent],
        *,
        memory_limit_ids: int = DEFAULT_MEMORY_LIMIT_IDS,
    ) -> None:
        self.embed_model = embed_model
        self.transformations = list(transformations)
        self.fp_hash = fingerprint_hash(embed_model.fingerprint)
        self.seen_docs = SeenIds(memory_limit_ids=memory_limit_ids)

    def close(self) -> None:
        """Forget the ids seen and remove their spill directory (at the end of the run)."""
        self.seen_docs.close()

    def wire_spec(self, node: BaseNode, spec: TextSpec) -> TextSpec:
        """What to send for a chunk: a media chunk's bytes are read now, not when planned."""
        return self.embed_model.node_input(node) if is_media(node) else spec

    def split(self, docs: list[Document]) -> list[Chunk]:
        """Transform one window of documents and give each chunk its id, spec and hash."""
        repeated = self.seen_docs.add([doc.id_ for doc in docs])
        if repeated is not None:
            raise ConfigurationError(
                f"Document id {repeated!r} appears twice in the input: ids must be unique "
                "(each run replaces a document's chunks by id)"
            )
        nodes = self._transform(docs)
        self._assign_ids(nodes)
        return [self._identify(node) for node in nodes]

    def _transform(self, docs: list[Document]) -> list[BaseNode]:
        """Text documents through the transformations; media files into their items."""
        texts = [doc for doc in docs if not is_media(doc)]
        nodes = list(run_transformations(texts, self.transformations, in_place=False))
        inputs = {id(doc) for doc in texts}
        for position, node in enumerate(nodes):
            # Never mutate the caller's objects (a Document passes through unchanged when
            # there are no transformations; splitters may share metadata dicts).
            if id(node) in inputs:
                node = nodes[position] = node.model_copy()
            node.metadata = dict(node.metadata)
            node.excluded_embed_metadata_keys = list(node.excluded_embed_metadata_keys)
            node.excluded_llm_metadata_keys = list(node.excluded_llm_metadata_keys)
            node.relationships = dict(node.relationships)
        for doc in docs:
            if is_media(doc):
                nodes.extend(media_nodes(doc))
        return nodes

    @staticmethod
    def _assign_ids(nodes: list[BaseNode]) -> None:
        """Stable positional ids (``doc#i``), with neighbour links renamed to match."""
        counters: dict[str, int] = {}
        renamed: dict[str, str] = {}
        for node in nodes:
            doc_id = node.ref_doc_id or node.node_id
            index = counters.get(doc_id, 0)
            counters[doc_id] = index + 1
            new_id = node_id_for(doc_id, index)
            renamed[node.node_id] = new_id
            node.id_ = new_id
            if node.ref_doc_id is None:
                node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc_id)
        for node in nodes:
            for rel in (NodeRelationship.PREVIOUS, NodeRelationship.NEXT):
                info = node.relationships.get(rel)
                if isinstance(info, RelatedNodeInfo) and info.node_id in renamed:
                    node.relationships[rel] = info.model_copy(
                        update={"node_id": renamed[info.node_id]}
                    )

    def _identify(self, node: BaseNode) -> Chunk:
        """A chunk's spec and hash (None for an empty text chunk), stored in its metadata."""
        doc_id = node.ref_doc_id or node.node_id
        media = node.metadata.get("media_sha256") if is_media(node) else None
        if media is None and not node.get_content(metadata_mode=MetadataMode.NONE).strip():
            return node, None, PlannedNode(node.node_id, doc_id, None)
        spec = self.embed_model.node_input(node)
        if spec.media:  # bytes are read again just before sending: never queued by the run
            spec = dataclasses.replace(spec, media=())
        digest = node_hash(spec, node.metadata, self.fp_hash, media)
        # The fingerprint is in the hash (and recorded once on the collection): stores
        # written before 0.4 also carry it per row as ``lige_fp``, which nothing reads.
        node.metadata[HASH_KEY] = digest
        for keys in (node.excluded_embed_metadata_keys, node.excluded_llm_metadata_keys):
            if HASH_KEY not in keys:
                keys.append(HASH_KEY)
        return node, spec, PlannedNode(node.node_id, doc_id, digest)
