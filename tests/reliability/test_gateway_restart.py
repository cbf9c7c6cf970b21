"""The gateway process SIGKILLed with jobs running and queued, then started again: every job
resumes where its record says it was, in upload order, and completes; stages that were done
are not run again, and no job is run twice at once. (tests/e2e/test_stack.py does this for one
job on the real stack.)"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from konspekt.logs import JOB_ID_METADATA
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_devstack import free_port
from konspekt_gateway.jobs import DOWNLOADS
from tests.gateway.fake_stages import FakeStages, rendered
from tests.gateway.test_process import gateway_env, start_gateway
from tests.reliability.conftest import assert_keeps_only_what_it_claims

TOKEN = "restart-token-0123456789"


def test_a_killed_gateway_resumes_every_running_and_queued_job(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore, tmp_path: Path
) -> None:
    calls: list[tuple[str, str]] = []
    lock = threading.Lock()

    def record(stage: str, context: Any) -> None:
        job_id = dict(context.invocation_metadata() or ()).get(JOB_ID_METADATA, "")
        with lock:
            calls.append((str(job_id), stage))

    stages.script.chaos = record
    gate = stages.script.gate("summarizer")
    env = gateway_env(bucket_s3, stages.target, free_port(), KONSPEKT_GATEWAY_CONCURRENT_JOBS="2")
    gateway, url = start_gateway(env, tmp_path / "gateway.log")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
            ids = []
            for index in range(6):
                resp = client.post("/api/v1/jobs", params={"filename": f"job {index}.mp4"}, content=b"video")
                assert resp.status_code == 201
                ids.append(resp.json()["id"])
            # two jobs get to the summarizer: one is in its (held) call, the other waits for its
            # one slot (which of the two gets there first is a race); four wait in the queue
            deadline = time.monotonic() + 30
            while True:
                before = {j["id"]: j for j in client.get("/api/v1/jobs").json()["jobs"]}
                waiting_slot = [
                    i for i in ids[:2] if before[i]["message"] == "waiting for a free summarizer slot"
                ]
                if waiting_slot:
                    break
                assert time.monotonic() < deadline, (calls, [before[i] for i in ids[:2]])
                time.sleep(0.02)
            (held,) = set(ids[:2]) - set(waiting_slot)
        assert [before[i]["state"] for i in ids] == ["summarizing"] * 2 + ["queued"] * 4
        assert [before[i]["queue_position"] for i in ids[2:]] == [1, 2, 3, 4]

        gateway.popen.send_signal(signal.SIGKILL)
        gateway.popen.wait()
        gateway.log_file.close()
        gate.set()
        gateway, url = start_gateway(env, tmp_path / "gateway.log")
        with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
            after = {j["id"]: j for j in client.get("/api/v1/jobs").json()["jobs"]}
            assert set(after) == set(ids)  # nothing lost
            # the two interrupted jobs go first (upload order), the other four keep their order
            waiting = sorted(
                (j for j in after.values() if j["queue_position"]), key=lambda j: j["queue_position"]
            )
            assert [j["id"] for j in waiting] == [i for i in ids if i in {j["id"] for j in waiting}]
            done: dict[str, Any] = {}
            deadline = time.monotonic() + 60
            while len(done) < len(ids):
                assert time.monotonic() < deadline, done
                for job in client.get("/api/v1/jobs").json()["jobs"]:
                    if job["state"] in ("done", "failed"):
                        done[job["id"]] = job
                time.sleep(0.05)
    finally:
        gateway.stop()

    assert {job["state"] for job in done.values()} == {"done"}
    assert stages.script.overlaps == []  # no job was in two calls at once
    for index, job_id in enumerate(ids):
        made = [stage for who, stage in calls if who == job_id]
        # the held job's cut summarizer call was made again; nothing before it was
        summarized = ["summarizer", "summarizer"] if job_id == held else ["summarizer"]
        assert made == ["probe", "audio", "asr", *summarized, "renderer"], made
        files = assert_keeps_only_what_it_claims(bucket_store, job_id)
        for name in DOWNLOADS:
            assert bucket_store.get_bytes(files[name]) == rendered(name, f"job {index}.mp4", "Weekly sync")
