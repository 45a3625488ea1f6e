"""Files API routes: resumable upload, get, list, delete and download.

POST /upload/v1beta/files (X-Goog-Upload-Command: start | upload, finalize)
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from . import _batches
from ._protocol import (
    ApiError,
    bad_request,
    pick,
)
from ._service import ServiceBase, json_response
from ._state import (
    FileRecord,
    rfc3339_now,
)

__all__ = ["FileRoutes"]


class FileRoutes(ServiceBase):
    """Files API routes: resumable upload, get, list, delete and download."""

    def _file_json(self, request: web.Request, f: FileRecord, ver: str) -> dict[str, Any]:
        generated = f.id in self.state.generated_files
        return _batches.file_json(f, self._base(request), ver, generated=generated)

    async def upload_file(self, request: web.Request, m: dict[str, str]) -> web.Response:
        ver = m["ver"]
        command = request.headers.get("X-Goog-Upload-Command", "").lower()
        upload_id = request.query.get("upload_id")
        if upload_id is None:
            if "start" not in command:
                raise bad_request("Only resumable uploads (X-Goog-Upload-Command: start) work.")
            body = await self._body(request)
            meta = pick(body, "file") or {}
            size_header = request.headers.get("X-Goog-Upload-Header-Content-Length")
            size = pick(meta, "sizeBytes") if size_header is None else size_header
            mime = request.headers.get("X-Goog-Upload-Header-Content-Type") or pick(
                meta, "mimeType", "application/octet-stream"
            )
            if str(mime).split(";", 1)[0].strip().lower() in self.state.refused_upload_mime_types:
                raise bad_request(f"Unsupported MIME type: {mime}")
            name = pick(meta, "name")
            file_id = name.removeprefix("files/") if isinstance(name, str) else None
            f = FileRecord(
                id=file_id or self.state.next_id("f"),
                display_name=pick(meta, "displayName"),
                mime_type=mime,
                data=bytearray(),
                expected_size=int(size) if size is not None else None,
                create_time=rfc3339_now(),
            )
            uid = self.state.next_id("up") + secrets.token_hex(8)
            with self.state.lock:
                if f.id in self.state.files:
                    raise ApiError(409, f"File files/{f.id} already exists.")
                self.state.files[f.id] = f
                self.state.uploads[uid] = f.id
            query = f"upload_id={uid}&upload_protocol=resumable"
            url = f"{self._base(request)}/upload/{ver}/files?{query}"
            return json_response(
                {}, headers={"X-Goog-Upload-URL": url, "X-Goog-Upload-Status": "active"}
            )
        with self.state.lock:
            file_id = self.state.uploads.get(upload_id)
        if file_id is None:
            raise ApiError(404, "Upload session not found.")
        f = self._file(file_id)
        if command == "query":
            return web.Response(
                headers={
                    "X-Goog-Upload-Status": "final" if f.complete else "active",
                    "X-Goog-Upload-Size-Received": str(len(f.data)),
                }
            )
        if "upload" not in command:
            raise bad_request(f"Unsupported X-Goog-Upload-Command: {command!r}.")
        offset = int(request.headers.get("X-Goog-Upload-Offset", "0"))
        if offset != len(f.data):
            raise bad_request(
                f"Upload offset {offset} does not match {len(f.data)} bytes received."
            )
        f.data.extend(await request.read())
        if "finalize" not in command:
            return web.Response(headers={"X-Goog-Upload-Status": "active"})
        f.complete = True
        mime = f.mime_type.lower()
        if any(mime.startswith(p) for p in self.state.processing_mime_prefixes):
            f.processing_left = self.state.processing_polls
        with self.state.lock:
            self.state.uploads.pop(upload_id, None)
        return json_response(
            {"file": self._file_json(request, f, ver)}, headers={"X-Goog-Upload-Status": "final"}
        )

    async def get_file(self, request: web.Request, m: dict[str, str]) -> web.Response:
        f = self._file(m["id"])
        out = self._file_json(request, f, m["ver"])
        if f.complete and f.processing_left > 0:
            f.processing_left -= 1  # each GET brings it closer to ACTIVE
        return json_response(out)

    async def list_files(self, request: web.Request, m: dict[str, str]) -> web.Response:
        with self.state.lock:
            files = list(self.state.files.values())
        page, token = self._page(request, files)
        out: dict[str, Any] = {"files": [self._file_json(request, f, m["ver"]) for f in page]}
        if token:
            out["nextPageToken"] = token
        return json_response(out)

    async def delete_file(self, request: web.Request, m: dict[str, str]) -> web.Response:
        self._file(m["id"])
        with self.state.lock:
            self.state.files.pop(m["id"], None)
            self.state.generated_files.discard(m["id"])
        return json_response({})

    async def download(self, request: web.Request, m: dict[str, str]) -> web.Response:
        f = self._file(m["id"])
        return web.Response(body=bytes(f.data), content_type="application/octet-stream")
