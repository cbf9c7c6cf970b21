"""Load: 20 clients (20 owners: each its own bearer token) upload testdata videos at the same
moment to the gateway process (uvicorn, default upload, job and per-owner limits; fake stages).
All are accepted, the queue positions are the queue, the gateway's memory stays bounded, and
every job completes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_devstack import ROOT, free_port
from tests.gateway.conftest import gateway_settings, serve
from tests.gateway.fake_stages import FakeStages
from tests.gateway.test_process import MB, Peak, gateway_env, rss_bytes, start_gateway
from tests.reliability.conftest import assert_keeps_only_what_it_claims

CLIENTS = 20
#: Growth of the gateway's RSS allowed while 20 uploads stream and their jobs run.
RSS_BOUND = 100 * MB
REPORT = ROOT / "test-artifacts" / "reliability" / "load.json"


def test_twenty_concurrent_uploads_are_all_accepted_queued_in_order_and_completed(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore, testdata: Path, tmp_path: Path
) -> None:
    videos = sorted((testdata / "video").iterdir())
    gate = stages.script.gate("audio")  # hold the jobs so that the queue can be looked at
    env = gateway_env(bucket_s3, stages.target, free_port())  # default limits: 4 uploads, 4 jobs
    gateway, url = start_gateway(env, tmp_path / "gateway.log")
    pid = gateway.popen.pid
    peak = Peak(pid)
    try:
        with httpx.Client(
            base_url=url, timeout=60, headers={"Authorization": "Bearer load-0123456789abcdef"}
        ) as c:
            warm = c.post("/api/v1/jobs", params={"filename": "warm.mp4"}, content=videos[0].read_bytes())
            assert warm.status_code == 201
            gate.set()  # the warm-up job runs through, then the gate closes for the load
            deadline = time.monotonic() + 30
            while c.get(f"/api/v1/jobs/{warm.json()['id']}").json()["state"] != "done":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            gate.clear()
            baseline = rss_bytes(pid)
            peak.start()

            start = threading.Barrier(CLIENTS)
            # 20 clients are 20 owners (one owner may have only 2 uploads under way at once)
            owners = [
                {"Authorization": f"Bearer load-client-{index:02d}-0123456789"} for index in range(CLIENTS)
            ]

            def one(index: int) -> httpx.Response:
                video = videos[index % len(videos)]
                data = video.read_bytes()
                start.wait()
                with httpx.Client(base_url=url, timeout=120, headers=owners[index]) as own:
                    return own.post(
                        "/api/v1/jobs", params={"filename": f"{index:02d} {video.name}"}, content=data
                    )

            def each_owners_job() -> list[dict[str, Any]]:
                """Every client's job, as its owner sees it (only the owner can)."""
                return [
                    c.get(f"/api/v1/jobs/{job['id']}", headers=owner).json()
                    for job, owner in zip(created, owners, strict=True)
                ]

            with ThreadPoolExecutor(CLIENTS) as pool:
                responses = list(pool.map(one, range(CLIENTS)))
            codes = [r.status_code for r in responses]
            assert codes == [201] * CLIENTS, [r.text for r in responses if r.status_code != 201]
            created = [r.json() for r in responses]
            ids = {job["id"] for job in created}
            assert len(ids) == CLIENTS

            # The queue as the API shows it: 1..n for the waiting jobs, each once (in the order they
            # were accepted, which concurrent clients cannot see); the others are being worked on
            # (4 jobs at once by default) and have no position. Held at the audio gate, nothing
            # moves while the owners are asked one by one.
            listed = each_owners_job()
            waiting = [j for j in listed if j["queue_position"] is not None]
            assert sorted(j["queue_position"] for j in waiting) == list(range(1, len(waiting) + 1))
            assert all(j["state"] == "queued" for j in waiting)
            working = [j for j in listed if j["queue_position"] is None]
            assert len(working) == 4 and all(j["state"] != "queued" for j in working)
            assert len(waiting) == CLIENTS - 4
            first_seen = {j["id"]: j["queue_position"] for j in created}

            gate.set()
            positions: dict[str, list[int]] = {job_id: [] for job_id in ids}
            done: dict[str, dict[str, Any]] = {}
            deadline = time.monotonic() + 120
            while len(done) < CLIENTS and time.monotonic() < deadline:
                for job in each_owners_job():
                    if job["queue_position"] is not None:
                        positions[job["id"]].append(job["queue_position"])
                    if job["state"] in ("done", "failed"):
                        done[job["id"]] = job
                time.sleep(0.05)
    finally:
        peak.done.set()
        if peak.is_alive():
            peak.join()
        gateway.stop()

    assert len(done) == CLIENTS, f"{CLIENTS - len(done)} jobs did not finish"
    assert {job["state"] for job in done.values()} == {"done"}
    for job_id, seen in positions.items():  # a job only moves forward in the queue
        assert seen == sorted(seen, reverse=True), seen
        if first_seen[job_id] is not None and seen:
            assert seen[0] <= first_seen[job_id]
    for job_id in ids:
        assert_keeps_only_what_it_claims(bucket_store, job_id)
    growth = peak.peak - baseline
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(
        json.dumps(
            {
                "clients": CLIENTS,
                "accepted": codes.count(201),
                "completed": len(done),
                "uploaded_mb": round(sum(v.stat().st_size for v in videos) * CLIENTS / len(videos) / MB, 1),
                "rss_baseline_mb": round(baseline / MB, 1),
                "rss_peak_mb": round(peak.peak / MB, 1),
                "rss_growth_mb": round(growth / MB, 1),
            },
            indent=1,
        )
        + "\n"
    )
    assert growth < RSS_BOUND, f"the gateway's RSS grew by {growth / MB:.0f} MB"


@pytest.mark.anyio
async def test_uploads_beyond_the_slots_wait_and_beyond_the_waiting_room_get_503(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    """One upload slot, one waiting place: the second upload waits for the first, the third is
    told to come back (503, in the request's language)."""
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"first part"
        await release.wait()
        yield b"second part"

    settings = gateway_settings(stages.target, max_concurrent_uploads=1, max_waiting_uploads=1)
    async with serve(settings, bucket_s3) as client:
        first = asyncio.create_task(
            client.post("/api/v1/jobs", params={"filename": "a.mp4"}, content=slow_body())
        )
        await asyncio.sleep(0.3)
        second = asyncio.create_task(client.post("/api/v1/jobs", params={"filename": "b.mp4"}, content=b"b"))
        await asyncio.sleep(0.3)
        third = await client.post(
            "/api/v1/jobs", params={"filename": "c.mp4"}, content=b"c", headers={"Accept-Language": "ru"}
        )
        assert not second.done()  # waiting for the slot, not refused
        release.set()
        responses = await asyncio.gather(first, second)
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[0].json()["size"] == len(b"first partsecond part")
    assert third.status_code == 503
    assert third.json()["error"] == {
        "code": "busy",
        "message": "слишком много загрузок одновременно; попробуйте через минуту",
    }
