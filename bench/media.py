"""Benchmark: multimodal ingestion (gemini-embedding-2) — media items/s and bytes per request.

A generated mixed folder (``emulator.samples``: PNG photos padded to a realistic size with
random bytes in an ancillary chunk, 8-page PDFs that ingest splits into two page ranges,
WAV clips, MP4 videos padded past ``max_inline_media_bytes`` so they go through the Files API
and stay PROCESSING for a few polls, Markdown notes) is ingested once by ``ingest()`` into a
fresh local Chroma store, against the emulator in this process with a per-request latency.

Measured: wall time, media items/s, embedding requests, the JSON body size of every
embedding request (inline data counts, base64) against the documented 4,194,304-byte request
cap (docs/gemini-api.md §2), Files API uploads / polls / deletes, and the per-modality tokens
and cost the report gives. Writes bench/results/media.json and prints a markdown row.

    python bench/media.py                       # the lead's run (defaults below)
    python bench/media.py --images 6 --pdfs 2 --audio 4 --videos 1 --notes 3   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import random
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import LoadMonitor, fresh_dir, median, percentile, summary, write_result

from llama_index_gemini_embed import ChromaStore, GeminiEmbedding, ingest
from llama_index_gemini_embed.emulator import Emulator
from llama_index_gemini_embed.emulator.samples import (
    mp4_with_title,
    pdf_with_pages,
    png_with_description,
    wav_with_title,
)

PAYLOAD_CAP = 4_194_304  # bytes per request body (docs/gemini-api.md §2)
MODEL = "gemini-embedding-2"


def padded_png(text: str, size: int, rng: random.Random) -> bytes:
    """A PNG with a description, padded to ``size`` bytes by an ancillary ``prVt`` chunk of
    random (incompressible) bytes before IEND, like a photo's weight on the wire."""
    png = png_with_description(text)
    pad = max(0, size - len(png) - 12)
    data = rng.randbytes(pad)
    chunk = struct.pack(">I", pad) + b"prVt" + data
    chunk += struct.pack(">I", zlib.crc32(b"prVt" + data) & 0xFFFFFFFF)
    iend = png.rindex(b"IEND") - 4
    return png[:iend] + chunk + png[iend:]


def padded_mp4(text: str, size: int, rng: random.Random) -> bytes:
    """An MP4 with a title, padded to ``size`` bytes by a trailing ``free`` box."""
    mp4 = mp4_with_title(text, seconds=20.0)
    pad = max(0, size - len(mp4) - 8)
    return mp4 + struct.pack(">I", pad + 8) + b"free" + rng.randbytes(pad)


def make_folder(root: Path, args: argparse.Namespace) -> dict[str, int]:
    rng = random.Random(7)
    files = {"image": 0, "pdf": 0, "audio": 0, "video": 0, "text": 0}
    for i in range(args.images):
        text = f"photo {i}: a red bicycle number {i} parked at night"
        (root / f"photo{i:04d}.png").write_bytes(padded_png(text, args.image_kb * 1024, rng))
        files["image"] += 1
    for i in range(args.pdfs):
        pages = [f"manual {i}, page {p}: adjusting the brakes, step {p}" for p in range(8)]
        (root / f"manual{i:04d}.pdf").write_bytes(pdf_with_pages(pages))
        files["pdf"] += 1
    for i in range(args.audio):
        clip = wav_with_title(f"clip {i}: a bicycle bell", seconds=args.audio_seconds)
        (root / f"bell{i:04d}.wav").write_bytes(clip)
        files["audio"] += 1
    for i in range(args.videos):
        video = padded_mp4(f"video {i}: a night ride", args.video_kb * 1024, rng)
        (root / f"ride{i:04d}.mp4").write_bytes(video)
        files["video"] += 1
    for i in range(args.notes):
        body = " ".join(
            f"Note {i}, sentence {s}: bicycles at night need lights." for s in range(40)
        )
        (root / f"note{i:04d}.md").write_text(f"# Note {i}\n\n{body}\n")
        files["text"] += 1
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--image-kb", type=int, default=250, help="bytes of each PNG, KiB")
    parser.add_argument("--pdfs", type=int, default=40, help="8-page PDFs (2 items each)")
    parser.add_argument("--audio", type=int, default=60)
    parser.add_argument("--audio-seconds", type=float, default=10.0, help="8 kHz mono WAV")
    parser.add_argument("--videos", type=int, default=6, help="each over 2 MB: Files API")
    parser.add_argument("--video-kb", type=int, default=2600)
    parser.add_argument("--notes", type=int, default=40, help="Markdown notes")
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--jitter", type=float, default=0.05)
    parser.add_argument("--processing-polls", type=int, default=1, help="video GETs PROCESSING")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    folder = fresh_dir("media-corpus")
    files = make_folder(folder, args)
    corpus_bytes = sum(p.stat().st_size for p in folder.iterdir())
    store_dir = fresh_dir("media-store")

    monitor = LoadMonitor()
    with Emulator(latency=args.latency, jitter=args.jitter, request_log_limit=1_000_000) as emu:
        emu.set_upload_behaviour(processing_polls=args.processing_polls)
        embed = GeminiEmbedding(
            api_key=emu.api_key,
            base_url=emu.base_url,
            model_name=MODEL,
            output_dimensionality=768,
            max_concurrency=args.concurrency,
        )
        with monitor, ChromaStore("media", path=str(store_dir), embed_model=embed) as store:
            started = time.perf_counter()
            report = ingest(folder, embed_model=embed, store=store, show_progress=False)
            wall = time.perf_counter() - started
        log = emu.requests
    if not report.ok:
        raise SystemExit(f"the ingest did not finish cleanly:\n{report}")

    embeds = [r for r in log if r.path.endswith(":batchEmbedContents") and r.status == 200]
    sizes = [len(json.dumps(r.body)) for r in embeds if r.body is not None]
    items_per_request = [len(r.body["requests"]) for r in embeds if r.body is not None]
    uploads = [r for r in log if r.path.startswith("/upload/") and r.method == "POST"]
    file_gets = [r for r in log if r.method == "GET" and "/files/" in r.path]
    deletes = [r for r in log if r.method == "DELETE" and "/files/" in r.path]
    modalities = dict(report.modalities)
    media_items = sum(n for kind, n in modalities.items() if kind != "text")
    result: dict[str, Any] = {
        "settings": vars(args),
        "files": files,
        "corpus_bytes": corpus_bytes,
        "items": modalities,
        "media_items": media_items,
        "wall_seconds": round(wall, 3),
        "media_items_per_second": round(media_items / wall, 2),
        "items_per_second": round(report.nodes / wall, 2),
        "requests": len(embeds),
        "items_per_request": {
            "median": median(items_per_request),
            "max": max(items_per_request),
        },
        "request_bytes": {
            "median": int(median(sizes)),
            "p95": int(percentile(sizes, 95)),
            "max": max(sizes),
            "cap": PAYLOAD_CAP,
            "max_fraction_of_cap": round(max(sizes) / PAYLOAD_CAP, 3),
            "total": sum(sizes),
        },
        "files_api": {
            "uploads": embed.engine.uploads.count,
            "upload_http_posts": len(uploads),  # resumable: start + upload/finalize each
            "polls": len(file_gets),
            "deletes": len(deletes),
        },
        "usage_by_modality": report.usage_by_modality,
        "assumed_prices": report.assumed_prices,
        "cost_usd": report.cost_usd,
        "load": monitor.describe(),
    }
    path = write_result("media", result)
    rb = result["request_bytes"]
    row = (
        f"| media ingest, {MODEL} | {report.nodes} items "
        f"({', '.join(f'{n} {k}' for k, n in modalities.items())}) "
        f"| {wall:.1f} s | {result['media_items_per_second']:.1f} media items/s "
        f"| {len(embeds)} requests | {rb['median']:,} / {rb['max']:,} B per request "
        f"({rb['max_fraction_of_cap']:.0%} of the 4,194,304 B cap at most) "
        f"| {result['files_api']['uploads']} Files API uploads "
        f"({result['files_api']['polls']} polls, {result['files_api']['deletes']} deletes) "
        f"| ${report.cost_usd:.4f} |"
    )
    print(
        "| benchmark | corpus | wall | rate | requests | bytes/request median / max "
        "| uploads | est. cost |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(row)
    print(f"wrote {path}")
    summary(
        "media",
        f"{result['media_items_per_second']:.1f} media items/s; max request "
        f"{rb['max_fraction_of_cap']:.0%} of the payload cap; "
        f"{result['files_api']['uploads']} uploads",
    )


if __name__ == "__main__":
    main()
