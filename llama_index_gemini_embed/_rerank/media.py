"""The media a candidate carries, loaded for the judge: images and PDF pages.

    media = load_media(node)          # Media(parts=(MediaPart("image/png", b"…"),), note=None)
    media.parts, media.size           # what to send inline, and its bytes
    media.note                        # why nothing could be loaded (None: nothing to load)

Where media come from (the multimodal contract, /plan/multimodal-contract.md):

* ``ImageNode``: ``image`` (base64), ``image_path``, or a ``data:`` ``image_url``.
* Any node's ``image_resource`` (``MediaResource``: ``data`` is stored base64, ``path``,
  or a ``data:`` URL).
* A PDF page range: metadata ``modality="pdf"`` (or ``mime_type="application/pdf"``) with
  ``file_path``; the whole file is sent, with ``page_start``/``page_end`` named in the
  passage text (page cutting is left to the embedding side's cutter).

Remote ``http(s)`` URLs are not fetched (the judge gets the node's text only). Reading
never raises: a missing or unreadable file becomes a ``note`` and the candidate is judged
by its text, or kept in retrieval order when it has none.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_index.core.schema import BaseNode, ImageNode

__all__ = ["JUDGE_MEDIA_TYPES", "Media", "MediaPart", "load_media", "sniff_mime_type"]

#: Media the judge is sent (Gemini generation models read these inline).
JUDGE_MEDIA_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif", "application/pdf"}
)


@dataclass(frozen=True)
class MediaPart:
    """One inline medium for the judge."""

    mime_type: str
    data: bytes


@dataclass(frozen=True)
class Media:
    """What was loaded for one candidate: ``parts`` to send, or a ``note`` saying why not."""

    parts: tuple[MediaPart, ...] = ()
    note: str | None = None
    label: str = ""
    """Said to the judge in the passage text, e.g. "pages 3-5 of report.pdf"."""

    @property
    def size(self) -> int:
        return sum(len(part.data) for part in self.parts)


def sniff_mime_type(data: bytes) -> str | None:
    """The MIME type from the leading bytes (PNG, JPEG, WebP, PDF), else None.

    >>> sniff_mime_type(b"\\x89PNG\\r\\n\\x1a\\n..."), sniff_mime_type(b"%PDF-1.7")
    ('image/png', 'application/pdf')
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def _from_data_url(url: str) -> bytes | None:
    if not url.startswith("data:") or "," not in url:
        return None
    header, payload = url[5:].split(",", 1)
    try:
        return base64.b64decode(payload) if header.endswith(";base64") else payload.encode()
    except (binascii.Error, ValueError):
        return None


def _b64(value: str | bytes) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _read(path: str | Path) -> tuple[bytes | None, str | None]:
    try:
        return Path(path).read_bytes(), None
    except OSError as error:
        return None, f"cannot read {path} ({type(error).__name__})"


def _part(data: bytes, declared: str | None, where: str) -> Media:
    mime = (declared or "").lower() or sniff_mime_type(data)
    if mime not in JUDGE_MEDIA_TYPES:
        return Media(note=f"{where}: {mime or 'unknown'} media are not sent to the judge")
    return Media(parts=(MediaPart(mime, data),))


def _image(node: BaseNode) -> Media | None:
    if isinstance(node, ImageNode):
        declared = node.image_mimetype
        if node.image:
            data = _b64(node.image)
            return _part(data, declared, "image") if data else Media(note="image: not base64")
        if node.image_path:
            data, problem = _read(node.image_path)
            return _part(data, declared, node.image_path) if data else Media(note=problem)
        if node.image_url:
            data = _from_data_url(str(node.image_url))
            if data is None:
                return Media(note="image_url: remote images are not fetched")
            return _part(data, declared, "image_url")
    resource = getattr(node, "image_resource", None)
    if resource is None:
        return None
    declared = resource.mimetype
    if resource.data:
        data = _b64(resource.data)
        return _part(data, declared, "image") if data else Media(note="image: not base64")
    if resource.path:
        data, problem = _read(resource.path)
        return _part(data, declared, str(resource.path)) if data else Media(note=problem)
    if resource.url:
        data = _from_data_url(str(resource.url))
        if data is None:
            return Media(note="image_resource.url: remote images are not fetched")
        return _part(data, declared, "image_resource.url")
    return None


def _pdf(metadata: dict[str, Any]) -> Media | None:
    is_pdf = metadata.get("modality") == "pdf" or metadata.get("mime_type") == "application/pdf"
    path = metadata.get("file_path")
    if not is_pdf or not path:
        return None
    data, problem = _read(path)
    if data is None:
        return Media(note=problem)
    name = metadata.get("file_name") or Path(str(path)).name
    start, end = metadata.get("page_start"), metadata.get("page_end")
    label = f"PDF {name}"
    if start is not None:
        pages = f"page {start}" if end in (None, start) else f"pages {start}-{end}"
        label = f"{pages} of the attached PDF {name}; judge only those pages"
    media = _part(data, "application/pdf", str(path))
    return Media(parts=media.parts, note=media.note, label=label)


def load_media(node: BaseNode) -> Media:
    """The image or PDF the judge should see for ``node`` (empty ``Media``: text only)."""
    found = _image(node) or _pdf(dict(node.metadata or {}))
    return found or Media()
