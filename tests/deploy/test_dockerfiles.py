"""The Dockerfiles, checked statically (no daemon here to build them): pinned bases, a builder
stage that makes wheels with the constraints, a final stage with no build tools, non-root,
a gRPC (or HTTP) health check, the right port; and .dockerignore keeps the big folders out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import PORTS, ROOT, SERVICES

DOCKERFILE = ROOT / "services" / "Dockerfile"  # every service's image, picked by build args
DOCKERFILES = [
    DOCKERFILE,
    ROOT / "services" / "asr" / "Dockerfile.cuda",
    ROOT / "tools" / "Dockerfile.models",
]
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|cmake|make|git|curl|wget|python3-pip)\b")


@dataclass
class Stage:
    base: str
    name: str
    lines: list[tuple[str, str]] = field(default_factory=list)  # (instruction, arguments)

    def args(self, instruction: str) -> list[str]:
        return [a for i, a in self.lines if i == instruction]


def parse(path: Path) -> list[Stage]:
    """Instructions per stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(
        line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
    ))  # fmt: skip
    stages: list[Stage] = []
    global_args: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        instruction, _, rest = line.strip().partition(" ")
        instruction = instruction.upper()
        if instruction == "ARG" and not stages:
            name, _, default = rest.strip().partition("=")
            global_args[name] = default.strip('"')
            continue
        if instruction == "FROM":
            for name, value in global_args.items():
                rest = rest.replace("${" + name + "}", value)
            parts = rest.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else ""))
        else:
            assert stages, f"{path}: {instruction} before FROM"
            stages[-1].lines.append((instruction, rest.strip()))
    return stages


def compose_builds() -> dict[str, dict[str, Any]]:
    """``build:`` of every compose service that is built from the repository."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return {name: svc["build"] for name, svc in services.items() if "build" in svc}


def test_one_dockerfile_builds_every_service() -> None:
    assert not list((ROOT / "services").glob("*/Dockerfile")), "per-service copies came back"
    builds = compose_builds()
    for service in SERVICES:
        build = builds[service]
        assert build["dockerfile"] == "services/Dockerfile" and build["context"] in (".", str(ROOT))
        assert build["args"]["SERVICE"] == service
        assert build["args"]["PORT"] == str(PORTS.get(service, 8000))
    assert builds["gateway"]["args"]["HEALTH_URL"] == "http://127.0.0.1:8000/healthz"
    assert (ROOT / "services" / "asr" / "Dockerfile.cuda").is_file()


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_bases_are_pinned(path: Path) -> None:
    for stage in parse(path):
        _, _, tag = stage.base.partition(":")
        assert tag and tag != "latest" and "$" not in stage.base, f"{path}: FROM {stage.base}"
        assert re.search(r"\d", tag), f"{path}: {stage.base} is not pinned to a version"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_final_stage_runs_as_non_root_with_a_healthcheck(path: Path) -> None:
    final = parse(path)[-1]
    users = final.args("USER")
    assert users, f"{path}: no USER in the final stage"
    assert users[-1].split(":")[0] == "10001", f"{path}: USER {users[-1]}"
    assert "10001" in " ".join(final.args("RUN")), "the user is created with uid 10001"
    assert final.args("HEALTHCHECK"), f"{path}: no HEALTHCHECK"
    for run in final.args("RUN"):
        assert not BUILD_TOOLS.search(run), f"{path}: build tools in the final image: {run}"
        if "apt-get install" in run:
            assert "--no-install-recommends" in run and "rm -rf /var/lib/apt/lists" in run, run
    assert not [a for a in final.args("ADD") if a.startswith("http")], "no remote ADD"


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_packages_have_no_build_tools(service: str) -> None:
    args = compose_builds()[service].get("args", {})
    runtime = str(args.get("RUNTIME_PACKAGES", ""))
    assert not BUILD_TOOLS.search(runtime), f"{service}: build tools in the final image: {runtime}"
    for package in runtime.split():
        assert "=" in package, f"{service}: {package} is not pinned to a version"
    builder, final = parse(DOCKERFILE)
    assert "BUILD_PACKAGES" in " ".join(builder.args("RUN"))
    assert "BUILD_PACKAGES" not in " ".join(a for _, a in final.lines), "compilers only in the builder"


def test_the_service_image() -> None:
    stages = parse(DOCKERFILE)
    assert len(stages) == 2 and stages[0].name == "builder"
    builder, final = stages
    assert final.base == builder.base == "docker.io/library/python:3.11.13-slim-bookworm"
    wheel = " ".join(builder.args("RUN"))
    assert (
        "pip wheel --wheel-dir /wheels -c requirements/constraints.txt ./libs/common ./services/${SERVICE}"
        in wheel
    )
    assert "COPY --from=builder /opt/venv /opt/venv" in " ".join(f"COPY {a}" for a in final.args("COPY"))
    env = " ".join(final.args("ENV"))
    for needed in (
        "KONSPEKT_SERVICE=${SERVICE}",
        "KONSPEKT_DEFAULT_HOST=0.0.0.0",
        "KONSPEKT_HEALTHCHECK_TARGET=127.0.0.1:${PORT}",
        "KONSPEKT_HEALTHCHECK_HTTP=${HEALTH_URL}",
    ):
        assert needed in env
    assert final.args("EXPOSE") == ["${PORT}"]
    assert 'python", "-m", "konspekt.healthcheck' in final.args("HEALTHCHECK")[0]
    assert final.args("CMD") == ['["python", "-m", "konspekt.serve"]']
    # models are never baked in
    assert not [a for a in final.args("COPY") if ".models" in a or "/models" in a]


def test_audio_image_has_ffmpeg() -> None:
    assert "ffmpeg" in compose_builds()["audio"]["args"]["RUNTIME_PACKAGES"]


def test_llama_cpp_is_built_portable() -> None:
    """The summarizer's llama.cpp must not depend on the build machine's CPU."""
    builder, _ = parse(DOCKERFILE)
    env = " ".join(builder.args("ENV"))
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF"' in env
    assert "native" not in " ".join(a for _, a in builder.lines).replace("GGML_NATIVE=OFF", "")
    args = compose_builds()["summarizer"]["args"]
    assert "cmake" in args["BUILD_PACKAGES"]
    assert "libgomp1" in args["RUNTIME_PACKAGES"]  # llama.cpp's OpenMP runtime


def test_cuda_asr_image() -> None:
    stages = parse(ROOT / "services" / "asr" / "Dockerfile.cuda")
    final = stages[-1]
    assert re.fullmatch(r"docker.io/nvidia/cuda:\d+\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+", final.base)
    env = " ".join(final.args("ENV"))
    assert "KONSPEKT_ASR_DEVICE=cuda" in env and "KONSPEKT_ASR_COMPUTE_TYPE=float16" in env


def test_dockerignore_keeps_big_and_secret_things_out() -> None:
    entries = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".models", ".run", ".git", ".env", "**/__pycache__", "**/*.egg-info"} <= entries
    for needed in ("libs", "services", "requirements", "tools"):
        assert needed not in entries
