"""The gateway's one list of stages: what each is called, the job state while it runs, what it
leaves in a job's files, and the defaults of its settings (address, calls in flight, deadline).

Settings, the pipeline, the job view, the page's texts and the metrics all read this registry;
a stage is added or renamed here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from konspekt_gateway.jobs import JobState

Stage = Literal["audio", "asr", "summarizer", "renderer"]
Lang = Literal["en", "ru"]


@dataclass(frozen=True)
class StageInfo:
    """One gRPC stage as the gateway drives it."""

    #: The stage's id: settings' prefix (``<id>_target``), metric label, ``failed_stage``.
    id: Stage
    #: The job's state while the stage runs.
    state: JobState
    #: ``Job.files`` name of what it produces; empty for the renderer (its files are the downloads).
    output: str
    #: Its name in the pipeline's English messages and failure reasons ("the {name} stage …").
    reason_name: str
    #: Its name for people, in English and Russian (the page, the API's ``stages[].name``).
    name_en: str
    name_ru: str
    #: Defaults of the gateway's settings for it (``KONSPEKT_GATEWAY_<ID>_…``).
    default_target: str
    default_concurrency: int
    default_deadline_base: float
    default_deadline_per_second: float

    def name(self, lang: Lang) -> str:
        return self.name_ru if lang == "ru" else self.name_en


AUDIO = StageInfo(
    id="audio",
    state=JobState.EXTRACTING_AUDIO,
    output="audio",
    reason_name="audio extraction",
    name_en="audio extraction",
    name_ru="извлечение звука",
    default_target="127.0.0.1:50051",
    default_concurrency=2,
    default_deadline_base=60.0,
    default_deadline_per_second=0.5,
)
ASR = StageInfo(
    id="asr",
    state=JobState.TRANSCRIBING,
    output="transcript",
    reason_name="speech recognition",
    name_en="speech recognition",
    name_ru="распознавание речи",
    default_target="127.0.0.1:50052",
    default_concurrency=1,
    default_deadline_base=120.0,
    default_deadline_per_second=2.0,
)
SUMMARIZER = StageInfo(
    id="summarizer",
    state=JobState.SUMMARIZING,
    output="konspekt",
    reason_name="summarizer",
    name_en="summarizing",
    name_ru="составление конспекта",
    default_target="127.0.0.1:50053",
    default_concurrency=1,
    default_deadline_base=300.0,
    default_deadline_per_second=1.0,
)
RENDERER = StageInfo(
    id="renderer",
    state=JobState.RENDERING,
    output="",
    reason_name="document rendering",
    name_en="document rendering",
    name_ru="подготовка документов",
    default_target="127.0.0.1:50054",
    default_concurrency=2,
    default_deadline_base=60.0,
    default_deadline_per_second=0.0,
)

#: Every stage, in the order a job passes them.
REGISTRY: tuple[StageInfo, ...] = (AUDIO, ASR, SUMMARIZER, RENDERER)
#: Their ids, in that order.
STAGES: tuple[Stage, ...] = tuple(s.id for s in REGISTRY)
BY_ID: dict[str, StageInfo] = {s.id: s for s in REGISTRY}


def get(stage: str) -> StageInfo | None:
    """The stage with this id, None for an unknown one."""
    return BY_ID.get(stage)


def info(stage: Stage) -> StageInfo:
    return BY_ID[stage]


def running_in(state: JobState) -> StageInfo | None:
    """The stage that runs while a job is in ``state`` (None: queued, done, failed)."""
    return next((s for s in REGISTRY if s.state is state), None)


def by_reason_name(name: str) -> StageInfo | None:
    """The stage whose name the pipeline wrote into an English message."""
    return next((s for s in REGISTRY if s.reason_name == name), None)
