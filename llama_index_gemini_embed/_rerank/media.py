"""The media a candidate carries, loaded for the judge: images and PDF pages.

    media = load_media(node)          # Media(parts=(MediaPart("image/png", b"…"),), note=None)
    media.parts, media.size           # what to send inline, and its bytes
    media.note                        # why nothing could be loaded (None: nothing to load)

Loading is the embedding side's :func:`._embedding.media.node_media` (one reader of the
multimodal contract: ``ImageNode`` image/image_path, ``image_resource``, PDF page ranges
from metadata ``modality="pdf"``/``file_path``/``page_start``/``page_end``, cut to those
pages). The judge is sent images and PDFs; audio and video are left to the node's text.
Loading never raises here: a missing or unreadable file becomes a ``note`` and the
candidate is judged by its text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llama_index.core.schema import BaseNode

from llama_index_gemini_embed._embedding.media import node_media
from llama_index_gemini_embed._errors import InputError
from llama_index_gemini_embed._types import MediaPart

__all__ = ["JUDGE_MEDIA_TYPES", "Media", "MediaPart", "load_media"]

#: Media the judge is sent (Gemini generation models read these inline).
JUDGE_MEDIA_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif", "application/pdf"}
)


@dataclass(frozen=True)
class Media:
    """What was loaded for one candidate: ``parts`` to send, or a ``note`` saying why not."""

    parts: tuple[MediaPart, ...] = ()
    note: str | None = None
    label: str = ""
    """Said to the judge in the passage text, e.g. "PDF report.pdf, pages 3-5"."""

    @property
    def size(self) -> int:
        return sum(len(part.data or b"") for part in self.parts)


def _label(node: BaseNode) -> str:
    meta = node.metadata or {}
    if meta.get("modality") != "pdf" and meta.get("mime_type") != "application/pdf":
        return ""
    path = meta.get("file_path")
    name = meta.get("file_name") or (Path(str(path)).name if path else "")
    start, end = meta.get("page_start"), meta.get("page_end")
    if start is None:
        return f"Attached: PDF {name}".rstrip()
    pages = f"page {start}" if end in (None, start) else f"pages {start}-{end}"
    return f"Attached: {pages} of PDF {name}".rstrip()


def load_media(node: BaseNode) -> Media:
    """The images/PDF pages the judge should see for ``node`` (empty ``Media``: text only)."""
    try:
        found = node_media(node)
    except InputError as error:  # unreadable file, unknown type, remote URL, no pypdf
        return Media(note=str(error), label=_label(node))
    parts = tuple(p for p in found if p.data is not None and p.mime_type in JUDGE_MEDIA_TYPES)
    note = None
    if len(parts) < len(found):
        skipped = sorted({p.mime_type for p in found} - JUDGE_MEDIA_TYPES)
        note = f"{', '.join(skipped) or 'uploaded'} media are not sent to the judge"
    return Media(parts=parts, note=note, label=_label(node) if parts else "")
