"""Konspekts and transcripts the renderer tests share (built from the real testdata texts)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from konspekt.v1 import common_pb2


def transcript_from_text(text: str, duration: float, language: str) -> common_pb2.Transcript:
    """Sentences of a real transcript, spread evenly over its duration (as ASR segments would be)."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    step = duration / len(sentences)
    return common_pb2.Transcript(
        language=language,
        language_probability=0.98,
        duration=duration,
        segments=[
            common_pb2.Segment(index=i, start=i * step, end=(i + 1) * step, text=" " + s)
            for i, s in enumerate(sentences)
        ],
    )


@pytest.fixture
def ru_transcript(testdata: Path) -> common_pb2.Transcript:
    text = (testdata / "transcripts" / "call_ru_51s.asr-whisper-base.txt").read_text(encoding="utf-8")
    return transcript_from_text(text, 51.0, "ru")


@pytest.fixture
def en_transcript(testdata: Path) -> common_pb2.Transcript:
    text = (testdata / "transcripts" / "lecture_en_60s.asr-whisper-base.txt").read_text(encoding="utf-8")
    return transcript_from_text(text, 60.0, "en")


@pytest.fixture
def ru_konspekt() -> common_pb2.Konspekt:
    return common_pb2.Konspekt(
        language="ru",
        title="Звонок в банк о платеже по кредиту",
        summary="Клиентка внесла платёж, но сумма долга не уменьшилась.\nОператор проверяет перевод.",
        key_points=[
            common_pb2.Point(text="Платёж по кредиту внесён сегодня", at=0.0, segment_index=0),
            common_pb2.Point(text="Сумма долга не уменьшилась", at=6.375, segment_index=1),
        ],
        decisions=[common_pb2.Point(text="Проверить перевод из другого банка", at=31.9, segment_index=5)],
        action_items=[
            common_pb2.ActionItem(
                task="Проверить зачисление платежа", owner="Анна", due="пятница", at=38.25, segment_index=6
            ),
            common_pb2.ActionItem(task="Перезвонить клиентке", at=44.6, segment_index=7),
        ],
        style=common_pb2.STYLE_MEETING,
    )


@pytest.fixture
def en_konspekt() -> common_pb2.Konspekt:
    return common_pb2.Konspekt(
        language="en",
        title="Political philosophy and the real world",
        summary="Theories often ignore where we actually are and how they could be implemented.",
        key_points=[
            common_pb2.Point(text="Start from where we are", at=0.0, segment_index=0),
            common_pb2.Point(text="Piketty's 4% global wealth tax", at=42.5, segment_index=4),
        ],
        decisions=[common_pb2.Point(text="Focus on implementable proposals", at=55.0, segment_index=6)],
        action_items=[
            common_pb2.ActionItem(
                task="Read Capital in the 21st Century", owner="Anna", due="Friday", at=65.5, segment_index=5
            )
        ],
        style=common_pb2.STYLE_MEETING,
    )
