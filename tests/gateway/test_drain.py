"""A gateway process stopped with SIGTERM (a rollout, a node drain): an upload under way still
finishes, an event stream ends at once (the browser reconnects, to another replica), and the
lease of the job it ran is released (another replica resumes it at once)."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_devstack import free_port
from konspekt_gateway.jobs import job_key
from konspekt_gateway.lease import LEASE
from tests.gateway.fake_stages import FakeStages
from tests.gateway.test_process import gateway_env, start_gateway

HEADERS = {"Authorization": "Bearer drain-token-0123456789"}


def test_sigterm_lets_uploads_finish_ends_event_streams_and_releases_leases(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore, tmp_path: Path
) -> None:
    gate = stages.script.gate("asr")
    env = gateway_env(bucket_s3, stages.target, free_port(), KONSPEKT_GATEWAY_DRAIN_SECONDS="60")
    gateway, url = start_gateway(env, tmp_path / "gateway.log")
    sending = threading.Event()
    results: dict[str, object] = {}

    def slow_body() -> Iterator[bytes]:
        for _ in range(20):  # 2 s of upload
            sending.set()
            yield b"v" * 65536
            time.sleep(0.1)

    def upload() -> None:
        with httpx.Client(base_url=url, timeout=30, headers=HEADERS) as client:
            resp = client.post("/api/v1/jobs", params={"filename": "slow.mp4"}, content=slow_body())
            results["upload"] = resp.status_code

    def events(job_id: str) -> None:
        with (
            httpx.Client(base_url=url, timeout=30, headers=HEADERS) as client,
            client.stream("GET", f"/api/v1/jobs/{job_id}/events") as resp,
        ):
            for _line in resp.iter_lines():
                pass
        results["events_ended"] = time.monotonic()

    try:
        with httpx.Client(base_url=url, timeout=30, headers=HEADERS) as client:
            resp = client.post("/api/v1/jobs", params={"filename": "running.mp4"}, content=b"video")
            assert resp.status_code == 201
            running = resp.json()["id"]
            assert stages.script.reached("asr").wait(10)
        streams = threading.Thread(target=events, args=(running,))
        streams.start()
        uploads = threading.Thread(target=upload)
        uploads.start()
        assert sending.wait(10)
        time.sleep(0.5)
        gateway.popen.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        streams.join(10)
        uploads.join(30)
        assert gateway.popen.wait(30) is not None
    finally:
        gate.set()
        gateway.stop()

    assert results["upload"] == 201  # the upload under way finished
    ended = results["events_ended"]
    assert isinstance(ended, float) and ended - stopped < 5  # the stream did not wait for the drain
    lease = json.loads(bucket_store.get_bytes(job_key(running, LEASE)))
    assert lease["released"], lease
