"""Issue 15: two calls on ONE GeminiEmbedding share large media safely.

Media above ``max_inline_media_bytes`` travel as Files API uploads. Two concurrent calls
that carry the same bytes share one upload (keyed by content hash, reference-counted per
call): a call that ends first must not delete a file the other still needs, and the last
call to finish deletes it. Ordering is forced with events, never with sleeps: the only
sleep is the upload poll of a video the emulator keeps PROCESSING, and the test decides
when that poll returns.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from llama_index.core.schema import MediaResource, Node

from llama_index_gemini_embed import GeminiEmbedding
from llama_index_gemini_embed.emulator import Emulator, embed_media
from llama_index_gemini_embed.emulator.samples import mp4_with_title, png_with_description
from tests.embedding.support import embed_records, unit

MODEL = "gemini-embedding-2"
PNG = png_with_description("a red bicycle at night", size=64)  # 200+ bytes
MP4 = mp4_with_title("a cat jumps over a fence", 2.0)


def file_calls(emu: Emulator) -> list[tuple[str, str]]:
    """("upload" | "delete" | "embed", file name or path) in the order the emulator saw them."""
    out: list[tuple[str, str]] = []
    for r in emu.requests:
        if r.path.startswith("/upload/") and isinstance(r.body, dict):  # resumable start
            out.append(("upload", str(r.body["file"]["mime_type"])))
        elif r.method == "DELETE" and "/files/" in r.path:
            out.append(("delete", r.path.rsplit("/", 1)[-1]))
        elif r.path.endswith(":batchEmbedContents"):
            out.append(("embed", str(r.status)))
    return out


def test_concurrent_calls_share_an_upload_and_only_the_last_user_deletes_it(
    emulator: Emulator,
) -> None:
    # Videos stay PROCESSING for one files.get: the second call waits there (on our gate)
    # while holding the shared PNG upload; the first call finishes meanwhile.
    emulator.set_upload_behaviour(processing_polls=1)
    polling = asyncio.Event()
    gate = asyncio.Event()

    async def sleep(seconds: float) -> None:
        polling.set()
        await gate.wait()

    embed = GeminiEmbedding(
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        model_name=MODEL,
        output_dimensionality=256,
        max_inline_media_bytes=100,  # both samples go through the Files API
        sleep=sleep,
    )
    both = Node(
        image_resource=MediaResource(data=PNG, mimetype="image/png"),
        video_resource=MediaResource(data=MP4, mimetype="video/mp4"),
    )
    image = Node(image_resource=MediaResource(data=PNG, mimetype="image/png"))

    async def scenario() -> tuple[Any, Any]:
        second = asyncio.ensure_future(embed.acall([both]))  # PNG uploaded, then the video
        await polling.wait()  # …whose first poll now waits: the PNG upload is in use
        first = await embed.acall([image])  # reuses the PNG upload, ends, cleans up
        gate.set()
        return first, await second

    first, second = asyncio.run(scenario())

    assert first[0].embedding == pytest.approx(
        unit(embed_media([("image/png", PNG)], model=MODEL, dimension=256)), abs=1e-6
    )
    assert second[0].embedding == pytest.approx(
        unit(embed_media([("image/png", PNG), ("video/mp4", MP4)], model=MODEL, dimension=256)),
        abs=1e-6,
    )
    assert [r.status for r in embed_records(emulator)] == [200, 200], "no file vanished"
    calls = file_calls(emulator)
    assert [kind for kind, _ in calls].count("upload") == 2, "the PNG is uploaded once"
    deletes = [name for kind, name in calls if kind == "delete"]
    assert len(deletes) == 2 and len(set(deletes)) == 2, "each upload deleted exactly once"
    last_embed = max(i for i, (kind, _) in enumerate(calls) if kind == "embed")
    first_delete = min(i for i, (kind, _) in enumerate(calls) if kind == "delete")
    assert first_delete > last_embed, "nothing is deleted while a call still uses it"
    assert embed.engine.uploads.count == 2


def test_an_upload_is_not_kept_after_every_call_that_used_it_has_ended(
    emulator: Emulator,
) -> None:
    embed = GeminiEmbedding(
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        model_name=MODEL,
        output_dimensionality=256,
        max_inline_media_bytes=100,
    )
    image = Node(image_resource=MediaResource(data=PNG, mimetype="image/png"))
    embed([image])
    embed([image.model_copy()])
    kinds = [kind for kind, _ in file_calls(emulator)]
    assert kinds == ["upload", "embed", "delete", "upload", "embed", "delete"], (
        "sequential calls do not share: each deletes its upload when it ends"
    )
