"""Every word the gateway says to people, in English and Russian: the page, the API's error
messages, job states, stage names, and the notes of the stages and the pipeline (progress,
failure reasons, warnings), said from their code and args with one table per language
(``notice_texts``; no pattern reads an English sentence).

The language of a request: the ``konspekt_lang`` cookie (the page's switch), else the
Accept-Language header (q-values respected), else English.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Literal

from starlette.requests import HTTPConnection

from konspekt.notices import TEMPLATES, Note
from konspekt_gateway import stages
from konspekt_gateway.notice_texts import TABLES

Lang = Literal["en", "ru"]
LANGUAGES: tuple[Lang, ...] = ("en", "ru")
DEFAULT_LANGUAGE: Lang = "en"
LANG_COOKIE = "konspekt_lang"

#: API error messages by code (``{name}`` placeholders are filled from the error's params).
ERRORS: dict[str, dict[Lang, str]] = {
    "job_not_found": {"en": "there is no job '{job_id}'", "ru": "задание «{job_id}» не найдено"},
    "file_not_found": {
        "en": "unknown file '{name}'; one of: {names}",
        "ru": "неизвестный файл «{name}»; доступны: {names}",
    },
    "route_not_found": {"en": "not found", "ru": "не найдено"},
    "method_not_allowed": {"en": "method not allowed", "ru": "метод не поддерживается"},
    "file_not_ready": {
        "en": "{name} is not ready yet (state: {state})",
        "ru": "{name} ещё не готов (состояние: {state})",
    },
    "konspekt_not_ready": {
        "en": "the konspekt is not ready yet (state: {state})",
        "ru": "конспект ещё не готов (состояние: {state})",
    },
    "transcript_not_ready": {
        "en": "the transcript is not ready yet (state: {state})",
        "ru": "расшифровка ещё не готова (состояние: {state})",
    },
    "job_running": {
        "en": "the job is still running (state: {state}); ask again once it has ended",
        "ru": "задача ещё выполняется (состояние: {state}); попросите снова, когда она закончится",
    },
    "render_failed": {
        "en": "the documents could not be made from the edited konspekt ({reason}); nothing was changed",
        "ru": "не удалось собрать документы из исправленного конспекта ({reason}); ничего не изменено",
    },
    "range_not_satisfiable": {
        "en": "the requested range is outside the recording ({size} bytes)",
        "ru": "запрошенный диапазон вне записи ({size} байт)",
    },
    "too_large": {
        "en": "the file is larger than the limit of {limit_mb} MB",
        "ru": "файл больше допустимых {limit_mb} МБ",
    },
    "empty_file": {"en": "the file is empty", "ru": "файл пустой"},
    "unsupported_type": {
        "en": "'{name}' is not a video or audio file",
        "ru": "«{name}» — не видео- и не аудиофайл",
    },
    "busy": {
        "en": "too many uploads at once; try again in a minute",
        "ru": "слишком много загрузок одновременно; попробуйте через минуту",
    },
    "disconnected": {"en": "the upload was interrupted", "ru": "загрузка прервалась"},
    "upload_stalled": {
        "en": "no data arrived for too long; the upload was stopped",
        "ru": "данные слишком долго не поступали; загрузка остановлена",
    },
    "bad_language": {
        "en": "language must be empty, auto, or the code of a language speech recognition knows "
        "(ISO 639-1, e.g. en, ru, de), not '{value}'",
        "ru": "язык должен быть пустым, auto или кодом языка, который знает распознавание речи "
        "(ISO 639-1, например en, ru, de), а не «{value}»",
    },
    "too_many_uploads": {
        "en": "too many of your uploads at once (limit {limit}); try again when one has finished",
        "ru": "слишком много ваших загрузок одновременно (предел: {limit}); повторите, когда одна "
        "из них закончится",
    },
    "too_many_jobs": {
        "en": "you already have the most recordings allowed waiting or in progress ({limit}); "
        "try again when one is done",
        "ru": "у вас уже наибольшее допустимое число записей в очереди и в работе ({limit}); "
        "повторите, когда одна из них будет готова",
    },
    "too_many_streams": {
        "en": "too many of your event streams are open (limit {limit}); close one, or ask for "
        "the job now and then instead",
        "ru": "у вас открыто слишком много потоков событий (предел: {limit}); закройте один "
        "или запрашивайте задание время от времени",
    },
    "upload_too_slow": {
        "en": "the upload was too slow (under {rate} KiB/s on average) and was stopped",
        "ru": "загрузка шла слишком медленно (в среднем меньше {rate} КиБ/с) и была остановлена",
    },
    "upload_too_long": {
        "en": "the upload took longer than the limit of {minutes} min and was stopped",
        "ru": "загрузка длилась дольше допустимых {minutes} мин и была остановлена",
    },
    "upload_too_long_seconds": {
        "en": "the upload took longer than the limit of {seconds} s and was stopped",
        "ru": "загрузка длилась дольше допустимых {seconds} с и была остановлена",
    },
    "bad_style": {
        "en": "style must be meeting or lecture, not '{value}'",
        "ru": "стиль должен быть meeting или lecture, а не «{value}»",
    },
    "bad_callback": {
        "en": "callback_url must be an http:// or https:// URL",
        "ru": "callback_url должен быть адресом http:// или https://",
    },
    "bad_callback_userinfo": {
        "en": "callback_url must not contain a user name or password",
        "ru": "callback_url не должен содержать имя пользователя или пароль",
    },
    "bad_callback_host": {
        "en": "callback_url has a malformed host '{host}'",
        "ru": "в callback_url неверный адрес узла «{host}»",
    },
    "callback_not_public": {
        "en": "callback_url points to {address}, a {kind} address; callbacks go only to public "
        "addresses (the administrator can allow internal receivers)",
        "ru": "callback_url указывает на {address}: {kind_ru}; обратные вызовы отправляются только "
        "на публичные адреса (администратор может разрешить внутренние)",
    },
    "no_boundary": {
        "en": "the multipart body has no boundary",
        "ru": "в теле multipart нет разделителя (boundary)",
    },
    "bad_multipart": {
        "en": "malformed multipart body: {detail}",
        "ru": "повреждённое тело multipart: {detail}",
    },
    "no_file_field": {
        "en": "the form has no '{field}' file field",
        "ru": "в форме нет файлового поля «{field}»",
    },
    "invalid_request": {"en": "{where}: {detail}", "ru": "{where}: неверное значение ({detail})"},
    "unauthorized": {
        "en": "the bearer token is empty or malformed",
        "ru": "токен в заголовке Authorization пустой или неверный",
    },
    "gone": {
        "en": "the file is gone from the store (results expire after 24 h)",
        "ru": "файла больше нет в хранилище (результаты удаляются через 24 часа)",
    },
    "unavailable": {
        "en": "the object store is not available; try again later",
        "ru": "хранилище недоступно; попробуйте позже",
    },
    "not_ready": {"en": "not ready: {down} down", "ru": "не готово: недоступно — {down}"},
    "internal": {
        "en": "internal error in the gateway; see its log",
        "ru": "внутренняя ошибка шлюза; подробности в его журнале",
    },
}

#: Kinds of address a callback is refused for (callbacks.blocked_kind), in Russian.
ADDRESS_KINDS: dict[str, str] = {
    "loopback": "петлевой адрес (loopback)",
    "private": "частный адрес",
    "link-local": "локальный адрес канала (link-local)",
    "multicast": "групповой адрес (multicast)",
    "reserved": "зарезервированный адрес",
    "unspecified": "неопределённый адрес",
    "shared (CGNAT)": "общий адрес провайдера (CGNAT)",
    "documentation": "адрес для документации",
}

STATES: dict[str, dict[Lang, str]] = {
    "queued": {"en": "Waiting in the queue", "ru": "В очереди"},
    "extracting_audio": {"en": "Extracting audio", "ru": "Извлечение звука"},
    "transcribing": {"en": "Transcribing speech", "ru": "Распознавание речи"},
    "summarizing": {"en": "Writing the konspekt", "ru": "Составление конспекта"},
    "rendering": {"en": "Preparing documents", "ru": "Подготовка документов"},
    "done": {"en": "Done!", "ru": "Завершено!"},
    "failed": {"en": "Failed", "ru": "Ошибка"},
}


#: Arguments whose value is a word of the English sentence, said otherwise in Russian.
def _stage_ru(value: str) -> str:
    stage = stages.by_reason_name(value)  # the pipeline names stages by their reason_name
    return stage.name_ru if stage else value


_WORDS: dict[str, Callable[[str], str]] = {
    "stage": _stage_ru,
    "kind": lambda value: ADDRESS_KINDS.get(value, value),
}
#: The notes without arguments, by their English text: a record written before notices, or a
#: message set as plain text, is still said in the page's language (an exact match, no pattern).
_PLAIN: dict[str, str] = {
    template: code
    for code, template in TEMPLATES.items()
    if all(field is None for _, field, _, _ in string.Formatter().parse(template))
}


def say(note: Note, lang: Lang) -> str | None:
    """A note in ``lang`` from that language's table (``notice_texts``), its parts too; None
    when the table has no text for its code (a newer stage's note)."""
    template = TABLES[lang].get(note.code)
    if template is None:
        return None
    values: dict[str, str] = {}
    for name, value in note.args.items():
        word = _WORDS.get(name) if lang != "en" else None
        values[name] = word(value) if word else value
    for name, part in note.parts.items():
        said = say(part, lang)
        values[name] = str(part) if said is None else said
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):  # args of another version of the code
        return None


def _as_note(text: str) -> Note | None:
    if isinstance(text, Note):
        return text
    code = _PLAIN.get(text)
    return Note(code) if code else None


def progress(text: str, lang: Lang) -> str:
    """A progress message (a stage's or the gateway's, a Note) in ``lang``; "" for one without
    a known code in Russian (the page then shows the state alone, never English on a Russian
    page)."""
    if lang == "en" or not text:
        return str(text)
    note = _as_note(text)
    return (say(note, lang) if note is not None else None) or ""


def reason(text: str, lang: Lang) -> str:
    """A failure reason or warning (a Note) in ``lang``; text without a known code is kept."""
    if lang == "en" or not text:
        return str(text)
    note = _as_note(text)
    return (say(note, lang) if note is not None else None) or str(text)


class LocalizedError(Exception):
    """An API error: HTTP status, stable code, and a message (``key`` in ERRORS, default the
    code) rendered in each request's language. ``message`` is the English text."""

    def __init__(self, status: int, code: str, key: str | None = None, **params: object) -> None:
        self.status = status
        self.code = code
        self.key = key or code
        self.params = params
        #: Extra response headers (e.g. Retry-After on 429 and 503).
        self.headers: dict[str, str] = {}
        super().__init__(self.text("en"))

    def retry_after(self, seconds: float) -> LocalizedError:
        """The same error, telling the client when to try again (``Retry-After``)."""
        self.headers["Retry-After"] = str(max(1, round(seconds)))
        return self

    @property
    def message(self) -> str:
        return self.text("en")

    def text(self, lang: Lang) -> str:
        """The message in ``lang``; a parameter that is a Note (a stage's reason) in ``lang`` too."""
        params = {k: reason(v, lang) if isinstance(v, Note) else v for k, v in self.params.items()}
        return message(self.key, lang, **params)


def message(code: str, lang: Lang, **params: object) -> str:
    texts = ERRORS.get(code)
    if texts is None:
        return code
    return texts[lang].format(**params)


def state_text(state: str, lang: Lang) -> str:
    return STATES.get(state, {}).get(lang, state)


def stage_text(stage: str, lang: Lang) -> str:
    info = stages.get(stage)
    return info.name(lang) if info else stage


def pick_language(accept_language: str | None, override: str | None = None) -> Lang:
    """The best of LANGUAGES for an Accept-Language header (q-values respected)."""
    if override == "ru":
        return "ru"
    if override == "en":
        return "en"
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, index, tag.strip().lower().split("-")[0]))
    for negative_q, _index, lang in sorted(ranked):
        if negative_q < 0 and lang in LANGUAGES:
            return "ru" if lang == "ru" else "en"
    return DEFAULT_LANGUAGE


def request_language(conn: HTTPConnection) -> Lang:
    """The cookie set by the page's switch wins; then Accept-Language."""
    return pick_language(conn.headers.get("accept-language"), conn.cookies.get(LANG_COOKIE))
