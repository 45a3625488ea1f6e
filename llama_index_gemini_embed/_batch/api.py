"""The Batch and Files API calls of one batch embedder: retried, versioned, sized.

    api = BatchAPI(embed_model, max_inline_response_bytes=20_000_000)
    job = await api.create("gemini-embed-…-0001", src, size_bytes=…)
    job = await api.get("batches/123", result_bytes=…)     # None: the API forgot it
    name = await api.upload(jsonl_bytes, "….jsonl")         # MIME fallback
    data = await api.download("files/batch-…", result_bytes=…)  # None: not there yet

* Every call goes through the package's single retry layer (:class:`RetryingCaller`,
  its own quota: the Batch API does not draw on the online embedding quota).
* Every call carries ``api_version`` (the user's, else ``v1beta``, where Google documents
  these routes) and a timeout sized to what it moves (>= 1 MB/s, +60 s).
* An answer the SDK cannot read (its ``KeyError``/``ValueError``…) becomes one clear
  :class:`UnexpectedAnswerError`, never a raw traceback.

Gemini Developer API only: the SDK does not offer embedding batches on Vertex AI.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from google import genai
from google.genai import types

from llama_index_gemini_embed._calls import Clock, RetryingCaller, Sleep
from llama_index_gemini_embed._embedding.embedding import GeminiEmbedding
from llama_index_gemini_embed._errors import (
    ConfigurationError,
    GeminiAPIError,
    GeminiEmbedError,
    UnexpectedAnswerError,
)
from llama_index_gemini_embed._quota import QuotaLimiter
from llama_index_gemini_embed._usage import Usage

__all__ = ["BATCH_API_VERSION", "JSONL_MIME_TYPES", "BatchAPI"]

logger = logging.getLogger("llama_index_gemini_embed")

#: The API version of every Batch/Files API call unless the user set one: Google documents
#: these routes (and every example uses them) on v1beta; see docs/gemini-api.md.
BATCH_API_VERSION = "v1beta"

#: MIME types tried in turn for the JSONL input file: the documented one, then one the
#: Files API has always accepted (it has refused ``application/jsonl`` at times).
JSONL_MIME_TYPES = ("application/jsonl", "text/plain")

#: SDK exceptions that mean "the answer was not what the SDK expected" (e.g. its
#: ``KeyError: 'file'`` after an upload answered 200 without a file).
_ODD_ANSWERS = (KeyError, IndexError, TypeError, AttributeError, ValueError)

#: Jobs per page when looking up lost creates: a listing may carry inline results.
_LIST_PAGE_SIZE = 20


def _quiet_experimental_warning() -> None:
    """The SDK warns on every create_embeddings call that it is experimental; we know.

    Installed per embedder (idempotent: ``filterwarnings`` replaces an equal filter), so
    it also holds where the import-time filter list was reset, e.g. under pytest.
    """
    warnings.filterwarnings("ignore", message=r"batches\.create_embeddings\(\) is experimental")


class BatchAPI:
    """Batch/Files API calls for ``embed_model``'s client, key, retry policy and timeout."""

    def __init__(
        self,
        embed_model: GeminiEmbedding,
        *,
        max_inline_response_bytes: int,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self.embed_model = embed_model
        self.max_inline_response_bytes = max_inline_response_bytes
        _quiet_experimental_warning()
        self.caller = RetryingCaller(
            model=embed_model.model_name,
            policy=embed_model.engine.config.retry,
            limiter=QuotaLimiter(),  # the Batch API has its own quota
            usage=Usage(),
            clock=clock,
            sleep=sleep,
            secret=self._secret,
            what="batch",
        )

    def _secret(self) -> str | None:
        key = self.embed_model.api_key
        return key.get_secret_value() if key is not None else None

    @property
    def client(self) -> genai.Client:
        """The embedding model's client; refuses Vertex AI (no embedding batches there)."""
        client = self.embed_model.client
        if client.vertexai:
            raise ConfigurationError(
                "Batch embedding uses the Gemini Developer API's Batch API, which Vertex AI "
                "does not offer for embeddings: use online ingestion, or an API key without "
                "vertexai=True."
            )
        return client

    @property
    def api_version(self) -> str:
        """The user's ``api_version``, else :data:`BATCH_API_VERSION` (v1beta)."""
        return self.embed_model.api_version or BATCH_API_VERSION

    def http_options(self, size_bytes: int = 0) -> types.HttpOptions:
        """The batch API version, and a timeout that lets ``size_bytes`` move at >= 1 MB/s."""
        base = self.embed_model.timeout
        timeout = None
        if base is not None and size_bytes > 0:
            timeout = round(max(base, 60.0 + size_bytes / 1_000_000) * 1000)
        return types.HttpOptions(api_version=self.api_version, timeout=timeout)

    async def call(self, send: Callable[[], Awaitable[Any]], what: str) -> Any:
        """``send`` through the retry layer; an answer the SDK cannot read becomes a clear
        :class:`UnexpectedAnswerError` (never a raw ``KeyError``)."""

        async def guarded() -> Any:
            try:
                return await send()
            except _ODD_ANSWERS as exc:
                raise UnexpectedAnswerError(
                    f"The Gemini API's answer to {what} could not be read by the google-genai "
                    f"SDK ({type(exc).__name__}: {exc}). Run again (the batch state is kept); "
                    "if it persists, upgrade google-genai."
                ) from exc

        return await self.caller.call(guarded, items=0, tokens=0)

    async def _files(self, method: str, **kwargs: Any) -> Any:
        """``client.aio.files.<method>``, or the sync one in a thread on SDKs without it."""
        client = self.client
        aio_method = getattr(client.aio.files, method, None)
        if aio_method is not None:
            return await aio_method(**kwargs)
        return await asyncio.to_thread(getattr(client.files, method), **kwargs)

    # -- batches -------------------------------------------------------------------------

    async def get(self, name: str, *, result_bytes: int) -> types.BatchJob | None:
        """The job, or None when the API no longer knows it (404). The timeout is sized
        for ``result_bytes``: a succeeded job may carry its results inline."""
        config = types.GetBatchJobConfig(http_options=self.http_options(result_bytes))
        try:
            job: types.BatchJob = await self.call(
                lambda: self.client.aio.batches.get(name=name, config=config),
                f"getting batch job {name}",
            )
        except GeminiAPIError as exc:
            if exc.code == 404:
                return None
            raise
        return job

    async def lookup(self, display_names: Collection[str]) -> dict[str, types.BatchJob]:
        """Jobs created under these display names (creates whose answer was lost)."""
        names = set(display_names)
        return dict(await self.call(lambda: self._list(names), "listing batch jobs"))

    async def _list(self, wanted: set[str]) -> dict[str, types.BatchJob]:
        found: dict[str, types.BatchJob] = {}
        size = _LIST_PAGE_SIZE * self.max_inline_response_bytes
        config = types.ListBatchJobsConfig(
            page_size=_LIST_PAGE_SIZE, http_options=self.http_options(size)
        )
        pager = await self.client.aio.batches.list(config=config)
        async for job in pager:
            if job.display_name in wanted:
                found[job.display_name] = job
                if len(found) == len(wanted):
                    break
        return found

    async def create(
        self, display_name: str, src: types.EmbeddingsBatchJobSource, *, size_bytes: int
    ) -> types.BatchJob:
        """Create the job; a retry first looks it up by name, so a lost answer never pays
        twice."""
        attempts = 0
        config = types.CreateEmbeddingsBatchJobConfig(
            display_name=display_name, http_options=self.http_options(size_bytes)
        )

        async def send() -> types.BatchJob:
            nonlocal attempts
            attempts += 1
            if attempts > 1:  # the previous attempt may have created it: never pay twice
                found = await self._list({display_name})
                if display_name in found:
                    return found[display_name]
            return await self.client.aio.batches.create_embeddings(
                model=self.embed_model.model_name, src=src, config=config
            )

        job: types.BatchJob = await self.call(send, f"creating batch job {display_name}")
        return job

    async def cancel(self, name: str) -> None:
        """Cancel the job (a job the API no longer knows is fine)."""
        config = types.CancelBatchJobConfig(http_options=self.http_options())
        try:
            await self.call(
                lambda: self.client.aio.batches.cancel(name=name, config=config),
                f"cancelling batch job {name}",
            )
        except GeminiAPIError as exc:
            if exc.code != 404:
                raise

    # -- files ---------------------------------------------------------------------------

    async def upload(self, payload: bytes, display_name: str) -> str:
        """Upload a JSONL input file; returns its name (``files/…``).

        Tries each of :data:`JSONL_MIME_TYPES` in turn: the Files API has refused the
        documented ``application/jsonl`` (400 "Unsupported MIME type") or answered it
        without a file; ``text/plain`` is accepted everywhere.
        """
        problems: list[str] = []
        for mime_type in JSONL_MIME_TYPES:
            config = types.UploadFileConfig(
                mime_type=mime_type,
                display_name=display_name,
                http_options=self.http_options(len(payload)),
            )
            try:
                uploaded = await self.call(
                    functools.partial(
                        self._files, "upload", file=io.BytesIO(payload), config=config
                    ),
                    f"uploading the batch input file as {mime_type}",
                )
            except UnexpectedAnswerError as exc:
                problems.append(f"{mime_type}: {exc}")
                continue
            except GeminiAPIError as exc:
                if type(exc) is not GeminiAPIError or exc.code != 400:
                    raise
                problems.append(f"{mime_type}: {exc}")
                continue
            name = getattr(uploaded, "name", None)
            if isinstance(name, str) and name:
                if problems:
                    logger.info("Batch input uploaded as %s after: %s", mime_type, problems)
                return name
            problems.append(f"{mime_type}: the answer names no file")
        raise UnexpectedAnswerError(
            "The Files API did not accept the batch input file under any MIME type tried ("
            + "; ".join(problems)
            + "). Run again later (nothing was submitted), or ingest without --batch."
        )

    async def download(self, file_name: str, *, result_bytes: int) -> bytes | None:
        """A results file's bytes; None while it is announced but not downloadable yet."""
        config = types.DownloadFileConfig(http_options=self.http_options(result_bytes))
        try:
            data: bytes = await self.call(
                lambda: self._files("download", file=file_name, config=config),
                f"downloading {file_name}",
            )
        except GeminiAPIError as exc:
            if exc.code in (403, 404):  # the file is announced before it exists
                logger.info("Batch results file %s is not available yet: %s", file_name, exc)
                return None
            raise
        return data

    async def delete_file(self, name: str) -> None:
        """Delete an input file (Files API storage is capped); best effort."""
        config = types.DeleteFileConfig(http_options=self.http_options())
        try:
            await self.call(
                lambda: self._files("delete", name=name, config=config), f"deleting {name}"
            )
        except GeminiEmbedError as exc:
            logger.debug("Could not delete batch input file %s: %s", name, exc)
