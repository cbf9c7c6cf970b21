"""Every word the gateway says to people, in English and Russian: the page, the API's error
messages, job states, stage names and failure reasons.

The language of a request: the ``konspekt_lang`` cookie (the page's switch), else the
Accept-Language header (q-values respected), else English.
"""

from __future__ import annotations

import re
from typing import Literal

from starlette.requests import HTTPConnection

from konspekt_gateway import stages

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


#: Failure reasons (from the stages and the pipeline) and their Russian versions.
_REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), r)
    for p, r in [
        (r"^the file has no audio track$", "в файле нет звуковой дорожки"),
        (r"^the file is empty$", "файл пустой"),
        (r"^the audio file is empty \(0 bytes\)$", "аудиофайл пустой (0 байт)"),
        (r"^no audio could be decoded from the file$", "из файла не удалось извлечь звук"),
        (r"^the audio is empty \(no samples\)$", "в звуке нет ни одного отсчёта"),
        (
            r"^the file has no audio samples \(empty or truncated audio track\)$",
            "в файле нет звука (дорожка пустая или обрезана)",
        ),
        (
            r"^this is not a video or audio file that can be read \((?P<d>.*)\)$",
            "это не видео- и не аудиофайл, который можно прочитать ({d})",
        ),
        (r"^the audio could not be decoded \((?P<d>.*)\)$", "не удалось декодировать звук ({d})"),
        (
            r"^cannot decode the audio: not a media file ffmpeg can read, or it is corrupt \((?P<d>.*)\)$",
            "не удалось декодировать звук: файл не читается ffmpeg или повреждён ({d})",
        ),
        (
            r"^the recording is (?P<q>at least )?(?P<t>.+) \((?P<s>\d+) s\) long, over the limit of "
            r"(?P<lt>.+) \((?P<ls>\d+) s\)$",
            "запись длится {q}{t} ({s} с), это больше предела {lt} ({ls} с)",
        ),
        (
            r"^the (?P<stage>.+) stage did not finish within (?P<s>[\d.]+) s"
            r"(?P<tries> \(tried \d+ times\))?$",
            "этап «{stage}» не завершился за {s} с{tries}",
        ),
        (r"^the (?P<stage>.+) service is unavailable(?P<d>: .*)?$", "служба «{stage}» недоступна{d}"),
        (r"^the (?P<stage>.+) service is overloaded(?P<d>: .*)?$", "служба «{stage}» перегружена{d}"),
        (r"^the (?P<stage>.+) service failed(?P<d>: .*)?$", "сбой службы «{stage}»{d}"),
        (r"^the (?P<stage>.+) stage rejected the file$", "этап «{stage}» отклонил файл"),
        (r"^the renderer stored no files$", "этап подготовки документов не сохранил файлов"),
        (
            r"^internal error in the gateway; see its log$",
            "внутренняя ошибка шлюза; подробности в его журнале",
        ),
        (r"^no speech was found in the recording$", "в записи не найдено речи"),
        (
            r"^the file seems truncated: only (?P<a>[\d.]+) s of the (?P<b>[\d.]+) s it claims "
            r"could be decoded$",
            "файл, похоже, обрезан: удалось прочитать только {a} с из заявленных {b} с",
        ),
        (
            r"^could not read the file from the object store \((?P<d>.*)\)$",
            "не удалось прочитать файл из хранилища ({d})",
        ),
        (
            r"^playlists and files that point at other files or URLs are not accepted \((?P<d>.*)\); "
            r"upload the recording itself$",
            "плейлисты и файлы со ссылками на другие файлы или адреса не принимаются ({d}); "
            "загрузите саму запись",
        ),
        (
            r"^the file holds more audio than the (?P<b>[\d.]+) s it claims; only the first "
            r"(?P<a>[\d.]+) s were decoded$",
            "в файле больше звука, чем заявленные {b} с; извлечены только первые {a} с",
        ),
        (
            r"^the file holds far more audio than a file of its size can; only the first "
            r"(?P<a>[\d.]+) s were decoded$",
            "в файле намного больше звука, чем может быть в файле такого размера; "
            "извлечены только первые {a} с",
        ),
        (
            r"^the file holds (?P<a>[\d.]+) s of audio, more than the (?P<b>[\d.]+) s it claims$",
            "в файле {a} с звука — больше заявленных {b} с",
        ),
        (
            r"^the callback was not sent: (?P<host>.+) resolves to (?P<address>\S+), a (?P<kind>.+) address$",
            "обратный вызов не отправлен: {host} указывает на {address} — {kind}",
        ),
        (
            r"^the callback was not sent: (?P<host>.+) could not be resolved \((?P<d>.*)\)$",
            "обратный вызов не отправлен: не удалось найти адрес {host} ({d})",
        ),
        (
            r"^the callback was not sent: its URL is not a plain http\(s\) URL$",
            "обратный вызов не отправлен: его адрес — не обычный URL http(s)",
        ),
        (
            r"^the callback was not delivered: the receiver answered HTTP (?P<code>\d+), a redirect, "
            r"which is not followed$",
            "обратный вызов не доставлен: получатель ответил HTTP {code} (перенаправление), "
            "а перенаправления не выполняются",
        ),
        (
            r"^the callback was not delivered: (?P<d>.+) \(tried (?P<n>\d+) times\)$",
            "обратный вызов не доставлен: {d} (попыток: {n})",
        ),
    ]
]
_TRIES = re.compile(r" \(tried (\d+) times\)")

#: The summarizer's notes on items it checked against the transcript (konspekt.py).
_ITEMS = {
    "key point": ("пункт «Главное»", "убран"),
    "decision": ("решение", "убрано"),
    "action item": ("задача", "убрана"),
}
_NOTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), r)
    for p, r in [
        (
            r"^(?P<problem>.+); placed at (?P<t>[\d:]+), where it was said$",
            "{problem}; перенесено на {t}, где это сказано",
        ),
        (
            r"^(?P<problem>.+), and its words are nowhere in the transcript$",
            "{problem}, и этих слов в расшифровке нет",
        ),
        (r"^nothing near (?P<t>[\d:]+) says it$", "около {t} об этом не говорится"),
        (r"^(?P<t>.+) is not a time in the transcript$", "в расшифровке нет момента {t}"),
        (r"^no usable time \((?P<t>.*)\)$", "нет пригодного времени ({t})"),
        (r"^the transcript is empty$", "расшифровка пустая"),
        (
            r"^due (?P<a>.+) replaced by (?P<b>.+), said at (?P<t>[\d:]+)$",
            "срок {a} заменён на {b}, сказанный в {t}",
        ),
        (
            r"^due (?P<a>.+) is not said near the item; (?P<b>.+) is \(at (?P<t>[\d:]+)\)$",
            "срок {a} рядом с задачей не назван, назван {b} (в {t})",
        ),
        (r"^due (?P<a>.+) is not said near the item; dropped$", "срок {a} рядом с задачей не назван; убран"),
        (
            r"^owner (?P<a>.+) is not in the transcript; dropped$",
            "ответственного {a} в расшифровке нет; убран",
        ),
        (
            r"^owner (?P<a>.+) is not said in the transcript as a name; kept, unconfirmed$",
            "имя {a} в расшифровке не прозвучало; ответственный оставлен, но не подтверждён",
        ),
        (
            r"^owner (?P<a>.+) replaced by (?P<b>.+), named in its line$",
            "ответственный {a} заменён на {b}: задачу в этой строке дают ему",
        ),
        (
            r"^owner (?P<a>.+) is not a person named in the transcript; dropped$",
            "{a} — не имя человека из расшифровки; ответственный убран",
        ),
        (r"^a question is not a decision$", "вопрос — не решение"),
        (r"^it says the matter is not decided$", "в нём сказано, что вопрос не решён"),
        (r"^it only agrees and says nothing of what$", "в нём только согласие, а с чем — не сказано"),
        (
            r"^no one is to do it; its line states a decision; listed as a decision$",
            "исполнителя нет, а в строке сказано о решении; перенесена в решения",
        ),
        (
            r"^no one is to do it; (?P<problem>.+); listed as a key point$",
            "исполнителя нет ({problem}); перенесена в главное",
        ),
        (
            r"^no one is to do it; (?P<problem>.+); listed as a decision$",
            "исполнителя нет ({problem}); перенесена в решения",
        ),
        (r"^no due date and no one asked or promising$", "нет срока, и никого не просят и никто не обещает"),
        (
            r"^its line states a decision and does not name (?P<a>.+)$",
            "в строке сказано о решении, а {a} не назван",
        ),
        (
            r"^the model left it out; taken word for word at (?P<t>[\d:]+)$",
            "модель это пропустила; взято дословно из расшифровки ({t})",
        ),
        (
            r"^the model left it out; taken word for word from (?P<t>[\d:]+)$",
            "модель это пропустила; взято дословно из расшифровки: просьба и ответ ({t})",
        ),
        (
            r"^replaced by the request and answer at (?P<t>[\d:]+), which say its deadline (?P<d>.+)$",
            "заменена просьбой и ответом из расшифровки ({t}), где назван срок {d}",
        ),
        (
            r"^owner (?P<a>.+) replaced by (?P<b>.+), who was asked at (?P<t>[\d:]+)$",
            "ответственный {a} заменён на {b}: об этом просили его ({t})",
        ),
        (
            r"^a figure said at (?P<t>[\d:]+) that no item has; taken word for word$",
            "число, названное в {t}, которого нет в других пунктах; взято дословно",
        ),
    ]
]
_FREE_TEXT_WARNING = re.compile(
    r"^(?P<what>summary sentence|title) (?P<text>(['\"]).*?\3) dropped: (?P<names>.+) not said$"
)
_ITEM_WARNING = re.compile(
    r"^(?P<what>key point|decision|action item) (?P<text>(['\"]).*?\3)(?P<dropped> dropped)?: (?P<note>.+)$"
)


def _note(text: str) -> str:
    """A summarizer note in Russian, its nested problem too (unknown English kept)."""
    for pattern, template in _NOTES:
        match = pattern.match(text)
        if match is not None:
            values = match.groupdict()
            if "problem" in values:
                values["problem"] = _note(values["problem"])
            return template.format(**values)
    return text


#: Progress messages of the stages and the gateway, in Russian.
_PROGRESS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), r)
    for p, r in [
        (r"^reading the media$", "чтение файла"),
        (r"^reading the file$", "чтение файла"),
        (r"^decoding$", "декодирование звука"),
        (r"^storing the audio$", "сохранение звука"),
        (r"^recognising speech$", "распознавание речи"),
        (r"^recognising$", "распознавание речи"),
        (r"^(?P<a>\d+) s of (?P<b>\d+) s$", "{a} с из {b} с"),
        (r"^writing the konspekt$", "составление конспекта"),
        (r"^rendering the documents$", "подготовка документов"),
        (r"^done$", "готово"),
        (r"^waiting to resume after a restart$", "ожидает продолжения после перезапуска"),
        (r"^waiting for a free (?P<stage>.+) slot$", "ждёт свободного места на этапе «{stage}»"),
        (r"^waiting for the (?P<stage>.+) service to start$", "ждёт запуска службы «{stage}»"),
        (r"^waiting for the object store$", "ждёт восстановления хранилища"),
        (
            r"^(?P<label>.+): reading the transcript(?P<retry> \(retry\))?$",
            "{label}: чтение расшифровки{retry}",
        ),
        (r"^(?P<label>.+): writing(?P<retry> \(retry\))?$", "{label}: запись конспекта{retry}"),
        (r"^merging windows$", "объединение частей"),
        (
            r"^merging windows \(round (?P<r>\d+), group (?P<g>\d+)/(?P<n>\d+)\)$",
            "объединение частей (круг {r}, группа {g}/{n})",
        ),
    ]
]
_LABEL = re.compile(r"^window (?P<i>\d+)/(?P<n>\d+)$")
_AGAIN = re.compile(r"^reading (?P<a>[\d:]+)-(?P<b>[\d:]+) again$")
_TOO_SHORT = re.compile(
    r"^the transcript has only (?P<n>\d+) word\(s\), too few to summarize: quoted instead$"
)
_CUT_OFF = re.compile(
    r"^(?P<label>.+): the answer was cut off at (?P<n>\d+) tokens; its complete items were kept$"
)


def _label(label: str) -> str:
    """The summarizer's name for one model call, in Russian."""
    if label.endswith(": tasks"):  # a meeting's action items, asked for on their own
        return f"{_label(label.removesuffix(': tasks'))}: задачи"
    window = _LABEL.match(label)
    if window is not None:
        return f"часть {window['i']}/{window['n']}"
    if label == "checking for missed decisions and tasks":
        return "проверка пропущенных решений и задач"
    again = _AGAIN.match(label)
    if again is not None:
        return f"повторное чтение {again['a']}–{again['b']}"
    return "конспект"


_RETRYING = re.compile(r"^(?P<reason>.+); retrying \(try (?P<a>\d+) of (?P<b>\d+)\)$")


def progress(text: str, lang: Lang) -> str:
    """A progress message (a stage's or the gateway's) in ``lang``; "" for an unknown one in
    Russian (the page then shows the state alone, never English on a Russian page)."""
    if lang == "en" or not text:
        return text
    retrying = _RETRYING.match(text)
    if retrying is not None:
        return f"{reason(retrying['reason'], lang)}; повтор (попытка {retrying['a']} из {retrying['b']})"
    return _fill(_PROGRESS, text) or ""


def reason(text: str, lang: Lang) -> str:
    """A failure reason or warning in ``lang`` (unknown English text is kept as it is)."""
    if lang == "en" or not text:
        return text
    item = _ITEM_WARNING.match(text)
    if item is not None:
        what, gone = _ITEMS[item["what"]]
        dropped = f" {gone}" if item["dropped"] else ""
        return f"{what} «{item['text'][1:-1]}»{dropped}: {_note(item['note'])}"
    free = _FREE_TEXT_WARNING.match(text)
    if free is not None:
        what = "предложение краткого изложения" if free["what"] == "summary sentence" else "название"
        return f"{what} «{free['text'][1:-1]}» убрано: в записи не звучало {free['names']}"
    short = _TOO_SHORT.match(text)
    if short is not None:
        return f"в расшифровке всего {short['n']} сл., слишком мало для конспекта: она приведена целиком"
    cut = _CUT_OFF.match(text)
    if cut is not None:
        return (
            f"{_label(cut['label'])}: ответ модели оборвался на {cut['n']} токенах; "
            "сохранены его полные пункты"
        )
    if text == "window summaries too long to merge with the model; joined instead":
        return "конспекты частей слишком длинные для объединения моделью; соединены без неё"
    return _fill(_REASONS, text) or text


def _fill(table: list[tuple[re.Pattern[str], str]], text: str) -> str | None:
    """The Russian template of the first pattern in ``table`` that matches, its parts translated."""
    for pattern, template in table:
        match = pattern.match(text)
        if match is None:
            continue
        values = {k: v or "" for k, v in match.groupdict().items()}
        if "stage" in values:
            # stage names as the pipeline writes them into English failure reasons
            stage = stages.by_reason_name(values["stage"])
            values["stage"] = stage.name_ru if stage else values["stage"]
        if values.get("retry"):
            values["retry"] = " (повтор)"
        if "label" in values:
            values["label"] = _label(values["label"])
        if values.get("q"):
            values["q"] = "не меньше "
        if "kind" in values:
            values["kind"] = ADDRESS_KINDS.get(values["kind"], values["kind"])
        if values.get("tries"):
            tries = _TRIES.search(values["tries"])
            values["tries"] = f" (попыток: {tries.group(1)})" if tries else ""
        return template.format(**values)
    return None


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
        return message(self.key, lang, **self.params)


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
