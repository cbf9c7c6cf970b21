"""The ASR stage over real gRPC (port 0) with a real S3 store, and its CLI."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from konspekt.channels import open_channel
from konspekt.storage import ObjectStore
from konspekt.transcripts import transcript_from_json
from konspekt.v1 import asr_pb2, asr_pb2_grpc, common_pb2
from konspekt_asr import cli
from konspekt_asr.server import SERVICE_NAME, build_server
from tests.asr.conftest import WavMaker, asr_settings
from tests.asr.test_engine import words
from tests.common.buckets import another_bucket, missing_bucket

JFK = "ask not what your country can do for you"


@pytest.fixture(scope="module")
def target(tiny_en_model: Path, store: ObjectStore) -> Iterator[str]:
    server, loader = build_server(asr_settings(tiny_en_model), store)
    server.start()
    server.load_and_serve(loader)
    yield server.address
    server.stop(0)


def transcribe(target: str, request: asr_pb2.TranscribeRequest) -> list[asr_pb2.TranscribeResponse]:
    with open_channel(target) as channel:
        return list(asr_pb2_grpc.AsrServiceStub(channel).Transcribe(request, timeout=60))


def transcribe_error(target: str, request: asr_pb2.TranscribeRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        transcribe(target, request)
    return info.value


def kinds(events: list[asr_pb2.TranscribeResponse]) -> list[str]:
    return [str(e.WhichOneof("event")) for e in events]


def health_status(address: str) -> int:
    with open_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5
        )
    return int(reply.status)


def test_health_serving_only_after_load(tiny_en_model: Path) -> None:
    server, loader = build_server(asr_settings(tiny_en_model))
    server.start()
    try:
        assert health_status(server.address) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert not loader.ready
        # Before loading a call gets UNAVAILABLE (a plain channel: open_channel would retry it).
        with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as info:
            list(
                asr_pb2_grpc.AsrServiceStub(channel).Transcribe(
                    asr_pb2.TranscribeRequest(audio=common_pb2.Blob(inline=b"x")), timeout=5
                )
            )
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        server.load_and_serve(loader)
        assert health_status(server.address) == health_pb2.HealthCheckResponse.SERVING
        assert loader.get().name == "whisper-tiny-en"
    finally:
        server.stop(0)


def test_inline_streams_segments_before_the_result(target: str, wav: WavMaker) -> None:
    audio = wav("audio/jfk.flac").read_bytes()
    events = transcribe(target, asr_pb2.TranscribeRequest(audio=common_pb2.Blob(inline=audio)))
    order = kinds(events)
    assert order[-1] == "result"
    assert order.count("result") == 1
    assert 0 < order.index("segment") < order.index("result")
    segments = [e.segment for e in events if e.HasField("segment")]
    result = events[-1].result
    assert result.segment_count == len(segments) >= 1
    assert [s.index for s in segments] == list(range(len(segments)))
    assert JFK in words(" ".join(s.text for s in segments))
    assert result.language == "en"
    assert result.duration == pytest.approx(11.0, abs=0.1)
    assert not result.no_speech
    assert result.model == "whisper-tiny-en"
    assert not result.HasField("transcript")
    fractions = [e.progress.fraction for e in events if e.HasField("progress")]
    assert fractions == sorted(fractions)
    progress = [e.progress for e in events if e.HasField("progress")]
    assert all(p.notice.text == p.message for p in progress)
    phases = [p.notice for p in progress]
    assert {p.code for p in phases} == {"asr_recognising", "asr_position", "done"}
    assert not result.notices
    assert fractions[-1] == pytest.approx(1.0)


def test_ref_in_and_transcript_stored(target: str, store: ObjectStore, wav: WavMaker) -> None:
    prefix = f"test-asr/{uuid.uuid4().hex}/"
    audio_ref = store.put_file(prefix + "audio.wav", wav("video/jfk_en_11s.mp4"), "audio/wav")
    out = common_pb2.ObjectRef(bucket=store.bucket, key=prefix + "transcript.json")
    events = transcribe(
        target,
        asr_pb2.TranscribeRequest(audio=common_pb2.Blob(ref=audio_ref), language="en", output=out),
    )
    result = events[-1].result
    assert result.transcript == out
    stored = transcript_from_json(store.get_bytes(result.transcript))
    streamed = [e.segment for e in events if e.HasField("segment")]
    assert list(stored.segments) == streamed
    assert stored.language == "en"
    assert stored.duration == pytest.approx(11.0, abs=0.1)
    assert JFK in words(" ".join(s.text for s in stored.segments))
    assert store.client.stat_object(store.bucket, out.key).content_type == "application/json"
    store.delete_prefix(prefix)


def test_transcript_to_another_bucket_is_refused(target: str, store: ObjectStore, wav: WavMaker) -> None:
    """A stage writes only to its own bucket (konspekt.access): another one, existing or not, is
    PERMISSION_DENIED before anything is transcribed or stored."""
    audio = common_pb2.Blob(inline=wav("audio/jfk.flac").read_bytes())
    key = f"test-asr/{uuid.uuid4().hex}/transcript.json"
    with another_bucket(store) as other:
        for bucket in (other, missing_bucket(store)):
            out = common_pb2.ObjectRef(bucket=bucket, key=key)
            err = transcribe_error(target, asr_pb2.TranscribeRequest(audio=audio, language="en", output=out))
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED
            assert err.details() == f"output: bucket {bucket!r} is not this stage's bucket"
        assert list(store.client.list_objects(other, recursive=True)) == []


def test_silence_is_no_speech(target: str, testdata: Path) -> None:
    audio = (testdata / "bad" / "silence_20s.mp4").read_bytes()  # decoded from MP4 inline
    events = transcribe(target, asr_pb2.TranscribeRequest(audio=common_pb2.Blob(inline=audio)))
    assert "segment" not in kinds(events)
    result = events[-1].result
    assert result.no_speech
    assert [(n.code, n.text) for n in result.notices] == [
        ("no_speech", "no speech was found in the recording")
    ]
    assert result.segment_count == 0
    assert result.duration == pytest.approx(20.0, abs=0.1)


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (
            asr_pb2.TranscribeRequest(audio=common_pb2.Blob(inline=b"this is not a media file at all")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "cannot decode",
        ),
        (asr_pb2.TranscribeRequest(), grpc.StatusCode.INVALID_ARGUMENT, "no audio"),
        (
            asr_pb2.TranscribeRequest(audio=common_pb2.Blob(inline=b"RIFF"), language="ru"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "",
        ),
        (
            asr_pb2.TranscribeRequest(
                audio=common_pb2.Blob(ref=common_pb2.ObjectRef(key="test-asr/missing.wav"))
            ),
            grpc.StatusCode.NOT_FOUND,
            "does not exist",
        ),
        (
            asr_pb2.TranscribeRequest(
                audio=common_pb2.Blob(inline=b"x"),  # the output is checked before the audio
                output=common_pb2.ObjectRef(bucket="konspekt-test"),  # the stage's bucket (tests/conftest.py)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "output has an empty key",
        ),
    ],
    ids=["undecodable", "no-audio", "bad-wav", "missing-ref", "output-without-key"],
)
def test_bad_requests(
    target: str, request_: asr_pb2.TranscribeRequest, code: grpc.StatusCode, message: str
) -> None:
    err = transcribe_error(target, request_)
    assert err.code() == code
    assert message in (err.details() or "")


def test_english_only_model_refuses_russian(target: str, wav: WavMaker) -> None:
    audio = wav("audio/jfk.flac").read_bytes()
    err = transcribe_error(
        target, asr_pb2.TranscribeRequest(audio=common_pb2.Blob(inline=audio), language="ru")
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "English-only" in (err.details() or "")


def test_without_store_refs_fail_clearly(tiny_en_model: Path) -> None:
    server, loader = build_server(asr_settings(tiny_en_model))
    server.start()
    try:
        server.load_and_serve(loader)
        request = asr_pb2.TranscribeRequest(
            audio=common_pb2.Blob(ref=common_pb2.ObjectRef(bucket="b", key="a.wav"))
        )
        err = transcribe_error(server.address, request)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "no object store" in (err.details() or "")
    finally:
        server.stop(0)


def test_cancel_stops_the_work(target: str, wav: WavMaker, caplog: pytest.LogCaptureFixture) -> None:
    audio = wav("video/lecture_en_60s.webm").read_bytes()
    with caplog.at_level(logging.INFO, logger="konspekt_asr.servicer"), open_channel(target) as channel:
        call = asr_pb2_grpc.AsrServiceStub(channel).Transcribe(
            asr_pb2.TranscribeRequest(audio=common_pb2.Blob(inline=audio)), timeout=60
        )
        for event in call:
            if event.HasField("segment"):
                call.cancel()  # type: ignore[no-untyped-call]
                break
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "cancelled by the caller" not in caplog.text:
            time.sleep(0.1)
    assert "cancelled by the caller" in caplog.text
    assert "transcribed" not in caplog.text  # it never got to the result


def test_cli_prints_segments(target: str, wav: WavMaker, capsys: pytest.CaptureFixture[str]) -> None:
    path = wav("audio/jfk.flac")
    assert cli.main(["transcribe", str(path), "--target", target, "--timeout", "60"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("[00:00 → ")
    assert JFK in words(out)
    assert "language en" in err
    assert "100%" in err


def test_cli_json(target: str, wav: WavMaker, capsys: pytest.CaptureFixture[str]) -> None:
    path = wav("audio/jfk.flac")
    assert cli.main(["transcribe", str(path), "--target", target, "--json", "--language", "en"]) == 0
    out, _ = capsys.readouterr()
    transcript = transcript_from_json(out)
    assert transcript.language == "en"
    assert JFK in words(" ".join(s.text for s in transcript.segments))
    assert json.loads(out)["segments"][0]["index"] == 0


def test_cli_reports_errors(target: str, testdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = testdata / "bad" / "text_renamed.mp4"
    assert cli.main(["transcribe", str(bad), "--target", target]) == 1
    assert "INVALID_ARGUMENT" in capsys.readouterr().err
    assert cli.main(["transcribe", str(testdata / "nope.wav"), "--target", target]) == 2
