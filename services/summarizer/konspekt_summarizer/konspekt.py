"""Model-agnostic konspekt logic: prompt, JSON schema, validation, time -> segment mapping,
windowing of long transcripts. The engine only turns messages + schema into JSON text."""

from __future__ import annotations

import difflib
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from konspekt.cli import fmt_time
from konspekt.errors import FailedPrecondition
from konspekt.v1 import common_pb2, summarizer_pb2
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


def konspekt_schema(style: int = common_pb2.STYLE_MEETING) -> dict[str, Any]:
    """Every string and array is bounded: small models otherwise repeat an item until max_tokens.

    Field order is style-dependent: what matters most comes first (decisions and action items
    for a meeting, key points for a lecture); the model writes the fields in schema order.
    """
    # "time" last: with "time" first the 1.5B wrote the owner into the task and mixed action
    # items into decisions. (Last, it sometimes writes a line label into "due": clean_field drops it.)
    point = _object({"text": _string(TEXT_MAX, 1), "time": _TIME})
    action = _object(
        {"task": _string(TEXT_MAX, 1), "owner": _string(NAME_MAX), "due": _string(NAME_MAX), "time": _TIME}
    )
    fields = {
        "title": _string(TITLE_MAX, 1),
        "summary": _string(SUMMARY_MAX, 1),
        "key_points": {"type": "array", "items": point, "maxItems": KEY_POINTS_MAX},
        "decisions": {"type": "array", "items": point, "maxItems": DECISIONS_MAX},
        "action_items": {"type": "array", "items": action, "maxItems": ACTION_ITEMS_MAX},
    }
    order = LECTURE_ORDER if style == common_pb2.STYLE_LECTURE else MEETING_ORDER
    return _object({name: fields[name] for name in order})


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


class KonspektOut(TitleSummaryOut):
    key_points: list[PointOut] = []
    decisions: list[PointOut] = []
    action_items: list[ActionOut] = []

    @field_validator("key_points", "decisions", "action_items", mode="before")
    @classmethod
    def _lists(cls, v: Any, info: Any) -> Any:
        limits = {"key_points": KEY_POINTS_MAX, "decisions": DECISIONS_MAX, "action_items": ACTION_ITEMS_MAX}
        return v[: limits[info.field_name]] if isinstance(v, list) else v


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


def split_windows(lines: Sequence[Line], count: Callable[[str], int], budget: int) -> list[list[Line]]:
    """Consecutive lines in windows of at most ``budget`` tokens, split on segment boundaries.

    A single line longer than the budget is cut into word chunks (same label), so nothing is lost.
    """
    if budget < 16:
        raise ValueError(f"window budget of {budget} tokens is too small")
    windows: list[list[Line]] = []
    current: list[Line] = []
    used = 0
    for line in lines:
        for piece in _fit_line(line, count, budget):
            cost = count(piece.render()) + 1  # + the newline
            if current and used + cost > budget:
                windows.append(current)
                current, used = [], 0
            current.append(piece)
            used += cost
    if current:
        windows.append(current)
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
    na, nb = normalize(a), normalize(b)
    if na == nb:
        return True
    return difflib.SequenceMatcher(None, na, nb).ratio() >= threshold


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

    def report(self, fraction: float, message: str) -> None:
        fraction = max(0.0, min(fraction, 1.0))
        # Throttled: a message per token would flood the stream.
        if message != self.last[1] or fraction - self.last[0] >= 0.02 or fraction >= 1.0:
            self.last = (fraction, message)
            self.progress(fraction, message)


class Summarizer:
    """Transcript -> Konspekt with any LLMEngine."""

    def __init__(self, engine: LLMEngine, settings: SummarizerSettings) -> None:
        self.engine = engine
        self.max_tokens = settings.max_tokens

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

        system, kind = self._system(prompts, style)
        windows = self.plan_windows(transcript, style, language)
        n = len(windows)
        # Progress: one share per window, plus one for the merge call.
        shares = n + 1 if n > 1 else 1
        answers: list[KonspektOut] = []
        for i, window in enumerate(windows):
            part = prompts.part.format(i=i + 1, n=n) if n > 1 else ""
            user = prompts.user.format(kind=kind, part=part, lines="\n".join(ln.render() for ln in window))
            label = f"window {i + 1}/{n}" if n > 1 else "summary"
            answers.append(
                self._ask(
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
            )
        if n == 1:
            title, summary = answers[0].title, answers[0].summary
        else:
            title, summary = self._merge(answers, prompts, kind, job, (n / shares, 1.0))
        konspekt = self._build(transcript, answers, title, summary, language, style, job)
        job.report(1.0, "done")
        return konspekt, job.usage, job.warnings

    def plan_windows(
        self, transcript: common_pb2.Transcript, style: int = common_pb2.STYLE_MEETING, language: str = ""
    ) -> list[list[Line]]:
        """The transcript lines in windows that each fit the context with the prompt and answer."""
        prompts = prompts_for((language or transcript.language or "en").strip().lower())
        system, kind = self._system(prompts, style)
        budget = self._window_budget(system, prompts, kind)
        windows = split_windows(transcript_lines(transcript), self.engine.count_tokens, budget)
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
            job.usage.add(done)
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
        raise FailedPrecondition(f"the model's answer could not be turned into a konspekt: {error}")

    def _merge(
        self, answers: list[KonspektOut], prompts: Prompts, kind: str, job: _Job, span: tuple[float, float]
    ) -> tuple[str, str]:
        """Title and summary of the whole from the window answers (one short call if it fits)."""
        parts = "\n".join(
            prompts.merge_part.format(i=i + 1, title=a.title.rstrip("."), summary=a.summary)
            for i, a in enumerate(answers)
        )
        system = prompts.merge_system.format(kind=kind)
        user = prompts.merge_user.format(parts=parts)
        need = (
            self.engine.count_tokens(system)
            + self.engine.count_tokens(user + prompts.retry.format(error="x" * 200))
            + TEMPLATE_OVERHEAD
            + MERGE_MAX_TOKENS
        )
        if need <= self.engine.context_size:
            out = self._ask(
                system,
                user,
                title_summary_schema(),
                TitleSummaryOut,
                MERGE_MAX_TOKENS,
                prompts,
                job,
                span,
                "merging windows",
            )
            return out.title, out.summary
        job.warnings.append("window summaries too long to merge with the model; joined instead")
        return answers[0].title, " ".join(a.summary for a in answers)

    def _build(
        self,
        transcript: common_pb2.Transcript,
        answers: list[KonspektOut],
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

        key_points = dedupe([p for a in answers for p in a.key_points], lambda p: p.text)
        decisions = dedupe([p for a in answers for p in a.decisions], lambda p: p.text)
        actions = dedupe([x for a in answers for x in a.action_items], lambda x: x.task)
        for points, what, target in (
            (key_points, "key point", konspekt.key_points),
            (decisions, "decision", konspekt.decisions),
        ):
            for p in points:
                index = evidence(p.time, p.text, what)
                if index >= 0:
                    at = segments[index].start
                    target.append(common_pb2.Point(text=p.text, at=at, segment_index=index))
        for x in actions:
            index = evidence(x.time, x.task, "action item")
            if index < 0:
                continue
            owner, due = clean_field(x.owner, said), clean_field(x.due, said)
            for name, raw, kept in (("owner", x.owner, owner), ("due", x.due, due)):
                if raw and not kept and raw.lower().strip(" .") not in _PLACEHOLDERS:
                    job.warnings.append(
                        f"action item {x.task!r}: {name} {raw!r} is not in the transcript; dropped"
                    )
            konspekt.action_items.append(
                common_pb2.ActionItem(
                    task=x.task, owner=owner, due=due, at=segments[index].start, segment_index=index
                )
            )
        return konspekt

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
