"""Model-agnostic konspekt logic: prompt, JSON schema, validation, time -> segment mapping,
windowing of long transcripts. The engine only turns messages + schema into JSON text."""

from __future__ import annotations

import difflib
import itertools
import json
import logging
import math
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from konspekt.cli import fmt_time
from konspekt.errors import FailedPrecondition
from konspekt.v1 import common_pb2, summarizer_pb2
from konspekt_summarizer.dates import find_dates, is_date_word, number_of, pick_due
from konspekt_summarizer.engine import TEMPLATE_OVERHEAD, Completion, LLMEngine
from konspekt_summarizer.prompts import LECTURE_ORDER, MEETING_ORDER, Prompts, prompts_for
from konspekt_summarizer.settings import SummarizerSettings

log = logging.getLogger(__name__)

#: (fraction 0..1, short message); may raise to cancel the work.
ProgressFn = Callable[[float, str], None]

TITLE_MAX = 120
SUMMARY_MAX = 1200
TEXT_MAX = 300
NAME_MAX = 80
KEY_POINTS_MAX = 8
DECISIONS_MAX = 8
ACTION_ITEMS_MAX = 10
TIME_PATTERN = r"^[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?$"
#: Tokens kept free for the retry note appended to the prompt.
RETRY_RESERVE = 96
MERGE_MAX_TOKENS = 500
#: Windows overlap by up to 1/OVERLAP_SHARE of their budget, at most OVERLAP_MAX tokens.
#: A stretch of the recording this long (or this share of it, if longer) that no item came
#: from gets its own call for key points: small models read a long window's end and skip the
#: rest (the 1.5B left out 20 lecture minutes of a 60-minute test meeting).
GAP_SECONDS = 300.0
#: Fewer words than this are quoted, not summarized.
TOO_SHORT_WORDS = 10
#: A transcript of at most this many words is quoted as the summary when the checks left no
#: summary sentence and no item (the small models "summarize" JFK's 11 seconds with Jefferson).
QUOTE_WORDS = 80
GAP_SHARE = 0.15
GAPS_MAX = 4
GAP_SPAN_SECONDS = 600.0
GAP_POINTS_MAX = 4
GAP_MAX_TOKENS = 400
#: The transcript lines of one such call: a 1.5B on 2 cores reads ~30 tokens a second.
GAP_PROMPT_TOKENS = 1500
OVERLAP_SHARE = 10
OVERLAP_MAX = 300

# -- schema and validation ----------------------------------------------------------------------


def _string(max_length: int, min_length: int = 0) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "string", "maxLength": max_length}
    if min_length:
        spec["minLength"] = min_length
    return spec


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


_TIME = {"type": "string", "pattern": TIME_PATTERN}
#: No colon: the 1.5B wrote the line label ("01:02") into "due" instead of the deadline it had
#: just read; with a colon impossible it writes the deadline. (No quote or backslash either: a
#: pattern replaces the grammar's own string rule.)
DUE_PATTERN = r'^[^:"\\\n\r\t]{0,' + str(NAME_MAX) + "}$"
_DUE = {"type": "string", "maxLength": NAME_MAX, "pattern": DUE_PATTERN}


def konspekt_schema(style: int = common_pb2.STYLE_MEETING) -> dict[str, Any]:
    """Every string and array is bounded: small models otherwise repeat an item until max_tokens.

    Field order is style-dependent: what matters most comes first (decisions and action items
    for a meeting, key points for a lecture); the model writes the fields in schema order.
    """
    # "time" last: with "time" first the 1.5B wrote the owner into the task and mixed action
    # items into decisions. (Last, it sometimes writes a line label into "due": clean_field drops it.)
    point = _object({"text": _string(TEXT_MAX, 1), "time": _TIME})
    action = _object({"task": _string(TEXT_MAX, 1), "owner": _string(NAME_MAX), "due": _DUE, "time": _TIME})
    fields = {
        "title": _string(TITLE_MAX, 1),
        "summary": _string(SUMMARY_MAX, 1),
        "key_points": {"type": "array", "items": point, "maxItems": KEY_POINTS_MAX},
        "decisions": {"type": "array", "items": point, "maxItems": DECISIONS_MAX},
        "action_items": {"type": "array", "items": action, "maxItems": ACTION_ITEMS_MAX},
    }
    order = LECTURE_ORDER if style == common_pb2.STYLE_LECTURE else MEETING_ORDER
    return _object({name: fields[name] for name in order})


def missed_items_schema(lines: int) -> dict[str, Any]:
    """Decisions and action items for ``lines`` transcript lines the first answer left out."""
    full = konspekt_schema(common_pb2.STYLE_MEETING)["properties"]
    return _object(
        {
            name: {**full[name], "maxItems": min(lines, full[name]["maxItems"])}
            for name in ("decisions", "action_items")
        }
    )


def gap_schema() -> dict[str, Any]:
    """Key points for a stretch of the transcript that nothing in the konspekt came from."""
    full = konspekt_schema(common_pb2.STYLE_LECTURE)["properties"]
    return _object({"key_points": {**full["key_points"], "maxItems": GAP_POINTS_MAX}})


def title_summary_schema() -> dict[str, Any]:
    return _object({"title": _string(TITLE_MAX, 1), "summary": _string(SUMMARY_MAX, 1)})


def _clip(value: Any, limit: int) -> Any:
    return value.strip()[:limit] if isinstance(value, str) else value


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class PointOut(_Out):
    text: str
    time: str = ""

    @field_validator("text", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return _clip(v, TEXT_MAX)


class ActionOut(_Out):
    task: str
    owner: str = ""
    due: str = ""
    time: str = ""

    @field_validator("task", mode="before")
    @classmethod
    def _task(cls, v: Any) -> Any:
        return _clip(v, TEXT_MAX)

    @field_validator("owner", "due", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        return "" if v is None else _clip(v, NAME_MAX)


class TitleSummaryOut(_Out):
    title: str
    summary: str

    @field_validator("title", mode="before")
    @classmethod
    def _title(cls, v: Any) -> Any:
        return _clip(v, TITLE_MAX)

    @field_validator("summary", mode="before")
    @classmethod
    def _summary(cls, v: Any) -> Any:
        return _clip(v, SUMMARY_MAX)

    @field_validator("title", "summary")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v:
            raise ValueError("must not be empty")
        return v


class ItemsOut(_Out):
    key_points: list[PointOut] = []
    decisions: list[PointOut] = []
    action_items: list[ActionOut] = []

    @field_validator("key_points", "decisions", "action_items", mode="before")
    @classmethod
    def _lists(cls, v: Any, info: Any) -> Any:
        limits = {"key_points": KEY_POINTS_MAX, "decisions": DECISIONS_MAX, "action_items": ACTION_ITEMS_MAX}
        return v[: limits[info.field_name]] if isinstance(v, list) else v


class KonspektOut(TitleSummaryOut, ItemsOut):
    pass


M = TypeVar("M", bound=BaseModel)


def parse_answer(text: str, model: type[M]) -> M:
    """JSON text -> validated model; ValueError with a short reason otherwise."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'answer'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise ValueError(f"does not match the schema ({errors})") from exc


def salvage_json(text: str) -> Any:
    """A JSON object cut off mid-way (the token limit) -> its complete parts, closed; None if
    nothing complete is in it. Cuts at the last place (after a value or before a comma) where
    closing the open brackets gives valid JSON."""
    closers: list[str] = []
    in_string = escaped = False
    cuts: list[tuple[int, str]] = []
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            closers.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not closers:
                return None
            closers.pop()
            cuts.append((i + 1, "".join(reversed(closers))))
        elif ch == ",":
            cuts.append((i, "".join(reversed(closers))))
    for end, close in reversed(cuts):
        try:
            return json.loads(text[:end] + close)
        except json.JSONDecodeError:
            continue
    return None


def too_short_warning(words: int) -> str:
    return f"the transcript has only {words} word(s), too few to summarize: quoted instead"


def cut_off_warning(label: str, max_tokens: int) -> str:
    return f"{label}: the answer was cut off at {max_tokens} tokens; its complete items were kept"


def salvage_answer(text: str, model: type[M]) -> M | None:
    """The complete items of an answer cut off at the token limit. A missing summary (it is
    written last in a meeting) is made of the first key points and decisions, which are checked
    against the transcript like every item."""
    data = salvage_json(text)
    if not isinstance(data, dict):
        return None
    if issubclass(model, TitleSummaryOut) and not str(data.get("summary") or "").strip():
        said = [
            str(p.get("text", "")).strip().rstrip(".")
            for name in ("key_points", "decisions")
            for p in data.get(name) or []
            if isinstance(p, dict)
        ]
        data["summary"] = ". ".join(t for t in said[:3] if t) + "." if any(said) else ""
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


# -- transcript lines, windows ------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One transcript line as the model sees it: ``[mm:ss] text``."""

    index: int  # position in Transcript.segments
    label: str
    text: str

    def render(self) -> str:
        return f"[{self.label}] {self.text}"


def transcript_lines(transcript: common_pb2.Transcript) -> list[Line]:
    lines = []
    for i, seg in enumerate(transcript.segments):
        text = " ".join(seg.text.split())
        if text:
            lines.append(Line(i, fmt_time(seg.start), text))
    return lines


def split_windows(
    lines: Sequence[Line], count: Callable[[str], int], budget: int, overlap: int = 0
) -> list[list[Line]]:
    """Consecutive lines in windows of at most ``budget`` tokens, split on segment boundaries.

    Each window after the first starts with the last lines of the one before, up to ``overlap``
    tokens (never a whole window), so what is said across a boundary is read in context; items
    found twice are deduplicated later. A single line longer than the budget is cut into word
    chunks (same label), so nothing is lost.
    """
    if budget < 16:
        raise ValueError(f"window budget of {budget} tokens is too small")
    windows: list[list[Line]] = []
    current: list[tuple[Line, int]] = []
    used = 0
    for line in lines:
        for piece in _fit_line(line, count, budget):
            cost = count(piece.render()) + 1  # + the newline
            if current and used + cost > budget:
                windows.append([ln for ln, _ in current])
                carry: list[tuple[Line, int]] = []
                carried = 0
                for ln, c in reversed(current[1:]):  # never the whole window: it must move on
                    if carried + c > overlap or carried + c + cost > budget:
                        break
                    carry.insert(0, (ln, c))
                    carried += c
                current, used = carry, carried
            current.append((piece, cost))
            used += cost
    if current:
        windows.append([ln for ln, _ in current])
    return windows


def _fit_line(line: Line, count: Callable[[str], int], budget: int) -> list[Line]:
    if count(line.render()) + 1 <= budget:
        return [line]
    pieces: list[Line] = []
    words: list[str] = []
    for word in line.text.split():
        candidate = Line(line.index, line.label, " ".join([*words, word]))
        if words and count(candidate.render()) + 1 > budget:
            pieces.append(Line(line.index, line.label, " ".join(words)))
            words = [word]
        else:
            words.append(word)
    if words:
        pieces.append(Line(line.index, line.label, " ".join(words)))
    return pieces


# -- time -> segment ----------------------------------------------------------------------------

_TIME_RE = re.compile(r"^\[?\s*(?:(\d+):)?(\d{1,3}):(\d{1,2})(?:[.,]\d+)?\s*\]?$")
_SECONDS_RE = re.compile(r"^\d+(?:\.\d+)?$")
_WORD_RE = re.compile(r"\w+", re.UNICODE)


def parse_time(value: str) -> float | None:
    """ "mm:ss", "h:mm:ss", "[mm:ss]" or plain seconds -> seconds; None if unparseable."""
    value = value.strip()
    m = _TIME_RE.match(value)
    if m:
        hours = int(m.group(1) or 0)
        minutes, seconds = int(m.group(2)), int(m.group(3))
        if seconds >= 60:
            return None
        return float(hours * 3600 + minutes * 60 + seconds)
    if _SECONDS_RE.match(value):
        return float(value)
    return None


_STOPWORDS_TEXT = """
the and for that this with will was were are have has from about into then than what
что это как для его все так был была были она они оно или также там тут уже еще ещё
"""
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def _words(text: str) -> list[str]:
    return [w for w in _WORD_RE.findall(text.lower()) if (len(w) >= 3 or w.isdigit()) and w not in _STOPWORDS]


def _stems(text: str) -> set[str]:
    """Crude stems (first 5 letters) so that "Бориса" meets "Борис" and "budgets" meets "budget"."""
    return {w[:5] for w in _words(text)}


def _overlap(text: str, segment: common_pb2.Segment) -> int:
    return len(_stems(text) & _stems(segment.text))


def _best_by_overlap(text: str, segments: Sequence[common_pb2.Segment], candidates: Sequence[int]) -> int:
    """The candidate with most words in common with ``text``; the first one on a tie."""
    best, best_score = candidates[0], -1
    for i in candidates:
        score = _overlap(text, segments[i])
        if score > best_score:
            best, best_score = i, score
    return best


def _anchor(seconds: float, text: str, segments: Sequence[common_pb2.Segment]) -> int:
    labelled = [i for i, s in enumerate(segments) if int(s.start) == int(seconds)]
    if labelled:
        return _best_by_overlap(text, segments, labelled)
    containing = [i for i, s in enumerate(segments) if s.start <= seconds <= s.end]
    if containing:
        return _best_by_overlap(text, segments, containing)
    return min(range(len(segments)), key=lambda i: abs(segments[i].start - seconds))


def _refine(text: str, segments: Sequence[common_pb2.Segment], anchor: int) -> int:
    """Small models often cite the line next to the right one: a neighbour wins only if it
    shares clearly more words with the item than the cited line does."""
    best, best_score = anchor, _overlap(text, segments[anchor])
    for i in (anchor - 1, anchor + 1):
        if 0 <= i < len(segments):
            score = _overlap(text, segments[i])
            if score > best_score:
                best, best_score = i, score
    return best


def locate(time: str, text: str, segments: Sequence[common_pb2.Segment]) -> int:
    """Index of the segment an item comes from, -1 if none can be found.

    The model cites a line label, i.e. the segment start rounded down to a second: segments with
    that label win, then the segment whose [start, end] contains the time, then the nearest start;
    then a direct neighbour that shares more words with the item text (see ``_refine``).
    Without a usable time: the segment sharing most words with the item.
    """
    if not segments:
        return -1
    seconds = parse_time(time)
    if seconds is not None:
        return _refine(text, segments, _anchor(seconds, text, segments))
    scores = [_overlap(text, s) for s in segments]
    best = max(range(len(segments)), key=lambda i: scores[i])
    return best if scores[best] > 0 else -1


# -- evidence -----------------------------------------------------------------------------------

#: Segments this close (seconds) to the cited time, or this many lines around the located one,
#: count as "near" when looking for an item's words.
NEAR_SECONDS = 20.0
NEAR_LINES = 2
#: Slack (seconds) around a segment within which a cited time still points to it.
TIME_SLACK = 2.0


@dataclass(frozen=True)
class Evidence:
    """Where an item's words are in the transcript: ``index`` -1 means nowhere (drop it);
    ``note`` says what was wrong with the cited time, if anything."""

    index: int
    note: str = ""


def required_overlap(text: str) -> int:
    """Content words an item must share with the transcript near it: 1 for a short item,
    2 for a longer one (a single common word is weak evidence for a long sentence)."""
    return 1 if len(_stems(text)) <= 3 else 2


def _near(segments: Sequence[common_pb2.Segment], index: int, seconds: float | None) -> set[str]:
    words: set[str] = set()
    for i, seg in enumerate(segments):
        close_in_time = seconds is not None and abs(seg.start - seconds) <= NEAR_SECONDS
        if abs(i - index) <= NEAR_LINES or close_in_time:
            words |= _stems(seg.text)
    return words


def supported(text: str, segments: Sequence[common_pb2.Segment], index: int, seconds: float | None) -> bool:
    """Whether the item shares enough content words with the segments near ``index``/``seconds``."""
    need = required_overlap(text)
    return need > 0 and len(_stems(text) & _near(segments, index, seconds)) >= need


def points_to_segment(seconds: float, segments: Sequence[common_pb2.Segment]) -> bool:
    def near(s: common_pb2.Segment) -> bool:
        return int(s.start) == int(seconds) or s.start - TIME_SLACK <= seconds <= s.end + TIME_SLACK

    return any(near(s) for s in segments)


def find_evidence(time: str, text: str, segments: Sequence[common_pb2.Segment]) -> Evidence:
    """The segment an item comes from, checked against what was said.

    The cited time must point to an existing segment and the item must share content words with
    the transcript near it. If not, the item goes where its words are (with a note); if its words
    are nowhere in the transcript, it is invented: index -1.
    """
    if not segments:
        return Evidence(-1, "the transcript is empty")
    seconds = parse_time(time)
    if seconds is not None and points_to_segment(seconds, segments):
        index = locate(time, text, segments)
        if supported(text, segments, index, seconds):
            return Evidence(index)
        problem = f"nothing near {time} says it"
    elif seconds is not None:
        problem = f"{time} is not a time in the transcript"
    else:
        problem = f"no usable time ({time!r})"
    scores = [_overlap(text, s) for s in segments]
    best = max(range(len(segments)), key=lambda i: scores[i])
    if scores[best] > 0 and supported(text, segments, best, None):
        return Evidence(best, f"{problem}; placed at {fmt_time(segments[best].start)}, where it was said")
    return Evidence(-1, f"{problem}, and its words are nowhere in the transcript")


# -- cleaning -----------------------------------------------------------------------------------

_PLACEHOLDERS = {
    "",
    "-",
    "—",
    "?",
    "none",
    "null",
    "n/a",
    "na",
    "tbd",
    "unknown",
    "not specified",
    "not mentioned",
    "not said",
    "unassigned",
    "nobody",
    "нет",
    "никто",
    "неизвестно",
    "не указан",
    "не указана",
    "не указано",
    "не назван",
    "не названо",
    "не определён",
    "не определено",
    "не назначен",
}


def normalize(text: str) -> str:
    return " ".join(_WORD_RE.findall(text.lower()))


def is_near_duplicate(a: str, b: str, threshold: float = 0.88) -> bool:
    """Same text up to case, punctuation and small wording changes; never two texts with
    different numbers ("move to March 10" is not "move to March 17")."""
    na, nb = normalize(a), normalize(b)
    if na == nb:
        return True
    if _numbers(na) != _numbers(nb):
        return False
    return difflib.SequenceMatcher(None, na, nb).ratio() >= threshold


def _numbers(text: str) -> list[str]:
    return re.findall(r"\d+", text)


#: Share of the shorter item's content words that another item from the same place must have
#: to be the same item in other words.
SAME_ITEM_SHARE = 0.6


def found_by_another_window(
    window: int, text: str, index: int, placed: Sequence[tuple[int, str, int]]
) -> bool:
    """Whether another window's item, already kept, comes from the same place (segment
    ``index`` ± 1) and says mostly the same: one decision read twice where two windows overlap,
    worded differently each time. (Items of one answer are not compared so: two tasks said in
    one line, "fix the login crash" and "fix the payment crash", are two items.)"""
    mine = _stems(text)
    for other_window, other, at in placed:
        if other_window == window or abs(at - index) > 1:
            continue
        if _numbers(normalize(text)) != _numbers(normalize(other)):
            continue
        theirs = _stems(other)
        if mine and theirs and len(mine & theirs) >= SAME_ITEM_SHARE * min(len(mine), len(theirs)):
            return True
    return False


T = TypeVar("T")


def dedupe(items: Sequence[T], key: Callable[[T], str]) -> list[T]:
    """Drops empty items and exact or near duplicates (keeping the first)."""
    kept: list[T] = []
    for item in items:
        text = key(item)
        if not normalize(text):
            continue
        if any(is_near_duplicate(text, key(other)) for other in kept):
            continue
        kept.append(item)
    return kept


def same_word(a: str, b: str) -> bool:
    """Equal, or the same word in another form: "среда"/"среды", "Дмитрий"/"Дмитрию"."""
    if a == b:
        return True
    if a.isdigit() or b.isdigit():
        return False
    common = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return common >= max(4, min(len(a), len(b)) - 2)


def grounded(value: str, transcript_words: set[str]) -> bool:
    """Whether any word of ``value`` (an owner or a due date) was said in the transcript."""
    words = _words(value)
    return any(w in transcript_words or any(same_word(w, t) for t in transcript_words) for w in words)


def clean_field(value: str, transcript_words: set[str]) -> str:
    """Owner/due as said, or "": placeholders ("not specified") and unsaid values are dropped."""
    value = value.strip().strip(".")
    if value.lower() in _PLACEHOLDERS:
        return ""
    return value if grounded(value, transcript_words) else ""


# -- owners and due dates, checked where the item was said ------------------------------------


def _said_words(text: str) -> set[str]:
    """Words of ``text`` for the owner/due checks; "14th" counts as "14"."""
    return {number_of(w) if w[:1].isdigit() else w for w in _words(text)}


def near_words(segments: Sequence[common_pb2.Segment], index: int) -> set[str]:
    """Words said within NEAR_LINES lines or NEAR_SECONDS seconds of segment ``index``."""
    at = segments[index].start
    return {
        w
        for i, s in enumerate(segments)
        if abs(i - index) <= NEAR_LINES or abs(s.start - at) <= NEAR_SECONDS
        for w in _said_words(s.text)
    }


def said_in(value: str, words: set[str]) -> bool:
    """Whether ``value`` (a due date, an owner) was said among ``words``: at least one of its
    words, and every date word (weekday, month, number) of it, so "Friday, March 3" is not
    kept because "Friday" was said."""
    mine = _said_words(value)

    def heard(w: str) -> bool:
        return w in words or any(same_word(w, t) for t in words)

    return any(heard(w) for w in mine) and all(heard(w) for w in mine if is_date_word(w))


def _date_words(text: str) -> int:
    return sum(1 for w in _said_words(text) if is_date_word(w))


@dataclass(frozen=True)
class Checked:
    """A checked owner or due: the value to keep ("" = none); ``warning`` if the model's value
    was dropped or replaced; ``note`` (for the log) if it was filled from the transcript."""

    value: str
    warning: str = ""
    note: str = ""


def check_due(task: str, due: str, segments: Sequence[common_pb2.Segment], index: int) -> Checked:
    """The due date of an action item, as said where it comes from (segment ``index``).

    The model's value stays if it was said near the item (and does not contradict the deadline
    said in the item's own segment); otherwise, and when the model left it empty, the deadline
    said in the item's own segment is taken (``dates.pick_due``). Nothing else: a due date
    that was not said is never produced.
    """
    value = due.strip().strip(".")
    if value.lower() in _PLACEHOLDERS:
        value = ""
    here = segments[index]
    said_here = pick_due([here.text], hint=task)
    where = fmt_time(here.start)
    if value and said_in(value, near_words(segments, index)):
        if said_here and not said_in(value, _said_words(said_here)):
            return Checked(said_here, f"due {value!r} replaced by {said_here!r}, said at {where}")
        if said_here and _date_words(said_here) > _date_words(value):
            # "двенадцатый" for "к двенадцатому ноября": the same date, said in full there
            return Checked(said_here, note=f"due {value!r} completed as said at {where}: {said_here!r}")
        return Checked(value)
    if said_here:
        if value:
            return Checked(
                said_here, f"due {value!r} is not said near the item; {said_here!r} is (at {where})"
            )
        return Checked(said_here, note=f"due {said_here!r} taken from the transcript at {where}")
    if value:
        return Checked("", f"due {value!r} is not said near the item; dropped")
    return Checked("")


_ASSIGNEE_EN = re.compile(
    r"^\s*(?P<name>[A-Z][a-z]+(?:\s[A-Z][a-z]+)?)(?:,\s*you)?\s+"
    r"(?:will|'ll|shall|is going to|has to|needs to|must)\s+[a-z]"
)
_ASSIGNEE_RU = re.compile(r"^\s*(?P<name>[А-ЯЁ][а-яё]+)\s+(?:[а-яё]+\s+)?[а-яё]+(?:ит|ет|ёт|ут|ют|ат|ят)\b")
_DECIDED = re.compile(
    r"\b(?:decid|agree|decision|approv|решил|решен|договорил|согласова|утвердил)", re.IGNORECASE
)
_NOT_PEOPLE = frozenset(
    {"we", "you", "they", "it", "this", "that", "there", "everyone", "everybody", "nobody", "someone"}
    | {"the", "team", "i", "мы", "вы", "они", "все", "никто", "это", "команда", "компания", "каждый"}
)
#: Russian verbs that end like a promise ("-ит", "-ет") but only report or wish.
_NOT_PROMISES = re.compile(
    r"\b(?:говорит|считает|думает|предлагает|спрашивает|отвечает|знает|хочет|может|просит)\b", re.IGNORECASE
)


_SENTENCE = re.compile(r"[^.!?]+")
#: A line that plainly states a decision ("we agree", "we decided", "the decision is",
#: "решили", "договорились") and is not a refusal to decide ("we are not deciding", "не решаем").
_DECISION_CUE = re.compile(
    r"\b(?:decided|decide to|agree to|agreed|we agree|the decision is|решили|договорились|согласовали|"
    r"решение\s+(?:такое|—|-|:))",
    re.IGNORECASE,
)
_NOT_DECIDED = re.compile(
    r"\b(?:not decid\w*|no decision|not agree\w*|undecided|не реша\w*|не решили|не договорились|"
    r"ничего не решаем|пока не решили)",
    re.IGNORECASE,
)
#: Lines at most asked about again in one konspekt, and answer tokens allowed per line.
MISSED_LINES_MAX = 12
MISSED_TOKENS_PER_LINE = 80


def cited_lines(
    answers: Sequence[ItemsOut], segments: Sequence[common_pb2.Segment], key_points: bool = True
) -> set[int]:
    """The transcript lines the answers' items come from (by the same evidence check)."""
    said: list[tuple[str, str]] = []
    for a in answers:
        said += [(p.time, p.text) for p in [*(a.key_points if key_points else []), *a.decisions]]
        said += [(x.time, x.task) for x in a.action_items]
    return {find_evidence(time, text, segments).index for time, text in said} - {-1}


def gap_seconds(transcript: common_pb2.Transcript) -> float:
    """How long a stretch with no item must be to get a call of its own."""
    duration = transcript.duration or (transcript.segments[-1].end if transcript.segments else 0.0)
    return max(GAP_SECONDS, GAP_SHARE * duration)


def uncovered(segments: Sequence[common_pb2.Segment], cited: set[int], seconds: float) -> list[list[int]]:
    """Runs of consecutive non-empty lines, none of them cited, spanning at least ``seconds``."""
    runs: list[list[int]] = []
    run: list[int] = []
    for i, segment in enumerate([*segments, None]):
        if segment is not None and i not in cited:
            if segment.text.strip():
                run.append(i)
            continue
        if run and segments[run[-1]].end - segments[run[0]].start >= seconds:
            runs.append(run)
        run = []
    return runs


# -- the free text (title and summary): names and numbers must have been said -------------------

#: A sentence of the summary: up to its end mark and the spaces after it.
_SUMMARY_SENTENCE = re.compile(r"[^.!?…]+(?:[.!?…]+[\"»”)]*\s*|$)")
_CAPITALIZED = re.compile(r"(?<![\w-])([A-ZА-ЯЁ][\w'’-]*)", re.UNICODE)
_LONG_NUMBER = re.compile(r"\d[\d\s,.]*\d{2}|\d{3,}")
_OPENING = re.compile(r"^[\s\"«“'(\[—–-]*")


def mid_sentence_capitals(text: str) -> Iterator[str]:
    """Capitalized words that do not open a sentence: names, as a transcript or a model writes them."""
    for sentence in _SUMMARY_SENTENCE.findall(text):
        opening = _OPENING.match(sentence)
        body = sentence[opening.end() if opening else 0 :]
        yield from (m.group(1) for m in _CAPITALIZED.finditer(body) if m.start() > 0)


def unsaid_words(text: str, said: set[str], all_said: str) -> list[str]:
    """Names (``mid_sentence_capitals``) and numbers of three or more digits in ``text`` that
    were not said in the transcript (``said``: its lower-case words, ``all_said``: its text with
    digit groups joined). The model's free text has no item time to check it against; a name or a
    year it brings from its own knowledge is the invention to catch (the 1.5B summarized JFK's
    11 seconds as a speech "by Thomas Jefferson in 1776")."""
    found: list[str] = []
    for name in mid_sentence_capitals(text):
        word = name.lower().strip("'’-")
        if len(word) < 2 or word in _STOPWORDS or word in said or any(same_word(word, w) for w in said):
            continue
        found.append(name)
    return found + unsaid_numbers(text, all_said)


def unsaid_numbers(text: str, all_said: str) -> list[str]:
    """Numbers of three or more digits in ``text`` whose digits the transcript never said."""
    return [
        m.group(0).strip()
        for m in _LONG_NUMBER.finditer(text)
        if re.sub(r"\D", "", m.group(0)) not in all_said
    ]


def proper_names(segments: Sequence[common_pb2.Segment]) -> set[str]:
    """Lower-case words the transcript says as names: capitalized inside a sentence ("Anna,
    Boris and Kate are here"), or the person a sentence says will do something, unless the
    word is also said in lower case ("Магазин приложений проверяет..." and "для магазина")."""
    names: set[str] = set()
    common: set[str] = set()
    for s in segments:
        names |= {w.lower() for w in mid_sentence_capitals(s.text)}
        names |= {w for sentence in _SENTENCE.findall(s.text) for w in _words(assignee(sentence))}
        common |= {w for w in _WORD_RE.findall(s.text) if w[:1].islower()}
    return {n for n in names if not any(same_word(n, c) for c in common)}


@dataclass(frozen=True)
class FreeText:
    """The title and summary to keep, with a warning for each part dropped."""

    title: str
    summary: str
    warnings: list[str]


def check_free_text(title: str, summary: str, segments: Sequence[common_pb2.Segment]) -> FreeText:
    """Drops the summary's sentences and the title that name people, places or numbers the
    transcript never said (``unsaid_words``). What is left may be empty: the caller fills it."""
    said = {w for s in segments for w in _WORD_RE.findall(s.text.lower())}
    all_said = " ".join(re.sub(r"(?<=\d)[\s,.](?=\d)", "", s.text) for s in segments)
    warnings = []
    kept = []
    invented: set[str] = set()
    for sentence in _SUMMARY_SENTENCE.findall(summary):
        if not sentence.strip():
            continue
        unsaid = unsaid_words(sentence, said, all_said)
        invented |= {w.lower() for w in unsaid}
        if unsaid:
            warnings.append(f"summary sentence {sentence.strip()!r} dropped: {', '.join(unsaid)} not said")
        else:
            kept.append(sentence.strip())
    # A title is often in title case ("Weekly Sync Meeting"), so its capitals say nothing: it
    # goes if it has an unsaid number or a name the summary was caught inventing.
    unsaid = unsaid_numbers(title, all_said)
    unsaid += [w for w in _WORD_RE.findall(title) if w.lower() in invented and w not in unsaid]
    if unsaid:
        warnings.append(f"title {title!r} dropped: {', '.join(unsaid)} not said")
        title = ""
    return FreeText(title, " ".join(kept), warnings)


def states_decision(text: str) -> bool:
    """Whether ``text`` plainly states a decision ("we agree", "решили") and no refusal to decide."""
    return bool(_DECISION_CUE.search(text)) and not _NOT_DECIDED.search(text)


def cue_lines(segments: Sequence[common_pb2.Segment]) -> list[int]:
    """Indexes of the segments that plainly state a decision, or that someone will do something
    by a date said there ("Kate will send the invitations by Friday")."""
    found = []
    for i, seg in enumerate(segments):
        text = seg.text
        task = any(assignee(s) and find_dates(s) for s in _SENTENCE.findall(text))
        if states_decision(text) or task:
            found.append(i)
    return found


def assignee(text: str) -> str:
    """The person an item says will do something ("Boris will fix the crash by Wednesday",
    "Сергей настроит права к 12 ноября"), or "": such an item is an action item even when the
    model wrote it as a decision (the 1.5B often does). Not for an agreement ("we decided that
    Boris will ...")."""
    if _DECIDED.search(text) or _NOT_PROMISES.search(text):
        return ""
    m = _ASSIGNEE_EN.match(text) or _ASSIGNEE_RU.match(text)
    if m is None or m.group("name").lower() in _NOT_PEOPLE:
        return ""
    return m.group("name")


def check_owner(
    owner: str,
    segments: Sequence[common_pb2.Segment],
    index: int,
    transcript_words: set[str],
    people: Sequence[str],
    names: set[str] | None = None,
) -> Checked:
    """The owner of an action item: the model's, if said in the transcript (and, given the
    transcript's ``proper_names``, not a capitalized common word: "Магазин приложений
    проверяет сборку" does not make "Магазин" an owner); if the model named none, the one
    person of ``people`` (the owners it named elsewhere) said in the item's own segment, else
    the one person that segment says will do something ("Анна согласует дизайн")."""
    value = owner.strip().strip(".")
    if value.lower() in _PLACEHOLDERS:
        value = ""
    if value:
        if not grounded(value, transcript_words):
            return Checked("", f"owner {value!r} is not in the transcript; dropped")
        if names is not None and not is_a_name(value, names):
            return Checked("", f"owner {value!r}{NOT_A_PERSON}")
        return Checked(value)
    here = _said_words(segments[index].text)
    named = [p for p in people if said_in(p, here)]
    if len(named) != 1:
        named = list(
            dict.fromkeys(
                a for sentence in _SENTENCE.findall(segments[index].text) if (a := assignee(sentence))
            )
        )
    if len(named) == 1:
        return Checked(
            named[0],
            note=f"owner {named[0]!r} taken from the transcript at {fmt_time(segments[index].start)}",
        )
    return Checked("")


NOT_A_PERSON = " is not a person named in the transcript; dropped"


def is_a_name(owner: str, names: set[str]) -> bool:
    """False only for one capitalized word that the transcript never says as a name."""
    words = owner.split()
    if len(words) != 1 or not words[0][:1].isupper():
        return True
    word = words[0].lower().strip(".,'’")
    return word in names or any(same_word(word, n) for n in names)


# -- usage --------------------------------------------------------------------------------------


@dataclass
class Usage:
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    calls: int = 0

    def add(self, done: Completion) -> None:
        self.prompt_tokens += done.prompt_tokens
        self.completion_tokens += done.completion_tokens
        self.seconds += done.seconds
        self.calls += 1

    def to_proto(self) -> summarizer_pb2.Usage:
        return summarizer_pb2.Usage(
            model=self.model,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            seconds=self.seconds,
            calls=self.calls,
        )


# -- the summarizer -----------------------------------------------------------------------------


@dataclass
class _Job:
    """State of one summarize() call."""

    progress: ProgressFn
    usage: Usage
    warnings: list[str] = field(default_factory=list)
    last: tuple[float, str] = (-1.0, "")

    lock: threading.Lock = field(default_factory=threading.Lock)

    def report(self, fraction: float, message: str) -> None:
        # Never backwards (a retried call starts its share again, calls run in parallel on a
        # batching engine); throttled: a message per token would flood the stream.
        with self.lock:
            fraction = max(0.0, self.last[0], min(fraction, 1.0))
            if message != self.last[1] or fraction - self.last[0] >= 0.02 or fraction >= 1.0:
                self.last = (fraction, message)
                self.progress(fraction, message)

    def add(self, done: Completion) -> None:
        with self.lock:
            self.usage.add(done)


class Summarizer:
    """Transcript -> Konspekt with any LLMEngine."""

    def __init__(self, engine: LLMEngine, settings: SummarizerSettings) -> None:
        self.engine = engine
        self.max_tokens = settings.max_tokens
        # llama.cpp in process generates one answer at a time; a server (vLLM) batches requests
        self.parallel = 1 if settings.engine == "llamacpp" else settings.parallel_requests

    def _all(self, calls: Sequence[Callable[[], M]]) -> list[M]:
        """The answers of independent model calls, in order: at once (up to ``parallel``) where
        the engine batches them, else one after another."""
        if self.parallel <= 1 or len(calls) <= 1:
            return [call() for call in calls]
        with ThreadPoolExecutor(min(self.parallel, len(calls)), thread_name_prefix="konspekt-call") as pool:
            return list(pool.map(lambda call: call(), calls))

    def alive(self) -> bool:
        """The engine's own liveness check if it has one (a model server over HTTP), else True:
        the stage's health follows it (``konspekt.server.Probed``)."""
        probe = getattr(self.engine, "alive", None)
        return bool(probe()) if callable(probe) else True

    def summarize(
        self,
        transcript: common_pb2.Transcript,
        style: int = common_pb2.STYLE_MEETING,
        language: str = "",
        on_progress: ProgressFn | None = None,
    ) -> tuple[common_pb2.Konspekt, Usage, list[str]]:
        if style == common_pb2.STYLE_UNSPECIFIED:
            style = common_pb2.STYLE_MEETING
        language = (language or transcript.language or "en").strip().lower()
        prompts = prompts_for(language)
        job = _Job(on_progress or (lambda _f, _m: None), Usage(model=self.engine.name))
        lines = transcript_lines(transcript)
        if not lines:
            return self._no_speech(language, style), job.usage, job.warnings
        said = " ".join(ln.text for ln in lines)
        if len(said.split()) < TOO_SHORT_WORDS:
            # A model given three words writes a whole invented meeting (the 0.5B made "And..."
            # into a login-system review): quote them instead.
            job.warnings.append(too_short_warning(len(said.split())))
            return self._too_short(said, language, style), job.usage, job.warnings

        system, kind = self._system(prompts, style)
        windows = self.plan_windows(transcript, style, language)
        n = len(windows)
        # Progress: one share per window, one for the stretches no item came from, one for the
        # merge calls, one for the missed-lines check.
        shares = n + 1 + (1 if n > 1 else 0) + 1

        def window_call(i: int, window: list[Line]) -> Callable[[], KonspektOut]:
            part = prompts.part.format(i=i + 1, n=n) if n > 1 else ""
            user = prompts.user.format(kind=kind, part=part, lines="\n".join(ln.render() for ln in window))
            label = f"window {i + 1}/{n}" if n > 1 else "summary"
            return lambda: self._ask(
                system,
                user,
                konspekt_schema(style),
                KonspektOut,
                self.max_tokens,
                prompts,
                job,
                (i / shares, (i + 1) / shares),
                label,
            )

        answers = self._all([window_call(i, window) for i, window in enumerate(windows)])
        gaps = self._gaps(transcript, answers, system, prompts, job, (n / shares, (n + 1) / shares))
        if n == 1:
            title, summary = answers[0].title, answers[0].summary
        else:
            title, summary = self._merge(answers, prompts, kind, job, ((n + 1) / shares, (n + 2) / shares))
        items: list[ItemsOut] = [*answers, *gaps]
        if style == common_pb2.STYLE_MEETING:
            items += self._missed(transcript, answers, system, prompts, job, ((shares - 1) / shares, 1.0))
        konspekt = self._build(transcript, items, title, summary, language, style, job)
        job.report(1.0, "done")
        return konspekt, job.usage, job.warnings

    def plan_windows(
        self, transcript: common_pb2.Transcript, style: int = common_pb2.STYLE_MEETING, language: str = ""
    ) -> list[list[Line]]:
        """The transcript lines in windows that each fit the context with the prompt and answer."""
        prompts = prompts_for((language or transcript.language or "en").strip().lower())
        system, kind = self._system(prompts, style)
        budget = self._window_budget(system, prompts, kind)
        overlap = min(budget // OVERLAP_SHARE, OVERLAP_MAX)
        windows = split_windows(transcript_lines(transcript), self.engine.count_tokens, budget, overlap)
        if len(windows) > 1:
            log.info("transcript split into %d windows of <= %d tokens", len(windows), budget)
        return windows

    # -- pieces ---------------------------------------------------------------------------------

    @staticmethod
    def _system(prompts: Prompts, style: int) -> tuple[str, str]:
        if style == common_pb2.STYLE_LECTURE:
            return prompts.system_lecture, prompts.kind_lecture
        return prompts.system_meeting, prompts.kind_meeting

    def _window_budget(self, system: str, prompts: Prompts, kind: str) -> int:
        frame = self.engine.count_tokens(system) + self.engine.count_tokens(
            prompts.user.format(kind=kind, part=prompts.part.format(i=99, n=99), lines="")
            + prompts.retry.format(error="x" * 200)
        )
        budget = self.engine.context_size - self.max_tokens - frame - TEMPLATE_OVERHEAD - RETRY_RESERVE
        if budget < 64:
            raise FailedPrecondition(
                f"the model's context ({self.engine.context_size} tokens) leaves no room for the "
                f"transcript with max_tokens {self.max_tokens}"
            )
        return budget

    def _ask(
        self,
        system: str,
        user: str,
        schema: dict[str, Any],
        model: type[M],
        max_tokens: int,
        prompts: Prompts,
        job: _Job,
        span: tuple[float, float],
        label: str,
    ) -> M:
        """One model call, validated; retried once with the error appended to the prompt."""
        lo, hi = span
        error = ""
        for attempt in range(2):
            note = " (retry)" if attempt else ""
            job.report(lo, f"{label}: reading the transcript{note}")
            messages = [
                {"role": "system", "content": system},
                {"role": "user", "content": user + (prompts.retry.format(error=error) if attempt else "")},
            ]

            def on_token(n: int, note: str = note) -> None:
                job.report(lo + (hi - lo) * min(n / max_tokens, 0.99), f"{label}: writing{note}")

            done = self.engine.complete_json(messages, schema, max_tokens, on_token)
            job.add(done)
            log.info(
                "%s: %d prompt + %d answer tokens in %.1f s (%s)",
                label,
                done.prompt_tokens,
                done.completion_tokens,
                done.seconds,
                done.finish_reason,
            )
            try:
                return parse_answer(done.text, model)
            except ValueError as exc:
                error = str(exc)
                if done.finish_reason == "length":
                    error = f"the answer was cut off at {max_tokens} tokens: write fewer and shorter items"
                log.warning("%s: answer rejected (attempt %d): %s", label, attempt + 1, error)
                if attempt == 1 and done.finish_reason == "length":
                    salvaged = salvage_answer(done.text, model)
                    if salvaged is not None:
                        job.warnings.append(cut_off_warning(label, max_tokens))
                        return salvaged
        raise FailedPrecondition(f"the model's answer could not be turned into a konspekt: {error}")

    def _merge(
        self, answers: list[KonspektOut], prompts: Prompts, kind: str, job: _Job, span: tuple[float, float]
    ) -> tuple[str, str]:
        """Title and summary of the whole from the window answers: one call if they all fit the
        context; otherwise consecutive groups that fit are merged first and their results merged
        again (recursively), so every window's summary reaches the final one."""
        system = prompts.merge_system.format(kind=kind)
        parts = [(a.title, a.summary) for a in answers]
        lo, hi = span
        level = 1
        while True:
            groups = self._merge_groups(parts, system, prompts)
            if groups is None:
                job.warnings.append("window summaries too long to merge with the model; joined instead")
                return parts[0][0], " ".join(summary for _, summary in parts)
            last = len(groups) == 1
            # this round gets half of what is left of the span, the last round all of it
            top = hi if last else lo + (hi - lo) / 2
            calls = sum(1 for g in groups if len(g) > 1)
            step = (top - lo) / calls
            merged: list[tuple[str, str]] = []
            n = 0  # merge calls made in this round
            for group in groups:
                if len(group) == 1:
                    merged.append(group[0])
                    continue
                label = (
                    "merging windows" if last else f"merging windows (round {level}, group {n + 1}/{calls})"
                )
                out = self._ask(
                    system,
                    prompts.merge_user.format(parts=self._render_parts(group, prompts)),
                    title_summary_schema(),
                    TitleSummaryOut,
                    MERGE_MAX_TOKENS,
                    prompts,
                    job,
                    (lo + step * n, lo + step * (n + 1)),
                    label,
                )
                merged.append((out.title, out.summary))
                n += 1
            if last:
                return merged[0]
            log.info("merge round %d: %d parts -> %d", level, len(parts), len(merged))
            parts, lo, level = merged, top, level + 1

    @staticmethod
    def _render_parts(parts: Sequence[tuple[str, str]], prompts: Prompts) -> str:
        return "\n".join(
            prompts.merge_part.format(i=i + 1, title=title.rstrip("."), summary=summary)
            for i, (title, summary) in enumerate(parts)
        )

    def _merge_groups(
        self, parts: list[tuple[str, str]], system: str, prompts: Prompts
    ) -> list[list[tuple[str, str]]] | None:
        """Consecutive parts in groups whose merge call fits the context; None if no two parts
        fit together (the model cannot merge them)."""
        frame = (
            self.engine.count_tokens(system)
            + self.engine.count_tokens(
                prompts.merge_user.format(parts="") + prompts.retry.format(error="x" * 200)
            )
            + TEMPLATE_OVERHEAD
            + MERGE_MAX_TOKENS
        )
        budget = self.engine.context_size - frame
        groups: list[list[tuple[str, str]]] = []
        used = 0
        for part in parts:
            cost = self.engine.count_tokens(self._render_parts([part], prompts).replace("1", "99", 1)) + 1
            if groups and used + cost <= budget:
                groups[-1].append(part)
                used += cost
            else:
                groups.append([part])
                used = cost
        if len(groups) > 1 and all(len(g) == 1 for g in groups):
            return None
        return groups

    def _gaps(
        self,
        transcript: common_pb2.Transcript,
        answers: Sequence[ItemsOut],
        system: str,
        prompts: Prompts,
        job: _Job,
        span: tuple[float, float],
    ) -> list[ItemsOut]:
        """Key points for the stretches of the transcript that no item came from (each at least
        ``GAP_SECONDS`` or ``GAP_SHARE`` of the recording), so the konspekt covers the whole
        recording. A stretch is cut into equal pieces of at most ``GAP_SPAN_SECONDS``, one short
        call each (a small model answers from the start of what it reads, so one call for a long
        stretch covered its first minutes only); at most ``GAPS_MAX`` calls, spread evenly over
        the pieces if there are more."""
        segments = list(transcript.segments)
        lines = transcript_lines(transcript)
        pieces: list[list[Line]] = []
        for stretch in uncovered(segments, cited_lines(answers, segments), gap_seconds(transcript)):
            start, end = segments[stretch[0]].start, segments[stretch[-1]].end
            n = math.ceil((end - start) / GAP_SPAN_SECONDS)
            inside = [ln for ln in lines if stretch[0] <= ln.index <= stretch[-1]]
            bounds = [start + (end - start) * k / n for k in range(n)] + [math.inf]
            for a, b in itertools.pairwise(bounds):
                piece = [ln for ln in inside if a <= segments[ln.index].start < b]
                if piece:
                    pieces.append(piece)
        if len(pieces) > GAPS_MAX:
            pieces = [pieces[round(k * (len(pieces) - 1) / (GAPS_MAX - 1))] for k in range(GAPS_MAX)]
        budget = min(
            GAP_PROMPT_TOKENS, self._window_budget(system, prompts, "") + self.max_tokens - GAP_MAX_TOKENS
        )
        lo, hi = span
        step = (hi - lo) / max(len(pieces), 1)

        def piece_call(k: int, piece: list[Line]) -> Callable[[], ItemsOut]:
            # Sampled (every n-th line) to fit a short call: it only has to name the piece's
            # topics, and each point is checked against the transcript like every item.
            tokens = sum(self.engine.count_tokens(ln.render()) + 1 for ln in piece)
            piece = split_windows(piece[:: math.ceil(tokens / budget)], self.engine.count_tokens, budget)[0]
            log.info(
                "nothing in the konspekt comes from %s-%s: asking for its key points",
                piece[0].label,
                piece[-1].label,
            )
            return lambda: self._ask(
                system,
                prompts.gap_user.format(lines="\n".join(ln.render() for ln in piece)),
                gap_schema(),
                ItemsOut,
                GAP_MAX_TOKENS,
                prompts,
                job,
                (lo + step * k, lo + step * (k + 1)),
                f"reading {piece[0].label}-{piece[-1].label} again",
            )

        return self._all([piece_call(k, piece) for k, piece in enumerate(pieces)])

    def _missed(
        self,
        transcript: common_pb2.Transcript,
        answers: Sequence[ItemsOut],
        system: str,
        prompts: Prompts,
        job: _Job,
        span: tuple[float, float],
    ) -> list[ItemsOut]:
        """The model's items for the lines that plainly state a decision or a task (``cue_lines``)
        but that none of its decisions and action items came from: one more short call for
        just those lines (small models stop their lists early). Its answer goes through the same
        checks as the rest."""
        segments = list(transcript.segments)
        cited = cited_lines(answers, segments, key_points=False)
        missed = [i for i in cue_lines(segments) if i not in cited][:MISSED_LINES_MAX]
        if not missed:
            return []
        log.info("%d line(s) state a decision or a task that no item came from: asking again", len(missed))
        lines = "\n".join(
            Line(i, fmt_time(segments[i].start), " ".join(segments[i].text.split())).render() for i in missed
        )
        answer = self._ask(
            system,
            prompts.missed_user.format(lines=lines),
            missed_items_schema(len(missed)),
            ItemsOut,
            min(self.max_tokens, MISSED_TOKENS_PER_LINE * len(missed) + 50),
            prompts,
            job,
            span,
            "checking for missed decisions and tasks",
        )
        return [answer]

    def _build(
        self,
        transcript: common_pb2.Transcript,
        answers: Sequence[ItemsOut],
        title: str,
        summary: str,
        language: str,
        style: int,
        job: _Job,
    ) -> common_pb2.Konspekt:
        segments = list(transcript.segments)
        said = {w for s in segments for w in _words(s.text)}
        konspekt = common_pb2.Konspekt(language=language, title=title, summary=summary, style=style)  # type: ignore[arg-type]

        def evidence(time: str, text: str, what: str) -> int:
            found = find_evidence(time, text, segments)
            if found.index < 0:
                job.warnings.append(f"{what} {text!r} dropped: {found.note}")
            elif found.note:
                job.warnings.append(f"{what} {text!r}: {found.note}")
            return found.index

        # (window number, item): an item found again at the same place by the next window (they
        # overlap) is the same item, even in other words
        key_points = dedupe(
            [(w, p) for w, a in enumerate(answers) for p in a.key_points], lambda t: t[1].text
        )
        decisions = dedupe([(w, p) for w, a in enumerate(answers) for p in a.decisions], lambda t: t[1].text)
        actions = dedupe([(w, x) for w, a in enumerate(answers) for x in a.action_items], lambda t: t[1].task)
        # the people the model named as owners: a task it left without one may name one of them
        names = proper_names(segments)
        people = dedupe(
            [o for _, x in actions if (o := clean_field(x.owner, said)) and is_a_name(o, names)], lambda o: o
        )
        # "Boris will fix the crash by Wednesday" written as a decision is an action item, if
        # Boris is a person: an owner, someone the transcript says will do something, or with a
        # date. As a "window" of its own it is compared with the model's action items from the
        # same place (the model often writes the task as both)
        promised = {
            a for s in segments for sentence in _SENTENCE.findall(s.text) if (a := assignee(sentence))
        }
        for window, p in list(decisions):
            name = assignee(p.text)
            if name and grounded(name, said) and (name in people or name in promised or find_dates(p.text)):
                decisions.remove((window, p))
                actions.append((len(answers) + window, ActionOut(task=p.text, owner=name, time=p.time)))
                log.info("decision %r says who does it: an action item", p.text)
        # what is kept, per kind: (window, text, segment index)
        placed: dict[str, list[tuple[int, str, int]]] = {"key point": [], "decision": [], "action item": []}

        def add_point(what: str, window: int, text: str, index: int) -> None:
            placed[what].append((window, text, index))
            target = konspekt.decisions if what == "decision" else konspekt.key_points
            target.append(common_pb2.Point(text=text, at=segments[index].start, segment_index=index))

        for points, what in ((key_points, "key point"), (decisions, "decision")):
            for window, p in points:
                if what == "decision" and "?" in p.text:
                    job.warnings.append(f"decision {p.text!r} dropped: a question is not a decision")
                    continue
                index = evidence(p.time, p.text, what)
                if index >= 0 and not found_by_another_window(window, p.text, index, placed[what]):
                    add_point(what, window, p.text, index)
        for window, x in actions:
            index = evidence(x.time, x.task, "action item")
            if index < 0 or found_by_another_window(window, x.task, index, placed["action item"]):
                continue
            owner = check_owner(x.owner, segments, index, said, people, names)
            # "Решить отказаться от подписки" with no one to do it, from a line that says
            # "решили": the model's decision written as a task. "Магазин приложений проверяет
            # сборку" with "Магазин" as the owner: a fact written as a task.
            moved = ""
            if not owner.value and states_decision(segments[index].text):
                moved = "decision"
            elif not owner.value and owner.warning.endswith(NOT_A_PERSON):
                moved = "key point"
            if moved:
                # compared with every item of its kind, the same answer's too (window -1)
                if not found_by_another_window(-1, x.task, index, placed[moved]):
                    add_point(moved, window, x.task, index)
                    reason = "its line states a decision" if moved == "decision" else owner.warning
                    job.warnings.append(
                        f"action item {x.task!r}: no one is to do it; {reason}; listed as a {moved}"
                    )
                continue
            placed["action item"].append((window, x.task, index))
            due = check_due(x.task, x.due, segments, index)
            for checked in (owner, due):
                if checked.warning:
                    job.warnings.append(f"action item {x.task!r}: {checked.warning}")
                if checked.note:
                    log.info("action item %r: %s", x.task, checked.note)
            konspekt.action_items.append(
                common_pb2.ActionItem(
                    task=x.task,
                    owner=owner.value,
                    due=due.value,
                    at=segments[index].start,
                    segment_index=index,
                )
            )
        if style == common_pb2.STYLE_MEETING:
            self._said_outright(segments, placed, add_point, konspekt, job)
        # in the order they were said (windows, the stretch and missed-lines calls come in any order)
        for field_ in (konspekt.key_points, konspekt.decisions, konspekt.action_items):
            field_.sort(key=lambda item: item.at)
        free = check_free_text(title, summary, segments)
        job.warnings += free.warnings
        prompts = prompts_for(language)
        kind = prompts.kind_lecture if style == common_pb2.STYLE_LECTURE else prompts.kind_meeting
        konspekt.title = free.title or prompts.fallback_title.format(kind=kind)
        # what is left of the summary, else its first checked items, else a short transcript itself
        items = [p.text for p in konspekt.key_points] or [p.text for p in konspekt.decisions]
        spoken = " ".join(s.text.strip() for s in segments if s.text.strip())
        konspekt.summary = (
            free.summary
            or " ".join(t if t.endswith((".", "!", "?")) else f"{t}." for t in items[:3])
            or (prompts.too_short_summary.format(text=spoken) if len(spoken.split()) <= QUOTE_WORDS else "")
            or prompts.fallback_summary
        )
        return konspekt

    @staticmethod
    def _said_outright(
        segments: Sequence[common_pb2.Segment],
        placed: dict[str, list[tuple[int, str, int]]],
        add_point: Callable[[str, int, str, int], None],
        konspekt: common_pb2.Konspekt,
        job: _Job,
    ) -> None:
        """A sentence that plainly states a decision or who will do what by when (``cue_lines``)
        and that no decision or action item came from, even after the missed-lines call, is
        taken word for word (the 1.5B twice left out "Договорились, что доступ к CRM получают
        только отдел продаж и поддержка"). Extracted, not written, so nothing is invented; each
        one is noted."""
        items = [*placed["decision"], *placed["action item"]]
        for i in cue_lines(segments):
            if any(at == i for _, _, at in items):
                continue  # the model took something from this line
            where = fmt_time(segments[i].start)
            for sentence in (s.strip() for s in _SENTENCE.findall(segments[i].text)):
                if len(_stems(sentence)) < 3 or found_by_another_window(-1, sentence, i, items):
                    continue  # "Good, decided." says nothing on its own
                name = assignee(sentence)
                due = pick_due([sentence], hint=sentence) if name else ""
                if name and due:
                    konspekt.action_items.append(
                        common_pb2.ActionItem(
                            task=sentence, owner=name, due=due, at=segments[i].start, segment_index=i
                        )
                    )
                    what = "action item"
                elif states_decision(sentence):
                    add_point("decision", -1, sentence, i)
                    what = "decision"
                else:
                    continue
                items.append((-1, sentence, i))
                job.warnings.append(
                    f"{what} {sentence!r}: the model left it out; taken word for word at {where}"
                )

    @staticmethod
    def _too_short(said: str, language: str, style: int) -> common_pb2.Konspekt:
        prompts = prompts_for(language)
        return common_pb2.Konspekt(
            language=language if language == "ru" else "en",
            title=prompts.too_short_title,
            summary=prompts.too_short_summary.format(text=said),
            style=style,  # type: ignore[arg-type]
        )

    @staticmethod
    def _no_speech(language: str, style: int) -> common_pb2.Konspekt:
        prompts = prompts_for(language)
        written_in = language if language == "ru" else "en"
        return common_pb2.Konspekt(
            language=written_in,
            title=prompts.no_speech_title,
            summary=prompts.no_speech_summary,
            style=style,  # type: ignore[arg-type]
        )
