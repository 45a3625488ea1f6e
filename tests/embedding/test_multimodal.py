"""Issue 15 §1: GeminiEmbedding embeds images, PDFs, audio and video (gemini-embedding-2).

Media come from the emulator's sample generators; the emulator places each medium at its
embedded description, so a text query finds it (docs/gemini-api.md §7). Checked on the wire
(the emulator's request log) and against ``embed_media``, the emulator's exact vector.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.schema import ImageNode, MediaResource, Node

from llama_index_gemini_embed import GeminiEmbedding, MediaError
from llama_index_gemini_embed.emulator import Emulator, embed_media
from llama_index_gemini_embed.emulator.samples import (
    mp4_with_title,
    pdf_with_pages,
    png_with_description,
    wav_with_title,
)
from tests.embedding.support import unit

MODEL = "gemini-embedding-2"


def make(emu: Emulator, **kwargs: Any) -> GeminiEmbedding:
    kwargs.setdefault("model_name", MODEL)
    kwargs.setdefault("output_dimensionality", 256)
    return GeminiEmbedding(api_key=emu.api_key, base_url=emu.base_url, **kwargs)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(unit(a), unit(b), strict=True))


def contents(emu: Emulator) -> list[dict[str, Any]]:
    return [
        item["content"]
        for r in emu.requests
        if r.path.endswith(":batchEmbedContents") and r.body is not None and r.status == 200
        for item in r.body["requests"]
    ]


def inline(part: dict[str, Any]) -> tuple[str, bytes] | None:
    """(mime, bytes) of an inline part. The SDK sends embed contents as given to it: its parts
    keep their Python field names (``inline_data``), bytes go url-safe base64 (proto JSON
    accepts both spellings)."""
    blob = part.get("inlineData") or part.get("inline_data")
    if blob is None:
        return None
    return blob.get("mimeType") or blob["mime_type"], base64.urlsafe_b64decode(blob["data"])


def file_part(part: dict[str, Any]) -> tuple[str, str] | None:
    data = part.get("fileData") or part.get("file_data")
    if data is None:
        return None
    return data.get("mimeType") or data["mime_type"], data.get("fileUri") or data["file_uri"]


def write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def test_image_file_and_text_query_meet(emulator: Emulator, tmp_path: Path) -> None:
    embed = make(emulator)
    bike = write(tmp_path, "bike.png", png_with_description("a red bicycle at night"))
    cake = write(tmp_path, "cake.png", png_with_description("a chocolate birthday cake"))
    vectors = embed.get_image_embedding_batch([str(bike), str(cake)])
    expected = embed_media([("image/png", bike.read_bytes())], model=MODEL, dimension=256)
    assert vectors[0] == pytest.approx(unit(expected), abs=1e-6)
    (part,) = contents(emulator)[0]["parts"]
    assert inline(part) == ("image/png", bike.read_bytes())
    query = embed.get_query_embedding("a red bicycle at night")
    assert cosine(query, vectors[0]) > cosine(query, vectors[1])


async def test_async_image_embedding(emulator: Emulator, tmp_path: Path) -> None:
    embed = make(emulator)
    bike = write(tmp_path, "bike.png", png_with_description("a red bicycle"))
    one = await embed.aget_image_embedding(str(bike))
    (batch,) = await embed.aget_image_embedding_batch([str(bike)])
    assert one == batch


def test_nodes_with_media_of_every_kind(emulator: Emulator, tmp_path: Path) -> None:
    embed = make(emulator)
    png = png_with_description("a lighthouse on a cliff")
    wav = wav_with_title("a dog barking", seconds=2.0)
    mp4 = mp4_with_title("waves on a beach", seconds=3.0)
    pdf = pdf_with_pages(["quarterly revenue grew", "costs fell"])
    pdf_path = write(tmp_path, "report.pdf", pdf)
    nodes = [
        ImageNode(image=base64.b64encode(png).decode(), image_mimetype="image/png"),
        Node(audio_resource=MediaResource(path=write(tmp_path, "dog.wav", wav))),
        Node(video_resource=MediaResource(data=mp4, mimetype="video/mp4")),
        Node(
            text_resource=MediaResource(text=""),
            metadata={
                "modality": "pdf",
                "file_path": str(pdf_path),
                "mime_type": "application/pdf",
                "page_start": 1,
                "page_end": 2,
            },
        ),
    ]
    embed(nodes)
    sent = contents(emulator)
    mimes = [[m[0] for p in c["parts"] if (m := inline(p))] for c in sent]
    wav_mime = "audio/x-wav"  # LlamaIndex's MediaResource guesses it from the .wav path
    assert mimes == [["image/png"], [wav_mime], ["video/mp4"], ["application/pdf"]]
    for node, (mime, data) in zip(
        nodes,
        [("image/png", png), (wav_mime, wav), ("video/mp4", mp4), ("application/pdf", pdf)],
        strict=True,
    ):
        assert node.embedding is not None
        assert node.embedding == pytest.approx(
            unit(embed_media([(mime, data)], model=MODEL, dimension=256)), abs=1e-6
        )


def test_text_and_image_in_one_node_are_one_interleaved_item(
    emulator: Emulator, tmp_path: Path
) -> None:
    embed = make(emulator)
    png = png_with_description("a red bicycle")
    mixed = Node(text_resource=MediaResource(text="My commute"), metadata={"title": "Bikes"})
    mixed.image_resource = MediaResource(data=png, mimetype="image/png")
    embed([mixed])
    (content,) = contents(emulator)
    assert content["parts"][0] == {"text": "title: Bikes | text: My commute"}
    assert inline(content["parts"][1]) == ("image/png", png)
    assert len(content["parts"]) == 2
    assert mixed.embedding == pytest.approx(
        unit(
            embed_media(
                ["title: Bikes | text: My commute", ("image/png", png)], model=MODEL, dimension=256
            )
        ),
        abs=1e-6,
    )


# -- limits checked before spend; -001 refuses media -------------------------------------


def _image_node(png: bytes) -> Node:
    return Node(image_resource=MediaResource(data=png, mimetype="image/png"))


def test_gemini_embedding_001_refuses_media_before_any_request(
    emulator: Emulator, tmp_path: Path
) -> None:
    embed = make(emulator, model_name="gemini-embedding-001")
    with pytest.raises(MediaError) as info:
        embed.get_image_embedding(str(write(tmp_path, "a.png", png_with_description("x"))))
    message = str(info.value)
    assert "\n" not in message and "text only" in message and "gemini-embedding-2" in message
    assert emulator.counters.embed_requests == 0


def test_a_pdf_over_6_pages_is_refused_before_any_request(
    emulator: Emulator, tmp_path: Path
) -> None:
    embed = make(emulator)
    path = write(tmp_path, "long.pdf", pdf_with_pages([f"page {i}" for i in range(7)]))
    node = Node(
        text_resource=MediaResource(text=""),
        metadata={"modality": "pdf", "file_path": str(path)},
    )
    fine = _image_node(png_with_description("fine"))
    with pytest.raises(MediaError, match=r"7 pages.*at most 6.*split the PDF"):
        embed([fine, node])
    assert emulator.counters.embed_requests == 0


def test_a_video_over_120_seconds_is_refused_before_any_request(emulator: Emulator) -> None:
    embed = make(emulator)
    node = Node(video_resource=MediaResource(data=mp4_with_title("long", seconds=121.0)))
    with pytest.raises(MediaError, match=r"lasts 121 s.*at most 120 s.*trim or split"):
        embed([node])
    assert emulator.counters.embed_requests == 0


def test_more_than_6_images_in_one_item_is_refused(emulator: Emulator) -> None:
    embed = make(emulator)
    from llama_index_gemini_embed._types import MediaPart, TextSpec

    png = png_with_description("x")
    spec = TextSpec("seven", "RETRIEVAL_DOCUMENT", None, (MediaPart("image/png", png),) * 7)
    with pytest.raises(MediaError, match=r"more than 6 images.*split them"):
        embed.engine.prepare_items([spec]).__next__()


def test_unsupported_media_type_is_refused(emulator: Emulator) -> None:
    embed = make(emulator)
    node = Node(image_resource=MediaResource(data=b"GIF89a....", mimetype="image/gif"))
    with pytest.raises(MediaError, match="image/gif is not a media type"):
        embed([node])
    assert emulator.counters.embed_requests == 0


# -- large media: the Files API, uploaded once, reused, cleaned up -------------------------


def test_large_media_go_through_the_files_api_once_and_are_deleted(
    emulator: Emulator, tmp_path: Path
) -> None:
    embed = make(emulator, max_inline_media_bytes=100)
    png = png_with_description("a red bicycle")
    assert len(png) > 100
    nodes = [_image_node(png), _image_node(png)]
    embed(nodes)
    uploads = [r for r in emulator.requests if r.path.startswith("/upload/")]
    assert len([r for r in uploads if r.method == "POST"]) >= 1
    sent = contents(emulator)
    files = {file_part(c["parts"][0]) for c in sent}
    assert len(files) == 1, "the same bytes are uploaded once and reused"
    ((mime, uri),) = files  # type: ignore[misc]
    assert mime == "image/png" and "/files/" in uri
    deletes = [r for r in emulator.requests if r.method == "DELETE" and "/files/" in r.path]
    assert len(deletes) == 1
    assert nodes[0].embedding == pytest.approx(
        unit(embed_media([("image/png", png)], model=MODEL, dimension=256)), abs=1e-6
    )


def test_the_batch_api_preparation_refuses_media_instead_of_dropping_it(
    emulator: Emulator,
) -> None:
    from llama_index_gemini_embed._types import MediaPart, TextSpec

    embed = make(emulator)
    png = png_with_description("a red bicycle")
    spec = TextSpec("caption", "RETRIEVAL_DOCUMENT", None, (MediaPart("image/png", png),))
    with pytest.raises(MediaError, match=r"Item #0 has media.*mode='online'"):
        next(embed.engine.prepare_items([spec]))
    item = next(embed.engine.prepare_items([spec], with_media=True))
    assert item.media == spec.media and item.text == "title: none | text: caption"
    assert item.tokens > 258


def test_usage_per_modality(emulator: Emulator, tmp_path: Path) -> None:
    from llama_index_gemini_embed._types import ModalityUsage

    embed = make(emulator)
    png = png_with_description("a red bicycle")
    mixed = Node(text_resource=MediaResource(text="my commute"))
    mixed.image_resource = MediaResource(data=png, mimetype="image/png")
    wav = Node(audio_resource=MediaResource(data=wav_with_title("a dog", seconds=2.0)))
    embed([mixed, wav, Node(text_resource=MediaResource(text="plain text"))])
    usage = embed.usage_by_modality
    assert set(usage) == {"text", "image", "audio"}
    assert usage["image"].items == 1 and usage["image"].tokens == 258  # the API's count
    assert (usage["audio"].items, usage["audio"].tokens) == (1, 50)  # 25 a second
    assert isinstance(usage["audio"], ModalityUsage)
    assert usage["text"].items == 2 and usage["text"].tokens > 0
    assert sum(u.tokens for u in usage.values()) == embed.usage.tokens
