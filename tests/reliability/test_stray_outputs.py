"""A stage that wrote its output and then failed, on every try: the failed job keeps only what
its record lists (the soak found an audio.wav left by a try whose reply was lost)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import grpc
import httpx

from konspekt.logs import JOB_ID_METADATA
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_devstack import free_port
from konspekt_gateway.jobs import job_key
from tests.gateway.fake_stages import FakeStages
from tests.gateway.test_process import gateway_env, start_gateway
from tests.reliability.conftest import assert_keeps_only_what_it_claims, job_keys

TOKEN = "stray-token-0123456789"


def test_a_failed_job_keeps_no_output_of_its_failed_tries(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore, tmp_path: Path
) -> None:
    def write_then_fail(stage: str, context: Any) -> None:
        if stage == "asr":
            job_id = dict(context.invocation_metadata() or ()).get(JOB_ID_METADATA, "")
            bucket_store.put_bytes(
                job_key(str(job_id), "transcript.json"), b'{"segments": [', "application/json"
            )
            context.abort(grpc.StatusCode.INTERNAL, "chaos: wrote, then failed")

    stages.script.chaos = write_then_fail
    env = gateway_env(bucket_s3, stages.target, free_port(), KONSPEKT_GATEWAY_STAGE_ATTEMPTS="2")
    gateway, url = start_gateway(env, tmp_path / "gateway.log")
    try:
        with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            resp = client.post("/api/v1/jobs", params={"filename": "a.mp4"}, content=b"video")
            assert resp.status_code == 201
            job_id = resp.json()["id"]
            deadline = time.monotonic() + 60
            while (job := client.get(f"/api/v1/jobs/{job_id}").json())["state"] not in ("done", "failed"):
                assert time.monotonic() < deadline, job
                time.sleep(0.05)
    finally:
        gateway.stop()
    assert job["state"] == "failed" and "tried 2 times" in job["error"]
    files = assert_keeps_only_what_it_claims(bucket_store, job_id)  # no transcript.json
    assert set(files) == {"upload", "audio"}
    assert job_key(job_id, "transcript.json") not in job_keys(bucket_store, job_id)
