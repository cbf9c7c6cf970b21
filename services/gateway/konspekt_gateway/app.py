"""The FastAPI app: streaming uploads, job status, downloads and the web page."""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from konspekt.errors import NotFound, StageError
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_gateway.downloads import content_disposition, download_name, media_type
from konspekt_gateway.jobs import (
    DOWNLOADS,
    Job,
    JobStore,
    Style,
    clean_filename,
    new_job_id,
    valid_job_id,
)
from konspekt_gateway.pipeline import Orchestrator, StageClients
from konspekt_gateway.settings import GatewaySettings
from konspekt_gateway.uploads import FormFile, UploadError, store_stream, too_large
from konspekt_gateway.web import TEXTS, pick_language

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent
API = "/api/v1"
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
#: Room for multipart framing when comparing Content-Length with the file size limit.
_FORM_OVERHEAD = 1024 * 1024


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Gateway:
    """What the lifespan builds and the endpoints use."""

    settings: GatewaySettings
    store: ObjectStore
    jobs: JobStore
    clients: StageClients
    orchestrator: Orchestrator
    uploads: ThreadPoolExecutor
    active_uploads: int = field(default=0)


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}, **extra}, status_code=status)


def create_app(settings: GatewaySettings | None = None, s3: S3Settings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    s3 = s3 or S3Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = ObjectStore(s3)
        await asyncio.to_thread(store.ensure_bucket, 1)  # the 24 h expiry rule
        jobs = JobStore(store)
        clients = StageClients(settings)
        orchestrator = Orchestrator(settings, store, jobs, clients)
        executor = ThreadPoolExecutor(settings.max_concurrent_uploads, thread_name_prefix="konspekt-upload")
        await orchestrator.start()
        app.state.gateway = Gateway(settings, store, jobs, clients, orchestrator, executor)
        log.info("gateway ready: bucket %s at %s", s3.bucket, s3.endpoint)
        try:
            yield
        finally:
            await orchestrator.stop()
            await clients.close()
            executor.shutdown(wait=False, cancel_futures=True)
            log.info("gateway stopped; unfinished jobs resume on the next start")

    app = FastAPI(title="konspekt gateway", version="0.1.0", lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=PACKAGE / "static"), name="static")
    templates = Jinja2Templates(directory=PACKAGE / "templates")
    _add_error_handlers(app)

    def gw(request: Request) -> Gateway:
        gateway: Gateway = request.app.state.gateway
        return gateway

    def find(request: Request, job_id: str) -> Job:
        job = gw(request).orchestrator.get(job_id) if valid_job_id(job_id) else None
        if job is None:
            raise ApiError(404, "not_found", f"there is no job {job_id!r}")
        return job

    def view(request: Request, job: Job) -> dict[str, Any]:
        return job_json(job, gw(request).orchestrator.position(job.id))

    # -- health -------------------------------------------------------------------------------
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        gateway = gw(request)
        store_ok, stages = await asyncio.gather(
            asyncio.to_thread(gateway.store.ping), gateway.clients.health()
        )
        down = [] if store_ok else ["object store"]
        down += [stage for stage, status in stages.items() if status != "SERVING"]
        body: dict[str, Any] = {
            "ready": not down,
            "store": "ok" if store_ok else "unreachable",
            "stages": stages,
        }
        if down:
            return error_response(503, "not_ready", "not ready: " + ", ".join(down) + " down", **body)
        return JSONResponse(body)

    # -- jobs ---------------------------------------------------------------------------------
    @app.post(f"{API}/jobs", status_code=201)
    async def create_job(
        request: Request, filename: str = "", language: str = "", style: str = "meeting"
    ) -> JSONResponse:
        """Upload a file: the raw request body, or multipart/form-data with a ``file`` field."""
        gateway = gw(request)
        limit = gateway.settings.max_upload_bytes
        content_type = request.headers.get("content-type", "")
        is_form = content_type.lower().startswith("multipart/form-data")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit + (_FORM_OVERHEAD if is_form else 0):
            raise too_large(gateway.settings.max_upload_mb)
        language, style = _options(language, style)
        if gateway.active_uploads >= gateway.settings.max_concurrent_uploads:
            raise ApiError(503, "busy", "too many uploads at once; try again in a minute")

        job_id = new_job_id()
        key = f"jobs/{job_id}/upload"
        form = FormFile(content_type) if is_form else None
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
            )
        except ClientDisconnect:
            log.info("client went away during an upload; nothing kept")
            return error_response(400, "disconnected", "the upload was interrupted")
        finally:
            gateway.active_uploads -= 1
        if form:
            filename = form.filename or filename
            file_type = form.content_type
            language, style = _options(form.fields.get("language", language), form.fields.get("style", style))
        job = Job(
            id=job_id,
            filename=clean_filename(filename),
            size=size,
            content_type=file_type,
            language=language,
            style=style,
            files={"upload": key},
        )
        await gateway.orchestrator.submit(job)
        log.info("job %s: %s (%d bytes) queued", job.short_id, job.filename, size)
        return JSONResponse(view(request, job), status_code=201, headers={"Location": f"{API}/jobs/{job.id}"})

    @app.get(f"{API}/jobs")
    async def list_jobs(request: Request) -> dict[str, Any]:
        return {"jobs": [view(request, job) for job in gw(request).orchestrator.list()]}

    @app.get(f"{API}/jobs/{{job_id}}")
    async def get_job(request: Request, job_id: str) -> dict[str, Any]:
        return view(request, find(request, job_id))

    @app.delete(f"{API}/jobs/{{job_id}}", status_code=204)
    async def delete_job(request: Request, job_id: str) -> Response:
        find(request, job_id)
        await gw(request).orchestrator.delete(job_id)
        return Response(status_code=204)

    @app.get(f"{API}/jobs/{{job_id}}/konspekt")
    async def get_konspekt(request: Request, job_id: str) -> Response:
        job = find(request, job_id)
        key = job.files.get("konspekt")
        if not key:
            raise ApiError(409, "not_ready", f"the konspekt is not ready yet (state: {job.state})")
        data = await asyncio.to_thread(gw(request).store.get_bytes, key)
        return Response(data, media_type="application/json")

    @app.get(f"{API}/jobs/{{job_id}}/files/{{name}}")
    async def get_file(request: Request, job_id: str, name: str) -> StreamingResponse:
        job = find(request, job_id)
        if name not in DOWNLOADS:
            raise ApiError(404, "not_found", f"unknown file {name!r}; one of: {', '.join(DOWNLOADS)}")
        key = job.files.get(name)
        if not key:
            raise ApiError(409, "not_ready", f"{name} is not ready yet (state: {job.state})")
        store = gw(request).store
        size = await asyncio.to_thread(store.size, key)
        chunks: Iterator[bytes] = store.iter_chunks(key)
        headers = {
            "Content-Disposition": content_disposition(download_name(job.stem, name)),
            "Content-Length": str(size),
        }
        return StreamingResponse(chunks, media_type=media_type(name), headers=headers)

    # -- web page -----------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request, lang: str | None = None) -> HTMLResponse:
        language = pick_language(request.headers.get("accept-language"), lang)
        return templates.TemplateResponse(
            request,
            "index.html",
            {
                "lang": language,
                "t": TEXTS[language],
                "api": API,
                "max_upload_mb": gw(request).settings.max_upload_mb,
            },
        )

    return app


def job_json(job: Job, position: int | None) -> dict[str, Any]:
    """The public view of a job: no object keys, links instead."""
    data = job.model_dump(mode="json", exclude={"files"})
    base = f"{API}/jobs/{job.id}"
    data.update(
        short_id=job.short_id,
        status=job.state.value,
        queue_position=position,
        files=job.downloads,
        links={
            "self": base,
            "konspekt": f"{base}/konspekt" if "konspekt" in job.files else None,
            "files": {name: f"{base}/files/{urllib.parse.quote(name)}" for name in job.downloads},
        },
    )
    return data


def _options(language: str, style: str) -> tuple[str, Style]:
    language = language.strip().lower()
    if language in ("auto", "-"):
        language = ""
    if language and not _LANGUAGE.match(language):
        raise ApiError(
            400, "invalid_request", f"language must be an ISO 639-1 code or empty, not {language!r}"
        )
    style = style.strip().lower() or "meeting"
    if style == "lecture":
        return language, "lecture"
    if style == "meeting":
        return language, "meeting"
    raise ApiError(400, "invalid_request", f"style must be meeting or lecture, not {style!r}")


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is JSON: {"error": {"code": ..., "message": ...}}."""

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(UploadError)
    async def upload_error(_request: Request, exc: UploadError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(NotFound)
    async def not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, "not_found", "the file is gone from the store (results expire after 24 h)")

    @app.exception_handler(StageError)
    async def store_error(_request: Request, exc: StageError) -> JSONResponse:
        log.warning("object store error: %s", exc.message)
        return error_response(503, "unavailable", "the object store is not available; try again later")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(422, "invalid_request", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def internal(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal", "internal error in the gateway; see its log")
