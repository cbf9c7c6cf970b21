"""A cancelled or expired Transcribe stops recognising before the next decoding window, and the
next call streams at once (issue 15, part 4): a real stage (port 0, whisper-tiny-en, SeaweedFS).
The time it takes is measured by bench/cancel.py, not asserted here."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import REGISTRY

from konspekt.channels import open_channel
from konspekt.storage import ObjectStore
from konspekt.v1 import asr_pb2, asr_pb2_grpc, common_pb2
from konspekt_asr.server import build_server
from tests.asr.conftest import WavMaker, asr_settings
from tests.asr.test_engine import words

JFK = "ask not what your country can do for you"
NEWS_SECONDS = 169.0


@pytest.fixture(scope="module")
def target(tiny_en_model: Path, store: ObjectStore) -> Iterator[str]:
    server, loader = build_server(asr_settings(tiny_en_model), store)
    server.start()
    server.load_and_serve(loader)
    yield server.address
    server.stop(0)


class Lines(logging.Handler):
    """The engine's log lines, whatever the stage's logging setup does with the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def engine_log() -> Iterator[Lines]:
    logger = logging.getLogger("konspekt_asr.engine")
    lines, level = Lines(), logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(lines)
    logger.setLevel(level)


def cancelled() -> float:
    return REGISTRY.get_sample_value("konspekt_asr_cancelled_total") or 0.0


def eventually(check: Callable[[], bool], seconds: float = 300.0) -> bool:
    """Whether ``check`` holds within ``seconds`` (a bound for a hung test, not a measurement)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stopped_at(lines: Lines) -> list[float]:
    """Where the engine's cancelled recognitions stopped, seconds into the audio."""
    found = (re.search(r"transcription cancelled at ([0-9.]+) s", line) for line in lines.lines)
    return [float(m.group(1)) for m in found if m]


@pytest.fixture(scope="module")
def news(store: ObjectStore, wav: WavMaker) -> common_pb2.Blob:
    """169 s of speech (six decoding windows), too long to send inline."""
    ref = store.put_file(f"test-asr/{uuid.uuid4().hex}/news.wav", wav("video/news_en_169s.mp4"), "audio/wav")
    return common_pb2.Blob(ref=ref)


def test_a_cancelled_call_stops_and_the_next_one_streams(
    target: str, news: common_pb2.Blob, wav: WavMaker, engine_log: Lines
) -> None:
    before = cancelled()
    jfk = common_pb2.Blob(inline=wav("audio/jfk.flac").read_bytes())
    with open_channel(target) as channel:
        stub = asr_pb2_grpc.AsrServiceStub(channel)
        call = stub.Transcribe(asr_pb2.TranscribeRequest(audio=news, language="en"), timeout=600)
        heard: list[common_pb2.Segment] = []
        for event in call:
            if event.HasField("segment"):
                heard.append(event.segment)
                break
        call.cancel()  # type: ignore[no-untyped-call]  # grpc's stubs leave it untyped
        # the next call streams its first event (progress), then recognises as usual
        events = stub.Transcribe(asr_pb2.TranscribeRequest(audio=jfk), timeout=600)
        first = next(iter(events))
        rest = list(events)
    assert heard and heard[0].end < NEWS_SECONDS / 2
    assert first.HasField("progress")
    assert rest[-1].HasField("result")
    assert JFK in words(" ".join(e.segment.text for e in rest if e.HasField("segment")))
    # the abandoned recognition stopped within the window after the one it was cancelled in
    assert eventually(lambda: cancelled() > before)
    (where,) = stopped_at(engine_log)
    assert where < 100.0 < NEWS_SECONDS


def test_an_expired_call_stops_too(target: str, news: common_pb2.Blob, engine_log: Lines) -> None:
    before = cancelled()
    with open_channel(target) as channel, pytest.raises(grpc.RpcError) as info:
        list(
            asr_pb2_grpc.AsrServiceStub(channel).Transcribe(
                asr_pb2.TranscribeRequest(audio=news, language="en"), timeout=4
            )
        )
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert eventually(lambda: cancelled() > before)
    (where,) = stopped_at(engine_log)
    assert where < 100.0
