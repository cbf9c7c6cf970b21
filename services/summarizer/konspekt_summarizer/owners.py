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
from itertools import pairwise

from konspekt.cli import fmt_time
from konspekt.notices import Note
from konspekt.v1 import common_pb2
from konspekt_summarizer import morph
from konspekt_summarizer.evidence import PLACEHOLDERS, WORD_RE, same_word

_CAPITALIZED = re.compile(r"(?<![\w'’-])([A-ZА-ЯЁ][a-zа-яё'’-]+)")
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
#: The word that opens a sentence, and the comma after it if there is one.
_OPENING = re.compile(
    r"\W*([A-Za-zА-Яа-яЁё][\w'’-]*)(,|\s+(?:will|would|can|could|should|shall|must|please|has|had|is|was"
    r"|needs|takes|owns|said|says|and|from|agreed|promised|offered)\b)?",
    re.IGNORECASE,
)
#: A name addressed: at the start of a sentence before a comma ("Laura, can you…"), after a
#: comma at its end ("Can you do it, Laura?"), or alone ("Елена. Найди пять блогеров…": ASR
#: often closes a vocative with a full stop). Any case: ASR writes some names in lower case;
#: the caller decides which word is a name.
_WORD = r"([^\W\d_][\w'’-]*)"
_VOCATIVE_START = re.compile(
    r"^\W*(?:(?:and|so|ok|okay|well|а|и|так|ну|итак)\W+)?"
    + _WORD
    # or no comma before a request, as ASR writes it: "Roger please write…", "Raj can you…"
    + r"(?:,|\s+(?=(?:please|can you|could you|would you|will you)\b))",
    re.IGNORECASE,
)
_VOCATIVE_END = re.compile(r",\s*" + _WORD + r"\W*$")
_VOCATIVE_ALONE = re.compile(r"^\W*" + _WORD + r"\W*$")
#: … or between commas inside it ("Да, дарим карту, Сергей, купи её").
_VOCATIVE_MID = re.compile(r",\s*" + _WORD + r"\s*,")
#: The speaker themself: resolved to the person just addressed.
SELF = frozenset({"i", "me", "myself", "я", "мне", "меня", "сам", "сама"})
#: Pronouns and groups that are no person's name (an owner "we" stays empty).
NOT_NAMES = frozenset(
    {"we", "us", "you", "they", "it", "this", "that", "everyone", "everybody", "all", "team", "the"}
    | {"мы", "вы", "ты", "они", "все", "всё", "команда", "каждый", "это"}
    # words that open a sentence before a comma like a name does ("Okay, we'll do that")
    | {"yes", "no", "okay", "ok", "sure", "well", "great", "good", "right", "so", "thanks", "hi"}
    | {"hello", "morning", "honestly", "alright", "fine", "then", "now", "also", "and", "but"}
    # English has no dictionary here: the discourse words that open a sentence the same way
    | {"agreed", "absolutely", "exactly", "perfect", "cool", "indeed", "correct", "true", "definitely"}
    | {"wait", "look", "listen", "actually", "anyway", "sorry", "please", "cheers", "understood"}
    | {"noted", "done", "deal", "excellent", "wonderful", "nice", "awesome", "first", "second", "third"}
    | {"next", "finally", "lastly", "basically", "anyone", "someone", "nobody"}
    # said capitalized inside a sentence, yet never a person (English)
    | {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "sundays", "mondays"}
    | {"january", "february", "march", "april", "june", "july", "august", "september", "october"}
    | {"november", "december", "mr", "mrs", "ms", "dr"}
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
    short, long = sorted((a, b), key=len)
    # a short name and its forms ("Ян"/"Яна", "Оля"/"Олю"), not a word it begins ("По"/"пожалуйста")
    if same_word(a, b) or (len(short) <= 4 and long.startswith(short) and len(long) - len(short) <= 2):
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
        #: English words said capitalized somewhere a capital says something: inside a sentence,
        #: or opening one before a comma or a verb said of a person ("Laura, can you…", "Walter
        #: will…", "Roger please…"); "Because we…" or "Speaking of…" only ever open a sentence
        marked: set[str] = set()
        for s in segments:
            capitals |= {_fold(m) for m in _CAPITALIZED.findall(s.text)}
            common |= {_fold(w) for w in WORD_RE.findall(s.text) if w[:1].islower()}
            for sentence in _SENTENCE.findall(s.text):
                opening = _OPENING.match(sentence)
                first = opening.start(1) if opening else -1
                marked |= {_fold(m.group(1)) for m in _CAPITALIZED.finditer(sentence) if m.start(1) != first}
                if opening and opening.group(2):
                    marked.add(_fold(opening.group(1)))
        people = {
            c
            for c in capitals
            if c not in NOT_NAMES
            and c not in SELF
            and not any(q in c for q in "'’")  # "I'll", "Let's", "Saturday's"
            and (morph.cyrillic(c) or c in marked)
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


def vocatives(text: str) -> list[str]:
    """The words ``text`` may address a person with, the last sentence first: "Laura" in
    "Laura, can you…?", "Can you do it, Laura?" and "Laura." (names are not checked here)."""
    found = []
    for sentence in reversed(_SENTENCE.findall(text)):
        for pattern in (_VOCATIVE_END, _VOCATIVE_START, _VOCATIVE_ALONE):
            m = pattern.search(sentence.strip())
            if m:
                found.append(m.group(1))
        found += [m.group(1) for m in _VOCATIVE_MID.finditer(sentence)]
    return found


def addressed(
    segments: Sequence[common_pb2.Segment], index: int, names: Names, lines: int = ADDRESSED_LINES
) -> str:
    """The person addressed by name in segment ``index`` or up to ``lines`` before it, nearest first."""
    for i in range(index, max(index - lines, 0) - 1, -1):
        for word in vocatives(segments[i].text):
            if word.lower() not in NOT_NAMES and names.said(word):
                return word[:1].upper() + word[1:]
    return ""


#: English: a task given through someone else ("we'll ask Peter to call the lab").
_ASKED_TO = re.compile(
    r"\b(?:ask|asks|asked|assign|assigns|assigned|get|have|has|want|wants|need|needs|tell|told)\s+"
    r"([A-Z][a-z'’-]+)\s+to\s+[a-z]"
)
_AGREED = re.compile(r"\bдоговорил", re.IGNORECASE)
#: How many words may stand between a Russian name and the infinitive it is given.
_TO_INFINITIVE = 2


def _they_will(words: Sequence[str]) -> bool:
    """ "он замерит", "она найдёт": a person spoken of does something (a third-person verb,
    present or future, right after "он"/"она")."""
    return any(w.lower() in ("он", "она") and morph.third_person(n) for w, n in pairwise(words))


def assigned(text: str, names: Names) -> str:
    """The person ``text`` gives a task to in the third person, in the nominative: "Поручаем
    Виталию договориться о ремонте" (a name in the dative, or in the genitive as ASR often
    writes it, followed by an infinitive), "С Денисом договорились: он замерит окна", "We'll
    ask Peter to call the lab"; "" if none."""
    for m in _ASKED_TO.finditer(text):
        if m.group(1).lower() not in NOT_NAMES and names.said(m.group(1)):
            return m.group(1)
    words = WORD_RE.findall(text)
    agreed_with = _AGREED.search(text) is not None  # "С Денисом договорились: он замерит окна"
    for i, word in enumerate(words):
        cases = morph.name_cases(word)
        with_whom = agreed_with and i > 0 and words[i - 1].lower() in ("с", "со") and "ablt" in cases
        if with_whom and names.said(word) and _they_will(words[i + 1 :]):
            return morph.nominative(word)
        given = "datv" in cases or (
            "gent" in cases and (i == 0 or words[i - 1].lower() not in morph.PREPOSITIONS)
        )
        if (
            given
            and names.said(word)
            and any(morph.infinitive(w) for w in words[i + 1 : i + 1 + _TO_INFINITIVE])
        ):
            return morph.nominative(word)
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
        person = assigned(segments[index].text, names) or addressed(segments, index, names)
        if person:
            said = f"owner {value!r}" if value else "owner"
            return Owner(person, note=f"{said} is {person!r}, addressed by name at or before {where}")
        return Owner("")
    if morph.cyrillic(value.split()[0]):
        value = " ".join(morph.nominative(w) for w in value.split())  # "Виталию" -> "Виталий"
    if names.said(value):
        return Owner(value)
    if names.a_thing(value):
        return Owner("", warning=Note("owner_not_person", owner=value))
    return Owner(value, unconfirmed=True, warning=Note("owner_unconfirmed", owner=value))
