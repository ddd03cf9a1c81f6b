"""Thin aiohttp handlers of the Recordings API: read the request, call the pipeline, encode JSON.

Who is asking: with auth on, the user the auth middleware verified (``caller_id(request)``); with
auth off, nobody, and the API then shows the recordings that belong to nobody, i.e. the uploads
made without auth (their owner is None). Another user's recording answers 404 exactly like a
missing one, as tus does for another user's upload.

Errors are :class:`tusd_py.model.errors.TusError` values, which the error middleware turns into
``text/plain`` reasons like every other error of the server.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from tusd_py.http.gate import actor, caller_id
from tusd_py.http.requests import upload_url
from tusd_py.model.error_codes import ErrorCode
from tusd_py.model.errors import TusError, bad_request, not_found
from tusd_py.model.storage_errors import UploadNotFound
from tusd_py.model.upload import UPLOAD_ID, UploadInfo
from tusd_py.pipeline.service import Pipeline
from tusd_py.pipeline.store import InvalidCursor, RecordingNotFound
from tusd_py.recordings import params, schemas
from tusd_py.recordings.deletion import delete_recording
from tusd_py.uploads.cleanup import cleanup_failed
from tusd_py.uploads.operations import Uploads

JSON = "application/json"
_encoder = msgspec.json.Encoder()


def json_response(value: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=_encoder.encode(value), content_type=JSON)


def recording_not_found() -> TusError:
    return not_found("recording not found", ErrorCode.RECORDING_NOT_FOUND)


class RecordingsHandlers:
    def __init__(self, uploads: Uploads, pipeline: Pipeline, openapi_document: bytes) -> None:
        self.uploads = uploads
        self.service = uploads.service
        self.pipeline = pipeline
        self.openapi_document = openapi_document

    def _upload_id(self, request: web.Request) -> str:
        upload_id = request.match_info["upload_id"]
        if not UPLOAD_ID.fullmatch(upload_id):
            raise recording_not_found()
        return upload_id

    async def list_recordings(self, request: web.Request) -> web.Response:
        query = request.query
        statuses = params.parse_statuses(query.getall("status", []))
        limit = params.parse_limit(query.get("limit"))
        cursor = params.parse_cursor(query.get("cursor"))
        try:
            page = await self.pipeline.list_recordings(
                caller_id(request), statuses=statuses, limit=limit, cursor=cursor
            )
        except InvalidCursor:
            raise bad_request("invalid cursor; use the next_cursor of a previous page") from None
        items = [schemas.summary(rec, upload_url(request, self.service.config, rec.id)) for rec in page.items]
        return json_response(schemas.RecordingPage(items=items, next_cursor=page.next_cursor))

    async def get_recording(self, request: web.Request) -> web.Response:
        upload_id = self._upload_id(request)
        try:
            recording = await self.pipeline.get_recording(upload_id, caller_id(request))
        except RecordingNotFound:
            raise recording_not_found() from None
        info: UploadInfo | None
        try:
            info = await self.service.store.get_info(upload_id)
        except UploadNotFound:
            info = None
        body = schemas.detail(recording, upload_url(request, self.service.config, upload_id), info)
        return json_response(body)

    async def delete_recording(self, request: web.Request) -> web.Response:
        upload_id = self._upload_id(request)
        try:
            await delete_recording(self.uploads, actor(request), self.pipeline, upload_id)
        except RecordingNotFound:
            raise recording_not_found() from None
        return web.Response(status=204)

    async def queue(self, request: web.Request) -> web.Response:
        limit = params.parse_limit(request.query.get("limit"), params.DEFAULT_QUEUE_LIMIT)
        jobs = await self.pipeline.list_queue(caller_id(request), limit=limit)
        return json_response(schemas.Queue(jobs=[schemas.queued_job(job) for job in jobs]))

    async def sync(self, request: web.Request) -> web.Response:
        requeued = await self.pipeline.sync(caller_id(request))
        return json_response(schemas.SyncResult(requeued=requeued))

    async def stats(self, request: web.Request) -> web.Response:
        user = caller_id(request)
        totals = await self.pipeline.storage_stats(user)
        quotas = self.service.quotas
        quota = None
        if quotas is not None and user is not None:
            quota = schemas.quota(await quotas.usage(user), quotas.limits)
        return json_response(schemas.stats(totals, quota))

    async def cleanup(self, request: web.Request) -> web.Response:
        days = params.parse_days(request.query.get("older_than_days"), self.service.config.cleanup_failed_days)
        deleted = await cleanup_failed(self.uploads, actor(request), self.pipeline, days)
        return json_response(schemas.CleanupResult(deleted=deleted, older_than_days=days))

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=self.openapi_document, content_type=JSON)
