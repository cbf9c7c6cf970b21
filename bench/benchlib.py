"""What the bench scripts share: the machine and commit they ran on, results written under
bench/out/ as JSON and as a markdown block for bench/RESULTS.md, the local stack, jobs through
the gateway's HTTP API, per-process memory sampling (Linux /proc) and raw faster-whisper runs.

The scripts import it as ``benchlib`` (Python puts bench/ on the path when it runs bench/X.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from konspekt.settings import available_cores
from konspekt_asr.settings import AsrSettings
from konspekt_devstack import ROOT, Stack

OUT = ROOT / "bench" / "out"
RESULTS = ROOT / "bench" / "RESULTS.md"
TESTDATA = Path(os.environ.get("KONSPEKT_TESTDATA", ROOT.parent / "shared" / "testdata"))
API = "/api/v1"
MB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- where and how it ran ------------------------------------------------------------------------
def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _ram_gib() -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0.0


def git_commit() -> str:
    """Short commit of the checkout, with "+dirty" when tracked files differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def command_line() -> str:
    """How this script was started, with paths inside the checkout made relative."""

    def rel(arg: str) -> str:
        with contextlib.suppress(ValueError):
            return str(Path(arg).absolute().relative_to(ROOT)) if Path(arg).exists() else arg
        return arg

    return shlex.join([rel(sys.executable), rel(sys.argv[0]), *sys.argv[1:]])


@dataclass(frozen=True)
class RunInfo:
    date: str
    machine: str
    commit: str
    command: str

    @classmethod
    def now(cls) -> RunInfo:
        machine = (
            f"{_cpu_model()}, {available_cores()} cores available ({os.cpu_count()} online), "
            f"{_ram_gib():.0f} GiB RAM, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}"
        )
        return cls(datetime.now(UTC).isoformat(timespec="seconds"), machine, git_commit(), command_line())

    def markdown(self) -> str:
        return (
            f"Date: {self.date} · machine: {self.machine} · commit: `{self.commit}`\n\n"
            f"Command: `{self.command}`\n"
        )


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A markdown table; ``align`` has one letter per column, "l" or "r" (default: first l, rest r)."""
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    lines = [headers, rule, *[[_cell(v) for v in row] for row in rows]]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines) + "\n"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def save(name: str, info: RunInfo, result: dict[str, Any], markdown: str) -> Path:
    """Write bench/out/<name>-<time>.json and .md, print the markdown, return the JSON path."""
    OUT.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    payload = {"date": info.date, "machine": info.machine, "commit": info.commit, "command": info.command}
    path = OUT / f"{stem}.json"
    path.write_text(json.dumps({**payload, **result}, indent=1, ensure_ascii=False))
    text = info.markdown() + "\n" + markdown
    (OUT / f"{stem}.md").write_text(text)
    print("\n" + text)
    print(f"written {path} and {path.with_suffix('.md')}", file=sys.stderr)
    return path


def publish(script: str, text: str) -> None:
    """Replaces the section of bench/RESULTS.md that ``script`` (e.g. "cancel.py") writes itself,
    between its begin and end markers (or adds it at the end)."""
    begin, end = f"<!-- bench/{script}: begin -->", f"<!-- bench/{script}: end -->"
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    current = RESULTS.read_text(encoding="utf-8")
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        current = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        current = current.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(current, encoding="utf-8")
    print(f"updated {RESULTS}", file=sys.stderr)


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` -> dict; a clear error for anything else."""
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--env wants KEY=VALUE, got {pair!r}")
        env[key.strip()] = value
    return env


def existing_file(value: str) -> Path:
    """argparse type: a path that must exist."""
    path = Path(value).expanduser()
    if not path.is_file():
        raise SystemExit(f"no such file: {value}")
    return path


# -- media ---------------------------------------------------------------------------------------
def media_seconds(path: Path) -> float:
    """Duration by ffprobe (container, else the first audio stream)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(json.loads(out).get("format", {}).get("duration") or 0.0)


def extract_wav(video: Path, wav: Path) -> Path:
    """16 kHz mono PCM WAV of the first audio stream, as the audio stage makes it."""
    args = ["-nostdin", "-v", "error", "-y", "-i", str(video), "-map", "0:a:0", "-vn", "-ac", "1"]
    subprocess.run(
        ["ffmpeg", *args, "-ar", "16000", "-c:a", "pcm_s16le", "-map_metadata", "-1", str(wav)], check=True
    )
    return wav


# -- the local stack -----------------------------------------------------------------------------
@contextlib.contextmanager
def local_stack(overrides: dict[str, str], *, stages: bool = True) -> Iterator[Stack]:
    """The devstack as processes in a temporary folder, removed afterwards unless a run failed.

    ``stages=False``: SeaweedFS and the gateway only; the stage targets point at closed ports,
    so a submitted job just retries its first stage until it is deleted.
    """
    from konspekt_devstack import STAGES, Seaweed, free_port

    run_dir = Path(tempfile.mkdtemp(prefix="konspekt-bench-"))
    stack = Stack(run_dir, overrides=overrides)
    print(f"starting the local stack in {run_dir} ...", file=sys.stderr)
    ok = False
    try:
        if stages:
            stack.start()
        else:
            stack.seaweed = Seaweed(run_dir / "s3").start()
            stack.ports.update({stage: free_port() for stage in STAGES})
            stack.ports["gateway"] = free_port()
            metrics = getattr(stack, "metrics_ports", None)  # a free /metrics port, where it has one
            if isinstance(metrics, dict):
                metrics["gateway"] = free_port()
            stack.start_gateway()
        yield stack
        ok = True
    finally:
        stack.stop()
        if ok:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            print(f"logs kept in {run_dir}", file=sys.stderr)


def service_pids(stack: Stack) -> dict[str, int]:
    """The main process of every service of a running stack, by name."""
    pids = {name: proc.popen.pid for name, proc in stack.procs.items()}
    if stack.seaweed is not None and stack.seaweed.proc is not None:
        pids["seaweedfs"] = stack.seaweed.proc.popen.pid
    return pids


# -- memory --------------------------------------------------------------------------------------
def _status_kb(pid: int, key: str) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, resident bytes), from /proc/*/stat."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(entry.path, "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            table[int(entry.name)] = (int(fields[1]), int(fields[21]) * PAGE)
    return table


@dataclass
class ServiceMemory:
    #: Resident memory of the process tree when the sampler was last reset (bytes).
    start: int = 0
    #: Largest resident memory of the process and its children seen by the sampler (bytes).
    peak_tree: int = 0
    #: The main process's own high-water mark (VmHWM) since the last reset (bytes).
    hwm: int = 0

    def to_mb(self) -> dict[str, float]:
        return {
            "start_mb": round(self.start / MB, 1),
            "peak_mb": round(self.hwm / MB, 1),
            "peak_with_children_mb": round(self.peak_tree / MB, 1),
        }


class MemorySampler:
    """Samples the resident memory of process trees (a service and its children, e.g. ffmpeg)
    every ``interval`` seconds in a thread. The main process's exact peak comes from VmHWM,
    which ``reset`` clears through /proc/PID/clear_refs, so each run gets its own peak."""

    def __init__(self, roots: dict[str, int], interval: float = 0.2) -> None:
        self.roots = roots
        self.interval = interval
        self.memory = {name: ServiceMemory() for name in roots}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self.reset()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def tree_rss(self) -> dict[str, int]:
        table = _processes()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _rss) in table.items():
            children.setdefault(ppid, []).append(pid)
        sums: dict[str, int] = {}
        for name, root in self.roots.items():
            total, todo = 0, [root]
            while todo:
                pid = todo.pop()
                total += table.get(pid, (0, 0))[1]
                todo.extend(children.get(pid, ()))
            sums[name] = total
        return sums

    def reset(self) -> None:
        for pid in self.roots.values():
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # 5: reset the peak RSS
        now = self.tree_rss()
        with self._lock:
            self.memory = {name: ServiceMemory(start=now[name], peak_tree=now[name]) for name in self.roots}

    def _sample(self) -> None:
        now = self.tree_rss()
        with self._lock:
            for name, rss in now.items():
                mem = self.memory[name]
                mem.peak_tree = max(mem.peak_tree, rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def snapshot(self) -> dict[str, ServiceMemory]:
        """The peaks since the last reset (VmHWM read now)."""
        self._sample()
        with self._lock:
            for name, pid in self.roots.items():
                self.memory[name].hwm = _status_kb(pid, "VmHWM") * 1024
            return {name: ServiceMemory(m.start, m.peak_tree, m.hwm) for name, m in self.memory.items()}


def memory_table(memory: dict[str, ServiceMemory]) -> str:
    rows = [
        [name, f"{m.start / MB:.0f}", f"{m.hwm / MB:.0f}", f"{m.peak_tree / MB:.0f}"]
        for name, m in memory.items()
    ]
    return md_table(
        ["service", "RSS at start, MB", "peak RSS (VmHWM), MB", "peak incl. children (sampled), MB"], rows
    )


# -- jobs through the gateway --------------------------------------------------------------------
@dataclass
class JobRun:
    video: str
    job: dict[str, Any]
    #: Seconds from the first byte sent to the 201 answer.
    upload_seconds: float
    #: Seconds from the first byte sent until the job was done or failed.
    wall_seconds: float
    #: monotonic() at the start, for runs that overlap.
    started: float = 0.0
    finished: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.job.get("state") == "done")

    def to_json(self) -> dict[str, Any]:
        keys = ("id", "state", "error", "audio_duration", "stage_seconds", "attempts", "detected_language")
        return {
            "video": self.video,
            "upload_seconds": round(self.upload_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "job": {k: self.job.get(k) for k in keys},
            **self.extra,
        }


def submit(client: httpx.Client, video: Path, **params: str) -> tuple[str, float]:
    """Upload ``video`` (streamed from disk); the job id and the upload seconds."""
    started = time.monotonic()
    with video.open("rb") as f:
        resp = client.post(f"{API}/jobs", params={"filename": video.name, **params}, content=f)
    if resp.status_code != 201:
        raise RuntimeError(f"upload of {video.name} refused: HTTP {resp.status_code} {resp.text[:300]}")
    return str(resp.json()["id"]), time.monotonic() - started


def wait_job(client: httpx.Client, job_id: str, timeout: float, poll: float = 0.5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"{API}/jobs/{job_id}").json()
        if job["state"] in {"done", "failed"}:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} not finished after {timeout:.0f} s (state {job['state']})")
        time.sleep(poll)


def run_job(url: str, video: Path, timeout: float = 4 * 3600) -> JobRun:
    """One job, upload to done, on its own client (so several can run from threads)."""
    with httpx.Client(base_url=url, timeout=600) as client:
        started = time.monotonic()
        job_id, upload = submit(client, video)
        job = wait_job(client, job_id, timeout)
        finished = time.monotonic()
    return JobRun(video.name, job, upload, finished - started, started, finished)


# -- raw faster-whisper --------------------------------------------------------------------------
@dataclass(frozen=True)
class WhisperOptions:
    """What the ASR stage passes to faster-whisper (see konspekt_asr.engine)."""

    beam_size: int = 5
    vad: bool = True
    batch_size: int = 0
    language: str | None = None

    @classmethod
    def from_settings(cls, settings: AsrSettings) -> WhisperOptions:
        return cls(beam_size=settings.beam_size, vad=settings.vad, batch_size=settings.batch_size)


def asr_settings(env: dict[str, str]) -> AsrSettings:
    """The ASR stage's settings under ``env`` (its ``KONSPEKT_ASR_*`` variables)."""
    prefix = "KONSPEKT_ASR_"
    return AsrSettings.model_validate(
        {k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)}
    )


def load_whisper(model: str, device: str, compute_type: str, threads: int) -> tuple[Any, float]:
    """A faster-whisper model, loaded and run once (the stage warms up too); (model, seconds)."""
    import numpy as np
    from faster_whisper import WhisperModel

    started = time.monotonic()
    whisper = WhisperModel(
        model, device=device, compute_type=compute_type, cpu_threads=threads, local_files_only=True
    )
    silent = np.zeros(16000, dtype=np.float32)
    for vad in (False, True):
        segments, _ = whisper.transcribe(silent, language="en", beam_size=1, vad_filter=vad)
        for _ in segments:
            pass
    return whisper, time.monotonic() - started


def whisper_run(
    model: Any, audio: Any, options: WhisperOptions, on_segment: Callable[[Any], None] | None = None
) -> dict[str, Any]:
    """Transcribe ``audio`` (path or samples) with faster-whisper directly; timing and text.
    ``cpu_seconds`` is this process's CPU time meanwhile (all threads): less sensitive than wall
    time to other work on a shared machine."""
    from faster_whisper import BatchedInferencePipeline

    kwargs: dict[str, Any] = {
        "language": options.language,
        "beam_size": options.beam_size,
        "vad_filter": options.vad,
        "condition_on_previous_text": False,
    }
    started, cpu = time.monotonic(), time.process_time()
    if options.batch_size > 1:  # as the stage: 0 and 1 are sequential, timestamps kept
        segments, info = BatchedInferencePipeline(model).transcribe(
            audio, batch_size=options.batch_size, without_timestamps=False, **kwargs
        )
    else:
        segments, info = model.transcribe(audio, **kwargs)
    texts: list[str] = []
    first: float | None = None
    for seg in segments:
        if first is None:
            first = time.monotonic() - started
        texts.append(str(seg.text).strip())
        if on_segment is not None:
            on_segment(seg)
    seconds = time.monotonic() - started
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(time.process_time() - cpu, 3),
        "first_segment_seconds": round(first, 3) if first is not None else None,
        "segments": len(texts),
        "duration": float(info.duration),
        "speech_duration": float(info.duration_after_vad),
        "language": str(info.language),
        "text": " ".join(t for t in texts if t),
    }
