"""Settings, file names, download headers and language choice."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from konspekt_gateway.downloads import ascii_fallback, content_disposition
from konspekt_gateway.jobs import Job, clean_filename, valid_job_id
from konspekt_gateway.settings import GatewaySettings
from konspekt_gateway.web import TEXTS, pick_language


def test_settings_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KONSPEKT_GATEWAY_ASR_TARGET", "asr.konspekt.svc:50052")
    monkeypatch.setenv("KONSPEKT_GATEWAY_CONCURRENT_JOBS", "3")
    settings = GatewaySettings()
    assert (settings.host, settings.port, settings.max_upload_mb) == ("127.0.0.1", 8000, 4096)
    assert settings.target("audio") == "127.0.0.1:50051"
    assert settings.target("asr") == "asr.konspekt.svc:50052"
    assert settings.concurrent_jobs == 3 and settings.stage_attempts == 3
    assert settings.deadline("audio", 600) == 60 + 300
    assert settings.deadline("asr", 600) == 120 + 1200
    assert settings.deadline("summarizer", 600) == 300 + 600
    assert settings.deadline("renderer", 600) == 60
    assert [settings.backoff(n) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("port", 70000),
        ("concurrent_jobs", 0),
        ("max_upload_mb", 0),
        ("stage_attempts", 0),
        ("asr_target", "no port here"),
        ("asr_deadline_base", 0),
        ("log_level", "LOUD"),
    ],
)
def test_invalid_settings_fail_fast(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        GatewaySettings.model_validate({field: value})


def test_filenames_keep_cyrillic_and_spaces_but_lose_paths_and_control_characters() -> None:
    assert clean_filename("Совещание отдела 1.mp4") == "Совещание отдела 1.mp4"
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("C:\\Users\\Аня\\Лекция\t 2.webm") == "Лекция 2.webm"
    assert clean_filename("evil\x00\x1b[31m\u202ename.mp4") == "evil[31mname.mp4"
    assert clean_filename("  ") == "upload"
    assert clean_filename("/") == "upload"
    assert len(clean_filename("я" * 1000)) == 255


def test_job_ids_are_unguessable_and_short_ids_are_their_prefix() -> None:
    ids = {Job().id for _ in range(100)}
    assert len(ids) == 100
    job = Job(filename="Совещание отдела 1.mp4")
    assert len(job.id) == 22 and valid_job_id(job.id) and job.short_id == job.id[:8]
    assert job.stem == "Совещание отдела 1"
    assert Job(filename="README").stem == "README"
    assert not valid_job_id("../../etc") and not valid_job_id("short")


def test_content_disposition_has_utf8_and_an_ascii_fallback() -> None:
    header = content_disposition("Отчёт — transcript.srt")
    assert header == (
        'attachment; filename="Otchet - transcript.srt"; '
        "filename*=UTF-8''%D0%9E%D1%82%D1%87%D1%91%D1%82%20%E2%80%94%20transcript.srt"
    )
    assert ascii_fallback('a"b\\c.txt') == "a_b_c.txt"
    assert ascii_fallback("日本語") == "download"
    assert ascii_fallback("日本語 — konspekt.docx") == "konspekt.docx"


def test_language_is_picked_from_accept_language() -> None:
    assert pick_language("ru-RU,ru;q=0.9,en-US;q=0.8") == "ru"
    assert pick_language("en;q=0.5,ru;q=0.9") == "ru"
    assert pick_language("de-DE,de;q=0.9") == "en"
    assert pick_language("ru;q=0") == "en"
    assert pick_language(None) == "en"
    assert pick_language("ru", override="en") == "en"
    assert set(TEXTS["en"]) == set(TEXTS["ru"])


def test_summarizer_notes_and_progress_are_translated() -> None:
    """The warnings the summarizer writes when it checks items against the transcript (made
    here by its own checks) and every progress message reach a Russian page in Russian, from
    their code and args."""
    from konspekt.notices import Note
    from konspekt.v1 import common_pb2
    from konspekt_gateway import i18n
    from konspekt_summarizer.checks import check_due, check_free_text
    from konspekt_summarizer.evidence import find_evidence, item_note
    from konspekt_summarizer.konspekt import cut_off_warning, too_short_warning
    from konspekt_summarizer.owners import Names, check_owner
    from tests.summarizer.test_pure import ru_konspekt

    segments = [
        common_pb2.Segment(index=0, start=0.0, end=5.0, text="We agreed to ship the release on Friday."),
        common_pb2.Segment(index=1, start=60.0, end=65.0, text="Anna will write the notes by Monday."),
    ]
    invented = find_evidence("0:00", "Thomas Jefferson signed the declaration", segments)
    moved = find_evidence("7:00", "Anna writes the notes", segments)
    assert invented.index == -1 and moved.index == 1
    warnings = {
        item_note("key point", "Thomas Jefferson signed the declaration", invented.note, dropped=True): (
            "пункт «Главное» «Thomas Jefferson signed the declaration» убран: около 0:00 об этом "
            "не говорится, и этих слов в расшифровке нет"
        ),
        item_note("decision", "Anna writes the notes", moved.note): (
            "решение «Anna writes the notes»: в расшифровке нет момента 7:00; перенесено на 01:00, "
            "где это сказано"
        ),
        item_note(
            "action item", "Write the notes", check_due("Write the notes", "Tuesday", segments, 1).warning
        ): (
            "задача «Write the notes»: срок 'Tuesday' рядом с задачей не назван, назван 'by Monday' (в 01:00)"
        ),
        item_note(
            "action item", "Write the notes", check_due("Write the notes", "Friday", segments, 1).warning
        ): ("задача «Write the notes»: срок 'Friday' заменён на 'by Monday', сказанный в 01:00"),
        too_short_warning(3): "в расшифровке всего 3 сл., слишком мало для конспекта: она приведена целиком",
        cut_off_warning(Note("label_window", i="2", n="3"), 1200): (
            "часть 2/3: ответ модели оборвался на 1200 токенах; сохранены его полные пункты"
        ),
        cut_off_warning(Note("label_tasks", label=Note("label_summary")), 300): (
            "конспект: задачи: ответ модели оборвался на 300 токенах; сохранены его полные пункты"
        ),
    }
    for english, russian in warnings.items():
        assert i18n.reason(english, "ru") == russian
        assert i18n.reason(english, "en") == english
    free = check_free_text("Jefferson", "The speech. Thomas Jefferson gave it in 1776.", segments)
    notes = [*free.warnings, *ru_konspekt()[1]]
    # "the shop checks the build": a thing, not a person; "Boris", never said: kept, unconfirmed
    shop = [*segments, common_pb2.Segment(index=2, start=70.0, end=75.0, text="The shop checks the build.")]
    for name in ("Shop", "Boris"):
        owner = check_owner(name, shop, 2, Names.of(shop))
        assert owner.warning
        notes.append(item_note("action item", "Write the notes", owner.warning))
    # the task the model left out and the exchanges check kept (Anna's, at 00:20)
    assert len(notes) == 9
    notes += [
        item_note("action item", "Write the notes", Note("exchange_for", at="01:00", due="by Monday")),
        item_note(
            "action item",
            "Write the notes",
            Note("owner_replaced_asked", owner="Boris", person="Anna", at="01:00"),
        ),
        item_note("key point", "We shipped 4200 orders.", Note("figure_left_out", at="00:05")),
    ]
    for english in notes:  # each in Russian, with no English sentence left
        assert isinstance(english, Note), english
        russian = i18n.reason(english, "ru")
        assert russian != english and not re.search(
            r"\b(?:dropped|not said|the model|decision|owner)\b", russian
        )
    assert i18n.reason(free.warnings[0], "ru") == (
        "предложение краткого изложения «Thomas Jefferson gave it in 1776.» убрано: "
        "в записи не звучало Jefferson, 1776"
    )

    window = Note("label_window", i="2", n="3")
    progress = {
        Note("job_reading_media"): "чтение файла",
        Note("audio_decoding"): "декодирование звука",
        Note("asr_position", done="35", total="169"): "35 с из 169 с",
        Note("call_writing_retry", label=window): "часть 2/3: запись конспекта (повтор)",
        Note("call_reading", label=Note("label_summary")): "конспект: чтение расшифровки",
        Note("call_writing", label=Note("label_more_lines", label=window, count="4")): (
            "часть 2/3: ещё 4 строк: запись конспекта"
        ),
        Note(
            "label_merging_round", round="2", group="1", groups="3"
        ): "объединение частей (круг 2, группа 1/3)",
        Note(
            "waiting_slot", stage="speech recognition"
        ): "ждёт свободного места на этапе «распознавание речи»",
        Note(
            "retrying",
            reason=Note("stage_unavailable", stage="speech recognition"),
            attempt="2",
            attempts="3",
        ): "служба «распознавание речи» недоступна; повтор (попытка 2 из 3)",
        "waiting to resume after a restart": "ожидает продолжения после перезапуска",  # plain, no args
        "something new": "",  # never English on a Russian page
    }
    for english, russian in progress.items():
        assert i18n.progress(english, "ru") == russian
        assert i18n.progress(english, "en") == english


def test_every_note_code_has_english_and_russian_text() -> None:
    """Every code the stages and the gateway can write (the one registry, konspekt.notices)
    has a text in each language's table, with the same arguments as the English template."""
    import string

    from konspekt.notices import TEMPLATES
    from konspekt_gateway import i18n
    from konspekt_gateway.notice_texts import TABLES

    def fields(template: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}

    for lang in i18n.LANGUAGES:
        table = TABLES[lang]
        assert set(table) == set(TEMPLATES), (lang, set(TEMPLATES) ^ set(table))
        for code, template in table.items():
            assert template and fields(template) == fields(TEMPLATES[code]), (lang, code)


def test_a_job_waiting_to_resume_says_so_as_a_note() -> None:
    """A job another replica left unfinished waits here with a note (replicas.py), so its page
    says it in its own language, not in English."""
    from datetime import timedelta

    from konspekt_gateway import notes
    from konspekt_gateway.jobs import JobState
    from konspekt_gateway.replicas import RESUMING
    from konspekt_gateway.views import job_view

    job = Job(filename="a.mp4", state=JobState.SUMMARIZING)
    notes.say(job, RESUMING)
    assert job.message == "waiting to resume after a restart"
    assert job.message_notice is not None and job.message_notice.code == "job_resuming"
    stored = Job.model_validate_json(job.model_dump_json())  # as another replica reads it
    ru = job_view(stored, None, "ru", retention=timedelta(hours=24))
    assert ru["message_text"] == "ожидает продолжения после перезапуска"
    assert ru["message_notice"]["code"] == "job_resuming"


def test_a_renderer_error_in_an_api_error_is_said_in_the_request_language() -> None:
    """An edited konspekt the renderer could not render (edits.py): the reason is the note the
    renderer's error carries (its code and args in the ErrorInfo), said in the page's language."""
    from google.protobuf import any_pb2
    from google.rpc import status_pb2

    from konspekt.errors import STATUS_DETAILS_KEY, error_info
    from konspekt.notices import Note
    from konspekt_gateway import i18n, notes

    note = Note("store_read_failed", detail="NoSuchKey")
    detail = any_pb2.Any()
    detail.Pack(error_info("INVALID_REQUEST", note))
    status = status_pb2.Status(code=3, message=str(note), details=[detail])

    class FailedCall:
        def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
            return ((STATUS_DETAILS_KEY, status.SerializeToString()),)

    reason = notes.from_error(FailedCall(), str(note))
    assert isinstance(reason, Note) and reason.code == "store_read_failed"
    error = i18n.LocalizedError(503, "unavailable", "render_failed", reason=reason)
    assert str(note) in error.message
    ru = error.text("ru")
    assert "NoSuchKey" in ru and str(note) not in ru and "не удалось собрать документы" in ru
    stored_nothing = i18n.LocalizedError(
        503, "unavailable", "render_failed", reason=Note("renderer_stored_nothing")
    )
    assert "этап подготовки документов не сохранил файлов" in stored_nothing.text("ru")
    # a reason without a code (another service's plain text) stays as it is
    plain = notes.from_error(object(), "connection reset")
    assert (
        i18n.LocalizedError(503, "unavailable", "render_failed", reason=plain)
        .text("ru")
        .count("connection reset")
        == 1
    )
