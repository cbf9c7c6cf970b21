"""The audio stage as deployed: a real gRPC server, real ffmpeg, a real S3 store, the CLI."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError

from konspekt.errors import details_of
from konspekt.server import Loader, StageServer
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt.v1 import audio_pb2, audio_pb2_grpc, common_pb2
from konspekt_audio import cli, main
from konspekt_audio.engine import MediaTool
from konspekt_audio.server import SERVICE_NAME, build_server
from konspekt_audio.servicer import CHUNK_SIZE
from konspekt_audio.settings import AudioSettings
from tests.audio.wavs import read_wav
from tests.common.buckets import another_bucket, missing_bucket

Stage = tuple[StageServer, Loader[MediaTool], Path]


def _start(store: ObjectStore | None, temp_dir: Path) -> Stage:
    server, loader = build_server(AudioSettings(port=0, temp_dir=temp_dir), store)
    return server.start(), loader, temp_dir


@pytest.fixture
def stage(store: ObjectStore, tmp_path: Path) -> Iterator[Stage]:
    """Started, not loaded yet."""
    started = _start(store, tmp_path)
    yield started
    started[0].stop(0)


@pytest.fixture
def address(stage: Stage) -> str:
    """A serving stage's address."""
    server, loader, _ = stage
    server.load_and_serve(loader)
    return server.address


@pytest.fixture
def stub(address: str) -> Iterator[audio_pb2_grpc.AudioServiceStub]:
    with grpc.insecure_channel(address) as channel:
        yield audio_pb2_grpc.AudioServiceStub(channel)


def _health(address: str, service: str = "") -> int:
    with grpc.insecure_channel(address) as channel:
        request = health_pb2.HealthCheckRequest(service=service)
        return int(health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status)


def _inline(path: Path) -> common_pb2.Blob:
    return common_pb2.Blob(inline=path.read_bytes())


def _extract(
    stub: audio_pb2_grpc.AudioServiceStub, request: audio_pb2.ExtractRequest
) -> tuple[list[common_pb2.Progress], list[bytes], audio_pb2.ExtractResult]:
    """Progress events, WAV chunks and the result, checking the result comes last and once."""
    events = list(stub.Extract(request, timeout=60))
    assert [e.WhichOneof("event") for e in events].count("result") == 1
    assert events[-1].WhichOneof("event") == "result"
    progress = [e.progress for e in events if e.WhichOneof("event") == "progress"]
    chunks = [e.audio_chunk for e in events if e.WhichOneof("event") == "audio_chunk"]
    return progress, chunks, events[-1].result


def _assert_no_temp_files(temp_dir: Path) -> None:
    """The servicer removes its temp dir after the call, which may end just after the client's."""
    for _ in range(50):
        if not any(temp_dir.iterdir()):
            return
        time.sleep(0.1)
    pytest.fail(f"temp files left behind: {list(temp_dir.rglob('*'))}")


def test_not_serving_until_loaded(stage: Stage) -> None:
    server, loader, _ = stage
    assert _health(server.address) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert _health(server.address, SERVICE_NAME) == health_pb2.HealthCheckResponse.NOT_SERVING
    server.load_and_serve(loader)
    assert _health(server.address) == health_pb2.HealthCheckResponse.SERVING
    assert _health(server.address, SERVICE_NAME) == health_pb2.HealthCheckResponse.SERVING


def test_extract_inline_streams_the_wav_back(
    stub: audio_pb2_grpc.AudioServiceStub, stage: Stage, testdata: Path
) -> None:
    source = testdata / "video" / "news_en_169s.mp4"
    progress, chunks, result = _extract(stub, audio_pb2.ExtractRequest(input=_inline(source)))
    assert len(chunks) > 1 and all(len(c) <= CHUNK_SIZE for c in chunks)
    wav = read_wav(b"".join(chunks))
    assert wav.duration == pytest.approx(169.2, abs=0.1)
    assert result.audio_duration == pytest.approx(wav.duration)
    assert result.audio_bytes == sum(len(c) for c in chunks)
    assert not result.HasField("audio") and list(result.warnings) == []
    assert result.media.container.startswith("mov,mp4") and result.media.size_bytes == source.stat().st_size
    fractions = [p.fraction for p in progress]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    _assert_no_temp_files(stage[2])


def test_extract_object_store_ref_in_and_out(
    stub: audio_pb2_grpc.AudioServiceStub, store: ObjectStore, testdata: Path
) -> None:
    prefix = f"test-audio/{uuid.uuid4().hex}/"
    upload = store.put_file(prefix + "Совещание отдела 1.mp4", testdata / "video" / "Совещание отдела 1.mp4")
    output = common_pb2.ObjectRef(bucket=store.bucket, key=prefix + "audio.wav")
    _, chunks, result = _extract(
        stub, audio_pb2.ExtractRequest(input=common_pb2.Blob(ref=upload), output=output)
    )
    assert chunks == []
    assert result.audio == output
    stored = store.get_bytes(output)
    assert len(stored) == result.audio_bytes
    assert read_wav(stored).duration == pytest.approx(11.0, abs=0.1)
    assert store.client.stat_object(store.bucket, output.key).content_type == "audio/wav"


def test_truncated_upload_comes_with_a_warning(
    stub: audio_pb2_grpc.AudioServiceStub, store: ObjectStore, testdata: Path
) -> None:
    upload = store.put_file(
        f"test-audio/{uuid.uuid4().hex}/t.mp4", testdata / "bad" / "truncated_faststart_30pct.mp4"
    )
    _, chunks, result = _extract(stub, audio_pb2.ExtractRequest(input=common_pb2.Blob(ref=upload)))
    assert read_wav(b"".join(chunks)).duration == pytest.approx(result.audio_duration)
    assert result.audio_duration < 4.0 and result.media.duration == pytest.approx(11.0)
    assert [w.split(":")[0] for w in result.warnings] == ["the file seems truncated"]
    # the same notes as data: a code, its args, the English text byte for byte
    assert [(n.code, n.text) for n in result.notices] == [("audio_truncated", result.warnings[0])]
    assert set(result.notices[0].args) == {"decoded", "claimed"}


@pytest.mark.parametrize(
    ("name", "message"),
    [("no_audio_10s.mp4", "the file has no audio track"), ("empty.mp4", "the file is empty")],
)
def test_bad_input_is_invalid_argument_with_the_reason(
    stub: audio_pb2_grpc.AudioServiceStub, stage: Stage, testdata: Path, name: str, message: str
) -> None:
    reason, code = {"empty.mp4": ("INVALID_MEDIA", "file_empty")}.get(
        name, ("NO_AUDIO_TRACK", "no_audio_track")
    )
    request = audio_pb2.ExtractRequest(input=_inline(testdata / "bad" / name))
    with pytest.raises(grpc.RpcError) as err:
        _extract(stub, request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == message
    with pytest.raises(grpc.RpcError) as err:
        stub.Probe(audio_pb2.ProbeRequest(input=request.input), timeout=30)
    assert (err.value.code(), err.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)
    info = details_of(err.value)  # the reason for programs, and the note's code to translate
    assert info is not None and (info.reason, info.metadata["code"]) == (reason, code)
    _assert_no_temp_files(stage[2])


def test_request_errors(stub: audio_pb2_grpc.AudioServiceStub, store: ObjectStore) -> None:
    missing = common_pb2.Blob(ref=common_pb2.ObjectRef(bucket=store.bucket, key="test-audio/nope.mp4"))
    with pytest.raises(grpc.RpcError) as err:
        stub.Probe(audio_pb2.ProbeRequest(input=missing), timeout=30)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "test-audio/nope.mp4 does not exist" in (err.value.details() or "")
    with pytest.raises(grpc.RpcError) as err:
        _extract(stub, audio_pb2.ExtractRequest())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "the request has no input: set input.ref or input.inline"
    no_key = common_pb2.ObjectRef(bucket=store.bucket)  # checked before the input is read
    with pytest.raises(grpc.RpcError) as err:
        _extract(stub, audio_pb2.ExtractRequest(input=missing, output=no_key))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "output has an empty key"


def test_extract_to_another_bucket_is_refused(
    stub: audio_pb2_grpc.AudioServiceStub, stage: Stage, store: ObjectStore, testdata: Path
) -> None:
    """A stage writes only to its own bucket (konspekt.access): another one, existing or not, is
    PERMISSION_DENIED before the input is even read."""
    source = _inline(testdata / "bad" / "tiny_0_5s.mp4")
    key = f"test-audio/{uuid.uuid4().hex}/audio.wav"
    with another_bucket(store) as other:
        for bucket in (other, missing_bucket(store)):
            output = common_pb2.ObjectRef(bucket=bucket, key=key)
            with pytest.raises(grpc.RpcError) as err:
                _extract(stub, audio_pb2.ExtractRequest(input=source, output=output))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert err.value.details() == f"output: bucket {bucket!r} is not this stage's bucket"
        assert list(store.client.list_objects(other, recursive=True)) == []
    _assert_no_temp_files(stage[2])


def test_refs_without_an_object_store_fail_clearly(testdata: Path, tmp_path: Path) -> None:
    server, loader, _ = _start(None, tmp_path)
    try:
        server.load_and_serve(loader)
        with grpc.insecure_channel(server.address) as channel:
            stub = audio_pb2_grpc.AudioServiceStub(channel)
            ref = common_pb2.Blob(ref=common_pb2.ObjectRef(bucket="konspekt", key="up/a.mp4"))
            with pytest.raises(grpc.RpcError) as err:
                stub.Probe(audio_pb2.ProbeRequest(input=ref), timeout=30)
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "no object store configured" in (err.value.details() or "")
            # Inline input still works without a store.
            info = stub.Probe(audio_pb2.ProbeRequest(input=_inline(testdata / "bad" / "tiny_0_5s.mp4")))
            assert info.duration == pytest.approx(0.5)
    finally:
        server.stop(0)


def test_probe_reads_the_content_not_the_name(stub: audio_pb2_grpc.AudioServiceStub, testdata: Path) -> None:
    source = testdata / "bad" / "webm_named.mp4"
    info = stub.Probe(audio_pb2.ProbeRequest(input=_inline(source)), timeout=30)
    assert info == audio_pb2.MediaInfo(
        container="matroska,webm",
        duration=info.duration,
        has_audio=True,
        has_video=True,
        audio_codec="opus",
        video_codec="vp9",
        audio_sample_rate=48000,
        audio_channels=1,
        size_bytes=source.stat().st_size,
    )
    assert info.duration == pytest.approx(60.0, abs=0.1)


def test_cli_probe_and_extract(
    address: str, testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = testdata / "video" / "short_ru_6s.mov"
    assert cli.main(["probe", str(source), "--target", address]) == 0
    assert json.loads(capsys.readouterr().out)["audio_codec"] == "aac"

    out = tmp_path / "out.wav"
    assert cli.main(["extract", str(source), "-o", str(out), "--target", address, "--timeout", "60"]) == 0
    assert read_wav(out).duration == pytest.approx(6.4, abs=0.1)
    printed = capsys.readouterr()
    assert "100%" in printed.err and "6.3" in printed.out

    bad = tmp_path / "bad.wav"
    assert (
        cli.main(["extract", str(testdata / "bad" / "no_audio_10s.mp4"), "-o", str(bad), "--target", address])
        == 1
    )
    assert "INVALID_ARGUMENT: the file has no audio track" in capsys.readouterr().err
    assert not bad.exists() and not bad.with_name("bad.wav.part").exists()


def test_settings_fail_fast(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValidationError, match="'no-such-ffmpeg' was not found on PATH"):
        AudioSettings(ffmpeg="no-such-ffmpeg")
    assert AudioSettings().port == 50051 and AudioSettings().max_duration_s == 14400
    monkeypatch.setenv("KONSPEKT_AUDIO_FFPROBE", "no-such-ffprobe")
    assert main.main() == 2
    assert "KONSPEKT_AUDIO_FFPROBE: 'no-such-ffprobe' was not found on PATH" in capsys.readouterr().err


def test_cancelled_call_stops_a_stalled_download_and_cleans_up(
    stalling_http: str, s3_settings: S3Settings, tmp_path: Path
) -> None:
    """A client that goes away while the upload is still being copied from a store that stalls:
    the call ends and its temp dir goes at once, not at the store's read timeout (30 s)."""
    # A real ObjectStore whose "S3" serves half the upload and then stalls.
    stalled = ObjectStore(s3_settings.model_copy(update={"endpoint": stalling_http}))
    server, loader, temp_dir = _start(stalled, tmp_path)
    try:
        server.load_and_serve(loader)
        with grpc.insecure_channel(server.address) as channel:
            call = audio_pb2_grpc.AudioServiceStub(channel).Extract(
                audio_pb2.ExtractRequest(
                    input=common_pb2.Blob(ref=common_pb2.ObjectRef(bucket=stalled.bucket, key="up.mp4"))
                ),
                timeout=60,
            )
            first = next(iter(call))
            assert first.progress.message == "reading the file"
            time.sleep(1.0)  # the copy is now blocked on the stalled store
            assert any(temp_dir.iterdir()), "the upload is being copied"
            started = time.monotonic()
            call.cancel()  # type: ignore[no-untyped-call]  # grpc's stubs leave it untyped
        _assert_no_temp_files(temp_dir)
        assert time.monotonic() - started < 5
    finally:
        server.stop(0)
