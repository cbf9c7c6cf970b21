"""Where an item comes from: the model cites a ``[mm:ss]`` line label; the item is placed on
that segment if the words near it say the item, else where its words are, else nowhere (it was
not said). Also the word helpers every check uses (crude stems, so Russian word forms meet)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from konspekt.cli import fmt_time
from konspekt.notices import Note
from konspekt.v1 import common_pb2

_TIME_RE = re.compile(r"^\[?\s*(?:(\d+):)?(\d{1,3}):(\d{1,2})(?:[.,]\d+)?\s*\]?$")
_SECONDS_RE = re.compile(r"^\d+(?:\.\d+)?$")
WORD_RE = re.compile(r"\w+", re.UNICODE)


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


STOPWORDS_TEXT = """
the and for that this with will was were are have has from about into then than what
что это как для его все так был была были она они оно или также там тут уже еще ещё
"""
STOPWORDS = frozenset(STOPWORDS_TEXT.split())


def content_words(text: str) -> list[str]:
    return [w for w in WORD_RE.findall(text.lower()) if (len(w) >= 3 or w.isdigit()) and w not in STOPWORDS]


def stems(text: str) -> set[str]:
    """Crude stems (first 5 letters) so that "Бориса" meets "Борис" and "budgets" meets "budget"."""
    return {w[:5] for w in content_words(text)}


def overlap(text: str, segment: common_pb2.Segment) -> int:
    return len(stems(text) & stems(segment.text))


def _best_by_overlap(text: str, segments: Sequence[common_pb2.Segment], candidates: Sequence[int]) -> int:
    """The candidate with most words in common with ``text``; the first one on a tie."""
    best, best_score = candidates[0], -1
    for i in candidates:
        score = overlap(text, segments[i])
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
    """Small models often cite a line next to the right one, or two lines off (the reply after
    it): a neighbour wins only if it shares more words with the item than the cited line does,
    one two lines away by at least two words more."""
    anchor_score = overlap(text, segments[anchor])
    best, best_score = anchor, anchor_score
    for distance in (1, NEAR_LINES):
        for i in (anchor - distance, anchor + distance):
            if 0 <= i < len(segments):
                score = overlap(text, segments[i])
                if score > best_score and score >= anchor_score + distance:
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
    scores = [overlap(text, s) for s in segments]
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
    return 1 if len(stems(text)) <= 3 else 2


def _near(segments: Sequence[common_pb2.Segment], index: int, seconds: float | None) -> set[str]:
    words: set[str] = set()
    for i, seg in enumerate(segments):
        close_in_time = seconds is not None and abs(seg.start - seconds) <= NEAR_SECONDS
        if abs(i - index) <= NEAR_LINES or close_in_time:
            words |= stems(seg.text)
    return words


def supported(text: str, segments: Sequence[common_pb2.Segment], index: int, seconds: float | None) -> bool:
    """Whether the item shares enough content words with the segments near ``index``/``seconds``."""
    need = required_overlap(text)
    return need > 0 and len(stems(text) & _near(segments, index, seconds)) >= need


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
        return Evidence(-1, Note("transcript_empty"))
    seconds = parse_time(time)
    if seconds is not None and points_to_segment(seconds, segments):
        index = locate(time, text, segments)
        if supported(text, segments, index, seconds):
            return Evidence(index)
        problem = Note("not_near", time=time)
    elif seconds is not None:
        problem = Note("not_a_time", time=time)
    else:
        problem = Note("no_usable_time", time=time)
    scores = [overlap(text, s) for s in segments]
    best = max(range(len(segments)), key=lambda i: scores[i])
    if scores[best] > 0 and supported(text, segments, best, None):
        return Evidence(best, Note("placed_at", problem=problem, at=fmt_time(segments[best].start)))
    return Evidence(-1, Note("words_nowhere", problem=problem))


# -- cleaning -----------------------------------------------------------------------------------

PLACEHOLDERS = {
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
    return " ".join(WORD_RE.findall(text.lower()))


def is_near_duplicate(a: str, b: str, threshold: float = 0.88) -> bool:
    """Same text up to case, punctuation and small wording changes; never two texts with
    different numbers ("move to March 10" is not "move to March 17")."""
    na, nb = normalize(a), normalize(b)
    if na == nb:
        return True
    if numbers_in(na) != numbers_in(nb):
        return False
    return difflib.SequenceMatcher(None, na, nb).ratio() >= threshold


def numbers_in(text: str) -> list[str]:
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
    mine = stems(text)
    for other_window, other, at in placed:
        if other_window == window or abs(at - index) > 1:
            continue
        if numbers_in(normalize(text)) != numbers_in(normalize(other)):
            continue
        if says_mostly_the_same(mine, other):
            return True
    return False


def says_mostly_the_same(mine: set[str], other: str) -> bool:
    """Whether ``other`` shares ``SAME_ITEM_SHARE`` of the shorter one's stems with ``mine``
    (the stems of an item)."""
    theirs = stems(other)
    return bool(mine and theirs and len(mine & theirs) >= SAME_ITEM_SHARE * min(len(mine), len(theirs)))


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


def item_note(what: str, text: str, said: str, *, dropped: bool = False) -> Note:
    """The warning on an item of kind ``what`` ("key point", "decision", "action item") with
    the ``text`` the model gave it: what was done to it (``said``, a note of its own)."""
    return Note(f"{what.replace(' ', '_')}_{'dropped' if dropped else 'note'}", text=text, note=said)
