"""The whole service as a user runs it: SeaweedFS, the four real stages with the default
models, the gateway — all as processes on loopback ports; a video goes in over HTTP."""

from __future__ import annotations

import io
import re
import signal
import time
import unicodedata
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
import httpx
import pytest

from konspekt.devstack import Stack

pytestmark = pytest.mark.slow

TERMINAL = {"done", "failed"}


def normalize(text: str) -> str:
    """Lower case, no [timestamps], no punctuation, single spaces (MANIFEST's "contains" rule)."""
    text = re.sub(r"\[[^\]]*\]", " ", unicodedata.normalize("NFC", text).lower())
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=60) as c:
        yield c


def upload(client: httpx.Client, path: Path, **params: str) -> dict[str, Any]:
    with path.open("rb") as f:
        resp = client.post("/api/v1/jobs", params={"filename": path.name, **params}, content=f)
    assert resp.status_code == 201, resp.text
    job: dict[str, Any] = resp.json()
    return job


def wait_for(client: httpx.Client, job_id: str, states: set[str], timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = client.get(f"/api/v1/jobs/{job_id}")
        if resp.status_code == 200:
            job = resp.json()
            if job["state"] in states:
                return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not reach {states} in {timeout} s; last seen: {job}")


def test_video_becomes_konspekt_and_transcript(client: httpx.Client, testdata: Path) -> None:
    video = testdata / "video" / "Совещание отдела 1.mp4"
    job = upload(client, video)
    done = wait_for(client, job["id"], TERMINAL)
    assert done["state"] == "done", done

    transcript = client.get(f"/api/v1/jobs/{job['id']}/files/transcript.txt")
    assert transcript.status_code == 200
    assert "ask not what your country can do for you" in normalize(transcript.text)
    disposition = transcript.headers["content-disposition"]
    assert urllib.parse.quote("Совещание отдела 1") in disposition

    resp = client.get(f"/api/v1/jobs/{job['id']}/files/konspekt.docx")
    assert resp.status_code == 200
    document = docx.Document(io.BytesIO(resp.content))
    text = "\n".join(p.text for p in document.paragraphs)
    konspekt = client.get(f"/api/v1/jobs/{job['id']}/konspekt").json()
    assert konspekt["title"] and konspekt["title"] in text
    assert konspekt["summary"] and konspekt["summary"][:40] in text

    for name, marker in [("transcript.srt", "-->"), ("transcript.vtt", "WEBVTT"), ("konspekt.txt", "")]:
        resp = client.get(f"/api/v1/jobs/{job['id']}/files/{name}")
        assert resp.status_code == 200, name
        assert marker in resp.text


def test_russian_call_gives_a_russian_konspekt(client: httpx.Client, testdata: Path) -> None:
    job = upload(client, testdata / "video" / "short_ru_6s.mov")
    done = wait_for(client, job["id"], TERMINAL)
    assert done["state"] == "done", done
    transcript = client.get(f"/api/v1/jobs/{job['id']}/files/transcript.json").json()
    assert transcript["language"] == "ru"
    assert "бригада" in normalize(" ".join(s["text"] for s in transcript["segments"]))
    konspekt = client.get(f"/api/v1/jobs/{job['id']}/konspekt").json()
    assert konspekt["language"] == "ru"
    letters = [c for c in konspekt["summary"] if c.isalpha()]
    assert sum("а" <= c.lower() <= "я" or c.lower() == "ё" for c in letters) > 0.6 * len(letters)


def test_video_without_audio_fails_with_the_reason(client: httpx.Client, testdata: Path) -> None:
    job = upload(client, testdata / "bad" / "no_audio_10s.mp4")
    failed = wait_for(client, job["id"], TERMINAL)
    assert failed["state"] == "failed"
    assert "no audio track" in failed["error"]


def test_gateway_restart_resumes_a_running_job(stack: Stack, client: httpx.Client, testdata: Path) -> None:
    job = upload(client, testdata / "video" / "lecture_en_60s.webm", style="lecture")
    wait_for(client, job["id"], {"transcribing", "summarizing", "rendering", *TERMINAL})
    gateway = stack.procs.pop("gateway")
    gateway.popen.send_signal(signal.SIGKILL)
    gateway.popen.wait()
    gateway.log_file.close()
    stack.start_gateway()
    done = wait_for(client, job["id"], TERMINAL)
    assert done["state"] == "done", done
    transcript = client.get(f"/api/v1/jobs/{job['id']}/files/transcript.txt")
    assert "political philosophy" in normalize(transcript.text)
