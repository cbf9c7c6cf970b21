"""docker-compose.yml: `docker-compose config` accepts it (with and without the gpu profile),
and the invariants hold when the YAML is parsed: only the gateway publishes a port, every
long-running service has a healthcheck, start order waits on health, no secret values inline."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from konspekt.access import StageClient
from tests.deploy.conftest import METRICS_PORTS, PORTS, ROOT, STAGES

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SENSITIVE = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|ROOT_USER")
VAR = re.compile(r"^\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}$")


def load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def services() -> dict[str, Any]:
    svcs: dict[str, Any] = load()["services"]
    return svcs


def one_shot(svc: dict[str, Any]) -> bool:
    return svc.get("restart") == "no"


def compose(*args: str, env_file: Path = ENV_EXAMPLE) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip(
            "docker-compose is not installed (Debian package docker-compose; ./dev setup installs it)"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KONSPEKT_", "MINIO_", "COMPOSE_"))}
    cmd = [exe, "-f", str(COMPOSE), "--project-directory", str(ROOT), "--env-file", str(env_file), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)


@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]])
def test_docker_compose_config_accepts_it(profile: list[str]) -> None:
    done = compose(*profile, "config")
    assert done.returncode == 0, done.stderr
    rendered = yaml.safe_load(done.stdout)
    want = {"minio", "minio-init", "models", "audio", "asr", "summarizer", "renderer", "gateway"}
    if profile:
        want |= {"asr-gpu", "vllm", "models-llm"}
    # (docker-compose 1.29 lists profile services either way; Compose v2 only when enabled)
    assert want <= set(rendered["services"])


def test_missing_credentials_stop_compose_with_a_clear_message(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("# nothing\n")
    done = compose("config", env_file=empty)
    assert done.returncode != 0
    assert "in .env" in done.stderr


def test_only_the_gateway_publishes_a_port() -> None:
    published = {name for name, svc in services().items() if svc.get("ports")}
    assert published == {"gateway"}
    assert services()["gateway"]["ports"] == ["${KONSPEKT_HTTP_PORT:-8000}:8000"]


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, svc in services().items():
        if one_shot(svc):
            continue
        check = svc.get("healthcheck")
        assert check and check.get("test"), f"{name}: no healthcheck"
        assert check.get("disable") is not True, name
    for stage in STAGES:
        test = services()[stage]["healthcheck"]["test"]
        assert test == ["CMD", "python", "-m", "konspekt.healthcheck", f"127.0.0.1:{PORTS[stage]}"]
    # the gateway is healthy when it can serve: /healthz, not /readyz (every stage and the store)
    assert services()["gateway"]["healthcheck"]["test"] == [
        "CMD",
        "python",
        "-m",
        "konspekt.healthcheck",
        "--http",
        "http://127.0.0.1:8000/healthz",
    ]


def test_start_order_waits_for_health_and_inits() -> None:
    svcs = services()
    for name, svc in svcs.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on needs conditions"
        for dep, cond in deps.items():
            want = "service_completed_successfully" if one_shot(svcs[dep]) else "service_healthy"
            assert cond == {"condition": want}, f"{name} -> {dep}"
    gateway = svcs["gateway"]["depends_on"]
    assert set(STAGES) | {"minio", "minio-init"} <= set(gateway)
    for stage in ("asr", "summarizer", "asr-gpu"):
        assert "models" in svcs[stage]["depends_on"], stage
        assert "models:/models:ro" in svcs[stage]["volumes"], stage


def _env_items(svc: dict[str, Any]) -> list[tuple[str, str]]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        return [tuple(e.split("=", 1)) for e in env]
    return [(k, str(v)) for k, v in env.items()]


def test_no_secret_values_inline() -> None:
    for name, svc in services().items():
        for key, value in _env_items(svc):
            if SENSITIVE.search(key):
                assert VAR.match(value), f"{name}: {key}={value!r} is not a ${{VAR}} from .env"
    s3 = services()["audio"]["environment"]
    assert s3["KONSPEKT_S3_SECRET_KEY"].startswith("${KONSPEKT_S3_SECRET_KEY:?")
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_env_example_names_every_variable_compose_requires() -> None:
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE.read_text()))
    example = {line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line}
    assert required and required <= example


def test_images_are_pinned() -> None:
    for name, svc in services().items():
        image = svc.get("image", "")
        assert image, f"{name}: no image"
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag and tag != "latest", f"{name}: {image}"


def test_stages_are_locked_down() -> None:
    for name in (*STAGES, "gateway", "asr-gpu"):
        svc = services()[name]
        assert svc["read_only"] is True, name
        assert svc["cap_drop"] == ["ALL"], name
        assert "/tmp" in svc["tmpfs"], name


def test_gpu_profile() -> None:
    svcs = services()
    default = {n for n, s in svcs.items() if not s.get("profiles")}
    assert {"asr-gpu", "vllm", "models-llm"}.isdisjoint(default)
    for name in ("asr-gpu", "vllm"):
        assert svcs[name]["profiles"] == ["gpu"]
        device = svcs[name]["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    env = svcs["asr-gpu"]["environment"]
    assert env["KONSPEKT_ASR_DEVICE"] == "cuda" and env["KONSPEKT_ASR_COMPUTE_TYPE"] == "float16"
    assert svcs["asr-gpu"]["build"]["dockerfile"] == "services/asr/Dockerfile.cuda"
    vllm = svcs["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    assert "--served-model-name=ErenBukov/llama_31_8b_7k_Dataset" in vllm["command"]
    assert "--port=8000" in vllm["command"] and "ports" not in vllm


def test_minio_images_come_from_quay_and_the_init_runs_the_shared_script() -> None:
    """MinIO's community images are on quay.io (the Docker Hub copies are gone); minio-init runs
    deploy/k8s/minio/konspekt-init.sh (tests/deploy/test_minio_init.py runs it), read-only."""
    svcs = services()
    assert svcs["minio"]["image"] == "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
    init = svcs["minio-init"]
    assert init["image"] == "quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z"
    assert init["entrypoint"] == ["/bin/sh", "/init/konspekt-init.sh"]
    assert init["read_only"] is True and init["tmpfs"] == ["/tmp"]
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert example["KONSPEKT_S3_ACCESS_KEY"] != example["MINIO_ROOT_USER"], "konspekt has its own user"


def test_every_service_exposes_its_metrics_port_inside_the_network_only() -> None:
    for name, svc in services().items():
        if not str(svc.get("image", "")).startswith("konspekt/") or one_shot(svc):
            continue
        port = METRICS_PORTS["asr" if name == "asr-gpu" else name]
        assert svc["expose"] == [str(port)], name
        assert not any(str(port) in str(p) for p in svc.get("ports", [])), f"{name}: metrics published"


def test_every_stage_admits_the_gateway_by_the_token_it_sends() -> None:
    """konspekt.access: each stage's clients name the gateway (jobs/) with KONSPEKT_STAGE_TOKEN
    from .env, which the gateway sends; no stage allows calls without a token."""
    token = "0123456789abcdef0123456789abcdef"
    from_env = re.compile(r"\$\{KONSPEKT_STAGE_TOKEN:\?[^}]*\}")
    svcs = services()
    assert from_env.fullmatch(svcs["gateway"]["environment"]["KONSPEKT_GATEWAY_STAGE_TOKEN"])
    for name in (*STAGES, "asr-gpu"):
        env = svcs[name]["environment"]
        stage = name.split("-")[0].upper()
        clients = json.loads(from_env.sub(token, env[f"KONSPEKT_{stage}_CLIENTS"]))
        assert set(clients) == {"gateway"}, name
        gateway = StageClient.model_validate(clients["gateway"])
        assert gateway.secret == token and gateway.prefix == "jobs/", name
        assert f"KONSPEKT_{stage}_ALLOW_UNAUTHENTICATED" not in env, name
