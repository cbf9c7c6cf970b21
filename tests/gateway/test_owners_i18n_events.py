"""Per-owner isolation (cookie and bearer token), Russian/English messages, server-sent events,
callbacks, the upload type check and the OpenAPI document."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_gateway import i18n
from konspekt_gateway.app import create_app
from konspekt_gateway.auth import OWNER_COOKIE, SECRET_KEY_OBJECT, token_owner
from konspekt_gateway.jobs import DOWNLOADS, Job, JobState, utcnow
from konspekt_gateway.views import eta_seconds
from tests.gateway.conftest import TERMINAL, client_for, gateway_settings, serve, upload, wait_state
from tests.gateway.fake_stages import FakeStages

pytestmark = pytest.mark.anyio

OTHER_TOKEN = "someone-else-0123456789"


def endpoints(job_id: str) -> list[tuple[str, str]]:
    base = f"/api/v1/jobs/{job_id}"
    return [
        ("GET", base),
        ("GET", base + "/events"),
        ("GET", base + "/konspekt"),
        ("GET", base + "/transcript"),
        ("GET", base + "/media"),
        ("GET", f"/jobs/{job_id}"),  # the job's page
        *[("GET", f"{base}/files/{name}") for name in DOWNLOADS],
        ("DELETE", base),
    ]


async def test_every_endpoint_hides_other_owners_jobs(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    app = create_app(gateway_settings(stages.target), bucket_s3)
    async with (
        app.router.lifespan_context(app),
        client_for(app, "owner-a-token-0123456789") as owner,
        client_for(app, OTHER_TOKEN) as other_token,
        client_for(app) as browser,
    ):
        created = await upload(owner, b"data", "секрет.mp4")
        job = await wait_state(owner, created["id"], TERMINAL)
        assert job["state"] == "done"
        assert "owner" not in job  # the owner id is never shown
        stored = json.loads(bucket_store.get_bytes(f"jobs/{job['id']}/job.json"))
        assert stored["owner"] == token_owner("owner-a-token-0123456789")

        missing = "A" * 22
        for intruder in (other_token, browser):
            assert (await intruder.get("/api/v1/jobs")).json() == {"jobs": []}
            for method, path in endpoints(job["id"]):
                resp = await intruder.request(method, path)
                assert resp.status_code == 404, (method, path, resp.text)
                assert resp.json()["error"]["code"] == "not_found"
                # indistinguishable from a job that does not exist
                nothing = await intruder.request(method, path.replace(job["id"], missing))
                assert nothing.status_code == 404
                assert nothing.json()["error"]["message"] == resp.json()["error"]["message"].replace(
                    job["id"], missing
                )
        # the owner still has it all
        assert [j["id"] for j in (await owner.get("/api/v1/jobs")).json()["jobs"]] == [job["id"]]
        for method, path in endpoints(job["id"]):
            resp = await owner.request(method, path)
            assert resp.status_code in (200, 204), (method, path, resp.text)


async def test_a_cookie_identity_is_issued_kept_and_survives_a_restart(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore, tmp_path: Path
) -> None:
    secret_file = tmp_path / "s"
    settings = gateway_settings(stages.target, secret_key_file=str(secret_file))
    async with serve(settings, bucket_s3, token=None) as client:
        first = await client.get("/api/v1/jobs")
        cookie = first.headers["set-cookie"]
        assert cookie.startswith(OWNER_COOKIE + "=")
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
        created = await upload(client, b"data", "mine.mp4")
        assert "set-cookie" not in (await client.get("/api/v1/jobs")).headers  # kept, not re-issued
        assert [j["id"] for j in (await client.get("/api/v1/jobs")).json()["jobs"]] == [created["id"]]
        value = client.cookies[OWNER_COOKIE]
    # generated once, kept in the secret file, never in the store
    assert secret_file.read_text().strip()
    assert not bucket_store.exists(SECRET_KEY_OBJECT)

    async with serve(settings, bucket_s3, token=None) as client:
        client.cookies.set(OWNER_COOKIE, value)
        assert [j["id"] for j in (await client.get("/api/v1/jobs")).json()["jobs"]] == [created["id"]]
        # a forged signature is a stranger (and gets a fresh identity)
        forged = value.rpartition(".")[0] + ".AAAA"
        client.cookies.set(OWNER_COOKIE, forged)
        resp = await client.get(f"/api/v1/jobs/{created['id']}")
        assert resp.status_code == 404
        assert resp.headers["set-cookie"].startswith(OWNER_COOKIE + "=")


async def test_a_configured_secret_is_used_and_not_stored(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    settings = gateway_settings(stages.target, secret_key="configured-secret-for-tests")
    async with serve(settings, bucket_s3, token=None) as client:
        assert (await client.get("/api/v1/jobs")).status_code == 200
    assert not bucket_store.exists(SECRET_KEY_OBJECT)


async def test_a_malformed_bearer_token_is_401(stages: FakeStages, bucket_s3: S3Settings) -> None:
    async with serve(gateway_settings(stages.target), bucket_s3, token="short") as client:
        resp = await client.get("/api/v1/jobs", headers={"Accept-Language": "ru"})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthorized"
    assert "токен" in resp.json()["error"]["message"]


async def test_errors_and_states_speak_the_request_language(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    stages.script.fail["audio"] = (grpc.StatusCode.INVALID_ARGUMENT, "the file has no audio track")
    async with serve(gateway_settings(stages.target, max_upload_mb=1), bucket_s3) as client:
        ru = {"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}
        resp = await client.get("/api/v1/jobs/" + "B" * 22, headers=ru)
        assert resp.json()["error"] == {"code": "not_found", "message": f"задание «{'B' * 22}» не найдено"}
        resp = await client.post("/api/v1/jobs", params={"style": "poem"}, content=b"x", headers=ru)
        assert resp.json()["error"]["message"] == "стиль должен быть meeting или lecture, а не «poem»"
        resp = await client.post("/api/v1/jobs", content=b"x" * (2 << 20), headers=ru)
        assert resp.status_code == 413
        assert resp.json()["error"]["message"] == "файл больше допустимых 1 МБ"
        resp = await client.get("/api/v1/nothing-here", headers=ru)
        assert resp.json()["error"] == {"code": "not_found", "message": "не найдено"}
        resp = await client.get("/api/v1/jobs/" + "B" * 22, headers={"Accept-Language": "en"})
        assert resp.json()["error"]["message"] == f"there is no job '{'B' * 22}'"
        # the page's switch (a cookie) wins over Accept-Language
        client.cookies.set(i18n.LANG_COOKIE, "ru")
        resp = await client.get("/api/v1/jobs/" + "B" * 22, headers={"Accept-Language": "en"})
        assert "не найдено" in resp.json()["error"]["message"]
        client.cookies.delete(i18n.LANG_COOKIE)

        created = await upload(client, b"no sound", "silent.mp4")
        await wait_state(client, created["id"], TERMINAL)
        job = (await client.get(f"/api/v1/jobs/{created['id']}", headers=ru)).json()
        assert job["status_text"] == "Ошибка"
        assert job["error"] == "the file has no audio track"
        assert job["error_text"] == "в файле нет звуковой дорожки"
        assert job["failed_stage_text"] == "извлечение звука"
        stages_view = {s["stage"]: s["status"] for s in job["stages"]}
        assert stages_view == {
            "audio": "failed",
            "asr": "pending",
            "summarizer": "pending",
            "renderer": "pending",
        }

        stages.script.fail.clear()
        created = await upload(client, b"data", "ok.mp4")
        await wait_state(client, created["id"], TERMINAL)
        job = (await client.get(f"/api/v1/jobs/{created['id']}", headers=ru)).json()
        assert job["status_text"] == "Завершено!"
        assert [s["status"] for s in job["stages"]] == ["done"] * 4
        en = (await client.get(f"/api/v1/jobs/{created['id']}", headers={"Accept-Language": "en"})).json()
        assert en["status_text"] == "Done!"

        page = await client.get("/?lang=ru", headers={"Accept-Language": "en"})
        assert "Загрузить" in page.text
        assert page.cookies.get(i18n.LANG_COOKIE) == "ru"


def test_failure_reasons_are_translated() -> None:
    """Failure reasons as the pipeline and the stages make them (notes), in Russian."""
    from konspekt.notices import Note

    timeout = Note("stage_timeout", stage="summarizer", seconds="0.4")
    cases: dict[str, str] = {
        Note("tried_times", reason=timeout, tries="3"): (
            "этап «составление конспекта» не завершился за 0.4 с (попыток: 3)"
        ),
        Note("stage_unavailable_detail", stage="speech recognition", detail="busy"): (
            "служба «распознавание речи» недоступна: busy"
        ),
        Note("not_media", detail="moov atom not found"): (
            "это не видео- и не аудиофайл, который можно прочитать (moov atom not found)"
        ),
        Note("too_long", length="5:00:00", seconds="18000", limit="4:00:00", limit_seconds="14400"): (
            "запись длится 5:00:00 (18000 с), это больше предела 4:00:00 (14400 с)"
        ),
        "something new": "something new",
    }
    for english, russian in cases.items():
        assert i18n.reason(english, "ru") == russian
        assert i18n.reason(english, "en") == english
    for code, texts in i18n.ERRORS.items():
        assert texts["en"] and texts["ru"], code


def parse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


async def test_events_stream_every_change_until_the_job_ends(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    gate = stages.script.gate("asr")
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        created = await upload(client, b"data", "live.mp4")
        stream = asyncio.create_task(client.get(f"/api/v1/jobs/{created['id']}/events"))
        await asyncio.to_thread(stages.script.reached("asr").wait, 10)
        gate.set()
        resp = await asyncio.wait_for(stream, 20)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = parse_events(resp.text)
    assert {name for name, _ in events} == {"job"}
    states = [data["state"] for _, data in events]
    assert states[-1] == "done"
    assert "transcribing" in states and "summarizing" in states
    assert events[-1][1]["links"]["files"]["konspekt.docx"].endswith("/files/konspekt.docx")


async def test_events_of_a_finished_job_end_at_once(stages: FakeStages, bucket_s3: S3Settings) -> None:
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        created = await upload(client, b"data", "x.mp4")
        await wait_state(client, created["id"], TERMINAL)
        resp = await asyncio.wait_for(client.get(f"/api/v1/jobs/{created['id']}/events"), 10)
    assert [data["state"] for _, data in parse_events(resp.text)] == ["done"]


class Receiver(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    received: list[dict[str, Any]] = []
    server.received = received  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook?x=1", received
    server.shutdown()
    server.server_close()


async def test_callback_url_gets_the_finished_job(
    stages: FakeStages, bucket_s3: S3Settings, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    # the receiver is on loopback: allowed only because it is allow-listed (test_callbacks.py)
    async with serve(gateway_settings(stages.target, callback_allow="127.0.0.1/32"), bucket_s3) as client:
        created = await upload(client, b"data", "hook.mp4", callback_url=url)
        assert created["callback_url"] == url
        await wait_state(client, created["id"], TERMINAL)
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
        bad = await client.post("/api/v1/jobs", params={"callback_url": "ftp://x/"}, content=b"x")
    assert len(received) == 1
    assert received[0]["id"] == created["id"] and received[0]["state"] == "done"
    assert received[0]["files"] == list(DOWNLOADS)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"


async def test_files_that_are_not_media_are_refused(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        raw = await client.post(
            "/api/v1/jobs",
            params={"filename": "notes.txt"},
            content=b"hello",
            headers={"Content-Type": "text/plain"},
        )
        form = await client.post("/api/v1/jobs", files={"file": ("doc.pdf", b"%PDF", "application/pdf")})
        audio = await client.post(
            "/api/v1/jobs", params={"filename": "voice"}, content=b"x", headers={"Content-Type": "audio/ogg"}
        )
        jobs = (await client.get("/api/v1/jobs")).json()["jobs"]
    for resp in (raw, form):
        assert resp.status_code == 415, resp.text
        assert resp.json()["error"]["code"] == "unsupported_type"
    assert "notes.txt" in raw.json()["error"]["message"]
    assert audio.status_code == 201
    assert [j["filename"] for j in jobs] == ["voice"]
    assert [k for k in bucket_store.list_keys("jobs/") if k.endswith("/upload")] == [
        f"jobs/{audio.json()['id']}/upload"
    ]


async def test_openapi_documents_the_job_and_error_shapes(stages: FakeStages, bucket_s3: S3Settings) -> None:
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        doc = (await client.get("/openapi.json")).json()
    paths = doc["paths"]
    assert set(paths) >= {
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/events",
        "/api/v1/jobs/{job_id}/konspekt",
        "/api/v1/jobs/{job_id}/files/{name}",
    }

    def ref(response: dict[str, Any]) -> str:
        return str(response["content"]["application/json"]["schema"]["$ref"])

    assert ref(paths["/api/v1/jobs"]["post"]["responses"]["201"]).endswith("/JobOut")
    assert ref(paths["/api/v1/jobs"]["get"]["responses"]["200"]).endswith("/JobList")
    assert ref(paths["/api/v1/jobs/{job_id}"]["get"]["responses"]["404"]).endswith("/ErrorOut")
    assert "text/event-stream" in paths["/api/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    assert "multipart/form-data" in paths["/api/v1/jobs"]["post"]["requestBody"]["content"]
    job = doc["components"]["schemas"]["JobOut"]["properties"]
    assert {"short_id", "status_text", "eta_seconds", "expires_at", "stages", "queue_position"} <= set(job)
    assert "Bearer" in doc["info"]["description"]


async def test_a_job_view_has_expiry_stages_and_eta(stages: FakeStages, bucket_s3: S3Settings) -> None:
    gate = stages.script.gate("summarizer")
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        created = await upload(client, b"data", "x.mp4")
        await asyncio.to_thread(stages.script.reached("summarizer").wait, 10)
        job: dict[str, Any] = {}
        for _ in range(100):
            job = (await client.get(f"/api/v1/jobs/{created['id']}")).json()
            if job["state"] == "summarizing":
                break
            await asyncio.sleep(0.02)
        assert [s["status"] for s in job["stages"]] == ["done", "done", "running", "pending"]
        assert job["eta_seconds"] is None  # progress 0: nothing to go by yet
        gate.set()
        done = await wait_state(client, created["id"], TERMINAL)
    start = datetime.fromisoformat(done["created_at"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(done["expires_at"].replace("Z", "+00:00"))
    assert expires - start == timedelta(hours=24)
    assert done["eta_seconds"] is None


def test_eta_follows_the_stage_progress_rate() -> None:
    job = Job(state=JobState.TRANSCRIBING, progress=0.25, stage_started_at=utcnow() - timedelta(seconds=30))
    eta = eta_seconds(job)
    assert eta is not None and 89 <= eta <= 92  # 30 s for 25 % → 90 s for the other 75 %
    assert eta_seconds(job.model_copy(update={"progress": 0.0})) is None
    assert eta_seconds(job.model_copy(update={"state": JobState.DONE})) is None
