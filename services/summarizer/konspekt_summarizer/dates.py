"""Deadlines as they are said, in English and Russian: "by Friday", "March 14th", "next week",
"до пятницы", "к 15 марта", "к двенадцатому ноября", "завтра".

Used to check and fill the "due" of an action item from the transcript segment it comes from:
a small model often leaves "due" empty (or writes a line label into it) although the deadline
is said in the very line it cites. Only what is found here, in the transcript, can become a due
date: nothing is computed or invented (no "Friday" -> a calendar date).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# -- English --------------------------------------------------------------------------------------

_EN_WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_EN_MONTH_FULL = r"(?:january|february|march|april|may|june|july|august|september|october|november|december)"
_EN_MONTH = rf"(?:{_EN_MONTH_FULL}|(?:jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\.?)"
_EN_ORDINAL = (
    r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
    r"thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|"
    r"twenty[- ](?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)|thirtieth|thirty[- ]first)"
)
_EN_DAY = rf"(?:\d{{1,2}}(?:st|nd|rd|th)?|{_EN_ORDINAL})"
_EN_NUMBER = r"(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|\d+)"
_EN_PERIOD = r"(?:day|week|month|quarter|sprint|year)"
_EN_DEADLINE = r"(?:no later than|not later than|by|before|until|till|due)"
_EN_PREP = rf"(?:(?:{_EN_DEADLINE}|on|for)\s+(?:the\s+)?)?"
_EN_CORES = [
    rf"{_EN_MONTH}\s+(?:the\s+)?{_EN_DAY}(?:,?\s*\d{{4}})?",
    rf"{_EN_DAY}\s+(?:of\s+)?{_EN_MONTH}(?:,?\s*\d{{4}})?",
    rf"(?:(?:next|this|coming)\s+)?{_EN_WEEKDAY}(?:\s+(?:morning|afternoon|evening|night|noon))?",
    rf"(?:end|middle|start|beginning)\s+of\s+(?:the\s+|this\s+|next\s+)?{_EN_PERIOD}",
    r"tonight|tomorrow(?:\s+(?:morning|afternoon|evening|night))?|(?:the\s+)?day\s+after\s+tomorrow",
    r"later\s+today|end\s+of\s+today|eod|eow",
    # said alone after a verb ("I'll do it today"), as "сегодня" is; not "Today we talk."
    r"(?<=\w\s)today|this\s+(?:morning|afternoon|evening)",
    rf"(?:next|this|the\s+coming|the\s+following)\s+{_EN_PERIOD}",
    rf"(?:in|within)\s+{_EN_NUMBER}\s+(?:days?|weeks?|months?)",
    r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}(?:/\d{2,4})?",
]
#: Needs a deadline word in front: "by March", "by the 14th", "before the end of May".
_EN_WITH_DEADLINE = [
    rf"{_EN_MONTH_FULL}",
    r"\d{1,2}(?:st|nd|rd|th)",
]

# -- Russian --------------------------------------------------------------------------------------

_RU_WEEKDAY = (
    r"(?:понедельник[а-я]*|вторник[а-я]*|сред[аыу]|(?<=к\s)среде|четверг[а-я]*|пятниц[аыуе]|суббот[аыуе]|"
    r"воскресень[еяю])"
)
_RU_UNAMBIGUOUS_WEEKDAY = (
    r"(?:понедельник[аеу]?|вторник[аеу]?|четверг[аеу]?|пятниц[аыуе]|суббот[аыуе]|воскресень[еяю])"
)
_RU_MONTH_GEN = r"(?:января|февраля|марта|апреля|мая|июня|июля|августа|сентября|октября|ноября|декабря)"
_RU_MONTH_ANY = (
    r"(?:январ[яюе]|феврал[яюе]|март[ауе]?|апрел[яюе]|ма[яюе]|июн[яюе]|июл[яюе]|август[ауе]?|"
    r"сентябр[яюе]|октябр[яюе]|ноябр[яюе]|декабр[яюе])"
)
_RU_ORDINAL_STEM = (
    r"(?:перв|втор|трет|четв[её]рт|пят|шест|седьм|восьм|девят|десят|одиннадцат|двенадцат|тринадцат|"
    r"четырнадцат|пятнадцат|шестнадцат|семнадцат|восемнадцат|девятнадцат|двадцат|тридцат)"
)
_RU_ORDINAL = rf"(?:(?:двадцать|тридцать)\s+)?{_RU_ORDINAL_STEM}(?:ое|ого|ому|ье|ьего|ьему|ее|его|ему|ий|ый)"
_RU_DAY = rf"(?:\d{{1,2}}(?:-?(?:го|е|ое|ого|ому|му))?|{_RU_ORDINAL})"
_RU_PERIOD = r"(?:дня|недели|месяца|квартала|года|спринта)"
_RU_DEADLINE = r"(?:не\s+позднее|не\s+позже|до|к|ко)"
_RU_PREP = rf"(?:(?:{_RU_DEADLINE}|в|во|на|по)\s+)?"
_RU_CORES = [
    rf"{_RU_DAY}\s+{_RU_MONTH_GEN}(?:\s+\d{{4}}(?:\s*г(?:ода|\.)?)?)?",
    rf"(?:конц[ауе]|середин[еыу]|начал[ау])\s+(?:этой\s+|следующей\s+|этого\s+|следующего\s+)?{_RU_PERIOD}",
    r"завтра|послезавтра|сегодня(?:\s+(?:утром|днём|днем|вечером))?",
    # a weekday said alone ("Описание обновлю я, понедельник"); not "среда" (also "environment")
    rf"(?:(?:эт[уоа]|следующ[а-я]+|ближайш[а-я]+)\s+)?{_RU_UNAMBIGUOUS_WEEKDAY}",
    r"(?:на\s+)?(?:этой|следующей|будущей)\s+неделе",
    r"через\s+(?:\w+\s+)?(?:день|дня|дней|неделю|недели|недель|месяц|месяца|месяцев)",
    r"в\s+течение\s+(?:\w+\s+)?(?:дня|дней|недели|недель|месяца|месяцев)",
    r"\d{1,2}\.\d{1,2}\.\d{2,4}",
]
#: Needs a preposition in front (a bare "среда" is also "environment"): "до среды", "в пятницу",
#: "к следующему понедельнику", "до марта", "в мае".
_RU_WITH_PREP = [
    rf"(?:(?:эт[уоа]|следующ[а-я]+|ближайш[а-я]+)\s+)?{_RU_WEEKDAY}",
    rf"(?:концу\s+)?{_RU_MONTH_ANY}",
    r"\d{1,2}\.\d{2}(?!\.\d)",
]

_BOUNDARY_START = r"(?<![\w])"
_BOUNDARY_END = r"(?![\w])"


def _alternation(cores: list[str]) -> str:
    return "|".join(f"(?:{c})" for c in cores)


_DATE_RE = re.compile(
    _BOUNDARY_START
    + "(?:"
    + "|".join(
        [
            rf"(?P<en>{_EN_PREP}(?:{_alternation(_EN_CORES)}))",
            rf"(?P<en_deadline>{_EN_DEADLINE}\s+(?:the\s+)?(?:end\s+of\s+)?(?:{_alternation(_EN_WITH_DEADLINE)}))",
            rf"(?P<ru_prep>(?:{_RU_DEADLINE}|в|во|на|по)\s+(?:{_alternation(_RU_WITH_PREP)}))",
            rf"(?P<ru>{_RU_PREP}(?:{_alternation(_RU_CORES)}))",
        ]
    )
    + ")"
    + _BOUNDARY_END,
    re.IGNORECASE,
)
_DEADLINE_START = re.compile(rf"^(?:{_EN_DEADLINE}|{_RU_DEADLINE})\s", re.IGNORECASE)


@dataclass(frozen=True)
class DateMention:
    """A date expression as said: ``text`` is the words of the transcript, preposition included."""

    text: str
    start: int
    end: int

    @property
    def is_deadline(self) -> bool:
        """Said with a deadline word ("by", "until", "до", "к"), not just a date."""
        return bool(_DEADLINE_START.match(self.text))

    @property
    def key(self) -> str:
        return " ".join(self.text.lower().split())


def find_dates(text: str) -> list[DateMention]:
    """Date expressions in ``text``, in order, each with its preposition ("by Friday")."""
    return [DateMention(" ".join(m.group(0).split()), m.start(), m.end()) for m in _DATE_RE.finditer(text)]


def _core_words(mention: DateMention) -> set[str]:
    words = re.findall(r"\w+", mention.text.lower())
    return {w for w in words if len(w) > 2 or w.isdigit()} - {"the", "not", "than", "later"}


def pick_due(texts: list[str], hint: str = "") -> str:
    """The one deadline said in ``texts`` (the item's own segment), or "" if none or unclear.

    Several different dates are resolved by ``hint`` (the item text, which may repeat the
    date it means), then by a deadline word ("by", "до", "к") that only one of them has;
    otherwise nothing is picked rather than a guess.
    """
    found: dict[str, DateMention] = {}
    for text in texts:
        for mention in find_dates(text):
            found.setdefault(mention.key, mention)
    # "by Friday" and "Friday" in one line are the same date: keep the longer
    mentions = [
        m for m in found.values() if not any(m.key != o.key and m.key in o.key for o in found.values())
    ]
    if len(mentions) == 1:
        return mentions[0].text
    if not mentions:
        return ""
    if hint:
        hinted_words = set(re.findall(r"\w+", hint.lower()))
        hinted = [
            m for m in mentions if _core_words(m) and _core_words(m) <= hinted_words | {"by", "до", "к"}
        ]
        if len(hinted) == 1:
            return hinted[0].text
    deadlines = [m for m in mentions if m.is_deadline]
    if len(deadlines) == 1:
        return deadlines[0].text
    return ""


_DATE_WORD_RE = re.compile(
    rf"^(?:{_EN_WEEKDAY}|{_EN_MONTH_FULL}|{_EN_ORDINAL}|{_RU_WEEKDAY}|{_RU_MONTH_ANY}|{_RU_ORDINAL}|"
    r"\d+(?:st|nd|rd|th|го|е|ое|ого|ому|му)?)$",
    re.IGNORECASE,
)


def is_date_word(word: str) -> bool:
    """A weekday, month, ordinal or number: the words of a due date that must not be made up."""
    return bool(_DATE_WORD_RE.match(word))


def number_of(word: str) -> str:
    """ "14th" -> "14", "15-го" -> "15": so a due "March 14" meets a said "March 14th"."""
    m = re.match(r"^(\d+)", word)
    return m.group(1) if m else word
