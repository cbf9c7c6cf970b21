"""The job record and its persistence as JSON in the object store (a restart loses nothing).

Object layout, all under ``jobs/<id>/`` so that one delete_prefix removes a job:
``job.json``, ``upload``, ``audio.wav``, ``transcript.json``, ``konspekt.json``, ``out/<name>``.
"""

from __future__ import annotations

import collections
import itertools
import logging
import re
import secrets
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from konspekt.errors import NotFound
from konspekt.storage import ObjectStore
from konspekt_gateway.notes import Notice

log = logging.getLogger(__name__)

PREFIX = "jobs/"
RECORD = "job.json"
#: Files a user can download, as the renderer names them.
DOWNLOADS = (
    "konspekt.docx",
    "konspekt.txt",
    "konspekt.md",
    "transcript.txt",
    "transcript.srt",
    "transcript.vtt",
    "transcript.json",
)
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
#: Language hints speech recognition accepts: faster-whisper's language codes
#: (faster_whisper.tokenizer._LANGUAGE_CODES, 100 of them; a test keeps the two equal). The ASR
#: stage may still refuse one its model lacks (an English-only model takes only "en").
ASR_LANGUAGES = frozenset(
    {
        *("af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy"),
        *("da", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw"),
        *("he", "hi", "hr", "ht", "hu", "hy", "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn"),
        *("ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn", "mr", "ms", "mt"),
        *("my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si"),
        *("sk", "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl"),
        *("tr", "tt", "uk", "ur", "uz", "vi", "yi", "yo", "zh", "yue"),
    }
)

Style = Literal["meeting", "lecture"]
#: What a run of the job does: every stage for an upload, or the summarizer and the renderer
#: again from the stored transcript (``POST …/resummarize``).
RunKind = Literal["upload", "resummarize"]


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


class ModelUsage(BaseModel):
    """What the summarizer's model spent on the konspekt."""

    model: str = ""
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    #: what one pass over the transcript costs at the rates measured in these calls
    one_pass_seconds: float = 0.0


class PastRun(BaseModel):
    """An earlier run of the job's stages, kept in the record when the konspekt is written again."""

    run: RunKind = "upload"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    state: JobState = JobState.DONE
    error: str = ""
    failed_stage: str = ""
    #: the error as data, like the job's error_notice (None in a record from before it)
    error_notice: Notice | None = None
    style: Style = "meeting"
    konspekt_language: str = ""
    instruction: str = ""
    #: seconds and tries of each stage that ran (one that did not run is not there)
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    attempts: dict[str, int] = Field(default_factory=dict)
    model_usage: ModelUsage | None = None
    konspekt_version: int = 1


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
    #: message and error as data (code and args: konspekt_gateway.notes), when they are notes
    message_notice: Notice | None = None
    error_notice: Notice | None = None

    media: MediaFacts | None = None
    audio_duration: float = 0.0
    detected_language: str = ""
    no_speech: bool = False
    warnings: list[str] = Field(default_factory=list)
    #: the warnings as data, one for each (a record from before notices has none)
    notices: list[Notice] = Field(default_factory=list)
    #: Stored objects by kind: "upload", "audio", "transcript", "konspekt" and the download names.
    files: dict[str, str] = Field(default_factory=dict)
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    model_usage: ModelUsage | None = None
    attempts: dict[str, int] = Field(default_factory=dict)
    #: 1 as the summarizer wrote it; each edit (PUT …/konspekt) adds one.
    konspekt_version: int = 1
    edited_at: datetime | None = None
    #: the language the konspekt is asked in (ISO 639-1); "" = the transcript's
    konspekt_language: str = ""
    #: the person's wish the konspekt was (last) asked with; "" = none
    instruction: str = Field("", max_length=500)
    #: what the current (or last) run does; stage_seconds, attempts and model_usage are its
    run: RunKind = "upload"
    #: the runs before it, oldest first
    runs: list[PastRun] = Field(default_factory=list)
    resummarized_at: datetime | None = None

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


class FairQueue:
    """Jobs waiting for a worker, served fairly across owners (start-time fair queueing).

    Each job gets a virtual start tag when it is queued: one more than its owner's previous
    job (waiting, or the last one started), and never less than the tag of the job started last
    (``now``). The job with the lowest tag (then the earliest queued) starts next. One owner's
    jobs keep their order; an owner with nothing waiting enters at ``now``, so its job starts
    before the next job of an owner who already has many waiting (60 jobs of one owner delay
    another owner's job by at most the one that is running), and owners with many jobs take
    turns (round-robin).
    """

    def __init__(self) -> None:
        #: Per owner, its waiting jobs as (tag, sequence, job id), in tag order.
        self._owners: dict[str, collections.deque[tuple[int, int, str]]] = {}
        self._owner_of: dict[str, str] = {}
        #: Tag of each owner's job started last (only while it can still matter: >= now).
        self._started: dict[str, int] = {}
        self._now = 0
        self._seq = itertools.count()
        self._positions: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self._owner_of)

    def __bool__(self) -> bool:
        return bool(self._owner_of)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._owner_of

    def __iter__(self) -> Iterator[str]:
        """Job ids in the order they would start."""
        return iter(self.order())

    def append(self, job_id: str, owner: str) -> None:
        if job_id in self._owner_of:
            return
        waiting = self._owners.setdefault(owner, collections.deque())
        previous = waiting[-1][0] if waiting else self._started.get(owner, self._now - 1)
        tag = max(self._now, previous + 1)
        waiting.append((tag, next(self._seq), job_id))
        self._owner_of[job_id] = owner
        self._positions = None

    def popleft(self) -> str:
        """The job to start next (IndexError when none waits)."""
        if not self._owners:
            raise IndexError("no job is waiting")
        owner = min(self._owners, key=lambda o: self._owners[o][0][:2])
        waiting = self._owners[owner]
        tag, _seq, job_id = waiting.popleft()
        if not waiting:
            del self._owners[owner]
        del self._owner_of[job_id]
        self._now = max(self._now, tag)
        self._started[owner] = tag
        if len(self._started) > 2 * len(self._owners) + 16:  # forget what no longer matters
            self._started = {o: t for o, t in self._started.items() if t >= self._now}
        self._positions = None
        return job_id

    def remove(self, job_id: str) -> bool:
        owner = self._owner_of.pop(job_id, None)
        if owner is None:
            return False
        waiting = self._owners[owner]
        for item in waiting:
            if item[2] == job_id:
                waiting.remove(item)
                break
        if not waiting:
            del self._owners[owner]
        self._positions = None
        return True

    def order(self) -> list[str]:
        items = sorted(item for waiting in self._owners.values() for item in waiting)
        return [job_id for _tag, _seq, job_id in items]

    def position(self, job_id: str) -> int | None:
        """1-based place in the order jobs would start (None when not waiting). Computed once
        per change of the queue, so listing every job stays cheap."""
        if self._positions is None:
            self._positions = {job_id: index for index, job_id in enumerate(self.order(), 1)}
        return self._positions.get(job_id)

    def owned(self, owner: str) -> int:
        """How many jobs of ``owner`` wait."""
        return len(self._owners.get(owner, ()))
