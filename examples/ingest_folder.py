"""Ingest a folder into Chroma asynchronously and print the report; run it twice for free.

    python examples/ingest_folder.py                      # the bundled sample corpus
    python examples/ingest_folder.py ./docs --path ./chroma

Chunks are written to Chroma as each embedding request returns, so an interrupted run keeps
its progress; running again skips every unchanged chunk (zero API calls) and resumes.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile

from _backend import gemini_backend

from llama_index_gemini_embed import ChromaStore, GeminiEmbedding, aingest, sample_corpus_dir


async def main(folder: str, path: str) -> None:
    with gemini_backend() as backend:
        embed = GeminiEmbedding(output_dimensionality=768, **backend.kwargs)
        with ChromaStore("example-docs", path=path, embed_model=embed) as store:
            report = await aingest(folder, embed_model=embed, store=store, show_progress=False)
            print("first run:")
            print(report.summary())

            again = await aingest(folder, embed_model=embed, store=store, show_progress=False)
            print("second run (nothing changed):")
            print(again.summary())
            assert again.embedded == 0 and again.requests == 0

            estimate = await aingest(
                folder, embed_model=embed, store=store, dry_run=True, show_progress=False
            )
            print("dry run:")
            print(estimate.summary())
            print(f"{await store.acount()} chunks stored in {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(sample_corpus_dir()))
    parser.add_argument("--path", help="Chroma directory (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        asyncio.run(main(args.folder, args.path or scratch))
