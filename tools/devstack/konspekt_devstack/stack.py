"""The whole service as processes on loopback ports (``Stack``): SeaweedFS, the stages and the
gateway, with their environment, ports, tokens and logs."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from konspekt_devstack.procs import (
    DEFAULT_METRICS_PORTS,
    DEFAULT_PORTS,
    GATEWAY_SECRET_FILE,
    MODELS,
    STAGE_TOKEN_FILE,
    STAGES,
    Proc,
    distinct_port,
    free_port,
    grpc_serving,
    http_ok,
    new_token,
    private_dir,
    spawn,
    wait_until,
    write_private,
)
from konspekt_devstack.seaweed import Seaweed

log = logging.getLogger("konspekt_devstack")


def default_stage_env() -> dict[str, str]:
    """Embedded defaults: the models that PyPI packages ship, assembled by tools/fetch_models.py."""
    return {
        "KONSPEKT_ASR_MODEL": str(MODELS / "whisper-base"),
        "KONSPEKT_SUMMARIZER_MODEL": str(MODELS / "qwen2.5-1.5b-instruct" / "model.gguf"),
    }


@dataclass
class Stack:
    """Everything, as processes on loopback ports. ``overrides`` replace env variables."""

    run_dir: Path
    gateway_port: int = 0
    #: Prefer the README's stage ports (``./dev run``); tests take any free ones.
    default_ports: bool = False
    overrides: dict[str, str] = field(default_factory=dict)
    seaweed: Seaweed | None = None
    procs: dict[str, Proc] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    #: Each process's /metrics port, by name (the stages and "gateway").
    metrics_ports: dict[str, int] = field(default_factory=dict)
    #: The stages to start (every one has a port, so the gateway's targets are all set; tests
    #: start only the cheap ones), and whether to start the gateway.
    stages: tuple[str, ...] = STAGES
    with_gateway: bool = True
    #: Processes in their own sessions (``./dev run``: the supervisor alone gets the Ctrl-C).
    new_sessions: bool = False
    #: The stages' clients (konspekt.access), new for each stack: the gateway's token, and the
    #: local CLIs' (written to ``run_dir/stage-token``); both may touch ``jobs/`` only.
    gateway_token: str = field(default_factory=new_token, repr=False)
    cli_token: str = field(default_factory=new_token, repr=False)

    def write_cli_token(self) -> Path:
        """The local CLIs' token, in a file only this user can read (KONSPEKT_STAGE_TOKEN_FILE)."""
        path = private_dir(self.run_dir) / STAGE_TOKEN_FILE
        write_private(path, self.cli_token + "\n")
        return path

    def clients(self) -> str:
        """KONSPEKT_<STAGE>_CLIENTS of every stage."""
        return json.dumps(
            {
                "gateway": {"token": self.gateway_token, "prefix": "jobs/"},
                "cli": {"token": self.cli_token, "prefix": "jobs/"},
            }
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def metrics_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"

    @property
    def names(self) -> tuple[str, ...]:
        """Every process this stack runs, SeaweedFS first."""
        return ("seaweedfs", *self.stages, *(("gateway",) if self.with_gateway else ()))

    def env(self) -> dict[str, str]:
        assert self.seaweed is not None
        env = os.environ.copy()
        env.update(self.seaweed.env())
        for key, value in default_stage_env().items():  # a model the user set is kept
            env.setdefault(key, value)
        for stage in STAGES:
            env[f"KONSPEKT_{stage.upper()}_PORT"] = str(self.ports[stage])
            env[f"KONSPEKT_GATEWAY_{stage.upper()}_TARGET"] = f"127.0.0.1:{self.ports[stage]}"
            env[f"KONSPEKT_{stage.upper()}_CLIENTS"] = self.clients()
            env[f"KONSPEKT_{stage.upper()}_ALLOW_UNAUTHENTICATED"] = "false"
        env["KONSPEKT_GATEWAY_STAGE_TOKEN"] = self.gateway_token
        env.pop("KONSPEKT_GATEWAY_STAGE_TOKEN_FILE", None)
        env["KONSPEKT_GATEWAY_PORT"] = str(self.ports["gateway"])
        for name, port in self.metrics_ports.items():
            env[f"KONSPEKT_{name.upper()}_METRICS_PORT"] = str(port)
        # the cookie secret: a file only this user can read, made by the gateway if missing
        env.setdefault("KONSPEKT_GATEWAY_SECRET_KEY_FILE", str(self.run_dir / GATEWAY_SECRET_FILE))
        env.update(self.overrides)
        return env

    def start(self, timeout: float = 180.0) -> Stack:
        unknown = set(self.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stages: {', '.join(sorted(unknown))}")
        private_dir(self.run_dir)
        self.write_cli_token()
        self.seaweed = Seaweed(self.run_dir / "s3", new_session=self.new_sessions).start()
        for stage in STAGES:
            self.ports[stage] = free_port(DEFAULT_PORTS[stage] if self.default_ports else 0)
        self.ports["gateway"] = self.gateway_port or free_port()
        taken = set(self.ports.values())
        for name in (*STAGES, "gateway"):
            preferred = DEFAULT_METRICS_PORTS[name] if self.default_ports else 0
            self.metrics_ports[name] = distinct_port(preferred, taken)
        for stage in self.stages:
            self.start_stage(stage, wait=False)
        for stage in self.stages:
            self.wait_stage(stage, timeout)
        if self.with_gateway:
            self.start_gateway(timeout)
        return self

    def launch(self, name: str) -> Proc:
        """Start process ``name`` (``seaweedfs``, a stage or ``gateway``) without waiting."""
        if name == "seaweedfs":
            assert self.seaweed is not None
            return self.seaweed.launch()
        module = f"konspekt_{name}"
        proc = spawn(
            name,
            [sys.executable, "-m", module],
            self.run_dir / f"{name}.log",
            self.env(),
            new_session=self.new_sessions,
        )
        self.procs[name] = proc
        return proc

    def proc(self, name: str) -> Proc | None:
        if name == "seaweedfs":
            return self.seaweed.proc if self.seaweed else None
        return self.procs.get(name)

    def ready(self, name: str) -> bool:
        """Whether ``name`` answers: S3 for SeaweedFS, gRPC health SERVING for a stage, /healthz
        for the gateway."""
        try:
            if name == "seaweedfs":
                return self.seaweed is not None and self.seaweed.ready()
            if name == "gateway":
                return http_ok(self.url + "/healthz")
            return grpc_serving(f"127.0.0.1:{self.ports[name]}")
        except Exception:  # noqa: BLE001 - not up (yet)
            return False

    def start_stage(self, stage: str, wait: bool = True, timeout: float = 180.0) -> None:
        self.launch(stage)
        if wait:
            self.wait_stage(stage, timeout)

    def wait_stage(self, stage: str, timeout: float = 180.0) -> None:
        address = f"127.0.0.1:{self.ports[stage]}"
        wait_until(lambda: grpc_serving(address), timeout, f"{stage} stage", self.procs[stage].popen)

    def start_gateway(self, timeout: float = 60.0) -> None:
        proc = self.launch("gateway")
        wait_until(lambda: http_ok(self.url + "/healthz"), timeout, "gateway", proc.popen)

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        self.procs.clear()
        if self.seaweed:
            self.seaweed.stop()
