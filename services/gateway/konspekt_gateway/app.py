"""The FastAPI app: streaming uploads, job status, downloads and the web page."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from konspekt.logs import job_id_var
from konspekt.metrics import serve_metrics
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_gateway import callbacks, i18n
from konspekt_gateway import metrics as gateway_metrics
from konspekt_gateway.auth import Keys, OwnerMiddleware, Signer, forget_stored_secret, load_secret
from konspekt_gateway.downloads import MEDIA_TYPES, content_disposition, download_name, media_type
from konspekt_gateway.edits import install_konspekt_edit
from konspekt_gateway.i18n import LANG_COOKIE, LocalizedError
from konspekt_gateway.jobs import (
    ASR_LANGUAGES,
    DOWNLOADS,
    Job,
    JobStore,
    Style,
    clean_filename,
    new_job_id,
    valid_job_id,
)
from konspekt_gateway.jobview import install_job_view
from konspekt_gateway.pipeline import Orchestrator, StageClients
from konspekt_gateway.reaper import Reaper
from konspekt_gateway.resummarize import install_resummarize
from konspekt_gateway.settings import GatewaySettings
from konspekt_gateway.uploads import (
    RETRY_JOBS,
    RETRY_STREAMS,
    RETRY_UPLOADS,
    FormFile,
    OwnedStream,
    OwnerLimit,
    Pace,
    store_stream,
    too_large,
)
from konspekt_gateway.views import API, ErrorOut, JobList, JobOut, KonspektOut, job_view
from konspekt_gateway.web import SECURITY_HEADERS, TEXTS, install_web, link_base

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent
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
    #: Uploads beyond max_concurrent_uploads wait here (their bodies unread) for a free slot.
    waiting_uploads: int = field(default=0)
    upload_slots: asyncio.Semaphore = field(init=False)
    #: Per owner: uploads under way (waiting for a slot or streaming), open event streams.
    owner_uploads: OwnerLimit = field(init=False)
    owner_streams: OwnerLimit = field(init=False)

    def __post_init__(self) -> None:
        self.upload_slots = asyncio.Semaphore(self.settings.max_concurrent_uploads)
        self.owner_uploads = OwnerLimit(self.settings.owner_max_uploads, "too_many_uploads", RETRY_UPLOADS)
        self.owner_streams = OwnerLimit(
            self.settings.owner_max_event_streams, "too_many_streams", RETRY_STREAMS
        )


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}, **extra}, status_code=status)


def create_app(settings: GatewaySettings | None = None, s3: S3Settings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    s3 = s3 or S3Settings()
    keys = Keys()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = ObjectStore(s3)
        # the lifecycle rule (whole days) is the backstop; the reaper deletes at the hour
        await asyncio.to_thread(store.ensure_bucket, settings.expire_days)
        started = datetime.now(UTC)
        # the cookie secret comes from the setting or its file, never from the store (an old copy
        # there is deleted); uploads a killed gateway left unfinished are aborted after a grace
        secret = load_secret(settings.secret_key.get_secret_value(), settings.secret_key_file)
        keys.signer = Signer(secret)
        await asyncio.to_thread(forget_stored_secret, store)
        dead_uploads = asyncio.create_task(
            _abort_dead_uploads(store, started, settings.dead_upload_grace_seconds)
        )
        jobs = JobStore(store)
        clients = StageClients(settings)
        callback_key = callbacks.signing_key(settings, secret)
        orchestrator = Orchestrator(settings, store, jobs, clients, callback_key=callback_key)
        log.info("%s", callbacks.describe(settings, bool(settings.callback_secret.get_secret_value())))
        executor = ThreadPoolExecutor(settings.max_concurrent_uploads, thread_name_prefix="konspekt-upload")
        await orchestrator.start()
        reaper = Reaper(settings, store, orchestrator)
        reaper.start()
        app.state.reaper = reaper
        app.state.gateway = Gateway(settings, store, jobs, clients, orchestrator, executor)
        app.state.drain = orchestrator.drain
        gateway_metrics.watch(orchestrator)
        metrics = serve_metrics(settings.host, settings.metrics_port)
        log.info("gateway ready: bucket %s at %s", s3.bucket, s3.endpoint)
        try:
            yield
        finally:
            gateway_metrics.forget(orchestrator)
            if metrics is not None:
                metrics.stop()
            dead_uploads.cancel()
            await reaper.stop()
            await orchestrator.stop()
            await clients.close()
            executor.shutdown(wait=False, cancel_futures=True)
            log.info("gateway stopped; unfinished jobs resume on the next start")

    app = FastAPI(
        title="konspekt gateway",
        version="0.2.0",
        lifespan=lifespan,
        # /docs is web.install_web's (Swagger UI from the gateway's own files, no inline script)
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        description=(
            "Upload a recording, follow its job, download the konspekt and transcript.\n\n"
            "**Who sees what.** Every job belongs to an owner and is visible only to it; anyone "
            "else gets 404. Programs send `Authorization: Bearer <token>` (a secret string of "
            "their choice, 16+ characters; the owner is a hash of it). Without a token the first "
            "response sets a signed `konspekt_owner` cookie: keep it (browsers do) to stay the "
            "same owner.\n\n"
            '**Errors** are `{"error": {"code", "message"}}`, the message in the language '
            "of `Accept-Language` (English or Russian) or of the `konspekt_lang` cookie."
        ),
    )
    app.add_middleware(OwnerMiddleware, keys=keys)
    app.add_middleware(gateway_metrics.HttpMetrics)
    app.mount("/static", StaticFiles(directory=PACKAGE / "static"), name="static")
    templates = Jinja2Templates(directory=PACKAGE / "templates")
    install_web(app, settings.public_url, templates)  # security headers on every response, /docs
    _add_error_handlers(app)

    def gw(request: Request) -> Gateway:
        gateway: Gateway = request.app.state.gateway
        return gateway

    def owner(request: Request) -> str:
        who = str(getattr(request.state, "owner", ""))
        if not who:
            raise ApiError(401, "unauthorized")
        return who

    async def find(request: Request, job_id: str) -> Job:
        """The caller's job; someone else's is reported exactly like a missing one."""
        who = owner(request)
        job = await gw(request).orchestrator.find(job_id) if valid_job_id(job_id) else None
        if job is None or job.owner != who:
            raise ApiError(404, "not_found", "job_not_found", job_id=job_id[:64])
        return job

    def view(request: Request, job: Job) -> dict[str, Any]:
        gateway = gw(request)
        return job_view(
            job,
            gateway.orchestrator.position(job.id),
            i18n.request_language(request),
            retention=gateway.settings.retention,
        )

    # -- health -------------------------------------------------------------------------------
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"model": ErrorOut}})
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
            text = i18n.message("not_ready", i18n.request_language(request), down=", ".join(down))
            return error_response(503, "not_ready", text, **body)
        return JSONResponse(body)

    # -- jobs ---------------------------------------------------------------------------------
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

    # -- the job's own page, its recording and transcript (jobview.py) -------------------------
    install_job_view(app, templates, settings.public_url, find, lambda request: gw(request).store)
    install_konspekt_edit(app, find, lambda request: gw(request).orchestrator)
    install_resummarize(
        app, find, lambda request: gw(request).orchestrator, lambda request: gw(request).settings
    )

    # -- web page -----------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request, lang: str | None = None) -> HTMLResponse:
        chosen = lang if lang in i18n.LANGUAGES else None
        language = i18n.pick_language(
            request.headers.get("accept-language"), chosen or request.cookies.get(LANG_COOKIE)
        )
        base = link_base(settings.public_url)  # links: relative, or the public URL; never Host
        response = templates.TemplateResponse(
            request,
            "index.html",
            {
                "lang": language,
                "t": TEXTS[language],
                "base": base,
                "extensions": sorted(MEDIA_EXTENSIONS),
                # for static/page.js (data-config: the page has no inline script)
                "config": {
                    "lang": language,
                    "texts": TEXTS[language],
                    "api": base + API,
                    "max_upload_mb": gw(request).settings.max_upload_mb,
                    "extensions": sorted(MEDIA_EXTENSIONS),
                },
            },
        )
        if chosen:
            response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 24 * 3600, samesite="lax")
        return response

    return app


async def _abort_dead_uploads(store: ObjectStore, started: datetime, grace: float) -> None:
    """A gateway killed mid-upload (SIGKILL, out of memory) cannot abort its multipart upload, and
    its parts would stay until the reaper's retention. Once ``grace`` has passed, abort those
    begun before this start that got no part since: nobody writes them any more."""
    await asyncio.sleep(grace)
    try:
        aborted = await asyncio.to_thread(store.abort_dead_uploads, "jobs/", "upload", started)
    except StageError as exc:
        log.warning("could not look for uploads left unfinished before the start: %s", exc.message)
        return
    if aborted:
        log.info(
            "aborted %d upload(s) a stopped gateway left unfinished: %s", len(aborted), ", ".join(aborted)
        )


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


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is JSON: {"error": {"code": ..., "message": ...}}, in the request's language."""

    @app.exception_handler(LocalizedError)
    async def api_error(request: Request, exc: LocalizedError) -> JSONResponse:
        response = error_response(exc.status, exc.code, exc.text(i18n.request_language(request)))
        response.headers.update(exc.headers)  # Retry-After
        return response

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, "not_found", i18n.message("gone", i18n.request_language(request)))

    @app.exception_handler(StageError)
    async def store_error(request: Request, exc: StageError) -> JSONResponse:
        log.warning("object store error: %s", exc.message)
        return error_response(503, "unavailable", i18n.message("unavailable", i18n.request_language(request)))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        lang = i18n.request_language(request)
        if exc.status_code == 404:
            return error_response(404, "not_found", i18n.message("route_not_found", lang))
        if exc.status_code == 405:
            return error_response(405, "method_not_allowed", i18n.message("method_not_allowed", lang))
        return error_response(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        text = i18n.message(
            "invalid_request", i18n.request_language(request), where=where, detail=first.get("msg", "?")
        )
        return error_response(422, "invalid_request", text)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        response = error_response(500, "internal", i18n.message("internal", i18n.request_language(request)))
        response.headers.update(SECURITY_HEADERS)  # sent outside the middleware that adds them
        return response
