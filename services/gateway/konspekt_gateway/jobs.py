"""The job record and its persistence as JSON in the object store (a restart loses nothing).

Object layout, all under ``jobs/<id>/`` so that one delete_prefix removes a job:
``job.json``, ``upload``, ``audio.wav``, ``transcript.json``, ``konspekt.json``, ``out/<name>``.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from konspekt.errors import NotFound
from konspekt.storage import ObjectStore

log = logging.getLogger(__name__)

PREFIX = "jobs/"
RECORD = "job.json"
#: Files a user can download, as the renderer names them.
DOWNLOADS = (
    "konspekt.docx",
    "konspekt.txt",
    "transcript.txt",
    "transcript.srt",
    "transcript.vtt",
    "transcript.json",
)
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

Style = Literal["meeting", "lecture"]


class JobState(StrEnum):
    QUEUED = "queued"
    EXTRACTING_AUDIO = "extracting_audio"
    TRANSCRIBING = "transcribing"
    SUMMARIZING = "summarizing"
    RENDERING = "rendering"
    DONE = "done"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_job_id() -> str:
    """128 random bits (unguessable; access is also limited to the job's owner)."""
    return secrets.token_urlsafe(16)


def valid_job_id(job_id: str) -> bool:
    return bool(_JOB_ID.match(job_id))


def job_key(job_id: str, name: str) -> str:
    return f"{PREFIX}{job_id}/{name}"


def clean_filename(name: str, default: str = "upload") -> str:
    """The uploaded file's name for display and download names: path parts and control
    characters removed, everything else (Cyrillic, spaces) kept."""
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"))
    name = " ".join(name.split()).strip(" .")
    return name[:255] or default


class MediaFacts(BaseModel):
    duration: float = 0.0
    container: str = ""
    has_audio: bool = False
    has_video: bool = False
    audio_codec: str = ""
    video_codec: str = ""


class Job(BaseModel):
    id: str = Field(default_factory=new_job_id)
    owner: str | None = None
    filename: str = "upload"
    size: int = 0
    content_type: str = "application/octet-stream"
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    language: str = Field("", description="language hint, empty = auto-detect")
    callback_url: str = Field("", description="POSTed the job's JSON when it ends")
    style: Style = "meeting"

    state: JobState = JobState.QUEUED
    progress: float = Field(0.0, ge=0.0, le=1.0, description="of the current stage")
    stage_started_at: datetime | None = None
    message: str = ""
    error: str = ""
    failed_stage: str = ""

    media: MediaFacts | None = None
    audio_duration: float = 0.0
    detected_language: str = ""
    no_speech: bool = False
    warnings: list[str] = Field(default_factory=list)
    #: Stored objects by kind: "upload", "audio", "transcript", "konspekt" and the download names.
    files: dict[str, str] = Field(default_factory=dict)
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    attempts: dict[str, int] = Field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def stem(self) -> str:
        """The original name without its extension, for download names."""
        stem, dot, _ext = self.filename.rpartition(".")
        return stem if dot and stem else self.filename

    @property
    def downloads(self) -> list[str]:
        return [name for name in DOWNLOADS if name in self.files]

    def key(self, name: str) -> str:
        return job_key(self.id, name)

    def touch(self) -> None:
        self.updated_at = utcnow()


class JobStore:
    """Job records as ``jobs/<id>/job.json``. Blocking (object store): call from a thread."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def save(self, job: Job) -> None:
        data = job.model_dump_json(indent=1).encode("utf-8")
        self.store.put_bytes(job.key(RECORD), data, "application/json")

    def load(self, job_id: str) -> Job | None:
        if not valid_job_id(job_id):
            return None
        try:
            data = self.store.get_bytes(job_key(job_id, RECORD))
        except NotFound:
            return None
        return Job.model_validate_json(data)

    def list(self) -> list[Job]:
        """Every readable record, oldest first; unreadable ones are logged and skipped."""
        jobs = []
        for key in self.store.list_keys(PREFIX):
            if not key.endswith("/" + RECORD):
                continue
            try:
                jobs.append(Job.model_validate_json(self.store.get_bytes(key)))
            except (NotFound, ValidationError) as exc:
                log.warning("skipping job record %s: %s", key, exc)
        jobs.sort(key=lambda j: j.created_at)
        return jobs

    def delete(self, job_id: str) -> int:
        """Remove the record and every object of the job; returns how many objects went."""
        if not valid_job_id(job_id):
            return 0
        return self.store.delete_prefix(f"{PREFIX}{job_id}/")
