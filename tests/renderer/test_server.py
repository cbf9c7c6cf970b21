"""The renderer stage over real gRPC (port 0), with a real S3 store, and its CLI."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import docx
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from konspekt.channels import open_channel
from konspekt.storage import ObjectStore
from konspekt.transcripts import to_json, transcript_from_json
from konspekt.v1 import common_pb2, renderer_pb2, renderer_pb2_grpc
from konspekt_renderer import cli
from konspekt_renderer.server import SERVICE_NAME, build_server
from konspekt_renderer.settings import RendererSettings
from tests.common.buckets import another_bucket, missing_bucket

F = renderer_pb2.Format
ALL_NAMES = [
    "konspekt.docx",
    "konspekt.txt",
    "transcript.txt",
    "transcript.srt",
    "transcript.vtt",
    "transcript.json",
    "konspekt.md",
]


def settings(**overrides: object) -> RendererSettings:
    return RendererSettings.model_validate({"port": 0, "grace_seconds": 0, **overrides})


@pytest.fixture
def target(store: ObjectStore) -> Iterator[str]:
    server, loader = build_server(settings(), store)
    server.start()
    server.load_and_serve(loader)
    yield server.address
    server.stop(0)


@pytest.fixture
def storeless_target() -> Iterator[str]:
    server, loader = build_server(settings())
    server.start()
    server.load_and_serve(loader)
    yield server.address
    server.stop(0)


def render(target: str, request: renderer_pb2.RenderRequest) -> renderer_pb2.RenderResponse:
    with open_channel(target) as channel:
        return renderer_pb2_grpc.RendererServiceStub(channel).Render(request, timeout=30)


def render_error(target: str, request: renderer_pb2.RenderRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        render(target, request)
    return info.value


def test_health_serving_only_after_load() -> None:
    server, loader = build_server(settings())
    server.start()
    try:
        with open_channel(server.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in ["", SERVICE_NAME]:
                status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status
                assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            # Before the engine is there, a call is refused as retryable (a channel without retries
            # here, so the status shows), not crashed.
            with grpc.insecure_channel(server.address) as plain, pytest.raises(grpc.RpcError) as info:
                renderer_pb2_grpc.RendererServiceStub(plain).Render(
                    renderer_pb2.RenderRequest(transcript=common_pb2.Transcript()), timeout=10
                )
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE

            server.load_and_serve(loader)
            for name in ["", SERVICE_NAME]:
                status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status
                assert status == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.stop(0)


def test_render_inline_all_formats(
    target: str, ru_konspekt: common_pb2.Konspekt, ru_transcript: common_pb2.Transcript
) -> None:
    response = render(
        target,
        renderer_pb2.RenderRequest(konspekt=ru_konspekt, transcript=ru_transcript, source_name="звонок.mp4"),
    )
    files = {f.name: f for f in response.files}
    assert list(files) == ALL_NAMES
    for f in response.files:
        assert f.size_bytes == len(f.inline) > 0
        assert not f.HasField("ref")
    assert files["konspekt.docx"].format == F.FORMAT_KONSPEKT_DOCX
    assert files["transcript.vtt"].content_type == "text/vtt"
    doc = docx.Document(io.BytesIO(files["konspekt.docx"].inline))
    assert doc.paragraphs[0].text == "Звонок в банк о платеже по кредиту"
    assert "Источник: звонок.mp4" in files["konspekt.txt"].inline.decode("utf-8")
    assert (
        files["transcript.srt"]
        .inline.decode("utf-8")
        .startswith("1\n00:00:00,000 --> 00:00:07,286\nСегодня был платеж по кредиту.\n")
    )
    assert transcript_from_json(files["transcript.json"].inline) == ru_transcript


def test_render_selected_formats(target: str, en_transcript: common_pb2.Transcript) -> None:
    request = renderer_pb2.RenderRequest(
        transcript=en_transcript, formats=[F.FORMAT_TRANSCRIPT_VTT, F.FORMAT_TRANSCRIPT_SRT]
    )
    assert [f.name for f in render(target, request).files] == ["transcript.vtt", "transcript.srt"]


def test_render_from_store_to_store(
    target: str, store: ObjectStore, en_konspekt: common_pb2.Konspekt, en_transcript: common_pb2.Transcript
) -> None:
    job = f"renderer-test/{uuid.uuid4().hex}/"
    ref = store.put_bytes(job + "transcript-in.json", to_json(en_transcript), "application/json")
    request = renderer_pb2.RenderRequest(
        konspekt=en_konspekt,
        transcript_ref=ref,
        output_prefix=common_pb2.ObjectRef(bucket=store.bucket, key=job + "out/"),
        source_name="lecture.mp4",
    )
    response = render(target, request)
    assert [f.name for f in response.files] == ALL_NAMES
    for f in response.files:
        assert f.inline == b""
        assert f.ref.bucket == store.bucket
        assert f.ref.key == f"{job}out/{f.name}"
        assert store.size(f.ref) == f.size_bytes > 0
    stored = {f.name: store.get_bytes(f.ref) for f in response.files}
    assert stored["konspekt.txt"].decode().startswith("Political philosophy and the real world\n")
    assert docx.Document(io.BytesIO(stored["konspekt.docx"])).core_properties.title == en_konspekt.title
    assert transcript_from_json(stored["transcript.json"]) == en_transcript
    content_type = store.client.stat_object(store.bucket, f"{job}out/transcript.vtt").content_type
    assert content_type == "text/vtt"
    store.delete_prefix(job)


def test_render_konspekt_by_reference(
    target: str, store: ObjectStore, en_konspekt: common_pb2.Konspekt, en_transcript: common_pb2.Transcript
) -> None:
    """konspekt_ref: the konspekt JSON as the summarizer stores it is read from the store, the
    same documents come out as for the konspekt sent inline."""
    job = f"renderer-test/{uuid.uuid4().hex}/"
    transcript = store.put_bytes(job + "transcript.json", to_json(en_transcript), "application/json")
    konspekt = store.put_bytes(job + "konspekt.json", to_json(en_konspekt), "application/json")
    formats = [F.FORMAT_KONSPEKT_TXT, F.FORMAT_KONSPEKT_MD]
    by_ref = renderer_pb2.RenderRequest(
        konspekt_ref=konspekt,
        transcript_ref=transcript,
        formats=formats,
        output_prefix=common_pb2.ObjectRef(bucket=store.bucket, key=job + "out/"),
        source_name="lecture.mp4",
    )
    response = render(target, by_ref)
    assert [f.name for f in response.files] == ["konspekt.txt", "konspekt.md"]
    stored = {f.name: store.get_bytes(f.ref) for f in response.files}
    inline = render(
        target,
        renderer_pb2.RenderRequest(
            konspekt=en_konspekt, transcript=en_transcript, formats=formats, source_name="lecture.mp4"
        ),
    )
    assert stored == {f.name: f.inline for f in inline.files}
    assert stored["konspekt.txt"].decode().startswith("Political philosophy and the real world\n")
    # by reference with the bucket left empty (the stage's own), files inline
    by_key = renderer_pb2.RenderRequest(
        konspekt_ref=common_pb2.ObjectRef(key=konspekt.key),
        transcript=en_transcript,
        formats=formats,
        source_name="lecture.mp4",
    )
    assert {f.name: f.inline for f in render(target, by_key).files} == stored
    store.delete_prefix(job)


def test_konspekt_ref_errors(target: str, store: ObjectStore, en_konspekt: common_pb2.Konspekt) -> None:
    job = f"renderer-test/{uuid.uuid4().hex}/"
    transcript = common_pb2.Transcript(language="en", duration=1.0)
    good = store.put_bytes(job + "konspekt.json", to_json(en_konspekt), "application/json")
    bad = store.put_bytes(job + "bad.json", b'{"title": ["not", "text"]}', "application/json")
    cases = [
        (
            renderer_pb2.RenderRequest(konspekt=en_konspekt, konspekt_ref=good, transcript=transcript),
            grpc.StatusCode.INVALID_ARGUMENT,
            "both konspekt and konspekt_ref",
        ),
        (
            renderer_pb2.RenderRequest(konspekt_ref=bad, transcript=transcript),
            grpc.StatusCode.INVALID_ARGUMENT,
            "not a valid Konspekt JSON",
        ),
        (
            renderer_pb2.RenderRequest(
                konspekt_ref=common_pb2.ObjectRef(bucket=store.bucket), transcript=transcript
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "empty key",
        ),
        (
            renderer_pb2.RenderRequest(konspekt_ref=store.ref(job + "missing.json"), transcript=transcript),
            grpc.StatusCode.NOT_FOUND,
            "missing.json",
        ),
    ]
    for request, code, words in cases:
        err = render_error(target, request)
        assert err.code() == code, err.details()
        assert words in str(err.details())
    store.delete_prefix(job)


def test_render_to_another_bucket_is_refused(
    target: str, store: ObjectStore, en_konspekt: common_pb2.Konspekt, en_transcript: common_pb2.Transcript
) -> None:
    """A stage writes only to its own bucket (konspekt.access): another one, existing or not, is
    PERMISSION_DENIED before anything is rendered or stored."""
    job = f"renderer-test/{uuid.uuid4().hex}/"
    with another_bucket(store) as other:
        for bucket in (other, missing_bucket(store)):
            request = renderer_pb2.RenderRequest(
                konspekt=en_konspekt,
                transcript=en_transcript,
                formats=[F.FORMAT_TRANSCRIPT_VTT],
                output_prefix=common_pb2.ObjectRef(bucket=bucket, key=job),
            )
            err = render_error(target, request)
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED
            assert err.details() == f"output_prefix: bucket {bucket!r} is not this stage's bucket"
        assert list(store.client.list_objects(other, recursive=True)) == []


def test_bad_transcript_json_is_invalid_argument(target: str, store: ObjectStore) -> None:
    ref = store.put_bytes(f"renderer-test/{uuid.uuid4().hex}/bad.json", b'{"segments": "nope"')
    err = render_error(target, renderer_pb2.RenderRequest(transcript_ref=ref))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Transcript JSON" in (err.details() or "")
    store.delete(ref.key)


def test_missing_transcript_object_is_not_found(target: str, store: ObjectStore) -> None:
    ref = store.ref(f"renderer-test/{uuid.uuid4().hex}/absent.json")
    err = render_error(target, renderer_pb2.RenderRequest(transcript_ref=ref))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_request_errors(target: str, store: ObjectStore) -> None:
    err = render_error(target, renderer_pb2.RenderRequest(konspekt=common_pb2.Konspekt(title="x")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no transcript" in (err.details() or "")

    err = render_error(
        target, renderer_pb2.RenderRequest(transcript=common_pb2.Transcript(), formats=[F.FORMAT_UNSPECIFIED])
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT

    no_key = common_pb2.ObjectRef(bucket=store.bucket)
    err = render_error(
        target, renderer_pb2.RenderRequest(transcript=common_pb2.Transcript(), output_prefix=no_key)
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no key" in (err.details() or "")


def test_refs_without_store_fail_precondition(storeless_target: str) -> None:
    err = render_error(
        storeless_target,
        renderer_pb2.RenderRequest(transcript_ref=common_pb2.ObjectRef(bucket="konspekt", key="t.json")),
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no object store" in (err.details() or "")

    err = render_error(
        storeless_target,
        renderer_pb2.RenderRequest(
            konspekt_ref=common_pb2.ObjectRef(bucket="konspekt", key="k.json"),
            transcript=common_pb2.Transcript(),
        ),
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "konspekt_ref" in (err.details() or "")

    err = render_error(
        storeless_target,
        renderer_pb2.RenderRequest(
            transcript=common_pb2.Transcript(),
            output_prefix=common_pb2.ObjectRef(bucket="konspekt", key="p/"),
        ),
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_inline_output_over_the_message_limit() -> None:
    server, loader = build_server(settings(max_message_mb=1))
    server.start()
    server.load_and_serve(loader)
    segments = [
        common_pb2.Segment(index=i, start=i, end=i + 1, text=f"{i} " + "слово " * 8) for i in range(3000)
    ]
    request = renderer_pb2.RenderRequest(transcript=common_pb2.Transcript(language="ru", segments=segments))
    assert request.ByteSize() < 1024 * 1024  # the request fits; the six files do not
    try:
        err = render_error(server.address, request)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "output_prefix" in (err.details() or "")
        # One format alone still fits.
        one = renderer_pb2.RenderRequest(transcript=request.transcript, formats=[F.FORMAT_TRANSCRIPT_SRT])
        assert render(server.address, one).files[0].size_bytes > 0
    finally:
        server.stop(0)


# -- CLI --------------------------------------------------------------------------------------
def write_inputs(
    tmp_path: Path, konspekt: common_pb2.Konspekt, transcript: common_pb2.Transcript
) -> list[str]:
    (tmp_path / "k.json").write_bytes(to_json(konspekt))
    (tmp_path / "call.json").write_bytes(to_json(transcript))
    return ["--konspekt", str(tmp_path / "k.json"), "--transcript", str(tmp_path / "call.json")]


def test_cli_writes_files(
    target: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    ru_konspekt: common_pb2.Konspekt,
    ru_transcript: common_pb2.Transcript,
) -> None:
    inputs = write_inputs(tmp_path, ru_konspekt, ru_transcript)
    out = tmp_path / "out"
    rc = cli.main(["render", "--target", target, *inputs, "--out", str(out), "--source-name", "звонок.mp4"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(ALL_NAMES)
    assert capsys.readouterr().out.splitlines() == [str(out / name) for name in ALL_NAMES]
    assert "Источник: звонок.mp4" in (out / "transcript.txt").read_text(encoding="utf-8")
    doc = docx.Document(str(out / "konspekt.docx"))
    assert doc.paragraphs[0].text == ru_konspekt.title


def test_cli_selected_formats_without_source_name(
    target: str, tmp_path: Path, en_konspekt: common_pb2.Konspekt, en_transcript: common_pb2.Transcript
) -> None:
    inputs = write_inputs(tmp_path, en_konspekt, en_transcript)
    out = tmp_path / "out"
    argv = [
        "render",
        "--target",
        target,
        *inputs,
        "--out",
        str(out),
        "--format",
        "srt",
        "--format",
        "konspekt-txt",
        "--format",
        "md",
    ]
    assert cli.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["konspekt.md", "konspekt.txt", "transcript.srt"]
    assert "Source:" not in (out / "konspekt.txt").read_text(encoding="utf-8")
    assert (out / "konspekt.md").read_text(encoding="utf-8").startswith(f"# {en_konspekt.title}\n")


def test_cli_reports_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], en_konspekt: common_pb2.Konspekt
) -> None:
    (tmp_path / "k.json").write_bytes(to_json(en_konspekt))
    (tmp_path / "bad.json").write_text("not json")
    argv = ["render", "--konspekt", str(tmp_path / "k.json"), "--transcript", str(tmp_path / "bad.json")]
    assert cli.main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert "not a valid Transcript JSON" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    # Nothing listens on the target: a clear gRPC error within the deadline.
    (tmp_path / "t.json").write_bytes(to_json(common_pb2.Transcript()))
    argv = ["render", "--konspekt", str(tmp_path / "k.json"), "--transcript", str(tmp_path / "t.json")]
    rc = cli.main([*argv, "--out", str(tmp_path / "out"), "--target", "127.0.0.1:1", "--timeout", "2"])
    assert rc == 1
    assert "error: " in capsys.readouterr().err
