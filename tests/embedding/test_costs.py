"""Issue 15: usage and cost per modality (gemini-embedding-2 prices each one differently).

Prices and their sources: docs/gemini-api.md "Prices per modality"; the PDF price is an
assumption and the usage says so (``assumed_prices``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core.schema import MediaResource, Node

from llama_index_gemini_embed import GeminiEmbedding
from llama_index_gemini_embed._embedding.engine import modality_split
from llama_index_gemini_embed._models import model_spec
from llama_index_gemini_embed._packing import Item
from llama_index_gemini_embed._types import MediaPart
from llama_index_gemini_embed.emulator import Emulator
from llama_index_gemini_embed.emulator.samples import (
    mp4_with_title,
    pdf_with_pages,
    png_with_description,
    wav_with_title,
)

PRICES = dict(model_spec("gemini-embedding-2").modality_prices)


def make(emu: Emulator, model: str = "gemini-embedding-2") -> GeminiEmbedding:
    return GeminiEmbedding(
        api_key=emu.api_key, base_url=emu.base_url, model_name=model, output_dimensionality=256
    )


def test_each_modality_is_costed_at_its_own_price(emulator: Emulator, tmp_path: Path) -> None:
    pdf = tmp_path / "two.pdf"
    pdf.write_bytes(pdf_with_pages(["a chart of rainfall", "a table of sales"]))
    image = Node(text_resource=MediaResource(text="my red bicycle"))
    image.image_resource = MediaResource(data=png_with_description("a bike"), mimetype="image/png")
    nodes = [
        image,
        Node(video_resource=MediaResource(data=mp4_with_title("a cat", 2.0), mimetype="video/mp4")),
        Node(audio_resource=MediaResource(data=wav_with_title("a dog", 2.0), mimetype="audio/wav")),
        Node(
            text_resource=MediaResource(text=""),
            metadata={"modality": "pdf", "file_path": str(pdf), "mime_type": "application/pdf"},
        ),
    ]
    embed = make(emulator)
    embed(nodes)
    usage = embed.usage
    by = usage.by_modality
    assert set(by) == {"text", "image", "video", "audio", "pdf"}
    assert (by["image"].tokens, by["video"].tokens, by["audio"].tokens) == (258, 132, 50)
    assert by["pdf"].tokens == 2 * 258
    for kind, part in by.items():
        assert part.cost_usd == pytest.approx(part.tokens * PRICES[kind] / 1e6), kind
    assert by["video"].cost_usd == pytest.approx(132 * 12.00 / 1e6)  # not the text price
    assert usage.cost_usd == pytest.approx(sum(part.cost_usd for part in by.values()))
    assert usage.cost_usd > usage.tokens * 0.20 / 1e6, "media cost more than text"
    assert usage.assumed_prices == ("pdf",), "the usage says which price is assumed"
    assert embed.usage_by_modality == by


def test_text_only_usage_is_one_text_modality_at_the_text_price(emulator: Emulator) -> None:
    embed = make(emulator, "gemini-embedding-001")
    embed.get_text_embedding_batch(["one sentence", "another sentence"])
    usage = embed.usage
    assert set(usage.by_modality) == {"text"}
    assert usage.by_modality["text"].tokens == usage.tokens
    assert usage.cost_usd == pytest.approx(usage.tokens * 0.15 / 1e6)
    assert usage.assumed_prices == ()


def test_a_delta_of_usage_keeps_only_what_changed_per_modality(emulator: Emulator) -> None:
    embed = make(emulator)
    embed.get_text_embedding("warm up")
    before = embed.usage
    node = Node(
        audio_resource=MediaResource(data=wav_with_title("rain", 4.0), mimetype="audio/wav")
    )
    embed([node])
    delta = embed.usage - before
    assert set(delta.by_modality) == {"audio"}
    assert delta.by_modality["audio"].tokens == 100
    assert delta.cost_usd == pytest.approx(100 * 6.50 / 1e6)


def test_estimates_are_scaled_to_the_total_the_api_reported() -> None:
    png = png_with_description("x")
    items = [
        Item(0, "t" * 400, None, media=(MediaPart("image/png", png),)),
        Item(1, "u" * 400, None),
    ]
    split, carried = modality_split(items, 1_000, None)
    assert sum(split.values()) == 1_000
    assert carried == {"text": 2, "image": 1}
    assert split == modality_split(items, 1_000, None)[0]
    assert modality_split(items, 1_000, {"text": 700, "image": 300})[0] == {
        "text": 700,
        "image": 300,
    }
