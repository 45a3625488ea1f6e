"""Batch API routes (embeddings): create, get (advances the job), list, cancel, delete.

POST /v1/models/gemini-embedding-001:asyncBatchEmbedContent -> Operation; GET /v1/batches/ID
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from . import _batches
from ._protocol import (
    ApiError,
    bare_model,
    embedding_model_exists,
    not_found,
)
from ._service import CTX, ServiceBase, json_response
from ._state import (
    BatchJob,
)

__all__ = ["BatchRoutes"]


class BatchRoutes(ServiceBase):
    """Batch API routes (embeddings): create, get (advances the job), list, cancel, delete."""

    async def create_batch(self, request: web.Request, m: dict[str, str]) -> web.Response:
        body = await self._body(request)
        model, ver = m["model"], m["ver"]
        if not embedding_model_exists(model):
            raise not_found(model, ver, "asyncBatchEmbedContent")
        job = _batches.create_job(self.state, model=bare_model(model), body=body, api_version=ver)
        CTX.get().items = len(job.inputs)
        return json_response(_batches.operation_json(job))

    def _job(self, job_id: str) -> BatchJob:
        with self.state.lock:
            job = self.state.batches.get(job_id)
        if job is None:
            raise ApiError(404, "Requested entity was not found.")
        return job

    async def get_batch(self, request: web.Request, m: dict[str, str]) -> web.Response:
        job = self._job(m["id"])
        CTX.get().model = job.model
        encoder = self.settings.encoder
        kwargs: dict[str, Any] = {
            "encoder": encoder,
            "strict_length": self.settings.strict_length,
            "api_version": m["ver"],
        }
        if encoder is None:
            _batches.poll(self.state, job, **kwargs)
        else:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, lambda: _batches.poll(self.state, job, **kwargs))
        return json_response(_batches.operation_json(job))

    async def list_batches(self, request: web.Request, m: dict[str, str]) -> web.Response:
        with self.state.lock:
            jobs = list(self.state.batches.values())
        page, token = self._page(request, jobs)
        out: dict[str, Any] = {"operations": [_batches.operation_json(j) for j in page]}
        if token:
            out["nextPageToken"] = token
        return json_response(out)

    async def cancel_batch(self, request: web.Request, m: dict[str, str]) -> web.Response:
        _batches.cancel(self._job(m["id"]))
        return json_response({})

    async def delete_batch(self, request: web.Request, m: dict[str, str]) -> web.Response:
        self._job(m["id"])
        with self.state.lock:
            self.state.batches.pop(m["id"], None)
        return json_response({})
