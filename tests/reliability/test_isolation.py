"""Owner isolation for jobs that are not done: tests/gateway/test_owners_i18n_events.py checks
every endpoint on a finished job; here a queued, a running and a failed job, where the owner
gets 409 (not ready) and a stranger must still get the 404 of a job that does not exist, not
a 409 that would tell the job is there."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_gateway.app import create_app
from tests.gateway.conftest import TERMINAL, client_for, gateway_settings, upload, wait_state
from tests.gateway.fake_stages import FakeStages
from tests.gateway.test_owners_i18n_events import endpoints
from tests.reliability.conftest import job_keys

pytestmark = pytest.mark.anyio


async def test_strangers_cannot_tell_queued_running_or_failed_jobs_exist(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    stages.script.fail_first["audio"] = (1, grpc.StatusCode.INVALID_ARGUMENT, "the file has no audio track")
    app = create_app(gateway_settings(stages.target, concurrent_jobs=1), bucket_s3)
    async with (
        app.router.lifespan_context(app),
        client_for(app, "owner-token-0123456789") as owner,
        client_for(app, "stranger-token-0123456789") as stranger,
        client_for(app) as browser,
    ):
        failed = await upload(owner, b"no sound", "failed.mp4")
        assert (await wait_state(owner, failed["id"], TERMINAL))["state"] == "failed"
        gate = stages.script.gate("asr")
        running = await upload(owner, b"data", "running.mp4")
        await asyncio.to_thread(stages.script.reached("asr").wait, 10)
        queued = await upload(owner, b"data", "queued.mp4")
        assert queued["queue_position"] == 1

        missing = "Z" * 22
        for job in (failed, running, queued):
            for method, path in endpoints(job["id"]):
                if path.endswith("/events") and job is not failed:
                    continue  # the owner's stream would stay open; strangers are checked below
                mine = await owner.request(method, path) if method == "GET" else None
                # the job, its page and its recording are there from the upload on; results are not
                there = {f"/api/v1/jobs/{job['id']}", f"/api/v1/jobs/{job['id']}/media", f"/jobs/{job['id']}"}
                if mine is not None and not path.endswith("/events"):
                    assert mine.status_code == (200 if path in there else 409), (path, mine.text)
                for intruder in (stranger, browser):
                    resp = await intruder.request(method, path, headers={"Accept-Language": "ru"})
                    assert resp.status_code == 404, (method, path, resp.text)
                    nothing = await intruder.request(
                        method, path.replace(job["id"], missing), headers={"Accept-Language": "ru"}
                    )
                    assert resp.json()["error"]["message"] == nothing.json()["error"]["message"].replace(
                        missing, job["id"]
                    )
            for intruder in (stranger, browser):
                events = await intruder.get(f"/api/v1/jobs/{job['id']}/events")
                assert events.status_code == 404
            assert job_keys(bucket_store, job["id"])  # a stranger's DELETE removed nothing
            assert (await owner.get(f"/api/v1/jobs/{job['id']}")).status_code == 200
        assert (await stranger.get("/api/v1/jobs")).json() == {"jobs": []}
        gate.set()
        for job in (running, queued):
            assert (await wait_state(owner, job["id"], TERMINAL))["state"] == "done"
