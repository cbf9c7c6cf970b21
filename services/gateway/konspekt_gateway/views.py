"""The public JSON shapes of the API (also its OpenAPI schema) and the job view builder."""

from __future__ import annotations

import urllib.parse
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from konspekt_gateway import i18n, notes
from konspekt_gateway.jobs import Job, JobState, MediaFacts, ModelUsage, PastRun, RunKind, Style, utcnow
from konspekt_gateway.stages import REGISTRY, RENDERER, SUMMARIZER, Stage

API = "/api/v1"


class ErrorBody(BaseModel):
    code: str = Field(description="stable, machine-readable: not_found, too_large, invalid_request, …")
    message: str = Field(description="for people, in the request's language (Accept-Language or cookie)")


class ErrorOut(BaseModel):
    error: ErrorBody


class StageOut(BaseModel):
    stage: Stage
    name: str = Field(description="the stage's name in the request's language")
    status: Literal["pending", "running", "done", "failed"]
    progress: float | None = Field(None, description="0..1 while running")
    seconds: float | None = Field(None, description="time spent in the stage so far")


class JobLinks(BaseModel):
    self: str
    events: str
    konspekt: str | None
    transcript: str | None = Field(None, description="the transcript as JSON, once recognised")
    media: str = Field(description="the recording, for a player (range requests)")
    page: str = Field(description="the job's own web page (player, transcript, konspekt)")
    files: dict[str, str]


class PastRunOut(PastRun):
    error_notice: notes.Notice | None = Field(None, description="error as data, like the job's error_notice")
    error_text: str = Field("", description="why it failed, in the request's language")
    failed_stage_text: str = Field("", description="the stage it failed in, in the request's language")


class JobOut(BaseModel):
    id: str = Field(description="128 random bits, URL-safe")
    short_id: str
    filename: str = Field(description="the original file name")
    size: int
    content_type: str
    created_at: datetime = Field(description="upload time (UTC)")
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime = Field(description="when the upload and every result are deleted")
    language: str = Field(description="language hint, empty = detect")
    style: Style
    state: JobState
    status: JobState = Field(description="same as state (kept for older clients)")
    status_text: str = Field(description="the state in the request's language")
    progress: float = Field(description="of the running stage, 0..1")
    eta_seconds: float | None = Field(description="estimated time left in the running stage")
    queue_position: int | None = Field(description="1-based place in the queue while waiting")
    message: str
    message_text: str
    message_notice: notes.Notice | None = Field(
        None, description="message as data: a code (konspekt.notices), its args and the English text"
    )
    error: str = Field(description="why it failed (English)")
    error_notice: notes.Notice | None = Field(None, description="error as data, like message_notice")
    error_text: str = Field(description="why it failed, in the request's language")
    failed_stage: str
    failed_stage_text: str
    stages: list[StageOut]
    media: MediaFacts | None
    audio_duration: float
    detected_language: str
    no_speech: bool
    warnings: list[str]
    warnings_text: list[str]
    notices: list[notes.Notice] = Field(default_factory=list, description="the warnings as data, one each")
    files: list[str] = Field(description="downloadable file names, when done")
    stage_seconds: dict[str, float]
    model_usage: ModelUsage | None = Field(None, description="what the summarizer's model spent")
    attempts: dict[str, int]
    konspekt_version: int = Field(1, description="1 as written by the summarizer; +1 per edit")
    edited_at: datetime | None = Field(None, description="when the konspekt was last edited")
    konspekt_language: str = Field(
        "", description="language the konspekt is asked in; empty = the transcript's"
    )
    instruction: str = Field("", description="the wish the konspekt was (last) asked with")
    run: RunKind = Field(
        "upload",
        description="what the current or last run does: every stage (upload), or only the summarizer "
        "and the renderer from the stored transcript (resummarize); stage_seconds, attempts and "
        "model_usage are this run's (a stage that did not run is not in them)",
    )
    runs: list[PastRunOut] = Field(default_factory=list, description="the runs before, oldest first")
    resummarized_at: datetime | None = Field(None, description="when the konspekt was last asked for again")
    callback_url: str | None
    links: JobLinks


class JobList(BaseModel):
    jobs: list[JobOut]


class Point(BaseModel):
    text: str = ""
    at: float = Field(0.0, description="seconds into the recording")
    segment_index: int = -1


class ActionItem(BaseModel):
    task: str = ""
    owner: str = ""
    due: str = ""
    at: float = 0.0
    segment_index: int = -1
    owner_unconfirmed: bool = Field(False, description="the transcript does not say the owner as a name")


class KonspektOut(BaseModel):
    language: str = ""
    title: str = ""
    summary: str = ""
    key_points: list[Point] = Field(default_factory=list)
    decisions: list[Point] = Field(default_factory=list)
    action_items: list[ActionItem] = Field(default_factory=list)
    style: str | int = ""


def _past_run(run: PastRun, lang: i18n.Lang) -> dict[str, Any]:
    """An earlier run, its error in ``lang`` as the job's own is (``error_text``)."""
    data = run.model_dump(mode="json")
    data.update(
        error_text=i18n.reason(notes.stored(run.error, run.error_notice), lang),
        failed_stage_text=i18n.stage_text(run.failed_stage, lang) if run.failed_stage else "",
    )
    return data


def _stages(job: Job, lang: i18n.Lang) -> list[dict[str, Any]]:
    out = []
    # a konspekt asked for again: its summarizer and renderer are to do, whatever is stored
    again = job.run == "resummarize" and not job.state.terminal
    for info in REGISTRY:
        stage = info.id
        produced = bool(job.downloads) if info is RENDERER else info.output in job.files
        if again and info in (SUMMARIZER, RENDERER):
            produced = info is SUMMARIZER and "konspekt.next" in job.files
        status = "pending"
        progress = None
        if job.state is JobState.FAILED and job.failed_stage == stage:
            status = "failed"
        elif job.state is JobState.DONE or produced:
            status = "done"
        elif job.state is info.state:
            status, progress = "running", job.progress
        seconds = job.stage_seconds.get(stage)
        if status == "running" and job.stage_started_at is not None:
            seconds = (utcnow() - job.stage_started_at).total_seconds()
        out.append(
            {
                "stage": stage,
                "name": i18n.stage_text(stage, lang),
                "status": status,
                "progress": progress,
                "seconds": None if seconds is None else round(seconds, 1),
            }
        )
    return out


def eta_seconds(job: Job) -> float | None:
    """Time left in the running stage at its rate so far (None until it can be told)."""
    if job.state.terminal or job.state is JobState.QUEUED or job.stage_started_at is None:
        return None
    if job.progress < 0.02:
        return None
    elapsed = (utcnow() - job.stage_started_at).total_seconds()
    return round(max(elapsed * (1.0 - job.progress) / job.progress, 0.0), 1)


def job_view(
    job: Job, position: int | None, lang: i18n.Lang = "en", *, retention: timedelta
) -> dict[str, Any]:
    """The public view of a job: no object keys or owner, links instead. ``retention``: the
    gateway's setting, after which the reaper deletes the job (``expires_at``)."""
    base = f"{API}/jobs/{job.id}"
    message_text = i18n.progress(notes.stored(job.message, job.message_notice), lang)
    data = job.model_dump(mode="json", exclude={"files", "owner", "stage_started_at"})
    data.update(
        short_id=job.short_id,
        status=job.state.value,
        status_text=i18n.state_text(job.state.value, lang),
        expires_at=(job.created_at + retention).isoformat().replace("+00:00", "Z"),
        eta_seconds=eta_seconds(job),
        queue_position=position,
        message_text=message_text,
        error_text=i18n.reason(notes.stored(job.error, job.error_notice), lang),
        runs=[_past_run(run, lang) for run in job.runs],
        failed_stage_text=i18n.stage_text(job.failed_stage, lang) if job.failed_stage else "",
        stages=_stages(job, lang),
        warnings_text=[i18n.reason(w, lang) for w in notes.warnings(job)],
        files=job.downloads,
        callback_url=job.callback_url or None,
        links={
            "self": base,
            "events": f"{base}/events",
            "konspekt": f"{base}/konspekt" if "konspekt" in job.files else None,
            "transcript": f"{base}/transcript" if "transcript" in job.files else None,
            "media": f"{base}/media",
            "page": f"/jobs/{job.id}",
            "files": {name: f"{base}/files/{urllib.parse.quote(name)}" for name in job.downloads},
        },
    )
    return data
