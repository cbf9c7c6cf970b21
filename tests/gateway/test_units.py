"""Settings, file names, download headers and language choice."""

from __future__ import annotations

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
