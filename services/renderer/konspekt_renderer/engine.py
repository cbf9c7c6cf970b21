"""Renders a konspekt and its transcript into files: DOCX, TXT, Markdown, SRT, VTT, JSON.

Pure functions, no gRPC: each format is an entry of ``FORMATS`` (file name, content type,
``render(konspekt, transcript, source_name) -> bytes``). The konspekt's layout (labels in its
language, sections, time marks) is made once, in ``layout.digest``, for DOCX, TXT and Markdown.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import docx
from docx.document import Document as DocxDocument
from docx.oxml.ns import qn
from docx.shared import RGBColor

from konspekt.errors import InvalidInput
from konspekt.transcripts import to_json
from konspekt.v1 import common_pb2, renderer_pb2
from konspekt_renderer.layout import (
    LABELS,
    clean,
    clean_lines,
    digest,
    labels_for,
    language_code,
    media_duration,
    seconds,
)
from konspekt_renderer.markdown import MARKDOWN_TYPE, render_konspekt_md

Format = renderer_pb2.Format
FormatValue: TypeAlias = renderer_pb2.Format.ValueType
RenderFn = Callable[[common_pb2.Konspekt, common_pb2.Transcript, str], bytes]

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT_TYPE = "text/plain; charset=utf-8"
SRT_TYPE = "application/x-subrip"
VTT_TYPE = "text/vtt"
JSON_TYPE = "application/json"

_GREY = RGBColor(0x59, 0x59, 0x59)


# -- time stamps of the transcript formats ----------------------------------------------------
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
        FileFormat(Format.FORMAT_KONSPEKT_MD, "konspekt.md", MARKDOWN_TYPE, render_konspekt_md),
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
