"""Tasks as they are given in a meeting: asked and answered over two or three lines.

A task is rarely said in one sentence. "Оксана, договоришься с автобусной компанией?" — "Да, к
пятнице успею"; "Helen, will the public see these numbers?" — "Yes, I'll publish a short summary
on the website on Monday"; "Samuel, you know the checklist best, please add that step." —
"Okay, by Thursday." The request names the person and the work, the answer the promise and the
deadline. The model often writes one half (the question, or "Да, пятница успеешь" with no work in
it) or neither, and "I'll do it" belongs to the person just addressed, not to whoever the model
guessed. An ``Exchange`` is such a request with its answers, found by the form of the lines
(a person addressed by name with a request, then replies that agree or promise), never by
their words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from konspekt.v1 import common_pb2
from konspekt_summarizer import morph
from konspekt_summarizer.checks import assignee
from konspekt_summarizer.cues import COURSE_VERBS, kind_of
from konspekt_summarizer.dates import find_dates, pick_due
from konspekt_summarizer.evidence import WORD_RE, stems
from konspekt_summarizer.owners import NOT_NAMES, Names, assigned, vocatives

#: How many lines after the request may still answer it.
REPLY_LINES = 2
#: A reply opens by agreeing ("Да, к пятнице успею", "Okay, by Thursday").
_AGREES = re.compile(
    r"^\W*(?:да|хорошо|конечно|ладно|окей|ок|договорились|без проблем|сделаю|yes|yeah|yep|sure|okay|ok|fine"
    r"|of course|no problem|will do|got it|i will|i'll)\b",
    re.IGNORECASE,
)
#: A person promises ("I'll do it today", "Соберу до конца месяца", "Возьму").
_PROMISES = re.compile(
    r"\b(?:I'll|I’ll|I will|I can|I am going to|I'm going to|I'd be happy to)\b", re.IGNORECASE
)
#: A question that asks for information, not for work ("Walter, what is the total?"); "who
#: will…?" ("Роман, а кто согласует надбавку?") asks for a volunteer and stays a request.
_ASKS_WHAT = re.compile(
    r"^\W*(?:(?:and|so|but|а|и|ну|но)\W+)?(?:what|how|when|where|why|which|whose|is|are|did|do|does|have|has"
    r"|что|как|когда|где|почему|зачем|сколько|какой|какая|какое|какие|есть|был|была|было)\b",
    re.IGNORECASE,
)
#: The words that ask rather than say the work.
_ASKING = frozenset(
    {"can", "could", "would", "will", "you", "please", "who", "ll", "also", "someone", "sure", "okay"}
    | {"ты", "вы", "кто", "а", "пожалуйста", "можешь", "сможешь", "да", "хорошо", "конечно"}
)
_WHO = re.compile(r"\b(?:who|кто)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?…]+[.!?…]*")
_NAME_ALONE = re.compile(r"^\W*[^\W\d_]+\W*$")
#: English: a name doing something, after a comma or "and" ("…this year, Walter will look for").
_WILL_MID = re.compile(r"(?:,|\band|\bthen|\bso)\s+([A-Z][a-z'’-]+)\s+(?:will|is going to|'ll)\s+[a-z]")


@dataclass(frozen=True)
class Exchange:
    """A request to ``owner`` (segment ``request``) and the lines that answer it, up to ``last``."""

    owner: str
    request: int
    last: int
    asked: str  # the request, as said
    answers: tuple[str, ...]  # the lines that answer it, as said
    due: str

    @property
    def text(self) -> str:
        """The task as said: the request and its answers ("Оксана, договоришься…? — Да, к пятнице")."""
        return " — ".join([self.asked, *self.answers])

    def holds(self, index: int) -> bool:
        return self.request <= index <= self.last


def _sentences(text: str) -> list[str]:
    """The sentences of ``text``; a name said alone joins the next one ("Елена. Найди…")."""
    out: list[str] = []
    for sentence in _SENTENCE.findall(text):
        if out and _NAME_ALONE.match(out[-1]):
            out[-1] = f"{out[-1]} {sentence.strip()}"
        else:
            out.append(sentence.strip())
    return out


def _named(word: str, names: Names) -> str:
    """``word`` capitalized when it is a person's name said in the meeting, else ""."""
    if word.lower() in NOT_NAMES or not names.said(word):
        return ""
    return word[:1].upper() + word[1:]


def _addressee(sentence: str, names: Names, promised: bool) -> str:
    """The person ``sentence`` asks for work: a name addressed ("Ольга, а кто обновит…?"; any
    addressed sentence when the answer promises: "It goes into the vault, Frank, that's one for
    you." — "I'll do it today") or a name right before a verb said to them ("Павел, исправь" as
    ASR writes it: "Павел исправь"). Not a question for information ("Walter, what is…?")."""
    for word in vocatives(sentence):
        name = _named(word, names)
        if not name:
            continue
        rest = sentence.replace(word, " ", 1).lstrip(" ,.")
        if _ASKS_WHAT.match(rest):
            continue
        if promised or kind_of(sentence, names.people) == "task":
            return name
    words = WORD_RE.findall(sentence)
    for word, verb in pairwise(words):
        if word[:1].isupper() and morph.person_of_verb(verb) == "you" and (name := _named(word, names)):
            return name
    return ""


def _given(sentence: str, names: Names) -> str:
    """The person ``sentence`` gives work to in the third person: "Поручим Наталии заказать…",
    "С Константином договорились. Он привезёт…", "Руслан вызовет инспектора", "…, Walter will
    look for savings"."""
    person = assigned(sentence, names) or assignee(sentence)
    if not person:
        m = _WILL_MID.search(sentence)
        person = m.group(1) if m else ""
    return _named(person, names) if person else ""


def _replies(segments: Sequence[common_pb2.Segment], first: int, names: Names) -> list[int]:
    """The lines after ``first`` that answer it: each agrees or promises and asks no one else."""
    found: list[int] = []
    for i in range(first + 1, min(first + 1 + REPLY_LINES, len(segments))):
        text = segments[i].text.strip()
        if not text or any(_addressee(s, names, False) for s in _sentences(text)):
            break
        if not (_AGREES.match(text) or _promises(text, names)):
            break
        found.append(i)
    return found


def _promises(text: str, names: Names) -> bool:
    """A first-person promise: "I'll do it today", "Соберу до конца месяца", "Описание обновлю я"."""
    if _PROMISES.search(text):
        return True
    # "Предлагаю…", "Думаю, успеем": a proposal or an opinion is no promise
    return any(
        morph.person_of_verb(w) == "i" and morph.lemma(w) not in COURSE_VERBS for w in WORD_RE.findall(text)
    )


def _continued(segments: Sequence[common_pb2.Segment], index: int) -> list[str]:
    """Segment ``index`` and, when it stops mid-sentence, the next one ("Oscar will run a short
    falls training for the night" / "staff on Thursday")."""
    text = segments[index].text.strip()
    if index + 1 < len(segments) and text and text[-1] not in ".!?…":
        return [text, segments[index + 1].text.strip()]
    return [text]


def find_exchanges(segments: Sequence[common_pb2.Segment], names: Names) -> list[Exchange]:
    """Every request to a named person that is taken on: answered with a promise, or answered
    with agreement and a deadline said in the exchange; and work given to a person in the third
    person with a deadline or an answer. A question that only asks for information ("Samuel, can
    you walk us through the timeline?" answered "On Saturday at 9:40…") is none."""
    found: list[Exchange] = []
    for i, segment in enumerate(segments):
        sentences = list(reversed(_sentences(segment.text)))
        exchange = next(filter(None, (_asked(segments, i, s, names) for s in sentences)), None)
        exchange = exchange or next(filter(None, (_given_to(segments, i, s, names) for s in sentences)), None)
        # "С Константином договорились. Он привезёт…": given over two sentences
        exchange = exchange or _given_to(segments, i, segment.text.strip(), names)
        if exchange is not None:
            found.append(exchange)
    return found


def _asked(segments: Sequence[common_pb2.Segment], i: int, sentence: str, names: Names) -> Exchange | None:
    """A person asked by name in ``sentence`` (segment ``i``) who takes the work on, in the
    sentences after it in the same line ("…by Wednesday, right? Yes, Boris will do it") or in
    the lines after."""
    after = _sentences(segments[i].text)
    after = after[after.index(sentence) + 1 :] if sentence in after else []
    here = tuple(t for t in after if _AGREES.match(t) or _promises(t, names))
    replies = _replies(segments, i, names) if len(here) == len(after) else []
    said = here + tuple(segments[j].text.strip() for j in replies)
    promised = any(_promises(t, names) for t in said)
    owner = _addressee(sentence, names, promised)
    due = pick_due(list(said)) or pick_due([sentence])
    if not owner or not (promised or (said and due)):
        return None
    return Exchange(owner, i, replies[-1] if replies else i, sentence, said, due)


def _given_to(segments: Sequence[common_pb2.Segment], i: int, sentence: str, names: Names) -> Exchange | None:
    """Work given to a person in the third person in ``sentence``, with a deadline or an answer."""
    owner = _given(sentence, names)
    if not owner:
        return None
    asked = _continued(segments, i) if segments[i].text.strip().endswith(sentence) else [sentence]
    last = i + len(asked) - 1
    replies = _replies(segments, last, names)
    said = tuple(segments[j].text.strip() for j in replies)
    due = pick_due(list(said)) or pick_due([" ".join(asked)])
    if not (replies or due):
        return None
    return Exchange(owner, i, replies[-1] if replies else last, " ".join(asked), said, due)


def at(exchanges: Sequence[Exchange], index: int) -> Exchange | None:
    """The exchange segment ``index`` belongs to, if any."""
    return next((x for x in exchanges if x.holds(index)), None)


def _work(text: str) -> set[str]:
    """The stems of ``text`` that say the work: without names and dates ("Yes, Boris will do it
    by Wednesday" says none)."""
    for mention in find_dates(text):
        text = text.replace(mention.text, " ")
    words = (w for w in WORD_RE.findall(text) if not w[:1].isupper() and w.lower() not in _ASKING)
    return stems(" ".join(words))


def half_of(task: str, exchange: Exchange, index: int) -> bool:
    """Whether ``task`` (said at segment ``index``) misses the half of ``exchange`` that says
    the work: it shares under half of the request's words ("Да, пятница успеешь" for "Оксана,
    договоришься с автобусной компанией?"), or the request was a question, so the answers say
    the work, and ``task`` shares under half of their words ("Helen, will the public see these
    numbers?" for "Yes, I'll publish a short summary on the website on Monday")."""
    mine = stems(task)
    asked = _work(exchange.asked)
    # from the answer's line, half of the request is not enough ("На бовку я согласую сам" for
    # "Роман, а кто согласует надбавку за ночные смены?")
    if asked and len(mine & asked) * 2 < len(asked) + (index > exchange.request):
        return True
    answers = set().union(*(_work(t) for t in exchange.answers))
    telling = "?" in exchange.asked or bool(_WHO.search(exchange.asked))
    return telling and bool(answers) and len(mine & answers) * 2 < len(answers)
