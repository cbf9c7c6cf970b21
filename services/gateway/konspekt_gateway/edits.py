"""Editing a konspekt (issue 14, part 2): ``PUT /api/v1/jobs/<id>/konspekt``.

The body is the konspekt's JSON (what GET gives; ``language`` and ``style`` stay the job's).
It is validated (errors in the API's ``{"error": …}`` form, 422), the renderer stage makes the
DOCX, TXT and Markdown again from it, and only then is it stored: the previous ``konspekt.json``
is kept as ``konspekt.v<N>.json`` (listed in the record, deleted with the job at its retention),
the new one takes its place, the documents come from ``out/v<N+1>/`` and the job's
``konspekt_version`` counts up. A renderer that fails changes nothing (503)."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Annotated

import grpc
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from konspekt.errors import StageError
from konspekt.notices import Note
from konspekt.transcripts import konspekt_from_json, to_json
from konspekt.v1 import common_pb2, renderer_pb2
from konspekt_gateway import notes
from konspekt_gateway.i18n import LocalizedError
from konspekt_gateway.jobs import Job, JobState, utcnow
from konspekt_gateway.pipeline import Orchestrator
from konspekt_gateway.views import API, ErrorOut, KonspektOut

log = logging.getLogger(__name__)

FindJob = Callable[[Request, str], Awaitable[Job]]
OrchestratorOf = Callable[[Request], Orchestrator]

#: The documents made from the konspekt (the transcript's are not made again).
EDITED = {
    renderer_pb2.FORMAT_KONSPEKT_DOCX: "konspekt.docx",
    renderer_pb2.FORMAT_KONSPEKT_TXT: "konspekt.txt",
    renderer_pb2.FORMAT_KONSPEKT_MD: "konspekt.md",
}
MAX_ITEMS = 200
MAX_SECONDS = 7 * 24 * 3600.0


def _valid(value: str) -> str:
    """Text a konspekt can hold: JSON may carry lone surrogates ("\\ud87e") that no UTF-8 string,
    and so no protobuf message, can."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("holds a character that is not valid text (a lone surrogate)") from None
    return value


def _text(value: str) -> str:
    return _valid(value).strip()


def _one_line(value: str) -> str:
    return " ".join(_valid(value).split())


def _line(value: str) -> str:
    value = _one_line(value)
    if not value:
        raise ValueError("must not be empty")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a number of seconds")
    return value


Line = Annotated[str, Field(max_length=2000), AfterValidator(_line)]
Short = Annotated[str, Field(max_length=200), AfterValidator(_one_line)]
#: A segment's index as the konspekt stores it (int32); -1: tied to no segment.
SegmentIndex = Annotated[int, Field(ge=-1, le=2**31 - 1)]
Seconds = Annotated[float, Field(ge=0.0, le=MAX_SECONDS), AfterValidator(_finite)]


class PointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Line
    at: Seconds = 0.0
    segment_index: SegmentIndex = Field(-1, description="-1: tied to no segment (no time mark)")


class ActionItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: Line
    owner: Short = ""
    due: Short = ""
    at: Seconds = 0.0
    segment_index: SegmentIndex = -1
    owner_unconfirmed: bool = Field(False, description="false once a person has set the owner")


class KonspektIn(BaseModel):
    """The edited konspekt. Unknown fields are refused; `language` and `style` are accepted (the
    GET's JSON can be sent back as it is) but the job's own are kept."""

    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(max_length=300), AfterValidator(_one_line)] = ""
    summary: Annotated[str, Field(max_length=20000), AfterValidator(_text)] = ""
    key_points: list[PointIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    decisions: list[PointIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    action_items: list[ActionItemIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    language: str | None = Field(None, max_length=20)
    style: str | int | None = None


def _konspekt(edit: KonspektIn, stored: common_pb2.Konspekt) -> common_pb2.Konspekt:
    out = common_pb2.Konspekt(
        language=stored.language, style=stored.style, title=edit.title, summary=edit.summary
    )
    for target, items in ((out.key_points, edit.key_points), (out.decisions, edit.decisions)):
        for p in items:
            target.append(common_pb2.Point(text=p.text, at=p.at, segment_index=p.segment_index))
    for a in edit.action_items:
        out.action_items.append(
            common_pb2.ActionItem(
                task=a.task,
                owner=a.owner,
                due=a.due,
                at=a.at,
                segment_index=a.segment_index,
                owner_unconfirmed=a.owner_unconfirmed and bool(a.owner),
            )
        )
    return out


def install_konspekt_edit(app: FastAPI, find: FindJob, orchestrator_of: OrchestratorOf) -> None:
    locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
    errors: dict[int | str, dict[str, object]] = {
        code: {"model": ErrorOut, "description": text}
        for code, text in {
            400: "a body that is not JSON text (not UTF-8)",
            401: "malformed bearer token",
            404: "no such job for this owner",
            409: "the job is not done (there is no konspekt to edit yet)",
            422: "the konspekt is not valid: what and where",
            503: "the renderer or the object store failed; nothing was changed",
        }.items()
    }

    async def owned(request: Request, job_id: str) -> Job:
        """The owner check as a dependency: it runs before the body is validated, so anyone but
        the owner gets 404 whatever they send."""
        return await find(request, job_id)

    owned_job = Depends(owned)

    @app.put(f"{API}/jobs/{{job_id}}/konspekt", tags=["jobs"], response_model=KonspektOut, responses=errors)
    async def put_konspekt(request: Request, konspekt: KonspektIn, job: Job = owned_job) -> Response:
        """Replace the konspekt with an edited one: title, summary, key points, decisions and
        action items (owner, due). Saved as a new version of konspekt.json (the previous kept
        until the job expires); konspekt.docx, .txt and .md are made again by the renderer.
        Returns the konspekt as stored."""
        orchestrator = orchestrator_of(request)
        async with locks[job.id]:
            try:
                return await _save(orchestrator, job, konspekt)
            finally:
                if not locks[job.id].locked():
                    locks.pop(job.id, None)


async def _save(orchestrator: Orchestrator, job: Job, edit: KonspektIn) -> Response:
    store = orchestrator.store
    if job.state is not JobState.DONE or "konspekt" not in job.files or "transcript" not in job.files:
        raise LocalizedError(409, "not_ready", "konspekt_not_ready", state=job.state.value)
    current = await asyncio.to_thread(store.get_bytes, job.files["konspekt"])
    konspekt = _konspekt(edit, konspekt_from_json(current))
    version = job.konspekt_version + 1
    request = renderer_pb2.RenderRequest(
        konspekt=konspekt,
        transcript_ref=store.ref(job.files["transcript"]),
        formats=list(EDITED),
        output_prefix=store.ref(job.key(f"out/v{version}/")),
        source_name=job.filename,
    )
    deadline = orchestrator.settings.deadline("renderer", job.audio_duration)
    try:
        response = await orchestrator.clients.renderer.Render(
            request, timeout=deadline, metadata=orchestrator.clients.metadata(job.id)
        )
    except grpc.aio.AioRpcError as exc:
        log.warning("job %s: the edited konspekt was not rendered: %s", job.short_id, exc.details())
        # the renderer's note (code and args in its ErrorInfo), said in the page's language
        reason = notes.from_error(exc, str(exc.details() or exc.code().name))
        raise LocalizedError(503, "unavailable", "render_failed", reason=reason) from None
    made = {f.name: f.ref.key for f in response.files if f.name in EDITED.values() and f.ref.key}
    stray = [f.ref.key for f in response.files if f.ref.key and f.ref.key not in made.values()]
    if set(made) != set(EDITED.values()):
        raise LocalizedError(503, "unavailable", "render_failed", reason=Note("renderer_stored_nothing"))

    data = to_json(konspekt)
    previous = job.key(f"konspekt.v{job.konspekt_version}.json")
    try:
        await asyncio.to_thread(store.put_bytes, previous, current, "application/json")
        await asyncio.to_thread(store.put_bytes, job.files["konspekt"], data, "application/json")
    except StageError:
        raise LocalizedError(503, "unavailable", "unavailable") from None
    replaced = [job.files[name] for name in made if job.files.get(name) not in (None, made[name])]
    job.files[f"konspekt.v{job.konspekt_version}"] = previous
    job.files.update(made)
    job.konspekt_version = version
    job.edited_at = utcnow()
    job.touch()
    await asyncio.to_thread(orchestrator.jobstore.save, job)
    orchestrator.changed()
    for key in [*replaced, *stray]:  # the documents of the version before, and any extra
        try:
            await asyncio.to_thread(store.delete, key)
        except StageError as exc:
            log.info("job %s: %s stays until the job expires: %s", job.short_id, key, exc.message)
    log.info("job %s: konspekt edited (version %d)", job.short_id, version)
    return Response(data, media_type="application/json")
