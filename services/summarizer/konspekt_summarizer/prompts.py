"""Prompts in the meeting's language (Russian and English; other languages get the English
prompt told to answer in that language). Small models follow a prompt in the language of the
transcript far better: an English prompt on Russian input made the 1.5B answer in English."""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGE_NAMES = {
    "en": "English",
    "ru": "Russian",
    "uk": "Ukrainian",
    "be": "Belarusian",
    "kk": "Kazakh",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "pl": "Polish",
    "tr": "Turkish",
    "zh": "Chinese",
    "ja": "Japanese",
}


@dataclass(frozen=True)
class Prompts:
    system_meeting: str
    system_lecture: str
    user: str  # {kind}, {lines}, {part}
    part: str  # {i}, {n}
    kind_meeting: str
    kind_lecture: str
    merge_system: str  # {kind}
    merge_user: str  # {parts}
    merge_part: str  # {i}, {title}, {summary}
    retry: str  # {error}
    missed_user: str  # {lines}
    gap_user: str  # {lines}
    no_speech_title: str
    no_speech_summary: str
    too_short_title: str
    too_short_summary: str  # {text}
    fallback_title: str  # {kind}: when the model's title named what was never said
    fallback_summary: str  # when no sentence of its summary and no item is left


_EN_RULES = """\
You write a konspekt: a short structured digest of a recorded {kind}, from its transcript.
Rules:
- Use only facts stated in the transcript. Do not add anything that was not said.
{style_rules}
- Every item has "time": the [mm:ss] label of the transcript line it comes from.
- Do not repeat an item. Keep every text short: one sentence.
- Write everything in {language}.
Answer with a single JSON object of this form:
{format}"""

_EN_MEETING = """\
- "decisions": only what was actually decided or agreed; each agreement ("we agree", "we \
decided", "the decision is") is a separate decision, and if a plan was changed, the decision is \
the new plan. Things postponed, rejected or left open are not decisions.
- "action_items": every task someone has to do after the meeting. "Boris will fix the login \
bug by Wednesday" is an action item, not a decision. "owner": the name of the person who will do \
it, as said; "due": the deadline as said ("by Wednesday", "March 3", "next week"). If no person \
or no deadline is said, use "". Never invent names or dates.
  Example from another meeting (not this one): the line "[04:12] Tom will send the report to \
the client by Monday." gives the action item {"task": "Send the report to the client", \
"owner": "Tom", "due": "by Monday", "time": "04:12"}.
- "key_points": the main topics and facts discussed.
- Read the transcript to its last line: include every decision and every task."""

_EN_LECTURE = """\
- "key_points": the main ideas, concepts and facts explained, in the order of the lecture.
- "decisions" and "action_items": usually empty lists [] for a lecture; fill them only if the \
speaker explicitly states a decision or gives a task (e.g. homework): "owner" is who must do it, \
"due" the deadline, as said, or "" if not said. Never invent names or dates."""

_RU_RULES = """\
Ты составляешь конспект — краткое структурированное изложение записанной {kind} по её расшифровке.
Правила:
- Используй только факты из расшифровки. Ничего не добавляй от себя.
{style_rules}
- У каждого пункта есть "time" — метка [мм:сс] строки расшифровки, из которой он взят.
- Не повторяй пункты. Пиши коротко: один пункт — одно предложение.
- Пиши всё на русском языке.
Ответь одним объектом JSON такого вида:
{format}"""

_RU_MEETING = """\
- "decisions" — только то, что действительно решили или согласовали; каждая договорённость \
("решили", "договорились") — отдельное решение, а если план изменили, решение — это новый план. \
Отложенные, отклонённые и нерешённые вопросы — не решения.
- "action_items" — все задачи, которые кто-то должен выполнить после встречи. "Борис исправит \
ошибку входа до среды" — это задача, а не решение. "owner" — имя того, кто её выполнит, так, как \
оно прозвучало; "due" — срок так, как его назвали ("до среды", "к 3 марта", "на следующей \
неделе"). Если исполнитель или срок не названы, оставь "". Никогда не придумывай имена и даты.
  Пример из другой встречи (не этой): из строки "[04:12] Тимур отправит отчёт клиенту до \
понедельника." получается задача {"task": "Отправить отчёт клиенту", "owner": "Тимур", \
"due": "до понедельника", "time": "04:12"}.
- "key_points" — основные темы и факты, которые обсуждали.
- Прочитай расшифровку до последней строки: включи каждое решение и каждую задачу."""

_RU_LECTURE = """\
- "key_points" — основные идеи, понятия и факты лекции по порядку.
- "decisions" и "action_items" для лекции обычно пустые списки []; заполняй их, только если \
лектор явно что-то решает или даёт задание (например, домашнее): "owner" — кто должен его \
выполнить, "due" — срок, как их назвали, или "", если не названы. Никогда не придумывай имена и даты."""


_POINT = '{{"text": "...", "time": "{t}"}}'
_ACTION = '{{"task": "...", "owner": "{o}", "due": "{d}", "time": "{t}"}}'


def answer_format(order: list[str], t: str, owner: str, due: str) -> str:
    """An example of the answer, fields in schema order: small models fill the arrays far more
    reliably when they have seen the item shape (without it the 1.5B left every array empty)."""
    point = _POINT.format(t=t)
    items = {
        "key_points": point,
        "decisions": point,
        "action_items": _ACTION.format(o=owner, d=due, t=t),
    }
    parts = [f' "{name}": [{items[name]}, ...]' if name in items else f' "{name}": "..."' for name in order]
    return "{" + ",\n".join(parts).lstrip() + "}"


MEETING_ORDER = ["title", "decisions", "action_items", "key_points", "summary"]
LECTURE_ORDER = ["title", "key_points", "decisions", "action_items", "summary"]


def _english(language: str) -> Prompts:
    return Prompts(
        system_meeting=_EN_RULES.format(
            kind="meeting", style_rules=_EN_MEETING, language=language, format=_en_format(MEETING_ORDER)
        ),
        system_lecture=_EN_RULES.format(
            kind="lecture", style_rules=_EN_LECTURE, language=language, format=_en_format(LECTURE_ORDER)
        ),
        user=(
            "Transcript of the {kind}{part} (one line per segment, [mm:ss] = start time):\n\n"
            "{lines}\n\n"
            "Write the konspekt of this {kind} as JSON: title (short), decisions, action_items, "
            "key_points, summary (2-4 sentences: what was discussed and what came out of it). "
            f"Write in {language}."
        ),
        part=", part {i} of {n}; summarize only this part",
        kind_meeting="meeting",
        kind_lecture="lecture",
        merge_system=(
            "You combine summaries of consecutive parts of one {kind} into a title and a summary "
            "of the whole {kind}. Use only facts from the part summaries. "
            f"Write in {language}. Answer with a single JSON object."
        ),
        merge_user=(
            "Summaries of the parts, in order:\n\n{parts}\n\n"
            "Write the JSON: title (short), summary (3-6 sentences about the whole recording)."
        ),
        merge_part="Part {i}: {title}. {summary}",
        retry=(
            "\n\nYour previous answer was rejected: {error}. Answer again with one complete, "
            "valid JSON object; keep it short."
        ),
        missed_user=(
            "These lines of the transcript state a decision or a task, but nothing in your konspekt "
            "comes from them:\n\n{lines}\n\n"
            "For each line write what was decided (decisions) or who will do what by when "
            "(action_items), with the line's time. Only what the line says. "
            f"Write in {language}."
        ),
        gap_user=(
            "Nothing in your konspekt comes from this stretch of the transcript:\n\n{lines}\n\n"
            "Write the main topics and facts of this stretch as key points, with the time of the "
            f"line each comes from. Only what these lines say. Write in {language}."
        ),
        too_short_title="Too little speech to summarize",
        too_short_summary="All that was said: “{text}”",
        fallback_title="Konspekt of the {kind}",
        fallback_summary="No summary: the model's named people or numbers that were never said.",
        no_speech_title="No speech found",
        no_speech_summary=(
            "The recording contains no speech that could be transcribed, so there is nothing to summarize."
        ),
    )


def _en_format(order: list[str]) -> str:
    return answer_format(order, "mm:ss", "name or empty", "deadline or empty")


def _ru_format(order: list[str]) -> str:
    return answer_format(order, "мм:сс", "имя или пусто", "срок или пусто")


RUSSIAN = Prompts(
    system_meeting=_RU_RULES.format(
        kind="встречи", style_rules=_RU_MEETING, format=_ru_format(MEETING_ORDER)
    ),
    system_lecture=_RU_RULES.format(kind="лекции", style_rules=_RU_LECTURE, format=_ru_format(LECTURE_ORDER)),
    user=(
        "Расшифровка {kind}{part} (одна строка — один сегмент, [мм:сс] — время начала):\n\n"
        "{lines}\n\n"
        "Составь конспект этой {kind} в JSON: title (короткое название), decisions, action_items, "
        "key_points, summary (2–4 предложения: что обсуждали и к чему пришли). Пиши по-русски."
    ),
    part=", часть {i} из {n}; излагай только эту часть",
    kind_meeting="встречи",
    kind_lecture="лекции",
    merge_system=(
        "Ты объединяешь краткие изложения последовательных частей одной {kind} в название и "
        "краткое изложение всей {kind}. Используй только факты из изложений частей. "
        "Пиши по-русски. Ответь одним объектом JSON."
    ),
    merge_user=(
        "Изложения частей по порядку:\n\n{parts}\n\n"
        "Напиши JSON: title (короткое название), summary (3–6 предложений обо всей записи)."
    ),
    merge_part="Часть {i}: {title}. {summary}",
    retry=(
        "\n\nТвой предыдущий ответ отклонён: {error}. Ответь заново одним полным корректным "
        "объектом JSON; пиши короче."
    ),
    missed_user=(
        "В этих строках расшифровки говорится о решении или задаче, но в твоём конспекте из них "
        "ничего нет:\n\n{lines}\n\n"
        "Для каждой строки напиши, что решили (decisions) или кто что сделает и к какому сроку "
        "(action_items), с временем строки. Только то, что сказано в строке. Пиши по-русски."
    ),
    gap_user=(
        "Из этого отрезка расшифровки в твоём конспекте ничего нет:\n\n{lines}\n\n"
        "Запиши основные темы и факты этого отрезка как главные пункты (key_points), с временем "
        "строки, из которой взят каждый. Только то, что сказано в этих строках. Пиши по-русски."
    ),
    too_short_title="Слишком мало речи для конспекта",
    too_short_summary="Всё, что было сказано: «{text}»",
    fallback_title="Конспект {kind}",
    fallback_summary="Краткого изложения нет: модель назвала людей или числа, которых в записи не было.",
    no_speech_title="Речь не найдена",
    no_speech_summary="В записи не найдено речи, которую можно было бы расшифровать, поэтому конспект пуст.",
)


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code or "English")


def prompts_for(language: str) -> Prompts:
    """The prompt set for an ISO 639-1 code: Russian, English, or English told to answer in it."""
    if language == "ru":
        return RUSSIAN
    return _english(language_name(language or "en"))
