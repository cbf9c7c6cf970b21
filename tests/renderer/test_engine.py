"""The renderers themselves: real python-docx, exact subtitle formatting, both languages."""

from __future__ import annotations

import io
import json
import re
import time

import docx
import pytest

from konspekt.errors import InvalidInput
from konspekt.transcripts import transcript_from_json
from konspekt.v1 import common_pb2, renderer_pb2
from konspekt_renderer import engine

F = renderer_pb2.Format


def open_docx(data: bytes) -> docx.document.Document:
    return docx.Document(io.BytesIO(data))


def styled(doc: docx.document.Document, style: str) -> list[str]:
    return [p.text for p in doc.paragraphs if p.style is not None and p.style.name == style]


def small_transcript() -> common_pb2.Transcript:
    return common_pb2.Transcript(
        language="en",
        duration=3700.0,
        segments=[
            common_pb2.Segment(index=0, start=1.0, end=4.25, text=" Hello everyone."),
            common_pb2.Segment(index=1, start=4.25, end=9.999, text="Two\nlines"),
            common_pb2.Segment(index=2, start=10.0, end=11.0, text="   "),  # no words: no cue
            common_pb2.Segment(index=3, start=3661.5, end=3663.0, text="a < b & c --> d"),
        ],
    )


# -- DOCX -------------------------------------------------------------------------------------
def test_docx_english(en_konspekt: common_pb2.Konspekt, en_transcript: common_pb2.Transcript) -> None:
    doc = open_docx(engine.render_konspekt_docx(en_konspekt, en_transcript, "lecture.mp4"))
    assert styled(doc, "Title") == ["Political philosophy and the real world"]
    assert styled(doc, "Heading 1") == ["Summary", "Key points", "Decisions", "Action items"]
    meta = doc.paragraphs[1].text
    assert "Source: lecture.mp4" in meta
    assert "Duration: 01:00" in meta
    assert re.search(r"Created: \d{4}-\d{2}-\d{2}", meta)
    assert styled(doc, "List Bullet") == [
        "[00:00] Start from where we are",
        "[00:42] Piketty's 4% global wealth tax",
        "[00:55] Focus on implementable proposals",
        "[01:05] Read Capital in the 21st Century — Owner: Anna, due: Friday",
    ]
    assert en_konspekt.summary in [p.text for p in doc.paragraphs]
    assert doc.core_properties.title == "Political philosophy and the real world"
    assert doc.core_properties.language == "en-US"
    assert doc.core_properties.author == "konspekt"


def test_docx_russian(ru_konspekt: common_pb2.Konspekt, ru_transcript: common_pb2.Transcript) -> None:
    doc = open_docx(engine.render_konspekt_docx(ru_konspekt, ru_transcript, "звонок.mp4"))
    assert styled(doc, "Title") == ["Звонок в банк о платеже по кредиту"]
    assert styled(doc, "Heading 1") == ["Краткое содержание", "Ключевые моменты", "Решения", "Задачи"]
    assert "Источник: звонок.mp4" in doc.paragraphs[1].text
    assert "Длительность: 00:51" in doc.paragraphs[1].text
    bullets = styled(doc, "List Bullet")
    assert "[00:06] Сумма долга не уменьшилась" in bullets
    assert "[00:38] Проверить зачисление платежа — Ответственный: Анна, срок: пятница" in bullets
    assert "[00:44] Перезвонить клиентке" in bullets  # nobody named, no due: no note
    texts = [p.text for p in doc.paragraphs]
    assert "Клиентка внесла платёж, но сумма долга не уменьшилась." in texts
    assert "Оператор проверяет перевод." in texts
    assert doc.core_properties.language == "ru-RU"
    # Proofing language of the whole document, so Word spell-checks it as Russian.
    styles_xml = doc.styles.element.xml
    assert 'w:val="ru-RU"' in styles_xml


def test_docx_hour_timestamps_and_untied_items() -> None:
    konspekt = common_pb2.Konspekt(
        language="en",
        key_points=[
            common_pb2.Point(text="early", at=5.0, segment_index=0),
            common_pb2.Point(text="late", at=3725.0, segment_index=900),
            common_pb2.Point(text="nowhere", at=0.0, segment_index=-1),
        ],
    )
    doc = open_docx(engine.render_konspekt_docx(konspekt, common_pb2.Transcript(duration=4000), ""))
    # One clock format for the whole document once it runs past an hour.
    assert styled(doc, "List Bullet") == ["[0:00:05] early", "[1:02:05] late", "nowhere"]
    assert styled(doc, "Title") == ["Konspekt"]


def test_docx_empty_sections_meeting_vs_lecture(en_transcript: common_pb2.Transcript) -> None:
    meeting = common_pb2.Konspekt(language="en", title="T", summary="S", style=common_pb2.STYLE_MEETING)
    doc = open_docx(engine.render_konspekt_docx(meeting, en_transcript, ""))
    assert styled(doc, "Heading 1") == ["Summary", "Key points", "Decisions", "Action items"]
    assert [p.text for p in doc.paragraphs].count("None recorded.") == 3

    lecture = common_pb2.Konspekt(
        language="ru",
        title="Лекция",
        summary="S",
        key_points=[common_pb2.Point(text="идея", at=1.0)],
        style=common_pb2.STYLE_LECTURE,
    )
    doc = open_docx(engine.render_konspekt_docx(lecture, en_transcript, ""))
    assert styled(doc, "Heading 1") == ["Краткое содержание", "Ключевые моменты"]
    assert doc.paragraphs[1].text.startswith("Лекция · ")


def test_docx_survives_control_characters(en_transcript: common_pb2.Transcript) -> None:
    konspekt = common_pb2.Konspekt(title="Bad\x00 \x1btitle", key_points=[common_pb2.Point(text="a\x0bb")])
    doc = open_docx(engine.render_konspekt_docx(konspekt, en_transcript, "x\x07.mp4"))
    assert styled(doc, "Title") == ["Bad title"]
    assert styled(doc, "List Bullet") == ["[00:00] ab"]


def test_unknown_language_falls_back_to_english_labels(en_transcript: common_pb2.Transcript) -> None:
    konspekt = common_pb2.Konspekt(language="de", title="Besprechung", summary="Kurz.")
    doc = open_docx(engine.render_konspekt_docx(konspekt, en_transcript, ""))
    assert styled(doc, "Heading 1")[0] == "Summary"
    assert doc.core_properties.language == "de"


# -- TXT --------------------------------------------------------------------------------------
def test_konspekt_txt_russian(ru_konspekt: common_pb2.Konspekt, ru_transcript: common_pb2.Transcript) -> None:
    text = engine.render_konspekt_txt(ru_konspekt, ru_transcript, "звонок.mp4").decode("utf-8")
    lines = text.splitlines()
    assert lines[0] == "Звонок в банк о платеже по кредиту"
    assert lines[1] == "=" * len(lines[0])
    assert lines[2].startswith("Встреча · Источник: звонок.mp4 · Длительность: 00:51 · Создано: ")
    body = "\n".join(lines[3:])
    assert body == (
        "\n"
        "Краткое содержание\n------------------\n"
        "Клиентка внесла платёж, но сумма долга не уменьшилась.\n\n"
        "Оператор проверяет перевод.\n\n"
        "Ключевые моменты\n----------------\n"
        "- [00:00] Платёж по кредиту внесён сегодня\n"
        "- [00:06] Сумма долга не уменьшилась\n\n"
        "Решения\n-------\n"
        "- [00:31] Проверить перевод из другого банка\n\n"
        "Задачи\n------\n"
        "- [00:38] Проверить зачисление платежа — Ответственный: Анна, срок: пятница\n"
        "- [00:44] Перезвонить клиентке"
    )
    assert text.endswith("клиентке\n")


def test_konspekt_txt_english_none(en_transcript: common_pb2.Transcript) -> None:
    konspekt = common_pb2.Konspekt(language="en", title="Sync", summary="Short.")
    text = engine.render_konspekt_txt(konspekt, en_transcript, "").decode()
    assert "Decisions\n---------\nNone recorded.\n" in text
    assert "Action items\n------------\nNone recorded.\n" in text


def test_transcript_txt(ru_transcript: common_pb2.Transcript) -> None:
    text = engine.render_transcript_txt(common_pb2.Konspekt(), ru_transcript, "звонок.mp4").decode("utf-8")
    lines = text.splitlines()
    assert lines[:5] == [
        "Расшифровка",
        "Источник: звонок.mp4",
        "Язык: русский (ru)",
        "Длительность: 00:00:51",
        "",
    ]
    assert lines[5] == "[00:00:00 → 00:00:07] Сегодня был платеж по кредиту."
    assert len(lines) == 5 + len(ru_transcript.segments)
    assert lines[-1].startswith("[00:00:43 → 00:00:51] ")


def test_transcript_txt_joins_lines_and_skips_blank_segments() -> None:
    text = engine.render_transcript_txt(common_pb2.Konspekt(), small_transcript(), "").decode()
    assert text.splitlines()[4:] == [
        "[00:00:01 → 00:00:04] Hello everyone.",
        "[00:00:04 → 00:00:09] Two lines",
        "[01:01:01 → 01:01:03] a < b & c --> d",
    ]
    assert text.splitlines()[:3] == ["Transcript", "Language: English (en)", "Duration: 01:01:40"]


# -- SRT / VTT --------------------------------------------------------------------------------
def test_cue_time() -> None:
    assert engine.cue_time(3661.5, ",") == "01:01:01,500"
    assert engine.cue_time(3661.5, ".") == "01:01:01.500"
    assert engine.cue_time(0.0005, ",") == "00:00:00,000"  # round half to even
    assert engine.cue_time(59.9996, ",") == "00:01:00,000"
    assert engine.cue_time(-3.0, ",") == "00:00:00,000"
    assert engine.cue_time(float("nan"), ",") == "00:00:00,000"
    assert engine.cue_time(100 * 3600.0, ",") == "100:00:00,000"


def test_srt_exact() -> None:
    srt = engine.render_srt(common_pb2.Konspekt(), small_transcript(), "").decode()
    assert srt == (
        "1\n00:00:01,000 --> 00:00:04,250\nHello everyone.\n\n"
        "2\n00:00:04,250 --> 00:00:09,999\nTwo\nlines\n\n"
        "3\n01:01:01,500 --> 01:01:03,000\na < b & c -> d\n"
    )


def test_vtt_exact() -> None:
    vtt = engine.render_vtt(common_pb2.Konspekt(), small_transcript(), "").decode()
    assert vtt == (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:04.250\nHello everyone.\n\n"
        "00:00:04.250 --> 00:00:09.999\nTwo\nlines\n\n"
        "01:01:01.500 --> 01:01:03.000\na &lt; b &amp; c --&gt; d\n"
    )


def test_subtitles_from_real_russian_text(ru_transcript: common_pb2.Transcript) -> None:
    n = len(ru_transcript.segments)
    assert n > 5
    srt = engine.render_srt(common_pb2.Konspekt(), ru_transcript, "").decode("utf-8")
    blocks = srt.strip("\n").split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == [str(i) for i in range(1, n + 1)]
    assert all(
        re.fullmatch(r"\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}", b.splitlines()[1])
        for b in blocks
    )
    assert blocks[0].splitlines()[2] == "Сегодня был платеж по кредиту."
    vtt = engine.render_vtt(common_pb2.Konspekt(), ru_transcript, "").decode("utf-8")
    assert vtt.startswith("WEBVTT\n\n")
    assert vtt.count(" --> ") == n
    assert "Я деньги внесла, но сумма потяжа не уменьшилась." in vtt


def test_end_before_start_is_clamped() -> None:
    transcript = common_pb2.Transcript(segments=[common_pb2.Segment(start=5.0, end=2.0, text="x")])
    assert (
        "00:00:05,000 --> 00:00:05,000" in engine.render_srt(common_pb2.Konspekt(), transcript, "").decode()
    )


# -- JSON -------------------------------------------------------------------------------------
def test_transcript_json_roundtrip(ru_transcript: common_pb2.Transcript) -> None:
    data = engine.render_transcript_json(common_pb2.Konspekt(), ru_transcript, "")
    assert "Сегодня" in data.decode("utf-8")  # not \u-escaped
    assert transcript_from_json(data) == ru_transcript


# -- no speech --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("language", "konspekt_words", "transcript_words"),
    [
        ("en", "No speech was detected", "No speech was detected in the recording."),
        ("ru", "В записи не обнаружено речи", "В записи не обнаружено речи."),
    ],
)
def test_empty_transcript_says_so(language: str, konspekt_words: str, transcript_words: str) -> None:
    transcript = common_pb2.Transcript(language=language, duration=20.0)
    konspekt = common_pb2.Konspekt(language=language)
    files = {f.name: f.data for f in engine.Engine().render(konspekt, transcript, source_name="silence.mp4")}

    doc = open_docx(files["konspekt.docx"])
    assert styled(doc, "Heading 1") == []
    assert any(p.text.startswith(konspekt_words) for p in doc.paragraphs)
    assert konspekt_words in files["konspekt.txt"].decode()
    assert files["transcript.txt"].decode().rstrip("\n").endswith(transcript_words)
    assert files["transcript.srt"].decode() == f"1\n00:00:00,000 --> 00:00:20,000\n{transcript_words}\n"
    assert (
        files["transcript.vtt"].decode() == f"WEBVTT\n\n00:00:00.000 --> 00:00:20.000\n{transcript_words}\n"
    )
    assert json.loads(files["transcript.json"])["segments"] == []


# -- registry and scale -----------------------------------------------------------------------
def test_registry_names_and_types() -> None:
    specs = engine.resolve_formats([])
    assert [(s.name, s.content_type) for s in specs] == [
        ("konspekt.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("konspekt.txt", "text/plain; charset=utf-8"),
        ("transcript.txt", "text/plain; charset=utf-8"),
        ("transcript.srt", "application/x-subrip"),
        ("transcript.vtt", "text/vtt"),
        ("transcript.json", "application/json"),
        ("konspekt.md", "text/markdown; charset=utf-8"),
    ]
    chosen = engine.resolve_formats(
        [F.FORMAT_TRANSCRIPT_SRT, F.FORMAT_KONSPEKT_DOCX, F.FORMAT_TRANSCRIPT_SRT]
    )
    assert [s.name for s in chosen] == ["transcript.srt", "konspekt.docx"]


@pytest.mark.parametrize("value", [F.FORMAT_UNSPECIFIED, 99])
def test_unknown_format_rejected(value: int) -> None:
    with pytest.raises(InvalidInput, match="unknown output format"):
        engine.resolve_formats([value])


def test_hour_long_transcript(en_konspekt: common_pb2.Konspekt) -> None:
    n = 4000
    transcript = common_pb2.Transcript(
        language="en",
        duration=n * 0.9 + 5,
        segments=[
            common_pb2.Segment(index=i, start=i * 0.9, end=i * 0.9 + 0.85, text=f"Sentence number {i}.")
            for i in range(n)
        ],
    )
    started = time.monotonic()
    files = {f.name: f.data for f in engine.Engine().render(en_konspekt, transcript)}
    elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed  # "well under a second" on an idle machine; CI is shared

    srt = files["transcript.srt"].decode()
    assert srt.count(" --> ") == n
    assert srt.rstrip("\n").endswith(f"{n}\n00:59:59,100 --> 00:59:59,950\nSentence number {n - 1}.")
    assert files["transcript.vtt"].decode().count(" --> ") == n
    assert len(files["transcript.txt"].decode().splitlines()) == 4 + n
    assert len(transcript_from_json(files["transcript.json"]).segments) == n
    doc = open_docx(files["konspekt.docx"])
    assert "Duration: 1:00:05" in doc.paragraphs[1].text
    assert styled(doc, "List Bullet")[0] == "[0:00:00] Start from where we are"


def test_load_engine_returns_a_working_engine(en_konspekt: common_pb2.Konspekt) -> None:
    files = engine.load_engine().render(en_konspekt, common_pb2.Transcript(), [F.FORMAT_KONSPEKT_TXT])
    assert [f.name for f in files] == ["konspekt.txt"]
    assert files[0].data.startswith(b"Political philosophy")
