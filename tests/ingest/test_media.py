"""Media files in ingest(): items per the multimodal contract, per-modality counts, -001 skips."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import ImageNode, MetadataMode, Node

from llama_index_gemini_embed import (
    ChromaStore,
    DailyQuotaExceededError,
    EmptyInputError,
    GeminiEmbedding,
    ingest,
)
from llama_index_gemini_embed._ingest.chunks import Chunker
from llama_index_gemini_embed._ingest.media import media_nodes
from llama_index_gemini_embed._ingest.sources import open_source
from llama_index_gemini_embed.emulator import Emulator, QuotaConfig
from llama_index_gemini_embed.emulator.samples import (
    mp4_with_title,
    pdf_with_pages,
    png_with_description,
    wav_with_title,
)
from tests.ingest.test_ingest import make_embed

CONTRACT_KEYS = {"modality", "file_path", "file_name", "mime_type", "media_sha256"}


def mixed_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "note.md").write_text("# Bikes\n\nA note about bicycles at night.\n")
    (root / "bike.png").write_bytes(png_with_description("a red bicycle at night"))
    (root / "manual.pdf").write_bytes(pdf_with_pages([f"page {i} on brakes" for i in range(8)]))
    (root / "bell.wav").write_bytes(wav_with_title("a bicycle bell"))
    (root / "ride.mp4").write_bytes(mp4_with_title("a night ride"))
    return root


def test_media_files_become_the_contracts_nodes(tmp_path: Path) -> None:
    folder = mixed_folder(tmp_path / "mixed")
    source = open_source(folder, None, True, media=True)
    nodes = {
        (node.metadata["file_name"], node.metadata.get("page_start")): node
        for doc in source.documents
        if doc.metadata.get("modality")
        for node in media_nodes(doc)
    }
    assert sorted(nodes) == sorted(
        [
            ("bike.png", None),
            ("manual.pdf", 1),
            ("manual.pdf", 7),
            ("bell.wav", None),
            ("ride.mp4", None),
        ]
    )
    image = nodes[("bike.png", None)]
    assert isinstance(image, ImageNode) and image.image_path == str((folder / "bike.png").resolve())
    assert image.image_mimetype == "image/png" and image.metadata["modality"] == "image"
    audio, video = nodes[("bell.wav", None)], nodes[("ride.mp4", None)]
    assert isinstance(audio, Node) and audio.audio_resource is not None
    assert audio.audio_resource.mimetype == "audio/wav" and audio.metadata["modality"] == "audio"
    assert isinstance(video, Node) and video.video_resource is not None
    assert video.video_resource.mimetype == "video/mp4"
    first, second = nodes[("manual.pdf", 1)], nodes[("manual.pdf", 7)]
    assert (first.metadata["page_start"], first.metadata["page_end"]) == (1, 6)
    assert (second.metadata["page_start"], second.metadata["page_end"]) == (7, 8)
    assert isinstance(second, Node) and second.text_resource is not None
    assert second.text_resource.text == "page 6 on brakes\npage 7 on brakes"
    assert first.metadata["media_sha256"] != second.metadata["media_sha256"]
    for node in nodes.values():
        assert set(node.metadata) >= CONTRACT_KEYS
        shown = node.get_content(metadata_mode=MetadataMode.EMBED)
        assert "media_sha256" not in shown and "mime_type" not in shown
        assert node.ref_doc_id == node.metadata["file_name"]


def test_gemini_embedding_2_plans_each_modality(emulator: Emulator, tmp_path: Path) -> None:
    folder = mixed_folder(tmp_path / "mixed")
    embed = make_embed(emulator, model_name="gemini-embedding-2")
    with ChromaStore("media", path=str(tmp_path / "chroma")) as store:
        report = ingest(folder, embed_model=embed, store=store, dry_run=True, show_progress=False)
        only_images = ingest(
            folder,
            embed_model=embed,
            store=store,
            dry_run=True,
            show_progress=False,
            extensions=[".png"],
        )
    assert report.documents == 5 and report.nodes == report.to_embed == 6
    assert report.modalities == {"text": 1, "image": 1, "pdf": 2, "audio": 1, "video": 1}
    assert "by modality: 1 text, 1 image, 2 pdf, 1 audio, 1 video" in str(report).splitlines()
    assert report.media_skipped == {} and report.files_skipped == 0
    assert only_images.modalities == {"image": 1} and only_images.nodes == 1
    assert emulator.counters.requests == 0


def test_a_text_only_model_skips_media_with_one_line(emulator: Emulator, tmp_path: Path) -> None:
    folder = mixed_folder(tmp_path / "mixed")
    embed = make_embed(emulator)  # gemini-embedding-001
    with ChromaStore("text", path=str(tmp_path / "chroma")) as store:
        report = ingest(folder, embed_model=embed, store=store, show_progress=False)
        assert sorted(store.get_index()) == ["note.md"]
    assert report.ok and report.documents == report.embedded == 1
    assert report.media_skipped == {"image": 1, "pdf": 1, "audio": 1, "video": 1}
    assert report.files_skipped == 0 and report.modalities == {"text": 1}
    lines = str(report).splitlines()
    skipped = [line for line in lines if "skipped" in line]
    assert skipped == [
        "1 image, 1 pdf, 1 audio, 1 video files skipped: this model embeds text only; use "
        "gemini-embedding-2 (model_name= / --model) to embed images, PDFs, audio and video"
    ]
    assert not any("not read" in line for line in lines)


def test_only_media_with_a_text_only_model_is_a_clear_error(
    emulator: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(png_with_description("a cat"))
    (folder / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    with (
        ChromaStore("photos", path=str(tmp_path / "chroma")) as store,
        pytest.raises(EmptyInputError) as info,
    ):
        ingest(folder, embed_model=make_embed(emulator), store=store, show_progress=False)
    assert str(info.value) == (
        f"Nothing to ingest: the 2 files in {str(folder)!r} are 2 image files or unreadable, "
        "and the model embeds text only; use model_name='gemini-embedding-2' to embed "
        "images, PDFs, audio and video"
    )
    assert emulator.counters.requests == 0


def test_media_are_incremental_by_the_bytes_they_embed(emulator: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "note.md").write_text("# Bikes\n\nA note about bicycles at night.\n")
    (folder / "bike.png").write_bytes(png_with_description("a red bicycle at night"))
    (folder / "manual.pdf").write_bytes(pdf_with_pages([f"page {i} on brakes" for i in range(8)]))
    embed = make_embed(emulator, model_name="gemini-embedding-2")
    with ChromaStore("media", path=str(tmp_path / "chroma")) as store:
        first = ingest(folder, embed_model=embed, store=store, show_progress=False)
        assert first.ok and first.embedded == 4, first
        rows = store.collection.get(include=["metadatas", "documents"])
        by_id = dict(zip(rows["ids"], rows["metadatas"] or [], strict=True))
        assert {k: by_id["bike.png#0"][k] for k in ("modality", "mime_type", "file_name")} == {
            "modality": "image",
            "mime_type": "image/png",
            "file_name": "bike.png",
        }
        assert (by_id["manual.pdf#1"]["page_start"], by_id["manual.pdf#1"]["page_end"]) == (7, 8)
        image = store.get_nodes(node_ids=["bike.png#0"])[0]
        assert isinstance(image, ImageNode) and image.image is None  # the path, never bytes
        assert image.image_path == str((folder / "bike.png").resolve())
        calls = emulator.counters.embed_requests
        again = ingest(folder, embed_model=embed, store=store, show_progress=False)
        assert again.skipped == 4 and again.embedded == 0
        assert emulator.counters.embed_requests == calls
        (folder / "bike.png").write_bytes(png_with_description("a blue bicycle by day"))
        changed = ingest(folder, embed_model=embed, store=store, show_progress=False)
        assert changed.embedded == 1 and changed.skipped == 3
        assert store.count() == 4


def test_a_media_item_over_a_limit_fails_alone_before_any_spend(
    emulator: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "bike.png").write_bytes(png_with_description("a red bicycle"))
    (folder / "long.mp4").write_bytes(mp4_with_title("a long ride", seconds=130))
    embed = make_embed(emulator, model_name="gemini-embedding-2")
    with ChromaStore("clips", path=str(tmp_path / "chroma")) as store:
        report = ingest(folder, embed_model=embed, store=store, show_progress=False)
        assert sorted(store.get_index()) == ["bike.png"]
    assert report.embedded == 1 and report.failed == 1 and not report.ok
    (failure,) = report.failures
    assert (failure.node_id, failure.error_type) == ("long.mp4#0", "MediaError")
    assert "at most 120 s per item: trim or split the video" in failure.message
    assert emulator.counters.embed_items == 1  # the long video was never sent


def test_a_text_query_finds_each_modality_by_its_content(
    emulator: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "note.md").write_text("# Tea\n\nHow to brew green tea at low temperature.\n")
    (folder / "bike.png").write_bytes(png_with_description("a red bicycle at night"))
    (folder / "whale.pdf").write_bytes(pdf_with_pages(["the blue whale sings under the sea"]))
    (folder / "bell.wav").write_bytes(wav_with_title("a church bell ringing at noon"))
    embed = make_embed(emulator, model_name="gemini-embedding-2")
    with ChromaStore("mixed", path=str(tmp_path / "chroma"), embed_model=embed) as store:
        report = ingest(folder, embed_model=embed, store=store, show_progress=False)
        assert report.ok and report.embedded == 4
        index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
        retriever = index.as_retriever(similarity_top_k=1)
        found = {
            query: retriever.retrieve(query)[0].node
            for query in ("a red bicycle at night", "the blue whale sings", "a church bell ringing")
        }
    bike, whale, bell = found.values()
    assert isinstance(bike, ImageNode) and bike.metadata["file_name"] == "bike.png"
    assert whale.metadata["file_name"] == "whale.pdf" and whale.metadata["page_start"] == 1
    assert bell.metadata["file_name"] == "bell.wav" and bell.metadata["modality"] == "audio"


def test_a_stopped_media_run_resumes_without_paying_twice(
    emulator: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "album"
    folder.mkdir()
    for i in range(12):
        (folder / f"photo{i:02d}.png").write_bytes(png_with_description(f"photo {i} of a lake"))
    (folder / "guide.pdf").write_bytes(pdf_with_pages([f"guide page {i}" for i in range(8)]))
    (folder / "waves.wav").write_bytes(wav_with_title("waves on the shore"))
    uninterrupted = make_embed(emulator, model_name="gemini-embedding-2", embed_batch_size=5)
    with ChromaStore("clean", path=str(tmp_path / "clean")) as clean:
        assert ingest(folder, embed_model=uninterrupted, store=clean, show_progress=False).ok
        expected = clean.collection.get(include=["embeddings", "metadatas"])
    emulator.reset_daily_quota()
    emulator.set_quota(QuotaConfig(items_per_day=10))
    embed = make_embed(
        emulator, model_name="gemini-embedding-2", embed_batch_size=5, max_concurrency=1
    )
    with ChromaStore("album", path=str(tmp_path / "chroma")) as store:
        with pytest.raises(DailyQuotaExceededError) as stopped:
            ingest(folder, embed_model=embed, store=store, show_progress=False)
        assert stopped.value.report is not None and stopped.value.report.written == 10
        emulator.reset_daily_quota()
        emulator.set_quota(QuotaConfig())
        items = emulator.counters.embed_items
        resumed = ingest(folder, embed_model=embed, store=store, show_progress=False)
        assert resumed.ok and resumed.skipped == 10 and resumed.embedded == 5
        assert emulator.counters.embed_items - items == 5  # nothing paid twice
        got = store.collection.get(include=["embeddings", "metadatas"])
    assert sorted(got["ids"]) == sorted(expected["ids"])
    vectors = dict(zip(got["ids"], got["embeddings"], strict=True))  # type: ignore[arg-type]
    for node_id, vector in zip(expected["ids"], expected["embeddings"], strict=True):  # type: ignore[arg-type]
        assert list(vector) == list(vectors[node_id]), node_id


def test_planned_media_chunks_hold_no_bytes_until_they_are_sent(tmp_path: Path) -> None:
    folder = mixed_folder(tmp_path / "mixed")
    embed = GeminiEmbedding(api_key="unused", model_name="gemini-embedding-2")  # no call made
    chunker = Chunker(embed, [SentenceSplitter()])
    chunks = chunker.split(list(open_source(folder, None, True, media=True).documents))
    media = [(node, spec) for node, spec, _ in chunks if node.metadata.get("modality")]
    assert len(media) == 5
    for node, spec in media:
        assert spec is not None and spec.media == ()  # what waits in the run's queue
        sent = chunker.wire_spec(node, spec)
        assert len(sent.media) == 1 and sent.media[0].data  # read just before sending
        assert sent.media[0].mime_type == node.metadata["mime_type"]


def test_a_dry_run_counts_media_tokens_like_the_real_run(
    emulator: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        (folder / f"p{i}.png").write_bytes(png_with_description(f"photo {i} of a harbour"))
    embed = make_embed(emulator, model_name="gemini-embedding-2")
    with ChromaStore("photos", path=str(tmp_path / "chroma")) as store:
        dry = ingest(folder, embed_model=embed, store=store, dry_run=True, show_progress=False)
        real = ingest(folder, embed_model=embed, store=store, show_progress=False)
    assert dry.tokens == real.tokens == 3 * 258  # Google's rate: 258 tokens per image
    assert dry.requests == real.requests == 1
