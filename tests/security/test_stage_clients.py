"""Stage clients' settings fail fast, and the stages' own clients carry their tokens: the gateway
(through the whole job, against stages that check tokens and prefixes), the CLIs, and the local
stack (``./dev run``), which makes new tokens at each start."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from konspekt.access import AccessInterceptor, AccessPolicy, StageClient
from konspekt.server import run_stage
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt.transcripts import to_json
from konspekt.v1 import asr_pb2, audio_pb2, common_pb2, renderer_pb2, summarizer_pb2
from konspekt_devstack import STAGE_TOKEN_FILE, Seaweed, Stack
from konspekt_gateway.settings import GatewaySettings
from konspekt_renderer import cli
from konspekt_renderer.server import build_server
from konspekt_renderer.settings import RendererSettings
from tests.gateway.conftest import TERMINAL, gateway_settings, serve, upload, wait_state
from tests.gateway.fake_stages import FakeStages

GATEWAY = secrets.token_urlsafe(32)
STAGE_SERVICES = [
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in (
        (audio_pb2, "AudioService"),
        (asr_pb2, "AsrService"),
        (summarizer_pb2, "SummarizerService"),
        (renderer_pb2, "RendererService"),
    )
]


@pytest.fixture
def strict(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment of a real stage: no ALLOW_UNAUTHENTICATED from tests/conftest.py."""
    for prefix in ("KONSPEKT", "KONSPEKT_RENDERER"):
        monkeypatch.delenv(f"{prefix}_ALLOW_UNAUTHENTICATED", raising=False)
        monkeypatch.delenv(f"{prefix}_UNAUTHENTICATED_PREFIX", raising=False)


def client(**values: object) -> dict[str, object]:
    return {"token": GATEWAY, "prefix": "jobs/", **values}


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize(
    ("clients", "says"),
    [
        ({"gateway": client(token="short")}, "at least 24"),
        ({"gateway": client(token="x" * 20 + " " + "y" * 20)}, "without spaces"),
        ({"gateway": client(prefix="jobs")}, "must end with '/'"),
        ({"gateway": client(prefix="jobs/../")}, "'..' segment"),
        ({"gateway": client(prefix="/jobs/")}, "starts with '/'"),
        ({"gateway": client(prefix="")}, "must end with '/'"),
        ({"gateway": client(token_file="/nonexistent/token")}, "set exactly one of token and token_file"),
        ({"gateway": {"token_file": "/nonexistent/token", "prefix": "jobs/"}}, "cannot read token_file"),
        ({"gateway": {"prefix": "jobs/"}}, "set exactly one"),
        ({"gateway": client(), "team": client(prefix="team/")}, "have the same token"),
        ({"anonymous": client()}, "must be a plain word"),
        ({"gateway": client(bucket="other")}, "Extra inputs are not permitted"),
    ],
)
def test_bad_clients_stop_the_stage(clients: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError) as info:
        RendererSettings.model_validate({"port": 0, "clients": clients})
    assert says in str(info.value)
    assert GATEWAY not in str(info.value)  # no token in the message


@pytest.mark.usefixtures("strict")
def test_a_stage_server_without_clients_is_refused_but_its_engine_settings_are_not() -> None:
    """Benchmarks build a stage's settings for its engine alone: no clients needed there; a
    server (StageServer, the process) refuses to serve without them."""
    settings = RendererSettings.model_validate({"port": 0})
    assert settings.clients == {} and not settings.allow_unauthenticated
    with pytest.raises(ValueError, match="no clients configured: set KONSPEKT_RENDERER_CLIENTS"):
        build_server(settings)


@pytest.mark.usefixtures("strict")
def test_clients_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(GATEWAY + "\n")
    clients = {"gateway": {"token_file": str(token_file), "prefix": "jobs/"}}
    monkeypatch.setenv("KONSPEKT_RENDERER_CLIENTS", json.dumps(clients))
    settings = RendererSettings()
    assert settings.clients["gateway"].secret == GATEWAY and not settings.allow_unauthenticated
    monkeypatch.setenv("KONSPEKT_RENDERER_UNAUTHENTICATED_PREFIX", "jobs/../")
    with pytest.raises(ValidationError, match=r"'\.\.' segment"):
        RendererSettings()


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "no clients configured: set KONSPEKT_RENDERER_CLIENTS"),
        ("{not json", 'error parsing value for field "clients"'),
        ('{"gateway": {"token": "short", "prefix": "jobs/"}}', "KONSPEKT_RENDERER_CLIENTS.GATEWAY"),
    ],
)
def test_the_stage_process_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str, says: str
) -> None:
    if value:
        monkeypatch.setenv("KONSPEKT_RENDERER_CLIENTS", value)
    assert run_stage("renderer", RendererSettings, build_server) == 2
    err = capsys.readouterr().err
    assert "konspekt-renderer: invalid settings" in err and says in err


def test_gateway_stage_token_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "stage-token"
    path.write_text(f"{GATEWAY}\n")
    settings = GatewaySettings.model_validate({"stage_token_file": str(path)})
    assert settings.stage_token.get_secret_value() == GATEWAY
    assert GatewaySettings.model_validate({}).stage_token.get_secret_value() == ""
    for bad in ({"stage_token": "short"}, {"stage_token_file": str(tmp_path / "missing")}):
        with pytest.raises(ValidationError):
            GatewaySettings.model_validate(bad)


@pytest.mark.anyio
async def test_the_gateway_sends_its_token_on_every_stage_call(
    bucket_s3: S3Settings, bucket_store: ObjectStore, testdata: Path
) -> None:
    """A whole job against stages that check tokens and prefixes (the fake stages behind the
    stages' interceptor): every call carries the gateway's token and refs under jobs/."""
    gateway = StageClient(token=SecretStr(GATEWAY), prefix="jobs/")
    policy = AccessPolicy(clients={"gateway": gateway}, bucket=bucket_store.bucket)
    stages = FakeStages(bucket_store, interceptors=[AccessInterceptor(STAGE_SERVICES, policy)]).start()
    video = (testdata / "video" / "jfk_en_11s.mp4").read_bytes()
    try:
        async with serve(gateway_settings(stages.target, stage_token=GATEWAY), bucket_s3) as http:
            job = await wait_state(http, (await upload(http, video, "jfk.mp4"))["id"], TERMINAL)
            assert job["state"] == "done", job
        calls = dict(stages.script.calls)
        assert calls == {"probe": 1, "audio": 1, "asr": 1, "summarizer": 1, "renderer": 1}
        async with serve(gateway_settings(stages.target), bucket_s3) as http:  # no token
            job = await wait_state(http, (await upload(http, video, "jfk.mp4"))["id"], TERMINAL)
            assert job["state"] == "failed" and job["failed_stage"] == "audio", job
        assert dict(stages.script.calls) == calls  # refused before any stage code ran
    finally:
        stages.stop()


def test_the_cli_sends_the_token_from_its_file(
    store: ObjectStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = RendererSettings.model_validate(
        {"port": 0, "grace_seconds": 0, "clients": {"cli": client()}, "allow_unauthenticated": False}
    )
    server, loader = build_server(settings, store)
    server.start()
    server.load_and_serve(loader)
    transcript = tmp_path / "t.json"
    transcript.write_bytes(to_json(common_pb2.Transcript(language="en", duration=1.0)))
    konspekt = tmp_path / "k.json"
    konspekt.write_bytes(to_json(common_pb2.Konspekt(title="T", language="en")))
    args = [
        "render",
        "--target",
        server.address,
        "--konspekt",
        str(konspekt),
        "--transcript",
        str(transcript),
    ]
    args += ["--out", str(tmp_path / "out"), "--format", "srt"]
    monkeypatch.delenv("KONSPEKT_STAGE_TOKEN", raising=False)
    monkeypatch.delenv("KONSPEKT_STAGE_TOKEN_FILE", raising=False)
    try:
        assert cli.main(args) == 1
        assert "UNAUTHENTICATED" in capsys.readouterr().err
        (tmp_path / "token").write_text(GATEWAY + "\n")
        assert cli.main([*args, "--token-file", str(tmp_path / "token")]) == 0
        monkeypatch.setenv("KONSPEKT_STAGE_TOKEN", GATEWAY)
        assert cli.main(args) == 0
        assert (tmp_path / "out" / "transcript.srt").exists()
    finally:
        server.stop(0)


def test_the_local_stack_gives_stages_and_gateway_new_tokens(
    seaweed: Seaweed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``./dev run``: every stage knows the gateway (jobs/) and the local CLIs, whose token is in
    .run/stage-token; the gateway sends its own; calls without a token are not allowed."""
    stacks = [Stack(tmp_path / name, seaweed=seaweed) for name in ("a", "b")]
    for stack in stacks:
        stack.ports = {name: 1 for name in ("audio", "asr", "summarizer", "renderer", "gateway")}
    env = stacks[0].env()
    for key in [k for k in env if k.startswith("KONSPEKT_")]:
        monkeypatch.setenv(key, env[key])
    renderer = RendererSettings()
    assert not renderer.allow_unauthenticated
    assert {name: c.prefix for name, c in renderer.clients.items()} == {"gateway": "jobs/", "cli": "jobs/"}
    gateway = GatewaySettings()
    assert (
        renderer.clients["gateway"].secret
        == gateway.stage_token.get_secret_value()
        == stacks[0].gateway_token
    )
    assert renderer.clients["cli"].secret == stacks[0].cli_token != stacks[0].gateway_token
    assert stacks[1].gateway_token != stacks[0].gateway_token  # new at each start
    path = stacks[0].write_cli_token()
    assert path == tmp_path / "a" / STAGE_TOKEN_FILE and path.read_text().strip() == stacks[0].cli_token
    assert path.stat().st_mode & 0o077 == 0 and path.parent.stat().st_mode & 0o077 == 0
