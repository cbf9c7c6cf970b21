"""The launcher's building blocks: the repository's paths, the stages' default ports and the
run folder's file names, free ports, waiting for a port or a health check, owner-only files,
and a process with its log (``Proc``, ``spawn``)."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

log = logging.getLogger("konspekt_devstack")

#: The repository (tools/devstack/konspekt_devstack/ → three levels up).
ROOT = Path(__file__).resolve().parents[3]
MODELS = Path(os.environ.get("KONSPEKT_MODELS_DIR", ROOT / ".models"))
ACCESS_KEY = "konspekt"

STAGES = ("audio", "asr", "summarizer", "renderer")
#: The stages' default ports (README), used by ``./dev run`` so the CLIs find them.
DEFAULT_PORTS = {"audio": 50051, "asr": 50052, "summarizer": 50053, "renderer": 50054}
#: Every process's Prometheus /metrics port (README; the settings' defaults).
DEFAULT_METRICS_PORTS = {"gateway": 9180, "audio": 9181, "asr": 9182, "summarizer": 9183, "renderer": 9184}
#: The gateway's cookie signing secret under the run folder (KONSPEKT_GATEWAY_SECRET_KEY_FILE).
GATEWAY_SECRET_FILE = "gateway-secret"
#: The local CLIs' stage token under the run folder (KONSPEKT_STAGE_TOKEN_FILE), new at each start.
STAGE_TOKEN_FILE = "stage-token"


def new_token() -> str:
    return secrets.token_urlsafe(32)


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
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")


def grpc_serving(address: str) -> bool:
    with grpc.insecure_channel(address) as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1.0) as resp:
        return bool(resp.status == 200)


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner can enter (made if missing)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file that only its owner can read (never readable by others,
    not even for a moment)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


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


def spawn(
    name: str,
    args: list[str],
    log_path: Path,
    env: dict[str, str],
    *,
    cwd: Path = ROOT,
    new_session: bool = False,
) -> Proc:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "ab")  # noqa: SIM115 - closed by Proc.stop
    popen = subprocess.Popen(
        args, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=new_session
    )
    return Proc(name, popen, log_path, log_file)
