"""Draw docs/img/*.png from bench/results/*.json (whichever results exist).

bench/.venv-bench/bin/python bench/plots.py
"""

from __future__ import annotations

import json
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from benchlib import RESULTS_DIR, ROOT

IMG = ROOT / "docs" / "img"
OURS, ANCHOR, RAW, LIMIT = "#1f77b4", "#d62728", "#7f7f7f", "#2ca02c"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def save(fig: Any, name: str) -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(IMG / name, dpi=110)
    plt.close(fig)
    print(f"wrote docs/img/{name}")


def load_note(r: dict[str, Any]) -> str:
    ld = r.get("load", {})
    return f"load avg median {ld.get('load1_median', '?')} on {ld.get('cpus', '?')} shared cores"


def quality(r: dict[str, Any]) -> None:
    rows = r["rows"]
    names = {
        "minilm_direct": "MiniLM direct",
        "minilm_stack": "MiniLM via\nfull stack",
        "minilm_stack_title": "MiniLM via stack\n(title field)",
        "bm25": "BM25\n(stem)",
        "bm25_nostem": "BM25\n(no stem)",
        "emulator_lexical_stack": "emulator\nlexical",
    }
    keys = [k for k in names if k in rows]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    colors = [OURS if "stack" in k and "lexical" not in k else RAW for k in keys]
    bars = ax.bar([names[k] for k in keys], [rows[k]["ndcg@10"] for k in keys], color=colors)
    ax.bar_label(bars, fmt="%.4f", fontsize=8)
    ax.set_ylabel("nDCG@10")
    ax.set_title("DBpedia-Entity 5k (40 queries): the full stack is lossless")
    ax.set_ylim(0, 0.6)
    save(fig, "quality_ndcg.png")


def query_path(r: dict[str, Any]) -> None:
    if "retrieval" in r:
        ret = r["retrieval"]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, k in zip(axes, ("10", "100"), strict=True):
            res = ret["by_top_k"][k]
            methods = [m for m in res if m != "ratios"]
            colors = [
                RAW if m.startswith("raw") else OURS if "ChromaStore" in m else ANCHOR
                for m in methods
            ]
            x = range(len(methods))
            p50 = [res[m]["p50_ms"] for m in methods]
            p99 = [res[m]["p99_ms"] for m in methods]
            ax.bar([i - 0.2 for i in x], p50, 0.4, color=colors, label="p50")
            ax.bar([i + 0.2 for i in x], p99, 0.4, color=colors, alpha=0.45, label="p99")
            ax.set_xticks(list(x))
            ax.set_xticklabels(
                [m.replace(" (", "\n(").replace(".query", "\n.query") for m in methods], fontsize=7
            )
            ax.set_ylabel("ms")
            ax.set_title(
                f"top_k={k} at {ret['n']:,} x {ret['dim']} (p50 solid, p99 light)", fontsize=9
            )
        fig.suptitle(f"Retrieval latency ({load_note(r)})", fontsize=9)
        save(fig, "query_latency.png")
    if "dimensions" in r:
        d = r["dimensions"]
        dims = sorted(d["by_dim"], key=int)
        fig, ax1 = plt.subplots(figsize=(6, 3.6))
        ax1.bar(
            [str(x) for x in dims],
            [d["by_dim"][x]["disk_mib"] for x in dims],
            color=OURS,
            alpha=0.7,
        )
        ax1.set_xlabel("output_dimensionality")
        ax1.set_ylabel(f"disk MiB ({d['n']:,} vectors)")
        ax2 = ax1.twinx()
        ax2.plot(
            [str(x) for x in dims],
            [d["by_dim"][x]["p50_ms"] for x in dims],
            "o-",
            color=ANCHOR,
            label="p50",
        )
        ax2.plot(
            [str(x) for x in dims],
            [d["by_dim"][x]["p99_ms"] for x in dims],
            "s--",
            color=ANCHOR,
            alpha=0.5,
            label="p99",
        )
        ax2.set_ylabel("ChromaStore.query top-10, ms")
        ax2.legend(loc="upper left", fontsize=8)
        ax1.set_title("Matryoshka dimension: disk (bars) and query latency (lines)", fontsize=9)
        save(fig, "dimensions.png")


def ingest(r: dict[str, Any]) -> None:
    t = r["tier1"]
    n = t["n"]
    runs = t["runs"]

    def med(rs: list[dict[str, Any]]) -> float:
        ok = sorted(x["wall"] for x in rs if x["ok"])
        return n / ok[len(ok) // 2] if ok else 0.0

    labels = [
        "physical limit",
        "ours (local\nChromaStore)",
        "ours (chroma\nrun server)",
        "anchor best\n+ 5k slices",
        "anchor best\n(as is)",
        "anchor\ndefaults",
    ]
    values = [
        t["limit_items_per_s"],
        med(runs["ours"]),
        med(runs.get("ours_server", [])),
        med(runs["anchor_best_sliced"]),
        med(runs["anchor_best"]),
        med(runs["anchor_defaults"]),
    ]
    colors = [LIMIT, OURS, OURS, ANCHOR, ANCHOR, ANCHOR]
    fig, ax = plt.subplots(figsize=(9, 3.8))
    bars = ax.bar(labels, values, color=colors)
    ax.bar_label(
        bars, labels=[f"{v:.0f}" if v else "failed\n(0 stored)" for v in values], fontsize=8
    )
    ax.set_ylabel("chunks stored per second")
    ax.set_title(
        f"{n:,} chunks, Tier-1 quota compressed 10x, 150-200 ms per request ({load_note(r)})",
        fontsize=9,
    )
    ax.tick_params(axis="x", labelsize=8)
    save(fig, "ingest_throughput.png")

    fig, ax = plt.subplots(figsize=(9, 3.8))
    lim = t["limit"]["limit"]
    ax.plot([0, lim], [0, n], color=LIMIT, lw=2, label=f"limit ({n / lim:.0f} items/s)")
    for key, color, name in (
        ("ours", OURS, "ours"),
        ("anchor_best_sliced", ANCHOR, "anchor best + slices"),
        ("anchor_best", "#ff9896", "anchor best (as is)"),
        ("anchor_defaults", "#8c564b", "anchor defaults"),
    ):
        rs = runs.get(key) or []
        if not rs:
            continue
        tl = rs[0].get("timeline") or []
        if tl:
            # t = 0 when the worker's timed section starts (process start-up and imports are
            # not part of the run); older results: the last sample before the first item.
            start = rs[0].get("timed_start_s")
            if start is None:
                start = max((p[0] for p in tl if p[1] == 0), default=0.0)
            pts = [(p[0] - start, p[1]) for p in tl if p[0] >= start]
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                color=color,
                label=f"{name}: accepted by the API",
            )
    ax.set_xlabel("seconds since the ingest call (emulator count sampled every 0.25 s)")
    ax.set_ylabel("items embedded (emulator count)")
    ax.legend(fontsize=8)
    ax.set_title("Items the API accepted over time (first repetition)", fontsize=9)
    save(fig, "ingest_timeline.png")


def memory_cpu(r: dict[str, Any]) -> None:
    if "memory" in r:
        m = r["memory"]
        fig, ax = plt.subplots(figsize=(7.5, 3.6))
        small, large = m["small"], m["large"]
        clients = [
            ("ours", "ours\nlocal", OURS),
            ("ours-server", "ours\nserver", "#6baed6"),
            ("raw-chroma", "Chroma\nalone", RAW),
            ("anchor", "anchor", ANCHOR),
        ]
        ticks, labels = [], []
        for i, (impl, name, color) in enumerate(
            c for c in clients if f"{c[0]}-{small}" in m["runs"]
        ):
            vals = [m["runs"][f"{impl}-{n}"]["peak_rss_mib"] for n in (small, large)]
            xs = [i * 3, i * 3 + 1]
            bars = ax.bar(xs, vals, color=color, alpha=0.85)
            ax.bar_label(bars, fmt="%.0f", fontsize=8)
            ticks += xs
            labels += [f"{name}\n{small // 1000}k", f"{name}\n{large // 1000}k"]
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylabel("peak RSS, MiB")
        ax.set_title(f"Peak RSS ({m['dim']}-d, {m['words']}-word chunks)", fontsize=9)
        save(fig, "memory_rss.png")
    if "cpu" in r:
        c = r["cpu"]["median_cpu_ms_per_chunk"]
        fig, ax = plt.subplots(figsize=(6, 3.6))
        chroma_ours = c.get("raw-chroma-our-records", c["raw-chroma"])
        parts = [
            ("Chroma upsert, bare records (alone)", c["raw-chroma"], RAW),
            ("Chroma: our records' extra metadata", chroma_ours - c["raw-chroma"], "#c7c7c7"),
            ("google-genai SDK calls (alone)", c["raw-sdk"], "#bcbd22"),
            ("LlamaIndex SentenceSplitter (alone)", c.get("raw-split", 0.0), "#9467bd"),
        ]
        parts.append(("our code", max(0.0, c["ours"] - sum(v for _, v, _ in parts)), OURS))
        bottom = 0.0
        for label, value, color in parts:
            ax.bar(["ours"], [value], bottom=[bottom], color=color, label=label)
            bottom += value
        ax.bar(["anchor"], [c["anchor"]], color=ANCHOR, label="anchor total")
        ax.set_ylim(0, max(bottom, c["anchor"]) * 1.55)  # room for the legend
        ax.set_ylabel("client CPU ms per chunk")
        ax.legend(fontsize=7)
        ax.set_title(
            f"CPU per chunk, 768-d, {r['cpu']['n']:,} chunks, zero API latency", fontsize=9
        )
        save(fig, "cpu_per_chunk.png")


def main() -> None:
    for name, fn in (
        ("quality", quality),
        ("query_path", query_path),
        ("ingest_throughput", ingest),
        ("memory_cpu", memory_cpu),
    ):
        r = load(name)
        if r is not None:
            fn(r)


if __name__ == "__main__":
    main()
