"""How the emulator "sees" media: MIME checks, limits, token costs and a description.

    >>> from llama_index_gemini_embed.emulator.samples import png_with_description
    >>> read_media("image/png", png_with_description("a red bicycle")).description
    'a red bicycle'

The emulator has no vision or hearing. It places a medium in the text space by the text the
file itself carries, read with the standard library only:

* PNG: the ``tEXt``/``iTXt``/``zTXt`` ``Description`` chunk, else ``Title``;
* JPEG: the ``COM`` comment, else EXIF ``ImageDescription`` (tag 0x010E);
* WAV: the ``LIST``/``INFO`` ``INAM`` title;
* PDF: the text layer (``(…) Tj`` / ``[…] TJ`` strings, Flate-compressed streams included);
* MP4/MOV: the iTunes ``©nam`` title (``moov/udta/meta/ilst``) or a QuickTime ``©nam``;
* anything else, or a file without such text: no description (the vector then comes from a
  hash of the bytes, so identical files still match each other).

Token costs follow Google's published rates (``_facts.MEDIA_LIMITS``): 258 per image, 258
per PDF page, 25 per second of audio, 66 per second of video.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from dataclasses import dataclass

from ._facts import MEDIA_LIMITS

__all__ = ["MediaInfo", "media_digest", "read_media"]


@dataclass(frozen=True)
class MediaInfo:
    """What the emulator extracts from one media part."""

    modality: str
    """``image`` / ``audio`` / ``video`` / ``pdf``."""
    description: str | None
    digest: str
    tokens: int
    seconds: float | None = None
    pages: int | None = None


def media_digest(data: bytes) -> str:
    """A short stable hash of the bytes (the fallback placement key)."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


# ---------------------------------------------------------------- PNG
def _png_text(data: bytes) -> str | None:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    found: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        try:
            if kind == b"tEXt":
                key, _, value = body.partition(b"\x00")
                found.setdefault(key.decode("latin-1"), value.decode("latin-1"))
            elif kind == b"zTXt":
                key, _, rest = body.partition(b"\x00")
                found.setdefault(key.decode("latin-1"), zlib.decompress(rest[1:]).decode("latin-1"))
            elif kind == b"iTXt":
                key, _, rest = body.partition(b"\x00")
                compressed, rest = rest[0], rest[2:]
                _, _, rest = rest.partition(b"\x00")  # language tag
                _, _, text = rest.partition(b"\x00")  # translated keyword
                value = zlib.decompress(text) if compressed else text
                found.setdefault(key.decode("latin-1"), value.decode("utf-8"))
        except (zlib.error, UnicodeDecodeError, IndexError):
            continue
        if kind == b"IEND":
            break
    return found.get("Description") or found.get("Title") or None


# ---------------------------------------------------------------- JPEG
def _exif_description(exif: bytes) -> str | None:
    if not exif.startswith(b"Exif\x00\x00") or len(exif) < 14:
        return None
    tiff = exif[6:]
    order = "<" if tiff[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
        for i in range(count):
            entry = tiff[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
            tag, typ, n = struct.unpack(order + "HHI", entry[:8])
            if tag == 0x010E and typ == 2:
                raw = (
                    entry[8:12]
                    if n <= 4
                    else tiff[struct.unpack(order + "I", entry[8:12])[0] :][:n]
                )
                return raw.rstrip(b"\x00").decode("utf-8", "replace") or None
    except struct.error:
        return None
    return None


def _jpeg_text(data: bytes) -> str | None:
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    exif: str | None = None
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xD9, 0xDA):  # end of image / start of scan
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        body = data[pos + 4 : pos + 2 + length]
        if marker == 0xFE:
            return body.decode("utf-8", "replace").strip("\x00") or None
        if marker == 0xE1 and exif is None:
            exif = _exif_description(body)
        pos += 2 + length
    return exif


# ---------------------------------------------------------------- WAV
def _wav_info(data: bytes) -> tuple[str | None, float | None]:
    if not (data.startswith(b"RIFF") and data[8:12] == b"WAVE"):
        return None, None
    title: str | None = None
    byte_rate = 0
    data_size = 0
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        if kind == b"fmt " and len(body) >= 12:
            (byte_rate,) = struct.unpack("<I", body[8:12])
        elif kind == b"data":
            data_size = len(body)
        elif kind == b"LIST" and body[:4] == b"INFO":
            sub = 4
            while sub + 8 <= len(body):
                sk = body[sub : sub + 4]
                (ss,) = struct.unpack("<I", body[sub + 4 : sub + 8])
                if sk == b"INAM":
                    title = body[sub + 8 : sub + 8 + ss].rstrip(b"\x00").decode("utf-8", "replace")
                sub += 8 + ss + (ss & 1)
        pos += 8 + size + (size & 1)
    seconds = data_size / byte_rate if byte_rate else None
    return title or None, seconds


# ---------------------------------------------------------------- PDF
_PDF_STREAM = re.compile(rb"<<(.*?)>>\s*stream\r?\n(.*?)\r?\nendstream", re.DOTALL)
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![s\w])")
_PDF_TEXT = re.compile(rb"\((?:\\.|[^\\)])*\)\s*Tj|\[(?:[^\]])*\]\s*TJ|T\*|ET", re.DOTALL)
_PDF_STRING = re.compile(rb"\(((?:\\.|[^\\)])*)\)", re.DOTALL)


def _pdf_unescape(raw: bytes) -> str:
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x5C and i + 1 < len(raw):
            nxt = raw[i + 1]
            mapping = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}
            if nxt in mapping:
                out.append(mapping[nxt])
            elif 0x30 <= nxt <= 0x37:
                digits = re.match(rb"[0-7]{1,3}", raw[i + 1 : i + 4])
                assert digits is not None
                out.append(int(digits.group(), 8) & 0xFF)
                i += len(digits.group()) + 1
                continue
            else:
                out.append(nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    return out.decode("cp1252", "replace")


def _pdf_info(data: bytes) -> tuple[str | None, int]:
    """(text layer of all pages, page count) of a PDF."""
    if not data.startswith(b"%PDF-"):
        return None, 0
    pages = len(_PDF_PAGE.findall(data))
    chunks: list[str] = []
    for m in _PDF_STREAM.finditer(data):
        header, stream = m.group(1), m.group(2)
        if b"/FlateDecode" in header:
            try:
                stream = zlib.decompress(stream)
            except zlib.error:
                continue
        line: list[str] = []
        for op in _PDF_TEXT.finditer(stream):
            token = op.group()
            if token in (b"T*", b"ET"):
                if line:
                    chunks.append("".join(line))
                    line = []
                continue
            line.extend(_pdf_unescape(s) for s in _PDF_STRING.findall(token))
        if line:
            chunks.append("".join(line))
    text = "\n".join(c for c in chunks if c.strip())
    return (text or None), max(pages, 1)


# ---------------------------------------------------------------- MP4 / MOV
_CONTAINERS = {b"moov", b"udta", b"ilst", b"trak", b"mdia"}


def _mp4_boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    out: list[tuple[bytes, int, int]] = []
    pos = start
    while pos + 8 <= end:
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        header = 8
        if size == 1 and pos + 16 <= end:
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            break
        out.append((kind, pos + header, pos + size))
        pos += size
    return out


def _mp4_info(data: bytes) -> tuple[str | None, float | None]:
    if data[4:8] != b"ftyp":
        return None, None
    title: str | None = None
    seconds: float | None = None

    def walk(start: int, end: int) -> None:
        nonlocal title, seconds
        for kind, lo, hi in _mp4_boxes(data, start, end):
            if kind == b"mvhd" and seconds is None:
                version = data[lo]
                if version == 1:
                    scale, duration = struct.unpack(">IQ", data[lo + 20 : lo + 32])
                else:
                    scale, duration = struct.unpack(">II", data[lo + 12 : lo + 20])
                seconds = duration / scale if scale else None
            elif kind == b"meta":
                walk(lo + 4, hi)  # a full box: skip version and flags
            elif kind == b"\xa9nam" and title is None:
                inner = _mp4_boxes(data, lo, hi)
                if inner and inner[0][0] == b"data":
                    _, dlo, dhi = inner[0]
                    title = data[dlo + 8 : dhi].decode("utf-8", "replace")
                elif hi - lo > 4:  # QuickTime user data text: size(2) language(2) text
                    (n,) = struct.unpack(">H", data[lo : lo + 2])
                    title = data[lo + 4 : lo + 4 + n].decode("utf-8", "replace")
            elif kind in _CONTAINERS:
                walk(lo, hi)

    walk(0, len(data))
    return title or None, seconds


# ---------------------------------------------------------------- entry point
def read_media(mime_type: str, data: bytes) -> MediaInfo:
    """Describe one medium of a supported MIME type (see ``MEDIA_LIMITS.modality``).

    Unknown or unreadable contents are not an error here: they get no description.
    """
    limits = MEDIA_LIMITS
    modality = limits.modality(mime_type)
    if modality is None:
        raise ValueError(f"unsupported MIME type {mime_type!r}")
    digest = media_digest(data)
    if modality == "image":
        text = _png_text(data) or _jpeg_text(data)
        return MediaInfo("image", text, digest, limits.tokens_per_image)
    if modality == "pdf":
        text, pages = _pdf_info(data)
        return MediaInfo(
            "pdf", text, digest, limits.tokens_per_pdf_page * max(pages, 1), pages=pages
        )
    if modality == "audio":
        title, seconds = _wav_info(data)
        secs = 1.0 if seconds is None else seconds
        tokens = max(1, round(secs * limits.audio_tokens_per_second))
        return MediaInfo("audio", title, digest, tokens, seconds=seconds)
    title, seconds = _mp4_info(data)
    secs = 1.0 if seconds is None else seconds
    tokens = max(1, round(secs * limits.video_tokens_per_second))
    return MediaInfo("video", title, digest, tokens, seconds=seconds)
