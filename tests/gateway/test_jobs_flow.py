"""Upload → the four (fake) stages over real gRPC → downloads, through the app's HTTP API."""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.parse
from pathlib import Path

import grpc
import pytest

from konspekt.logs import JOB_ID_METADATA
from konspekt.server import BUSY
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt.v1 import common_pb2
from konspekt_devstack import free_port
from konspekt_gateway.jobs import DOWNLOADS
from konspekt_gateway.stagecalls import DEADLINE_SETTLE_SECONDS
from tests.gateway.conftest import TERMINAL, gateway_settings, serve, upload, wait_state
from tests.gateway.fake_stages import FakeStages, rendered

pytestmark = pytest.mark.anyio

MEETING = "Совещание отдела 1.mp4"


async def test_raw_upload_is_processed_and_downloads_carry_the_original_name(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore, testdata: Path
) -> None:
    video = (testdata / "video" / MEETING).read_bytes()
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        created = await upload(client, video, MEETING)
        assert created["state"] == "queued"
        assert created["filename"] == MEETING
        assert len(created["id"]) >= 22 and created["short_id"] == created["id"][:8]
        assert created["links"]["self"] == f"/api/v1/jobs/{created['id']}"

        job = await wait_state(client, created["id"], TERMINAL)
        assert job["state"] == "done", job
        assert job["progress"] == 1.0
        assert job["files"] == list(DOWNLOADS)
        assert job["media"]["duration"] == 11.0 and job["media"]["video_codec"] == "h264"
        assert job["detected_language"] == "en"
        assert set(job["stage_seconds"]) == {"audio", "asr", "summarizer", "renderer"}
        assert job["attempts"] == {"probe": 1, "audio": 1, "asr": 1, "summarizer": 1, "renderer": 1}
        assert job["started_at"] and job["finished_at"]

        prefix = f"jobs/{job['id']}/"
        keys = set(bucket_store.list_keys(prefix))
        assert {
            prefix + n for n in ("job.json", "upload", "audio.wav", "transcript.json", "konspekt.json")
        } <= keys
        assert {prefix + "out/" + n for n in DOWNLOADS} <= keys
        assert bucket_store.get_bytes(prefix + "upload") == video
        stored = json.loads(bucket_store.get_bytes(prefix + "job.json"))
        assert stored["state"] == "done" and stored["filename"] == MEETING

        resp = await client.get(f"/api/v1/jobs/{job['id']}/files/konspekt.docx")
        assert resp.status_code == 200
        assert resp.content == rendered("konspekt.docx", MEETING, "Weekly sync")
        name = "Совещание отдела 1 — konspekt.docx"
        assert resp.headers["content-disposition"] == (
            'attachment; filename="Soveshchanie otdela 1 - konspekt.docx"; '
            f"filename*=UTF-8''{urllib.parse.quote(name, safe='')}"
        )
        assert resp.headers["content-type"].startswith("application/vnd.openxmlformats")
        for file in DOWNLOADS:
            resp = await client.get(job["links"]["files"][file])
            assert resp.status_code == 200
            assert resp.content == rendered(file, MEETING, "Weekly sync")
            assert urllib.parse.quote("Совещание отдела 1") in resp.headers["content-disposition"]

        konspekt = (await client.get(f"/api/v1/jobs/{job['id']}/konspekt")).json()
        assert konspekt["title"] == "Weekly sync" and konspekt["summary"] == "Hello, team."

    # every stage call carried the job id for the stages' logs
    assert {m.get(JOB_ID_METADATA) for m in stages.script.metadata} == {job["id"]}
    render = stages.script.requests["renderer"][0]
    assert render.source_name == MEETING
    # the konspekt goes to the renderer by reference, as the summarizer stored it
    assert render.konspekt_ref.key == f"jobs/{job['id']}/konspekt.json"
    assert not render.HasField("konspekt")


async def test_multipart_upload_passes_language_and_style(stages: FakeStages, bucket_s3: S3Settings) -> None:
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        resp = await client.post(
            "/api/v1/jobs",
            files={"file": ("../../etc/Лекция 2.webm", b"\x1a\x45\xdf\xa3" * 1000, "video/webm")},
            data={"language": "ru", "style": "lecture"},
        )
        assert resp.status_code == 201, resp.text
        created = resp.json()
        assert created["filename"] == "Лекция 2.webm"
        assert created["language"] == "ru" and created["style"] == "lecture"
        assert created["content_type"] == "video/webm" and created["size"] == 4000
        job = await wait_state(client, created["id"], TERMINAL)
        assert job["state"] == "done", job
        assert job["detected_language"] == "ru"
    assert stages.script.requests["asr"][0].language == "ru"
    assert stages.script.requests["summarizer"][0].style == common_pb2.STYLE_LECTURE


async def test_queue_positions_with_one_worker(stages: FakeStages, bucket_s3: S3Settings) -> None:
    gate = stages.script.gate("audio")
    async with serve(gateway_settings(stages.target, concurrent_jobs=1), bucket_s3) as client:
        first = await upload(client, b"one", "a.mp4")
        await asyncio.to_thread(stages.script.reached("audio").wait, 10)
        second = await upload(client, b"two", "b.mp4")
        third = await upload(client, b"three", "c.mp4")
        assert (second["queue_position"], third["queue_position"]) == (1, 2)

        listed = (await client.get("/api/v1/jobs")).json()["jobs"]
        assert [j["filename"] for j in listed] == ["c.mp4", "b.mp4", "a.mp4"]  # newest first
        assert [j["queue_position"] for j in listed] == [2, 1, None]
        assert [j["state"] for j in listed] == ["queued", "queued", "extracting_audio"]
        assert listed[2]["message"] == "decoding"  # the stage's progress event

        gate.set()
        for job in (first, second, third):
            assert (await wait_state(client, job["id"], TERMINAL))["state"] == "done"
        assert all(j["queue_position"] is None for j in (await client.get("/api/v1/jobs")).json()["jobs"])


async def test_stage_slots_let_jobs_overlap_but_never_oversubscribe_a_stage(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    """One ASR slot: the second job waits for it (and says so) while the first is transcribed,
    then is transcribed while the first is summarized."""
    asr_gate = stages.script.gate("asr")
    settings = gateway_settings(stages.target, concurrent_jobs=2, asr_concurrency=1, summarizer_concurrency=1)
    async with serve(settings, bucket_s3) as client:
        first = await upload(client, b"one", "a.mp4")
        await asyncio.to_thread(stages.script.reached("asr").wait, 10)
        second = await upload(client, b"two", "b.mp4")
        for _ in range(200):
            waiting = (await client.get(f"/api/v1/jobs/{second['id']}")).json()
            if waiting["message"] == "waiting for a free speech recognition slot":
                break
            await asyncio.sleep(0.05)
        assert waiting["state"] == "transcribing", waiting
        assert waiting["message"] == "waiting for a free speech recognition slot"
        assert stages.script.calls["asr"] == 1  # the slot is held by the first job
        russian = await client.get(f"/api/v1/jobs/{second['id']}", headers={"Accept-Language": "ru"})
        assert russian.json()["message_text"] == "ждёт свободного места на этапе «распознавание речи»"

        summarizer_gate = stages.script.gate("summarizer")
        asr_gate.set()
        await asyncio.to_thread(stages.script.reached("summarizer").wait, 10)
        # the first job is held in the summarizer; the second gets through ASR meanwhile
        for _ in range(200):
            if stages.script.calls["asr"] == 2:
                break
            await asyncio.sleep(0.05)
        assert stages.script.calls["asr"] == 2 and stages.script.calls["summarizer"] == 1
        summarizer_gate.set()
        for job in (first, second):
            assert (await wait_state(client, job["id"], TERMINAL))["state"] == "done"


async def test_a_busy_stage_is_waited_for_without_spending_tries(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    """More "busy" answers than stage_attempts: the job still completes, with one ASR try."""
    stages.script.fail_first["asr"] = (5, grpc.StatusCode.UNAVAILABLE, BUSY, "BUSY")
    async with serve(gateway_settings(stages.target, stage_attempts=2), bucket_s3) as client:
        created = await upload(client, b"one", "a.mp4")
        job = await wait_state(client, created["id"], TERMINAL)
    assert job["state"] == "done", job
    assert job["attempts"]["asr"] == 1
    assert stages.script.calls["asr"] >= 6


async def test_invalid_argument_fails_the_job_with_the_stage_message(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    stages.script.fail["audio"] = (grpc.StatusCode.INVALID_ARGUMENT, "the file has no audio track")
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        created = await upload(client, b"video without sound", "silent.mp4")
        job = await wait_state(client, created["id"], TERMINAL)
    assert job["state"] == "failed"
    assert job["error"] == "the file has no audio track"
    assert job["failed_stage"] == "audio"
    assert stages.script.calls["audio"] == 1  # not retried
    assert "asr" not in stages.script.calls


async def test_unavailable_once_is_retried(stages: FakeStages, bucket_s3: S3Settings) -> None:
    stages.script.fail_once["asr"] = (grpc.StatusCode.UNAVAILABLE, "model server restarting")
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        created = await upload(client, b"data", "call.mkv")
        job = await wait_state(client, created["id"], TERMINAL)
    assert job["state"] == "done", job
    assert job["attempts"]["asr"] == 2
    assert stages.script.calls["asr"] == 2
    assert stages.script.calls["audio"] == 1


async def test_a_hanging_stage_hits_its_deadline_and_fails_after_the_retries(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    stages.script.hang.add("summarizer")
    settings = gateway_settings(
        stages.target, summarizer_deadline_base=0.4, summarizer_deadline_per_second=0.0
    )
    async with serve(settings, bucket_s3) as client:
        created = await upload(client, b"data", "lecture.webm")
        job = await wait_state(client, created["id"], TERMINAL)
    assert job["state"] == "failed"
    assert job["failed_stage"] == "summarizer"
    assert job["error"] == "the summarizer stage did not finish within 0.4 s (tried 3 times)"
    assert stages.script.calls["summarizer"] == 3
    assert "renderer" not in stages.script.calls
    # a retry after a deadline waits for the stage's own deadline to pass: never two at once
    arrived = stages.script.arrived["summarizer"]
    assert all(b - a >= 0.4 + DEADLINE_SETTLE_SECONDS for a, b in itertools.pairwise(arrived))
    assert stages.script.overlaps == []


async def test_deadlines_scale_with_the_media_duration(stages: FakeStages, bucket_s3: S3Settings) -> None:
    stages.script.duration = 100.0
    gate = stages.script.gate("asr")
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        created = await upload(client, b"data", "long.mp4")
        await asyncio.to_thread(stages.script.reached("asr").wait, 10)
        gate.set()
        assert (await wait_state(client, created["id"], TERMINAL))["state"] == "done"
    # the fake records the time remaining; 120 s + 2 × 100 s were granted to ASR
    remaining = stages.script.deadlines["asr"][0]
    assert remaining is not None and abs(remaining - 320) < 15  # gRPC rounds the timeout up


async def test_no_speech_still_completes(stages: FakeStages, bucket_s3: S3Settings) -> None:
    stages.script.no_speech = True
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        created = await upload(client, b"silence", "silence_20s.mp4")
        job = await wait_state(client, created["id"], TERMINAL)
        assert job["state"] == "done", job
        assert job["no_speech"] is True
        assert "no speech was found in the recording" in job["warnings"]
        konspekt = (await client.get(f"/api/v1/jobs/{job['id']}/konspekt")).json()
        assert konspekt["summary"] == "No speech was found."


async def test_delete_removes_the_record_and_every_object(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        created = await upload(client, b"data", "x.mp4")
        await wait_state(client, created["id"], TERMINAL)
        prefix = f"jobs/{created['id']}/"
        assert len(list(bucket_store.list_keys(prefix))) >= 11
        resp = await client.delete(f"/api/v1/jobs/{created['id']}")
        assert resp.status_code == 204
        assert list(bucket_store.list_keys(prefix)) == []
        resp = await client.get(f"/api/v1/jobs/{created['id']}")
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "not_found"
        assert (await client.get("/api/v1/jobs")).json()["jobs"] == []


async def test_delete_stops_a_running_job(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    stages.script.gate("asr")
    async with serve(gateway_settings(stages.target, concurrent_jobs=1), bucket_s3) as client:
        running = await upload(client, b"data", "x.mp4")
        await asyncio.to_thread(stages.script.reached("asr").wait, 10)
        assert (await client.delete(f"/api/v1/jobs/{running['id']}")).status_code == 204
        assert list(bucket_store.list_keys(f"jobs/{running['id']}/")) == []
        stages.script.gates.clear()  # the worker is free again: the next job runs
        following = await upload(client, b"data", "y.mp4")
        assert (await wait_state(client, following["id"], TERMINAL))["state"] == "done"


async def test_restart_resumes_an_unfinished_job_at_its_stage(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    gate = stages.script.gate("summarizer")
    settings = gateway_settings(stages.target)
    async with serve(settings, bucket_s3) as client:
        created = await upload(client, b"data", "Совещание отдела 1.mp4")
        await asyncio.to_thread(stages.script.reached("summarizer").wait, 10)
        assert (await client.get(f"/api/v1/jobs/{created['id']}")).json()["state"] == "summarizing"
    # the first gateway is gone; its record says where the job was
    stored = json.loads(bucket_store.get_bytes(f"jobs/{created['id']}/job.json"))
    assert stored["state"] == "summarizing"
    gate.set()
    async with serve(settings, bucket_s3) as client:
        job = await wait_state(client, created["id"], TERMINAL)
        assert job["state"] == "done", job
        assert job["filename"] == "Совещание отдела 1.mp4"
    assert stages.script.calls["audio"] == 1  # done before the restart: not repeated
    assert stages.script.calls["asr"] == 1
    assert stages.script.calls["summarizer"] == 2


async def test_the_bucket_gets_the_24h_lifecycle_rule(stages: FakeStages, bucket_s3: S3Settings) -> None:
    store = ObjectStore(bucket_s3)
    async with serve(gateway_settings(stages.target), bucket_s3):
        lifecycle = store.client.get_bucket_lifecycle(bucket_s3.bucket)
    assert lifecycle is not None
    assert [rule.expiration.days if rule.expiration else None for rule in lifecycle.rules] == [1]


async def test_readyz_names_what_is_down(stages: FakeStages, bucket_s3: S3Settings) -> None:
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        assert (await client.get("/healthz")).status_code == 200
        resp = await client.get("/readyz")
        assert resp.status_code == 200, resp.text
        assert resp.json()["stages"] == dict.fromkeys(("audio", "asr", "summarizer", "renderer"), "SERVING")

    settings = gateway_settings(stages.target, asr_target=f"127.0.0.1:{free_port()}")  # nothing there
    async with serve(settings, bucket_s3) as client:
        resp = await client.get("/readyz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["error"]["code"] == "not_ready"
    assert "asr" in body["error"]["message"] and "audio" not in body["error"]["message"]
    assert body["stages"]["audio"] == "SERVING" and body["stages"]["asr"] != "SERVING"


async def test_jobs_survive_in_the_list_after_a_restart(stages: FakeStages, bucket_s3: S3Settings) -> None:
    settings = gateway_settings(stages.target)
    async with serve(settings, bucket_s3) as client:
        created = await upload(client, b"data", "a.mp4")
        await wait_state(client, created["id"], TERMINAL)
    async with serve(settings, bucket_s3) as client:
        jobs = (await client.get("/api/v1/jobs")).json()["jobs"]
    assert [j["id"] for j in jobs] == [created["id"]]
    assert jobs[0]["state"] == "done"


@pytest.mark.parametrize(
    "path", ["/api/v1/jobs/nope", "/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA/files/konspekt.docx"]
)
async def test_unknown_job_is_a_json_404(stages: FakeStages, bucket_s3: S3Settings, path: str) -> None:
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        resp = await client.get(path)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"
    assert resp.json()["error"]["message"]


async def test_files_are_validated(stages: FakeStages, bucket_s3: S3Settings) -> None:
    stages.script.gate("audio")
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        created = await upload(client, b"data", "a.mp4")
        resp = await client.get(f"/api/v1/jobs/{created['id']}/files/upload")
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
        resp = await client.get(f"/api/v1/jobs/{created['id']}/files/konspekt.docx")
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "not_ready"
        resp = await client.get(f"/api/v1/jobs/{created['id']}/konspekt")
        assert resp.status_code == 409


async def test_the_web_page_is_served_without_a_cdn(stages: FakeStages, bucket_s3: S3Settings) -> None:
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        en = await client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"})
        ru = await client.get("/", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
        css = await client.get("/static/vendor/bootstrap.min.css")
        js = await client.get("/static/vendor/bootstrap.bundle.min.js")
        # the page's own script (uploads with progress) is a file of the gateway, not inline
        page_js = await client.get("/static/page.js")
    assert en.status_code == ru.status_code == 200
    assert "Upload" in en.text and "Загрузить" in ru.text
    assert 'name="viewport"' in en.text and '<script src="/static/page.js">' in en.text
    assert page_js.status_code == 200 and "javascript" in page_js.headers["content-type"]
    assert "XMLHttpRequest" in page_js.text
    for text in (en.text, page_js.text):
        assert "//cdn" not in text and "https://" not in text
    assert css.status_code == js.status_code == 200 and "Bootstrap" in css.text[:200]


async def test_client_errors_are_json(stages: FakeStages, bucket_s3: S3Settings) -> None:
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        bad_style = await client.post("/api/v1/jobs", params={"style": "poem"}, content=b"x")
        bad_language = await client.post("/api/v1/jobs", params={"language": "russian!"}, content=b"x")
        wrong_method = await client.put("/api/v1/jobs")
        assert (await client.get("/api/v1/jobs")).json()["jobs"] == []
    assert bad_style.status_code == 400 and "style" in bad_style.json()["error"]["message"]
    assert bad_language.status_code == 400 and bad_language.json()["error"]["code"] == "invalid_request"
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"
