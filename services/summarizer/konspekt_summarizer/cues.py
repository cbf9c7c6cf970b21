"""Lines that may state a decision or give a task, found by their grammar, and whether the
model's items already cover them.

The 1.5B reads a whole transcript and lists some decisions and tasks, not all: on the eval
meetings it missed "с понедельника вводим ночную смену" while listing others. A line in which
the group speaks of what it will do ("we move the launch", "вводим", "let's", "decided"), in
which a person is asked by name ("Алина, составишь…?", "Maria, can you…") or promises ("I'll",
"составлю") is a *candidate*; the candidates no item covers are shown to the model once more,
after the cached transcript, and it writes the decisions and tasks among them or skips them
(``Summarizer._read``). The cue is the form of the sentence (a first-person plural verb in the
present or future, a vocative name, a first-person promise), not the words of any meeting.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from konspekt_summarizer import morph
from konspekt_summarizer.evidence import WORD_RE, parse_time, says_mostly_the_same, stems
from konspekt_summarizer.owners import Names, assigned, vocatives
from konspekt_summarizer.windows import Line

#: The group speaks of what it does or will do, or says it decided.
_EN_WE = re.compile(
    r"\b(?:we(?:'ll|’ll| will| shall| agree| are going to|'re going to|’re going to| decided| agreed| go with"
    r"| keep| move| stay| switch| cancel| drop| postpone| start| stop| decide)"
    r"|let's|let’s|let us|agreed|decided"
    # a rule from a date on ("So from tonight, every patient over 75…"); a motion carried
    r"|from now on|from (?:tonight|tomorrow|today|next \w+|monday|tuesday|wednesday|thursday|friday)"
    r"|going forward|the decision is|carried)\b",
    re.IGNORECASE,
)
#: A person takes a task on.
_EN_I = re.compile(r"\b(?:I'll|I’ll|I will|I'm going to|I am going to|I can do|will do)\b", re.IGNORECASE)
#: A request: "can you", "please", "could you" (with a name, see ``_addressed``).
_EN_ASK = re.compile(r"\b(?:can you|could you|would you|will you|please|you'll|you will)\b", re.IGNORECASE)
#: The meeting's own course ("let's start", "let's talk about…", "давайте обсудим") and greetings
#: ("здравствуйте" is an imperative): no decision, no task.
_EN_COURSE = re.compile(
    r"\b(?:let's|let’s|let us|we)\s+(?:start|begin|talk|discuss|move on|go through|go over|see|look"
    r"|continue|get started|wrap up|hear|ask|come back|get back|do the)\b",
    re.IGNORECASE,
)
COURSE_VERBS = frozenset(
    [
        "обсуждать",
        "обсудить",
        "начать",
        "начинать",
        "вернуться",
        "возвращаться",
        "посмотреть",
        "смотреть",
        "перейти",
        "переходить",
        "говорить",
        "поговорить",
        "работать",
        "продолжить",
        "продолжать",
        "послушать",
        "слушать",
        "спросить",
        "закончить",
        "заканчивать",
        "подвести",
        "подводить",
        "здравствовать",
        "извинить",
        "извинять",
        "простить",
        "давать",  # "давайте обсудим": a particle, the verb after it counts
        # a proposal, an opinion or a wish is no promise ("Предлагаю сначала 10%", "думаю, успеем")
        "предлагать",
        "думать",
        "считать",
        "хотеть",
        "надеяться",
    ]
)
#: A refusal to decide ("we are not deciding on dark mode today", "пока не решили"): no decision.
NOT_DECIDED = re.compile(
    r"\b(?:not decid\w*|no decision|not agree\w*|undecided|не реша\w*|не решили|не договорились|"
    r"ничего не решаем|пока не решили)",
    re.IGNORECASE,
)
#: Words that only agree, acknowledge, thank or take leave ("Договорились.", "Это решение.",
#: "Sure.", "Okay, agreed.", "Давайте так и сделаем.", "Спасибо всем!"): an item made of them
#: alone says nothing of what was decided.
_ACKNOWLEDGING = re.compile(
    r"^(?:\W*\b(?:yes|yeah|yep|sure|okay|ok|agreed|agree|deal|fine|good|great|right|so|that's|that|is"
    r"|it's|it|the|a|decision|decided|done|settled|sounds|perfect|then|alright|all|да|ок|окей|хорошо"
    r"|ладно|отлично|договорились|согласен|согласна|согласны|решено|решили|принято|это|и|так|тогда"
    r"|решение|значит|вот|всё|все|понятно|thanks|thank|you|everyone|everybody|everything|bye|goodbye|спасибо|всем"
    r"|благодарю|пока|до|свидания|связи|давайте|сделаем|let's|let’s|do)\b)+\W*$",
    re.IGNORECASE,
)
_RU_DECIDED = re.compile(r"\b(?:решили|договорились|согласовали|утвердили|решение)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"(?:[^.!?…]|[.!?…](?!\s|$))+[.!?…]*")  # "2.4" stays in one
#: At most this many candidate lines are shown again per window (the answer stays short).
MAX_CANDIDATES = 10
#: A line is covered when an item shares this part of its stems (or its time and one stem).
COVERED_SHARE = 0.5


def _a_name(word: str, people: frozenset[str]) -> bool:
    if morph.known(word):
        return morph.is_name(word)
    return word[:1].isupper() and word.lower() in people


def named(text: str, people: frozenset[str]) -> str:
    """The first person's name in ``text``, in the nominative, or ""."""
    for word in WORD_RE.findall(text):
        if word[:1].isupper() and _a_name(word, people):
            return morph.nominative(word)
    return ""


def _addressed(text: str, people: frozenset[str], persons: set[str]) -> bool:
    """The line speaks to a person by name: "Алина, составишь…", "Maria, can you…", or names
    someone next to a verb said to them ("Павел исправь…": ASR often drops the comma)."""
    if any(_a_name(word, people) for word in vocatives(text)):
        return True
    return "you" in persons and any(_a_name(w, people) for w in WORD_RE.findall(text) if w[:1].isupper())


def kind_of(text: str, people: frozenset[str] = frozenset()) -> str:
    """ "task" for a line with a request to a named person or a promise, else "decision" for one
    where the group says what it does or decided, "" for anything else (questions without a
    name, facts). Sentence by sentence: "We agree to move it. Everyone okay?" is a decision."""
    kinds = {_kind(sentence, people) for sentence in _SENTENCE.findall(text)}
    if "task" in kinds:
        return "task"
    # "We are not deciding on it today. We postpone it": the whole line defers
    return "decision" if "decision" in kinds and not NOT_DECIDED.search(text) else ""


def _kind(text: str, people: frozenset[str]) -> str:
    words = WORD_RE.findall(text)
    persons = {morph.person_of_verb(w) for w in words if morph.lemma(w) not in COURSE_VERBS}
    if _addressed(text, people, persons) and ("?" in text or _EN_ASK.search(text) or "you" in persons):
        return "task"
    if assigned(text, Names(people, frozenset())):  # "Поручаем Виталию договориться…"
        return "task"
    if _EN_I.search(text) or "i" in persons:  # "Agreed, I'll need until Thursday": a promise
        return "task"
    we = (_EN_WE.search(text) and not _EN_COURSE.search(text)) or _RU_DECIDED.search(text) or "we" in persons
    if "?" not in text and we:  # (a refusal to decide is ruled out for the whole line: kind_of)
        return "decision"
    return ""


def covered(line: Line, items: Iterable[tuple[str, str]]) -> bool:
    """Whether one of ``items`` (text, time label) says what ``line`` says."""
    mine = stems(line.text)
    at = parse_time(line.label)
    for text, time in items:
        shared = len(mine & stems(text))
        if not mine or shared >= COVERED_SHARE * len(mine):
            return True
        if shared and at is not None and parse_time(time) == at:
            return True
    return False


def uncovered(
    window: Sequence[Line], items: Sequence[tuple[str, str]], people: frozenset[str] = frozenset()
) -> list[Line]:
    """The candidate lines of ``window`` that none of ``items`` covers (the model is shown the
    first ``MAX_CANDIDATES`` of them)."""
    return [ln for ln in window if kind_of(ln.text, people) and not covered(ln, items)]


def repeats(text: str, items: Sequence[tuple[str, str]]) -> bool:
    """Whether ``text`` says mostly what one of ``items`` says (``SAME_ITEM_SHARE`` of the
    shorter one's stems): "Daniel, can you order four bed alarms" after "Daniel will order four
    bed alarms by Wednesday"."""
    mine = stems(text)
    return any(says_mostly_the_same(mine, other) for other, _ in items)


def acknowledges_only(text: str) -> bool:
    """Whether ``text`` only agrees ("Договорились.", "Это решение.", "Sure.") and names nothing."""
    return bool(_ACKNOWLEDGING.match(text.strip()))


def decision_sentences(text: str, people: frozenset[str] = frozenset()) -> str:
    """The sentences of ``text`` that say what the group does, without questions and bare
    agreement: "So we agree to move the release to March 17th." of "So we agree to move the
    release to March 17th. Everyone okay with that? Good, decided." """
    said = [
        sentence.strip()
        for sentence in _SENTENCE.findall(text)
        if _kind(sentence, people) == "decision" and not acknowledges_only(sentence)
    ]
    return " ".join(said)


#: A proposal to the group: "предлагаю…", "I suggest…", "how about…", "давайте попробуем…",
#: "let's…" (not the meeting's own course: "давайте обсудим", "let's start").
_PROPOSING = re.compile(
    r"\b(?:предлага(?:ю|ем)|предложение|давайте|i suggest|i propose|we could|how about|what if we"
    r"|why don't we|shall we|let's|let’s|let us)\b",
    re.IGNORECASE,
)
#: A reply that takes the proposal up: agreement first, no objection after it ("Да, но…").
_AGREEING = re.compile(
    r"^\W*(?:да|давайте|хорошо|ладно|согласн\w*|отлично|поддерживаю|принято|yes|yeah|agreed|okay|ok|sure|fine"
    r"|good|great|sounds good|i agree|makes sense|deal)\b",
    re.IGNORECASE,
)
_MAYBE = re.compile(r"^\W*(?:может|может быть|maybe|perhaps)\b", re.IGNORECASE)
_OBJECTING = re.compile(r"\b(?:но|однако|нет|не|but|however|no|not|don't|won't)\b", re.IGNORECASE)


def proposal_sentences(text: str, people: frozenset[str] = frozenset()) -> str:
    """The sentences of ``text`` that put a course of action to the group ("Тогда предлагаю
    импортировать базу ночью, частями", "Перенесём обучение на среду?", "How about solar
    lamps?"); "" when there are none. A request to a named person is a task, not a proposal."""
    said = []
    for sentence in _SENTENCE.findall(text):
        verbs = {w: person for w in WORD_RE.findall(sentence) if (person := morph.person_of_verb(w))}
        # a request to a person, the meeting's own course, "Давайте так и сделаем."
        course = _EN_COURSE.search(sentence) or acknowledges_only(sentence)
        if course or _addressed(sentence, people, set(verbs.values())):
            continue
        lemmas = [morph.lemma(w) for w in verbs]
        if lemmas and all(v in COURSE_VERBS for v in lemmas) and not re.search(r"предлага", sentence, re.I):
            continue  # "Давайте обсудим…", "Давайте вернёмся к празднику"
        # "Перенесём обучение на среду?", "Может, подарочную карту?"
        we_asks = "?" in sentence and ("we" in verbs.values() or bool(_MAYBE.match(sentence)))
        if _PROPOSING.search(sentence) or we_asks:
            said.append(sentence.strip())
    return " ".join(said)


def agrees(text: str) -> bool:
    """Whether ``text`` takes up what was just proposed: it opens with agreement and neither
    asks nor objects ("Давайте так и сделаем.", "Да, обучение переносим на среду.", "Agreed.")."""
    if "?" in text or not (_AGREEING.match(text) or acknowledges_only(text)):
        return False
    return not _OBJECTING.search(text)


def taken_up(line: str, reply: str, people: frozenset[str] = frozenset()) -> bool:
    """Whether ``line`` proposes a course to the group and ``reply`` (the next line) agrees."""
    return bool(proposal_sentences(line, people)) and agrees(reply)
