"""Stage callers are authenticated and confined to their own objects (konspekt.access): real
stages on port 0, the shared SeaweedFS, and a listener standing in for a store that must not be
reached."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from konspekt.access import AUTHORIZATION
from konspekt.channels import open_channel, token_metadata
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt.transcripts import to_json
from konspekt.v1 import audio_pb2, audio_pb2_grpc, common_pb2, renderer_pb2, renderer_pb2_grpc
from konspekt_audio.server import build_server as build_audio
from konspekt_audio.settings import AudioSettings
from konspekt_renderer.server import SERVICE_NAME, build_server
from konspekt_renderer.settings import RendererSettings
from tests.audio.test_media_security import Listener
from tests.common.buckets import another_bucket

GATEWAY = secrets.token_urlsafe(32)
TEAM = secrets.token_urlsafe(32)
CLIENTS = {"gateway": {"token": GATEWAY, "prefix": "jobs/"}, "team-b": {"token": TEAM, "prefix": "team-b/"}}
TRANSCRIPT = common_pb2.Transcript(
    language="en",
    duration=4.0,
    segments=[common_pb2.Segment(index=0, start=0.0, end=4.0, text="We ship on Monday.")],
)
KONSPEKT = common_pb2.Konspekt(title="Shipping", language="en", summary="We ship on Monday.")


def renderer_settings(**overrides: object) -> RendererSettings:
    values = {"port": 0, "grace_seconds": 0, "clients": CLIENTS, "allow_unauthenticated": False}
    return RendererSettings.model_validate({**values, **overrides})


def serve(settings: RendererSettings, store: ObjectStore | None) -> Iterator[str]:
    server, loader = build_server(settings, store)
    server.start()
    server.load_and_serve(loader)
    yield server.address
    server.stop(0)


@pytest.fixture(scope="module")
def stage(store: ObjectStore) -> Iterator[str]:
    yield from serve(renderer_settings(), store)


@pytest.fixture
def blind(listener: Listener) -> Iterator[tuple[str, Listener]]:
    """A renderer whose object store is the listener: any store request shows there."""
    port = listener.url.rsplit(":", 1)[1]
    s3 = S3Settings.model_validate(
        {"endpoint": f"127.0.0.1:{port}", "access_key": "k", "secret_key": "s", "bucket": "konspekt-test"}
    )
    for address in serve(renderer_settings(), ObjectStore(s3, timeout=2.0)):
        yield address, listener


def render(
    target: str, request: renderer_pb2.RenderRequest, token: str | None = GATEWAY
) -> renderer_pb2.RenderResponse:
    with grpc.insecure_channel(target) as channel:  # no retries: the first status shows
        stub = renderer_pb2_grpc.RendererServiceStub(channel)
        return stub.Render(request, timeout=30, metadata=token_metadata(token or ""))


def refused(target: str, request: renderer_pb2.RenderRequest, **kw: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        render(target, request, **kw)  # type: ignore[arg-type]
    return info.value


def to_store(prefix: str, bucket: str = "konspekt-test") -> renderer_pb2.RenderRequest:
    """Render one file and store it under ``prefix`` (the renderer: no bucket = inline)."""
    return renderer_pb2.RenderRequest(
        konspekt=KONSPEKT,
        transcript=TRANSCRIPT,
        output_prefix=common_pb2.ObjectRef(bucket=bucket, key=prefix),
        formats=[renderer_pb2.FORMAT_TRANSCRIPT_TXT],
    )


def test_health_and_reflection_need_no_token(stage: str) -> None:
    with grpc.insecure_channel(stage) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=10
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        answers = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        names = {s.name for answer in answers for s in answer.list_services_response.service}
    assert SERVICE_NAME in names


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        ((AUTHORIZATION, f"Bearer {GATEWAY}x"),),
        ((AUTHORIZATION, f"Bearer {GATEWAY[:-1]}"),),
        ((AUTHORIZATION, GATEWAY),),
        ((AUTHORIZATION, f"Basic {GATEWAY}"),),
        ((AUTHORIZATION, "Bearer "),),
        ((AUTHORIZATION, f"Bearer {TEAM}"), (AUTHORIZATION, f"Bearer {GATEWAY}")),
        (("x-token", GATEWAY),),
    ],
    ids=["none", "longer", "shorter", "no-scheme", "basic", "empty", "two", "other-key"],
)
def test_a_call_without_a_valid_token_is_unauthenticated(
    stage: str, metadata: tuple[tuple[str, str], ...]
) -> None:
    with grpc.insecure_channel(stage) as channel, pytest.raises(grpc.RpcError) as info:
        renderer_pb2_grpc.RendererServiceStub(channel).Render(
            renderer_pb2.RenderRequest(transcript=TRANSCRIPT), timeout=10, metadata=metadata
        )
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, info.value.details()


def test_each_client_works_under_its_own_prefix(stage: str, store: ObjectStore) -> None:
    for token, prefix in ((GATEWAY, "jobs/"), (TEAM, "team-b/")):
        job = f"{prefix}{uuid.uuid4().hex}/"
        ref = store.put_bytes(job + "transcript.json", to_json(TRANSCRIPT), "application/json")
        request = renderer_pb2.RenderRequest(
            konspekt=KONSPEKT,
            transcript_ref=ref,
            output_prefix=common_pb2.ObjectRef(bucket=store.bucket, key=job + "out/"),
            formats=[renderer_pb2.FORMAT_TRANSCRIPT_TXT],
        )
        (file,) = render(stage, request, token=token).files
        assert file.ref == common_pb2.ObjectRef(bucket=store.bucket, key=job + "out/transcript.txt")
        assert store.get_bytes(file.ref).decode().strip().endswith("We ship on Monday.")
        assert render(stage, to_store(job + "again/"), token=token).files[0].ref.key.startswith(job)


def test_konspekt_ref_is_read_only_under_the_callers_prefix(stage: str, store: ObjectStore) -> None:
    """konspekt_ref is read with the caller's rights, like transcript_ref: under its own prefix
    the stored konspekt is rendered; another client's konspekt is PERMISSION_DENIED."""
    mark = uuid.uuid4().hex
    mine = store.put_bytes(f"jobs/{mark}/konspekt.json", to_json(KONSPEKT), "application/json")
    theirs = store.put_bytes(f"team-b/{mark}/konspekt.json", to_json(KONSPEKT), "application/json")
    formats = [renderer_pb2.FORMAT_KONSPEKT_TXT]
    (file,) = render(
        stage, renderer_pb2.RenderRequest(konspekt_ref=mine, transcript=TRANSCRIPT, formats=formats)
    ).files
    assert file.inline.decode().startswith("Shipping\n")
    (file,) = render(
        stage,
        renderer_pb2.RenderRequest(konspekt_ref=theirs, transcript=TRANSCRIPT, formats=formats),
        token=TEAM,
    ).files
    assert file.inline.decode().startswith("Shipping\n")
    for ref, token in (
        (theirs, GATEWAY),
        (mine, TEAM),
        (store.ref(f"jobs/../team-b/{mark}/konspekt.json"), GATEWAY),
    ):
        request = renderer_pb2.RenderRequest(konspekt_ref=ref, transcript=TRANSCRIPT, formats=formats)
        error = refused(stage, request, token=token)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, (ref, error.details())
        assert "konspekt_ref" in str(error.details())
    store.delete_prefix(f"jobs/{mark}/")
    store.delete_prefix(f"team-b/{mark}/")


def outside(mark: str) -> list[str]:
    """Output prefixes the gateway (jobs/) may not write to; each holds ``mark``."""
    return [
        f"team-b/{mark}/",
        f"{mark}/",
        f"jobs/../team-b/{mark}/",
        f"jobs/../{mark}/",
        f"jobs/./{mark}/",
        f"jobs//{mark}/",
        f"/jobs/{mark}/",
        f"jobs\\..\\{mark}/",
        f"jobs/{mark}\x00/",
        f"jobs{mark}/",
    ]


def test_writes_outside_the_prefix_are_denied_and_nothing_is_written(stage: str, store: ObjectStore) -> None:
    mark = uuid.uuid4().hex
    for key in outside(mark):
        error = refused(stage, to_store(key, store.bucket))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, (key, error.details())
    with another_bucket(store) as other:
        error = refused(stage, to_store(f"jobs/{mark}/", other))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "is not this stage's bucket" in str(error.details())
        assert list(store.client.list_objects(other, recursive=True)) == []
    # another client's prefix is outside too
    error = refused(stage, to_store(f"jobs/{mark}/"), token=TEAM)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "outside the prefix 'team-b/' of client team-b" in str(error.details())
    assert [key for key in store.list_keys("") if mark in key] == []


def test_a_refused_call_never_reaches_the_store(blind: tuple[str, Listener]) -> None:
    """The checks run before the servicer: a ref to another prefix, a '..' key or another
    bucket, to read or to write, makes no request at all to the object store."""
    target, listener = blind
    reads = [
        common_pb2.ObjectRef(bucket="konspekt-test", key="team-b/x/transcript.json"),
        common_pb2.ObjectRef(key="jobs/../team-b/x/transcript.json"),
        common_pb2.ObjectRef(bucket="konspekt-other", key="jobs/x/transcript.json"),
        common_pb2.ObjectRef(key="gateway/secret-key"),
    ]
    for ref in reads:
        error = refused(target, renderer_pb2.RenderRequest(konspekt=KONSPEKT, transcript_ref=ref))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, (ref, error.details())
        error = refused(target, renderer_pb2.RenderRequest(konspekt_ref=ref, transcript=TRANSCRIPT))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, (ref, error.details())
    # an allowed read next to a forbidden write: the whole call is refused first
    both = renderer_pb2.RenderRequest(
        konspekt=KONSPEKT,
        transcript_ref=common_pb2.ObjectRef(key="jobs/x/transcript.json"),
        output_prefix=common_pb2.ObjectRef(bucket="konspekt-test", key="team-b/x/"),
    )
    assert refused(target, both).code() == grpc.StatusCode.PERMISSION_DENIED
    no_token = renderer_pb2.RenderRequest(transcript_ref=common_pb2.ObjectRef(key="jobs/x/t.json"))
    assert refused(target, no_token, token=None).code() == grpc.StatusCode.UNAUTHENTICATED
    assert listener.seen == []
    # the same stage does go to the store for a ref it may read (so the silence above is real)
    allowed = renderer_pb2.RenderRequest(
        konspekt=KONSPEKT, transcript_ref=common_pb2.ObjectRef(key="jobs/x/t.json")
    )
    assert refused(target, allowed).code() != grpc.StatusCode.PERMISSION_DENIED
    assert listener.seen


def test_a_stage_that_allows_calls_without_a_token(store: ObjectStore) -> None:
    """Alone on a trusted machine: no token is the client 'anonymous', under jobs/ unless set;
    a wrong token is still refused."""
    settings = renderer_settings(clients={}, allow_unauthenticated=True, unauthenticated_prefix="jobs/")
    for target in serve(settings, store):
        mark = uuid.uuid4().hex
        assert render(target, to_store(f"jobs/{mark}/"), token=None).files[0].ref.key.startswith("jobs/")
        error = refused(target, to_store(f"team-b/{mark}/"), token=None)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "of client anonymous" in str(error.details())
        assert (
            refused(target, to_store(f"jobs/{mark}/"), token=GATEWAY).code()
            == grpc.StatusCode.UNAUTHENTICATED
        )
        assert [key for key in store.list_keys("team-b/") if mark in key] == []


def test_streaming_calls_are_checked_too(store: ObjectStore, testdata: Path) -> None:
    """The audio stage's Extract (server-streaming) and Probe, with the same clients."""
    settings = AudioSettings.model_validate(
        {"port": 0, "grace_seconds": 0, "clients": CLIENTS, "allow_unauthenticated": False}
    )
    server, loader = build_audio(settings, store)
    server.start()
    server.load_and_serve(loader)
    mark = uuid.uuid4().hex
    media = common_pb2.Blob(inline=(testdata / "audio" / "fw_hotwords.mp3").read_bytes())
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = audio_pb2_grpc.AudioServiceStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                list(stub.Extract(audio_pb2.ExtractRequest(input=media), timeout=30))
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            out = common_pb2.ObjectRef(key=f"team-b/{mark}/audio.wav")
            with pytest.raises(grpc.RpcError) as info:
                list(
                    stub.Extract(
                        audio_pb2.ExtractRequest(input=media, output=out),
                        timeout=30,
                        metadata=token_metadata(GATEWAY),
                    )
                )
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert not store.exists(out)
            probe = stub.Probe(audio_pb2.ProbeRequest(input=media), timeout=30, metadata=token_metadata(TEAM))
            assert probe.audio_codec == "mp3"
            events = stub.Extract(
                audio_pb2.ExtractRequest(input=media, output=out), timeout=60, metadata=token_metadata(TEAM)
            )
            assert [e.result.audio for e in events if e.HasField("result")] == [
                common_pb2.ObjectRef(bucket=store.bucket, key=out.key)
            ]
            assert store.exists(out)
    finally:
        server.stop(0)


def test_the_channel_helper_sends_the_token(stage: str) -> None:
    """konspekt.channels.open_channel(token=...) (the CLIs) puts the token on every call."""
    with open_channel(stage, token=GATEWAY) as channel:
        reply = renderer_pb2_grpc.RendererServiceStub(channel).Render(
            renderer_pb2.RenderRequest(transcript=TRANSCRIPT, formats=[renderer_pb2.FORMAT_TRANSCRIPT_SRT]),
            timeout=30,
        )
    assert [f.name for f in reply.files] == ["transcript.srt"]
