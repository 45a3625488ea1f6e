"""Benchmark: a folder of small files, titled vs untitled (issue 14's "titles cost nothing").

1,000 one-chunk Markdown notes on disk, each with its own first heading, ingested with
``ingest(folder)`` exactly as a user would (the heading goes to the API as the item's
``title``, the default; a ``.txt`` file's name does not, as SimpleDirectoryReader keeps
``file_name`` out of the embedded text), against the emulator at 150 ms per request, no
quota; then the same files with titles switched off (``title_metadata_keys=[]``).
Interleaved repetitions, each into a fresh local store; every run in this process (the
emulator in a thread), inputs written before the timed section.

Reports, per setting: wall time (median), requests, store writes; and the ratio titled /
untitled (target: within 1.3x) and requests vs ceil(n / 100).

    bench/.venv-bench/bin/python bench/small_files.py [--files 1000] [--reps 3]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from benchlib import LoadMonitor, fresh_dir, median, summary, synthetic_chunk, write_result


def write_folder(root: Path, files: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / f"note-{i:05d}.md").write_text(f"# Note {i}\n\n{synthetic_chunk(i, 40)}\n")
    return root


def one_run(emu: Any, folder: Path, *, titled: bool, tag: str) -> dict[str, Any]:
    from llama_index_gemini_embed import ChromaStore, GeminiEmbedding, ingest

    settings: dict[str, Any] = {"output_dimensionality": 768}
    if not titled:
        settings["title_metadata_keys"] = []
    embed = GeminiEmbedding(api_key=emu.api_key, base_url=emu.base_url, **settings)
    emu.reset_counters()
    with ChromaStore("small-files", path=str(fresh_dir(f"small-files-{tag}"))) as store:
        started = time.perf_counter()
        report = ingest(folder, embed_model=embed, store=store, show_progress=False)
        wall = time.perf_counter() - started
        stored = store.count()
    titles = sum(
        1
        for record in emu.requests
        if isinstance(record.body, dict)
        for item in record.body.get("requests", [])
        if item.get("title")
    )
    out = {
        "wall": wall,
        "requests": emu.counters.embed_requests,
        "store_writes": report.store_writes,
        "stored": stored,
        "items_with_a_title_on_the_wire": titles,
        "ok": report.ok,
    }
    print(f"  {tag:<14} {out}", flush=True)
    if titled and titles != stored:
        raise SystemExit(f"expected a title on every item, saw {titles} of {stored}")
    return out


def main() -> None:
    from llama_index_gemini_embed.emulator import Emulator

    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--latency", type=float, default=0.15)
    args = ap.parse_args()
    folder = write_folder(fresh_dir("small-files-corpus"), args.files)
    runs: dict[str, list[dict[str, Any]]] = {"titled": [], "untitled": []}
    with LoadMonitor() as load, Emulator(latency=args.latency) as emu:
        for rep in range(args.reps):
            for name in runs:
                runs[name].append(
                    one_run(emu, folder, titled=name == "titled", tag=f"{name}-{rep}")
                )
    wall = {name: median([r["wall"] for r in rs]) for name, rs in runs.items()}
    requests = {name: median([r["requests"] for r in rs]) for name, rs in runs.items()}
    writes = {name: median([r["store_writes"] for r in rs]) for name, rs in runs.items()}
    result = {
        "files": args.files,
        "latency_s": args.latency,
        "runs": runs,
        "median_wall_s": wall,
        "median_requests": requests,
        "median_store_writes": writes,
        "ideal_requests": math.ceil(args.files / 100),
        "titled_over_untitled_wall": wall["titled"] / wall["untitled"],
        "load": load.describe(),
    }
    write_result("small_files", result)
    summary(
        "small_files",
        f"{args.files} small files at {args.latency * 1000:.0f} ms: titled "
        f"{wall['titled']:.2f}s / {requests['titled']:.0f} requests / "
        f"{writes['titled']:.0f} writes vs untitled {wall['untitled']:.2f}s / "
        f"{requests['untitled']:.0f} / {writes['untitled']:.0f}: "
        f"{result['titled_over_untitled_wall']:.2f}x (target <= 1.3x); "
        f"ceil(n/100) = {result['ideal_requests']}",
    )


if __name__ == "__main__":
    main()
