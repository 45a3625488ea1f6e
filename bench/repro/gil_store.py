"""Repro: ChromaStore.async_add on a local store blocks the event loop for the whole upsert.

chromadb's Rust bindings keep the GIL during an upsert, so running it in a worker thread
(asyncio.to_thread) gives no concurrency: a 5 ms ticker coroutine barely runs.

    bench/.venv-bench/bin/python bench/repro/gil_store.py
"""

import asyncio
import tempfile
import time

import numpy as np
from llama_index.core.schema import TextNode

from llama_index_gemini_embed import ChromaStore

store = ChromaStore("gil-repro", path=tempfile.mkdtemp())
rng = np.random.default_rng(0)
batches = [
    [
        TextNode(id_=f"n{j}", text="x" * 200, embedding=rng.standard_normal(768).tolist())
        for j in range(i, i + 100)
    ]
    for i in range(0, 10_000, 100)
]


async def main() -> None:
    lags: list[float] = []
    stop = False

    async def ticker() -> None:
        while not stop:
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - t - 0.005)

    task = asyncio.create_task(ticker())
    t0 = time.perf_counter()
    for batch in batches:
        await store.async_add(batch)
    wall = time.perf_counter() - t0
    stop = True
    await task
    lags.sort()
    print(
        f"100 x async_add(100 nodes, 768-d): {wall:.1f}s; a 5 ms ticker ran {len(lags)} times "
        f"(~{wall / 0.005:.0f} if the loop were free); loop lag p50 "
        f"{lags[len(lags) // 2] * 1e3:.0f} ms, max {lags[-1] * 1e3:.0f} ms"
    )


asyncio.run(main())
store.close()
