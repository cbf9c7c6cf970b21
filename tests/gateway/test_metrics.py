"""The gateway's /metrics (its own port): scraped during and after real API flows against the
fake stages on a real gRPC server."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import httpx
import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_devstack import free_port
from konspekt_gateway.settings import GatewaySettings
from tests.gateway.conftest import TERMINAL, gateway_settings, serve, upload, wait_state
from tests.gateway.fake_stages import FakeStages
from tests.scrape import Scrape, scrape

pytestmark = pytest.mark.anyio

DATA = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64  # 16 KiB and a bit


def settings(stages: FakeStages, port: int, **overrides: object) -> GatewaySettings:
    return gateway_settings(stages.target, metrics_port=port, concurrent_jobs=1, **overrides)


async def metrics(port: int) -> Scrape:
    return await asyncio.to_thread(scrape, f"http://127.0.0.1:{port}/metrics")


async def test_a_job_moves_the_gateway_counters(stages: FakeStages, bucket_s3: S3Settings) -> None:
    port = free_port()
    async with serve(settings(stages, port), bucket_s3) as client:
        before = await metrics(port)
        job = await upload(client, DATA, "meeting.mp4")
        done = await wait_state(client, job["id"], TERMINAL)
        assert done["state"] == "done", done
        assert (await client.get(f"/api/v1/jobs/{job['id']}")).status_code == 200
        assert (await client.get("/api/v1/nope")).status_code == 404
        after = await metrics(port)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("konspekt_gateway_jobs_submitted_total") == 1
    assert moved("konspekt_gateway_jobs_finished_total", state="done", failed_stage="") == 1
    assert moved("konspekt_gateway_jobs_finished_total", state="failed") == 0
    assert after.value("konspekt_gateway_jobs", state="done") == 1  # this gateway's jobs, now
    assert after.value("konspekt_gateway_jobs", state="queued") == 0
    assert after.value("konspekt_gateway_queue_length") == 0
    assert moved("konspekt_gateway_queue_wait_seconds_count") == 1
    assert moved("konspekt_gateway_job_duration_seconds_count") == 1
    assert moved("konspekt_gateway_media_seconds_total") == 11.0  # the fake stages' duration
    for stage in ("audio", "asr", "summarizer", "renderer"):
        assert moved("konspekt_gateway_stage_duration_seconds_count", stage=stage) == 1, stage
        assert moved("konspekt_gateway_stage_real_time_factor_count", stage=stage) == 1, stage
        assert moved("konspekt_gateway_stage_wait_seconds_count", stage=stage) >= 1, stage
    # the RTF is the stage's seconds over the recording's
    rtf = moved("konspekt_gateway_stage_real_time_factor_sum", stage="asr")
    seconds = moved("konspekt_gateway_stage_duration_seconds_sum", stage="asr")
    assert rtf == pytest.approx(seconds / 11.0)
    assert moved("konspekt_gateway_upload_bytes_total") == len(DATA)
    assert moved("konspekt_gateway_uploads_total", outcome="stored") == 1
    # HTTP by route template, never by raw path (no job ids in label values)
    route = "/api/v1/jobs/{job_id}"
    assert (
        moved("konspekt_gateway_http_requests_total", method="POST", route="/api/v1/jobs", status="201") == 1
    )
    assert moved("konspekt_gateway_http_requests_total", method="GET", route=route, status="200") >= 2
    assert moved("konspekt_gateway_http_requests_total", route="unmatched", status="404") == 1
    assert (
        moved("konspekt_gateway_http_request_duration_seconds_count", method="POST", route="/api/v1/jobs")
        == 1
    )
    assert job["id"] not in after.text
    assert after.value("process_resident_memory_bytes") > 0


async def test_failures_are_counted_by_stage_and_code(stages: FakeStages, bucket_s3: S3Settings) -> None:
    stages.script.fail_once["asr"] = (grpc.StatusCode.UNAVAILABLE, "restarting")
    stages.script.fail["summarizer"] = (
        grpc.StatusCode.FAILED_PRECONDITION,
        "the model's answer was not JSON",
    )
    port = free_port()
    async with serve(settings(stages, port), bucket_s3) as client:
        before = await metrics(port)
        job = await upload(client, DATA, "meeting.mp4")
        failed = await wait_state(client, job["id"], TERMINAL)
        assert failed["state"] == "failed" and failed["failed_stage"] == "summarizer", failed
        empty = await client.post("/api/v1/jobs", params={"filename": "empty.mp4"}, content=b"")
        assert empty.status_code == 400
        after = await metrics(port)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("konspekt_gateway_stage_errors_total", stage="asr", code="UNAVAILABLE") == 1  # then retried
    assert moved("konspekt_gateway_stage_errors_total", stage="summarizer", code="FAILED_PRECONDITION") == 1
    assert moved("konspekt_gateway_jobs_finished_total", state="failed", failed_stage="summarizer") == 1
    assert moved("konspekt_gateway_jobs_finished_total", state="done") == 0
    assert after.value("konspekt_gateway_jobs", state="failed") == 1
    # durations and RTFs describe done jobs only
    assert moved("konspekt_gateway_stage_duration_seconds_count") == 0
    assert moved("konspekt_gateway_uploads_total", outcome="failed") == 1
    assert moved("konspekt_gateway_http_requests_total", route="/api/v1/jobs", status="400") == 1


async def test_jobs_by_state_and_the_queue_during_a_run(stages: FakeStages, bucket_s3: S3Settings) -> None:
    gate = stages.script.gate("summarizer")
    port = free_port()
    async with serve(settings(stages, port), bucket_s3) as client:
        first = await upload(client, DATA, "first.mp4")
        second = await upload(client, DATA, "second.mp4")
        await wait_state(client, first["id"], {"summarizing"})
        during = await metrics(port)
        gate.set()
        for job in (first, second):
            assert (await wait_state(client, job["id"], TERMINAL))["state"] == "done"
        after = await metrics(port)
    # one worker: the first job is being summarized, the second waits in the queue
    assert during.value("konspekt_gateway_jobs", state="summarizing") == 1
    assert during.value("konspekt_gateway_jobs", state="queued") == 1
    assert during.value("konspekt_gateway_queue_length") == 1
    assert after.value("konspekt_gateway_jobs", state="done") == 2
    assert after.value("konspekt_gateway_queue_length") == 0


async def test_metrics_are_never_on_the_public_port(stages: FakeStages, bucket_s3: S3Settings) -> None:
    port = free_port()
    async with serve(settings(stages, port), bucket_s3) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await metrics(port)).value("konspekt_gateway_queue_length") == 0
    with pytest.raises(httpx.ConnectError):  # stopped with the app
        await metrics(port)


async def test_the_reaper_reports_what_it_deleted_and_the_oldest_object_left(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    """Issue 13: the 24 h promise is observable. With a 3 s retention the reaper deletes a job and
    an object no job claims; the oldest-object gauge stays within the retention (the alert fires
    above 25 h) and drops to 0 when jobs/ is empty; the last sweep's time moves."""
    port = free_port()
    store = ObjectStore(bucket_s3)
    retention = 3.0
    s = settings(stages, port, retention_hours=retention / 3600, reap_interval_seconds=0.2)
    async with serve(s, bucket_s3) as client:
        before = await metrics(port)
        job = await upload(client, DATA, "meeting.mp4")
        await asyncio.to_thread(store.put_bytes, f"jobs/{uuid.uuid4().hex}/stray.bin", b"x")
        ages: list[float] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = await metrics(port)
            ages.append(now.value("konspekt_gateway_reaper_oldest_object_age_seconds"))
            gone = (await client.get(f"/api/v1/jobs/{job['id']}")).status_code == 404
            if gone and not list(store.list_keys("jobs/")) and ages[-1] == 0:
                break
            await asyncio.sleep(0.2)
        after = await metrics(port)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("konspekt_gateway_reaper_deleted_total", what="job") == 1
    assert moved("konspekt_gateway_reaper_deleted_total", what="unclaimed_object") == 1
    assert moved("konspekt_gateway_reaper_deleted_total", what="unfinished_upload") == 0
    assert max(ages) > 0, "objects were there, with an age"
    assert max(ages) <= retention + 2, ages  # never much older than the retention
    assert after.value("konspekt_gateway_reaper_oldest_object_age_seconds") == 0
    assert after.value("konspekt_gateway_reaper_last_sweep_timestamp_seconds") > time.time() - 10
