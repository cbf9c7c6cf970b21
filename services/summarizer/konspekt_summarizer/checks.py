"""Checks of what the model wrote against what was said: due dates where the item was said,
the kind of an item (a question is no decision; "Boris will fix it" is a task), and names and
numbers in the title and summary. A check deletes only what the transcript contradicts (its
words said nowhere); what it cannot confirm is kept and marked (see ``owners``)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from konspekt.cli import fmt_time
from konspekt.notices import Note
from konspekt.v1 import common_pb2
from konspekt_summarizer.cues import (
    NOT_DECIDED,
    acknowledges_only,
    agrees,
    covered,
    decision_sentences,
    kind_of,
    proposal_sentences,
)
from konspekt_summarizer.dates import is_date_word, number_of, pick_due
from konspekt_summarizer.evidence import (
    NEAR_LINES,
    NEAR_SECONDS,
    PLACEHOLDERS,
    STOPWORDS,
    WORD_RE,
    content_words,
    same_word,
)
from konspekt_summarizer.owners import Names, assigned, same_name, vocatives
from konspekt_summarizer.windows import Line, utterances


def grounded(value: str, transcript_words: set[str]) -> bool:
    """Whether any word of ``value`` (an owner or a due date) was said in the transcript."""
    words = content_words(value)
    return any(w in transcript_words or any(same_word(w, t) for t in transcript_words) for w in words)


def clean_field(value: str, transcript_words: set[str]) -> str:
    """Owner/due as said, or "": placeholders ("not specified") and unsaid values are dropped."""
    value = value.strip().strip(".")
    if value.lower() in PLACEHOLDERS:
        return ""
    return value if grounded(value, transcript_words) else ""


# -- owners and due dates, checked where the item was said ------------------------------------


def said_words(text: str) -> set[str]:
    """Words of ``text`` for the owner/due checks; "14th" counts as "14"."""
    return {number_of(w) if w[:1].isdigit() else w for w in content_words(text)}


def near_words(segments: Sequence[common_pb2.Segment], index: int) -> set[str]:
    """Words said within NEAR_LINES lines or NEAR_SECONDS seconds of segment ``index``."""
    at = segments[index].start
    return {
        w
        for i, s in enumerate(segments)
        if abs(i - index) <= NEAR_LINES or abs(s.start - at) <= NEAR_SECONDS
        for w in said_words(s.text)
    }


def said_in(value: str, words: set[str]) -> bool:
    """Whether ``value`` (a due date, an owner) was said among ``words``: at least one of its
    words, and every date word (weekday, month, number) of it, so "Friday, March 3" is not
    kept because "Friday" was said."""
    mine = said_words(value)

    def heard(w: str) -> bool:
        return w in words or any(same_word(w, t) for t in words)

    return any(heard(w) for w in mine) and all(heard(w) for w in mine if is_date_word(w))


def _date_words(text: str) -> int:
    return sum(1 for w in said_words(text) if is_date_word(w))


@dataclass(frozen=True)
class Checked:
    """A checked owner or due: the value to keep ("" = none); ``warning`` if the model's value
    was dropped or replaced; ``note`` (for the log) if it was filled from the transcript."""

    value: str
    warning: str = ""
    note: str = ""


#: How many lines before an item's own line may hold the request it answers.
EXCHANGE_LINES = 2
#: How a reply to a request opens ("Сергей, соберёшь деньги?" — "Да, до конца месяца").
_REPLY = re.compile(
    r"^\W*(?:да|хорошо|конечно|ладно|окей|сделаю|yes|yeah|sure|okay|ok|fine|of course)\b", re.IGNORECASE
)


def _due_in_exchange(task: str, owner: str, segments: Sequence[common_pb2.Segment], index: int) -> str:
    """The deadline said in the exchange the item comes from: the request to its owner ("Оксана,
    договоришься с автобусной компанией?", up to ``EXCHANGE_LINES`` before the item's line or
    the line itself) and the replies after it up to the line after the item's ("Да, к пятнице
    успею"; "Соберу до конца месяца"). A task is often asked in one line and given its deadline
    in the answer. Without an owner, only the reply to the item's own line counts."""
    first = index
    for i in range(index, max(index - EXCHANGE_LINES, 0) - 1, -1):
        if owner and any(same_name(owner, word) for word in vocatives(segments[i].text)):
            first = i
            break
    for i in range(first, min(index + 2, len(segments))):
        text = segments[i].text
        if i > first and not (_REPLY.match(text) or kind_of(text) == "task"):
            break  # no longer an answer to the request
        due = pick_due([text], hint=task)
        if due:
            return due
    return ""


def check_due(
    task: str, due: str, segments: Sequence[common_pb2.Segment], index: int, owner: str = ""
) -> Checked:
    """The due date of an action item, as said where it comes from (segment ``index``).

    The model's value stays if it was said near the item (and does not contradict the deadline
    said in the item's own segment); otherwise, and when the model left it empty, the deadline
    said in the item's own segment is taken (``dates.pick_due``). Nothing else: a due date
    that was not said is never produced.
    """
    value = due.strip().strip(".")
    if value.lower() in PLACEHOLDERS:
        value = ""
    here = segments[index]
    said_here = pick_due([here.text], hint=task)
    where = fmt_time(here.start)
    if value and said_in(value, near_words(segments, index)):
        if said_here and not said_in(value, said_words(said_here)):
            return Checked(said_here, Note("due_replaced", due=value, said=said_here, at=where))
        if said_here and _date_words(said_here) > _date_words(value):
            # "двенадцатый" for "к двенадцатому ноября": the same date, said in full there
            return Checked(said_here, note=f"due {value!r} completed as said at {where}: {said_here!r}")
        return Checked(value)
    if said_here:
        if value:
            return Checked(said_here, Note("due_not_near_said", due=value, said=said_here, at=where))
        return Checked(said_here, note=f"due {said_here!r} taken from the transcript at {where}")
    said_in_exchange = "" if value else _due_in_exchange(task, owner, segments, index)
    if said_in_exchange:
        return Checked(said_in_exchange, note=f"due {said_in_exchange!r} taken from the request or its reply")
    if value:
        return Checked("", Note("due_not_near_dropped", due=value))
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


SENTENCE = re.compile(r"[^.!?]+")
#: A line that plainly states a decision ("we agree", "we decided", "the decision is",
#: "решили", "договорились") and is not a refusal to decide ("we are not deciding", "не решаем").
_DECISION_CUE = re.compile(
    r"\b(?:decided|decide to|we decide|agree to|agreed|we agree|the decision is|carried|approved"
    r"|(?:that's|that is|this is) (?:a|the|our) decision|(?:first|second|third|next|last|final) decision"
    r"|решили|решаем|договорились|согласовали|"
    r"(?:первое|второе|третье|следующее|последнее)\s+решение|"
    r"решение\s+(?:такое|—|-|:))",
    re.IGNORECASE,
)


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


# -- the free text (title and summary): names and numbers must have been said -------------------

#: A sentence of the summary: up to its end mark and the spaces after it.
_SUMMARYSENTENCE = re.compile(r"[^.!?…]+(?:[.!?…]+[\"»”)]*\s*|$)")
_CAPITALIZED = re.compile(r"(?<![\w-])([A-ZА-ЯЁ][\w'’-]*)", re.UNICODE)
_LONG_NUMBER = re.compile(r"\d[\d\s,.]*\d{2}|\d{3,}")
_OPENING = re.compile(r"^[\s\"«“'(\[—–-]*")


def mid_sentence_capitals(text: str) -> Iterator[str]:
    """Capitalized words that do not open a sentence: names, as a transcript or a model writes them."""
    for sentence in _SUMMARYSENTENCE.findall(text):
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
        if len(word) < 2 or word in STOPWORDS or word in said or any(same_word(word, w) for w in said):
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


@dataclass(frozen=True)
class FreeText:
    """The title and summary to keep, with a warning for each part dropped."""

    title: str
    summary: str
    warnings: list[str]


def check_free_text(title: str, summary: str, segments: Sequence[common_pb2.Segment]) -> FreeText:
    """Drops the summary's sentences and the title that name people, places or numbers the
    transcript never said (``unsaid_words``). What is left may be empty: the caller fills it."""
    said = {w for s in segments for w in WORD_RE.findall(s.text.lower())}
    all_said = " ".join(re.sub(r"(?<=\d)[\s,.](?=\d)", "", s.text) for s in segments)
    warnings: list[str] = []
    kept = []
    invented: set[str] = set()
    for sentence in _SUMMARYSENTENCE.findall(summary):
        if not sentence.strip():
            continue
        unsaid = unsaid_words(sentence, said, all_said)
        invented |= {w.lower() for w in unsaid}
        if unsaid:
            warnings.append(Note("summary_sentence_dropped", text=sentence.strip(), names=", ".join(unsaid)))
        else:
            kept.append(sentence.strip())
    # A title is often in title case ("Weekly Sync Meeting"), so its capitals say nothing: it
    # goes if it has an unsaid number or a name the summary was caught inventing.
    unsaid = unsaid_numbers(title, all_said)
    unsaid += [w for w in WORD_RE.findall(title) if w.lower() in invented and w not in unsaid]
    if unsaid:
        warnings.append(Note("title_dropped", text=title, names=", ".join(unsaid)))
        title = ""
    return FreeText(title, " ".join(kept), warnings)


def states_decision(text: str) -> bool:
    """Whether ``text`` plainly states a decision ("we agree", "решили") and no refusal to decide."""
    return bool(_DECISION_CUE.search(text)) and not NOT_DECIDED.search(text)


#: A line that opens with agreement or with the group deciding ("Согласна, выкатываем…",
#: "Тогда решаем так…", "Итак, решили…", "Then we move the round…", "Хорошо, едем в воскресенье").
_AGREED_OPENING = re.compile(
    r"^\W*(?:согласн\w*|решаем|итак|тогда|значит|хорошо|ладно|окей|agreed|i agree|then we|so,? we"
    r"|(?:so,? )?from|okay|ok|good|fine|alright|all right)\b",
    re.IGNORECASE,
)


def firm_decision(text: str, people: frozenset[str] = frozenset()) -> bool:
    """A line that is a decision even when the model passes it over: the group says what it
    does (``kind_of``) and says it agreed or decided, or opens with that; not a bare
    "Договорились." (which says nothing of what)."""
    if kind_of(text, people) != "decision" or acknowledges_only(text):
        return False
    if assigned(text, Names(people, frozenset())):  # "С Константином договорились. Он привезёт…"
        return False
    return bool(_AGREED_OPENING.match(text)) or states_decision(text)


#: A firm decision line of at most this many words announces what the next line says.
ANNOUNCING_WORDS = 8


def announced(
    segments: Sequence[common_pb2.Segment], index: int, people: frozenset[str] = frozenset()
) -> str:
    """What the line after segment ``index`` decides, when segment ``index`` is a short firm
    decision that announces it ("Решаем так: без шлема на площадку." — "Никого не пускаем, даже
    на пять минут."); "" otherwise."""
    if index + 1 >= len(segments):
        return ""
    return _follows(segments[index].text, segments[index + 1].text, people)


def _follows(line: str, after: str, people: frozenset[str]) -> str:
    """The decision sentences of ``after`` when ``line`` is a short firm decision announcing it."""
    if len(line.split()) > ANNOUNCING_WORDS or not firm_decision(line, people):
        return ""
    if firm_decision(after, people):
        return ""
    return decision_sentences(after, people)


def firm_left_out(
    lines: Sequence[Line], items: Sequence[tuple[str, str]], people: frozenset[str] = frozenset()
) -> list[Line]:
    """The lines that say plainly a decision was taken ("Согласна, выкатываем постепенно…") and
    that no item covers even after the model's second look: kept as said (a sentence that goes on
    in the next line whole), the sentences that
    decide only ("Everyone okay with that?" and "Good, decided." left out). A decision line
    right after a short one that announces it ("Решаем так: без шлема на площадку" — "Никого не
    пускаем") is part of it; after a whole sentence, the next line is a matter of its own. A
    proposal taken up by the next line ("Предлагаю импортировать базу ночью" — "Давайте так и
    сделаем.") is a decision too: the proposal, with what the reply says the group does."""
    kept: list[Line] = []
    replies: set[int] = set()  # reply lines already kept with the proposal they take up
    joined = utterances(lines)  # "…within 15 minutes of any" + "outage, that's a decision."
    for i, (ln, last) in enumerate(joined):
        after = joined[i + 1][0] if i + 1 < len(joined) and joined[i + 1][0].index == last + 1 else None
        if ln.index in replies or covered(ln, items):
            continue
        # a reply an item covers says the decision already ("Согласна, выкатываем постепенно…")
        if after is not None and agrees(after.text) and not covered(after, items):
            proposed = proposal_sentences(ln.text, people)
            if proposed:
                # "Тогда предлагаю импортировать базу ночью…" — "Давайте так и сделаем."
                said = " ".join(filter(None, [proposed, decision_sentences(after.text, people)]))
                kept.append(Line(ln.index, ln.label, said))
                replies.add(after.index)
                continue
        said = decision_sentences(ln.text, people)
        if not (said and firm_decision(ln.text, people)):
            continue
        if after is not None:
            more = _follows(ln.text, after.text, people)
            if more and not covered(after, items):
                said = f"{said} {more}"
        kept.append(Line(ln.index, ln.label, said))
    return kept
