"""Faults that are about processes, on the real stack (SeaweedFS, the four stages with whisper
base and the 0.5B GGUF, the gateway): a stage killed in the middle of a job, a stage that hangs,
the object store gone for 30 s, a stage told to stop while it works."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from konspekt_devstack import Stack
from konspekt_gateway.jobs import DOWNLOADS
from tests.e2e.test_stack import normalize
from tests.reliability.conftest import assert_keeps_only_what_it_claims
from tests.reliability.stack import (
    TERMINAL,
    freeze,
    kill,
    restart,
    stack_store,
    start_stack,
    temp_files,
    thaw,
    upload,
    wait_for,
    wait_job,
)

pytestmark = pytest.mark.slow

STATE = {
    "audio": "extracting_audio",
    "asr": "transcribing",
    "summarizer": "summarizing",
    "renderer": "rendering",
}
JFK = "ask not what your country can do for you"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run = start_stack(
        tmp_path_factory.mktemp("faults"),
        # a hanging renderer is given up on after 10 s (rendering takes well under a second)
        KONSPEKT_GATEWAY_RENDERER_DEADLINE_BASE="10",
        KONSPEKT_GATEWAY_STAGE_ATTEMPTS="3",
        # a SIGTERMed summarizer may finish the konspekt it writes, however slow the machine
        KONSPEKT_SUMMARIZER_GRACE_SECONDS="300",
    )
    yield run
    run.stop()


def check_complete(stack: Stack, client: httpx.Client, job: dict[str, Any], phrase: str) -> None:
    """Done, with every download, the transcript right and no segment twice, and exactly the
    objects the record claims (a retried stage overwrote its output, it did not add one)."""
    assert job["state"] == "done", (job["error"], job["attempts"], job["message"])
    assert job["files"] == list(DOWNLOADS)
    transcript = client.get(f"/api/v1/jobs/{job['id']}/files/transcript.json").json()
    assert phrase in normalize(" ".join(s["text"] for s in transcript["segments"]))
    assert [s["index"] for s in transcript["segments"]] == list(range(len(transcript["segments"])))
    starts = [s["start"] for s in transcript["segments"]]
    assert starts == sorted(starts)
    files = assert_keeps_only_what_it_claims(stack_store(stack), job["id"])
    assert set(files) == {"upload", "audio", "transcript", "konspekt", *DOWNLOADS}


def test_every_stage_killed_mid_job_is_retried_once_it_is_back(
    stack: Stack, client: httpx.Client, testdata: Path
) -> None:
    """One job, and each of the four stage processes SIGKILLed while the job's call is in it,
    down 3 s, then started again. The summarizer is killed while it works (after its first
    progress report: gRPC cannot retry that alone, the gateway does); audio, ASR and the
    renderer answer too fast for that, so each is frozen (SIGSTOP) before the job gets there,
    the call reaches it and waits, then it is killed (gRPC's retry policy retries the call)."""
    freeze(stack, "audio")
    job = upload(client, testdata / "video" / "jfk_en_11s.mp4")
    logs: dict[str, tuple[Path, int]] = {}

    def cut(stage: str, then_freeze: str | None) -> None:
        working = stage == "summarizer"
        wait_job(
            client,
            job["id"],
            lambda j: j["state"] == STATE[stage] and (not working or j["progress"] > 0),
            f"{stage} at work",
        )
        time.sleep(0.5 if working else 1.0)  # the call is under way (frozen: sent, unanswered)
        log = stack.procs[stage].log_path
        kill(stack, stage)
        logs[stage] = (log, log.stat().st_size)
        if then_freeze:
            freeze(stack, then_freeze)
        time.sleep(3)
        restart(stack, stage)

    cut("audio", then_freeze="asr")
    cut("asr", then_freeze=None)
    cut("summarizer", then_freeze="renderer")
    cut("renderer", then_freeze=None)
    done = wait_for(client, job["id"], TERMINAL)
    check_complete(stack, client, done, JFK)
    for stage, (log, restarted_at) in logs.items():  # the new process did the job's call
        assert done["id"] in log.read_bytes()[restarted_at:].decode(), stage
    assert done["attempts"]["summarizer"] == 2, done["attempts"]  # the cut call, then the new one
    # the others were retried inside the call, by the service config's retry policy
    assert (done["attempts"]["probe"], done["attempts"]["asr"], done["attempts"]["renderer"]) == (1, 1, 1)


def test_a_hanging_stage_hits_its_deadline_and_the_job_fails_with_a_reason(
    stack: Stack, client: httpx.Client, testdata: Path
) -> None:
    """A renderer that stops answering (SIGSTOP) for good: three 10 s deadlines, then a reason."""
    freeze(stack, "renderer")
    try:
        job = upload(client, testdata / "bad" / "silence_20s.mp4")
        failed = wait_for(client, job["id"], TERMINAL)
    finally:
        thaw(stack, "renderer")
    assert failed["state"] == "failed"
    assert failed["failed_stage"] == "renderer"
    assert failed["error"] == "the document rendering stage did not finish within 10 s (tried 3 times)"
    assert failed["attempts"]["renderer"] == 3
    ru = client.get(f"/api/v1/jobs/{job['id']}", headers={"Accept-Language": "ru"}).json()
    assert ru["error_text"] == "этап «подготовка документов» не завершился за 10 с (попыток: 3)"
    # the renderer answers again: the next job is fine
    again = wait_for(client, upload(client, testdata / "bad" / "silence_20s.mp4")["id"], TERMINAL)
    assert again["state"] == "done", again


def test_the_object_store_down_for_30_s_makes_jobs_wait_not_fail(
    stack: Stack, client: httpx.Client, testdata: Path
) -> None:
    """SeaweedFS is killed while one job is transcribed and another waits; /readyz says the
    store is down, uploads get 503; 30 s later it is started again and both jobs finish."""
    assert stack.seaweed is not None and stack.seaweed.proc is not None
    first = upload(client, testdata / "video" / "jfk_en_11s.mp4")
    second = upload(client, testdata / "video" / "short_ru_6s.mov")
    wait_job(client, first["id"], lambda j: j["state"] == "transcribing", "transcribing")
    stack.seaweed.proc.kill()
    stack.seaweed.proc.log_file.close()
    down_since = time.monotonic()
    try:
        ready = client.get("/readyz", headers={"Accept-Language": "ru"})
        assert ready.status_code == 503
        assert ready.json()["store"] == "unreachable"
        assert "хранилище" in ready.json()["error"]["message"] or "object store" in ready.text
        refused = client.post(
            "/api/v1/jobs",
            params={"filename": "a.mp4"},
            content=b"x" * 1000,
            headers={"Accept-Language": "ru"},
        )
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == {
            "code": "unavailable",
            "message": "хранилище недоступно; попробуйте позже",
        }
        seen = set()
        while time.monotonic() - down_since < 30:
            for job in (first, second):
                state = client.get(f"/api/v1/jobs/{job['id']}", headers={"Accept-Language": "ru"}).json()
                assert state["state"] not in TERMINAL, state  # waiting, not failed
                seen.add((state["message"], state["message_text"]))
            time.sleep(1)
        assert ("waiting for the object store", "ждёт восстановления хранилища") in seen, seen
    finally:
        stack.seaweed.start()
    assert client.get("/readyz").status_code == 200
    for job, phrase in ((first, JFK), (second, "бригада")):
        check_complete(stack, client, wait_for(client, job["id"], TERMINAL), phrase)


def test_sigterm_drains_a_stage_reporting_not_serving_until_its_call_ends(
    stack: Stack, client: httpx.Client, testdata: Path
) -> None:
    """The summarizer gets SIGTERM while it writes a konspekt: health says NOT_SERVING while
    that call finishes (the job completes with one try), then the process exits."""
    job = upload(client, testdata / "video" / "jfk_en_11s.mp4")
    wait_job(client, job["id"], lambda j: j["state"] == "summarizing" and j["progress"] > 0, "summarizing")
    proc = stack.procs["summarizer"]
    address = f"127.0.0.1:{stack.ports['summarizer']}"
    statuses: list[str] = []
    done = threading.Event()

    def watch() -> None:
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while not done.is_set():
                try:
                    resp = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    statuses.append(health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status))
                except grpc.RpcError as exc:
                    statuses.append(exc.code().name)
                time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(0.3)
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(300) == 0  # the grace this stack gives the summarizer
    done.set()
    watcher.join()
    restart(stack, "summarizer")
    finished = wait_for(client, job["id"], TERMINAL)
    check_complete(stack, client, finished, JFK)
    assert finished["attempts"]["summarizer"] == 1  # the call in flight was allowed to end
    # SERVING, then NOT_SERVING for the whole drain, then nothing listens (UNAVAILABLE)
    assert statuses[0] == "SERVING", statuses
    draining = statuses.index("NOT_SERVING")
    assert "SERVING" not in statuses[draining:], statuses
    assert set(statuses[draining:]) <= {"NOT_SERVING", "UNAVAILABLE"}, statuses


def test_no_temp_files_are_left_by_the_stages(stack: Stack, temp_at_start: set[str]) -> None:
    """Runs last in this module: every call above, the cut ones included, cleaned up after
    itself (the SIGKILLed processes were killed before or after their temp files' lifetime)."""
    assert temp_files(stack) == temp_at_start
