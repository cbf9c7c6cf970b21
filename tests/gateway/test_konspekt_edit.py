"""Editing a konspekt (issue 14, part 2): PUT /api/v1/jobs/<id>/konspekt validates, has the
renderer stage make the konspekt's documents again, keeps the previous version, survives a
restart, and is its owner's alone — against a real S3 server and the fake stages."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt.v1 import renderer_pb2
from konspekt_gateway.app import create_app
from tests.gateway.conftest import TERMINAL, client_for, gateway_settings, upload, wait_state
from tests.gateway.fake_stages import FakeStages, rendered

pytestmark = pytest.mark.anyio

OWNER = "owner-of-the-edit-0123456789"
OTHER = "another-owner-0123456789abc"
NAME = "Совещание.mp4"


def edited(konspekt: dict[str, Any]) -> dict[str, Any]:
    """The GET's JSON with a new title, another owner, a key point removed, a decision added."""
    body: dict[str, Any] = json.loads(json.dumps(konspekt))
    body["title"] = "Weekly sync, corrected"
    body["action_items"][0]["owner"] = "Boris"
    body["action_items"][0]["owner_unconfirmed"] = False
    body["key_points"] = []
    body["decisions"].append({"text": "Move the demo to Tuesday", "at": 2.2, "segment_index": 0})
    return body


async def test_an_edit_is_rendered_again_versioned_and_survives_a_restart(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    settings = gateway_settings(stages.target)
    app = create_app(settings, bucket_s3)
    async with app.router.lifespan_context(app), client_for(app, OWNER) as owner:
        job = await wait_state(owner, (await upload(owner, b"video", NAME))["id"], TERMINAL)
        base = f"/api/v1/jobs/{job['id']}"
        before = (await owner.get(base + "/konspekt")).json()
        original = bucket_store.get_bytes(f"jobs/{job['id']}/konspekt.json")
        old_docx = f"jobs/{job['id']}/out/konspekt.docx"
        assert bucket_store.exists(old_docx)

        resp = await owner.put(base + "/konspekt", json=edited(before))
        assert resp.status_code == 200, resp.text
        saved = resp.json()
        assert saved["title"] == "Weekly sync, corrected"
        assert saved["language"] == before["language"] and saved["style"] == before["style"]
        assert [a["owner"] for a in saved["action_items"]] == ["Boris"]
        assert saved["key_points"] == []
        assert [d["text"] for d in saved["decisions"]] == ["Ship on Friday", "Move the demo to Tuesday"]
        assert (await owner.get(base + "/konspekt")).json() == saved

        # the renderer stage made the konspekt's three documents from the edited konspekt
        request = stages.script.requests["renderer"][-1]
        assert list(request.formats) == [
            renderer_pb2.FORMAT_KONSPEKT_DOCX,
            renderer_pb2.FORMAT_KONSPEKT_TXT,
            renderer_pb2.FORMAT_KONSPEKT_MD,
        ]
        assert request.konspekt.action_items[0].owner == "Boris"
        assert request.output_prefix.key == f"jobs/{job['id']}/out/v2/"
        for name in ("konspekt.docx", "konspekt.txt", "konspekt.md"):
            download = await owner.get(f"{base}/files/{name}")
            assert download.content == rendered(name, NAME, "Weekly sync, corrected"), name
        # the transcript's documents are the first ones
        transcript = await owner.get(f"{base}/files/transcript.srt")
        assert transcript.content == rendered("transcript.srt", NAME, "Weekly sync")

        after = (await owner.get(base)).json()
        assert after["konspekt_version"] == 2 and after["edited_at"]
        assert after["files"] == job["files"]
        # the previous version is kept; the previous documents are gone; nothing unclaimed
        assert bucket_store.get_bytes(f"jobs/{job['id']}/konspekt.v1.json") == original
        assert not bucket_store.exists(old_docx)
        record = json.loads(bucket_store.get_bytes(f"jobs/{job['id']}/job.json"))
        claimed = {f"jobs/{job['id']}/{name}" for name in ("job.json", "lease.json")}
        claimed |= set(record["files"].values())
        assert set(bucket_store.list_keys(f"jobs/{job['id']}/")) == claimed

        # a second edit: version 3, both earlier versions kept
        again = edited(saved) | {"title": "Third"}
        assert (await owner.put(base + "/konspekt", json=again)).status_code == 200
        assert bucket_store.get_bytes(f"jobs/{job['id']}/konspekt.v2.json") == json.dumps(
            saved, ensure_ascii=False, indent=1
        ).encode("utf-8")

    restarted = create_app(settings, bucket_s3)
    async with restarted.router.lifespan_context(restarted), client_for(restarted, OWNER) as owner:
        assert (await owner.get(base + "/konspekt")).json()["title"] == "Third"
        assert (await owner.get(base)).json()["konspekt_version"] == 3
        docx = await owner.get(f"{base}/files/konspekt.docx")
        assert docx.content == rendered("konspekt.docx", NAME, "Third")


async def test_invalid_edits_are_refused_in_the_error_form(stages: FakeStages, bucket_s3: S3Settings) -> None:
    app = create_app(gateway_settings(stages.target), bucket_s3)
    async with app.router.lifespan_context(app), client_for(app, OWNER) as owner:
        job = await wait_state(owner, (await upload(owner, b"video", NAME))["id"], TERMINAL)
        base = f"/api/v1/jobs/{job['id']}"
        good = (await owner.get(base + "/konspekt")).json()
        calls = stages.script.calls["renderer"]
        bad: list[tuple[dict[str, Any], str]] = [
            (good | {"action_items": [{"task": "  ", "owner": "Anna"}]}, "body.action_items.0.task"),
            (good | {"decisions": [{"text": "x", "at": -1}]}, "body.decisions.0.at"),
            (
                good | {"key_points": [{"text": "x", "segment_index": -2}]},
                "body.key_points.0.segment_index",
            ),
            (good | {"title": "t" * 301}, "body.title"),
            (good | {"key_points": [{"text": "x"}] * 201}, "body.key_points"),
            (good | {"owner": "someone"}, "body.owner"),
            (good | {"action_items": [{"task": "x", "due": 5}]}, "body.action_items.0.due"),
            # what a konspekt (int32, UTF-8) cannot hold: found by the API fuzzer as a 500
            (good | {"decisions": [{"text": "x", "segment_index": 2**31}]}, "body.decisions.0.segment_index"),
            (good | {"action_items": [{"task": "x", "owner": "\ud87e"}]}, "body.action_items.0.owner"),
        ]
        for body, where in bad:
            # json.dumps escapes a lone surrogate as "\\ud87e", as a client's JSON may
            resp = await owner.put(
                base + "/konspekt", content=json.dumps(body), headers={"Content-Type": "application/json"}
            )
            assert resp.status_code == 422, (where, resp.text)
            error = resp.json()["error"]
            assert error["code"] == "invalid_request"
            assert where in error["message"], (where, error["message"])
        not_json = await owner.put(
            base + "/konspekt", content=b"{", headers={"Content-Type": "application/json"}
        )
        assert not_json.status_code == 422 and not_json.json()["error"]["code"] == "invalid_request"
        ru = await owner.put(base + "/konspekt", json=bad[0][0], headers={"Accept-Language": "ru"})
        assert ru.json()["error"]["message"].startswith("body.action_items.0.task: неверное значение (")
        assert stages.script.calls["renderer"] == calls  # nothing was rendered
        assert (await owner.get(base + "/konspekt")).json() == good
        assert (await owner.get(base)).json()["konspekt_version"] == 1


async def test_only_the_owner_of_a_done_job_edits_and_a_failed_render_changes_nothing(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    gate = stages.script.gate("summarizer")
    app = create_app(gateway_settings(stages.target), bucket_s3)
    async with (
        app.router.lifespan_context(app),
        client_for(app, OWNER) as owner,
        client_for(app, OTHER) as other,
        client_for(app) as browser,
    ):
        job = await upload(owner, b"video", NAME)
        base = f"/api/v1/jobs/{job['id']}"
        body = {"title": "t", "summary": "s"}
        early = await owner.put(base + "/konspekt", json=body)
        assert early.status_code == 409 and early.json()["error"]["code"] == "not_ready"
        gate.set()
        await wait_state(owner, job["id"], TERMINAL)
        good = (await owner.get(base + "/konspekt")).json()
        for intruder in (other, browser):
            for sent in (body, {"title": 5}, None):
                resp = await intruder.put(base + "/konspekt", json=sent)
                assert resp.status_code == 404, resp.text  # before the body is even looked at
                assert resp.json()["error"]["code"] == "not_found"

        stages.script.fail["renderer"] = (grpc.StatusCode.INVALID_ARGUMENT, "the renderer is broken")
        failed = await owner.put(base + "/konspekt", json=body)
        assert failed.status_code == 503, failed.text
        assert "the renderer is broken" in failed.json()["error"]["message"]
        assert (await owner.get(base + "/konspekt")).json() == good
        assert (await owner.get(base)).json()["konspekt_version"] == 1
