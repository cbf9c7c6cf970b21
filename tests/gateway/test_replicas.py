"""Two gateway replicas in one process on one bucket (konspekt_gateway.replicas): each serves
every job at once, a delete on one is seen by the other, and a job deleted on the replica that
does not run it stops running on the one that does, leaving nothing behind."""

from __future__ import annotations

import asyncio
import time

import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_gateway.app import create_app
from tests.gateway.conftest import TOKEN, client_for, gateway_settings, serve, upload, wait_state
from tests.gateway.fake_stages import FakeStages

pytestmark = pytest.mark.anyio


def replica(name: str) -> dict[str, object]:
    return {"replica": name, "lease_seconds": 1.0, "sync_seconds": 0.1}


async def test_each_replica_serves_every_job_and_sees_deletes(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    gate = stages.script.gate("asr")
    a_settings = gateway_settings(stages.target, **replica("a"))
    b_settings = gateway_settings(stages.target, **replica("b"))
    async with serve(a_settings, bucket_s3) as a, serve(b_settings, bucket_s3) as b:
        job = await upload(a, b"video", "meeting.mp4")
        # B serves it at once (read from the store), before its next sync
        resp = await b.get(f"/api/v1/jobs/{job['id']}")
        assert resp.status_code == 200 and resp.json()["filename"] == "meeting.mp4"
        await asyncio.to_thread(stages.script.reached("asr").wait, 10)
        await wait_state(b, job["id"], {"transcribing"})  # B follows the run, wherever it is
        gate.set()
        done = await wait_state(b, job["id"], {"done"})
        assert (await b.get(f"/api/v1/jobs/{job['id']}/files/konspekt.md")).status_code == 200
        assert stages.script.calls["asr"] == 1  # one replica ran it
        assert done["id"] in {j["id"] for j in (await a.get("/api/v1/jobs")).json()["jobs"]}

        assert (await b.delete(f"/api/v1/jobs/{job['id']}")).status_code == 204
        deadline = time.monotonic() + 5
        while (await a.get(f"/api/v1/jobs/{job['id']}")).status_code != 404:
            assert time.monotonic() < deadline, "A still shows the job B deleted"
            await asyncio.sleep(0.05)
        assert (await a.get("/api/v1/jobs")).json()["jobs"] == []


async def test_a_job_deleted_elsewhere_stops_its_run(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    stages.script.hang.add("asr")  # the call runs until its caller goes away
    a_settings = gateway_settings(stages.target, **replica("a"))
    b_settings = gateway_settings(stages.target, **replica("b"))
    async with serve(a_settings, bucket_s3) as a, serve(b_settings, bucket_s3) as b:
        job = await upload(a, b"video", "meeting.mp4")
        await asyncio.to_thread(stages.script.reached("asr").wait, 10)
        assert (await b.delete(f"/api/v1/jobs/{job['id']}")).status_code == 204
        # the replica that runs it loses the lease at its next renewal (a third of a second),
        # cancels the call and removes whatever it wrote after the delete
        deadline = time.monotonic() + 5
        while stages.script.active[job["id"]] or list(bucket_store.list_keys(f"jobs/{job['id']}/")):
            assert time.monotonic() < deadline, list(bucket_store.list_keys(f"jobs/{job['id']}/"))
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # and nothing comes back
        assert list(bucket_store.list_keys(f"jobs/{job['id']}/")) == []
        assert (await a.get(f"/api/v1/jobs/{job['id']}")).status_code == 404


async def test_a_job_running_here_is_not_claimed_here_again(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    """A job queued a second time while a worker takes or holds its lease (a sync listed it in
    between) is not run twice: this replica's own lease is free to it, so the claim must check
    what runs here."""
    gate = stages.script.gate("asr")
    app = create_app(gateway_settings(stages.target, **replica("a")), bucket_s3)
    async with app.router.lifespan_context(app), client_for(app, TOKEN) as client:
        job = await upload(client, b"video", "meeting.mp4")
        await asyncio.to_thread(stages.script.reached("asr").wait, 10)
        orchestrator = app.state.gateway.orchestrator
        claims = await asyncio.gather(*(orchestrator.claim(job["id"]) for _ in range(2)))
        assert claims == [None, None]
        gate.set()
        done = await wait_state(client, job["id"], {"done", "failed"})
    assert done["state"] == "done", done
    assert stages.script.calls["asr"] == 1
    assert stages.script.overlaps == []
