"""Issue 15: media uploaded through the Files API are used only once they are ACTIVE.

The real Files API answers an upload (videos above all) in state PROCESSING, and an
embedding request that names it before it is ACTIVE fails 400 FAILED_PRECONDITION
(docs/gemini-api.md §5). The emulator reproduces that with
``set_upload_behaviour(processing_polls=N)``; sleeps and the clock are injected, so nothing
really waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from google.genai import types
from llama_index.core.schema import MediaResource, Node

from llama_index_gemini_embed import GeminiEmbedding, MediaError
from llama_index_gemini_embed._embedding.engine import BatchOutcome
from llama_index_gemini_embed._types import TextSpec
from llama_index_gemini_embed.emulator import Emulator, embed_media
from llama_index_gemini_embed.emulator.samples import mp4_with_title
from tests.embedding.support import unit
from tests.fakes import FakeTime

MODEL = "gemini-embedding-2"


def make(emu: Emulator, time: FakeTime, **kwargs: Any) -> GeminiEmbedding:
    sleep: Callable[[float], Awaitable[None]] = time.sleep
    return GeminiEmbedding(
        api_key=emu.api_key,
        base_url=emu.base_url,
        model_name=MODEL,
        output_dimensionality=256,
        max_inline_media_bytes=100,  # every sample medium goes through the Files API
        clock=time.clock,
        sleep=sleep,
        **kwargs,
    )


def video_node(title: str) -> Node:
    return Node(video_resource=MediaResource(data=mp4_with_title(title, 2.0), mimetype="video/mp4"))


def file_requests(emu: Emulator, method: str) -> list[Any]:
    return [
        r
        for r in emu.requests
        if r.method == method and "/files/" in r.path and not r.path.startswith("/upload/")
    ]


async def outcomes(embed: GeminiEmbedding, specs: list[TextSpec]) -> list[BatchOutcome]:
    return [outcome async for outcome in embed.engine.stream(specs)]


def test_an_upload_still_processing_is_polled_until_active_then_used_and_deleted(
    emulator: Emulator,
) -> None:
    emulator.set_upload_behaviour(processing_polls=3)
    time = FakeTime()
    embed = make(emulator, time)
    node = video_node("a cat jumps over a fence")
    embed([node])
    gets = file_requests(emulator, "GET")
    assert len(gets) == 4, "three GETs see PROCESSING, the fourth ACTIVE"
    assert time.sleeps == [1.0, 2.0, 4.0, 8.0]  # backoff between polls, injected
    embeds = [r for r in emulator.requests if r.path.endswith(":batchEmbedContents")]
    assert [r.status for r in embeds] == [200], "never sent while PROCESSING (no 400)"
    assert emulator.requests.index(embeds[0]) > emulator.requests.index(gets[-1])
    assert len(file_requests(emulator, "DELETE")) == 1
    assert node.embedding == pytest.approx(
        unit(
            embed_media(
                [("video/mp4", mp4_with_title("a cat jumps over a fence", 2.0))],
                model=MODEL,
                dimension=256,
            )
        ),
        abs=1e-6,
    )


def test_an_upload_never_active_fails_its_item_alone_within_the_timeout_and_is_deleted(
    emulator: Emulator,
) -> None:
    emulator.set_upload_behaviour(processing_polls=1_000_000)
    time = FakeTime()
    embed = make(emulator, time, media_upload_timeout=30)
    video = embed.node_input(video_node("a slow upload"))
    text = TextSpec("a plain sentence", "RETRIEVAL_DOCUMENT")
    results = asyncio.run(outcomes(embed, [video, text]))
    by_index = {outcome.indices: outcome for outcome in results}
    failed = by_index[(0,)]
    assert isinstance(failed.error, MediaError)
    message = str(failed.error)
    assert "\n" not in message
    assert message.startswith("Item #0: the video/mp4 upload files/")
    assert message.endswith(
        "was still PROCESSING after 30 s: pass a larger media_upload_timeout= (seconds), "
        "or embed a shorter clip"
    )
    assert by_index[(1,)].vectors is not None, "its neighbour is embedded"
    assert sum(time.sleeps) == pytest.approx(30.0), "bounded by media_upload_timeout"
    assert len(file_requests(emulator, "DELETE")) == 1, "deleted on the failure path too"
    embeds = [r for r in emulator.requests if r.path.endswith(":batchEmbedContents")]
    assert [r.status for r in embeds] == [200], "the unusable file is never sent"
    assert embed.usage.failed_items == 1


def test_a_failed_upload_is_refused_with_the_files_reason(emulator: Emulator) -> None:
    embed = make(emulator, FakeTime())
    failed = types.File(
        name="files/abc",
        state=types.FileState.FAILED,
        error=types.FileStatus(message="Unsupported video codec."),
    )
    client = embed.client
    with pytest.raises(MediaError) as caught:
        asyncio.run(
            embed.engine.uploads.wait_until_active(client, failed, "video/mp4 upload files/abc")
        )
    assert str(caught.value) == (
        "the Files API could not process the video/mp4 upload files/abc (state FAILED: "
        "Unsupported video codec.): check that the file opens and is a supported format, "
        "or re-encode it"
    )


def test_media_upload_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="media_upload_timeout"):
        GeminiEmbedding(api_key="k", model_name=MODEL, media_upload_timeout=0)


def test_uploaded_media_weigh_a_file_reference_not_their_bytes_in_the_payload(
    emulator: Emulator,
) -> None:
    from llama_index_gemini_embed._types import MediaPart

    embed = make(emulator, FakeTime())
    video = mp4_with_title("a long clip", 2.0) + b"\0" * 3_000_000  # over the 4 MiB cap inline
    spec = TextSpec("", "RETRIEVAL_DOCUMENT", None, (MediaPart("video/mp4", video),))
    (item,) = embed.engine.prepare_items([spec], with_media=True)
    assert item.wire_bytes < 1_000, "packed as a fileData reference, so it shares requests"
