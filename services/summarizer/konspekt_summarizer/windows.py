"""Transcript lines as the model reads them (``[mm:ss] text``) and the windows a long
transcript is cut into, each fitting the model's context with the prompt and the answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from konspekt.cli import fmt_time
from konspekt.v1 import common_pb2

#: Windows overlap by up to 1/OVERLAP_SHARE of their budget, at most OVERLAP_MAX tokens.
OVERLAP_SHARE = 10
OVERLAP_MAX = 300


@dataclass(frozen=True)
class Line:
    """One transcript line as the model sees it: ``[mm:ss] text``."""

    index: int  # position in Transcript.segments
    label: str
    text: str

    def render(self) -> str:
        return f"[{self.label}] {self.text}"


def continues(before: str, text: str) -> bool:
    """Whether ``text`` goes on with the sentence ``before`` left open: ASR cuts segments by
    time, not by sentence ("…within 15 minutes of any" / "outage, that's a decision.")."""
    first = text.lstrip()[:1]
    return bool(first) and first.islower() and not before.rstrip().endswith((".", "!", "?", "…"))


def utterances(lines: Sequence[Line]) -> list[tuple[Line, int]]:
    """``lines`` with each line that continues the sentence of the one just before it joined
    to that one (its index and time), each with the index of its last line."""
    joined: list[tuple[Line, int]] = []
    for ln in lines:
        if joined and ln.index == joined[-1][1] + 1 and continues(joined[-1][0].text, ln.text):
            first = joined[-1][0]
            joined[-1] = (Line(first.index, first.label, f"{first.text} {ln.text}"), ln.index)
        else:
            joined.append((ln, ln.index))
    return joined


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
