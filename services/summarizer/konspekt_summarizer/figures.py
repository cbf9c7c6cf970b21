"""The figures of a meeting: numbers said that the konspekt would otherwise lose.

People read a konspekt for its numbers (a budget, a count, a deadline hour), and the 1.5B writes
few key points: on the eval meetings it kept about half of the figures said. A sentence of the
transcript that says a number (in digits, as whisper writes them) that appears nowhere in the
konspekt is added as a key point, as said. Not: questions, numbers that only count the agenda
("Item 2", "пункт 3"), and more than ``limit`` sentences.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from konspekt.v1 import common_pb2

_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[\s.,]\d{3})*(?:[.,]\d+)?(?![\w])|\d+(?=\s*%)")
#: A number that only counts the agenda or names a thing: "Item 2", "пункт 3", "номер три".
_ORDINAL_BEFORE = re.compile(
    r"(?:item|point|question|number|no\.|part|chapter|step|slide|пункт|вопрос|номер|часть|глава|шаг|слайд|№)\s*$",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?:[^.!?…]|[.!?…](?=\d))+[.!?…]*")
#: Figures added per this many transcript segments (at least ``MIN_FIGURES``).
SEGMENTS_PER_FIGURE = 10
MIN_FIGURES = 8


@dataclass(frozen=True)
class Figure:
    index: int  # the segment it was said in
    text: str  # the sentence, as said


def numbers(text: str) -> set[str]:
    """The numbers of ``text`` as digits only ("1,642" and "1 642" are "1642")."""
    found = set()
    for m in _NUMBER.finditer(text):
        if _ORDINAL_BEFORE.search(text[: m.start()]):
            continue
        found.add(re.sub(r"\D", "", m.group(0)))
    return found


def figures_left_out(segments: Sequence[common_pb2.Segment], konspekt_texts: Iterable[str]) -> list[Figure]:
    """The sentences that say a number the konspekt does not, first said first, at most one per
    ``SEGMENTS_PER_FIGURE`` segments (``MIN_FIGURES`` at least); a number is taken once."""
    have: set[str] = set()
    for text in konspekt_texts:
        have |= numbers(text)
    limit = max(MIN_FIGURES, len(segments) // SEGMENTS_PER_FIGURE)
    found: list[Figure] = []
    for i, segment in enumerate(segments):
        for sentence in _SENTENCE.findall(segment.text):
            sentence = sentence.strip()
            said = numbers(sentence)
            if not said or said <= have or sentence.endswith("?"):
                continue
            found.append(Figure(i, sentence))
            have |= said
            if len(found) == limit:
                return found
    return found
