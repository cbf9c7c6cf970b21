"""Two gateway replicas under fire (issue 13, part 1): N jobs (50) uploaded to whichever gateway
is up while one of the two is killed (SIGKILL) or stopped (SIGTERM) every few seconds and
started again under a new name (as a new pod would be). Counts what the issue asks: jobs lost
or failed, uploads to a live gateway that failed, calls of one job to two stages at once (the
fake stages count them), and how many stage calls a job made more than once (the calls its dead
replica had cut). Fake stages (tests/gateway/fake_stages.py: each call takes ``--stage-seconds``),
a fresh SeaweedFS, two ``python -m konspekt_gateway`` processes: little CPU, no models.

    .venv/bin/python bench/gateway_replicas.py [--jobs 50] [--every 4] [--publish]

``--publish`` writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import collections
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
from benchlib import RunInfo, md_table, publish, save

from konspekt.logs import JOB_ID_METADATA
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_devstack import ROOT, Proc, Seaweed, free_port

sys.path.insert(0, str(ROOT))  # the fake stages and the gateway launcher of the tests
from tests.gateway.fake_stages import FakeStages
from tests.gateway.test_process import gateway_env, start_gateway

HEADERS = {"Authorization": "Bearer bench-replicas-0123456789"}
LEASE_SECONDS = 2


class Calls:
    """Every stage call by job (the fake stages' chaos hook); each takes ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.by_job: dict[str, list[str]] = collections.defaultdict(list)

    def __call__(self, stage: str, context: Any) -> None:
        job_id = str(dict(context.invocation_metadata() or ()).get(JOB_ID_METADATA, ""))
        with self.lock:
            self.by_job[job_id].append(stage)
        ends = time.monotonic() + self.seconds
        while time.monotonic() < ends:
            if not context.is_active():
                context.abort(grpc.StatusCode.CANCELLED, "caller went away")
            time.sleep(0.02)


class Replicas:
    """Two gateway slots; each holds a running gateway process, or none while it is down."""

    def __init__(self, s3: S3Settings, target: str, logs: Path) -> None:
        self.s3, self.target, self.logs = s3, target, logs
        self.lock = threading.Lock()  # no upload is under way when a gateway is stopped
        self.up: dict[int, tuple[Proc, str]] = {}
        self.started = 0

    def start(self, slot: int) -> None:
        self.started += 1
        name = f"gateway-{slot}-{self.started}"
        env = gateway_env(
            self.s3,
            self.target,
            free_port(),
            KONSPEKT_GATEWAY_REPLICA=name,
            KONSPEKT_GATEWAY_LEASE_SECONDS=str(LEASE_SECONDS),
            KONSPEKT_GATEWAY_SYNC_SECONDS="0.5",
            KONSPEKT_GATEWAY_CONCURRENT_JOBS="4",
            KONSPEKT_GATEWAY_DRAIN_SECONDS="10",
            KONSPEKT_GATEWAY_OWNER_MAX_JOBS="1000",
            KONSPEKT_GATEWAY_METRICS_PORT="0",
        )
        proc, url = start_gateway(env, self.logs / f"{name}.log")
        with self.lock:
            self.up[slot] = (proc, url)

    def stop(self, slot: int, how: str) -> None:
        with self.lock:
            proc, _url = self.up.pop(slot)
        if how == "kill":
            proc.popen.send_signal(signal.SIGKILL)
            proc.popen.wait()
            proc.log_file.close()
        else:
            proc.stop()

    def close(self) -> None:
        for proc, _url in self.up.values():
            proc.stop()


def run(jobs: int, every: float, stage_seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        seaweed = Seaweed(Path(tmp) / "seaweed").start()
        try:
            env = seaweed.env()
            s3 = S3Settings.model_validate(
                {
                    "endpoint": env["KONSPEKT_S3_ENDPOINT"],
                    "access_key": env["KONSPEKT_S3_ACCESS_KEY"],
                    "secret_key": env["KONSPEKT_S3_SECRET_KEY"],
                    "bucket": "bench-replicas",
                }
            )
            store = ObjectStore(s3)
            store.ensure_bucket(expire_days=None)
            calls = Calls(stage_seconds)
            stages = FakeStages(store)
            stages.script.chaos = calls
            stages.start()
            replicas = Replicas(s3, stages.target, Path(tmp))
            try:
                return _run(replicas, stages, calls, jobs, every)
            finally:
                replicas.close()
                stages.stop()
        finally:
            seaweed.stop()


def _run(replicas: Replicas, stages: FakeStages, calls: Calls, jobs: int, every: float) -> dict[str, Any]:
    replicas.start(0)
    replicas.start(1)
    started = time.monotonic()
    ids: list[str] = []
    failed_uploads: list[str] = []
    stops: list[str] = []
    stop_uploads = threading.Event()

    def upload() -> None:
        with httpx.Client(timeout=30, headers=HEADERS) as client:
            for index in range(jobs):
                with replicas.lock:  # the gateway chosen is up until the upload ends
                    url = random.choice([url for _proc, url in replicas.up.values()])
                    try:
                        resp = client.post(
                            f"{url}/api/v1/jobs", params={"filename": f"job {index}.mp4"}, content=b"video"
                        )
                    except httpx.HTTPError as exc:
                        failed_uploads.append(f"{index}: {exc}")
                        continue
                if resp.status_code == 201:
                    ids.append(resp.json()["id"])
                else:
                    failed_uploads.append(f"{index}: {resp.status_code} {resp.text[:100]}")
                if stop_uploads.wait(random.uniform(0.05, 0.4)):
                    return

    uploader = threading.Thread(target=upload)
    uploader.start()
    done: dict[str, str] = {}
    deadline = time.monotonic() + 300
    slot, round_ = 0, 0
    next_stop = time.monotonic() + every
    with httpx.Client(timeout=30, headers=HEADERS) as client:
        while time.monotonic() < deadline and (uploader.is_alive() or len(done) < len(ids)):
            if time.monotonic() >= next_stop and (uploader.is_alive() or len(done) < len(ids) - 2):
                how = "kill" if round_ % 2 == 0 else "term"
                replicas.stop(slot, how)
                stops.append(f"{how} {slot} at {time.monotonic() - started:.1f} s")
                time.sleep(random.uniform(0.5, 2.0))
                replicas.start(slot)
                slot, round_ = 1 - slot, round_ + 1
                next_stop = time.monotonic() + every
            for job_id in [i for i in ids if i not in done]:
                with replicas.lock:
                    url = random.choice([url for _proc, url in replicas.up.values()])
                try:
                    state = client.get(f"{url}/api/v1/jobs/{job_id}").json()["state"]
                except (httpx.HTTPError, KeyError):
                    continue
                if state in ("done", "failed"):
                    done[job_id] = state
            time.sleep(0.2)
    stop_uploads.set()
    uploader.join()
    wall = time.monotonic() - started
    repeated = {i: made for i, made in calls.by_job.items() if i in ids and len(made) > 5}
    result: dict[str, Any] = {
        "jobs": jobs,
        "uploaded": len(ids),
        "failed_uploads": failed_uploads,
        "done": sum(1 for s in done.values() if s == "done"),
        "failed": sum(1 for s in done.values() if s == "failed"),
        "lost": len(ids) - len(done),
        "overlaps": len(stages.script.overlaps),
        "stops": stops,
        "jobs_with_a_call_made_again": len(repeated),
        "calls_made_again": sum(len(made) - 5 for made in repeated.values()),
        "wall_seconds": round(wall, 1),
        "stage_seconds": calls.seconds,
        "lease_seconds": LEASE_SECONDS,
    }
    return result


def markdown(result: dict[str, Any]) -> str:
    rows: list[list[object]] = [
        ["jobs uploaded (of asked)", f"{result['uploaded']} ({result['jobs']})"],
        ["uploads to a live gateway that failed", len(result["failed_uploads"])],
        ["done / failed / lost", f"{result['done']} / {result['failed']} / {result['lost']}"],
        ["gateways stopped (SIGKILL, SIGTERM alternately)", len(result["stops"])],
        ["one job in two stage calls at once", result["overlaps"]],
        ["jobs with a stage call made again (cut by a stop)", result["jobs_with_a_call_made_again"]],
        ["stage calls made again", result["calls_made_again"]],
        ["wall time", f"{result['wall_seconds']} s"],
    ]
    return (
        f"Two gateway processes on one SeaweedFS, fake stages ({result['stage_seconds']} s a call, "
        f"5 calls a job), leases of {result['lease_seconds']} s; one gateway stopped every few "
        "seconds and started again under a new name ([how](gateway_replicas.py)). The counts are the "
        "point, not the times (the machine may be shared with other work).\n\n"
        + md_table(["", ""], rows, "lr")
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--every", type=float, default=4.0, help="seconds between two stops")
    parser.add_argument("--stage-seconds", type=float, default=0.4)
    parser.add_argument("--publish", action="store_true", help="write the section of bench/RESULTS.md")
    args = parser.parse_args()
    info = RunInfo.now()
    result = run(args.jobs, args.every, args.stage_seconds)
    text = markdown(result)
    save("gateway_replicas", info, result, text)
    if args.publish:
        title = f"## Two gateway replicas, one stopped every {args.every:g} s — `bench/gateway_replicas.py`"
        publish("gateway_replicas.py", f"{title}\n\n{info.markdown()}\n{text}")
    lost = result["lost"] or result["failed"] or result["overlaps"]
    return 0 if not result["failed_uploads"] and not lost else 1


if __name__ == "__main__":
    raise SystemExit(main())
