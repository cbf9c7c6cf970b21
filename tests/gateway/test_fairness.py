"""Fairness between owners (issue 16): one owner's many jobs cannot push another owner's job
back, per-owner limits answer 429 with Retry-After (English and Russian), a trickling upload is
cut off and its partial upload aborted, and the open event streams of one owner are capped.
In-process with the fake stages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_gateway.app import create_app
from konspekt_gateway.auth import token_owner
from konspekt_gateway.jobs import FairQueue
from tests.gateway.conftest import TERMINAL, TOKEN, client_for, gateway_settings, serve, upload, wait_state
from tests.gateway.fake_stages import FakeStages

pytestmark = pytest.mark.anyio

OTHER = "other-owner-0123456789abcdef"
MB = 1024 * 1024


def started(job: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(job["started_at"])


# -- the queue --------------------------------------------------------------------------------
def test_the_queue_takes_owners_in_turn_and_keeps_each_owners_order() -> None:
    queue = FairQueue()
    for i in range(5):
        queue.append(f"a{i}", "A")
    assert queue.popleft() == "a0"  # A's first job runs
    queue.append("b0", "B")
    queue.append("b1", "B")
    queue.append("c0", "C")
    # B and C, who had nothing waiting, come before A's second job; then turns
    assert queue.order() == ["b0", "c0", "a1", "b1", "a2", "a3", "a4"]
    assert [queue.position(j) for j in ("b0", "c0", "a1", "a4")] == [1, 2, 3, 7]
    assert queue.remove("c0") and not queue.remove("c0")
    assert [queue.popleft() for _ in range(len(queue))] == ["b0", "a1", "b1", "a2", "a3", "a4"]
    assert not queue and queue.position("a4") is None
    # one owner alone: first come, first served
    for i in range(3):
        queue.append(f"x{i}", "X")
    assert queue.order() == ["x0", "x1", "x2"]


async def test_sixty_jobs_of_one_owner_delay_another_owners_job_by_at_most_one_job(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    """One worker; owner A uploads 60 recordings (all accepted: its job limit raised), owner B
    one. B's job is next in the queue and starts right after A's job that was running."""
    gate = stages.script.gate("audio")
    settings = gateway_settings(stages.target, concurrent_jobs=1, owner_max_jobs=100)
    app = create_app(settings, bucket_s3)
    async with app.router.lifespan_context(app), client_for(app, TOKEN) as a, client_for(app, OTHER) as b:
        mine = [await upload(a, b"%d" % i, f"a{i:02d}.mp4") for i in range(60)]
        await asyncio.to_thread(stages.script.reached("audio").wait, 10)
        theirs = await upload(b, b"b", "b.mp4")
        assert theirs["queue_position"] == 1  # ahead of A's 59 waiting jobs
        listed = (await a.get("/api/v1/jobs")).json()["jobs"]
        assert sorted(j["queue_position"] for j in listed if j["queue_position"]) == list(range(2, 61))
        assert {j["id"]: j["queue_position"] for j in listed}[mine[1]["id"]] == 2  # A's order kept

        gate.set()
        done = await wait_state(b, theirs["id"], TERMINAL, timeout=60)
        assert done["state"] == "done"
        finished = [await wait_state(a, job["id"], TERMINAL, timeout=60) for job in mine]
    assert {job["state"] for job in finished} == {"done"}
    ahead = [job["filename"] for job in finished if started(job) < started(done)]
    assert ahead == ["a00.mp4"]  # only the job that was already running


# -- per-owner limits -------------------------------------------------------------------------
async def test_too_many_jobs_of_one_owner_get_429_with_retry_after_in_english_and_russian(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    gate = stages.script.gate("audio")
    settings = gateway_settings(stages.target, owner_max_jobs=3)
    app = create_app(settings, bucket_s3)
    async with app.router.lifespan_context(app), client_for(app, TOKEN) as a, client_for(app, OTHER) as b:
        jobs = [await upload(a, b"x", f"{i}.mp4") for i in range(3)]
        en = await a.post("/api/v1/jobs", params={"filename": "4.mp4"}, content=b"x")
        ru = await a.post(
            "/api/v1/jobs", params={"filename": "4.mp4"}, content=b"x", headers={"Accept-Language": "ru"}
        )
        other = await b.post("/api/v1/jobs", params={"filename": "b.mp4"}, content=b"x")
        await a.delete(f"/api/v1/jobs/{jobs[0]['id']}")  # a place is free again
        again = await a.post("/api/v1/jobs", params={"filename": "5.mp4"}, content=b"x")
        listed = (await a.get("/api/v1/jobs")).json()["jobs"]
        gate.set()  # let them end before the gateway stops
        for job in listed:
            await wait_state(a, job["id"], TERMINAL)
        await wait_state(b, other.json()["id"], TERMINAL)
    for resp in (en, ru):
        assert resp.status_code == 429
        assert int(resp.headers["Retry-After"]) > 0
        assert resp.json()["error"]["code"] == "too_many_jobs"
    assert en.json()["error"]["message"] == (
        "you already have the most recordings allowed waiting or in progress (3); try again when one is done"
    )
    assert ru.json()["error"]["message"] == (
        "у вас уже наибольшее допустимое число записей в очереди и в работе (3); "
        "повторите, когда одна из них будет готова"
    )
    assert other.status_code == 201  # another owner is not held back
    assert again.status_code == 201
    assert sorted(j["filename"] for j in listed) == ["1.mp4", "2.mp4", "5.mp4"]
    # nothing of the refused uploads was stored: three jobs of A, one of B
    records = [k for k in bucket_store.list_keys("jobs/") if k.endswith("/job.json")]
    assert len(records) == 4


async def test_too_many_uploads_at_once_of_one_owner_get_429_others_go_on(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    """Two uploads at once per owner: a third of the same owner is refused at once (its body
    unread), while another owner uploads; the two finish, and the owner may upload again."""
    release = asyncio.Event()

    async def slow(name: bytes) -> AsyncIterator[bytes]:
        yield name
        await release.wait()
        yield b" rest"

    settings = gateway_settings(stages.target, owner_max_uploads=2)
    app = create_app(settings, bucket_s3)
    async with app.router.lifespan_context(app), client_for(app, TOKEN) as a, client_for(app, OTHER) as b:
        gateway = app.state.gateway
        first, second = (
            asyncio.create_task(
                a.post("/api/v1/jobs", params={"filename": f"{n.decode()}.mp4"}, content=slow(n))
            )
            for n in (b"1", b"2")
        )
        for _ in range(200):
            if gateway.owner_uploads[token_owner(TOKEN)] == 2:
                break
            await asyncio.sleep(0.01)
        third = await a.post(
            "/api/v1/jobs", params={"filename": "3.mp4"}, content=b"3", headers={"Accept-Language": "ru"}
        )
        third_en = await a.post("/api/v1/jobs", params={"filename": "3.mp4"}, content=b"3")
        other = await b.post("/api/v1/jobs", params={"filename": "b.mp4"}, content=b"b")
        release.set()
        done = await asyncio.gather(first, second)
        after = await a.post("/api/v1/jobs", params={"filename": "4.mp4"}, content=b"4")
        assert gateway.owner_uploads.counts == {}  # every place given back
    assert [r.status_code for r in done] == [201, 201]
    assert third.status_code == third_en.status_code == 429
    assert int(third.headers["Retry-After"]) > 0
    assert third.json()["error"] == {
        "code": "too_many_uploads",
        "message": "слишком много ваших загрузок одновременно (предел: 2); "
        "повторите, когда одна из них закончится",
    }
    assert third_en.json()["error"]["message"] == (
        "too many of your uploads at once (limit 2); try again when one has finished"
    )
    assert other.status_code == 201 and after.status_code == 201


# -- slow uploads -----------------------------------------------------------------------------
async def test_a_trickling_upload_is_cut_off_and_the_slot_freed(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    """A byte every 0.1 s: under 64 KiB/s once the grace (0.5 s) is over, so it is stopped."""
    sent = 0

    async def trickle() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(200):  # 20 s if never stopped
            sent += 1
            yield b"x"
            await asyncio.sleep(0.1)

    settings = gateway_settings(
        stages.target, upload_grace_seconds=0.5, upload_min_rate_kib=64, max_concurrent_uploads=1
    )
    async with serve(settings, bucket_s3) as client:
        began = time.monotonic()
        resp = await client.post(
            "/api/v1/jobs",
            params={"filename": "slow.mp4"},
            content=trickle(),
            headers={"Accept-Language": "ru"},
        )
        took = time.monotonic() - began
        fast = await client.post("/api/v1/jobs", params={"filename": "fast.mp4"}, content=b"quick")
    assert resp.status_code == 408, resp.text
    assert resp.json()["error"] == {
        "code": "upload_too_slow",
        "message": "загрузка шла слишком медленно (в среднем меньше 64 КиБ/с) и была остановлена",
    }
    assert took < 3 and sent < 30
    assert fast.status_code == 201  # the only upload slot was given back
    assert [
        k for k in bucket_store.list_keys("jobs/") if not k.startswith(f"jobs/{fast.json()['id']}/")
    ] == []


async def test_an_upload_past_the_time_limit_is_cut_off_and_its_multipart_upload_aborted(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    """17 MiB at once (a 16 MiB part reaches the store: a multipart upload is under way), then
    nothing: stopped at the 2 s limit, the multipart upload aborted, nothing kept."""

    async def stalls() -> AsyncIterator[bytes]:
        for _ in range(17):
            yield b"\x00" * MB
        await asyncio.sleep(30)
        yield b"never"

    settings = gateway_settings(stages.target, upload_max_seconds=2, upload_min_rate_kib=0)
    async with serve(settings, bucket_s3) as client:
        began = time.monotonic()
        resp = await client.post("/api/v1/jobs", params={"filename": "stall.mp4"}, content=stalls())
        took = time.monotonic() - began
        jobs = (await client.get("/api/v1/jobs")).json()["jobs"]
    assert resp.status_code == 408, resp.text
    assert resp.json()["error"] == {
        "code": "upload_too_long",
        "message": "the upload took longer than the limit of 2 s and was stopped",
    }
    assert took < 10
    assert jobs == []
    assert list(bucket_store.list_keys("jobs/")) == []
    assert bucket_store.stale_uploads("jobs/") == []


# -- event streams ----------------------------------------------------------------------------
async def test_open_event_streams_per_owner_are_capped(stages: FakeStages, bucket_s3: S3Settings) -> None:
    gate = stages.script.gate("audio")
    settings = gateway_settings(stages.target, owner_max_event_streams=2)
    app = create_app(settings, bucket_s3)
    async with app.router.lifespan_context(app), client_for(app, TOKEN) as a, client_for(app, OTHER) as b:
        streams = app.state.gateway.owner_streams
        job = await upload(a, b"a", "a.mp4")
        theirs = await upload(b, b"b", "b.mp4")
        events = f"/api/v1/jobs/{job['id']}/events"

        async def opened(owner: str, count: int) -> None:
            for _ in range(200):
                if streams[owner] == count:
                    return
                await asyncio.sleep(0.01)
            raise AssertionError(f"{streams[owner]} streams open, not {count}")

        held = [asyncio.create_task(a.get(events)) for _ in range(2)]
        await opened(token_owner(TOKEN), 2)
        third = await a.get(events, headers={"Accept-Language": "ru"})
        other = asyncio.create_task(b.get(f"/api/v1/jobs/{theirs['id']}/events"))
        await opened(token_owner(OTHER), 1)  # another owner's stream is not refused
        held[0].cancel()  # a client goes away: its place is given back
        await asyncio.gather(held[0], return_exceptions=True)
        await opened(token_owner(TOKEN), 1)
        held.append(asyncio.create_task(a.get(events)))
        await opened(token_owner(TOKEN), 2)
        gate.set()
        finished: list[httpx.Response] = await asyncio.wait_for(asyncio.gather(*held[1:], other), 30)
        assert streams.counts == {}
    assert third.status_code == 429 and int(third.headers["Retry-After"]) > 0
    assert third.json()["error"]["code"] == "too_many_streams"
    assert third.json()["error"]["message"].startswith(
        "у вас открыто слишком много потоков событий (предел: 2)"
    )
    assert [r.status_code for r in finished] == [200, 200, 200]
    assert all("event: job" in r.text for r in finished)
