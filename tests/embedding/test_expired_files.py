"""A Files API file that is gone (expired, deleted) fails its item, never the run or the key.

Google keeps Files API files 48 hours and then answers a request naming one with 403
PERMISSION_DENIED "You do not have permission to access the File X or it may not exist."
(docs/gemini-api.md §5), the same status as a refused key. The emulator answers exactly
that for a file it does not hold; a file deleted through the SDK is what an expired file
looks like to a client. Real SDK against the emulator throughout.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from google import genai
from google.genai import types

from llama_index_gemini_embed import (
    ChromaStore,
    GeminiEmbedding,
    InvalidAPIKeyError,
    MediaError,
    MediaFileUnavailableError,
    ingest,
)
from llama_index_gemini_embed._client import describe_failure
from llama_index_gemini_embed._embedding.engine import BatchOutcome
from llama_index_gemini_embed._retry import Failure
from llama_index_gemini_embed._types import MediaPart, TextSpec
from llama_index_gemini_embed.emulator import Emulator, embed_media
from llama_index_gemini_embed.emulator.samples import mp4_with_title, png_with_description
from tests.embedding.support import embed_records, make, unit

MODEL = "gemini-embedding-2"
ADVICE = "re-upload it or pass the bytes; Files API files expire after 48 hours."


def sdk_client(emu: Emulator) -> genai.Client:
    return genai.Client(api_key=emu.api_key, http_options=types.HttpOptions(base_url=emu.base_url))


def upload_png(client: genai.Client, text: str) -> types.File:
    config = types.UploadFileConfig(mime_type="image/png")
    return client.files.upload(file=io.BytesIO(png_with_description(text)), config=config)


def expired_file(client: genai.Client) -> types.File:
    """A file the caller uploaded and the Files API no longer has (as after 48 hours)."""
    file = upload_png(client, "a file that expired")
    assert file.name is not None
    client.files.delete(name=file.name)
    return file


async def outcomes(embed: GeminiEmbedding, specs: list[TextSpec]) -> list[BatchOutcome]:
    return [outcome async for outcome in embed.engine.stream(specs)]


def image(uri: str) -> TextSpec:
    return TextSpec("", "RETRIEVAL_DOCUMENT", media=(MediaPart("image/png", file_uri=uri),))


@pytest.mark.parametrize("spelling", ["uri", "name"])
def test_an_expired_file_fails_its_item_alone_and_the_others_are_embedded(
    emulator: Emulator, spelling: str
) -> None:
    client = sdk_client(emulator)
    good, gone = upload_png(client, "a red bicycle"), expired_file(client)
    assert good.uri and good.name and gone.uri and gone.name
    refs = {"uri": (good.uri, gone.uri), "name": (good.name, gone.name)}[spelling]
    embed = make(emulator, model_name=MODEL, output_dimensionality=256)
    specs = [
        TextSpec("a sentence before", "RETRIEVAL_DOCUMENT"),
        image(refs[0]),
        image(refs[1]),
        TextSpec("a sentence after", "RETRIEVAL_DOCUMENT"),
    ]
    results = asyncio.run(outcomes(embed, specs))  # the run is not stopped: no raise

    vectors = {
        i: v for o in results if o.vectors for i, v in zip(o.indices, o.vectors, strict=True)
    }
    assert sorted(vectors) == [0, 1, 3], "every other item is embedded"
    assert vectors[1] == pytest.approx(
        unit(
            embed_media(
                [("image/png", png_with_description("a red bicycle"))], model=MODEL, dimension=256
            )
        ),
        abs=1e-6,
    )
    failed = [o for o in results if o.error is not None]
    assert [o.indices for o in failed] == [(2,)], "only the expired file's item fails"
    error = failed[0].error
    assert isinstance(error, MediaFileUnavailableError)
    assert isinstance(error, MediaError) and not isinstance(error, InvalidAPIKeyError)
    assert error.file_name == gone.name and error.code == 403
    assert str(error) == (
        f"Item #2: The Files API file {gone.name} is gone or not this project's (403 "
        "PERMISSION_DENIED: expired, deleted, or uploaded with another key): " + ADVICE
    )
    assert [r.status for r in embed_records(emulator)] == [200], "never sent, nobody else failed"
    assert embed.usage.failed_items == 1
    assert client.files.get(name=good.name).name == good.name, "the caller's file is not deleted"


def test_items_naming_the_same_expired_file_are_looked_up_once(emulator: Emulator) -> None:
    client = sdk_client(emulator)
    gone = expired_file(client)
    assert gone.uri
    embed = make(emulator, model_name=MODEL, output_dimensionality=256)
    specs = [image(gone.uri), TextSpec("kept", "RETRIEVAL_DOCUMENT"), image(gone.uri)]
    results = asyncio.run(outcomes(embed, specs))
    errors = {o.indices: o.error for o in results if o.error is not None}
    assert set(errors) == {(0,), (2,)}
    assert all(isinstance(e, MediaFileUnavailableError) for e in errors.values())
    assert str(errors[(2,)]).startswith("Item #2: The Files API file files/")
    gets = [r for r in emulator.requests if r.method == "GET" and "/files/" in r.path]
    assert [r.status for r in gets] == [403], "one lookup per run, not one per item"


def test_embed_raises_the_file_error_not_a_key_error(emulator: Emulator) -> None:
    gone = expired_file(sdk_client(emulator))
    assert gone.uri and gone.name
    embed = make(emulator, model_name=MODEL, output_dimensionality=256)
    with pytest.raises(MediaFileUnavailableError, match=f"file {gone.name} is gone") as caught:
        asyncio.run(embed.engine.embed([image(gone.uri)]))
    assert ADVICE in str(caught.value) and "api_key" not in str(caught.value)


def test_a_request_naming_a_gone_file_is_a_file_error_from_the_api_itself(
    emulator: Emulator,
) -> None:
    """Without our lookup (a file gone between the lookup and the request): the API's own
    403 for the embedding request is read as the file's, not the key's, and is not fatal."""
    client = sdk_client(emulator)
    gone = expired_file(client)
    assert gone.uri and gone.name
    embed = make(emulator, model_name=MODEL, output_dimensionality=256)
    part = types.PartDict(file_data=types.FileDataDict(file_uri=gone.uri, mime_type="image/png"))

    async def send() -> object:
        return await client.aio.models.embed_content(
            model=MODEL, contents=[types.ContentDict(parts=[part])]
        )

    with pytest.raises(MediaFileUnavailableError) as caught:
        asyncio.run(embed.engine.caller.call(send, items=1, tokens=258))
    assert caught.value.file_name == gone.name
    assert str(caught.value).endswith(ADVICE)
    statuses = [r.status for r in embed_records(emulator)]
    assert statuses == [403], "sent once: a 403 is not retried"


@pytest.mark.parametrize(
    "message",
    [
        "You do not have permission to access the File abc123 or it may not exist.",
        "You do not have permission to access the File files/abc123 or it may not exist.",
    ],
)
def test_both_spellings_of_the_file_name_are_read(message: str) -> None:
    failure = Failure(code=403, status="PERMISSION_DENIED", message=message)
    error = describe_failure(failure, model=MODEL, exhausted=False, secret=None)
    assert isinstance(error, MediaFileUnavailableError)
    assert error.file_name == "files/abc123"
    assert "files/abc123 is gone" in str(error)


@pytest.mark.parametrize(
    "message",
    [
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
        "Requests from referer <empty> are blocked.",
        "Permission denied: Consumer 'api_key:AIza' has been suspended.",
    ],
)
def test_a_403_about_the_key_is_still_a_key_error(message: str) -> None:
    failure = Failure(code=403, status="PERMISSION_DENIED", message=message)
    error = describe_failure(failure, model=MODEL, exhausted=False, secret="AIza")
    assert type(error) is InvalidAPIKeyError


def test_an_invalid_key_still_stops_a_run_that_names_a_file(emulator: Emulator) -> None:
    """The file lookup itself gets the key's refusal: that stays fatal and blames the key."""
    good = upload_png(sdk_client(emulator), "a red bicycle")
    assert good.uri
    embed = GeminiEmbedding(api_key="AIza-not-a-key", base_url=emulator.base_url, model_name=MODEL)
    specs = [image(good.uri), TextSpec("a sentence", "RETRIEVAL_DOCUMENT")]
    with pytest.raises(InvalidAPIKeyError, match="rejected the API key from api_key="):
        asyncio.run(outcomes(embed, specs))


def test_an_ingest_goes_on_when_an_upload_disappears_before_it_is_active(
    emulator: Emulator, tmp_path: Path
) -> None:
    """ingest(): a video upload that is gone by the next ``files.get`` poll (deleted, as
    after expiry) fails that item with the file error; the note and the picture are
    embedded and stored, and the run is not stopped as a bad key."""
    emulator.set_upload_behaviour(processing_polls=5)  # videos only (the default prefixes)
    client = sdk_client(emulator)

    async def sleep(_seconds: float) -> None:
        """Between two polls of the PROCESSING video, the Files API loses it."""
        for file in client.files.list():
            if file.name and (file.mime_type or "").startswith("video/"):
                client.files.delete(name=file.name)

    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "note.md").write_text("# Bikes\n\nA note about bicycles at night.\n")
    (folder / "bike.png").write_bytes(png_with_description("a red bicycle at night"))
    (folder / "ride.mp4").write_bytes(mp4_with_title("a night ride", 2.0))
    embed = make(
        emulator,
        model_name=MODEL,
        output_dimensionality=256,
        max_inline_media_bytes=100,  # every medium goes through the Files API
        sleep=sleep,
    )
    with ChromaStore("media", path=str(tmp_path / "chroma"), embed_model=embed) as store:
        report = ingest(folder, embed_model=embed, store=store, show_progress=False)
        rows = store.collection.get(include=["metadatas"])["metadatas"] or []
        stored = {row["file_name"] for row in rows}
    assert report.fatal_error is None, report.fatal_error
    assert (report.embedded, report.written, report.failed) == (2, 2, 1)
    assert stored == {"note.md", "bike.png"}
    (failure,) = report.failures
    assert failure.doc_id == "ride.mp4" and failure.error_type == "MediaFileUnavailableError"
    assert failure.message.startswith("Item #") and "The Files API file files/" in failure.message
    assert failure.message.endswith(ADVICE)


def test_a_file_gone_after_the_lookup_fails_only_its_items_and_the_rest_are_sent_again(
    emulator: Emulator,
) -> None:
    """The API's 403 for the request names the file: the items naming it fail, the others
    of that request are sent again without them (not failed with it)."""
    from llama_index_gemini_embed._packing import Batch, Item

    client = sdk_client(emulator)
    good, gone = upload_png(client, "a red kite"), expired_file(client)
    assert good.uri and gone.uri and gone.name
    embed = make(emulator, model_name=MODEL, output_dimensionality=256)
    items = (
        Item(0, "a note about kites", "RETRIEVAL_DOCUMENT"),
        Item(1, "", "RETRIEVAL_DOCUMENT", media=(MediaPart("image/png", file_uri=gone.uri),)),
        Item(2, "", "RETRIEVAL_DOCUMENT", media=(MediaPart("image/png", file_uri=good.uri),)),
    )
    results = asyncio.run(embed.engine._run_checked(Batch("RETRIEVAL_DOCUMENT", None, items)))
    by_index = {i: r for r in results for i in r.indices}
    assert isinstance(by_index[1].error, MediaFileUnavailableError)
    assert by_index[1].error.file_name == gone.name
    for index in (0, 2):
        assert by_index[index].error is None and by_index[index].vectors is not None
    assert [r.status for r in embed_records(emulator)] == [403, 200]  # one resend, without it
