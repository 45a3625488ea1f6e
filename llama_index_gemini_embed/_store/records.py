"""Node <-> Chroma record encoding: compact, exact round trips, no I/O.

record = encode_node(node)               # id, embedding, document, metadata for upsert
node = decode_node(record.id, record.document, record.metadata)

Layout of a record's Chroma metadata (only keys that are needed are written):

* the node's own metadata, key by key, when Chroma can store the value exactly:
  str, int (64-bit), finite float, bool, or a non-empty list of one of those types
  (numpy scalars and arrays are converted first);
* ``lige_meta``: one JSON object holding every other user value (None, dicts, empty or
  mixed lists, NaN, huge ints) and every key Chroma cannot hold (``""``, ``#...``,
  ``$...``, ``chroma:...``, or one of the internal keys below);
* ``lige_keys``: the user keys whose value is not empty (None, ``""`` and ``[]`` count as
  empty), in the node's order, so that ``IS_EMPTY`` and negated filters can be answered
  by Chroma; it also gives back the key order (Chroma returns keys in its own order).
  Keys starting with ``lige_`` (the package's own, e.g. ingest's ``lige_hash``) are not
  listed since issue 14, so a row with no other key has no ``lige_keys`` at all: Chroma
  spends CPU per metadata entry, and presence filters on them are refused;
* ``lige_order``: JSON list of every user key in the node's order, written only when
  ``lige_keys`` followed by the other keys sorted would not reproduce it (e.g. an empty
  value before a non-empty one), so that ``node.hash`` and the metadata text an LLM sees
  are unchanged by a round trip;
* ``doc_id``: the ref doc id (the SOURCE relationship), and ``document_id``, the same id
  under the key LlamaIndex's ``ChromaVectorStore`` deletes by (unless the node's own
  metadata has a ``document_id``), so that store can read and manage our collections;
* ``lige_node``: JSON with the node class when it is not TextNode (``t``), the
  relationships (``r``), and node fields that differ from their defaults (char offsets,
  excluded keys, templates...). A relationship is the bare id when it carries nothing
  else; a related node's metadata equal to the node's own is written as ``"m": 1``.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from llama_index.core.schema import (
    BaseNode,
    Document,
    ImageDocument,
    ImageNode,
    IndexNode,
    MetadataMode,
    Node,
    NodeRelationship,
    ObjectType,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node

__all__ = [
    "DOC_ID_KEY",
    "HASH_KEY",
    "INTERNAL_KEYS",
    "KEYS_KEY",
    "META_KEY",
    "NODE_KEY",
    "ORDER_KEY",
    "PACKAGE_KEY_PREFIX",
    "Record",
    "decode_metadata",
    "decode_node",
    "encode_metadata",
    "encode_node",
    "is_empty_value",
]

DOC_ID_KEY = "doc_id"
#: ChromaVectorStore's ref doc key (its ``delete(ref_doc_id)`` filters on it).
UPSTREAM_DOC_KEY = "document_id"
#: Keys ChromaVectorStore (llama_index.core.vector_stores.utils.node_to_metadata_dict) writes.
UPSTREAM_KEYS = frozenset({"_node_content", "_node_type", "document_id", "doc_id", "ref_doc_id"})
NODE_KEY = "lige_node"
META_KEY = "lige_meta"
KEYS_KEY = "lige_keys"
ORDER_KEY = "lige_order"
INTERNAL_KEYS = frozenset({DOC_ID_KEY, NODE_KEY, META_KEY, KEYS_KEY, ORDER_KEY})
#: Content hash the ingestion engine keeps in node metadata (see ``ChromaStore.get_index``).
HASH_KEY = "lige_hash"
#: Node metadata keys of the package itself: never listed in ``lige_keys``.
PACKAGE_KEY_PREFIX = "lige_"

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_SCALAR_TYPES = (str, int, float, bool)

#: Short names for the TextNode fields that most often differ from their defaults.
_FIELD_ALIASES = {
    "start_char_idx": "s",
    "end_char_idx": "e",
    "excluded_embed_metadata_keys": "xe",
    "excluded_llm_metadata_keys": "xl",
    "metadata_template": "mt",
    "metadata_separator": "ms",
    "text_template": "tt",
    "mimetype": "mime",
}
_ALIAS_FIELDS = {v: k for k, v in _FIELD_ALIASES.items()}
_NODE_CLASSES: dict[str, type[BaseNode]] = {
    cls.class_name(): cls for cls in (TextNode, IndexNode, ImageNode, Node, Document, ImageDocument)
}
_RESOURCE_FIELDS = ("image_resource", "audio_resource", "video_resource", "text_resource")
#: ``modality`` values (multimodal contract) decoded as media nodes; "text" stays a TextNode.
_MEDIA_MODALITIES = frozenset({"image", "pdf", "audio", "video"})
#: Stored elsewhere in the record, or (IndexNode.obj: any Python object) not storable.
_EXCLUDED_FIELDS = {"id_", "embedding", "metadata", "relationships", "text", "obj"}


@dataclass(frozen=True)
class Record:
    """One Chroma row: what ``collection.upsert`` receives for a node."""

    id: str
    embedding: Sequence[float]
    document: str
    metadata: dict[str, Any] | None


# ----------------------------------------------------------------------------- values


def is_empty_value(value: object) -> bool:
    """LlamaIndex's IS_EMPTY: None, ``""`` or ``[]``."""
    return value is None or (isinstance(value, str | list) and len(value) == 0)


def _plain(value: Any) -> Any:
    """numpy scalars/arrays to Python values (recursively in lists); others unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _native_scalar(value: object) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return _INT_MIN <= value <= _INT_MAX
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return _utf8_ok(value)
    return False


def _native_value(value: object) -> bool:
    """Can Chroma store ``value`` and give back exactly the same thing?"""
    if isinstance(value, list):
        if not value or type(value[0]) not in _SCALAR_TYPES:
            return False
        first = type(value[0])
        return all(type(v) is first and _native_scalar(v) for v in value)
    return type(value) in _SCALAR_TYPES and _native_scalar(value)


_POW10 = tuple(float(f"1e{k}") for k in range(309))


def _parsed_like_chroma(text: str) -> float:
    """The float Chroma keeps for the decimal ``text`` of a metadata value.

    Chroma 1.x parses metadata floats with serde_json's default (not correctly rounded)
    algorithm: the decimal significand as a float, then one multiplication or division by
    a power of ten. Beyond 2**53 or 10**22 that can be one ulp off: 1e-26 comes back as
    9.999999999999999e-27.
    """
    negative = text.startswith("-")
    mantissa, _, exponent = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0") or "0"
    power = int(exponent or 0) - len(fraction)
    while int(digits) >= 2**64:  # serde keeps a u64 significand; the rest shifts the power
        digits, power = digits[:-1], power + 1
    result = float(int(digits))
    while True:
        if abs(power) < len(_POW10):
            result = result * _POW10[power] if power >= 0 else result / _POW10[-power]
            break
        if result == 0.0:
            break
        result, power = result / 1e308, power + 308
    return -result if negative else result


def _exact_in_chroma(value: float) -> bool:
    """Does Chroma give this finite float back bit for bit?

    Checked for the shortest decimal written both as Python and as JSON encoders do
    (``3857715177957194.0`` and ``3.857715177957194e15`` parse differently).
    """
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole.lstrip("-") + fraction).lstrip("0") or "0"
    power = int(exponent or 0) - len(fraction)
    stripped = digits.rstrip("0") or "0"
    power += len(digits) - len(stripped)
    sign = "-" if value < 0 else ""
    return all(_parsed_like_chroma(form) == value for form in (text, f"{sign}{stripped}e{power}"))


def _needs_exact_copy(value: object) -> bool:
    """A native float (or float list) Chroma would return slightly off: keep a JSON copy."""
    if isinstance(value, list):
        return any(_needs_exact_copy(v) for v in value)
    return type(value) is float and not _exact_in_chroma(value)


def _native_key(key: str) -> bool:
    return (
        key != ""
        and not key.startswith(("#", "$", "chroma:"))
        and key not in INTERNAL_KEYS
        and _utf8_ok(key)
    )


def _json_default(value: object) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return _plain(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _dumps(value: object, what: str) -> str:
    """Compact JSON; falls back to ASCII escapes for text that is not valid UTF-8."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Cannot store {what}: {exc}. Metadata values must be str, int, float, bool, "
            "None, or lists/dicts of those."
        ) from exc
    if not _utf8_ok(text):
        text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), default=_json_default)
    return text


# ----------------------------------------------------------------------------- metadata


def _default_order(present: Sequence[str], keys: Sequence[str]) -> list[str]:
    """The key order decoding gives without ``lige_order``: non-empty keys, then the rest sorted."""
    listed = set(present)
    return [*present, *sorted(k for k in keys if k not in listed)]


def encode_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """User metadata -> Chroma metadata: natives, plus the ``lige_*`` keys above."""
    out: dict[str, Any] = {}
    side: dict[str, Any] = {}
    present: list[str] = []
    for key, raw in metadata.items():
        if not isinstance(key, str):
            raise ValueError(f"Metadata keys must be strings; got {key!r} ({type(key).__name__}).")
        value = _plain(raw)
        if _native_key(key) and _native_value(value):
            out[key] = value  # what Chroma filters on
            if _needs_exact_copy(value):
                side[key] = value  # what is returned: decode_metadata lets it win
        else:
            side[key] = value
        if not is_empty_value(value) and _utf8_ok(key) and not key.startswith(PACKAGE_KEY_PREFIX):
            present.append(key)
    if side:
        out[META_KEY] = _dumps(side, f"metadata {sorted(side)!r}")
    if present:
        out[KEYS_KEY] = present
    keys = list(metadata)
    if keys != _default_order(present, keys):
        out[ORDER_KEY] = _dumps(keys, "metadata key order")
    return out


def decode_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Chroma metadata -> the user metadata that was encoded, in its key order."""
    if not metadata:
        return {}
    values = {k: v for k, v in metadata.items() if k not in INTERNAL_KEYS}
    side = metadata.get(META_KEY)
    if isinstance(side, str):
        values.update(json.loads(side))
    # Chroma hands keys back in its own order: put them back in the node's.
    raw_order = metadata.get(ORDER_KEY)
    if isinstance(raw_order, str):
        order = json.loads(raw_order)
    else:
        present = metadata.get(KEYS_KEY)
        order = _default_order(present if isinstance(present, list) else [], list(values))
    # Our copy of the ref doc id for ChromaVectorStore, unless the node had the key itself.
    ref = metadata.get(DOC_ID_KEY)
    present_keys = metadata.get(KEYS_KEY)
    if (
        ref is not None
        and values.get(UPSTREAM_DOC_KEY) == ref
        and UPSTREAM_DOC_KEY not in (present_keys if isinstance(present_keys, list) else ())
    ):
        del values[UPSTREAM_DOC_KEY]
    out = {k: values[k] for k in order if k in values}
    if len(out) != len(values):  # a row written by something else: keep every key
        out.update(values)
    return out


# ----------------------------------------------------------------------------- relationships


def _node_type_value(node_type: object) -> str | None:
    if node_type is None:
        return None
    if isinstance(node_type, ObjectType):
        return str(node_type.value)
    return str(node_type)


def _encode_related(
    info: RelatedNodeInfo, own_metadata: Mapping[str, Any], implied_id: str | None
) -> str | dict[str, Any] | None:
    out: dict[str, Any] = {}
    if info.node_id != implied_id:
        out["i"] = info.node_id
    node_type = _node_type_value(info.node_type)
    if node_type is not None:
        out["t"] = node_type
    if info.hash is not None:
        out["h"] = info.hash
    if info.metadata:
        out["m"] = 1 if info.metadata == own_metadata else info.metadata
    if not out:
        return None
    if list(out) == ["i"]:
        return info.node_id
    return out


def _encode_relationships(node: BaseNode, doc_id: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rel, info in node.relationships.items():
        key = str(rel.value) if isinstance(rel, NodeRelationship) else str(rel)
        if isinstance(info, list):
            out[key] = [_encode_related(i, node.metadata, None) for i in info]
        else:
            implied = doc_id if key == str(NodeRelationship.SOURCE.value) else None
            encoded = _encode_related(info, node.metadata, implied)
            if encoded is not None:
                out[key] = encoded
            elif implied is None:  # pragma: no cover - a non-SOURCE info always has an id
                out[key] = info.node_id
    return out


def _decode_related(raw: Any, own_metadata: Mapping[str, Any], implied: str | None) -> Any:
    if isinstance(raw, str):
        return RelatedNodeInfo(node_id=raw)
    metadata = raw.get("m", {})
    if metadata == 1:
        metadata = copy.deepcopy(dict(own_metadata))
    return RelatedNodeInfo(
        node_id=raw.get("i", implied),
        node_type=raw.get("t"),
        hash=raw.get("h"),
        metadata=metadata,
    )


def _decode_relationships(
    raw: Mapping[str, Any], doc_id: str | None, own_metadata: Mapping[str, Any]
) -> dict[NodeRelationship, Any]:
    out: dict[NodeRelationship, Any] = {}
    if doc_id is not None:
        out[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc_id)
    for key, value in raw.items():
        rel = NodeRelationship(key)
        implied = doc_id if rel is NodeRelationship.SOURCE else None
        if isinstance(value, list):
            out[rel] = [_decode_related(v, own_metadata, None) for v in value]
        else:
            out[rel] = _decode_related(value, own_metadata, implied)
    return out


# ----------------------------------------------------------------------------- nodes


def _node_text(node: BaseNode) -> str:
    if isinstance(node, TextNode):
        return node.text
    return node.get_content(metadata_mode=MetadataMode.NONE)


def _drop_media_bytes(fields: dict[str, Any]) -> None:
    """Never store raw media: ImageNode's base64 ``image`` and resources' bytes/vectors.

    The file path/URL, MIME type and (from ingest) ``media_sha256`` stay, which is what
    the node needs to be found again; the bytes are re-read from ``file_path`` when needed.
    """
    fields.pop("image", None)
    for key in _RESOURCE_FIELDS:
        resource = fields.get(key)
        if isinstance(resource, dict):
            for heavy in ("data", "embeddings"):
                resource.pop(heavy, None)
            if resource.get("path") is None:
                resource.pop("path", None)
            if not resource:
                del fields[key]


def _media_node(
    modality: object, data: dict[str, Any], cls: type[BaseNode], text: str
) -> BaseNode | None:
    """Rows ingest wrote for media (``modality`` metadata) as the LlamaIndex node type they are.

    image -> ImageNode(image_path=file_path); audio/video -> Node with that resource's path;
    pdf -> Node whose text_resource is the page range's text layer. None: not a media row,
    or its stored class already says what it is.
    """
    if modality not in _MEDIA_MODALITIES or cls not in (TextNode, Node):
        return None
    metadata = data["metadata"]
    path, mime = metadata.get("file_path"), metadata.get("mime_type")
    path = path if isinstance(path, str) else None
    mime = mime if isinstance(mime, str) else None
    if cls is TextNode:
        data = {k: v for k, v in data.items() if k != "text"}
        data.setdefault("text_resource", {"text": text})
    elif text:
        # encode_node drops a Node's text_resource.text equal to the row's document: the
        # row's text (a PDF range's text layer) goes back where it came from.
        resource = data.get("text_resource")
        data["text_resource"] = {**(resource if isinstance(resource, dict) else {}), "text": text}
    if modality == "image":
        image_data = {k: v for k, v in data.items() if k != "text_resource"}
        return ImageNode(**image_data, text=text, image_path=path, image_mimetype=mime)
    if modality in ("audio", "video") and path is not None:
        key = f"{modality}_resource"
        data.setdefault(key, {"path": path, "mimetype": mime})
    return Node(**{k: v for k, v in data.items() if k in Node.model_fields})


def encode_node(node: BaseNode, *, embedding: Sequence[float] | None = None) -> Record:
    """A LlamaIndex node -> the Chroma row that stores it (see the module docstring).

    ``embedding``: the vector to store instead of ``node.embedding`` (a placeholder when
    only checking that the node can be stored)."""
    node_id = node.node_id
    if not node_id:
        raise ValueError("Every node needs a non-empty id_ to be stored in Chroma.")
    vector = node.embedding if embedding is None else embedding
    if vector is None:
        raise ValueError(
            f"Node {node_id!r} has no embedding: embed nodes before adding them "
            "(ChromaStore never lets Chroma compute embeddings)."
        )
    document = _node_text(node)
    metadata = encode_metadata(node.metadata)
    doc_id = node.ref_doc_id
    if doc_id is not None:
        metadata[DOC_ID_KEY] = doc_id
        if UPSTREAM_DOC_KEY not in node.metadata:
            metadata[UPSTREAM_DOC_KEY] = doc_id

    fields = node.model_dump(mode="json", exclude_defaults=True, exclude=_EXCLUDED_FIELDS)
    fields.pop("class_name", None)
    _drop_media_bytes(fields)
    resource = fields.get("text_resource")
    if isinstance(resource, dict) and resource.get("text") == document:
        resource.pop("text")
    info: dict[str, Any] = {_FIELD_ALIASES.get(k, k): v for k, v in fields.items()}
    if node.class_name() != TextNode.class_name():
        info["t"] = node.class_name()
    relationships = _encode_relationships(node, doc_id)
    if relationships:
        info["r"] = relationships
    if info:
        metadata[NODE_KEY] = _dumps(info, f"node {node_id!r}")
    return Record(
        id=node_id,
        embedding=vector,
        document=document,
        metadata=metadata or None,
    )


def _decode_upstream(
    node_id: str,
    document: str | None,
    metadata: Mapping[str, Any],
    embedding: Sequence[float] | None,
) -> BaseNode:
    """A row ChromaVectorStore wrote, read as it reads it (its keys are not user metadata)."""
    node = metadata_dict_to_node(dict(metadata), text=document)
    node.id_ = node_id
    if embedding is not None:
        node.embedding = [float(x) for x in embedding]
    return node


def decode_node(
    node_id: str,
    document: str | None,
    metadata: Mapping[str, Any] | None,
    embedding: Sequence[float] | None = None,
) -> BaseNode:
    """A Chroma row -> the node that :func:`encode_node` stored (embedding if given)."""
    metadata = metadata or {}
    if "_node_content" in metadata and NODE_KEY not in metadata and KEYS_KEY not in metadata:
        return _decode_upstream(node_id, document, metadata, embedding)
    user_metadata = decode_metadata(metadata)
    raw_info = metadata.get(NODE_KEY)
    info: dict[str, Any] = json.loads(raw_info) if isinstance(raw_info, str) else {}
    cls = _NODE_CLASSES.get(str(info.pop("t", TextNode.class_name())), TextNode)
    raw_doc_id = metadata.get(DOC_ID_KEY)
    doc_id = raw_doc_id if isinstance(raw_doc_id, str) else None
    relationships = _decode_relationships(info.pop("r", {}), doc_id, user_metadata)

    data: dict[str, Any] = {_ALIAS_FIELDS.get(k, k): v for k, v in info.items()}
    data.update(id_=node_id, metadata=user_metadata, relationships=relationships)
    if embedding is not None:
        data["embedding"] = [float(x) for x in embedding]
    text = document or ""
    media = _media_node(user_metadata.get("modality"), data, cls, text)
    if media is not None:
        return media
    if issubclass(cls, TextNode):
        data["text"] = text
    elif isinstance(data.get("text_resource"), dict):
        data["text_resource"]["text"] = text
    elif text:
        data["text_resource"] = {"text": text}
    return cls(**data)
