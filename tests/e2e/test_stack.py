"""The whole service as a user runs it: SeaweedFS, the four real stages with the default
models, the gateway — all as processes on loopback ports; a video goes in over HTTP."""

from __future__ import annotations

import io
import json
import re
import signal
import time
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docx
import httpx
import pytest

from konspekt.v1 import asr_pb2, audio_pb2, renderer_pb2, summarizer_pb2
from konspekt_devstack import STAGES, Stack
from tests.scrape import Scrape, scrape

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


def wait_job(
    client: httpx.Client,
    job_id: str,
    check: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 600,
    poll: float = 0.05,
) -> dict[str, Any]:
    """Poll the job until ``check(job)`` holds; fail at once if it ends without that."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = client.get(f"/api/v1/jobs/{job_id}")
        if resp.status_code == 200:
            job = resp.json()
            if check(job):
                return job
            if job["state"] in TERMINAL:
                break
        time.sleep(poll)
    raise AssertionError(f"job {job_id} never reached {what} in {timeout} s; last seen: {job}")


def wait_for(client: httpx.Client, job_id: str, states: set[str], timeout: float = 600) -> dict[str, Any]:
    """Poll the job until its state is one of ``states``."""
    return wait_job(client, job_id, lambda job: job["state"] in states, str(sorted(states)), timeout, 0.5)


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


GRPC_SERVICES = {
    "audio": audio_pb2.DESCRIPTOR.services_by_name["AudioService"].full_name,
    "asr": asr_pb2.DESCRIPTOR.services_by_name["AsrService"].full_name,
    "summarizer": summarizer_pb2.DESCRIPTOR.services_by_name["SummarizerService"].full_name,
    "renderer": renderer_pb2.DESCRIPTOR.services_by_name["RendererService"].full_name,
}
RUNNING = ("extracting_audio", "transcribing", "summarizing", "rendering")


def scrape_all(stack: Stack) -> dict[str, Scrape]:
    return {name: scrape(stack.metrics_url(name)) for name in (*STAGES, "gateway")}


def log_lines(stack: Stack, name: str) -> list[dict[str, Any]]:
    """The JSON lines of a service's log (a line cut by a killed process is skipped)."""
    entries = []
    for line in (stack.run_dir / f"{name}.log").read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def test_metrics_move_and_the_job_id_follows_the_job(
    stack: Stack, client: httpx.Client, testdata: Path
) -> None:
    """Every service's /metrics, scraped before, during and after a real job; the job's id
    in the log lines of every service (the summarizer's generation thread included)."""
    video = testdata / "video" / "jfk_en_11s.mp4"
    before = scrape_all(stack)
    for stage in STAGES:
        assert before[stage].value("konspekt_stage_serving", grpc_service=GRPC_SERVICES[stage]) == 1
    job = upload(client, video)
    seen_running = seen_in_flight = 0.0
    deadline = time.monotonic() + 600
    while (state := client.get(f"/api/v1/jobs/{job['id']}").json()["state"]) not in TERMINAL:
        assert time.monotonic() < deadline, f"the job is still {state} after 600 s"
        during = scrape_all(stack)
        seen_running = max(
            seen_running, sum(during["gateway"].value("konspekt_gateway_jobs", state=s) for s in RUNNING)
        )
        seen_in_flight = max(seen_in_flight, *(during[s].value("konspekt_rpc_in_flight") for s in STAGES))
        time.sleep(0.2)
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "done"
    after = scrape_all(stack)
    assert seen_running >= 1, "the gateway never reported the job as running"
    assert seen_in_flight >= 1, "no stage ever reported a call in flight"

    def moved(name: str, metric: str, **labels: str) -> float:
        return after[name].value(metric, **labels) - before[name].value(metric, **labels)

    calls = {"audio": "Extract", "asr": "Transcribe", "summarizer": "Summarize", "renderer": "Render"}
    for stage, method in calls.items():
        service = GRPC_SERVICES[stage]
        ok = moved(
            stage, "konspekt_rpc_requests_total", grpc_service=service, grpc_method=method, grpc_code="OK"
        )
        assert ok == 1, stage
        assert (
            moved(stage, "konspekt_rpc_duration_seconds_count", grpc_service=service, grpc_method=method) == 1
        )
        assert after[stage].value("konspekt_rpc_in_flight") == 0, stage
        assert after[stage].value("process_resident_memory_bytes") > 0, stage
    assert 10 < moved("audio", "konspekt_audio_media_seconds_total") < 12  # an 11 s recording
    assert 5 < moved("asr", "konspekt_asr_audio_seconds_total") < 12
    assert moved("asr", "konspekt_asr_real_time_factor_count") == 1
    assert moved("summarizer", "konspekt_summarizer_generated_tokens_total") > 10
    assert moved("summarizer", "konspekt_summarizer_prompt_tokens_total") > 10
    assert moved("summarizer", "konspekt_summarizer_model_calls_total") >= 1
    assert moved("summarizer", "konspekt_summarizer_tokens_per_second_count") == 1
    assert moved("summarizer", "konspekt_summarizer_tokens_per_second_sum") > 0
    for name in ("konspekt.docx", "konspekt.txt", "transcript.srt", "transcript.vtt", "transcript.json"):
        assert moved("renderer", "konspekt_renderer_files_total", format=name) == 1, name
    assert moved("gateway", "konspekt_gateway_jobs_finished_total", state="done") == 1
    assert moved("gateway", "konspekt_gateway_upload_bytes_total") == video.stat().st_size
    assert 10 < moved("gateway", "konspekt_gateway_media_seconds_total") < 12
    for stage in STAGES:
        assert moved("gateway", "konspekt_gateway_stage_duration_seconds_count", stage=stage) == 1, stage
        assert moved("gateway", "konspekt_gateway_stage_real_time_factor_sum", stage=stage) > 0, stage
    assert moved("gateway", "konspekt_gateway_http_requests_total", method="POST", route="/api/v1/jobs") == 1

    # one job, followed through every service's JSON log lines by its id
    for name in (*STAGES, "gateway"):
        mine = [line for line in log_lines(stack, name) if line.get("job_id") == job["id"]]
        assert mine, f"no {name} log line carries job {job['id']}"
        assert {line["service"] for line in mine} == {name}
    generation = [line for line in log_lines(stack, "summarizer") if line["logger"].endswith(".konspekt")]
    assert generation and all(line.get("job_id") for line in generation), "the generation thread's lines"
