"""``./dev run`` supervises (issue 16): a process that dies is restarted with backoff and logged,
the rest keeps running, and Ctrl-C still stops everything. Run as the user runs it
(``python -m konspekt_devstack``), with the renderer as the one stage (cheap to start), the
gateway and SeaweedFS."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest

from konspekt.channels import open_channel
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt.v1 import common_pb2, renderer_pb2, renderer_pb2_grpc
from konspekt_devstack import ROOT, STAGE_TOKEN_FILE, STAGES, Proc, Stack, Supervisor, _Watch, free_port
from konspekt_gateway.auth import OWNER_COOKIE, SECRET_KEY_OBJECT
from tests.reliability.stack import SMALL_MODELS, TERMINAL, upload, wait_for, wait_job


class FakePopen:
    def __init__(self) -> None:
        self.returncode: int | None = None
        self.pid = 4242

    def poll(self) -> int | None:
        return self.returncode


class FakeStack:
    """What the supervisor uses of a Stack: one process, "renderer", that the test kills."""

    names = ("renderer",)

    def __init__(self) -> None:
        self.launched = 0
        self.up = True
        self.current = self._new()

    def _new(self) -> Proc:
        return Proc("renderer", FakePopen(), Path("renderer.log"), io.BytesIO())  # type: ignore[arg-type]

    def proc(self, name: str) -> Proc:
        return self.current

    def launch(self, name: str) -> Proc:
        self.launched += 1
        self.current = self._new()
        return self.current

    def ready(self, name: str) -> bool:
        return self.up

    def die(self, code: int = -9) -> None:
        self.current.popen.returncode = code


def test_the_backoff_doubles_up_to_30_s_and_starts_again_after_a_stable_run() -> None:
    stack = FakeStack()
    supervisor = Supervisor(cast(Stack, stack))
    assert [supervisor.backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]
    supervisor._watch = {"renderer": _Watch(started=0.0)}
    t = 100.0
    delays = []
    for _ in range(7):  # it dies at once after each restart: 1, 2, 4 ... 30 s
        stack.die()
        supervisor.check("renderer", t)
        delays.append(supervisor.restarts[-1][2])
        launched = stack.launched
        supervisor.check("renderer", t + delays[-1] - 0.1)
        assert stack.launched == launched  # not before its time
        t += delays[-1]
        supervisor.check("renderer", t)
        assert stack.launched == launched + 1
        supervisor.check("renderer", t + 0.5)  # up and answering again
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    # a run of a minute is stable: the next exit waits 1 s again
    supervisor.check("renderer", t + 61)
    stack.die(1)
    supervisor.check("renderer", t + 62)
    assert supervisor.restarts[-1] == ("renderer", 1, 1.0)


class DevRun:
    """``python -m konspekt_devstack`` in the background, its log, and its child processes."""

    def __init__(self, data: Path, port: int, stages: str = "renderer", **env_vars: str) -> None:
        self.log = data.parent / "devstack.log"
        self.port = port
        env = {k: v for k, v in os.environ.items() if not k.endswith("_METRICS_PORT")}
        env.update(env_vars)
        with open(self.log, "wb") as out:
            args = ["--port", str(port), "--data", str(data), "--stages", stages]
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "konspekt_devstack", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 120.0, after: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text()[after:])
            if found:
                return found
            assert self.proc.poll() is None, f"devstack exited:\n{self.text()}"
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in the log within {timeout} s:\n{self.text()}")

    def children(self) -> dict[str, int]:
        """pid of each child process by name (seaweedfs, renderer, gateway)."""
        pids = []  # each thread's children (the supervisor's thread starts the restarted ones)
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                pids += (task / "children").read_text().split()
        found = {}
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:
                continue
            if cmdline[0].endswith(b"weed"):
                found["seaweedfs"] = int(pid)
            for name in (*STAGES, "gateway"):
                if f"konspekt_{name}".encode() in cmdline:
                    found[name] = int(pid)
        return found

    def kill(self, name: str) -> int:
        pid = self.children()[name]
        os.kill(pid, signal.SIGKILL)
        return pid


@contextlib.contextmanager
def running(run: DevRun) -> Iterator[DevRun]:
    try:
        yield run
    finally:
        _stop(run)


@pytest.fixture
def devrun(tmp_path: Path) -> Iterator[DevRun]:
    with running(DevRun(tmp_path / "run", free_port())) as run:
        yield run


def _stop(run: DevRun) -> None:
    if run.proc.poll() is None:
        children = list(run.children().values())
        run.proc.send_signal(signal.SIGTERM)
        try:
            run.proc.wait(60)
        except subprocess.TimeoutExpired:
            run.proc.kill()
        for pid in children:  # never leave a process behind, whatever went wrong
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def render_once(target: str, token_file: Path) -> None:
    """One Render call with the CLIs' token that ./dev run wrote (konspekt.access)."""
    transcript = common_pb2.Transcript(
        language="en", duration=2.0, segments=[common_pb2.Segment(index=0, start=0, end=2, text="Hello.")]
    )
    request = renderer_pb2.RenderRequest(transcript=transcript, formats=[renderer_pb2.FORMAT_TRANSCRIPT_SRT])
    with open_channel(target, token=token_file.read_text().strip()) as channel:
        response = renderer_pb2_grpc.RendererServiceStub(channel).Render(request, timeout=20)
    assert response.files[0].inline.decode().startswith("1\n00:00:00,000 --> 00:00:02,000\nHello.")


def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s")


@pytest.mark.slow
def test_dev_run_restarts_what_dies_and_stops_cleanly(devrun: DevRun, tmp_path: Path) -> None:
    devrun.wait_log(r"konspekt is up: open (http://\S+)")
    renderer = devrun.wait_log(r"renderer 127\.0\.0\.1:(\d+)").group(1)
    target = f"127.0.0.1:{renderer}"
    url = f"http://127.0.0.1:{devrun.port}"
    data = tmp_path / "run"
    weed_args = " ".join(_cmdline(devrun.children()["seaweedfs"]))
    store = _store_of(data, "127.0.0.1:" + re.findall(r"-s3\.port=(\d+)", weed_args)[0])
    render_once(target, data / STAGE_TOKEN_FILE)
    client = httpx.Client(base_url=url, timeout=10)
    first = client.get("/api/v1/jobs")
    assert first.status_code == 200 and OWNER_COOKIE in client.cookies

    # a stage dies: restarted after 1 s and serves again; the page stays up meanwhile
    mark = len(devrun.text())
    old = devrun.kill("renderer")
    assert client.get("/").status_code == 200
    devrun.wait_log(r"renderer exited with code -9 .* restarting it in 1 s", 10, mark)
    devrun.wait_log(r"renderer is serving again", 60, mark)
    assert devrun.children()["renderer"] != old
    render_once(target, data / STAGE_TOKEN_FILE)

    # the gateway dies: restarted; the browser's cookie is still its owner (the secret file)
    mark = len(devrun.text())
    devrun.kill("gateway")
    devrun.wait_log(r"gateway is serving again", 60, mark)
    again = client.get("/api/v1/jobs")
    assert again.status_code == 200 and "set-cookie" not in again.headers
    secret_file = data / "gateway-secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600

    # SeaweedFS dies: restarted on the same S3 port with the same credentials; the gateway's
    # store answers again, and the old cookie secret is nowhere in it
    mark = len(devrun.text())
    devrun.kill("seaweedfs")
    devrun.wait_log(r"seaweedfs exited with code -9", 10, mark)
    devrun.wait_log(r"seaweedfs is serving again", 90, mark)
    eventually(lambda: client.get("/readyz").json()["store"] == "ok", 60, "the gateway's store is back")
    assert client.get("/").status_code == 200
    assert store.ping() and not store.exists(SECRET_KEY_OBJECT)
    assert secret_file.read_bytes().strip() not in b"".join(store.get_bytes(k) for k in store.list_keys(""))

    # Ctrl-C (SIGINT to devstack alone, as the terminal sends it to the foreground process)
    children = devrun.children()
    assert set(children) == {"seaweedfs", "renderer", "gateway"}
    devrun.proc.send_signal(signal.SIGINT)
    assert devrun.proc.wait(60) == 0
    for name, pid in children.items():
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"{name} still runs"
    assert "restarting it" not in devrun.text()[devrun.text().index("stopping everything") :]
    client.close()


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def _store_of(data: Path, endpoint: str) -> ObjectStore:
    secret = json.loads((data / "s3" / "s3.json").read_text())["identities"][0]["credentials"][0]["secretKey"]
    return ObjectStore(
        S3Settings.model_validate({"endpoint": endpoint, "access_key": "konspekt", "secret_key": secret})
    )


@pytest.mark.slow
def test_a_stage_killed_mid_job_under_dev_run_is_restarted_and_its_job_finishes(
    tmp_path: Path, testdata: Path
) -> None:
    """The whole ``./dev run`` (SeaweedFS, the four stages with whisper base and the 0.5B GGUF,
    the gateway), one job, and the summarizer SIGKILLed while it writes the konspekt: nobody but
    the supervisor starts it again, and the job ends done with every download."""
    run = DevRun(tmp_path / "run", free_port(), stages=",".join(STAGES), **SMALL_MODELS)
    with running(run), httpx.Client(base_url=f"http://127.0.0.1:{run.port}", timeout=60) as client:
        run.wait_log(r"konspekt is up", 300)
        job = upload(client, testdata / "video" / "jfk_en_11s.mp4")
        at_work = lambda j: j["state"] == "summarizing" and j["progress"] > 0  # noqa: E731
        wait_job(client, job["id"], at_work, "summarizer at work")
        mark = len(run.text())
        old = run.kill("summarizer")
        assert client.get("/").status_code == 200  # the page stays up meanwhile
        run.wait_log(r"summarizer exited with code -9 .* restarting it in 1 s", 10, mark)
        run.wait_log(r"summarizer is serving again", 120, mark)
        assert run.children()["summarizer"] != old
        done = wait_for(client, job["id"], TERMINAL)
        assert done["state"] == "done", (done["error"], done["attempts"])
        assert done["attempts"]["summarizer"] == 2, done["attempts"]  # the cut call, then the new process
        for name in ("konspekt.docx", "konspekt.txt", "transcript.srt"):
            assert client.get(f"/api/v1/jobs/{job['id']}/files/{name}").status_code == 200, name
        summarizer_log = (tmp_path / "run" / "summarizer.log").read_text(errors="replace")
        assert summarizer_log.count(job["id"]) >= 2  # the killed process and the restarted one both saw it
