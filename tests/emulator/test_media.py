"""gemini-embedding-2 media parts through the real SDK, and the sample generators (issue 15 §6)."""

from __future__ import annotations

import io
import struct
import wave
import zlib
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from llama_index_gemini_embed.emulator import (
    Emulator,
    JudgeRequest,
    cosine,
    default_judge,
    embed_media,
    embed_text,
)
from llama_index_gemini_embed.emulator._media import read_media
from llama_index_gemini_embed.emulator.samples import (
    jpeg_with_comment,
    mp4_with_title,
    pdf_with_pages,
    png_with_description,
    wav_with_title,
)
from tests.emulator.support import vertex_client

E1 = "gemini-embedding-001"
E2 = "gemini-embedding-2"
QUERY = "task: search result | query: a red bicycle at night"


def media(data: bytes, mime: str) -> types.Content:
    return types.Content(parts=[types.Part.from_bytes(data=data, mime_type=mime)])


def vectors(r: types.EmbedContentResponse) -> list[list[float]]:
    assert r.embeddings is not None
    return [list(e.values or []) for e in r.embeddings]


# ---------------------------------------------------------------- sample files
def test_png_sample_is_a_valid_png_carrying_its_description() -> None:
    data = png_with_description("a red bicycle at night")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds = 8, []
    while pos < len(data):  # every chunk's CRC is right
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        kinds.append(kind)
        pos += 12 + n
    assert kinds == [b"IHDR", b"tEXt", b"IDAT", b"IEND"]
    assert read_media("image/png", data).description == "a red bicycle at night"
    assert read_media("image/png", png_with_description("自転車")).description == "自転車"
    assert read_media("image/png", png_with_description("t", keyword="Title")).description == "t"


def test_wav_pdf_mp4_jpeg_samples_parse_with_their_text() -> None:
    wav = wav_with_title("birdsong at dawn", seconds=2.5)
    with wave.open(io.BytesIO(wav)) as w:  # the standard library reads it
        assert w.getnframes() / w.getframerate() == 2.5
    info = read_media("audio/wav", wav)
    assert (info.description, info.seconds, info.tokens) == ("birdsong at dawn", 2.5, 62)
    pdf = pdf_with_pages(["Quarterly (revenue) report\nsecond line", "page two"])
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    info = read_media("application/pdf", pdf)
    assert info.pages == 2 and info.tokens == 516
    assert info.description == "Quarterly (revenue) report\nsecond line\npage two"
    mp4 = mp4_with_title("a goal in extra time", seconds=12)
    assert mp4[4:8] == b"ftyp"
    info = read_media("video/mp4", mp4)
    assert (info.description, info.seconds, info.tokens) == ("a goal in extra time", 12.0, 792)
    assert read_media("image/jpeg", jpeg_with_comment("a cat")).description == "a cat"


def test_sample_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one page"):
        pdf_with_pages([])
    with pytest.raises(ValueError, match="seconds must be"):
        wav_with_title("x", seconds=0)


# ---------------------------------------------------------------- embedding media
def test_a_text_query_finds_the_image_by_its_description(client: genai.Client) -> None:
    bike = png_with_description("a red bicycle at night")
    cat = png_with_description("a sleeping cat on a sofa")
    r = client.models.embed_content(
        model=E2,
        contents=[
            types.Content(parts=[types.Part(text=QUERY)]),
            media(bike, "image/png"),
            media(cat, "image/png"),
        ],
    )
    q, v_bike, v_cat = vectors(r)
    assert cosine(q, v_bike) > 0.8 > 0.2 > cosine(q, v_cat)
    assert v_bike == embed_media([("image/png", bike)])
    # The picture is near its sentence but not the same point.
    assert 0.9 < cosine(v_bike, embed_text("a red bicycle at night", model=E2)) < 0.999
    assert r.usage_metadata is not None and r.usage_metadata.prompt_tokens_details is not None
    details = {d.modality: d.token_count for d in r.usage_metadata.prompt_tokens_details}
    assert details == {types.MediaModality.TEXT: 13, types.MediaModality.IMAGE: 516}


def test_every_modality_and_interleaved_text_give_one_vector_each(client: genai.Client) -> None:
    items = [
        ("application/pdf", pdf_with_pages(["bicycle repair manual", "chains and gears"])),
        ("audio/wav", wav_with_title("night traffic with a bicycle bell")),
        ("video/mp4", mp4_with_title("a red bicycle race at night", seconds=3)),
        ("image/jpeg", jpeg_with_comment("a red bicycle at night")),
    ]
    contents = [media(data, mime) for mime, data in items]
    mixed = types.Content(
        parts=[
            types.Part(text="caption: my bike"),
            types.Part.from_bytes(
                data=png_with_description("a red bicycle"), mime_type="image/png"
            ),
        ]
    )
    r = client.models.embed_content(model=E2, contents=[*contents, mixed])
    got = vectors(r)
    assert len(got) == 5
    for (mime, data), v in zip(items, got, strict=False):
        assert v == embed_media([(mime, data)])
    assert got[4] == embed_media(
        ["caption: my bike", ("image/png", png_with_description("a red bicycle"))]
    )
    q = embed_text(QUERY, model=E2)
    pdf, audio, video, jpeg = (cosine(q, v) for v in got[:4])
    assert jpeg > video > audio > pdf > 0.1  # ranked by how much of the query each describes


def test_media_without_a_description_is_placed_by_its_bytes(client: genai.Client) -> None:
    blank = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    other = b"\x89PNG\r\n\x1a\n" + b"\x01" * 20
    a, b, again = vectors(
        client.models.embed_content(
            model=E2,
            contents=[
                media(blank, "image/png"),
                media(other, "image/png"),
                media(blank, "image/png"),
            ],
        )
    )
    assert a == again and cosine(a, b) < 0.5


def test_files_api_upload_and_file_data_part(client: genai.Client) -> None:
    png = png_with_description("a red bicycle at night")
    f = client.files.upload(file=io.BytesIO(png), config={"mime_type": "image/png"})
    assert f.uri is not None and f.mime_type == "image/png" and f.size_bytes == len(png)
    part = types.Part.from_uri(file_uri=f.uri, mime_type="image/png")
    r = client.models.embed_content(model=E2, contents=[types.Content(parts=[part])])
    assert vectors(r)[0] == embed_media([("image/png", png)])
    missing = types.Part.from_uri(file_uri=f.uri + "x", mime_type="image/png")
    with pytest.raises(errors.ClientError) as exc:
        client.models.embed_content(model=E2, contents=[types.Content(parts=[missing])])
    assert exc.value.code == 403 and "may not exist" in (exc.value.message or "")


# ---------------------------------------------------------------- what the API refuses
def test_embedding_001_refuses_media(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as exc:
        client.models.embed_content(
            model=E1, contents=[media(png_with_description("x"), "image/png")]
        )
    assert exc.value.code == 400 and "only text parts are supported" in (exc.value.message or "")


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([("image/gif", b"GIF89a")], "Unsupported MIME type: image/gif"),
        ([("image/png", png_with_description(str(i))) for i in range(7)], "at most 6 images"),
        (
            [("application/pdf", pdf_with_pages([str(i) for i in range(7)]))],
            "has 7 pages; at most 6",
        ),
        ([("video/mp4", mp4_with_title("long", seconds=121))], "at most 120 seconds"),
        ([("audio/wav", wav_with_title("long", seconds=181))], "at most 180 seconds"),
        (
            [("video/mp4", mp4_with_title("a")), ("video/mp4", mp4_with_title("b"))],
            "at most 1 videos",
        ),
    ],
)
def test_media_limits_are_refused_with_400(
    client: genai.Client, parts: list[tuple[str, bytes]], message: str
) -> None:
    content = types.Content(
        parts=[types.Part.from_bytes(data=data, mime_type=mime) for mime, data in parts]
    )
    with pytest.raises(errors.ClientError) as exc:
        client.models.embed_content(model=E2, contents=[content])
    assert exc.value.code == 400 and exc.value.status == "INVALID_ARGUMENT"
    assert message in (exc.value.message or "")


def test_six_images_and_a_six_page_pdf_are_accepted(client: genai.Client) -> None:
    six = [
        types.Part.from_bytes(data=png_with_description(str(i)), mime_type="image/png")
        for i in range(6)
    ]
    pdf = types.Part.from_bytes(data=pdf_with_pages(["p"] * 6), mime_type="application/pdf")
    r = client.models.embed_content(
        model=E2, contents=[types.Content(parts=six), types.Content(parts=[pdf])]
    )
    assert len(vectors(r)) == 2


# ---------------------------------------------------------------- the judge sees images
def test_generate_content_reads_an_image_by_its_description(
    emulator: Emulator, client: genai.Client
) -> None:
    seen: list[JudgeRequest] = []

    def judge(req: JudgeRequest) -> str | dict[str, Any]:
        seen.append(req)
        return default_judge(req)

    emulator.set_judge(judge)
    r = client.models.generate_content(
        model="gemini-2.5-flash-lite",
        contents=[
            types.Content(
                role="user",
                parts=[
                    types.Part(text='<query>red bicycle</query>\n<passage id="0">'),
                    types.Part.from_bytes(
                        data=png_with_description("a red bicycle at night"), mime_type="image/png"
                    ),
                    types.Part(text="</passage>"),
                ],
            )
        ],
    )
    assert seen and "a red bicycle at night" in seen[0].prompt_text
    assert r.usage_metadata is not None and r.usage_metadata.prompt_tokens_details is not None
    modalities = {d.modality for d in r.usage_metadata.prompt_tokens_details}
    assert modalities == {types.MediaModality.TEXT, types.MediaModality.IMAGE}
    count = client.models.count_tokens(
        model="gemini-2.5-flash-lite",
        contents=[media(png_with_description("x"), "image/png")],
    )
    assert count.total_tokens == 258


def test_an_uploaded_video_is_processing_until_polled_active(
    emulator: Emulator, client: genai.Client
) -> None:
    emulator.set_upload_behaviour(processing_polls=2)
    mp4 = mp4_with_title("a red bicycle race at night", seconds=3)
    f = client.files.upload(file=io.BytesIO(mp4), config={"mime_type": "video/mp4"})
    assert f.name is not None and f.uri is not None
    assert f.state == types.FileState.PROCESSING
    part = types.Part.from_uri(file_uri=f.uri, mime_type="video/mp4")
    with pytest.raises(errors.ClientError) as exc:  # used too early
        client.models.embed_content(model=E2, contents=[types.Content(parts=[part])])
    assert exc.value.code == 400 and exc.value.status == "FAILED_PRECONDITION"
    assert "is not in an ACTIVE state and usage is not allowed" in (exc.value.message or "")
    states = [client.files.get(name=f.name).state for _ in range(3)]
    assert states == [types.FileState.PROCESSING] * 2 + [types.FileState.ACTIVE]
    r = client.models.embed_content(model=E2, contents=[types.Content(parts=[part])])
    assert vectors(r)[0] == embed_media([("video/mp4", mp4)])
    # Images are ready at once (only videos are processed by default).
    png = client.files.upload(
        file=io.BytesIO(png_with_description("x")), config={"mime_type": "image/png"}
    )
    assert png.state == types.FileState.ACTIVE


def test_vertex_embed_content_counts_media_tokens(emulator: Emulator) -> None:
    c = vertex_client(emulator)
    png = png_with_description("a red bicycle at night")
    content = types.Content(
        parts=[types.Part(text="a caption"), types.Part.from_bytes(data=png, mime_type="image/png")]
    )
    r = c.models.embed_content(model=E2, contents=[content])
    assert r.embeddings is not None and r.embeddings[0].statistics is not None
    stats = r.embeddings[0].statistics
    assert stats.token_count == 258 + 3 and stats.tokens_details is not None
    assert {d.modality: d.token_count for d in stats.tokens_details} == {
        types.MediaModality.IMAGE: 258,
        types.MediaModality.TEXT: 3,
    }
    assert r.embeddings[0].values == embed_media(["a caption", ("image/png", png)])
    body = emulator.requests[-1]
    assert body.path.endswith(":embedContent") or body.path.endswith(":batchEmbedContents")
    c.close()


def _exif_jpeg(description: str, order: str = "<") -> bytes:
    """A JPEG container whose APP1 EXIF IFD0 holds ImageDescription (no COM segment)."""
    text = description.encode() + b"\x00"
    mark = b"II" if order == "<" else b"MM"
    tiff = mark + struct.pack(order + "HI", 42, 8)
    entry = struct.pack(order + "HHII", 0x010E, 2, len(text), 8 + 2 + 12 + 4)
    tiff += struct.pack(order + "H", 1) + entry + struct.pack(order + "I", 0) + text
    app1 = b"Exif\x00\x00" + tiff
    return b"\xff\xd8\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + b"\xff\xd9"


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_exif_ztxt_and_compressed_pdf_descriptions_are_read() -> None:
    for order in ("<", ">"):
        info = read_media("image/jpeg", _exif_jpeg("harbour at dawn", order))
        assert info.description == "harbour at dawn"
    png = png_with_description("ignored", keyword="Comment")
    ztxt = _png_chunk(b"zTXt", b"Description\x00\x00" + zlib.compress(b"a compressed note"))
    png = png[:33] + ztxt + png[33:]  # after IHDR
    assert read_media("image/png", png).description == "a compressed note"
    stream = zlib.compress(b"BT /F1 12 Tf (Flate page) Tj ET")
    pdf = (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Page >>\nendobj\n2 0 obj\n<< /Length "
        + str(len(stream)).encode()
        + b" /Filter /FlateDecode >>\nstream\n"
        + stream
        + b"\nendstream\nendobj\n%%EOF\n"
    )
    info = read_media("application/pdf", pdf)
    assert info.description == "Flate page" and info.pages == 1
    # Nothing readable: no description, and the bytes' hash places it.
    assert read_media("image/jpeg", b"\xff\xd8\xff\xd9").description is None
    assert read_media("video/mp4", b"not an mp4 at all").description is None
