#!/usr/bin/env python3
"""Cancel-then-call (issue 15, part 4): how long after a caller cancels a Transcribe or a
Summarize (or its deadline passes) the next caller's first event comes. Both stages run in this
process on port 0 with inline input (no object store), whisper-tiny-en and the qwen2.5 0.5B GGUF
unless told otherwise. Not a test: it prints markdown, writes bench/out/ and replaces its
section of bench/RESULTS.md.

    .venv/bin/python bench/cancel.py [--repeat 3] [--asr-model DIR] [--llm-model GGUF]

Each try: call A works (ASR: 120 s of the news clip, cancelled after its first segment;
summarizer: a 14-segment meeting, cancelled while the model writes, or while it still reads the
prompt), then call B starts at once; the figures: from A's cancel to B's first event, and to B's
first segment (ASR) or generated token (summarizer), which shows what the abandoned work left.
"Expired": A's deadline passes while it works (B starts when A's client sees DEADLINE_EXCEEDED;
the figure counts from A's deadline). "Idle": B on a stage with nothing to stop.
"""

from __future__ import annotations

import argparse
import io
import re
import statistics
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from benchlib import TESTDATA, RunInfo, extract_wav, md_table, publish, save

from konspekt.transcripts import transcript_from_json
from konspekt.v1 import asr_pb2, asr_pb2_grpc, common_pb2, summarizer_pb2, summarizer_pb2_grpc
from konspekt_asr.server import build_server as build_asr
from konspekt_asr.settings import AsrSettings
from konspekt_devstack import MODELS, ROOT
from konspekt_summarizer.server import build_server as build_summarizer
from konspekt_summarizer.settings import SummarizerSettings

ALONE = {"port": 0, "metrics_port": 0, "grace_seconds": 0, "clients": {}, "allow_unauthenticated": True}
SECONDS_OF_AUDIO = 120  # inline: under the 4 MiB message limit
MEETING = ROOT / "tests" / "summarizer" / "data" / "meeting_en.json"
SHORT = common_pb2.Transcript(
    language="en",
    duration=13.0,
    segments=[
        common_pb2.Segment(index=0, start=0.0, end=6.0, text="Hi all, quick sync about the website."),
        common_pb2.Segment(index=1, start=6.0, end=13.0, text="We decided to launch it on Monday."),
    ],
)


def news_wav(seconds: int) -> bytes:
    """The first ``seconds`` of the news clip as the audio stage would send it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = extract_wav(TESTDATA / "video" / "news_en_169s.mp4", Path(tmp) / "news.wav")
        with wave.open(str(path), "rb") as src:
            params = src.getparams()
            frames = src.readframes(seconds * src.getframerate())
    out = io.BytesIO()
    with wave.open(out, "wb") as dst:
        dst.setparams(params)
        dst.writeframes(frames)
    return out.getvalue()


Figures = dict[str, list[tuple[float, float]]]


def call_b(start: Callable[[], Any], working: Callable[[Any], bool], since: float) -> tuple[float, float]:
    """Starts call B: seconds from ``since`` to its first event and to its first sign of work
    (ASR: a segment; summarizer: a generated token); then cancels it."""
    call = start()
    first = 0.0
    for event in call:
        first = first or time.monotonic() - since
        if working(event):
            break
    works = time.monotonic() - since
    call.cancel()
    time.sleep(2.0)  # B's cancel (and any abandoned work) ends before the next try
    return first, works


def cancel_then_call(
    start_a: Callable[[float], Any],
    working_a: Callable[[Any], bool],
    start_b: Callable[[], Any],
    working_b: Callable[[Any], bool],
) -> tuple[float, float]:
    """A until ``working_a(event)``, cancel, B at once."""
    call = start_a(600.0)
    for event in call:
        if working_a(event):
            break
    cancelled = time.monotonic()
    call.cancel()
    return call_b(start_b, working_b, cancelled)


def expire_then_call(
    start_a: Callable[[float], Any],
    deadline: float,
    start_b: Callable[[], Any],
    working_b: Callable[[Any], bool],
) -> tuple[float, float]:
    """A with a deadline it cannot meet; B once A's client sees DEADLINE_EXCEEDED (figures from
    A's deadline)."""
    began = time.monotonic()
    try:
        for _ in start_a(deadline):
            pass
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
    else:
        raise SystemExit(f"call A finished within its {deadline} s deadline: give it more work")
    return call_b(start_b, working_b, began + deadline)


def bench_asr(model: Path, repeat: int) -> Figures:
    settings = AsrSettings.model_validate({**ALONE, "model": str(model)})
    server, loader = build_asr(settings)
    server.start()
    server.load_and_serve(loader)
    long = common_pb2.Blob(inline=news_wav(SECONDS_OF_AUDIO))
    short = common_pb2.Blob(inline=news_wav(10))
    channel = grpc.insecure_channel(server.address)
    stub = asr_pb2_grpc.AsrServiceStub(channel)

    def a(timeout: float) -> Any:
        return stub.Transcribe(asr_pb2.TranscribeRequest(audio=long, language="en"), timeout=timeout)

    def b() -> Any:
        return stub.Transcribe(asr_pb2.TranscribeRequest(audio=short, language="en"), timeout=600)

    def segment(event: Any) -> bool:
        return bool(event.HasField("segment"))

    figures: Figures = {"idle": [], "cancelled": [], "expired": []}
    try:
        for _ in range(repeat):
            figures["idle"].append(call_b(b, segment, time.monotonic()))
            figures["cancelled"].append(cancel_then_call(a, segment, b, segment))
            figures["expired"].append(expire_then_call(a, 6.0, b, segment))
    finally:
        channel.close()
        server.stop(0)
    return figures


def bench_summarizer(model: Path, repeat: int) -> Figures:
    settings = SummarizerSettings.model_validate(
        {**ALONE, "model": str(model), "n_ctx": 4096, "log_json": False}
    )
    server, loader = build_summarizer(settings)
    server.start()
    server.load_and_serve(loader)
    meeting = transcript_from_json(MEETING.read_bytes())
    channel = grpc.insecure_channel(server.address)
    stub = summarizer_pb2_grpc.SummarizerServiceStub(channel)

    def a(timeout: float) -> Any:
        return stub.Summarize(summarizer_pb2.SummarizeRequest(transcript=meeting), timeout=timeout)

    def b() -> Any:
        return stub.Summarize(summarizer_pb2.SummarizeRequest(transcript=SHORT), timeout=600)

    def writing(event: Any) -> bool:
        return "writing" in event.progress.message

    def reading(event: Any) -> bool:
        return bool(re.search(r"reading the transcript", event.progress.message))

    figures: Figures = {
        "idle": [],
        "cancelled while writing": [],
        "cancelled while reading the prompt": [],
        "expired": [],
    }
    try:
        for _ in range(repeat):
            figures["idle"].append(call_b(b, writing, time.monotonic()))
            figures["cancelled while writing"].append(cancel_then_call(a, writing, b, writing))
            figures["cancelled while reading the prompt"].append(cancel_then_call(a, reading, b, writing))
            figures["expired"].append(expire_then_call(a, 8.0, b, writing))
    finally:
        channel.close()
        server.stop(0)
    return figures


def body(results: dict[str, Figures], models: dict[str, str]) -> str:
    rows = []
    for stage, cases in results.items():
        for case, pairs in cases.items():
            first, works = [p[0] for p in pairs], [p[1] for p in pairs]
            rows.append(
                [
                    stage,
                    case,
                    models[stage],
                    max(first),
                    statistics.median(first),
                    max(works),
                    statistics.median(works),
                    len(pairs),
                ]
            )
    headers = [
        "stage",
        "call A",
        "model",
        "first event max s",
        "median s",
        "first work max s",
        "median s",
        "tries",
    ]
    return (
        "Call B after call A was cancelled (or passed its deadline): seconds from the cancel (or the "
        "deadline) to B's first event, and to B's first sign of work (ASR: its first segment; "
        "summarizer: its first generated token). Both stages in one process on port 0, inline input "
        '([how](cancel.py)); "idle": B alone. Before issue 15 part 4 the issue measured about 3 s '
        "(ASR) and 9–11 s (summarizer) to B's first event while the abandoned work ran on; the goal is "
        "2 s.\n\n" + md_table(headers, rows, "lllrrrrr")
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--asr-model", type=Path, default=MODELS / "whisper-tiny-en")
    parser.add_argument("--llm-model", type=Path, default=MODELS / "qwen2.5-0.5b-instruct" / "model.gguf")
    parser.add_argument("--only", choices=["asr", "summarizer"], default=None)
    args = parser.parse_args()
    info = RunInfo.now()
    results: dict[str, Figures] = {}
    models = {"asr": args.asr_model.name, "summarizer": args.llm_model.parent.name}
    if args.only in (None, "asr"):
        results["asr"] = bench_asr(args.asr_model, args.repeat)
    if args.only in (None, "summarizer"):
        results["summarizer"] = bench_summarizer(args.llm_model, args.repeat)
    text = body(results, models)
    save("cancel", info, {"seconds": results, "models": models}, text)
    publish("cancel.py", "## Cancel, then call — `bench/cancel.py`\n\n" + info.markdown() + "\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
