"""The jobs API: upload a recording (streamed to the store), list, follow, delete a job and
download its results."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import ClientDisconnect

from konspekt.logs import job_id_var
from konspekt_gateway import callbacks
from konspekt_gateway.downloads import MEDIA_TYPES, content_disposition, download_name, media_type
from konspekt_gateway.i18n import LocalizedError
from konspekt_gateway.jobs import (
    ASR_LANGUAGES,
    DOWNLOADS,
    Job,
    Style,
    clean_filename,
    new_job_id,
)
from konspekt_gateway.settings import GatewaySettings
from konspekt_gateway.uploads import (
    RETRY_JOBS,
    FormFile,
    OwnedStream,
    Pace,
    store_stream,
    too_large,
)
from konspekt_gateway.views import API, ErrorOut, JobList, JobOut, KonspektOut

if TYPE_CHECKING:
    from konspekt_gateway.app import Gateway

log = logging.getLogger(__name__)

#: Room for multipart framing when comparing Content-Length with the file size limit.
_FORM_OVERHEAD = 1024 * 1024

ApiError = LocalizedError

#: File name endings taken as video or audio (besides a video/* or audio/* content type).
MEDIA_EXTENSIONS = frozenset(
    {
        *("mp4", "m4v", "mov", "mkv", "webm", "avi", "wmv", "flv", "mpg", "mpeg", "ts", "mts"),
        *("m2ts", "3gp", "ogv", "vob", "mp3", "wav", "m4a", "aac", "ogg", "oga", "opus", "flac"),
        *("wma", "amr", "weba", "mka", "aiff"),
    }
)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        400: "invalid request",
        401: "malformed bearer token",
        404: "no such job for this owner, or no such file",
        408: "the upload was too slow, or took too long",
        409: "not ready yet",
        413: "file too large",
        415: "not a video or audio file",
        422: "invalid parameter",
        429: "this owner's limit of uploads at once, jobs waiting or in progress, or event streams "
        "(see Retry-After)",
        503: "busy or the object store is down",
    }.items()
}
_SSE_KEEPALIVE_SECONDS = 15.0


def install_jobs(
    app: FastAPI,
    settings: GatewaySettings,
    gw: Callable[[Request], Gateway],
    owner: Callable[[Request], str],
    find: Callable[[Request, str], Awaitable[Job]],
    view: Callable[[Request, Job], dict[str, Any]],
) -> None:
    """The /api/v1/jobs routes; ``find`` answers 404 for another owner's job."""

    @app.post(
        f"{API}/jobs",
        status_code=201,
        tags=["jobs"],
        response_model=JobOut,
        responses=ERROR_RESPONSES,
        openapi_extra={
            "requestBody": {
                "description": "the file: the raw body, or multipart/form-data with a `file` field "
                "(and optional `language`, `style`, `callback_url` fields)",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    "video/*": {"schema": {"type": "string", "format": "binary"}},
                    "audio/*": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "language": {"type": "string"},
                                "style": {"type": "string", "enum": ["meeting", "lecture"]},
                                "callback_url": {"type": "string"},
                            },
                        }
                    },
                },
            }
        },
    )
    async def create_job(
        request: Request,
        filename: str = "",
        language: str = "",
        style: str = "meeting",
        callback_url: str = "",
    ) -> JSONResponse:
        """Upload a file and queue its job. Language: ISO 639-1 code or empty/`auto` (detect).
        `callback_url`: POSTed the job's JSON once it is done or failed."""
        who = owner(request)
        gateway = gw(request)
        limit = gateway.settings.max_upload_bytes
        content_type = request.headers.get("content-type", "")
        is_form = content_type.lower().startswith("multipart/form-data")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit + (_FORM_OVERHEAD if is_form else 0):
            raise too_large(gateway.settings.max_upload_mb)
        language, style = _options(language, style)
        callback_url = _callback(callback_url, gateway.settings)
        if not is_form:
            _check_type(filename, content_type)
        form = FormFile(content_type) if is_form else None  # 400 without a boundary
        if gateway.upload_slots.locked() and gateway.waiting_uploads >= gateway.settings.max_waiting_uploads:
            raise ApiError(503, "busy").retry_after(60)
        # one owner's share: its jobs waiting or in progress (uploads under way count), and its
        # uploads at once (429 and Retry-After past either)
        if gateway.orchestrator.unfinished(who) + gateway.owner_uploads[who] >= settings.owner_max_jobs:
            raise ApiError(429, "too_many_jobs", limit=settings.owner_max_jobs).retry_after(RETRY_JOBS)
        gateway.owner_uploads.take(who)  # given back when the upload has ended (below)
        gateway.waiting_uploads += 1
        try:
            await gateway.upload_slots.acquire()  # the client's body waits in its socket meanwhile
        except BaseException:
            gateway.owner_uploads.release(who)
            raise
        finally:
            gateway.waiting_uploads -= 1

        job_id = new_job_id()
        job_id_var.set(job_id)  # this request's log lines carry the new job's id
        key = f"jobs/{job_id}/upload"
        body = form.chunks(request.stream()) if form else request.stream()
        file_type = "application/octet-stream" if form else (content_type or "application/octet-stream")
        gateway.active_uploads += 1
        try:
            size = await store_stream(
                gateway.store,
                key,
                body,
                limit=limit,
                limit_mb=gateway.settings.max_upload_mb,
                content_type=file_type,
                executor=gateway.uploads,
                pace=Pace.of(gateway.settings),
            )
        except ClientDisconnect:
            log.info("client went away during an upload; nothing kept")
            raise ApiError(400, "disconnected") from None
        finally:
            gateway.active_uploads -= 1
            gateway.upload_slots.release()
            # no await between here and submit() below, so the job counts in unfinished() at
            # once (were one added, an owner could pass its job limit by its uploads at once)
            gateway.owner_uploads.release(who)
        if form:
            filename = form.filename or filename
            file_type = form.content_type
            try:
                language, style = _options(
                    form.fields.get("language", language), form.fields.get("style", style)
                )
                callback_url = _callback(form.fields.get("callback_url", callback_url), gateway.settings)
                _check_type(filename, file_type)
            except ApiError:
                await asyncio.to_thread(gateway.store.delete, key)
                raise
        job = Job(
            id=job_id,
            owner=who,
            filename=clean_filename(filename),
            size=size,
            content_type=file_type,
            language=language,
            style=style,
            callback_url=callback_url,
            files={"upload": key},
        )
        await gateway.orchestrator.submit(job)
        log.info("job %s: %s (%d bytes) queued", job.short_id, job.filename, size)
        return JSONResponse(view(request, job), status_code=201, headers={"Location": f"{API}/jobs/{job.id}"})

    @app.get(f"{API}/jobs", tags=["jobs"], response_model=JobList, responses=ERROR_RESPONSES)
    async def list_jobs(request: Request) -> JSONResponse:
        """The caller's jobs, newest first."""
        who = owner(request)
        jobs = [view(request, job) for job in gw(request).orchestrator.list() if job.owner == who]
        return JSONResponse({"jobs": jobs})

    @app.get(f"{API}/jobs/{{job_id}}", tags=["jobs"], response_model=JobOut, responses=ERROR_RESPONSES)
    async def get_job(request: Request, job_id: str) -> JSONResponse:
        return JSONResponse(view(request, await find(request, job_id)))

    @app.get(
        f"{API}/jobs/{{job_id}}/events",
        tags=["jobs"],
        response_class=StreamingResponse,
        responses={
            **ERROR_RESPONSES,
            200: {
                "description": "server-sent events: `event: job` with the job's JSON (JobOut) at "
                "every change, until it is done or failed; `event: deleted` if it is deleted",
                # One server-sent event (the shape OpenAPI 3.2 calls itemSchema).
                "content": {
                    "text/event-stream": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "event": {"type": "string", "enum": ["job", "deleted"]},
                                "data": {"type": "string", "description": "the job JSON (JobOut)"},
                            },
                            "required": ["event", "data"],
                        }
                    }
                },
            },
        },
    )
    async def job_events(request: Request, job_id: str) -> StreamingResponse:
        """Follow a job live (server-sent events); the stream ends when the job ends."""
        who = owner(request)
        await find(request, job_id)
        gateway = gw(request)
        orchestrator = gateway.orchestrator
        gateway.owner_streams.take(who)  # 429 past the owner's open streams; given back at the end

        async def events() -> AsyncIterator[str]:
            last = ""
            while True:
                tick = orchestrator.tick()
                job = orchestrator.get(job_id)
                if job is None or job.owner != who:
                    yield "event: deleted\ndata: {}\n\n"
                    return
                data = json.dumps(view(request, job), ensure_ascii=False)
                if data != last:
                    yield f"event: job\ndata: {data}\n\n"
                    last = data
                if job.state.terminal or orchestrator.draining:
                    return  # draining: the browser's EventSource reconnects, to another replica
                if not await orchestrator.wait_change(tick, _SSE_KEEPALIVE_SECONDS):
                    yield ": keep-alive\n\n"

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return OwnedStream(
            events(),
            on_close=lambda: gateway.owner_streams.release(who),
            media_type="text/event-stream",
            headers=headers,
        )

    @app.delete(f"{API}/jobs/{{job_id}}", status_code=204, tags=["jobs"], responses=ERROR_RESPONSES)
    async def delete_job(request: Request, job_id: str) -> Response:
        """Stop the job if it runs and remove it with every stored object."""
        await find(request, job_id)
        await gw(request).orchestrator.delete(job_id)
        return Response(status_code=204)

    @app.get(
        f"{API}/jobs/{{job_id}}/konspekt",
        tags=["jobs"],
        response_model=KonspektOut,
        responses=ERROR_RESPONSES,
    )
    async def get_konspekt(request: Request, job_id: str) -> Response:
        """The konspekt as JSON (title, summary, key points, decisions, action items; `at` =
        seconds into the recording)."""
        job = await find(request, job_id)
        key = job.files.get("konspekt")
        if not key:
            raise ApiError(409, "not_ready", "konspekt_not_ready", state=job.state.value)
        data = await asyncio.to_thread(gw(request).store.get_bytes, key)
        return Response(data, media_type="application/json")

    @app.get(
        f"{API}/jobs/{{job_id}}/files/{{name}}",
        tags=["jobs"],
        response_class=StreamingResponse,
        responses={
            **ERROR_RESPONSES,
            200: {
                "description": "the file, named after the original upload",
                "content": {
                    media: {
                        "schema": {"type": "object"}
                        if media == "application/json"  # transcript.json
                        else {"type": "string", "format": "binary"}
                    }
                    for media in dict.fromkeys(MEDIA_TYPES.values())
                },
            },
        },
    )
    async def get_file(request: Request, job_id: str, name: str) -> StreamingResponse:
        """Download one result: konspekt.docx, konspekt.txt, konspekt.md, transcript.txt/.srt/.vtt/.json."""
        job = await find(request, job_id)
        if name not in DOWNLOADS:
            raise ApiError(404, "not_found", "file_not_found", name=name[:100], names=", ".join(DOWNLOADS))
        key = job.files.get(name)
        if not key:
            raise ApiError(409, "not_ready", "file_not_ready", name=name, state=job.state.value)
        store = gw(request).store
        size = await asyncio.to_thread(store.size, key)
        chunks: Iterator[bytes] = store.iter_chunks(key)
        headers = {
            "Content-Disposition": content_disposition(download_name(job.stem, name)),
            "Content-Length": str(size),
        }
        return StreamingResponse(chunks, media_type=media_type(name), headers=headers)


def _check_type(filename: str, content_type: str) -> None:
    """Video or audio by name or content type; a nameless octet-stream is given the benefit of
    the doubt (the audio stage says clearly if it cannot read it)."""
    ctype = content_type.split(";")[0].strip().lower()
    name = clean_filename(filename, "")
    stem, dot, ext = name.rpartition(".")
    ext = ext.lower() if dot and stem else ""
    if ext in MEDIA_EXTENSIONS or ctype.startswith(("video/", "audio/")):
        return
    if not ext and ctype in ("", "application/octet-stream"):
        return
    raise ApiError(415, "unsupported_type", name=name or ctype)


def _callback(url: str, settings: GatewaySettings) -> str:
    """The callback_url to keep ("" for none), or 400 (callbacks.check_submitted says why)."""
    return callbacks.check_submitted(url, settings)


def _options(language: str, style: str) -> tuple[str, Style]:
    language = language.strip().lower()
    if language in ("auto", "-"):
        language = ""
    if language and language not in ASR_LANGUAGES:  # a code speech recognition knows
        raise ApiError(400, "invalid_request", "bad_language", value=language[:20])
    style = style.strip().lower() or "meeting"
    if style == "lecture":
        return language, "lecture"
    if style == "meeting":
        return language, "meeting"
    raise ApiError(400, "invalid_request", "bad_style", value=style[:20])
