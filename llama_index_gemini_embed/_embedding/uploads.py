"""Large media through the Files API: shared by concurrent calls, deleted by the last user.

    uploads = MediaUploads(caller, client_provider=lambda: client, max_inline_bytes=2_000_000,
                           api_version="v1beta", timeout_s=600)
    lease = uploads.lease()                            # one per engine run (call)
    media = await uploads.resolve(item.media, index, lease)  # large parts -> fileData URIs
    await lease.release()                              # at the end of the run, on every path

Sharing, chosen over strict per-call ownership: one ``GeminiEmbedding`` is typically shared
by concurrent callers (an async server, ``asyncio.gather`` over documents), and the same
large video or PDF is uploaded, PROCESSED and paid for in time only once that way. The
registry is per embedder and per event loop (an ``asyncio.Lock`` serves one loop), keyed
by (MIME type, sha256 of the bytes); each entry counts the runs holding it. A run joins an
entry before it waits for it, keeps it until the run ends, and the run that drops the last
reference removes the entry from the registry and only then deletes the file, so a later
run uploads afresh instead of naming a file being deleted. A file that turned FAILED or
never became ACTIVE stays refused (at once) while any run still holds it.

Uploads and ``files.get`` polls go through the engine's retry layer
(:class:`.._calls.RetryingCaller`) with its injectable clock and sleep; deletes are one
best-effort try (files expire after ~48 h anyway). Google's File.state
is PROCESSING ("cannot be used for inference yet"), ACTIVE or FAILED; an embedding request
that names a file still PROCESSING fails 400 FAILED_PRECONDITION, and the SDK's
``files.upload`` does not wait (docs/gemini-api.md §5).

A part that already names a Files API file (``MediaPart(file_uri=…)``, uploaded by the
caller) is looked up once per run with ``files.get`` before its request is sent: a file that
expired (Google keeps files 48 hours), was deleted or is another project's answers 403, and
then that item alone fails (:class:`MediaFileUnavailableError`) instead of its whole request;
one still PROCESSING is awaited like our own uploads. Such files are never deleted by us.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from google import genai
from google.genai import types

from llama_index_gemini_embed._calls import RetryingCaller
from llama_index_gemini_embed._errors import (
    GeminiAPIError,
    MediaError,
    MediaFileUnavailableError,
)
from llama_index_gemini_embed._types import MediaPart

__all__ = [
    "UPLOAD_POLL_FIRST_S",
    "UPLOAD_POLL_MAX_S",
    "MediaUploads",
    "UploadLease",
    "files_api_name",
]

logger = logging.getLogger("llama_index_gemini_embed")

#: Polling an upload still PROCESSING: 1 s, then doubling up to 10 s between GETs.
UPLOAD_POLL_FIRST_S = 1.0
UPLOAD_POLL_MAX_S = 10.0

_Key = tuple[asyncio.AbstractEventLoop, str, str]  # (loop, MIME type, sha256 of the bytes)
# A caller's own file: (loop, "file_uri", its files/ID name).

_FILE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def files_api_name(uri: str) -> str | None:
    """``files/ID`` for a Gemini Files API reference (``files/ID`` or ``https://…/files/ID``),
    else None (e.g. ``gs://…`` on Vertex AI).

        >>> files_api_name("https://generativelanguage.googleapis.com/v1beta/files/abc123")
        'files/abc123'
        >>> files_api_name("gs://bucket/clip.mp4") is None
        True
    """
    if uri.startswith("files/"):
        file_id = uri.removeprefix("files/")
    elif uri.startswith(("https://", "http://")) and "/files/" in uri:
        file_id = uri.split("?", 1)[0].rstrip("/").rsplit("/files/", 1)[1]
    else:
        return None
    return f"files/{file_id}" if _FILE_ID.fullmatch(file_id) else None


@dataclass
class _Shared:
    """One upload and the runs holding it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    uri: str = ""  # set once ACTIVE
    name: str = ""  # set once uploaded: deleted by the last user whatever happened next
    failure: MediaError | None = None  # why it is unusable (FAILED / never ACTIVE / gone)


class UploadLease:
    """The uploads one run holds; :meth:`release` at the run's end (idempotent)."""

    def __init__(self, owner: MediaUploads) -> None:
        self._owner = owner
        self._keys: set[_Key] = set()

    def _join(self, key: _Key) -> _Shared:
        with self._owner._guard:
            entry = self._owner._shared.get(key)
            if entry is None:
                entry = self._owner._shared[key] = _Shared()
            if key not in self._keys:
                self._keys.add(key)
                entry.users += 1
            return entry

    async def release(self) -> None:
        """Drop this run's references; delete the files nobody else holds (best effort:
        they expire in ~48 h anyway)."""
        names: list[str] = []
        with self._owner._guard:
            keys, self._keys = self._keys, set()
            for key in keys:
                entry = self._owner._shared[key]
                entry.users -= 1
                if entry.users == 0:
                    del self._owner._shared[key]  # a later run uploads afresh
                    if entry.name:
                        names.append(entry.name)
        if names:
            await self._owner.delete(names)


class MediaUploads:
    """The Files API uploads of one engine, shared by its concurrent runs (see module)."""

    def __init__(
        self,
        caller: RetryingCaller,
        *,
        client_provider: Callable[[], genai.Client],
        max_inline_bytes: int,
        api_version: str | None,
        timeout_s: float,
    ) -> None:
        self.caller = caller
        self._client_provider = client_provider
        self.max_inline_bytes = max_inline_bytes
        self.api_version = api_version
        self.timeout_s = timeout_s
        self.count = 0
        """Files uploaded so far (all runs)."""
        self._shared: dict[_Key, _Shared] = {}
        self._guard = threading.Lock()  # the registry is shared by every loop's runs

    def lease(self) -> UploadLease:
        """A new run's handle on the uploads it uses."""
        return UploadLease(self)

    def is_large(self, media: MediaPart) -> bool:
        """True when ``media`` goes through the Files API rather than inline."""
        return (
            media.file_uri is None
            and media.data is not None
            and len(media.data) > self.max_inline_bytes
        )

    @staticmethod
    def is_named(media: MediaPart) -> bool:
        """True when ``media`` names a Files API file the caller uploaded (checked before use)."""
        return media.file_uri is not None and files_api_name(media.file_uri) is not None

    def needed(self, media: Sequence[MediaPart]) -> bool:
        """True when some part must be uploaded, or is a caller's file to look up first."""
        return any(self.is_large(part) or self.is_named(part) for part in media)

    async def resolve(
        self, media: Sequence[MediaPart], index: int, lease: UploadLease
    ) -> tuple[MediaPart, ...]:
        """Item ``index``'s media with every large part uploaded (and ACTIVE) and given its
        ``file_uri`` (sent instead of the bytes, which stay for token estimates), held by
        ``lease`` until the run releases it."""
        resolved: list[MediaPart] = []
        for part in media:
            uri = await self.uri(part, index, lease)
            resolved.append(part if uri is None else dataclasses.replace(part, file_uri=uri))
        return tuple(resolved)

    async def uri(self, media: MediaPart, index: int, lease: UploadLease) -> str | None:
        """The file URI to send for a large part (uploaded and ACTIVE), else None.

        Raises:
            MediaError: the file turned FAILED, or was still PROCESSING after
                ``timeout_s`` (the same bytes then fail at once while any run holds them).
            MediaFileUnavailableError: a caller's ``file_uri`` names a file that is gone.
        """
        if self.is_named(media):
            await self.check_named(media, index, lease)
            return None
        if not self.is_large(media):
            return None
        assert media.data is not None
        data, mime_type = media.data, media.mime_type
        digest = hashlib.sha256(data).hexdigest()
        entry = lease._join((asyncio.get_running_loop(), mime_type, digest))
        async with entry.lock:
            if entry.uri:
                return entry.uri
            if entry.failure is not None:
                raise _for_item(entry.failure, index)
            client = self._client_provider()
            config = types.UploadFileConfig(
                mime_type=mime_type,
                display_name=f"lige-{digest[:16]}",
                http_options=self._options(),
            )
            uploaded = await self.caller.call(
                lambda: client.aio.files.upload(file=io.BytesIO(data), config=config),
                items=0,
                tokens=0,
            )
            if uploaded.uri is None or uploaded.name is None:
                raise GeminiAPIError(
                    "The Files API answered an upload without a file URI; retry the run."
                )
            entry.name = uploaded.name
            self.count += 1
            what = f"{mime_type} upload {uploaded.name} ({len(data):,} bytes)"
            try:
                await self.wait_until_active(client, uploaded, what)
            except MediaError as error:  # also MediaFileUnavailableError: deleted meanwhile
                entry.failure = error
                raise _for_item(error, index) from None
            entry.uri = uploaded.uri
            return entry.uri

    async def check_named(self, media: MediaPart, index: int, lease: UploadLease) -> None:
        """Make sure the caller's file ``media.file_uri`` exists and is ACTIVE (once per run).

        Skipped on Vertex AI (no Files API there). Other failures of the lookup (a bad key,
        an unreachable API) propagate as they are: they are not this item's.

        Raises:
            MediaFileUnavailableError: the Files API answers 403 for it (expired after 48 h,
                deleted, or another project's); later items naming it fail at once too.
            MediaError: the file is FAILED, or still PROCESSING after ``timeout_s``.
        """
        assert media.file_uri is not None
        name = files_api_name(media.file_uri)
        client = self._client_provider()
        if name is None or getattr(client, "vertexai", False) is True:
            return
        entry = lease._join((asyncio.get_running_loop(), "file_uri", name))
        async with entry.lock:
            if entry.uri:
                return
            if entry.failure is not None:
                raise _for_item(entry.failure, index)
            options = types.GetFileConfig(http_options=self._options())
            try:
                file = await self.caller.call(
                    lambda: client.aio.files.get(name=name, config=options), items=0, tokens=0
                )
                await self.wait_until_active(client, file, f"{media.mime_type} file {name}")
            except MediaError as error:  # MediaFileUnavailableError: the 403 for a gone file
                entry.failure = error
                raise _for_item(error, index) from None
            entry.uri = media.file_uri

    async def wait_until_active(self, client: genai.Client, file: types.File, what: str) -> None:
        """Poll ``files.get`` (through the retry layer) until ``file`` is ACTIVE.

        A missing or unspecified state is taken as usable: the embedding request is then
        the judge (robust to an API that stops reporting it).

        Raises:
            MediaError: FAILED (with the service's reason), or still PROCESSING at the
                timeout; one line naming the file and the fix.
        """
        clock, sleep = self.caller.clock, self.caller.sleep
        deadline = clock() + self.timeout_s
        delay = UPLOAD_POLL_FIRST_S
        name = file.name or ""
        options = types.GetFileConfig(http_options=self._options())
        while True:
            state = _state_name(file.state)
            if state == "FAILED":
                reason = file.error.message if file.error and file.error.message else ""
                raise MediaError(
                    f"the Files API could not process the {what} (state FAILED"
                    + (f": {reason}" if reason else "")
                    + "): check that the file opens and is a supported format, or re-encode it"
                )
            if state != "PROCESSING":
                return
            left = deadline - clock()
            if left <= 0:
                raise MediaError(
                    f"the {what} was still PROCESSING after {self.timeout_s:g} s: pass a "
                    "larger media_upload_timeout= (seconds), or embed a shorter clip"
                )
            await sleep(min(delay, left))
            await asyncio.sleep(0)  # let other requests run even if the sleep is injected
            delay = min(delay * 2, UPLOAD_POLL_MAX_S)
            file = await self.caller.call(
                lambda: client.aio.files.get(name=name, config=options), items=0, tokens=0
            )

    async def delete(self, names: Sequence[str]) -> None:
        """Delete these uploads; a failure is logged, never raised (it must not mask the
        run's outcome)."""
        client = self._client_provider()
        for name in names:
            try:
                await client.aio.files.delete(
                    name=name, config=types.DeleteFileConfig(http_options=self._options())
                )
            except Exception as error:
                logger.warning("Could not delete uploaded media %s: %s", name, error)

    def _options(self) -> types.HttpOptions | None:
        return types.HttpOptions(api_version=self.api_version) if self.api_version else None


def _for_item(error: MediaError, index: int) -> MediaError:
    """The same error (same type, same file) with the item's number in front."""
    if isinstance(error, MediaFileUnavailableError):
        return MediaFileUnavailableError(
            f"Item #{index}: {error}",
            file_name=error.file_name,
            code=error.code,
            status=error.status,
        )
    return MediaError(f"Item #{index}: {error}")


def _state_name(state: object) -> str | None:
    """``types.FileState.ACTIVE`` (or a plain string) -> ``"ACTIVE"``; None stays None."""
    if state is None:
        return None
    return str(getattr(state, "value", state)).upper()
