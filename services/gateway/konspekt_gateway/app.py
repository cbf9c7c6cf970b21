"""The FastAPI app: the lifespan (store, stages, orchestrator, reaper), health, the web page and
error handling; the jobs API is jobroutes.py, the job page jobview.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from konspekt.errors import NotFound, StageError
from konspekt.metrics import serve_metrics
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_gateway import callbacks, i18n
from konspekt_gateway import metrics as gateway_metrics
from konspekt_gateway.auth import Keys, OwnerMiddleware, Signer, forget_stored_secret, load_secret
from konspekt_gateway.edits import install_konspekt_edit
from konspekt_gateway.i18n import LANG_COOKIE, LocalizedError
from konspekt_gateway.jobroutes import MEDIA_EXTENSIONS, install_jobs
from konspekt_gateway.jobs import (
    Job,
    JobStore,
    valid_job_id,
)
from konspekt_gateway.jobview import install_job_view
from konspekt_gateway.pipeline import Orchestrator, StageClients
from konspekt_gateway.reaper import Reaper
from konspekt_gateway.resummarize import install_resummarize
from konspekt_gateway.settings import GatewaySettings
from konspekt_gateway.uploads import (
    RETRY_STREAMS,
    RETRY_UPLOADS,
    OwnerLimit,
)
from konspekt_gateway.views import API, ErrorOut, job_view
from konspekt_gateway.web import SECURITY_HEADERS, TEXTS, install_web, link_base

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent

ApiError = LocalizedError


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
    install_jobs(app, settings, gw, owner, find, view)

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
