"""Issue 15: a Batch API run prices the media it embeds online at their modality prices.

The Batch path carries text only, so items with media are embedded online (the same engine);
``BatchRunReport.online_cost_usd`` used to price all those tokens at the text rate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llama_index_gemini_embed._batch.report import BatchRunReport
from llama_index_gemini_embed._embedding.engine import TextSpec
from llama_index_gemini_embed._embedding.media import TOKENS_PER_IMAGE, TOKENS_PER_PDF_PAGE
from llama_index_gemini_embed._models import model_spec
from llama_index_gemini_embed._types import MediaPart
from llama_index_gemini_embed.emulator import Emulator
from llama_index_gemini_embed.emulator.samples import pdf_with_pages, png_with_description
from tests.batch.test_jobs import Sink, batcher, corpus, model
from tests.fakes import FakeTime

E2 = "gemini-embedding-2"
DOC = "RETRIEVAL_DOCUMENT"


async def test_online_media_of_a_batch_run_are_priced_per_modality(
    emulator: Emulator, tmp_path: Path
) -> None:
    fake = FakeTime()
    photo = TextSpec(
        "holiday", DOC, media=(MediaPart("image/png", png_with_description("a bike")),)
    )
    pages = TextSpec("", DOC, media=(MediaPart("application/pdf", pdf_with_pages(["whales"])),))
    items = [*corpus(3), ("photo#0", photo), ("whale.pdf#p1", pages)]
    embed = model(emulator, fake, E2, output_dimensionality=768)
    report = await batcher(embed, tmp_path / "s.json", fake).run(items, Sink())
    assert report.ok and report.embedded_batch == 3 and report.embedded_online == 2

    spec = model_spec(E2)
    prices = dict(spec.modality_prices)
    text = report.online_tokens - TOKENS_PER_IMAGE - TOKENS_PER_PDF_PAGE
    expected = (
        text * spec.price_per_million_tokens
        + TOKENS_PER_IMAGE * prices["image"]
        + TOKENS_PER_PDF_PAGE * prices["pdf"]
    ) / 1e6
    assert report.online_cost_usd == pytest.approx(expected)
    assert report.online_cost_usd > report.online_tokens * spec.price_per_million_tokens / 1e6
    assert report.cost_usd == pytest.approx(report.batch_cost_usd + expected)
    by_modality = report.online_by_modality
    assert by_modality["image"].tokens == TOKENS_PER_IMAGE
    assert by_modality["pdf"].tokens == TOKENS_PER_PDF_PAGE
    assert by_modality["text"].tokens == text > 0
    assert {kind: part.items for kind, part in by_modality.items()} == {
        "text": 1,
        "image": 1,
        "pdf": 1,
    }
    assert report.online_assumed_prices == ("pdf",)
    summary = report.summary()
    assert "pdf ~258 tokens" in summary and "price assumed" in summary
    data = report.to_dict()
    assert data["online_cost_usd"] == pytest.approx(expected)
    assert data["online_by_modality"]["image"]["tokens"] == TOKENS_PER_IMAGE


def test_a_report_without_a_modality_split_keeps_the_text_price() -> None:
    report = BatchRunReport(model="gemini-embedding-001", online_tokens=1_000_000)
    report.online_price_per_million = 0.15
    assert report.online_cost_usd == pytest.approx(0.15)
    assert report.online_by_modality == {} and "price assumed" not in report.summary()
