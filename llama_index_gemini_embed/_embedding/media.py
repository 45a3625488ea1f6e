"""Media for gemini-embedding-2: read it from LlamaIndex nodes, check Google's per-item limits
before anything is spent, estimate its tokens.

    parts = node_media(node)                   # ImageNode, image/audio/video_resource, PDF pages
    check_media(parts, model="gemini-embedding-2", index=0)   # MediaError on any limit

Limits and token rates are the client's own copy of Google's published numbers
(docs/gemini-api.md §7, from docs.cloud.google.com/vertex-ai/generative-ai/docs/models/
gemini/embedding-2 "Technical specifications"): 6 PNG/JPEG images, 1 PDF of at most 6 pages,
1 video of at most 120 s (MP4/MPEG; MOV unverified), 1 audio of at most 180 s (unverified),
8,192 tokens shared with the text; image and PDF page 258 tokens, audio 25/s, video 66/s.
"""

from __future__ import annotations

import base64
import mimetypes
import re
import struct
import wave
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

from llama_index.core.schema import BaseNode, ImageNode, MediaResource

from llama_index_gemini_embed._errors import MediaError
from llama_index_gemini_embed._types import MediaPart

__all__ = [
    "MEDIA_MIME_TYPES",
    "check_media",
    "media_tokens",
    "modality",
    "node_media",
    "part_from_bytes",
]

MEDIA_MIME_TYPES: dict[str, frozenset[str]] = {
    "image": frozenset({"image/png", "image/jpeg"}),
    "pdf": frozenset({"application/pdf"}),
    "video": frozenset({"video/mp4", "video/mpeg", "video/quicktime"}),
    "audio": frozenset(
        {"audio/wav", "audio/x-wav", "audio/mpeg", "audio/mp3", "audio/flac", "audio/ogg"}
    ),
}
MAX_PER_ITEM = {"image": 6, "pdf": 1, "video": 1, "audio": 1}
MAX_PDF_PAGES = 6
MAX_SECONDS = {"video": 120.0, "audio": 180.0}
TOKENS_PER_IMAGE = 258
TOKENS_PER_PDF_PAGE = 258
TOKENS_PER_SECOND = {"audio": 25, "video": 66}
MEDIA_MODELS = "gemini-embedding-2"

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"%PDF-", 0, "application/pdf"),
    (b"WAVE", 8, "audio/wav"),
    (b"fLaC", 0, "audio/flac"),
    (b"OggS", 0, "audio/ogg"),
    (b"ID3", 0, "audio/mpeg"),
    (b"ftypqt", 4, "video/quicktime"),
    (b"ftyp", 4, "video/mp4"),
)


def modality(mime_type: str) -> str | None:
    """``"image"``, ``"pdf"``, ``"audio"``, ``"video"``, or None for an unsupported type."""
    for name, types in MEDIA_MIME_TYPES.items():
        if mime_type in types:
            return name
    return None


def sniff_mime(data: bytes, name: str | None = None) -> str | None:
    """The MIME type from the bytes' signature, else from ``name``'s suffix."""
    for magic, offset, mime in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return mime
    return mimetypes.guess_type(name)[0] if name else None


def part_from_bytes(
    data: bytes, *, mime_type: str | None = None, name: str | None = None
) -> MediaPart:
    """A media part for ``data`` (MIME type given, sniffed, or guessed from ``name``)."""
    mime = mime_type or sniff_mime(data, name)
    if mime is None:
        raise MediaError(
            f"Cannot tell the media type of {name or 'the given bytes'}: pass a MIME type "
            "(e.g. mimetype='image/png' on the MediaResource)"
        )
    return MediaPart(mime, data=data)


# -- reading media from LlamaIndex nodes ---------------------------------------------------


def _resource_part(resource: MediaResource, what: str) -> MediaPart:
    if resource.data is not None:
        data = base64.b64decode(resource.data)  # LlamaIndex stores MediaResource.data as base64
        name = str(resource.path) if resource.path else None
        return part_from_bytes(data, mime_type=resource.mimetype, name=name)
    if resource.path is not None:
        return _read_path(resource.path, resource.mimetype, what)
    raise MediaError(
        f"The node's {what} has no data or path (a URL is not fetched): download it and pass "
        "MediaResource(path=...) or data=..."
    )


def _read_path(path: Path | str, mime_type: str | None, what: str) -> MediaPart:
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as error:
        raise MediaError(f"Cannot read the node's {what} at {file}: {error.strerror}") from None
    return part_from_bytes(data, mime_type=mime_type, name=file.name)


def _pdf_part(node: BaseNode) -> MediaPart | None:
    meta = node.metadata
    is_pdf = meta.get("modality") == "pdf" or meta.get("mime_type") == "application/pdf"
    if not is_pdf or not meta.get("file_path"):
        return None
    part = _read_path(str(meta["file_path"]), "application/pdf", "PDF")
    assert part.data is not None
    start, end = meta.get("page_start"), meta.get("page_end")
    if start is None and end is None:
        return part
    return MediaPart("application/pdf", data=pdf_page_range(part.data, int(start or 1), end))


def node_media(node: BaseNode) -> tuple[MediaPart, ...]:
    """The media ``node`` carries, in LlamaIndex's order: image, audio, video, PDF pages.

    ``ImageNode`` (``image`` base64, ``image_path``), ``Node.image_resource`` /
    ``audio_resource`` / ``video_resource`` (``data`` or ``path``), and PDF page ranges
    (metadata ``modality="pdf"``/``mime_type``, ``file_path``, ``page_start``/``page_end``:
    the bytes are read and cut at embed time, never stored).
    """
    parts: list[MediaPart] = []
    if isinstance(node, ImageNode):
        if node.image:
            data = base64.b64decode(node.image)
            parts.append(part_from_bytes(data, mime_type=node.image_mimetype))
        elif node.image_path:
            parts.append(_read_path(node.image_path, node.image_mimetype, "image"))
        elif node.image_url:
            raise MediaError(
                f"ImageNode.image_url={node.image_url!r} is not fetched: download the image "
                "and pass image_path= (or image= base64)"
            )
    else:
        for attr, what in (
            ("image_resource", "image"),
            ("audio_resource", "audio"),
            ("video_resource", "video"),
        ):
            resource: Any = getattr(node, attr, None)
            if isinstance(resource, MediaResource) and (resource.data or resource.path):
                parts.append(_resource_part(resource, what))
    pdf = _pdf_part(node)
    if pdf is not None:
        parts.append(pdf)
    return tuple(parts)


# -- limits and tokens ---------------------------------------------------------------------


def pdf_pages(data: bytes) -> int:
    """Pages of a PDF (counted from its page objects; pypdf when installed)."""
    try:
        from pypdf import PdfReader
    except ImportError:
        return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))
    return len(PdfReader(BytesIO(data)).pages)


def pdf_page_range(data: bytes, start: int, end: int | None) -> bytes:
    """Pages ``start``..``end`` (1-based, inclusive) of a PDF, as a PDF."""
    pages = pdf_pages(data)
    last = pages if end is None else int(end)
    if start <= 1 and last >= pages:
        return data
    try:
        from pypdf import PdfReader, PdfWriter
    except ImportError:
        raise MediaError(
            f"Pages {start}-{last} of a {pages}-page PDF need pypdf to be cut out: "
            "pip install pypdf (or embed whole PDFs of at most 6 pages)"
        ) from None
    reader, writer = PdfReader(BytesIO(data)), PdfWriter()
    for number in range(start - 1, min(last, pages)):
        writer.add_page(reader.pages[number])
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def wav_seconds(data: bytes) -> float | None:
    try:
        with wave.open(BytesIO(data)) as audio:
            frames, rate = int(audio.getnframes()), int(audio.getframerate() or 1)
            return frames / rate
    except (wave.Error, EOFError):
        return None


def mp4_seconds(data: bytes) -> float | None:
    """Duration from the ``mvhd`` box (ISO BMFF: MP4 and MOV)."""
    at = data.find(b"mvhd")
    if at < 0:
        return None
    body = data[at + 4 :]
    if len(body) < 32:
        return None
    if body[0] == 1:  # version 1: 64-bit times
        timescale, duration = struct.unpack(">IQ", body[20:32])
    else:
        timescale, duration = struct.unpack(">II", body[12:20])
    return float(duration) / float(timescale) if timescale else None


def _seconds(part: MediaPart, kind: str) -> float | None:
    if part.data is None:
        return None
    if part.mime_type in ("audio/wav", "audio/x-wav"):
        return wav_seconds(part.data)
    if kind == "video":
        return mp4_seconds(part.data)
    return None


def check_media(parts: Sequence[MediaPart], *, model: str, multimodal: bool, index: int) -> None:
    """Refuse, before anything is spent, what gemini-embedding-2 would refuse (one line).

    Raises:
        MediaError: media with a text-only model, an unsupported MIME type, or over a
            per-item limit (images, PDF pages, video/audio length); the message names the
            limit and the fix.
    """
    if not parts:
        return
    where = f"Item #{index}"
    if not multimodal:
        raise MediaError(
            f"{where} has media ({parts[0].mime_type}) but {model} embeds text only: use "
            f"model_name='{MEDIA_MODELS}' for images, PDFs, audio and video"
        )
    counts: dict[str, int] = {}
    for part in parts:
        kind = modality(part.mime_type)
        if kind is None:
            supported = ", ".join(sorted(set().union(*MEDIA_MIME_TYPES.values())))
            raise MediaError(
                f"{where}: {part.mime_type} is not a media type {model} accepts; convert it "
                f"to one of {supported}"
            )
        counts[kind] = counts.get(kind, 0) + 1
        if counts[kind] > MAX_PER_ITEM[kind]:
            noun = {"image": "images", "pdf": "PDFs", "video": "videos", "audio": "audio files"}
            raise MediaError(
                f"{where} has more than {MAX_PER_ITEM[kind]} {noun[kind]}; {model} takes at "
                f"most {MAX_PER_ITEM[kind]} per item: split them over several nodes"
            )
        if kind == "pdf" and part.data is not None:
            pages = pdf_pages(part.data)
            if pages > MAX_PDF_PAGES:
                raise MediaError(
                    f"{where}: the PDF has {pages} pages; {model} takes at most "
                    f"{MAX_PDF_PAGES} per item: split the PDF into page ranges (metadata "
                    "page_start/page_end; ingest() does it)"
                )
        if kind in MAX_SECONDS:
            seconds = _seconds(part, kind)
            if seconds is not None and seconds > MAX_SECONDS[kind]:
                raise MediaError(
                    f"{where}: the {kind} lasts {seconds:.0f} s; {model} takes at most "
                    f"{MAX_SECONDS[kind]:.0f} s per item: trim or split the {kind}"
                )


def media_tokens(parts: Sequence[MediaPart]) -> int:
    """Estimated tokens of ``parts`` at Google's published per-modality rates."""
    total = 0
    for part in parts:
        kind = modality(part.mime_type)
        if kind == "image":
            total += TOKENS_PER_IMAGE
        elif kind == "pdf":
            total += TOKENS_PER_PDF_PAGE * (pdf_pages(part.data) if part.data else MAX_PDF_PAGES)
        elif kind in TOKENS_PER_SECOND:
            seconds = _seconds(part, kind)
            total += int(TOKENS_PER_SECOND[kind] * (seconds if seconds is not None else 60))
    return total
