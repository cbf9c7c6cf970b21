"""Renders a konspekt and its transcript into files: DOCX, TXT, SRT, VTT, JSON.

Pure functions, no gRPC: each format is an entry of ``FORMATS`` (file name, content type,
``render(konspekt, transcript, source_name) -> bytes``). Labels follow the konspekt's
language (Russian or English; anything else falls back to English labels).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import docx
from docx.document import Document as DocxDocument
from docx.oxml.ns import qn
from docx.shared import RGBColor

from konspekt.errors import InvalidInput
from konspekt.transcripts import to_json
from konspekt.v1 import common_pb2, renderer_pb2

Format = renderer_pb2.Format
FormatValue: TypeAlias = renderer_pb2.Format.ValueType
RenderFn = Callable[[common_pb2.Konspekt, common_pb2.Transcript, str], bytes]

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT_TYPE = "text/plain; charset=utf-8"
SRT_TYPE = "application/x-subrip"
VTT_TYPE = "text/vtt"
JSON_TYPE = "application/json"

_GREY = RGBColor(0x59, 0x59, 0x59)


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


def hms(value: float) -> str:
    """``HH:MM:SS`` (whole seconds) for the plain-text transcript."""
    total = int(seconds(value))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"


def cue_time(value: float, separator: str) -> str:
    """``HH:MM:SS,mmm`` (SRT, separator ",") or ``HH:MM:SS.mmm`` (VTT, separator ".")."""
    ms = round(seconds(value) * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


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


# -- konspekt renderers -----------------------------------------------------------------------
def _set_language(doc: DocxDocument, tag: str) -> None:
    """Proofing language of the whole document (docDefaults), so Word spell-checks Russian as Russian."""
    lang = doc.styles.element.find(f"{qn('w:docDefaults')}/{qn('w:rPrDefault')}/{qn('w:rPr')}/{qn('w:lang')}")
    if lang is not None:
        lang.set(qn("w:val"), tag)


def render_konspekt_docx(
    konspekt: common_pb2.Konspekt, transcript: common_pb2.Transcript, source_name: str
) -> bytes:
    d = digest(konspekt, transcript, source_name)
    labels = d.labels
    doc = docx.Document()
    tag = labels.locale if d.language in LABELS else d.language
    _set_language(doc, tag)

    now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    props = doc.core_properties
    props.title = d.title
    props.language = tag
    props.subject = clean(source_name)
    props.author = "konspekt"
    props.last_modified_by = "konspekt"
    props.comments = ""
    props.keywords = ""
    props.created = now
    props.modified = now
    props.revision = 1

    doc.add_heading(d.title, level=0)
    meta = doc.add_paragraph().add_run(d.meta)
    meta.italic = True
    meta.font.color.rgb = _GREY
    if d.notice:
        doc.add_paragraph(d.notice)
    for section in d.sections:
        doc.add_heading(section.heading, level=1)
        for text in section.paragraphs:
            doc.add_paragraph(text)
        for item in section.items:
            p = doc.add_paragraph(style="List Bullet")
            if item.stamp:
                stamp = p.add_run(item.stamp + " ")
                stamp.font.color.rgb = _GREY
            p.add_run(item.text)
            if item.note:
                p.add_run(" " + item.note).italic = True
        if section.empty:
            doc.add_paragraph().add_run(labels.none).italic = True
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def _underlined(text: str, char: str) -> list[str]:
    return [text, char * len(text)]


def render_konspekt_txt(
    konspekt: common_pb2.Konspekt, transcript: common_pb2.Transcript, source_name: str
) -> bytes:
    d = digest(konspekt, transcript, source_name)
    lines = [*_underlined(d.title, "="), d.meta, ""]
    if d.notice:
        lines += [d.notice, ""]
    for section in d.sections:
        lines += _underlined(section.heading, "-")
        for text in section.paragraphs:
            lines += [text, ""]
        for item in section.items:
            parts = [item.stamp, item.text, item.note]
            lines.append("- " + " ".join(part for part in parts if part))
        if section.empty:
            lines.append(d.labels.none)
        if lines[-1]:
            lines.append("")
    return ("\n".join(lines).rstrip("\n") + "\n").encode("utf-8")


# -- transcript renderers ---------------------------------------------------------------------
@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: list[str]


def cues(transcript: common_pb2.Transcript) -> list[Cue]:
    """Segments with text, times made sane; when there is no speech, one cue that says so."""
    out = []
    for seg in transcript.segments:
        lines = clean_lines(seg.text)
        if lines:
            start = seconds(seg.start)
            out.append(Cue(start, max(start, seconds(seg.end)), lines))
    if not out:
        labels = labels_for(language_code(transcript.language))
        out.append(Cue(0.0, media_duration(transcript) or 1.0, [labels.no_speech_transcript]))
    return out


def render_transcript_txt(
    konspekt: common_pb2.Konspekt, transcript: common_pb2.Transcript, source_name: str
) -> bytes:
    code = language_code(transcript.language, konspekt.language)
    labels = labels_for(code)
    lines = [labels.transcript]
    if source := clean(source_name):
        lines.append(f"{labels.source}: {source}")
    if code:
        name = labels.languages.get(code)
        lines.append(f"{labels.language}: {name} ({code})" if name else f"{labels.language}: {code}")
    lines += [f"{labels.duration}: {hms(media_duration(transcript))}", ""]
    body = [
        f"[{hms(seg.start)} → {hms(max(seconds(seg.start), seconds(seg.end)))}] {text}"
        for seg in transcript.segments
        if (text := clean(seg.text))
    ]
    lines += body or [labels.no_speech_transcript]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _srt_text(text: str) -> str:
    # A text line with "-->" could be taken for a timing line by lenient SRT parsers.
    return text.replace("-->", "->")


def render_srt(konspekt: common_pb2.Konspekt, transcript: common_pb2.Transcript, source_name: str) -> bytes:
    blocks = [
        f"{n}\n{cue_time(c.start, ',')} --> {cue_time(c.end, ',')}\n" + "\n".join(map(_srt_text, c.lines))
        for n, c in enumerate(cues(transcript), start=1)
    ]
    return ("\n\n".join(blocks) + "\n").encode("utf-8")


def _vtt_escape(text: str) -> str:
    # Also keeps "-->" out of cue text, which WebVTT forbids.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(konspekt: common_pb2.Konspekt, transcript: common_pb2.Transcript, source_name: str) -> bytes:
    blocks = ["WEBVTT"] + [
        f"{cue_time(c.start, '.')} --> {cue_time(c.end, '.')}\n" + "\n".join(map(_vtt_escape, c.lines))
        for c in cues(transcript)
    ]
    return ("\n\n".join(blocks) + "\n").encode("utf-8")


def render_transcript_json(
    konspekt: common_pb2.Konspekt, transcript: common_pb2.Transcript, source_name: str
) -> bytes:
    return to_json(transcript)


# -- registry ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileFormat:
    format: FormatValue
    name: str
    content_type: str
    render: RenderFn


FORMATS: dict[FormatValue, FileFormat] = {
    f.format: f
    for f in (
        FileFormat(Format.FORMAT_KONSPEKT_DOCX, "konspekt.docx", DOCX_TYPE, render_konspekt_docx),
        FileFormat(Format.FORMAT_KONSPEKT_TXT, "konspekt.txt", TEXT_TYPE, render_konspekt_txt),
        FileFormat(Format.FORMAT_TRANSCRIPT_TXT, "transcript.txt", TEXT_TYPE, render_transcript_txt),
        FileFormat(Format.FORMAT_TRANSCRIPT_SRT, "transcript.srt", SRT_TYPE, render_srt),
        FileFormat(Format.FORMAT_TRANSCRIPT_VTT, "transcript.vtt", VTT_TYPE, render_vtt),
        FileFormat(Format.FORMAT_TRANSCRIPT_JSON, "transcript.json", JSON_TYPE, render_transcript_json),
    )
}


@dataclass(frozen=True)
class RenderedFile:
    format: FormatValue
    name: str
    content_type: str
    data: bytes


def resolve_formats(formats: Sequence[int]) -> list[FileFormat]:
    """The requested formats in order, duplicates dropped; empty means all."""
    if not formats:
        return list(FORMATS.values())
    chosen: dict[int, FileFormat] = {}
    for value in formats:
        spec = FORMATS.get(Format.ValueType(value))
        if spec is None:
            raise InvalidInput(f"unknown output format {value}; expected one of {sorted(FORMATS)}")
        chosen.setdefault(value, spec)
    return list(chosen.values())


class Engine:
    """What the stage's Loader holds: nothing heavy, but rendering once checks python-docx works."""

    def render(
        self,
        konspekt: common_pb2.Konspekt,
        transcript: common_pb2.Transcript,
        formats: Sequence[int] = (),
        source_name: str = "",
    ) -> list[RenderedFile]:
        return [
            RenderedFile(
                spec.format, spec.name, spec.content_type, spec.render(konspekt, transcript, source_name)
            )
            for spec in resolve_formats(formats)
        ]


def load_engine() -> Engine:
    engine = Engine()
    engine.render(common_pb2.Konspekt(), common_pb2.Transcript(), [Format.FORMAT_KONSPEKT_DOCX])
    return engine
