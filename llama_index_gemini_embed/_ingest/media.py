"""Media files for gemini-embedding-2: images, PDFs, audio and video as LlamaIndex nodes.

    kind = media_kind(Path("photo.png"))            # -> ("image", "image/png")
    doc = media_document(Path("report.pdf"), "report.pdf", kind)
    nodes = media_nodes(doc)   # one node per image/clip; a PDF: one per <= 6 pages

The nodes follow the project's multimodal contract: ``ImageNode(image_path=...)``,
``Node(audio_resource=...)``, ``Node(video_resource=...)``, and for a PDF page range
``Node(text_resource=<its text layer>)`` whose metadata names the pages. Metadata holds
``modality``, ``file_path``, ``file_name``, ``mime_type``, ``media_sha256`` (the hash of the
bytes embedded: the incremental and resume key) and, for PDFs, ``page_start``/``page_end``
(1-based, inclusive). The bytes themselves are never kept: the embedding model reads them
from ``file_path`` (a PDF cut to the page range) when it embeds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from llama_index.core.schema import (
    BaseNode,
    Document,
    ImageNode,
    MediaResource,
    Node,
    NodeRelationship,
    RelatedNodeInfo,
)

__all__ = [
    "MEDIA_METADATA_KEYS",
    "MEDIA_SUFFIXES",
    "PDF_PAGES_PER_ITEM",
    "is_media",
    "media_document",
    "media_kind",
    "media_nodes",
]

#: Suffix -> (modality, MIME type) for the media gemini-embedding-2 embeds (Google's
#: documented types: PNG/JPEG images, PDF, MP4/MPEG/MOV video, WAV/MP3/FLAC/OGG audio).
MEDIA_SUFFIXES: dict[str, tuple[str, str]] = {
    ".png": ("image", "image/png"),
    ".jpg": ("image", "image/jpeg"),
    ".jpeg": ("image", "image/jpeg"),
    ".pdf": ("pdf", "application/pdf"),
    ".wav": ("audio", "audio/wav"),
    ".mp3": ("audio", "audio/mpeg"),
    ".flac": ("audio", "audio/flac"),
    ".ogg": ("audio", "audio/ogg"),
    ".mp4": ("video", "video/mp4"),
    ".mpeg": ("video", "video/mpeg"),
    ".mpg": ("video", "video/mpeg"),
    ".mov": ("video", "video/quicktime"),
}
#: A PDF is embedded in items of at most this many pages (the per-item limit).
PDF_PAGES_PER_ITEM = 6
#: Stored and filterable, but neither embedded as text nor shown to LLMs.
MEDIA_METADATA_KEYS = [
    "modality",
    "mime_type",
    "media_sha256",
    "page_start",
    "page_end",
    "time_start_s",
    "time_end_s",
]
_MODALITIES = frozenset(kind for kind, _ in MEDIA_SUFFIXES.values())


def media_kind(path: Path) -> tuple[str, str] | None:
    """``(modality, MIME type)`` when ``path`` is a media file by its suffix, else None."""
    return MEDIA_SUFFIXES.get(path.suffix.lower())


def is_media(node: BaseNode) -> bool:
    """True for a node (or document) that ingest made from a media file."""
    return node.metadata.get("modality") in _MODALITIES and "media_sha256" in node.metadata


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def media_document(
    path: Path, doc_id: str, kind: tuple[str, str], metadata: dict[str, Any], excluded: list[str]
) -> Document:
    """The document standing for one media file: no text, its facts in metadata."""
    modality, mime_type = kind
    meta = {
        **metadata,
        "modality": modality,
        "mime_type": mime_type,
        "media_sha256": _file_sha256(path),
    }
    keys = [*excluded, *(k for k in MEDIA_METADATA_KEYS if k not in excluded)]
    return Document(
        text="",
        id_=doc_id,
        metadata=meta,
        excluded_embed_metadata_keys=list(keys),
        excluded_llm_metadata_keys=list(keys),
    )


def media_nodes(doc: Document) -> list[BaseNode]:
    """The items to embed for a media document: one per image or clip, per <= 6 PDF pages."""
    meta = dict(doc.metadata)
    path, mime_type = str(meta["file_path"]), str(meta["mime_type"])

    def common(metadata: dict[str, Any]) -> dict[str, Any]:
        return {
            "metadata": metadata,
            "excluded_embed_metadata_keys": list(doc.excluded_embed_metadata_keys),
            "excluded_llm_metadata_keys": list(doc.excluded_llm_metadata_keys),
            "relationships": {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc.id_)},
        }

    modality = meta["modality"]
    if modality == "image":
        return [ImageNode(image_path=path, image_mimetype=mime_type, **common(meta))]
    if modality == "audio":
        return [
            Node(audio_resource=MediaResource(path=Path(path), mimetype=mime_type), **common(meta))
        ]
    if modality == "video":
        return [
            Node(video_resource=MediaResource(path=Path(path), mimetype=mime_type), **common(meta))
        ]
    return [
        Node(text_resource=MediaResource(text=text), **common(page_meta))
        for text, page_meta in _pdf_page_ranges(Path(path), meta)
    ]


def _pdf_page_ranges(path: Path, meta: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(text layer, metadata)`` per range of at most 6 pages; the hash covers the range."""
    from pypdf import PdfReader

    reader = PdfReader(path)
    pages = len(reader.pages)
    ranges = []
    for start in range(0, pages, PDF_PAGES_PER_ITEM):
        end = min(start + PDF_PAGES_PER_ITEM, pages)
        text = "\n".join((reader.pages[i].extract_text() or "") for i in range(start, end))
        key = f"{meta['media_sha256']}:pages {start + 1}-{end}"
        ranges.append(
            (
                text.strip(),
                {
                    **meta,
                    "page_start": start + 1,
                    "page_end": end,
                    "media_sha256": hashlib.sha256(key.encode()).hexdigest(),
                },
            )
        )
    return ranges
