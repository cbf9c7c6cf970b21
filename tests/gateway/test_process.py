"""The gateway as it runs in production: ``python -m konspekt_gateway`` (uvicorn) in its own
process, so that its memory, disk writes and signal handling can be measured."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_devstack import Proc, free_port, http_ok, spawn, wait_until
from konspekt_gateway import cli
from konspekt_gateway.jobs import DOWNLOADS
from tests.gateway.conftest import drop_bucket
from tests.gateway.fake_stages import FakeStages, rendered

MB = 1024 * 1024


def gateway_env(s3: S3Settings, target: str, port: int, **extra: str) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        {
            "KONSPEKT_S3_ENDPOINT": s3.endpoint,
            "KONSPEKT_S3_ACCESS_KEY": s3.access_key,
            "KONSPEKT_S3_SECRET_KEY": s3.secret_key.get_secret_value(),
            "KONSPEKT_S3_BUCKET": s3.bucket,
            "KONSPEKT_GATEWAY_PORT": str(port),
            "KONSPEKT_GATEWAY_RETRY_BACKOFF_SECONDS": "0.05",
            **{
                f"KONSPEKT_GATEWAY_{stage}_TARGET": target
                for stage in ("AUDIO", "ASR", "SUMMARIZER", "RENDERER")
            },
            **extra,
        }
    )
    return env


def start_gateway(env: dict[str, str], log: Path) -> tuple[Proc, str]:
    url = f"http://127.0.0.1:{env['KONSPEKT_GATEWAY_PORT']}"
    proc = spawn("gateway", [sys.executable, "-m", "konspekt_gateway"], log, env)
    try:
        wait_until(lambda: http_ok(url + "/healthz"), 30, "gateway", proc.popen)
    except Exception:
        proc.kill()
        raise AssertionError(log.read_text()) from None
    return proc, url


@pytest.fixture(scope="module")
def module_s3(s3_settings: S3Settings) -> Iterator[S3Settings]:
    settings = s3_settings.model_copy(update={"bucket": f"gwp-{secrets.token_hex(5)}"})
    ObjectStore(settings).ensure_bucket(expire_days=None)
    yield settings
    drop_bucket(settings)


@pytest.fixture(scope="module")
def module_stages(module_s3: S3Settings) -> Iterator[FakeStages]:
    fake = FakeStages(ObjectStore(module_s3)).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def gateway(
    module_s3: S3Settings, module_stages: FakeStages, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Proc, str]]:
    env = gateway_env(module_s3, module_stages.target, free_port(), KONSPEKT_GATEWAY_MAX_UPLOAD_MB="1024")
    proc, url = start_gateway(env, tmp_path_factory.mktemp("gateway") / "gateway.log")
    yield proc, url
    proc.stop()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def disk_writes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Peak(threading.Thread):
    """Samples a process's RSS until stopped; keeps the highest value."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = rss_bytes(pid)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, rss_bytes(self.pid))


def generated(total_mb: int, fail_after_mb: int | None = None) -> Iterator[bytes]:
    block = os.urandom(MB)
    for i in range(total_mb):
        if fail_after_mb is not None and i == fail_after_mb:
            raise ConnectionAbortedError("client gave up")
        yield block


def test_a_200_mb_upload_keeps_memory_bounded_and_touches_no_local_disk(
    gateway: tuple[Proc, str], module_s3: S3Settings
) -> None:
    proc, url = gateway
    pid = proc.popen.pid
    with httpx.Client(base_url=url, timeout=120) as client:
        # warm up: imports, first S3 multipart, thread pools
        warm = client.post("/api/v1/jobs", params={"filename": "warm.mp4"}, content=generated(20))
        assert warm.status_code == 201, warm.text
        baseline = rss_bytes(pid)
        writes_before = disk_writes(pid)
        sampler = Peak(pid)
        sampler.start()
        try:
            resp = client.post("/api/v1/jobs", params={"filename": "big.mp4"}, content=generated(200))
        finally:
            sampler.done.set()
            sampler.join()
    assert resp.status_code == 201, resp.text
    job = resp.json()
    assert job["size"] == 200 * MB
    assert ObjectStore(module_s3).size(f"jobs/{job['id']}/upload") == 200 * MB
    growth = sampler.peak - baseline
    assert growth < 150 * MB, f"RSS grew by {growth / MB:.0f} MB during a 200 MB upload"
    writes_after = disk_writes(pid)
    if writes_before is not None and writes_after is not None:
        assert writes_after - writes_before < 20 * MB, "the upload was written to local disk"


def test_a_client_that_disconnects_leaves_no_job_and_no_object(
    gateway: tuple[Proc, str], module_s3: S3Settings
) -> None:
    _proc, url = gateway
    store = ObjectStore(module_s3)
    with httpx.Client(base_url=url, timeout=60) as client:
        before = {j["id"] for j in client.get("/api/v1/jobs").json()["jobs"]}
        uploads_before = {k for k in store.list_keys("jobs/") if k.endswith("/upload")}
        with pytest.raises(ConnectionAbortedError):
            client.post(
                "/api/v1/jobs", params={"filename": "cut.mp4"}, content=generated(60, fail_after_mb=40)
            )
        time.sleep(1.0)  # let the server notice and clean up
        after = {j["id"] for j in client.get("/api/v1/jobs").json()["jobs"]}
    assert after == before
    assert {k for k in store.list_keys("jobs/") if k.endswith("/upload")} == uploads_before


def test_cli_submits_waits_and_downloads(
    gateway: tuple[Proc, str], testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _proc, url = gateway
    video = testdata / "video" / "Совещание отдела 1.mp4"
    code = cli.main(
        [
            *("submit", str(video), "--url", url, "--style", "lecture", "--wait", "--out", str(tmp_path)),
            *("--token", "cli-test-token-0123456789"),
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "done" in out.out.splitlines()
    for name in DOWNLOADS:
        saved = tmp_path / f"Совещание отдела 1 — {name}"
        assert saved.read_bytes() == rendered(name, video.name, "Weekly sync")
    assert re.search(r"uploading \[#+\] 100%", out.err)
    # the job belongs to the token: visible with it, not without it
    job_id = out.out.splitlines()[0].split()[1]
    headers = {"Authorization": "Bearer cli-test-token-0123456789"}
    assert httpx.get(f"{url}/api/v1/jobs/{job_id}", headers=headers).json()["state"] == "done"
    assert httpx.get(f"{url}/api/v1/jobs/{job_id}").status_code == 404


def test_sigterm_stops_the_gateway_cleanly_and_bad_settings_fail_fast(
    module_s3: S3Settings, module_stages: FakeStages, tmp_path: Path
) -> None:
    env = gateway_env(module_s3, module_stages.target, free_port())
    proc, url = start_gateway(env, tmp_path / "gateway.log")
    assert httpx.get(url + "/readyz").status_code == 200
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(20) in (0, -signal.SIGTERM)
    proc.log_file.close()
    log = (tmp_path / "gateway.log").read_text()
    assert "gateway stopped" in log  # the lifespan ran to its end
    assert '"service": "gateway"' in log  # JSON logs

    bad = gateway_env(module_s3, module_stages.target, free_port(), KONSPEKT_GATEWAY_CONCURRENT_JOBS="0")
    result = subprocess.run(
        [sys.executable, "-m", "konspekt_gateway"], env=bad, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "concurrent_jobs" in result.stderr
