"""Summarize again (issue 14, part 3): ``POST /api/v1/jobs/<id>/resummarize``.

A finished job's konspekt is written again from its stored transcript — no audio extraction, no
speech recognition — in another style (meeting / lecture), another language, and with a wish of
the person in their own words (at most 500 characters), which the summarizer gives the model as
the user's request after the transcript, never as its system prompt. The job runs again like any
other (queued, summarizing, rendering, done; its progress on the page and in the events), only
the summarizer and the renderer: the record's ``run`` is "resummarize" and its ``stage_seconds``
and ``attempts`` hold those two stages alone; the run before is kept in ``runs``. The new
konspekt replaces konspekt.json once its documents are made, the previous kept as
konspekt.v<N>.json, as an edit does (steps.StageSteps._resummarize)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from konspekt_gateway import i18n
from konspekt_gateway.i18n import LocalizedError
from konspekt_gateway.jobs import ASR_LANGUAGES, Job, Style
from konspekt_gateway.pipeline import Orchestrator
from konspekt_gateway.settings import GatewaySettings
from konspekt_gateway.views import API, ErrorOut, JobOut, job_view

FindJob = Callable[[Request, str], Awaitable[Job]]
OrchestratorOf = Callable[[Request], Orchestrator]
SettingsOf = Callable[[Request], GatewaySettings]

#: The longest wish, in characters (the summarizer stage refuses longer ones too).
MAX_INSTRUCTION = 500


def _language(value: str) -> str:
    value = value.strip().lower()
    if value in ("", "auto", "-"):
        return ""
    if value not in ASR_LANGUAGES:
        raise ValueError(
            f"{value!r} is not a language code (ISO 639-1, e.g. en, ru); empty = the transcript's"
        )
    return value


def _instruction(value: str) -> str:
    # lines kept (a list of wishes), control characters and blank lines not
    lines = ("".join(ch for ch in line if ch.isprintable()).strip() for line in value.splitlines())
    return "\n".join(line for line in lines if line)


class ResummarizeIn(BaseModel):
    """How to write the konspekt again. Every field may be left out."""

    model_config = ConfigDict(extra="forbid")
    style: Style | None = Field(None, description="meeting or lecture; left out: the job's")
    language: Annotated[str, Field(max_length=20), AfterValidator(_language)] = Field(
        "", description="ISO 639-1 code to write the konspekt in; empty or 'auto': the transcript's language"
    )
    instruction: Annotated[str, Field(max_length=MAX_INSTRUCTION), AfterValidator(_instruction)] = Field(
        "",
        description="a wish in your own words, e.g. 'focus on the budget' (at most 500 characters); "
        "the model gets it as your request after the transcript, never as its system prompt",
    )


def install_resummarize(
    app: FastAPI, find: FindJob, orchestrator_of: OrchestratorOf, settings_of: SettingsOf
) -> None:
    errors: dict[int | str, dict[str, object]] = {
        code: {"model": ErrorOut, "description": text}
        for code, text in {
            400: "a body that is not JSON text (not UTF-8)",
            401: "malformed bearer token",
            404: "no such job for this owner",
            409: "the job is still running, or it has no transcript",
            422: "a field is not valid: what and where",
            503: "the object store is down",
        }.items()
    }

    async def owned(request: Request, job_id: str) -> Job:
        """The owner check before the body is read: anyone else gets 404 whatever they send."""
        return await find(request, job_id)

    owned_job = Depends(owned)

    @app.post(
        f"{API}/jobs/{{job_id}}/resummarize",
        status_code=202,
        tags=["jobs"],
        response_model=JobOut,
        responses=errors,
    )
    async def resummarize(request: Request, body: ResummarizeIn, job: Job = owned_job) -> JSONResponse:
        """Write the konspekt again from the stored transcript (no new speech recognition): in
        another style or language, with your instruction. The job runs the summarizer and the
        renderer again and shows their progress like any other run (GET the job, or its events);
        when it is done, the new konspekt and its DOCX/TXT/MD are served and the previous
        konspekt is kept (konspekt_version counts up). Returns the job, queued (202)."""
        orchestrator = orchestrator_of(request)
        if not job.state.terminal:
            raise LocalizedError(409, "not_ready", "job_running", state=job.state.value)
        if "transcript" not in job.files:
            raise LocalizedError(409, "not_ready", "transcript_not_ready", state=job.state.value)
        await orchestrator.resummarize(job, body.style or job.style, body.language, body.instruction)
        view = job_view(
            job,
            orchestrator.position(job.id),
            i18n.request_language(request),
            retention=settings_of(request).retention,
        )
        return JSONResponse(view, status_code=202)
