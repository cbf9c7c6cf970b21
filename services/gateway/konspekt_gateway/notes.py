"""A job's notes as data: what a stage or the gateway said (progress, a failure, warnings) kept
in the job record as code, args and English text (``Notice``), so a page says it in its own
language (``konspekt_gateway.i18n``) long after the stage sent it. ``konspekt.notices`` is the
registry of codes; a ``Note`` is a note in memory, a ``Notice`` the same in the record."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from konspekt.errors import details_of
from konspekt.notices import Note
from konspekt.v1 import common_pb2

if TYPE_CHECKING:
    from konspekt_gateway.jobs import Job


class Notice(BaseModel):
    """A note in a job record (common_pb2.Notice as JSON): ``code`` "" for plain text."""

    code: str = ""
    args: dict[str, str] = Field(default_factory=dict)
    text: str = ""
    parts: dict[str, Notice] = Field(default_factory=dict)

    @classmethod
    def of(cls, text: str) -> Notice:
        if not isinstance(text, Note):
            return cls(text=str(text))
        return cls(
            code=text.code,
            args=dict(text.args),
            text=str(text),
            parts={k: cls.of(v) for k, v in text.parts.items()},
        )

    @classmethod
    def from_proto(cls, notice: common_pb2.Notice) -> Notice:
        return cls(
            code=notice.code,
            args=dict(notice.args),
            text=notice.text,
            parts={k: cls.from_proto(v) for k, v in notice.parts.items()},
        )

    def note(self) -> Note | str:
        """The Note again (its text as stored); plain text for a notice without a code."""
        if not self.code:
            return self.text
        values: dict[str, str] = dict(self.args)
        values.update({k: v.note() for k, v in self.parts.items()})
        return Note.made(self.code, self.text, values)


def stored(text: str, notice: Notice | None) -> str:
    """``text`` (a record's message or error) as a Note when its notice is that text; else the
    text (a record written before notices, or a message set without one)."""
    if notice is not None and notice.code and notice.text == text:
        return notice.note()
    return text


def received(notice: common_pb2.Notice, text: str) -> str:
    """What a stage sent (a Progress' message and notice): a Note if the notice has a code."""
    return Notice.from_proto(notice).note() if notice.code and notice.text == text else text


def from_error(exc: object, details: str) -> str:
    """A failed stage call's message: a Note when its ErrorInfo names a code (``konspekt.errors``
    puts the note's code and args in the metadata), else the details as they are."""
    info = details_of(exc)
    if info is None or "code" not in info.metadata:
        return details
    args = {k: v for k, v in info.metadata.items() if k != "code"}
    return Note.made(info.metadata["code"], details, args)


def say(job: Job, message: str) -> None:
    """Set the job's progress message, with its notice when it is a Note."""
    job.message = str(message)
    job.message_notice = Notice.of(message) if isinstance(message, Note) else None


def warn(job: Job, warnings: Sequence[str], notices: Iterable[common_pb2.Notice] = ()) -> None:
    """Add warnings the job does not have yet; ``notices`` are a stage's (one per warning, in
    order), otherwise the warnings themselves are the notes."""
    sent = list(notices)
    for i, warning in enumerate(warnings):
        if warning in job.warnings:
            continue
        notice = (
            Notice.from_proto(sent[i]) if i < len(sent) and sent[i].text == warning else Notice.of(warning)
        )
        job.warnings.append(str(warning))
        job.notices.append(notice)


def warnings(job: Job) -> list[str]:
    """The job's warnings, each a Note when the record has its notice."""
    by_text = {n.text: n for n in job.notices}
    return [stored(w, by_text.get(w)) for w in job.warnings]
