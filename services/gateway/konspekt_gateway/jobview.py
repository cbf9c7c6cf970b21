"""The job view (issue 14): ``/jobs/<id>``, a page of its own where the owner watches the
recording beside its transcript, and the two API routes it reads besides the job and konspekt:

- ``GET /api/v1/jobs/<id>/media``: the uploaded recording for the page's player, streamed from
  the object store with HTTP range requests (206 Partial Content, 416 for a range past the end);
- ``GET /api/v1/jobs/<id>/transcript``: the transcript as the ASR stage stored it (JSON).

All three check the owner exactly as the rest of the API does: another owner's job is a 404, as
for a job that does not exist."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from konspekt.storage import ObjectStore
from konspekt_gateway import i18n
from konspekt_gateway.i18n import LANG_COOKIE, LocalizedError
from konspekt_gateway.jobs import Job
from konspekt_gateway.media import MEDIA_CSP, RangeNotSatisfiable, parse_range, playable_type, player_kind
from konspekt_gateway.views import API, ErrorOut
from konspekt_gateway.web import TEXTS, link_base

FindJob = Callable[[Request, str], Awaitable[Job]]
StoreOf = Callable[[Request], ObjectStore]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        401: "malformed bearer token",
        404: "no such job for this owner",
        409: "not ready yet",
        416: "the range starts past the end of the recording (Content-Range says its size)",
        503: "the object store is down",
    }.items()
}


#: What the media route sends: the upload's video or audio type, or octet-stream when neither
#: its type nor its name says which.
_MEDIA_CONTENT = {
    kind: {"schema": {"type": "string", "format": "binary"}}
    for kind in ("video/*", "audio/*", "application/octet-stream")
}


def install_job_view(
    app: FastAPI, templates: Jinja2Templates, public_url: str, find: FindJob, store_of: StoreOf
) -> None:
    base = link_base(public_url)

    @app.get(
        f"{API}/jobs/{{job_id}}/media",
        tags=["jobs"],
        response_class=StreamingResponse,
        responses={
            **_ERRORS,
            200: {"description": "the whole recording", "content": _MEDIA_CONTENT},
            206: {
                "description": "the bytes the Range header asked for (Content-Range)",
                "content": _MEDIA_CONTENT,
            },
        },
    )
    async def get_media(request: Request, job_id: str) -> Response:
        """The uploaded recording, for a player: `Range: bytes=first-last` (or `first-`, or
        `-suffix`) gives 206 with Content-Range; a range starting past the end gives 416 with
        `Content-Range: bytes */<size>`; several ranges or a malformed header give the whole
        file (200). Always sent as a video or audio type (or octet-stream), never as a page."""
        job = await find(request, job_id)
        key = job.files.get("upload")
        if not key:  # a record without its upload (it was being deleted)
            raise LocalizedError(404, "not_found", "job_not_found", job_id=job_id[:64])
        store = store_of(request)
        size = await asyncio.to_thread(store.size, key)
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Disposition": "inline",
            "Content-Security-Policy": MEDIA_CSP,
            "Cache-Control": "private, max-age=3600",
        }
        try:
            wanted = parse_range(request.headers.get("range"), size)
        except RangeNotSatisfiable:
            error = LocalizedError(416, "range_not_satisfiable", size=size)
            error.headers.update({"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})
            raise error from None
        media_type = playable_type(job.content_type, job.filename)
        if wanted is None:
            chunks: Iterator[bytes] = (
                await asyncio.to_thread(store.iter_range, key, 0, size) if size else iter(())
            )
            headers["Content-Length"] = str(size)
            return StreamingResponse(chunks, media_type=media_type, headers=headers)
        chunks = await asyncio.to_thread(store.iter_range, key, wanted.start, wanted.length)
        headers["Content-Length"] = str(wanted.length)
        headers["Content-Range"] = wanted.content_range(size)
        return StreamingResponse(chunks, status_code=206, media_type=media_type, headers=headers)

    @app.get(f"{API}/jobs/{{job_id}}/transcript", tags=["jobs"], responses=_ERRORS)
    async def get_transcript(request: Request, job_id: str) -> Response:
        """The transcript as JSON, once recognised: `language`, `duration` and `segments`, each
        with `index`, `start` and `end` (seconds) and `text`."""
        job = await find(request, job_id)
        key = job.files.get("transcript")
        if not key:
            raise LocalizedError(409, "not_ready", "transcript_not_ready", state=job.state.value)
        data = await asyncio.to_thread(store_of(request).get_bytes, key)
        return Response(data, media_type="application/json")

    @app.get("/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    async def job_page(request: Request, job_id: str, lang: str | None = None) -> HTMLResponse:
        chosen = lang if lang in i18n.LANGUAGES else None
        language = i18n.pick_language(
            request.headers.get("accept-language"), chosen or request.cookies.get(LANG_COOKIE)
        )
        job = await find(request, job_id)  # 404 for anyone but the owner
        has_video = job.media.has_video if job.media is not None else None
        response = templates.TemplateResponse(
            request,
            "job.html",
            {
                "lang": language,
                "t": TEXTS[language],
                "base": base,
                "filename": job.filename,
                "kind": player_kind(job.content_type, job.filename, has_video),
                "media": f"{base}{API}/jobs/{job.id}/media",
                "config": {
                    "lang": language,
                    "texts": TEXTS[language],
                    "job": f"{base}{API}/jobs/{job.id}",
                },
            },
        )
        response.headers["Cache-Control"] = "no-store"
        if chosen:
            response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 24 * 3600, samesite="lax")
        return response
