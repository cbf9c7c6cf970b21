"""konspekt.healthcheck: the probe the Dockerfiles and compose healthchecks run."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from konspekt import healthcheck

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Health:
    def __init__(self) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.target = f"127.0.0.1:{self.port}"

    def set(self, status: int, service: str = "") -> None:
        self.servicer.set(service, status)


@pytest.fixture
def grpc_health() -> Iterator[Health]:
    h = Health()
    h.server.start()
    h.set(NOT_SERVING)
    yield h
    h.server.stop(0).wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serving_is_0_not_serving_is_1(grpc_health: Health, capsys: pytest.CaptureFixture[str]) -> None:
    assert healthcheck.main([grpc_health.target]) == 1
    assert "NOT_SERVING" in capsys.readouterr().out
    grpc_health.set(SERVING)
    assert healthcheck.main([grpc_health.target]) == 0
    assert "healthy: " in capsys.readouterr().out


def test_named_service(grpc_health: Health, capsys: pytest.CaptureFixture[str]) -> None:
    grpc_health.set(SERVING)
    # a service the server does not know: NOT_FOUND, unhealthy
    assert healthcheck.main([grpc_health.target, "--service", "konspekt.v1.AsrService"]) == 1
    assert "NOT_FOUND" in capsys.readouterr().out
    grpc_health.set(SERVING, "konspekt.v1.AsrService")
    assert healthcheck.main([grpc_health.target, "--service", "konspekt.v1.AsrService"]) == 0


def test_unreachable_is_1_within_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    assert healthcheck.main([f"127.0.0.1:{free_port()}", "--timeout", "0.5"]) == 1
    out = capsys.readouterr().out
    assert "UNAVAILABLE" in out or "DEADLINE_EXCEEDED" in out


@pytest.mark.parametrize(
    "argv", [["nohost"], ["host:notaport"], ["host:0"], ["127.0.0.1:50051", "--timeout", "0"]]
)
def test_bad_arguments_are_2(argv: list[str]) -> None:
    assert healthcheck.main(argv) == 2


def test_default_target_from_env(grpc_health: Health, monkeypatch: pytest.MonkeyPatch) -> None:
    grpc_health.set(SERVING)
    monkeypatch.setenv("KONSPEKT_HEALTHCHECK_TARGET", grpc_health.target)
    assert healthcheck.main([]) == 0


def test_as_a_module_process(grpc_health: Health) -> None:
    """What Docker runs: a fresh interpreter, exit status only."""
    grpc_health.set(SERVING)
    cmd = [sys.executable, "-m", "konspekt.healthcheck", grpc_health.target, "--timeout", "5"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    grpc_health.set(NOT_SERVING)
    assert subprocess.run(cmd, capture_output=True, timeout=30).returncode == 1


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/readyz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_mode(http_base: str) -> None:
    assert healthcheck.main(["--http", f"{http_base}/readyz"]) == 0
    assert healthcheck.main(["--http", f"{http_base}/other"]) == 1
    assert healthcheck.main(["--http", f"http://127.0.0.1:{free_port()}/readyz", "--timeout", "1"]) == 1
    assert healthcheck.main(["--http", "file:///etc/passwd"]) == 1


def test_the_image_command_and_probe_as_plain_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """What services/Dockerfile runs: ``python -m konspekt.serve`` picks the service from
    KONSPEKT_SERVICE; its HEALTHCHECK (no arguments) finds the port in the environment."""
    port = free_port()
    env = {
        **os.environ,
        "KONSPEKT_SERVICE": "renderer",
        "KONSPEKT_DEFAULT_HOST": "127.0.0.1",
        "KONSPEKT_RENDERER_PORT": str(port),
        "KONSPEKT_RENDERER_METRICS_PORT": "0",
        "KONSPEKT_HEALTHCHECK_TARGET": f"127.0.0.1:{port}",
    }
    probe = [sys.executable, "-m", "konspekt.healthcheck", "--timeout", "2"]
    server = subprocess.Popen([sys.executable, "-m", "konspekt.serve"], env=env, stderr=subprocess.PIPE)
    try:
        for _ in range(60):
            if subprocess.run(probe, env=env, capture_output=True, timeout=30).returncode == 0:
                break
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            time.sleep(0.5)
        else:
            pytest.fail("the renderer never became healthy")
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
        assert subprocess.run(probe, env=env, capture_output=True, timeout=30).returncode == 1
    finally:
        server.kill()
        server.wait()

    wrong = subprocess.run(
        [sys.executable, "-m", "konspekt.serve"],
        env={**env, "KONSPEKT_SERVICE": "transcoder"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 2 and "set it to one of gateway" in wrong.stderr
