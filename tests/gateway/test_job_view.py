"""The job view (issue 14): its page, the recording served with range requests and the
transcript, each for the job's owner only, against a real S3 server and the fake stages."""

from __future__ import annotations

import json

import pytest

from konspekt.settings import S3Settings
from konspekt_gateway.app import create_app
from konspekt_gateway.media import (
    FALLBACK_TYPE,
    ByteRange,
    RangeNotSatisfiable,
    parse_range,
    playable_type,
    player_kind,
)
from tests.gateway.conftest import TERMINAL, client_for, gateway_settings, upload, wait_state
from tests.gateway.fake_stages import FakeStages

pytestmark = pytest.mark.anyio

OWNER = "owner-of-the-view-0123456789"
OTHER = "another-owner-0123456789abc"
#: A recording whose every byte says where it is (a wrong offset cannot go unnoticed).
DATA = bytes(range(256)) * 400 + b"tail"
SIZE = len(DATA)


async def test_media_serves_range_requests_to_the_owner(stages: FakeStages, bucket_s3: S3Settings) -> None:
    app = create_app(gateway_settings(stages.target), bucket_s3)
    async with app.router.lifespan_context(app), client_for(app, OWNER) as owner:
        job = await wait_state(owner, (await upload(owner, DATA, "запись.mp4"))["id"], TERMINAL)
        media = job["links"]["media"]
        assert media == f"/api/v1/jobs/{job['id']}/media"

        whole = await owner.get(media)
        assert whole.status_code == 200
        assert whole.content == DATA
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["content-length"] == str(SIZE)
        assert whole.headers["content-type"] == "video/mp4"
        assert "sandbox" in whole.headers["content-security-policy"]

        cases = {
            "bytes=0-99": (0, 99),
            "bytes=1000-": (1000, SIZE - 1),
            "bytes=-4": (SIZE - 4, SIZE - 1),
            "bytes=5-999999999": (5, SIZE - 1),  # a last byte past the end is clipped
            f"bytes={SIZE - 1}-{SIZE - 1}": (SIZE - 1, SIZE - 1),
        }
        for header, (first, last) in cases.items():
            part = await owner.get(media, headers={"Range": header})
            assert part.status_code == 206, (header, part.text)
            assert part.headers["content-range"] == f"bytes {first}-{last}/{SIZE}", header
            assert part.headers["content-length"] == str(last - first + 1)
            assert part.content == DATA[first : last + 1], header
        assert (await owner.get(media, headers={"Range": "bytes=-4"})).content == b"tail"

        for header in (f"bytes={SIZE}-", f"bytes={SIZE + 10}-{SIZE + 20}", "bytes=-0"):
            refused = await owner.get(media, headers={"Range": header})
            assert refused.status_code == 416, (header, refused.text)
            assert refused.headers["content-range"] == f"bytes */{SIZE}"
            assert refused.json()["error"]["code"] == "range_not_satisfiable"

        # what a server may ignore gives the whole file: several ranges, other units, nonsense
        for header in ("bytes=0-1,5-6", "items=0-1", "bytes=x-y", "bytes=9-3"):
            ignored = await owner.get(media, headers={"Range": header})
            assert ignored.status_code == 200, header
            assert ignored.content == DATA

        ru = await owner.get(media, headers={"Range": f"bytes={SIZE}-", "Accept-Language": "ru"})
        assert ru.json()["error"]["message"] == f"запрошенный диапазон вне записи ({SIZE} байт)"


async def test_another_owner_gets_404_on_the_page_media_and_transcript(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    app = create_app(gateway_settings(stages.target), bucket_s3)
    async with (
        app.router.lifespan_context(app),
        client_for(app, OWNER) as owner,
        client_for(app, OTHER) as other,
        client_for(app) as browser,  # a cookie of its own: another owner too
    ):
        job = await wait_state(owner, (await upload(owner, DATA, "meeting.mp4"))["id"], TERMINAL)
        paths = [f"/jobs/{job['id']}", job["links"]["media"], job["links"]["transcript"]]
        for intruder in (other, browser):
            for path in paths:
                for headers in ({}, {"Range": "bytes=0-9"}, {"Range": f"bytes={SIZE}-"}):
                    resp = await intruder.get(path, headers=headers)
                    assert resp.status_code == 404, (path, headers, resp.text)
                    assert resp.json()["error"]["code"] == "not_found"
                    assert "range" not in resp.headers.get("content-range", "")
        for path in paths:
            assert (await owner.get(path)).status_code == 200, path


async def test_the_page_plays_the_recording_and_the_transcript_is_json(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    app = create_app(gateway_settings(stages.target), bucket_s3)
    async with app.router.lifespan_context(app), client_for(app) as browser:
        await browser.get("/")  # the first response sets the owner cookie
        job = await wait_state(browser, (await upload(browser, DATA, "Совещание.mp4"))["id"], TERMINAL)
        assert job["links"]["page"] == f"/jobs/{job['id']}"
        page = await browser.get(job["links"]["page"], headers={"Accept-Language": "ru"})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-store"
        html = page.text
        media = f'src="/api/v1/jobs/{job["id"]}/media"'
        assert f'<video id="player" controls preload="metadata" playsinline {media}>' in html
        assert "Расшифровка" in html and "Совещание.mp4" in html and '<html lang="ru">' in html
        assert "/static/job.js" in html
        english = await browser.get(job["links"]["page"] + "?lang=en")
        assert "Transcript" in english.text and english.cookies.get("konspekt_lang") == "en"

        transcript = await browser.get(job["links"]["transcript"])
        assert transcript.status_code == 200
        data = json.loads(transcript.content)
        assert [(s["start"], s["end"], s["text"]) for s in data["segments"]] == [(0.0, 2.5, "Hello, team.")]

        # an audio file gets an <audio> player
        audio = await browser.post(
            "/api/v1/jobs",
            params={"filename": "call.flac"},
            content=DATA,
            headers={"Content-Type": "audio/flac"},
        )
        assert audio.status_code == 201
        assert '<audio id="player"' in (await browser.get(audio.json()["links"]["page"])).text


async def test_an_upload_that_claims_to_be_a_page_is_served_as_media(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    app = create_app(gateway_settings(stages.target), bucket_s3)
    async with app.router.lifespan_context(app), client_for(app, OWNER) as owner:
        resp = await owner.post(
            "/api/v1/jobs",
            params={"filename": "clip.webm"},
            content=b"<script>alert(1)</script>",
            headers={"Content-Type": "text/html"},
        )
        assert resp.status_code == 201, resp.text
        media = await owner.get(resp.json()["links"]["media"])
        assert media.headers["content-type"] == "video/webm"
        assert media.headers["x-content-type-options"] == "nosniff"


async def test_the_transcript_is_409_until_recognised(stages: FakeStages, bucket_s3: S3Settings) -> None:
    gate = stages.script.gate("asr")
    app = create_app(gateway_settings(stages.target), bucket_s3)
    async with app.router.lifespan_context(app), client_for(app, OWNER) as owner:
        job = await upload(owner, DATA, "slow.mp4")
        assert job["links"]["transcript"] is None
        resp = await owner.get(f"/api/v1/jobs/{job['id']}/transcript")
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "not_ready"
        # the recording can be watched while it is being processed
        assert (await owner.get(job["links"]["media"], headers={"Range": "bytes=0-0"})).content == DATA[:1]
        gate.set()
        await wait_state(owner, job["id"], TERMINAL)


def test_parse_range() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("", 10) is None
    assert parse_range("bytes=0-0", 10) == ByteRange(0, 0)
    assert parse_range("bytes=2-", 10) == ByteRange(2, 9)
    assert parse_range("bytes=-3", 10) == ByteRange(7, 9)
    assert parse_range("bytes=-30", 10) == ByteRange(0, 9)
    assert parse_range(" Bytes = 1 - 4 ", 10) == ByteRange(1, 4)
    assert parse_range("bytes=1-4", 10).content_range(10) == "bytes 1-4/10"  # type: ignore[union-attr]
    for ignored in ("bytes=-", "bytes=1-2,4-5", "lines=1-2", "bytes=5-2", "bytes=a-"):
        assert parse_range(ignored, 10) is None, ignored
    for refused, size in (("bytes=10-", 10), ("bytes=-0", 10), ("bytes=0-", 0), ("bytes=-5", 0)):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(refused, size)


def test_playable_type_and_player_kind() -> None:
    assert playable_type("video/mp4", "a.mp4") == "video/mp4"
    assert playable_type("audio/ogg; codecs=opus", "a") == "audio/ogg"
    assert playable_type("text/html", "a.mp4") == "video/mp4"
    assert playable_type("application/octet-stream", "a.mp3") == "audio/mpeg"
    assert playable_type("text/html", "page.html") == FALLBACK_TYPE
    assert playable_type("video/x<script>", "x") == FALLBACK_TYPE
    assert player_kind("video/mp4", "a.mp4", True) == "video"
    assert player_kind("application/octet-stream", "a.flac", None) == "audio"
    assert player_kind("video/mp4", "a.mp4", False) == "audio"
