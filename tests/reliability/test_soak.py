"""The soak: 100 short jobs while faults are injected at random points, then the count.

The gateway runs as its own process (uvicorn); each stage is a fake on its own real gRPC server;
gateway and stages reach the real S3 server through a proxy that can drop it. While the jobs
are uploaded and processed, one fault at a time, at random: a stage server stops abruptly
(calls cut) and comes back on its port; the object store goes away and comes back; the gateway
is SIGKILLed and started again. Every stage call may also, at random, answer UNAVAILABLE or
INTERNAL or hang until its deadline. Then the faults stop and every accepted job must end.

Counted: completed, failed (with reasons), lost (accepted but gone or never ending: must be 0),
duplicated outputs (objects a job does not claim, results of another job, or one job processed
by two calls at once: must be 0). The figures go to test-artifacts/reliability/soak.json.

KONSPEKT_SOAK_JOBS and KONSPEKT_SOAK_SEED change the size and the random draw.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from konspekt.errors import NotFound
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_devstack import ROOT, Proc, free_port
from konspekt_gateway.jobs import DOWNLOADS
from konspekt_gateway.lease import LEASE
from tests.gateway.fake_stages import STAGES, FakeStages, Script, rendered
from tests.gateway.test_process import gateway_env, start_gateway
from tests.reliability.proxy import TcpProxy

pytestmark = pytest.mark.soak

JOBS = int(os.environ.get("KONSPEKT_SOAK_JOBS", "100"))
SEED = int(os.environ.get("KONSPEKT_SOAK_SEED", "20261125"))
#: Chance that a stage call answers UNAVAILABLE, INTERNAL, or hangs until its deadline.
P_UNAVAILABLE, P_INTERNAL, P_HANG = 0.06, 0.03, 0.02
#: Deadline of every stage call (the fakes answer in milliseconds).
DEADLINE = 2.0
TOKEN = "soak-token-0123456789abcdef"
REPORT = ROOT / "test-artifacts" / "reliability" / "soak.json"


@dataclass
class Chaos:
    """The random faults: per call (a Script.chaos hook) and per process (a thread)."""

    rng: random.Random
    on: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    faults: collections.Counter[str] = field(default_factory=collections.Counter)

    def roll(self) -> float:
        with self.lock:
            return self.rng.random()

    def call(self, stage: str, context: grpc.ServicerContext) -> None:
        if not self.on:
            return
        draw = self.roll()
        if draw < P_UNAVAILABLE:
            self.calls["unavailable"] += 1
            context.abort(grpc.StatusCode.UNAVAILABLE, "chaos: the service is restarting")
        elif draw < P_UNAVAILABLE + P_INTERNAL:
            self.calls["internal"] += 1
            context.abort(grpc.StatusCode.INTERNAL, "chaos: internal error")
        elif draw < P_UNAVAILABLE + P_INTERNAL + P_HANG:
            self.calls["hang"] += 1
            while context.is_active():
                time.sleep(0.02)
            context.abort(grpc.StatusCode.CANCELLED, "chaos: gave up")


class Soak:
    """Owns the processes and servers the faults are done to."""

    def __init__(self, s3: S3Settings, log_dir: Path, chaos: Chaos) -> None:
        self.proxy = TcpProxy(s3.endpoint).start()
        self.s3 = s3.model_copy(update={"endpoint": self.proxy.endpoint})
        self.store = ObjectStore(self.s3, timeout=5)
        self.script = Script(chaos=chaos.call)
        self.stages = {
            stage: FakeStages(self.store, self.script, services={stage}).start() for stage in STAGES
        }
        self.ports = {stage: fake.port for stage, fake in self.stages.items()}
        targets = {f"KONSPEKT_GATEWAY_{stage.upper()}_TARGET": f.target for stage, f in self.stages.items()}
        deadlines = {f"KONSPEKT_GATEWAY_{stage.upper()}_DEADLINE_BASE": str(DEADLINE) for stage in STAGES}
        self.env = gateway_env(
            self.s3,
            self.stages["audio"].target,
            free_port(),
            **targets,
            **deadlines,
            KONSPEKT_GATEWAY_PROBE_DEADLINE=str(DEADLINE),
            KONSPEKT_GATEWAY_RETRY_BACKOFF_SECONDS="0.05",
            KONSPEKT_GATEWAY_LOG_LEVEL="WARNING",
        )
        self.log = log_dir / "gateway.log"
        self.gateway: Proc | None = None
        self.url = ""
        self.lock = threading.Lock()  # the gateway is up unless someone holds this

    def start_gateway(self) -> None:
        self.gateway, self.url = start_gateway(self.env, self.log)

    def kill_gateway(self) -> None:
        assert self.gateway is not None
        self.gateway.popen.send_signal(signal.SIGKILL)
        self.gateway.popen.wait()
        self.gateway.log_file.close()

    def crash_stage(self, stage: str) -> None:
        self.stages[stage].stop()

    def restart_stage(self, stage: str) -> None:
        self.stages[stage] = FakeStages(
            self.store, self.script, port=self.ports[stage], services={stage}
        ).start()

    def close(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        for fake in self.stages.values():
            fake.stop()
        self.proxy.close()


def inject(soak: Soak, chaos: Chaos, stop: threading.Event) -> None:
    """One process fault at a time, at random, until ``stop``."""
    rng = random.Random(chaos.roll())
    while not stop.wait(rng.uniform(0.3, 1.5)):
        kind = rng.choice(["stage", "stage", "store", "store", "gateway"])
        chaos.faults[kind] += 1
        if kind == "stage":
            stage = rng.choice(STAGES)
            soak.crash_stage(stage)
            time.sleep(rng.uniform(0.1, 2.0))
            soak.restart_stage(stage)
        elif kind == "store":
            soak.proxy.down()
            time.sleep(rng.uniform(0.3, 3.0))
            soak.proxy.up()
        else:
            with soak.lock:
                soak.kill_gateway()
                time.sleep(rng.uniform(0.0, 1.0))
                soak.start_gateway()


def submit(soak: Soak, client: httpx.Client, index: int, rng: random.Random) -> tuple[str, int, int]:
    """Upload until the gateway says 201, as a well-behaved client: down or busy (503), or past
    the owner's limits (429: the soak's one token has too many jobs waiting or in progress), it
    tries again, after ``Retry-After`` when the answer has one. Returns the job id, how many tries
    it took and how many of them were answered 429."""
    body = f"soak job {index}\n".encode() * rng.randint(1, 4000)
    limited = 0
    for tries in range(1, 1000):
        try:
            with soak.lock:
                url = soak.url
            resp = client.post(
                f"{url}/api/v1/jobs", params={"filename": f"soak-{index:03d}.mp4"}, content=body
            )
        except httpx.HTTPError:
            resp = None
        if resp is not None and resp.status_code == 201:
            return str(resp.json()["id"]), tries, limited
        assert resp is None or resp.status_code in (429, 503), resp.text  # try again
        wait = 0.2
        if resp is not None and resp.status_code == 429:
            limited += 1
            assert resp.json()["error"]["code"] in ("too_many_jobs", "too_many_uploads"), resp.text
            wait = float(resp.headers["Retry-After"])  # a 429 always says when
        elif resp is not None and "Retry-After" in resp.headers:
            wait = float(resp.headers["Retry-After"])
        time.sleep(wait)
    raise AssertionError(f"job {index} was never accepted")


def final_states(soak: Soak, client: httpx.Client, ids: list[str], timeout: float) -> dict[str, Any]:
    """Every job the gateway lists, once each of ``ids`` has ended (or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    jobs: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            listed = client.get(f"{soak.url}/api/v1/jobs").json()["jobs"]
            jobs = {job["id"]: job for job in listed}
            if all(jobs.get(i, {}).get("state") in ("done", "failed") for i in ids):
                break
        time.sleep(0.5)
    return jobs


def stored_problems(store: ObjectStore, job: dict[str, Any]) -> list[str]:
    """Objects under the job's prefix that its record does not claim, claimed ones missing, and
    results whose content is not this job's."""
    problems = []
    prefix = f"jobs/{job['id']}/"
    try:
        record = json.loads(store.get_bytes(prefix + "job.json"))
    except NotFound:
        return ["no record"]
    claimed = {prefix + "job.json", *record["files"].values()}
    # the job's lease (konspekt_gateway.lease) is bookkeeping of the job's own, deleted with it
    keys = set(store.list_keys(prefix)) - {prefix + LEASE}
    problems += [f"unclaimed {key}" for key in sorted(keys - claimed)]
    problems += [f"missing {key}" for key in sorted(claimed - keys)]
    if job["state"] == "done":
        for name in DOWNLOADS:
            data = store.get_bytes(prefix + "out/" + name)
            if data != rendered(name, job["filename"], "Weekly sync"):
                problems.append(f"{name} is not this job's")
    return problems


@pytest.fixture
def soak(bucket_s3: S3Settings, bucket_store: ObjectStore, tmp_path: Path) -> Iterator[tuple[Soak, Chaos]]:
    chaos = Chaos(random.Random(SEED))
    running = Soak(bucket_s3, tmp_path, chaos)
    try:
        running.start_gateway()
        yield running, chaos
    finally:
        running.close()


def test_soak_jobs_under_random_faults_none_lost_none_duplicated(
    soak: tuple[Soak, Chaos], bucket_store: ObjectStore
) -> None:
    runner, chaos = soak
    rng = random.Random(SEED + 1)
    started = time.monotonic()
    stop = threading.Event()
    injector = threading.Thread(target=inject, args=(runner, chaos, stop), daemon=True)
    injector.start()
    accepted: list[str] = []
    upload_tries = 0
    owner_limited = 0
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        try:
            for index in range(JOBS):
                job_id, tries, limited = submit(runner, client, index, rng)
                accepted.append(job_id)
                upload_tries += tries
                owner_limited += limited
                time.sleep(rng.uniform(0.0, 1.0))  # about a minute of faults in all
            time.sleep(3.0)  # faults go on a little while the last jobs run
        finally:
            stop.set()
            injector.join(60)
            chaos.on = False
        assert not injector.is_alive()
        faulty_seconds = time.monotonic() - started
        jobs = final_states(runner, client, accepted, timeout=180)

    states = collections.Counter(jobs.get(i, {}).get("state", "missing") for i in accepted)
    lost = [i for i in accepted if jobs.get(i, {}).get("state") not in ("done", "failed")]
    reasons = collections.Counter(jobs[i]["error"] for i in accepted if i not in lost and jobs[i]["error"])
    problems = {i: p for i in accepted if i not in lost if (p := stored_problems(bucket_store, jobs[i]))}
    unacknowledged = sorted(set(jobs) - set(accepted))  # the gateway died before its 201 went out
    # objects of uploads that never became a job (the gateway died or the store went away
    # mid-upload and the removal failed too): the reaper's to delete, after an hour
    unclaimed = {key.split("/")[1] for key in bucket_store.list_keys("jobs/")} - set(jobs)
    unfinished_uploads = bucket_store.stale_uploads("jobs/")
    retries = sum(max(n - 1, 0) for i in accepted if i not in lost for n in jobs[i]["attempts"].values())
    report = {
        "jobs": JOBS,
        "seed": SEED,
        "completed": states["done"],
        "failed": states["failed"],
        "failure_reasons": dict(reasons),
        "lost": len(lost),
        "duplicated_outputs": len(problems) + len(runner.script.overlaps),
        "jobs_with_stored_problems": problems,
        "calls_of_one_job_at_once": runner.script.overlaps,
        "uploads_taken_but_not_acknowledged": len(unacknowledged),
        "upload_tries": upload_tries,
        "upload_tries_answered_429": owner_limited,
        "objects_of_uploads_that_never_became_jobs": len(unclaimed),
        "unfinished_multipart_uploads": len(unfinished_uploads),
        "process_faults": dict(chaos.faults),
        "call_faults": dict(chaos.calls),
        "stage_calls": dict(runner.script.calls),
        "stage_retries_counted_by_jobs": retries,
        "seconds_under_faults": round(faulty_seconds, 1),
        "seconds_in_all": round(time.monotonic() - started, 1),
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print("\nsoak:", json.dumps(report, indent=1, ensure_ascii=False))

    assert lost == [], f"lost jobs: {[jobs.get(i) for i in lost]}"
    assert problems == {}
    assert runner.script.overlaps == []
    assert states["done"] + states["failed"] == JOBS
    assert states["done"] > 0
    for reason in reasons:  # only exhausted retries of injected faults, each named
        assert reason.endswith("times)") or "chaos" in reason, reason
    assert sum(chaos.faults.values()) > 0 and sum(chaos.calls.values()) > 0
