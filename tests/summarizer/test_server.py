"""The summarizer stage over real gRPC (port 0), with the 0.5B model and a real S3 store."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from konspekt.channels import open_channel
from konspekt.server import StageServer
from konspekt.storage import ObjectStore
from konspekt.transcripts import konspekt_from_json, to_json
from konspekt.v1 import common_pb2, summarizer_pb2, summarizer_pb2_grpc
from konspekt_summarizer import cli
from konspekt_summarizer.server import SERVICE_NAME, build_server
from tests.common.buckets import another_bucket, missing_bucket

from .conftest import load_transcript, make_settings

SHORT = common_pb2.Transcript(
    language="en",
    duration=20.0,
    segments=[
        common_pb2.Segment(index=0, start=0.0, end=6.0, text="Hi all, quick sync about the website."),
        common_pb2.Segment(
            index=1, start=6.0, end=13.0, text="We decided to launch the new website on Monday."
        ),
        common_pb2.Segment(
            index=2, start=13.0, end=20.0, text="Maria will write the announcement by Friday."
        ),
    ],
)


def health(address: str, timeout: float = 10.0) -> int:
    with grpc.insecure_channel(address) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=timeout
        )
        return int(reply.status)


def wait_for_health(address: str, status: int, seconds: float = 60.0) -> int:
    """Polls the stage's health until it says ``status`` (or ``seconds`` pass); the last answer."""
    deadline = time.monotonic() + seconds
    seen = health(address)
    while seen != status and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = health(address)
    return seen


class Stage:
    def __init__(self, server: StageServer, before_load: int, unavailable: grpc.StatusCode | None) -> None:
        self.server = server
        self.address = server.address
        self.health_before_load = before_load
        self.code_before_load = unavailable


@pytest.fixture(scope="module")
def stage(small_model: Path, store: ObjectStore) -> Iterator[Stage]:
    settings = make_settings(small_model, max_tokens=600, n_ctx=2048, log_json=False)
    server, loader = build_server(settings, store)
    server.start()
    before = health(server.address)
    code = None
    with grpc.insecure_channel(server.address) as ch:  # no retries: see the UNAVAILABLE
        try:
            list(
                summarizer_pb2_grpc.SummarizerServiceStub(ch).Summarize(
                    summarizer_pb2.SummarizeRequest(transcript=SHORT), timeout=10
                )
            )
        except grpc.RpcError as err:
            code = err.code()
    server.load_and_serve(loader)
    yield Stage(server, before, code)
    server.stop(0)


@pytest.fixture
def stub(stage: Stage) -> Iterator[summarizer_pb2_grpc.SummarizerServiceStub]:
    with open_channel(stage.address) as ch:
        yield summarizer_pb2_grpc.SummarizerServiceStub(ch)


def call(
    stub: summarizer_pb2_grpc.SummarizerServiceStub,
    request: summarizer_pb2.SummarizeRequest,
    on_progress: Callable[[common_pb2.Progress], None] | None = None,
) -> tuple[list[common_pb2.Progress], summarizer_pb2.SummarizeResult]:
    progress: list[common_pb2.Progress] = []
    results: list[summarizer_pb2.SummarizeResult] = []
    for response in stub.Summarize(request, timeout=300):
        if response.HasField("progress"):
            assert not results, "progress after the result"
            progress.append(response.progress)
            if on_progress is not None:
                on_progress(response.progress)
        else:
            results.append(response.result)
    assert len(results) == 1
    return progress, results[0]


def test_health_serving_only_after_load(stage: Stage) -> None:
    assert stage.health_before_load == health_pb2.HealthCheckResponse.NOT_SERVING
    assert stage.code_before_load == grpc.StatusCode.UNAVAILABLE
    assert health(stage.address) == health_pb2.HealthCheckResponse.SERVING


def test_inline_transcript_streams_progress_then_result(
    stub: summarizer_pb2_grpc.SummarizerServiceStub, stage: Stage
) -> None:
    during: list[int] = []

    def check_health(_p: common_pb2.Progress) -> None:
        if not during:  # health answers while the model is generating
            during.append(health(stage.address, timeout=3.0))

    progress, result = call(stub, summarizer_pb2.SummarizeRequest(transcript=SHORT), check_health)
    assert during == [health_pb2.HealthCheckResponse.SERVING]
    assert len(progress) >= 3
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert any("writing" in p.message for p in progress)
    k = result.konspekt
    assert k.title and k.summary and k.language == "en"
    assert k.style == common_pb2.STYLE_MEETING  # unspecified is treated as a meeting
    assert not result.HasField("stored")
    assert result.usage.calls >= 1 and result.usage.completion_tokens > 0 and result.usage.model
    indexes = [p.segment_index for p in [*k.key_points, *k.decisions]]
    indexes += [a.segment_index for a in k.action_items]
    assert all(-1 <= i < len(SHORT.segments) for i in indexes)


def test_transcript_ref_in_and_konspekt_stored(
    stub: summarizer_pb2_grpc.SummarizerServiceStub, store: ObjectStore
) -> None:
    job = uuid.uuid4().hex
    transcript = load_transcript("meeting_ru.json")
    del transcript.segments[2:]  # plumbing: a short answer keeps the 0.5B quick
    ref = store.put_bytes(f"{job}/transcript.json", to_json(transcript))
    out = common_pb2.ObjectRef(bucket=store.bucket, key=f"{job}/konspekt.json")
    _, result = call(
        stub,
        summarizer_pb2.SummarizeRequest(transcript_ref=ref, output=out, style=common_pb2.STYLE_LECTURE),
    )
    assert result.stored.key == out.key and result.stored.bucket == store.bucket
    stored = konspekt_from_json(store.get_bytes(out))
    assert stored == result.konspekt
    assert stored.language == "ru" and stored.style == common_pb2.STYLE_LECTURE
    assert store.client.stat_object(store.bucket, out.key).content_type == "application/json"


def test_konspekt_to_another_bucket_is_refused(
    stub: summarizer_pb2_grpc.SummarizerServiceStub, store: ObjectStore
) -> None:
    """A stage writes only to its own bucket (konspekt.access): another one, existing or not, is
    PERMISSION_DENIED before anything is summarized or stored."""
    silent = common_pb2.Transcript(language="en", duration=5.0)  # no speech: no model call
    silent.segments.add(start=0, end=1, text="  ")
    key = f"{uuid.uuid4().hex}/konspekt.json"
    with another_bucket(store) as other:
        for bucket in (other, missing_bucket(store)):
            out = common_pb2.ObjectRef(bucket=bucket, key=key)
            with pytest.raises(grpc.RpcError) as info:
                call(stub, summarizer_pb2.SummarizeRequest(transcript=silent, output=out))
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert info.value.details() == f"output: bucket {bucket!r} is not this stage's bucket"
        assert list(store.client.list_objects(other, recursive=True)) == []


def test_bad_inputs_are_invalid_argument(
    stub: summarizer_pb2_grpc.SummarizerServiceStub, store: ObjectStore
) -> None:
    ref = store.put_bytes(f"{uuid.uuid4().hex}/transcript.json", b'{"segments": [{"start": "soon"')
    for request in (
        summarizer_pb2.SummarizeRequest(transcript_ref=ref),
        summarizer_pb2.SummarizeRequest(),
        summarizer_pb2.SummarizeRequest(
            transcript=common_pb2.Transcript(segments=[common_pb2.Segment(start=5, end=1, text="x")])
        ),
    ):
        with pytest.raises(grpc.RpcError) as info:
            call(stub, request)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    missing = common_pb2.ObjectRef(bucket=store.bucket, key=f"{uuid.uuid4().hex}/nothing.json")
    with pytest.raises(grpc.RpcError) as info:
        call(stub, summarizer_pb2.SummarizeRequest(transcript_ref=missing))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    no_key = common_pb2.ObjectRef(bucket=store.bucket)  # checked before any generation
    with pytest.raises(grpc.RpcError) as info:
        call(stub, summarizer_pb2.SummarizeRequest(transcript=SHORT, output=no_key))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "output has an empty key"


def test_cli_against_the_running_stage(
    stage: Stage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("\n".join(s.text for s in SHORT.segments) + "\n", encoding="utf-8")
    assert cli.main(["summarize", str(text), "--target", stage.address, "--timeout", "300"]) == 0
    out, err = capsys.readouterr()
    k = konspekt_from_json(out)
    assert k.title and k.summary and k.language == "en"
    assert "%]" in err and "call(s)" in err
    assert json.loads(out)["style"] == "STYLE_MEETING"

    bad = tmp_path / "bad.json"
    bad.write_text('{"segments": 5}', encoding="utf-8")
    assert cli.main(["summarize", str(bad), "--target", stage.address]) == 2
    assert "not a valid Transcript" in capsys.readouterr().err
