"""A 60-minute transcript through the real summarizer stage with the CPU default (the 1.5B): its
konspekt covers the beginning, middle and end, every time points to a segment, and progress
streams per window.

The transcript is built from the testdata transcripts, a different source in each third (so the
thirds can be told apart), each repeated until its third is 20 minutes long, spoken at 2.5 words
a second (150 words a minute, ~9,000 words, ~11,000 tokens: two windows of the default 8k context).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from konspekt.v1 import common_pb2, summarizer_pb2, summarizer_pb2_grpc
from konspekt_summarizer.server import build_server

from .conftest import load_transcript, make_settings
from .test_konspekt import check_konspekt

# ~15 min on 2 cores: one call per window (~6k tokens each) and the merge, on the 1.5B
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

WORDS_PER_SECOND = 2.5
THIRD_SECONDS = 20 * 60.0
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")


@dataclass(frozen=True)
class Part:
    """A third of the meeting: its source and words only it contains."""

    name: str
    sentences: list[str]
    markers: tuple[str, ...]


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if len(s.split()) >= 2]


def parts(testdata: Path) -> list[Part]:
    transcripts = testdata / "transcripts"

    def read(name: str) -> str:
        return (transcripts / f"{name}.asr-whisper-base.txt").read_text("utf-8")

    licence = read("fw_multilingual").split("[30-60 s, de]")[0].removeprefix("[0-30 s, en]")
    meeting = " ".join(s.text.strip() for s in load_transcript("meeting_en.json").segments)
    return [
        Part(
            "news", sentences(read("news_en_169s")), ("trump", "palin", "cruz", "ethanol", "iowa", "campaign")
        ),
        Part(
            "lecture",
            sentences(read("lecture_en_60s") + " " + read("jfk_en_11s") + " " + licence),
            ("dublin", "philosoph", "piketty", "wealth tax", "country", "software", "licen"),
        ),
        Part("meeting", sentences(meeting), ("mixpanel", "beta", "2.4", "march 17", "privacy", "dark mode")),
    ]


def long_meeting(testdata: Path) -> tuple[common_pb2.Transcript, list[Part]]:
    """~60 minutes: each part's sentences, repeated, fill one third of the time."""
    t = common_pb2.Transcript(language="en")
    at = 0.0
    chosen = parts(testdata)
    for third, part in enumerate(chosen):
        end = (third + 1) * THIRD_SECONDS
        while at < end:
            for text in part.sentences:
                seconds = max(1.0, len(text.split()) / WORDS_PER_SECOND)
                t.segments.add(index=len(t.segments), start=at, end=at + seconds, text=text)
                at += seconds + 0.3
                if at >= end:
                    break
    t.duration = at
    return t, chosen


def test_the_long_meeting_is_what_it_claims(testdata: Path) -> None:
    t, chosen = long_meeting(testdata)
    assert 59 * 60 <= t.duration <= 61 * 60
    words = sum(len(s.text.split()) for s in t.segments)
    assert 8000 <= words <= 9500
    for third, part in enumerate(chosen):
        inside = " ".join(
            s.text for s in t.segments if third * THIRD_SECONDS <= s.start < (third + 1) * THIRD_SECONDS
        )
        outside = " ".join(
            s.text for s in t.segments if not third * THIRD_SECONDS <= s.start < (third + 1) * THIRD_SECONDS
        ).lower()
        assert all(m in inside.lower() for m in part.markers[:2])
        assert not any(m in outside for m in part.markers), part.name  # markers tell the thirds apart


def test_a_60_minute_meeting_on_the_cpu_default(default_model: Path, testdata: Path) -> None:
    transcript, chosen = long_meeting(testdata)
    # the stage's defaults: n_ctx 8192, max_tokens 1200
    settings = make_settings(default_model, n_ctx=8192, max_tokens=1200, log_json=False, metrics_port=0)
    server, loader = build_server(settings)
    server.start()
    progress: list[common_pb2.Progress] = []
    results: list[summarizer_pb2.SummarizeResult] = []
    try:
        server.load_and_serve(loader)
        windows = loader.get().plan_windows(transcript)
        started = time.monotonic()
        with grpc.insecure_channel(server.address) as ch:
            stub = summarizer_pb2_grpc.SummarizerServiceStub(ch)
            request = summarizer_pb2.SummarizeRequest(transcript=transcript)
            for response in stub.Summarize(request, timeout=3600):
                if response.HasField("progress"):
                    progress.append(response.progress)
                else:
                    results.append(response.result)
        seconds = time.monotonic() - started
    finally:
        server.stop(0)
    assert len(results) == 1
    result = results[0]
    k = result.konspekt
    print(f"60-minute meeting: {len(windows)} windows, {seconds:.0f} s, usage {result.usage}")
    print(f"warnings: {list(result.warnings)}\n{k}")

    # progress streamed per window, then the merge
    n = len(windows)
    assert n >= 2
    messages = [p.message for p in progress]
    for i in range(1, n + 1):
        assert any(m.startswith(f"window {i}/{n}:") for m in messages), i
    assert any(m.startswith("merging windows") for m in messages)
    assert [p.fraction for p in progress] == sorted(p.fraction for p in progress)

    # every time points to an existing segment
    check_konspekt(k, transcript)
    cited_at = [(i.segment_index, i.at) for i in [*k.key_points, *k.decisions]]
    cited_at += [(a.segment_index, a.at) for a in k.action_items]
    assert cited_at and all(0 <= i < len(transcript.segments) for i, _ in cited_at)

    # the beginning, the middle and the end are in it
    text = " ".join([k.title, k.summary, *(p.text for p in [*k.key_points, *k.decisions])])
    text = (text + " " + " ".join(a.task for a in k.action_items)).lower()
    for third, part in enumerate(chosen):
        lo, hi = third * THIRD_SECONDS, (third + 1) * THIRD_SECONDS
        cited = [at for _, at in cited_at if lo <= at < hi]
        named = [m for m in part.markers if m in text]
        assert cited and named, f"nothing from the {part.name} ({lo / 60:.0f}-{hi / 60:.0f} min)"
