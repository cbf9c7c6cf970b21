"""Summarize again (issue 14, part 3): POST /api/v1/jobs/<id>/resummarize runs only the
summarizer and the renderer, from the stored transcript, with the style, language and wish
asked for; the job shows that run like any other and its record says no ASR ran; the new
konspekt is served and the previous kept; owner-only, 409 while running, 422 for bad fields —
against a real S3 server and the fake stages."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import httpx
import pytest

from konspekt.notices import Note
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt.v1 import common_pb2, renderer_pb2
from konspekt_gateway.app import create_app
from tests.gateway.conftest import TERMINAL, client_for, gateway_settings, upload, wait_state
from tests.gateway.fake_stages import FakeStages, rendered

pytestmark = pytest.mark.anyio

OWNER = "owner-of-the-job-0123456789ab"
OTHER = "another-owner-0123456789abcd"
NAME = "Лекция.mp4"
WISH = "Focus on the budget"


def stage(job: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in job["stages"] if s["stage"] == name)
    return found


async def wait_for(client: httpx.AsyncClient, job_id: str, state: str) -> dict[str, Any]:
    return await wait_state(client, job_id, {state})


async def test_summarizing_again_runs_the_summarizer_and_renderer_only_and_keeps_the_old_konspekt(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    settings = gateway_settings(stages.target)
    app = create_app(settings, bucket_s3)
    script = stages.script
    async with app.router.lifespan_context(app), client_for(app, OWNER) as owner:
        job = await wait_state(owner, (await upload(owner, b"video", NAME))["id"], TERMINAL)
        assert job["state"] == "done" and job["run"] == "upload" and job["runs"] == []
        base = f"/api/v1/jobs/{job['id']}"
        prefix = f"jobs/{job['id']}/"
        before = (await owner.get(base + "/konspekt")).json()
        original = bucket_store.get_bytes(prefix + "konspekt.json")
        old_docx = prefix + "out/konspekt.docx"
        calls = dict(script.calls)
        assert calls["asr"] == 1 and calls["audio"] == 1

        gate = script.gate("summarizer")
        resp = await owner.post(
            base + "/resummarize", json={"style": "lecture", "language": "ru", "instruction": WISH}
        )
        assert resp.status_code == 202, resp.text
        queued = resp.json()
        assert queued["state"] in ("queued", "summarizing") and queued["run"] == "resummarize"
        assert queued["stage_seconds"] == {} and queued["attempts"] == {}

        # its progress shows like any run's: summarizing, its own stages pending or running
        running = await wait_for(owner, job["id"], "summarizing")
        assert stage(running, "summarizer")["status"] == "running"
        assert stage(running, "renderer")["status"] == "pending"
        assert stage(running, "asr")["status"] == "done" and stage(running, "asr")["seconds"] is None
        assert "asr" not in running["stage_seconds"] and "audio" not in running["stage_seconds"]
        # while it runs: asked again 409, an edit 409, the konspekt before is still served
        again = await owner.post(base + "/resummarize", json={})
        assert again.status_code == 409 and again.json()["error"]["code"] == "not_ready"
        assert "summarizing" in again.json()["error"]["message"]
        assert (await owner.put(base + "/konspekt", json=before)).status_code == 409
        assert (await owner.get(base + "/konspekt")).json() == before
        gate.set()
        done = await wait_state(owner, job["id"], TERMINAL)
        assert done["state"] == "done", done

        # no audio, no ASR: only the summarizer and the renderer were called
        assert script.calls["audio"] == calls["audio"] and script.calls["asr"] == calls["asr"]
        assert script.calls.get("probe", 0) == calls.get("probe", 0)
        assert script.calls["summarizer"] == calls["summarizer"] + 1
        assert script.calls["renderer"] == calls["renderer"] + 1
        asked = script.requests["summarizer"][-1]
        assert asked.transcript_ref.key == prefix + "transcript.json"
        assert asked.style == common_pb2.STYLE_LECTURE
        assert asked.language == "ru" and asked.instruction == WISH
        assert asked.output.key == prefix + "konspekt.next.json"
        first = script.requests["summarizer"][0]
        assert first.instruction == "" and first.language == ""  # an upload's run asks for neither
        render = script.requests["renderer"][-1]
        assert list(render.formats) == [
            renderer_pb2.FORMAT_KONSPEKT_DOCX,
            renderer_pb2.FORMAT_KONSPEKT_TXT,
            renderer_pb2.FORMAT_KONSPEKT_MD,
        ]
        assert render.output_prefix.key == prefix + "out/v2/"
        assert render.transcript_ref.key == prefix + "transcript.json"
        # the konspekt goes by reference (the one the summarizer stored), not read back and inlined
        assert render.konspekt_ref.key == prefix + "konspekt.next.json"
        assert not render.HasField("konspekt")

        # the record says what ran this time, and keeps the run before
        assert done["run"] == "resummarize" and done["resummarized_at"]
        assert set(done["stage_seconds"]) == {"summarizer", "renderer"}
        assert set(done["attempts"]) == {"summarizer", "renderer"}
        assert stage(done, "asr")["seconds"] is None and stage(done, "summarizer")["seconds"] is not None
        assert (
            done["style"] == "lecture" and done["konspekt_language"] == "ru" and done["instruction"] == WISH
        )
        assert done["konspekt_version"] == 2
        [previous_run] = done["runs"]
        assert previous_run["run"] == "upload" and previous_run["state"] == "done"
        assert {"audio", "asr", "summarizer", "renderer"} <= set(previous_run["stage_seconds"])
        assert previous_run["style"] == "meeting" and previous_run["konspekt_version"] == 1

        # the new konspekt and its documents are served; the transcript's are the first ones
        now = (await owner.get(base + "/konspekt")).json()
        assert now["title"] == f"Weekly sync ({WISH})" and now["language"] == "ru"
        assert now["style"] in ("STYLE_LECTURE", common_pb2.STYLE_LECTURE)
        for name in ("konspekt.docx", "konspekt.txt", "konspekt.md"):
            download = await owner.get(f"{base}/files/{name}")
            assert download.content == rendered(name, NAME, f"Weekly sync ({WISH})"), name
        transcript = await owner.get(f"{base}/files/transcript.srt")
        assert transcript.content == rendered("transcript.srt", NAME, "Weekly sync")
        assert done["files"] == job["files"]
        # the previous konspekt is kept, its documents and the staged copy gone, nothing unclaimed
        assert bucket_store.get_bytes(prefix + "konspekt.v1.json") == original
        assert not bucket_store.exists(old_docx)
        assert not bucket_store.exists(prefix + "konspekt.next.json")
        record = json.loads(bucket_store.get_bytes(prefix + "job.json"))
        claimed = {prefix + "job.json", prefix + "lease.json", *record["files"].values()}
        assert set(bucket_store.list_keys(prefix)) == claimed

        # an edit after it is version 3 and keeps version 2
        edited = now | {"title": "Edited after"}
        assert (await owner.put(base + "/konspekt", json=edited)).status_code == 200
        assert json.loads(bucket_store.get_bytes(prefix + "konspekt.v2.json"))["title"] == now["title"]

    restarted = create_app(settings, bucket_s3)
    async with restarted.router.lifespan_context(restarted), client_for(restarted, OWNER) as owner:
        after = (await owner.get(base)).json()
        assert after["run"] == "resummarize" and after["konspekt_version"] == 3
        assert after["runs"][0]["run"] == "upload"
        assert (await owner.get(base + "/konspekt")).json()["title"] == "Edited after"


async def test_only_the_owner_asks_not_while_running_and_bad_fields_are_422(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    script = stages.script
    gate = script.gate("summarizer")
    app = create_app(gateway_settings(stages.target), bucket_s3)
    async with (
        app.router.lifespan_context(app),
        client_for(app, OWNER) as owner,
        client_for(app, OTHER) as other,
        client_for(app) as browser,
    ):
        job = await upload(owner, b"video", NAME)
        base = f"/api/v1/jobs/{job['id']}"
        await wait_for(owner, job["id"], "summarizing")
        early = await owner.post(base + "/resummarize", json={"style": "lecture"})
        assert early.status_code == 409 and early.json()["error"]["code"] == "not_ready"
        ru = await owner.post(base + "/resummarize", json={}, headers={"Accept-Language": "ru"})
        assert ru.status_code == 409 and "ещё выполняется" in ru.json()["error"]["message"]
        gate.set()
        await wait_state(owner, job["id"], TERMINAL)
        summarized = script.calls["summarizer"]

        for intruder in (other, browser):
            for sent in ({"style": "lecture"}, {"style": "poem"}, None):
                resp = await intruder.post(base + "/resummarize", json=sent)
                assert resp.status_code == 404, resp.text  # before the body is looked at
                assert resp.json()["error"]["code"] == "not_found"

        bad: list[tuple[Any, str]] = [
            ({"style": "poem"}, "body.style"),
            ({"language": "xx"}, "body.language"),
            ({"language": "english please"}, "body.language"),
            ({"instruction": "x" * 501}, "body.instruction"),
            ({"instruction": 5}, "body.instruction"),
            ({"prompt": "you are a pirate"}, "body.prompt"),
            (None, "body"),
        ]
        for body, where in bad:
            resp = await owner.post(base + "/resummarize", json=body)
            assert resp.status_code == 422, (where, resp.text)
            error = resp.json()["error"]
            assert error["code"] == "invalid_request" and where in error["message"], (where, error)
        ru = await owner.post(
            base + "/resummarize", json={"instruction": "ж" * 501}, headers={"Accept-Language": "ru"}
        )
        assert ru.status_code == 422
        assert ru.json()["error"]["message"].startswith("body.instruction: неверное значение (")
        await asyncio.sleep(0.1)
        assert script.calls["summarizer"] == summarized  # nothing was run
        assert (await owner.get(base)).json()["run"] == "upload"

        # 500 characters (Cyrillic too), control characters dropped, "auto" = the transcript's
        wish = "ж" * 499 + "\x07"
        ok = await owner.post(base + "/resummarize", json={"instruction": wish, "language": "auto"})
        assert ok.status_code == 202, ok.text
        done = await wait_state(owner, job["id"], TERMINAL)
        assert done["state"] == "done" and done["instruction"] == "ж" * 499
        asked = script.requests["summarizer"][-1]
        assert asked.instruction == "ж" * 499 and asked.language == ""
        assert asked.style == common_pb2.STYLE_MEETING  # the job's style when none is given


async def test_a_failed_run_keeps_the_konspekt_before_and_may_be_asked_again(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    script = stages.script
    app = create_app(gateway_settings(stages.target), bucket_s3)
    async with app.router.lifespan_context(app), client_for(app, OWNER) as owner:
        job = await wait_state(owner, (await upload(owner, b"video", NAME))["id"], TERMINAL)
        base = f"/api/v1/jobs/{job['id']}"
        prefix = f"jobs/{job['id']}/"
        before = (await owner.get(base + "/konspekt")).json()

        # a note (its code in the error's ErrorInfo), as the summarizer sends its reasons
        script.fail["summarizer"] = (grpc.StatusCode.FAILED_PRECONDITION, Note("transcript_empty"))
        assert (await owner.post(base + "/resummarize", json={"instruction": WISH})).status_code == 202
        failed = await wait_state(owner, job["id"], TERMINAL)
        assert failed["state"] == "failed" and failed["failed_stage"] == "summarizer"
        assert stage(failed, "summarizer")["status"] == "failed"
        assert "the transcript is empty" in failed["error"]
        # the konspekt before and its documents are still there
        assert (await owner.get(base + "/konspekt")).json() == before
        assert failed["files"] == job["files"] and failed["konspekt_version"] == 1
        assert (await owner.get(base + "/files/konspekt.docx")).status_code == 200
        record = json.loads(bucket_store.get_bytes(prefix + "job.json"))
        claimed = {prefix + "job.json", prefix + "lease.json", *record["files"].values()}
        assert set(bucket_store.list_keys(prefix)) == claimed

        del script.fail["summarizer"]
        assert (await owner.post(base + "/resummarize", json={"instruction": WISH})).status_code == 202
        done = await wait_state(owner, job["id"], TERMINAL)
        assert done["state"] == "done" and done["error"] == "" and done["konspekt_version"] == 2
        assert [r["state"] for r in done["runs"]] == ["done", "failed"]
        # the failed run's error keeps its note, and says it in the page's language like the job did
        ru = {"Accept-Language": "ru"}
        failed_ru = (await owner.get(base, headers=ru)).json()["runs"][-1]
        assert failed_ru["error"] == failed["error"] and failed_ru["error_notice"] == failed["error_notice"]
        assert failed["error_notice"]["code"] == "transcript_empty"
        assert failed_ru["error_text"] == "расшифровка пустая"
        assert failed_ru["failed_stage_text"] and failed_ru["failed_stage_text"] != "summarizer"
        assert done["runs"][-1]["error_text"] == failed["error_text"] == "the transcript is empty"
        assert done["error_notice"] is None  # the new run's own error is cleared with its text
        assert (await owner.get(base + "/konspekt")).json()["title"] == f"Weekly sync ({WISH})"

        # a job with no transcript (its ASR failed) cannot be summarized again
        script.fail["asr"] = (grpc.StatusCode.INVALID_ARGUMENT, "no audio")
        broken = await wait_state(owner, (await upload(owner, b"video", NAME))["id"], TERMINAL)
        assert broken["state"] == "failed"
        resp = await owner.post(f"/api/v1/jobs/{broken['id']}/resummarize", json={})
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "not_ready"


async def test_openapi_documents_resummarize(stages: FakeStages, bucket_s3: S3Settings) -> None:
    app = create_app(gateway_settings(stages.target), bucket_s3)
    async with app.router.lifespan_context(app), client_for(app, OWNER) as client:
        doc = (await client.get("/openapi.json")).json()
    post = doc["paths"]["/api/v1/jobs/{job_id}/resummarize"]["post"]
    assert post["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobOut")
    assert {"404", "409", "422"} <= set(post["responses"])
    body = doc["components"]["schemas"]["ResummarizeIn"]["properties"]
    assert set(body) == {"style", "language", "instruction"}
    assert body["instruction"]["maxLength"] == 500
    job = doc["components"]["schemas"]["JobOut"]["properties"]
    assert {"run", "runs", "konspekt_language", "instruction", "resummarized_at"} <= set(job)
