"""GeminiReranker behaviours that failed before this round's fixes (issue 11 items 7, 10)."""

from __future__ import annotations

import copy

from llama_index_gemini_embed import GeminiReranker
from llama_index_gemini_embed.emulator import Emulator
from tests.conformance.test_postprocessor import QUERY, candidates


def test_deepcopy_gives_a_working_copy(reranker: GeminiReranker) -> None:
    twin = copy.deepcopy(reranker)
    out = twin.postprocess_nodes(candidates(), query_str=QUERY)
    assert {n.node.node_id for n in out[:2]} == {"n1", "n2"}


def test_top_n_none_keeps_every_node_reordered(emulator: Emulator) -> None:
    """Issue 11 item 7: like LlamaIndex's rerankers, top_n=None means no cut."""
    reranker = GeminiReranker(api_key=emulator.api_key, base_url=emulator.base_url, top_n=None)
    out = reranker.postprocess_nodes(candidates(), query_str=QUERY)
    assert sorted(n.node.node_id for n in out) == [f"n{i}" for i in range(5)]
    assert {n.node.node_id for n in out[:2]} == {"n1", "n2"}
