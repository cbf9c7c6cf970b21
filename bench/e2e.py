#!/usr/bin/env python3
"""End-to-end benchmark: one testdata video through the whole local stack, per-stage seconds and
the real-time factor, next to raw faster-whisper on the same audio with the same settings, in
the same run. Not a test: it prints a table and writes JSON to bench/out/.

    .venv/bin/python bench/e2e.py [VIDEO] [--url http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from konspekt.devstack import MODELS, ROOT, Stack

DEFAULT_VIDEO = ROOT.parent / "shared" / "testdata" / "video" / "news_en_169s.mp4"


def run_job(url: str, video: Path) -> tuple[dict[str, Any], float]:
    with httpx.Client(base_url=url, timeout=120) as client:
        started = time.monotonic()
        with video.open("rb") as f:
            resp = client.post("/api/v1/jobs", params={"filename": video.name}, content=f)
        resp.raise_for_status()
        job_id = resp.json()["id"]
        while True:
            job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
            if job["state"] in {"done", "failed"}:
                return job, time.monotonic() - started
            time.sleep(0.2)


def raw_whisper(video: Path, model_dir: Path) -> dict[str, float]:
    """faster-whisper alone, with the ASR stage's settings (int8, beam 5, VAD, no conditioning)."""
    from faster_whisper import WhisperModel

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "audio.wav"
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-i",
                str(video),
                "-vn",
                "-ac",
                "1",
                "-ar",
                "16000",
                "-c:a",
                "pcm_s16le",
                str(wav),
            ],
            check=True,
        )
        threads = len(os.sched_getaffinity(0))
        t0 = time.monotonic()
        model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)
        load = time.monotonic() - t0
        t0 = time.monotonic()
        segments, info = model.transcribe(
            str(wav), beam_size=5, vad_filter=True, condition_on_previous_text=False
        )
        count = sum(1 for _ in segments)
        seconds = time.monotonic() - t0
    return {"seconds": seconds, "load_seconds": load, "segments": count, "duration": float(info.duration)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("video", nargs="?", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--url", help="use a running gateway instead of starting the local stack")
    args = parser.parse_args()

    stack = None
    if args.url:
        url = args.url
    else:
        stack = Stack(Path(tempfile.mkdtemp(prefix="konspekt-bench-")))
        print("starting the local stack...", file=sys.stderr)
        stack.start()
        url = stack.url
    try:
        job, wall = run_job(url, args.video)
    finally:
        if stack:
            stack.stop()
    if job["state"] != "done":
        print(f"job failed: {job.get('error')}", file=sys.stderr)
        return 1
    raw = raw_whisper(args.video, MODELS / "whisper-base")
    media_seconds = float(job.get("audio_duration") or raw["duration"])
    stages: dict[str, float] = job.get("stage_seconds", {})
    asr_key = next((k for k in stages if k in {"asr", "transcribing"}), "")
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, {platform.python_version()}",
        "video": args.video.name,
        "media_seconds": media_seconds,
        "wall_seconds": round(wall, 2),
        "rtf": round(wall / media_seconds, 3),
        "stage_seconds": stages,
        "raw_whisper": raw,
        "asr_overhead_ratio": round(stages[asr_key] / raw["seconds"], 3) if asr_key else None,
    }
    print(f"\n{args.video.name}: {media_seconds:.1f} s of media")
    print(f"{'stage':<22}{'seconds':>10}{'x realtime':>12}")
    for name, secs in stages.items():
        print(f"{name:<22}{secs:>10.2f}{secs / media_seconds:>12.3f}")
    print(f"{'end to end (wall)':<22}{wall:>10.2f}{wall / media_seconds:>12.3f}")
    print(f"{'raw faster-whisper':<22}{raw['seconds']:>10.2f}{raw['seconds'] / media_seconds:>12.3f}")
    if result["asr_overhead_ratio"] is not None:
        print(f"ASR stage / raw faster-whisper: {result['asr_overhead_ratio']:.3f}")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"e2e-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
