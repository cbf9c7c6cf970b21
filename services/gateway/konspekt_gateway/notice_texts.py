# ruff: noqa: E501  (a table of sentences: one line each reads and greps best)
"""What the stages and the gateway say (notes: konspekt.notices), one table per language keyed
by code, with ``{arg}`` placeholders (``str.format``; ``{x!r}`` quotes as Python does). English
is the registry's own templates; ``konspekt_gateway.i18n`` renders a note with them."""

from __future__ import annotations

from konspekt.notices import TEMPLATES

#: Russian, for every code of the registry (tests/gateway/test_units.py checks).
RU: dict[str, str] = {
    # -- audio
    "audio_reading": "чтение файла",
    "audio_decoding": "декодирование звука",
    "audio_storing": "сохранение звука",
    "audio_far_more_than_size": (
        "в файле намного больше звука, чем может быть в файле такого размера; извлечены только первые {decoded} с"
    ),
    "audio_more_than_claimed": "в файле больше звука, чем заявленные {claimed} с; извлечены только первые {decoded} с",
    "audio_longer_than_claimed": "в файле {decoded} с звука — больше заявленных {claimed} с",
    "audio_truncated": "файл, похоже, обрезан: удалось прочитать только {decoded} с из заявленных {claimed} с",
    "file_empty": "файл пустой",
    "not_media": "это не видео- и не аудиофайл, который можно прочитать ({detail})",
    "format_not_accepted": "это не видео- и не аудиофайл, который можно прочитать (формат {format} не принимается)",
    "no_audio_track": "в файле нет звуковой дорожки",
    "audio_not_decoded": "не удалось декодировать звук ({detail})",
    "no_audio_decoded": "из файла не удалось извлечь звук",
    "too_long": "запись длится {length} ({seconds} с), это больше предела {limit} ({limit_seconds} с)",
    "too_long_at_least": (
        "запись длится не меньше {length} ({seconds} с), это больше предела {limit} ({limit_seconds} с)"
    ),
    "playlist": (
        "плейлисты и файлы со ссылками на другие файлы или адреса не принимаются ({detail}); загрузите саму запись"
    ),
    "store_read_failed": "не удалось прочитать файл из хранилища ({detail})",
    # -- ASR
    "asr_recognising": "распознавание речи",
    "asr_position": "{done} с из {total} с",
    "done": "готово",
    "no_speech": "в записи не найдено речи",
    "audio_empty_bytes": "аудиофайл пустой (0 байт)",
    "audio_no_samples": "в файле нет звука (дорожка пустая или обрезана)",
    "audio_empty_samples": "в звуке нет ни одного отсчёта",
    "cannot_decode": "не удалось декодировать звук: файл не читается ffmpeg или повреждён ({detail})",
    # -- summarizer: progress
    "label_window": "часть {i}/{n}",
    "label_summary": "конспект",
    "label_tasks": "{label}: задачи",
    "label_decisions": "{label}: решения",
    "label_more_lines": "{label}: ещё {count} строк",
    "label_merging": "объединение частей",
    "label_merging_round": "объединение частей (круг {round}, группа {group}/{groups})",
    "call_reading": "{label}: чтение расшифровки",
    "call_reading_retry": "{label}: чтение расшифровки (повтор)",
    "call_writing": "{label}: запись конспекта",
    "call_writing_retry": "{label}: запись конспекта (повтор)",
    # -- summarizer: warnings
    "transcript_too_short": "в расшифровке всего {words} сл., слишком мало для конспекта: она приведена целиком",
    "answer_cut_off": "{label}: ответ модели оборвался на {tokens} токенах; сохранены его полные пункты",
    "windows_joined": "конспекты частей слишком длинные для объединения моделью; соединены без неё",
    "summary_sentence_dropped": "предложение краткого изложения «{text}» убрано: в записи не звучало {names}",
    "title_dropped": "название «{text}» убрано: в записи не звучало {names}",
    "key_point_dropped": "пункт «Главное» «{text}» убран: {note}",
    "key_point_note": "пункт «Главное» «{text}»: {note}",
    "decision_dropped": "решение «{text}» убрано: {note}",
    "decision_note": "решение «{text}»: {note}",
    "action_item_dropped": "задача «{text}» убрана: {note}",
    "action_item_note": "задача «{text}»: {note}",
    "transcript_empty": "расшифровка пустая",
    "not_near": "около {time} об этом не говорится",
    "not_a_time": "в расшифровке нет момента {time}",
    "no_usable_time": "нет пригодного времени ({time!r})",
    "placed_at": "{problem}; перенесено на {at}, где это сказано",
    "words_nowhere": "{problem}, и этих слов в расшифровке нет",
    "question_not_decision": "вопрос — не решение",
    "agrees_only": "в нём только согласие, а с чем — не сказано",
    "not_decided": "в нём сказано, что вопрос не решён",
    "left_out_at": "модель это пропустила; взято дословно из расшифровки ({at})",
    "owner_not_person": "{owner!r} — не имя человека из расшифровки; ответственный убран",
    "owner_unconfirmed": "имя {owner!r} в расшифровке не прозвучало; ответственный оставлен, но не подтверждён",
    "owner_replaced_named": "ответственный {owner!r} заменён на {person!r}: задачу в этой строке дают ему",
    "owner_replaced_asked": "ответственный {owner!r} заменён на {person!r}: об этом просили его ({at})",
    "due_replaced": "срок {due!r} заменён на {said!r}, сказанный в {at}",
    "due_not_near_said": "срок {due!r} рядом с задачей не назван, назван {said!r} (в {at})",
    "due_not_near_dropped": "срок {due!r} рядом с задачей не назван; убран",
    "task_to_decision": "исполнителя нет ({reason}); перенесена в решения",
    "task_to_key_point": "исполнителя нет ({reason}); перенесена в главное",
    "past_to_key_point": "в нём сказано о том, что уже сделано; перенесено в главное",
    "line_states_decision": "в строке сказано о решении",
    "line_states_decision_unnamed": "в строке сказано о решении, а {owner} не назван",
    "agrees_to_proposal": "здесь только согласие с предложением перед ним; оно перенесено в решения",
    "proposal_taken_up": "предложение, с которым согласились в следующей реплике: решение группы",
    "proposal_taken_up_unnamed": "предложение, с которым согласились, и {owner} в нём не назван: решение группы",
    "no_due_no_one": "нет срока, и никого не просят и никто не обещает",
    "exchange_left_out": "модель это пропустила; взято дословно из расшифровки: просьба и ответ ({at})",
    "exchange_for": "заменена просьбой и ответом из расшифровки ({at}), где назван срок {due!r}",
    "figure_left_out": "число, названное в {at}, которого нет в других пунктах; взято дословно",
    # -- gateway ({stage}: the stage's Russian name)
    "job_reading_media": "чтение файла",
    "job_recognising": "распознавание речи",
    "job_writing": "составление конспекта",
    "job_rendering": "подготовка документов",
    "job_resuming": "ожидает продолжения после перезапуска",
    "waiting_slot": "ждёт свободного места на этапе «{stage}»",
    "waiting_start": "ждёт запуска службы «{stage}»",
    "waiting_store": "ждёт восстановления хранилища",
    "retrying": "{reason}; повтор (попытка {attempt} из {attempts})",
    "stage_timeout": "этап «{stage}» не завершился за {seconds} с",
    "stage_unavailable": "служба «{stage}» недоступна",
    "stage_unavailable_detail": "служба «{stage}» недоступна: {detail}",
    "stage_overloaded": "служба «{stage}» перегружена",
    "stage_overloaded_detail": "служба «{stage}» перегружена: {detail}",
    "stage_failed": "сбой службы «{stage}»",
    "stage_failed_detail": "сбой службы «{stage}»: {detail}",
    "stage_rejected": "этап «{stage}» отклонил файл",
    "tried_times": "{reason} (попыток: {tries})",
    "renderer_stored_nothing": "этап подготовки документов не сохранил файлов",
    "konspekt_not_stored": "не удалось сохранить конспект: {detail}",
    "gateway_internal": "внутренняя ошибка шлюза; подробности в его журнале",
    "callback_not_sent": "обратный вызов не отправлен: {reason}",
    "callback_blocked": "{host} указывает на {address} — {kind}",
    "callback_unresolved": "не удалось найти адрес {host} ({detail})",
    "callback_bad_url": "обратный вызов не отправлен: его адрес — не обычный URL http(s)",
    "callback_redirect": (
        "обратный вызов не доставлен: получатель ответил HTTP {status} (перенаправление), "
        "а перенаправления не выполняются"
    ),
    "callback_failed": "обратный вызов не доставлен: {detail} (попыток: {tries})",
}

#: The table of each language.
TABLES: dict[str, dict[str, str]] = {"en": TEMPLATES, "ru": RU}
