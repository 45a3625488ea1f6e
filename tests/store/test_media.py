"""Media nodes in the store (issue 15, store side of the multimodal contract).

Chroma keeps the vector, path, MIME type, page/time range and hash, never the bytes; rows
come back as the LlamaIndex node type of their modality; ``modality`` is filterable.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.schema import ImageNode, MediaResource, Node, TextNode
from llama_index.core.vector_stores.types import (
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

from llama_index_gemini_embed._store.store import ChromaStore
from llama_index_gemini_embed.emulator.samples import (
    mp4_with_title,
    pdf_with_pages,
    png_with_description,
    wav_with_title,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChromaStore]:
    with ChromaStore("media", path=str(tmp_path / "chroma")) as store:
        yield store


def media_meta(modality: str, path: str, mime: str, **extra: Any) -> dict[str, Any]:
    return {
        "modality": modality,
        "file_path": path,
        "file_name": Path(path).name,
        "mime_type": mime,
        **extra,
        "media_sha256": "0" * 64,
    }


def raw_rows(store: ChromaStore) -> str:
    got = store.collection.get(include=["metadatas", "documents"])
    return json.dumps([got["metadatas"], got["documents"]])


def test_media_bytes_never_reach_chroma_and_nodes_come_back_typed(
    store: ChromaStore, tmp_path: Path
) -> None:
    png = png_with_description("a red bicycle at night")
    wav = wav_with_title("rain on a tin roof")
    png_b64 = base64.b64encode(png).decode()
    image = ImageNode(
        id_="img",
        image=png_b64,
        image_path=str(tmp_path / "bike.png"),
        image_mimetype="image/png",
        embedding=[1.0, 0.0, 0.0],
        metadata=media_meta("image", str(tmp_path / "bike.png"), "image/png"),
    )
    audio = Node(
        id_="wav",
        audio_resource=MediaResource(
            data=wav, path=str(tmp_path / "rain.wav"), mimetype="audio/wav"
        ),
        embedding=[0.0, 1.0, 0.0],
        metadata=media_meta("audio", str(tmp_path / "rain.wav"), "audio/wav"),
    )
    store.add([image, audio])
    text = raw_rows(store)
    assert png_b64[:40] not in text and base64.b64encode(wav).decode()[:40] not in text
    back_image, back_audio = store.get_nodes(node_ids=["img", "wav"])
    assert isinstance(back_image, ImageNode)
    assert back_image.image is None and back_image.image_path == str(tmp_path / "bike.png")
    assert back_image.image_mimetype == "image/png"
    assert back_image.metadata == image.metadata
    assert type(back_audio) is Node and back_audio.audio_resource is not None
    assert back_audio.audio_resource.path == tmp_path / "rain.wav"
    assert back_audio.audio_resource.data is None
    assert back_audio.audio_resource.mimetype == "audio/wav"


def test_rows_written_as_text_with_a_modality_decode_as_media_nodes(store: ChromaStore) -> None:
    """What ingest writes (text layer or caption + contract metadata) reads back typed."""
    pdf = pdf_with_pages(["page one text", "page two text"])
    mp4 = mp4_with_title("a cat video")
    assert pdf.startswith(b"%PDF") and len(mp4) > 0  # the samples exist; bytes stay on disk
    rows = [
        TextNode(
            id_="photo",
            text="",
            embedding=[1.0, 0.0, 0.0],
            metadata=media_meta("image", "/m/photo.jpg", "image/jpeg"),
        ),
        TextNode(
            id_="doc.pdf#p1-2",
            text="page one text page two text",
            embedding=[0.0, 1.0, 0.0],
            metadata=media_meta("pdf", "/m/doc.pdf", "application/pdf", page_start=1, page_end=2),
        ),
        TextNode(
            id_="clip",
            text="",
            embedding=[0.0, 0.0, 1.0],
            metadata=media_meta(
                "video", "/m/clip.mp4", "video/mp4", time_start_s=0.0, time_end_s=12.5
            ),
        ),
        TextNode(
            id_="song",
            text="",
            embedding=[0.5, 0.5, 0.0],
            metadata=media_meta("audio", "/m/song.wav", "audio/wav"),
        ),
        TextNode(
            id_="note", text="plain", embedding=[0.0, 0.5, 0.5], metadata={"modality": "text"}
        ),
    ]
    store.add(rows)
    photo, pdf_node, clip, song, note = store.get_nodes(
        node_ids=["photo", "doc.pdf#p1-2", "clip", "song", "note"]
    )
    assert isinstance(photo, ImageNode) and photo.image_path == "/m/photo.jpg"
    assert photo.image_mimetype == "image/jpeg" and photo.image is None
    assert type(pdf_node) is Node and pdf_node.text_resource is not None
    assert pdf_node.text_resource.text == "page one text page two text"
    assert (pdf_node.metadata["page_start"], pdf_node.metadata["page_end"]) == (1, 2)
    assert type(clip) is Node and clip.video_resource is not None
    assert str(clip.video_resource.path) == "/m/clip.mp4"
    assert clip.video_resource.mimetype == "video/mp4"
    assert clip.metadata["time_end_s"] == 12.5
    assert type(song) is Node and song.audio_resource is not None
    assert str(song.audio_resource.path) == "/m/song.wav"
    assert type(note) is TextNode
    # modality is a plain, filterable key: one ranked list, or only the images.
    images = MetadataFilters(filters=[MetadataFilter(key="modality", value="image")])
    hit = store.query(VectorStoreQuery(query_embedding=[0.0, 1.0, 0.0], similarity_top_k=5))
    assert hit.ids is not None and hit.ids[0] == "doc.pdf#p1-2" and len(hit.ids) == 5
    only = store.query(
        VectorStoreQuery(query_embedding=[0.0, 1.0, 0.0], similarity_top_k=5, filters=images)
    )
    assert only.ids == ["photo"] and isinstance((only.nodes or [])[0], ImageNode)


def test_a_pdf_range_stored_as_a_node_reads_back_with_its_text_layer(tmp_path: Path) -> None:
    """A Node whose text_resource carries the PDF range's text layer (what ingest stores)
    comes back with that text: retrievers, query engines and the reranker see it."""
    node = Node(
        id_="manual.pdf#p1-2",
        text_resource=MediaResource(text="the blue whale sings"),
        metadata={
            "modality": "pdf",
            "file_path": "/data/manual.pdf",
            "mime_type": "application/pdf",
            "page_start": 1,
            "page_end": 2,
        },
        embedding=[1.0, 0.0],
    )
    with ChromaStore("pdf-text", path=str(tmp_path)) as store:
        store.add([node])
        [back] = store.get_nodes(node_ids=[node.node_id])
    assert back.get_content() == "the blue whale sings"
    assert back.metadata["page_start"] == 1 and back.metadata["page_end"] == 2
