"""Issue 15: an ingest report gives tokens and cost per modality (real and dry runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llama_index_gemini_embed import ChromaStore, ingest
from llama_index_gemini_embed._models import model_spec
from llama_index_gemini_embed.emulator import Emulator
from llama_index_gemini_embed.emulator.samples import png_with_description, wav_with_title
from tests.ingest.test_ingest import make_embed
from tests.ingest.test_media import mixed_folder

PRICES = dict(model_spec("gemini-embedding-2").modality_prices)


def test_the_report_costs_each_modality_at_its_price(emulator: Emulator, tmp_path: Path) -> None:
    folder = mixed_folder(tmp_path / "mixed")
    embed = make_embed(emulator, model_name="gemini-embedding-2")
    with ChromaStore("media", path=str(tmp_path / "chroma")) as store:
        dry = ingest(folder, embed_model=embed, store=store, dry_run=True, show_progress=False)
        report = ingest(folder, embed_model=embed, store=store, show_progress=False)
    assert report.ok
    used = report.usage_by_modality
    assert set(used) == {"text", "image", "pdf", "audio", "video"}
    assert used["image"]["tokens"] == 258 and used["pdf"]["tokens"] == 8 * 258
    assert (used["audio"]["items"], used["video"]["items"], used["pdf"]["items"]) == (1, 1, 2)
    for kind, row in used.items():
        assert row["cost_usd"] == pytest.approx(row["tokens"] * PRICES[kind] / 1e6), kind
    assert report.cost_usd == pytest.approx(sum(row["cost_usd"] for row in used.values()))
    assert sum(row["tokens"] for row in used.values()) == report.tokens
    assert report.assumed_prices == ["pdf"]
    (line,) = [line for line in str(report).splitlines() if "cost by modality" in line]
    assert line.startswith("tokens and cost by modality: text ~")
    assert "image ~258 $0.0001" in line and "pdf ~2,064 $0.0009 (price assumed, unverified)" in line
    assert json.loads(json.dumps(report.to_dict()))["usage_by_modality"]["video"]["tokens"] == 66
    # The dry run priced the same media the same way (its text estimate may differ).
    assert {k: v["tokens"] for k, v in dry.usage_by_modality.items() if k != "text"} == {
        k: v["tokens"] for k, v in used.items() if k != "text"
    }
    assert dry.cost_usd == pytest.approx(
        sum(row["cost_usd"] for row in dry.usage_by_modality.values())
    )
    assert dry.cost_usd > dry.tokens * PRICES["text"] / 1e6, "media are not priced as text"


def test_a_text_only_run_prints_no_modality_cost_line(emulator: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nSome text about bicycles.\n")
    with ChromaStore("text", path=str(tmp_path / "chroma")) as store:
        report = ingest(folder, embed_model=make_embed(emulator), store=store, show_progress=False)
    assert set(report.usage_by_modality) == {"text"}
    assert "cost by modality" not in str(report)
    assert report.assumed_prices == []


async def test_batch_mode_costs_its_online_media_at_their_prices(
    emulator: Emulator, tmp_path: Path
) -> None:
    from llama_index_gemini_embed import aingest
    from tests.fakes import FakeTime
    from tests.ingest.test_batch_ingest import batch_options

    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "note.md").write_text("# Bikes\n\nA note about bicycles at night.\n")
    (folder / "bike.png").write_bytes(png_with_description("a red bicycle at night"))
    (folder / "bell.wav").write_bytes(wav_with_title("a bicycle bell", seconds=2.0))
    embed = make_embed(emulator, model_name="gemini-embedding-2")
    with ChromaStore("batch", path=str(tmp_path / "chroma")) as store:
        report = await aingest(
            folder,
            store=store,
            embed_model=embed,
            batch=batch_options(FakeTime()),
            show_progress=False,
        )
    assert report.ok and report.mode == "batch" and report.batch is not None
    used = report.usage_by_modality
    assert used["image"]["cost_usd"] == pytest.approx(258 * PRICES["image"] / 1e6)
    assert used["audio"]["cost_usd"] == pytest.approx(50 * PRICES["audio"] / 1e6)
    batch_text_usd = report.batch["batch_cost_usd"]
    assert batch_text_usd > 0 and used["text"]["cost_usd"] >= batch_text_usd
    assert report.cost_usd == pytest.approx(sum(row["cost_usd"] for row in used.values()))
    assert report.cost_usd > used["audio"]["cost_usd"] + used["image"]["cost_usd"]


def test_a_dry_batch_run_prices_text_at_the_batch_rate_and_media_online(
    emulator: Emulator, tmp_path: Path
) -> None:
    from llama_index_gemini_embed import BatchOptions

    folder = mixed_folder(tmp_path / "mixed")
    embed = make_embed(emulator, model_name="gemini-embedding-2")
    with ChromaStore("dry", path=str(tmp_path / "chroma")) as store:
        online = ingest(folder, embed_model=embed, store=store, dry_run=True, show_progress=False)
        batch = ingest(
            folder,
            embed_model=embed,
            store=store,
            dry_run=True,
            show_progress=False,
            batch=BatchOptions(),
        )
    assert batch.mode == "batch"
    text = online.usage_by_modality["text"]
    media_usd = online.cost_usd - text["cost_usd"]
    assert media_usd > 0
    assert batch.usage_by_modality["text"]["cost_usd"] == pytest.approx(text["cost_usd"] / 2)
    assert batch.cost_usd == pytest.approx(text["cost_usd"] / 2 + media_usd)
    assert batch.saving_usd == pytest.approx(text["cost_usd"] / 2)
    assert batch.cost_usd == pytest.approx(
        sum(row["cost_usd"] for row in batch.usage_by_modality.values())
    )
