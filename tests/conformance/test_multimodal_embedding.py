"""GeminiEmbedding keeps LlamaIndex's MultiModalEmbedding contract (gemini-embedding-2).

The emulator places an image where its embedded description would go, so which picture a
sentence is closest to is known in advance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from llama_index.core.embeddings import MultiModalEmbedding
from llama_index.core.schema import ImageNode

from llama_index_gemini_embed import GeminiEmbedding, GeminiEmbedError
from llama_index_gemini_embed.emulator import Emulator
from llama_index_gemini_embed.emulator.samples import png_with_description


@pytest.fixture
def pictures(tmp_path: Path) -> list[Path]:
    paths = []
    for name, text in [("bike", "a red bicycle at night"), ("cake", "a chocolate cake")]:
        path = tmp_path / f"{name}.png"
        path.write_bytes(png_with_description(text))
        paths.append(path)
    return paths


def cos(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_is_a_multimodal_embedding(embed2: GeminiEmbedding) -> None:
    assert isinstance(embed2, MultiModalEmbedding)


def test_image_batch_keeps_order_and_matches_single_calls(
    embed2: GeminiEmbedding, pictures: list[Path]
) -> None:
    batch = embed2.get_image_embedding_batch([str(p) for p in pictures])
    singles = [embed2.get_image_embedding(str(p)) for p in pictures]
    assert len(batch) == 2 and all(len(v) == 256 for v in batch)
    for got, want in zip(batch, singles, strict=True):
        assert np.allclose(got, want, atol=1e-6)
    assert cos(batch[0], batch[1]) < 0.99


async def test_async_image_paths_equal_the_sync_ones(
    embed2: GeminiEmbedding, pictures: list[Path]
) -> None:
    got = await embed2.aget_image_embedding_batch([str(p) for p in pictures])
    want = embed2.get_image_embedding_batch([str(p) for p in pictures])
    assert np.allclose(got, want, atol=1e-6)
    assert np.allclose(await embed2.aget_image_embedding(str(pictures[0])), want[0], atol=1e-6)


def test_image_node_gets_the_image_vector(embed2: GeminiEmbedding, pictures: list[Path]) -> None:
    [node] = embed2([ImageNode(image_path=str(pictures[0]), image_mimetype="image/png")])
    assert node.embedding is not None
    assert np.allclose(node.embedding, embed2.get_image_embedding(str(pictures[0])), atol=1e-6)


def test_text_query_meets_the_matching_picture(
    embed2: GeminiEmbedding, pictures: list[Path]
) -> None:
    query = embed2.get_query_embedding("a red bicycle at night")
    bike, cake = embed2.get_image_embedding_batch([str(p) for p in pictures])
    assert cos(query, bike) > cos(query, cake) + 0.2


def test_text_only_model_refuses_images_naming_the_alternative(
    emulator: Emulator, pictures: list[Path]
) -> None:
    embed1 = GeminiEmbedding(api_key=emulator.api_key, base_url=emulator.base_url)
    with pytest.raises(GeminiEmbedError, match="gemini-embedding-2") as caught:
        embed1.get_image_embedding(str(pictures[0]))
    assert "\n" not in str(caught.value)
    assert emulator.counters.embed_requests == 0, "refused before anything was sent"
