"""``gemini-embed query TEXT``: the passages closest to a question, optionally reranked.

gemini-embed query "how do I export to PDF?" --collection docs --filter category=reference
gemini-embed query "pricing" --rerank --top-k 3 --json
gemini-embed query --image bike.png --collection media   # search by image (gemini-embedding-2)
"""

from __future__ import annotations

import argparse
import io
import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import (
    EXIT_OK,
    Commands,
    UsageError,
    add_command,
    add_model_options,
    add_store_options,
    embed_model,
    open_store,
    require_key,
    snippet,
)

if TYPE_CHECKING:
    from llama_index.core.schema import NodeWithScore, QueryBundle

    from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
    from llama_index_gemini_embed._store.store import ChromaStore


def register(commands: Commands) -> None:
    """Add ``query`` and its options."""
    query = add_command(
        commands,
        "query",
        run=run,
        help="retrieve the passages closest to a question (or an image)",
        description="Embed a question (or, with --image, a picture) and print the closest "
        "chunks with scores and sources.",
    )
    query.add_argument("text", nargs="?", help="the question or search text")
    query.add_argument(
        "--image",
        metavar="PATH",
        help="search with this PNG/JPEG image instead of text: similar images and the "
        "passages, pages and clips about it (gemini-embedding-2 collections)",
    )
    add_store_options(query)
    add_model_options(query, quota=False)
    query.add_argument(
        "--top-k", type=int, default=5, metavar="K", help="results (default: %(default)s)"
    )
    query.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metadata filter, repeatable (AND); KEY:=JSON for a typed value, e.g. year:=2024",
    )
    query.add_argument(
        "--rerank", action="store_true", help="rerank the candidates with a Gemini judge"
    )
    query.add_argument(
        "--modality",
        choices=MODALITIES,
        help="only hits of this kind (media need gemini-embedding-2 at ingest)",
    )
    query.add_argument("--json", action="store_true", help="print results as JSON")


def run(args: argparse.Namespace) -> int:
    image = _image_bytes(args)
    if image is None and not (args.text or "").strip():
        raise UsageError(
            'empty query: give the text to search for, e.g. gemini-embed query "how do I export?"'
            " (or --image PATH to search by image)"
        )
    if args.top_k < 1:
        raise UsageError(f"--top-k must be at least 1, got {args.top_k}")
    filters = parse_filters(args.filter, args.modality)
    key = require_key(args)
    store = open_store(args, must_exist=True)
    try:
        embed = embed_model(args, store, key)
        store.check_fingerprint(embed.fingerprint)  # read-only: checks, records nothing
        query: str | QueryBundle = args.text
        if image is not None:
            query = _image_query(embed, image, args.image)
        results, reranked = retrieve(
            store,
            embed,
            query,
            args.top_k,
            filters,
            rerank=args.rerank,
            key=key,
            base_url=args.base_url,
        )
    finally:
        store.close()
    if args.json:
        print(json.dumps([_result_dict(r, reranked) for r in results], indent=2))
        return EXIT_OK
    if not results:
        print("no results" + (" (check --filter)" if filters else ""))
        return EXIT_OK
    for rank, result in enumerate(results, 1):
        print(format_result(rank, result, reranked))
    return EXIT_OK


def _image_bytes(args: argparse.Namespace) -> bytes | None:
    """The ``--image`` file's bytes (None without ``--image``); one-line usage errors."""
    if args.image is None:
        return None
    if args.text is not None:
        raise UsageError("give either TEXT or --image PATH, not both")
    if args.rerank:
        raise UsageError("--rerank judges against a text question: leave it out with --image")
    try:
        return Path(args.image).read_bytes()
    except OSError as error:
        raise UsageError(
            f"--image {args.image}: cannot read it ({error.strerror}); give a PNG or JPEG file"
        ) from None


def _image_query(embed: GeminiEmbedding, image: bytes, path: str) -> QueryBundle:
    from llama_index_gemini_embed._models import model_spec

    if not model_spec(embed.model_name).uses_task_prefixes:
        raise UsageError(
            f"--image: {embed.model_name} embeds text only: use --model gemini-embedding-2 "
            "(on a collection ingested with it) to search by image"
        )
    named = io.BytesIO(image)
    named.name = path  # messages name the file
    bundle = embed.image_query(named)
    bundle.image_path = path
    return bundle


@dataclass
class Result:
    node: NodeWithScore
    similarity: float | None


def retrieve(
    store: ChromaStore,
    embed: GeminiEmbedding,
    query: str | QueryBundle,
    top_k: int,
    filters: Any,
    *,
    rerank: bool,
    key: str | None,
    base_url: str | None,
) -> tuple[list[Result], bool]:
    from llama_index.core import VectorStoreIndex
    from llama_index.core.retrievers import VectorIndexRetriever

    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    candidates = max(top_k * 4, 20) if rerank else top_k
    # Not index.as_retriever(): it restricts the query to the ids in the index struct,
    # which is empty for an index opened from a store (all nodes live in the store).
    retriever = VectorIndexRetriever(index, similarity_top_k=candidates, filters=filters)
    nodes = retriever.retrieve(query)
    similarity = {n.node.node_id: n.score for n in nodes}
    if not rerank or not nodes:
        return [Result(n, n.score) for n in nodes[:top_k]], False
    reranker = _make_reranker(top_k, key, base_url)
    text = query if isinstance(query, str) else query.query_str
    ranked = reranker.postprocess_nodes(nodes, query_str=text)
    return [Result(n, similarity.get(n.node.node_id)) for n in ranked[:top_k]], True


def _make_reranker(top_n: int, key: str | None, base_url: str | None) -> Any:
    try:
        from llama_index_gemini_embed._rerank.postprocessor import GeminiReranker
    except ImportError as exc:
        raise UsageError(
            f"--rerank is not available in this installation ({exc}); run without --rerank"
        ) from exc
    settings: dict[str, Any] = {"top_n": top_n}
    if key is not None:
        settings["api_key"] = key
    if base_url:
        settings["base_url"] = base_url
    return GeminiReranker(**settings)


MODALITIES = ("text", "image", "pdf", "audio", "video")
_MEDIA = frozenset(MODALITIES) - {"text"}


def _source_of(result: Result) -> tuple[str, str | None]:
    node = result.node.node
    metadata = node.metadata
    source = str(metadata.get("source") or node.ref_doc_id or node.node_id)
    title = metadata.get("title")
    return source, str(title) if title else None


def _media_of(result: Result) -> str | None:
    """``image /photos/bike.png``, ``pdf /docs/a.pdf pages 7-12``, ``audio /a.wav 30-60 s``
    for a media hit (None for text): what it is, its path and the part of the file."""
    metadata = result.node.node.metadata
    modality = metadata.get("modality")
    if modality not in _MEDIA:
        return None
    where = f"{modality} {metadata.get('file_path') or metadata.get('file_name') or '?'}"
    start, end = metadata.get("page_start"), metadata.get("page_end")
    if start is not None:
        where += f" page {start}" if end in (None, start) else f" pages {start}-{end}"
    start, end = metadata.get("time_start_s"), metadata.get("time_end_s")
    if start is not None and end is not None:
        where += f" {float(start):g}-{float(end):g} s"
    return where


def format_result(rank: int, result: Result, reranked: bool) -> str:
    from llama_index.core.schema import MetadataMode

    source, title = _source_of(result)
    score = result.node.score if result.node.score is not None else float("nan")
    if reranked:
        sim = result.similarity
        score_text = f"rerank {score:.2f}" + (f" (similarity {sim:.3f})" if sim is not None else "")
    else:
        score_text = f"score {score:.3f}"
    media = _media_of(result)
    header = f"{rank}. [{score_text}] {media or source}" + (f" — {title}" if title else "")
    body = snippet(result.node.node.get_content(metadata_mode=MetadataMode.NONE))
    if not body:
        return header
    return header + "\n" + textwrap.indent(textwrap.fill(body, width=96), "   ")


def _result_dict(result: Result, reranked: bool) -> dict[str, Any]:
    from llama_index.core.schema import MetadataMode

    source, title = _source_of(result)
    node = result.node.node
    return {
        "id": node.node_id,
        "score": result.node.score,
        "similarity": result.similarity,
        "reranked": reranked,
        "source": source,
        "title": title,
        "modality": node.metadata.get("modality", "text"),
        "path": node.metadata.get("file_path"),
        "text": node.get_content(metadata_mode=MetadataMode.NONE),
        "metadata": {k: v for k, v in node.metadata.items() if not k.startswith("lige_")},
    }


def parse_filters(items: Sequence[str], modality: str | None = None) -> Any:
    """``--filter`` items (AND) and ``--modality``, as LlamaIndex MetadataFilters."""
    from llama_index.core.vector_stores.types import (
        ExactMatchFilter,
        FilterOperator,
        MetadataFilter,
        MetadataFilters,
    )

    filters: list[MetadataFilter] = []
    if modality == "text":  # text chunks carry no modality key: "not a medium"
        filters.append(
            MetadataFilter(key="modality", value=sorted(_MEDIA), operator=FilterOperator.NIN)
        )
    elif modality is not None:
        filters.append(ExactMatchFilter(key="modality", value=modality))
    for item in items:
        if ":=" in item:
            key, raw = item.split(":=", 1)
            try:
                value: Any = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise UsageError(
                    f"--filter {item!r}: the value after := must be JSON ({exc})"
                ) from None
        elif "=" in item:
            key, value = item.split("=", 1)
        else:
            raise UsageError(f"--filter {item!r}: use KEY=VALUE (or KEY:=JSON)")
        if not key.strip():
            raise UsageError(f"--filter {item!r}: the key is empty")
        filters.append(ExactMatchFilter(key=key.strip(), value=value))
    return MetadataFilters(filters=list(filters)) if filters else None
