"""kill -9 mid-ingest with media in the corpus (gemini-embedding-2), then resume.

Like tests/ingest/test_crash.py for text: the CLI runs as a subprocess against an emulator
with latency and is killed once a quarter of the items are stored. The mixed folder has
PNGs, PDFs over 6 pages (each split into two page ranges), WAVs and Markdown. After the
re-run: every item stored exactly once with the ids and hashes of an uninterrupted run, the
re-spend within the documented crash bound (README guarantee 2), the per-modality counts
right, and no raw media bytes anywhere in Chroma.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from llama_index_gemini_embed._ingest.writer import COALESCE_RECORDS
from llama_index_gemini_embed._store.store import ChromaStore
from llama_index_gemini_embed.emulator import Emulator
from llama_index_gemini_embed.emulator.samples import (
    pdf_with_pages,
    png_with_description,
    wav_with_title,
)
from tests.ingest.test_crash import (
    BATCH,
    COLLECTION,
    CONCURRENCY,
    cli,
    crash_and_resume,
    snapshot,
)

MODEL = ("--model", "gemini-embedding-2", "--json")
COUNTS = {"image": 40, "pdf": 2 * 12, "audio": 30}


def mixed_folder(root: Path) -> list[bytes]:
    """The corpus; returns every medium's bytes (to look for them in the store)."""
    root.mkdir(parents=True)
    media: list[bytes] = []
    for i in range(COUNTS["image"]):
        media.append(png_with_description(f"photo {i}: a red bicycle number {i} at night"))
        (root / f"photo{i:02d}.png").write_bytes(media[-1])
    for i in range(COUNTS["pdf"] // 2):  # 8 pages: pages 1-6 and 7-8
        media.append(pdf_with_pages([f"manual {i} page {p} on brakes" for p in range(8)]))
        (root / f"manual{i:02d}.pdf").write_bytes(media[-1])
    for i in range(COUNTS["audio"]):
        media.append(wav_with_title(f"clip {i}: a bicycle bell ringing {i} times", seconds=0.5))
        (root / f"bell{i:02d}.wav").write_bytes(media[-1])
    for i in range(10):
        (root / f"note{i}.md").write_text(f"# Note {i}\n\n" + f"Bicycles at night, note {i}. " * 30)
    return media


def report_of(output: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(output)
    return data


def raw_bytes_in_store(path: Path, media: list[bytes]) -> list[str]:
    """Stored documents/metadata values that carry media bytes (base64 or raw) or are huge."""
    needles = set()
    for data in media:
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            needles.add(encode(data[:600]).decode()[8:200])  # a stretch of the encoded bytes
    with ChromaStore(COLLECTION, path=str(path)) as store:
        rows = store.collection.get(include=["documents", "metadatas"])
    found = []
    values = [doc or "" for doc in rows["documents"] or []]
    values += [str(v) for meta in rows["metadatas"] or [] for v in (meta or {}).values()]
    for value in values:
        if (
            len(value) > 20_000
            or "\x89PNG" in value
            or "%PDF-" in value
            or "RIFF" in value
            or any(needle in value for needle in needles)
        ):
            found.append(value[:80])
    return found


@pytest.mark.slow
def test_kill_9_mid_media_ingest_then_resume(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    media = mixed_folder(corpus)
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env["ANONYMIZED_TELEMETRY"] = "False"

    # The reference: a clean, uninterrupted run of the same command.
    with Emulator() as clean_emu:
        env["GEMINI_API_KEY"] = clean_emu.api_key
        clean = subprocess.run(
            cli(corpus, tmp_path / "clean", clean_emu, *MODEL),
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert clean.returncode == 0, clean.stderr
    reference = report_of(clean.stdout)
    total = reference["nodes"]
    assert reference["modalities"] == {**COUNTS, "text": total - sum(COUNTS.values())}
    assert reference["modalities"]["text"] >= 10 and total > 100
    expected = snapshot(tmp_path / "clean")
    assert len(expected) == total

    crashed = tmp_path / "crashed"
    crash = crash_and_resume(corpus, crashed, total, *MODEL)
    survived, spent_before_kill, spent_total = (
        crash.survived,
        crash.spent_before_kill,
        crash.spent_total,
    )

    # Every item exactly once, with the ids, texts and hashes of the uninterrupted run.
    assert snapshot(crashed) == expected
    report = report_of(crash.resumed.stdout)
    assert report["ok"] and report["skipped"] == survived  # unchanged: not sent again
    # reused: chunks whose identical text already has a vector (the notes repeat a sentence)
    assert report["embedded"] + report["skipped"] + report["reused"] == total
    assert report["modalities"] == reference["modalities"], "every item read once per modality"
    respent = spent_total - total
    in_flight_bound = (2 * CONCURRENCY + 1) * BATCH + COALESCE_RECORDS
    assert 0 <= respent <= in_flight_bound, (respent, spent_before_kill, survived)
    # What the re-run sent, per modality, is what it embedded.
    sent = report["usage_by_modality"]
    assert sum(row["items"] for row in sent.values()) >= report["embedded"]
    assert set(sent) <= {"text", "image", "pdf", "audio"}
    for kind in ("image", "pdf", "audio"):
        assert sent.get(kind, {"items": 0})["items"] <= COUNTS[kind]
    assert raw_bytes_in_store(crashed, media) == []
    print(
        f"killed at {survived}/{total} stored ({spent_before_kill} embedded); "
        f"re-spent {respent} items (bound {in_flight_bound}); resumed: embedded "
        f"{report['embedded']}, skipped {report['skipped']}, reused {report['reused']}; "
        f"spent {spent_total}"
    )
