"""The summarizer stage sends its warnings and progress as notices (code, args, English text)
beside the English strings, byte for byte the same text: a real gRPC stage on port 0 with a
scripted engine (the Russian meeting of test_pure, whose answer the checks put right)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from konspekt.notices import TEMPLATES
from konspekt.server import Loader, StageServer
from konspekt.settings import ServiceSettings
from konspekt.v1 import common_pb2, summarizer_pb2, summarizer_pb2_grpc
from konspekt_summarizer.konspekt import Summarizer
from konspekt_summarizer.server import SERVICE_NAME
from konspekt_summarizer.servicer import SummarizerServicer
from konspekt_summarizer.settings import SummarizerSettings

from .test_pure import RU_MEETING, ScriptedEngine, ru_konspekt

ANSWER: dict[str, object] = {
    "title": "Запуск приложения",
    "summary": "Обсудили запуск приложения.",
    "decisions": [{"text": "Платная подписка в первой версии нужна или нет?", "time": "00:05"}],
    "action_items": [
        {"task": "Решить отказаться от платной подписки", "owner": "", "due": "", "time": "00:10"},
        {"task": "Магазин проверяет сборку неделю", "owner": "Магазин", "due": "", "time": "00:25"},
    ],
    "key_points": [],
}


@pytest.fixture
def target() -> Iterator[str]:
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    loader: Loader[Summarizer] = Loader(lambda: Summarizer(ScriptedEngine(ANSWER), settings))
    servicer = SummarizerServicer(loader)
    server = StageServer(
        ServiceSettings(port=0, workers=1, queue=1),
        [SERVICE_NAME],
        lambda s: summarizer_pb2_grpc.add_SummarizerServiceServicer_to_server(servicer, s),
    ).start()
    server.load_and_serve(loader)
    yield server.address
    server.stop(0)


def notice_codes(notice: common_pb2.Notice) -> set[str]:
    return {notice.code, *(c for part in notice.parts.values() for c in notice_codes(part))}


def test_warnings_and_progress_come_as_notices(target: str) -> None:
    transcript = common_pb2.Transcript(language="ru", segments=RU_MEETING, duration=35.0)
    with grpc.insecure_channel(target) as ch:
        events = list(
            summarizer_pb2_grpc.SummarizerServiceStub(ch).Summarize(
                summarizer_pb2.SummarizeRequest(transcript=transcript), timeout=60
            )
        )
    result = events[-1].result
    assert list(result.warnings) == ru_konspekt()[1]  # the English as before
    assert [n.text for n in result.notices] == list(result.warnings)
    codes = set().union(*(notice_codes(n) for n in result.notices))
    assert codes <= set(TEMPLATES) and "decision_dropped" in codes and "question_not_decision" in codes
    progress = [e.progress for e in events if e.HasField("progress")]
    assert progress and all(p.notice.code in TEMPLATES and p.notice.text == p.message for p in progress)
    assert progress[-1].notice.code == "done"
