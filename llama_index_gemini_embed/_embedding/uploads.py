"""Large media through the Files API: upload once per run, wait until ACTIVE, delete after.

    uploads = MediaUploads(caller, client_provider=lambda: client, max_inline_bytes=2_000_000,
                           api_version="v1beta", timeout_s=600)
    uri = await uploads.uri(part, index)     # None: small enough to travel inline
    await uploads.cleanup()                  # at the end of the run, on every path

Every call (upload, ``files.get`` polls, delete) goes through the engine's retry layer
(:class:`.._calls.RetryingCaller`) with its injectable clock and sleep. Google's File.state
is PROCESSING ("cannot be used for inference yet"), ACTIVE or FAILED; an embedding request
that names a file still PROCESSING fails 400 FAILED_PRECONDITION, and the SDK's
``files.upload`` does not wait (docs/gemini-api.md §5).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from collections.abc import Callable, Sequence

from google import genai
from google.genai import types

from llama_index_gemini_embed._calls import RetryingCaller
from llama_index_gemini_embed._errors import GeminiAPIError, MediaError
from llama_index_gemini_embed._types import MediaPart

__all__ = ["UPLOAD_POLL_FIRST_S", "UPLOAD_POLL_MAX_S", "MediaUploads"]

logger = logging.getLogger("llama_index_gemini_embed")

#: Polling an upload still PROCESSING: 1 s, then doubling up to 10 s between GETs.
UPLOAD_POLL_FIRST_S = 1.0
UPLOAD_POLL_MAX_S = 10.0


class MediaUploads:
    """The Files API uploads of one engine: keyed by content hash, reused within a run."""

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
        self._files: dict[str, tuple[str, str]] = {}  # sha256 -> (uri or "", name)
        self._errors: dict[str, str] = {}  # sha256 -> why it is unusable (this run)
        self._locks: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Lock] = {}

    def is_large(self, media: MediaPart) -> bool:
        """True when ``media`` goes through the Files API rather than inline."""
        return (
            media.file_uri is None
            and media.data is not None
            and len(media.data) > self.max_inline_bytes
        )

    def needed(self, media: Sequence[MediaPart]) -> bool:
        return any(self.is_large(part) for part in media)

    async def upload_all(self, media: Sequence[MediaPart], index: int) -> None:
        """Upload (and wait for) every large part of item ``index`` now."""
        for part in media:
            await self.uri(part, index)

    async def uri(self, media: MediaPart, index: int) -> str | None:
        """The file URI to send for a large part (uploaded and ACTIVE), else None.

        Raises:
            MediaError: the file turned FAILED, or was still PROCESSING after
                ``timeout_s`` (the same bytes then fail at once for later items).
        """
        if not self.is_large(media):
            return None
        assert media.data is not None
        data, mime_type = media.data, media.mime_type
        key = hashlib.sha256(data).hexdigest()
        lock = self._locks.setdefault((asyncio.get_running_loop(), key), asyncio.Lock())
        async with lock:
            known = self._files.get(key)
            if known is not None and known[0]:
                return known[0]
            if key in self._errors:
                raise MediaError(f"Item #{index}: {self._errors[key]}")
            client = self._client_provider()
            config = types.UploadFileConfig(
                mime_type=mime_type,
                display_name=f"lige-{key[:16]}",
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
            # Recorded before waiting: deleted at the end of the run whatever happens next.
            self._files[key] = ("", uploaded.name)
            self.count += 1
            what = f"{mime_type} upload {uploaded.name} ({len(data):,} bytes)"
            try:
                await self.wait_until_active(client, uploaded, what)
            except MediaError as error:
                self._errors[key] = str(error)
                raise MediaError(f"Item #{index}: {error}") from None
            self._files[key] = (uploaded.uri, uploaded.name)
            return uploaded.uri

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

    async def cleanup(self) -> None:
        """Delete this run's uploads (best effort: they expire in ~48 h anyway)."""
        files, self._files = self._files, {}
        self._errors.clear()
        self._locks.clear()
        if not files:
            return
        client = self._client_provider()
        for _uri, name in files.values():
            try:
                await client.aio.files.delete(
                    name=name, config=types.DeleteFileConfig(http_options=self._options())
                )
            except Exception as error:  # cleanup must not mask the run's outcome
                logger.warning("Could not delete uploaded media %s: %s", name, error)

    def _options(self) -> types.HttpOptions | None:
        return types.HttpOptions(api_version=self.api_version) if self.api_version else None


def _state_name(state: object) -> str | None:
    """``types.FileState.ACTIVE`` (or a plain string) -> ``"ACTIVE"``; None stays None."""
    if state is None:
        return None
    return str(getattr(state, "value", state)).upper()
