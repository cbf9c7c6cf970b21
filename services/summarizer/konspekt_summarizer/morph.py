"""Russian morphology (pymorphy3 with its OpenCorpora dictionary, shipped on PyPI): which words
are first names, surnames or patronymics in any case form, their nominative, and verb forms that
show who acts ("вводим" — we, "составлю" — I). Transcripts carry no speaker labels and a
capitalized word at the start of a sentence says nothing ("Согласен, …"), so a dictionary is
the only reliable test of a Russian name; English names keep the capitalization test in
``owners``."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

_CYRILLIC = re.compile(r"^[а-яё-]+$", re.IGNORECASE)
_PERSON = frozenset({"Name", "Surn", "Patr"})
#: Parts of speech whose likeliest reading makes a word no name (prepositions, conjunctions,
#: particles, pronouns, interjections).
_FUNCTION_WORD = frozenset({"PREP", "CONJ", "PRCL", "NPRO", "INTJ"})


@cache
def _analyzer() -> Any:
    import pymorphy3  # imported on first use: 0.1 s and ~15 MB, only for Russian text

    return pymorphy3.MorphAnalyzer(lang="ru")


def cyrillic(word: str) -> bool:
    return bool(_CYRILLIC.match(word))


@cache
def _parses(word: str) -> tuple[Any, ...]:
    return tuple(_analyzer().parse(word.lower()))


def name_forms(word: str) -> list[Any]:
    """The dictionary's readings of ``word`` as a person's name (first name, surname,
    patronymic), most likely first; [] for any other word or a word not in Cyrillic."""
    if not cyrillic(word):
        return []
    return [p for p in _parses(word) if _PERSON & p.tag.grammemes]


def known(word: str) -> bool:
    """Whether the dictionary has ``word`` (else its readings are guesses from the ending)."""
    return cyrillic(word) and bool(_analyzer().word_is_known(word.lower()))


def is_name(word: str, *, only: bool = False) -> bool:
    """Whether ``word`` can be a person's name ("Виталию", "Наталье", "Роман"); with ``only``,
    whether its likeliest reading is one (a lower-case "виталию" from ASR, not "роман", a novel)."""
    forms = name_forms(word)
    if not forms or _FUNCTION_WORD & _parses(word)[0].tag.grammemes:
        return False  # "По" (also a surname) opening "По оплате…", "Ли": a word, not a name
    return not only or forms[0] is _parses(word)[0]


def nominative(word: str) -> str:
    """A name in the nominative, capitalized as written ("Виталию" → "Виталий"); ``word``
    itself when it is no name or already nominative."""
    forms = name_forms(word)
    if not forms or "nomn" in forms[0].tag.grammemes:
        return word
    lemma = str(forms[0].normal_form)
    return lemma[:1].upper() + lemma[1:] if word[:1].isupper() else lemma


def person_of_verb(word: str) -> str:
    """ "we" for a first-person plural verb in the present or future ("вводим", "проведём",
    "принимаем"); "i" for a first-person singular one ("составлю", "позвоню"); "you" for a
    second-person or imperative one ("составишь", "исправь"); "" otherwise. Only the likeliest
    reading counts."""
    if not cyrillic(word):
        return ""
    best = _parses(word)[0]
    grammemes = best.tag.grammemes
    if "VERB" not in grammemes or "past" in grammemes:
        return ""
    if "2per" in grammemes or "impr" in grammemes:
        return "you"
    if "1per" not in grammemes:
        return ""
    return "we" if "plur" in grammemes else "i"


def lemma(word: str) -> str:
    """The dictionary form of the likeliest reading ("обсудим" → "обсудить")."""
    return str(_parses(word)[0].normal_form) if cyrillic(word) else word.lower()


def name_cases(word: str) -> frozenset[str]:
    """The cases ``word`` has as a person's name ("Наталье" → loct, datv); empty for other words."""
    return frozenset(g for p in name_forms(word) for g in p.tag.grammemes if g in _CASES)


def third_person(word: str) -> bool:
    """Whether the likeliest reading of ``word`` is a third-person singular verb, present or
    future ("замерит", "найдёт")."""
    if not cyrillic(word):
        return False
    grammemes = _parses(word)[0].tag.grammemes
    return {"VERB", "3per", "sing"} <= grammemes and "past" not in grammemes


def infinitive(word: str) -> bool:
    """Whether the likeliest reading of ``word`` is an infinitive ("договориться", "заказать")."""
    return cyrillic(word) and "INFN" in _parses(word)[0].tag.grammemes


_CASES = frozenset({"nomn", "gent", "datv", "accs", "ablt", "loct", "voct"})
#: Prepositions after which a genitive name is no person given a task ("у Натальи узнать").
PREPOSITIONS = frozenset({"у", "от", "для", "без", "до", "из", "с", "со", "около", "после", "кроме"})


def narrates_past(words: list[str]) -> bool:
    """Whether the Russian ``words`` speak only of the past: a past-tense verb ("потратили",
    "купили") and no verb in the present or future, no imperative, no infinitive ("мы купили
    краску" is no decision; "решили: покупаем" is)."""
    past = False
    for word in words:
        if not cyrillic(word):
            continue
        grammemes = _parses(word)[0].tag.grammemes
        if "INFN" in grammemes or ("VERB" in grammemes and "past" not in grammemes):
            return False
        past = past or {"VERB", "past"} <= grammemes
    return past
