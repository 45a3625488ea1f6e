"""Small, valid media files with an embedded description, for tests, examples and notebooks.

    >>> from llama_index_gemini_embed.emulator.samples import png_with_description
    >>> png_with_description("a red bicycle at night")[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'

The emulator has no vision or hearing: it places a medium in the text space from the text
the file carries (see ``emulator/_media.py`` and docs/gemini-api.md "Emulator: media"):

* :func:`png_with_description`: an 8x8 PNG with a ``tEXt`` ``Description`` chunk (``iTXt``
  when the text is not Latin-1);
* :func:`wav_with_title`: 16-bit mono PCM silence with a ``LIST``/``INFO`` ``INAM`` title;
* :func:`pdf_with_pages`: a PDF 1.4 with one page per string, each string its text layer;
* :func:`mp4_with_title`: an ``ftyp`` + ``moov`` (``mvhd`` duration, ``udta``/``meta``/
  ``ilst``/``©nam`` title) MP4; it has no track, so it sniffs and parses as MP4 but does
  not play.

Standard library only (``struct``, ``zlib``, ``wave``); no client code is imported.
"""

from __future__ import annotations

import io
import struct
import wave
import zlib

__all__ = [
    "jpeg_with_comment",
    "mp4_with_title",
    "pdf_with_pages",
    "png_with_description",
    "wav_with_title",
]


# ---------------------------------------------------------------- PNG
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_with_description(text: str, *, size: int = 8, keyword: str = "Description") -> bytes:
    """An RGB PNG (``size`` x ``size``, colour derived from ``text``) describing itself.

    ``keyword`` is the PNG text keyword (``Description`` or ``Title``, both read by the
    emulator).
    """
    if not 1 <= size <= 4096:
        raise ValueError("size must be between 1 and 4096 pixels")
    digest = zlib.crc32(text.encode("utf-8"))
    pixel = bytes(((digest >> 16) & 0xFF, (digest >> 8) & 0xFF, digest & 0xFF))
    raw = b"".join(b"\x00" + pixel * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    try:
        text_chunk = _png_chunk(
            b"tEXt", keyword.encode("latin-1") + b"\x00" + text.encode("latin-1")
        )
    except UnicodeEncodeError:
        # iTXt: keyword, 0, compression flag 0, method 0, language "", 0, translated "", 0, UTF-8
        body = keyword.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text.encode("utf-8")
        text_chunk = _png_chunk(b"iTXt", body)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + text_chunk
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------- JPEG
def jpeg_with_comment(text: str) -> bytes:
    """A JPEG *container* (SOI, JFIF APP0, ``COM`` comment, EOI) carrying ``text``.

    It has no image data: enough for MIME sniffing and the emulator's description reader,
    not for an image decoder. Use :func:`png_with_description` where pixels matter.
    """
    comment = text.encode("utf-8")
    if len(comment) > 65533:
        raise ValueError("a JPEG comment holds at most 65,533 bytes")
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return (
        b"\xff\xd8"
        + b"\xff\xe0"
        + struct.pack(">H", len(app0) + 2)
        + app0
        + b"\xff\xfe"
        + struct.pack(">H", len(comment) + 2)
        + comment
        + b"\xff\xd9"
    )


# ---------------------------------------------------------------- WAV
def wav_with_title(text: str, seconds: float = 1.0, *, sample_rate: int = 8000) -> bytes:
    """A mono 16-bit PCM WAV of ``seconds`` of silence with a ``LIST/INFO/INAM`` title."""
    if not 0 < seconds <= 3600:
        raise ValueError("seconds must be > 0 and at most 3600")
    frames = max(1, round(seconds * sample_rate))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(b"\x00\x00" * frames)
    data = buf.getvalue()
    title = text.encode("utf-8") + b"\x00"
    if len(title) % 2:
        title += b"\x00"
    info = b"INFO" + b"INAM" + struct.pack("<I", len(title)) + title
    chunk = b"LIST" + struct.pack("<I", len(info)) + info
    body = data[8:] + chunk  # "WAVE" + fmt + data + LIST
    return b"RIFF" + struct.pack("<I", len(body)) + body


# ---------------------------------------------------------------- PDF
def _pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def pdf_with_pages(pages: list[str]) -> bytes:
    """A PDF with one page per string; each page's text layer is that string.

    Lines of a string (split on ``\\n``) become lines on the page. Characters outside
    Windows-1252 become ``?`` (the standard fonts' encoding).
    """
    if not pages:
        raise ValueError("pages must hold at least one page")
    n = len(pages)
    # Objects: 1 catalog, 2 pages, 3 font, then (page, contents) per page.
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(f"{4 + 2 * i} 0 R".encode() for i in range(n))
        + b"] /Count "
        + str(n).encode()
        + b" >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        lines = text.split("\n") or [""]
        ops = [b"BT /F1 12 Tf 14 TL 72 720 Td"]
        for j, line in enumerate(lines):
            ops.append((b"" if j == 0 else b"T* ") + _pdf_string(line) + b" Tj")
        ops.append(b"ET")
        stream = b"\n".join(ops)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents "
            + f"{5 + 2 * i} 0 R".encode()
            + b" >>"
        )
        objects.append(
            b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for k, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{k} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


# ---------------------------------------------------------------- MP4
def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, payload: bytes, version: int = 0, flags: int = 0) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def mp4_with_title(text: str, seconds: float = 1.0) -> bytes:
    """An MP4 (``ftyp`` isom, ``moov`` with ``mvhd`` duration and an iTunes ``©nam`` title)."""
    if not 0 < seconds <= 36000:
        raise ValueError("seconds must be > 0 and at most 36000")
    timescale = 1000
    duration = max(1, round(seconds * timescale))
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41")
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _full_box(
        b"mvhd",
        struct.pack(">IIII", 0, 0, timescale, duration)
        + struct.pack(">IH", 0x10000, 0x100)
        + b"\x00" * 10
        + matrix
        + b"\x00" * 24
        + struct.pack(">I", 2),
    )
    data = _box(b"data", struct.pack(">II", 1, 0) + text.encode("utf-8"))
    ilst = _box(b"ilst", _box(b"\xa9nam", data))
    hdlr = _full_box(b"hdlr", struct.pack(">I", 0) + b"mdir" + b"appl" + b"\x00" * 8 + b"\x00")
    meta = _full_box(b"meta", hdlr + ilst)
    moov = _box(b"moov", mvhd + _box(b"udta", meta))
    return ftyp + moov + _box(b"mdat", b"")
