"""The reaper with a retention of seconds, against the real S3 server: every job (done, failed,
running), its objects and unclaimed objects go at the expiry the API shows, not before."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_gateway.app import create_app
from konspekt_gateway.auth import SECRET_KEY_OBJECT
from konspekt_gateway.jobs import Job, JobState, JobStore, utcnow
from konspekt_gateway.reaper import Reaper
from konspekt_gateway.settings import GatewaySettings
from tests.gateway.conftest import TERMINAL, TOKEN, client_for, gateway_settings, serve, upload, wait_state
from tests.gateway.fake_stages import FakeStages
from tests.reliability.conftest import job_keys

pytestmark = pytest.mark.anyio

#: A retention of 3 s, swept every 0.2 s.
SHORT = {"retention_hours": 3 / 3600, "reap_interval_seconds": 0.2}
#: An object outside jobs/ (not job data): the reaper leaves it alone.
NOT_JOB_DATA = "other/not-a-job.txt"


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def wait_gone(client: httpx.AsyncClient, job_id: str, timeout: float = 30.0) -> datetime:
    """Poll until the job is 404; returns when that was first seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = await client.get(f"/api/v1/jobs/{job_id}")
        if resp.status_code == 404:
            return utcnow()
        assert resp.status_code == 200, resp.text
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} was not deleted within {timeout} s")


async def test_done_failed_and_running_jobs_are_deleted_at_their_expiry(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    stages.script.fail_first["audio"] = (1, grpc.StatusCode.INVALID_ARGUMENT, "the file has no audio track")
    settings = gateway_settings(stages.target, concurrent_jobs=1, **SHORT)
    bucket_store.put_bytes(NOT_JOB_DATA, b"not ours to reap", "text/plain")
    async with serve(settings, bucket_s3) as client:
        failed = await upload(client, b"no sound", "silent.mp4")
        assert (await wait_state(client, failed["id"], TERMINAL))["state"] == "failed"
        done = await upload(client, b"data", "Совещание.mp4")
        assert (await wait_state(client, done["id"], TERMINAL))["state"] == "done"
        gate = stages.script.gate("summarizer")
        running = await upload(client, b"data", "long.mp4")
        queued = await upload(client, b"data", "next.mp4")  # behind `running` (one worker)
        await asyncio.to_thread(stages.script.reached("summarizer").wait, 10)

        for job in (failed, done, running, queued):
            expires = when(job["expires_at"])
            assert expires - when(job["created_at"]) == timedelta(seconds=3)
            if utcnow() < expires - timedelta(seconds=0.5):
                assert job_keys(bucket_store, job["id"])  # still stored before its expiry
            gone_at = await wait_gone(client, job["id"])
            assert gone_at >= expires, "deleted before the expiry the API showed"
            for _ in range(200):  # the objects go right after the job leaves the list
                if not job_keys(bucket_store, job["id"]):
                    break
                await asyncio.sleep(0.05)
            assert job_keys(bucket_store, job["id"]) == set()
        assert not gate.is_set()
        assert stages.script.calls["renderer"] == 1  # only `done` was rendered: `running` was stopped
        assert (await client.get("/api/v1/jobs")).json()["jobs"] == []
    assert list(bucket_store.list_keys("jobs/")) == []
    assert bucket_store.get_bytes(NOT_JOB_DATA) == b"not ours to reap"  # not job data: kept
    assert not bucket_store.exists(SECRET_KEY_OBJECT)  # the cookie secret is never in the store


async def test_unclaimed_objects_and_jobs_left_from_before_a_restart_are_deleted(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    # a job record two days old (the gateway was down when it expired) and a young one
    old = Job(filename="old.mp4", created_at=utcnow() - timedelta(days=2), state=JobState.DONE)
    young = Job(filename="young.mp4", owner="t-someone", state=JobState.DONE)
    for job in (old, young):
        JobStore(bucket_store).save(job)
        bucket_store.put_bytes(job.key("upload"), b"video")
        job.files["upload"] = job.key("upload")
        JobStore(bucket_store).save(job)
    # objects no record claims: an upload without a record, a record that cannot be read
    bucket_store.put_bytes("jobs/orphan-upload-0000000/upload", b"video")
    bucket_store.put_bytes("jobs/unreadable-record-00/job.json", b"{not json")
    bucket_store.put_bytes("jobs/unreadable-record-00/out/konspekt.docx", b"docx")
    # the parts of an upload that was cut off while the store was down (so never aborted)
    cut = "jobs/cut-off-upload-00000/upload"
    upload_id = bucket_store.client._create_multipart_upload(bucket_s3.bucket, cut, {})
    bucket_store.client._upload_part(bucket_s3.bucket, cut, b"video" * 1000, None, upload_id, 1)
    assert [key for key, _, _ in bucket_store.stale_uploads("jobs/")] == [cut]

    app = create_app(
        gateway_settings(stages.target, retention_hours=1.0, reap_interval_seconds=3600), bucket_s3
    )
    async with app.router.lifespan_context(app):
        reaper: Reaper = app.state.reaper
        for _ in range(200):  # the first sweep runs at start
            if not job_keys(bucket_store, old.id):
                break
            await asyncio.sleep(0.05)
        assert job_keys(bucket_store, old.id) == set()
        assert app.state.gateway.orchestrator.get(old.id) is None
        # young things stay: the job and the unclaimed objects are seconds old
        assert job_keys(bucket_store, young.id) == {young.key("job.json"), young.key("upload")}
        assert job_keys(bucket_store, "orphan-upload-0000000")
        assert job_keys(bucket_store, "unreadable-record-00")
        assert bucket_store.stale_uploads("jobs/")

        # a shorter retention (the background sweeps stopped, to count this one): all past it
        await reaper.stop()
        reaper.retention = timedelta(seconds=1)
        await asyncio.sleep(1.1)
        swept = await reaper.sweep()
    assert (swept.jobs, swept.orphans, swept.objects, swept.uploads) == (1, 2, 3, 1)
    assert list(bucket_store.list_keys("jobs/")) == []
    assert bucket_store.stale_uploads("jobs/") == []


async def test_expiry_follows_the_setting_and_the_lifecycle_rule_covers_it(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    settings = gateway_settings(stages.target, retention_hours=36.0)
    assert settings.expire_days == 2
    async with serve(settings, bucket_s3) as client:
        created = await upload(client, b"data", "a.mp4")
        views: list[dict[str, Any]] = [created, (await client.get(f"/api/v1/jobs/{created['id']}")).json()]
        views.append((await client.get("/api/v1/jobs")).json()["jobs"][0])
        lifecycle = ObjectStore(bucket_s3).client.get_bucket_lifecycle(bucket_s3.bucket)
    for view in views:
        assert when(view["expires_at"]) - when(view["created_at"]) == timedelta(hours=36)
    assert lifecycle is not None
    assert [rule.expiration.days for rule in lifecycle.rules if rule.expiration] == [2]


def test_retention_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KONSPEKT_GATEWAY_RETENTION_HOURS", "0.5")
    monkeypatch.setenv("KONSPEKT_GATEWAY_REAP_INTERVAL_SECONDS", "30")
    settings = GatewaySettings()
    assert settings.retention == timedelta(minutes=30) and settings.reap_interval_seconds == 30
    assert settings.expire_days == 1
    assert GatewaySettings.model_fields["retention_hours"].default == 24.0
    monkeypatch.setenv("KONSPEKT_GATEWAY_RETENTION_HOURS", "0")
    with pytest.raises(ValueError, match="retention_hours"):
        GatewaySettings()


async def test_a_deleted_job_is_also_gone_for_its_owner_list_and_events(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    """An events stream open when the reaper deletes the job ends with `deleted`."""
    stages.script.gate("asr")
    app = create_app(gateway_settings(stages.target, **SHORT), bucket_s3)
    async with app.router.lifespan_context(app), client_for(app, TOKEN) as client:
        created = await upload(client, b"data", "a.mp4")
        resp = await asyncio.wait_for(client.get(f"/api/v1/jobs/{created['id']}/events"), 30)
    assert resp.status_code == 200
    assert resp.text.rstrip().endswith("event: deleted\ndata: {}")
