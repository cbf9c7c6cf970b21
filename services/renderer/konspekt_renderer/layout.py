"""The konspekt laid out once, for every format that shows it (DOCX, TXT, Markdown): labels in
the konspekt's language (Russian or English; anything else falls back to English), cleaned
text, time marks, and the sections in their order (``digest``)."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from konspekt.v1 import common_pb2


# -- labels ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Labels:
    locale: str
    konspekt: str
    meeting: str
    lecture: str
    source: str
    duration: str
    created: str
    language: str
    summary: str
    key_points: str
    decisions: str
    action_items: str
    owner: str
    due: str
    unconfirmed: str  # after an owner the transcript does not say as a name
    none: str
    no_speech: str
    no_speech_transcript: str
    transcript: str
    languages: dict[str, str] = field(default_factory=dict)


LABELS: dict[str, Labels] = {
    "en": Labels(
        locale="en-US",
        konspekt="Konspekt",
        meeting="Meeting",
        lecture="Lecture",
        source="Source",
        duration="Duration",
        created="Created",
        language="Language",
        summary="Summary",
        key_points="Key points",
        decisions="Decisions",
        action_items="Action items",
        owner="owner",
        due="due",
        unconfirmed="unconfirmed",
        none="None recorded.",
        no_speech="No speech was detected in the recording, so there is nothing to summarize.",
        no_speech_transcript="No speech was detected in the recording.",
        transcript="Transcript",
        languages={"en": "English", "ru": "Russian"},
    ),
    "ru": Labels(
        locale="ru-RU",
        konspekt="Конспект",
        meeting="Встреча",
        lecture="Лекция",
        source="Источник",
        duration="Длительность",
        created="Создано",
        language="Язык",
        summary="Краткое содержание",
        key_points="Ключевые моменты",
        decisions="Решения",
        action_items="Задачи",
        owner="ответственный",
        due="срок",
        unconfirmed="не подтверждён",
        none="Не зафиксировано.",
        no_speech="В записи не обнаружено речи, поэтому конспект пуст.",
        no_speech_transcript="В записи не обнаружено речи.",
        transcript="Расшифровка",
        languages={"en": "английский", "ru": "русский"},
    ),
}


def language_code(*candidates: str) -> str:
    """First non-empty language tag, reduced to its primary subtag ("ru-RU" -> "ru")."""
    for tag in candidates:
        code = re.split(r"[-_]", tag.strip().lower(), maxsplit=1)[0]
        if code:
            return code
    return ""


def labels_for(code: str) -> Labels:
    return LABELS.get(code, LABELS["en"])


# -- text and time helpers -------------------------------------------------------------------
# Characters XML 1.0 (and so DOCX) cannot hold; whitespace controls are folded into spaces.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_SPACES = re.compile(r"\s+")


def clean(text: str) -> str:
    """One line of text: XML-safe, whitespace collapsed."""
    return _SPACES.sub(" ", _INVALID_XML.sub("", text)).strip()


def clean_lines(text: str) -> list[str]:
    return [line for line in (clean(part) for part in text.splitlines()) if line]


def seconds(value: float) -> float:
    """A usable time: NaN, infinities and negatives become 0."""
    return value if math.isfinite(value) and value > 0 else 0.0


def clock(value: float, hours: bool = False) -> str:
    """``mm:ss``, or ``h:mm:ss`` when ``hours`` or the value is an hour or more."""
    total = int(seconds(value))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if hours or h else f"{m:02d}:{s:02d}"


def media_duration(transcript: common_pb2.Transcript) -> float:
    end = max((seconds(seg.end) for seg in transcript.segments), default=0.0)
    return max(seconds(transcript.duration), end)


def has_speech(transcript: common_pb2.Transcript) -> bool:
    return any(clean(seg.text) for seg in transcript.segments)


# -- the konspekt, laid out once for DOCX and TXT ---------------------------------------------
@dataclass(frozen=True)
class Item:
    stamp: str  # "[12:34]" or "" when the item is tied to no segment
    text: str
    note: str = ""  # "— owner: Anna, due: Friday"


@dataclass(frozen=True)
class Section:
    heading: str
    paragraphs: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    #: Shown (saying "none") even when empty; otherwise left out of a lecture's konspekt.
    always: bool = True

    @property
    def empty(self) -> bool:
        return not self.paragraphs and not self.items


@dataclass(frozen=True)
class Digest:
    labels: Labels
    language: str
    title: str
    meta: str
    notice: str
    sections: list[Section]


def _stamp(at: float, segment_index: int, hours: bool) -> str:
    if segment_index < 0 or not math.isfinite(at):
        return ""
    return f"[{clock(at, hours)}]"


def _note(labels: Labels, owner: str, due: str, unconfirmed: bool = False) -> str:
    parts = []
    if owner:
        parts.append(f"{labels.owner}: {owner}" + (f" ({labels.unconfirmed})" if unconfirmed else ""))
    if due:
        parts.append(f"{labels.due}: {due}")
    if not parts:
        return ""
    text = ", ".join(parts)
    return f"— {text[0].upper()}{text[1:]}"


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def digest(konspekt: common_pb2.Konspekt, transcript: common_pb2.Transcript, source_name: str) -> Digest:
    language = language_code(konspekt.language, transcript.language)
    labels = labels_for(language)
    source = clean(source_name)
    duration = media_duration(transcript)
    times = [duration, *(p.at for p in konspekt.key_points), *(p.at for p in konspekt.decisions)]
    times += [a.at for a in konspekt.action_items]
    hours = any(seconds(t) >= 3600 for t in times)  # one clock format for every item

    title = clean(konspekt.title) or (f"{labels.konspekt}: {source}" if source else labels.konspekt)
    lecture = konspekt.style == common_pb2.STYLE_LECTURE
    meta = [labels.lecture if lecture else labels.meeting]
    if source:
        meta.append(f"{labels.source}: {source}")
    if duration > 0:
        meta.append(f"{labels.duration}: {clock(duration, hours)}")
    meta.append(f"{labels.created}: {_today().isoformat()}")

    def points(items: Iterable[common_pb2.Point]) -> list[Item]:
        return [Item(_stamp(p.at, p.segment_index, hours), text) for p in items if (text := clean(p.text))]

    actions = [
        Item(
            _stamp(a.at, a.segment_index, hours),
            text,
            _note(labels, clean(a.owner), clean(a.due), a.owner_unconfirmed),
        )
        for a in konspekt.action_items
        if (text := clean(a.task))
    ]
    summary = Section(labels.summary, paragraphs=clean_lines(konspekt.summary))
    sections = [
        summary,
        Section(labels.key_points, items=points(konspekt.key_points)),
        Section(labels.decisions, items=points(konspekt.decisions), always=not lecture),
        Section(labels.action_items, items=actions, always=not lecture),
    ]
    notice = ""
    if all(s.empty for s in sections) and not has_speech(transcript):
        notice, sections = labels.no_speech, []
    else:
        # A lecture rarely has decisions or tasks: such sections are left out rather than say "none".
        sections = [s for s in sections if s.always or not s.empty]
    return Digest(labels, language or "en", title, " · ".join(meta), notice, sections)
