"""Who does a task: the owner the model wrote, checked against the names said in the transcript.

Transcripts have no speaker labels, so names are found in what was said: a capitalized word
anywhere (sentence-initial too: "Maria, please write…", "Наталья, а кто…") that the transcript
never says in lower case; a Russian word the dictionary knows is a name when it says so
(``morph``). Russian case forms meet ("Наталье", "Сергею", "Павлом": ``same_name``).
"I" / "я" is the person just addressed ("Laura, can you…?" — "Sure, I'll…"). An owner the
transcript does not say is kept and marked unconfirmed, never dropped: only a word the
transcript says as a common noun ("Магазин", said as "магазина") shows the model took a thing for
a person.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from konspekt.cli import fmt_time
from konspekt.v1 import common_pb2
from konspekt_summarizer import morph
from konspekt_summarizer.evidence import PLACEHOLDERS, WORD_RE, same_word

_CAPITALIZED = re.compile(r"(?<![\w'’-])([A-ZА-ЯЁ][a-zа-яё'’-]+)")
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
#: A name addressed: at the start of a sentence before a comma ("Laura, can you…"), or after a
#: comma at its end ("Can you do it, Laura?").
_VOCATIVE_START = re.compile(r"^\W*(?:(?i:and|so|ok|okay|well|а|и|так|ну|итак)\W+)?([A-ZА-ЯЁ][a-zа-яё'’-]+),")
_VOCATIVE_END = re.compile(r",\s*([A-ZА-ЯЁ][a-zа-яё'’-]+)\W*$")
#: The speaker themself: resolved to the person just addressed.
SELF = frozenset({"i", "me", "myself", "я", "мне", "меня", "сам", "сама"})
#: Pronouns and groups that are no person's name (an owner "we" stays empty).
NOT_NAMES = frozenset(
    {"we", "us", "you", "they", "it", "this", "that", "everyone", "everybody", "all", "team", "the"}
    | {"мы", "вы", "ты", "они", "все", "всё", "команда", "каждый", "это"}
    # words that open a sentence before a comma like a name does ("Okay, we'll do that")
    | {"yes", "no", "okay", "ok", "sure", "well", "great", "good", "right", "so", "thanks", "hi"}
    | {"hello", "morning", "honestly", "alright", "fine", "then", "now", "also", "and", "but"}
    | {"да", "нет", "хорошо", "ладно", "отлично", "так", "ну", "окей", "конечно", "спасибо", "итак"}
    | {"понятно", "привет", "значит", "тогда", "а", "и", "но", "давайте", "коллеги", "друзья"}
)
#: How many lines before an item's own line may hold the name addressed.
ADDRESSED_LINES = 2
_VOWELS = "аеёиоуыэюяaeiou"


def _fold(word: str) -> str:
    return word.lower().replace("ё", "е").strip("'’-.,")


def same_name(a: str, b: str) -> bool:
    """One name in two forms: "Наталья"/"Натальей", "Сергей"/"Сергею", "Павел"/"Павлом" (the
    vowel that drops in declension), "Laura"/"laura"."""
    a, b = _fold(a), _fold(b)
    if not a or not b:
        return False
    if same_word(a, b) or (min(len(a), len(b)) <= 4 and (a.startswith(b) or b.startswith(a))):
        return True
    for x, y in ((a, b), (b, a)):
        # "павел" -> "павл", which "павлом" starts with
        if len(x) >= 4 and x[-2] in _VOWELS and x[-1] not in _VOWELS and y.startswith(x[:-2] + x[-1]):
            return True
    return False


def _inflected(a: str, b: str) -> bool:
    """One word and the other with a short ending: "магазин"/"магазина" (not "boris"/"boring")."""
    short, long = sorted((a, b), key=len)
    return len(short) >= 4 and long.startswith(short) and len(long) - len(short) <= 2


@dataclass(frozen=True)
class Names:
    """The names said in a transcript: ``people`` (lower-case forms) and every lower-case word."""

    people: frozenset[str]
    common: frozenset[str]

    @classmethod
    def of(cls, segments: Sequence[common_pb2.Segment]) -> Names:
        capitals: set[str] = set()
        common: set[str] = set()
        for s in segments:
            capitals |= {_fold(m) for m in _CAPITALIZED.findall(s.text)}
            common |= {_fold(w) for w in WORD_RE.findall(s.text) if w[:1].islower()}
        people = {
            c
            for c in capitals
            if c not in NOT_NAMES
            and c not in SELF
            # Russian: the dictionary decides ("Согласен, …" opens a sentence like a name does)
            and (morph.is_name(c) if morph.known(c) else not any(c == w or _inflected(c, w) for w in common))
        }
        # a name ASR wrote in lower case ("поручаем виталию"), when that is its likeliest reading
        people |= {w for w in common if morph.cyrillic(w) and len(w) > 2 and morph.is_name(w, only=True)}
        return cls(frozenset(people), frozenset(common - people))

    def said(self, name: str) -> bool:
        """Whether every word of ``name`` was said as a name (any case form)."""
        words = [_fold(w) for w in WORD_RE.findall(name)]
        return bool(words) and all(any(same_name(w, p) for p in self.people) for w in words)

    def a_thing(self, name: str) -> bool:
        """One word the transcript says only as a common noun ("Магазин", said as "магазина")."""
        words = WORD_RE.findall(name)
        if len(words) != 1:
            return False
        word = _fold(words[0])
        return not any(same_name(word, p) for p in self.people) and any(
            same_word(word, c) for c in self.common
        )


def addressed(
    segments: Sequence[common_pb2.Segment], index: int, names: Names, lines: int = ADDRESSED_LINES
) -> str:
    """The person addressed by name in segment ``index`` or up to ``lines`` before it, nearest first."""
    for i in range(index, max(index - lines, 0) - 1, -1):
        for sentence in reversed(_SENTENCE.findall(segments[i].text)):
            for pattern in (_VOCATIVE_END, _VOCATIVE_START):
                m = pattern.search(sentence.strip())
                if m and names.said(m.group(1)):
                    return m.group(1)
    return ""


@dataclass(frozen=True)
class Owner:
    """A checked owner: ``value`` to keep ("" = none), ``unconfirmed`` when the transcript does
    not say it as a name; ``warning`` for the user, ``note`` for the log."""

    value: str
    unconfirmed: bool = False
    warning: str = ""
    note: str = ""


NOT_SAID = "is not said in the transcript as a name; kept, unconfirmed"


def check_owner(owner: str, segments: Sequence[common_pb2.Segment], index: int, names: Names) -> Owner:
    """The owner of the action item said at segment ``index``."""
    value = owner.strip().strip(".")
    if value.lower() in PLACEHOLDERS or value.lower() in NOT_NAMES:
        value = ""
    where = fmt_time(segments[index].start)
    if value.lower() in SELF or not value:
        person = addressed(segments, index, names)
        if person:
            said = f"owner {value!r}" if value else "owner"
            return Owner(person, note=f"{said} is {person!r}, addressed by name at or before {where}")
        return Owner("")
    if morph.cyrillic(value.split()[0]):
        value = " ".join(morph.nominative(w) for w in value.split())  # "Виталию" -> "Виталий"
    if names.said(value):
        return Owner(value)
    if names.a_thing(value):
        return Owner("", warning=f"owner {value!r} is not a person named in the transcript; dropped")
    return Owner(value, unconfirmed=True, warning=f"owner {value!r} {NOT_SAID}")
