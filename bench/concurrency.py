#!/usr/bin/env python3
"""Concurrent jobs: 1, 2 and 4 different videos submitted at once through the gateway; the wall
time (first upload byte → last job done) against the sum of the same videos' single-job times.
Below 1.0 means the jobs overlapped (one job summarized while the next is transcribed). Not a
test: it prints markdown and writes bench/out/.

By default the videos are different 145-second stretches of the 10-minute bench video
(bench/make_long.py): copies of one file would flatter the result, because llama.cpp keeps the
KV cache of the last prompt and a second identical transcript skips almost all of its prompt
evaluation (measured: 2 copies at once 0.57 of the single-job sum). ``--video`` gives the old
behaviour, the same file n times.

    .venv/bin/python bench/concurrency.py [--video PATH] [--jobs 1 2 4]
        [--env KONSPEKT_GATEWAY_CONCURRENT_JOBS=4 --env KONSPEKT_GATEWAY_ASR_CONCURRENCY=1 ...]

--env KEY=VALUE sets any variable of the local stack (gateway limits, stage workers, models), so
the script works with whatever concurrency settings the gateway and the stages have.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchlib import (
    JobRun,
    MemorySampler,
    RunInfo,
    existing_file,
    local_stack,
    md_table,
    media_seconds,
    memory_table,
    parse_env,
    run_job,
    save,
    service_pids,
)
from make_long import long_video

from konspekt_devstack import default_stage_env

CLIP_SECONDS = 145


def distinct_clips(n: int, out_dir: Path) -> list[Path]:
    """``n`` different stretches of the 10-minute bench video, CLIP_SECONDS each."""
    source = long_video(10)
    clips = []
    for k in range(n):
        clip = out_dir / f"clip{k + 1}_{CLIP_SECONDS}s.mp4"
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-ss",
                str(k * CLIP_SECONDS),
                "-t",
                str(CLIP_SECONDS),
                "-i",
                str(source),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-c:a",
                "aac",
                str(clip),
            ],
            check=True,
        )
        clips.append(clip)
    return clips


def concurrent_jobs(url: str, videos: list[Path], timeout: float) -> tuple[float, list[JobRun]]:
    """One job per video, started together, each from its own thread; (wall seconds, runs)."""
    started = time.monotonic()
    with ThreadPoolExecutor(len(videos)) as pool:
        runs = list(pool.map(lambda video: run_job(url, video, timeout), videos))
    return time.monotonic() - started, runs


def limits(env: dict[str, str]) -> dict[str, Any]:
    """The gateway's concurrency settings (whatever fields it has) and the stages' workers."""
    from konspekt_gateway.settings import GatewaySettings

    prefix = "KONSPEKT_GATEWAY_"
    gateway = GatewaySettings.model_validate(
        {k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)}
    )
    found = {f"gateway.{k}": v for k, v in gateway.model_dump().items() if "concurren" in k}
    found.update({k: v for k, v in env.items() if k.endswith("_WORKERS") and k.startswith("KONSPEKT_")})
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--video", type=existing_file, help="the same file n times (default: different clips)"
    )
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4], help="jobs at once, per round")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="stack setting")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds to wait for one job")
    args = parser.parse_args()
    if any(n < 1 for n in args.jobs):
        parser.error("--jobs must be positive")
    rounds = sorted(set(args.jobs) | {1})  # the single-job times are the yardstick
    overrides = parse_env(args.env)
    env = {**os.environ, **default_stage_env(), **overrides}
    info = RunInfo.now()
    tmp = Path(tempfile.mkdtemp(prefix="konspekt-clips-"))
    videos = [args.video] * rounds[-1] if args.video else distinct_clips(rounds[-1], tmp)
    results: list[dict[str, Any]] = []
    with local_stack(overrides) as stack, MemorySampler(service_pids(stack)) as sampler:
        single: dict[Path, float] = {}
        for video in dict.fromkeys(videos):
            print(f"alone: {video.name} ...", file=sys.stderr)
            wall, runs = concurrent_jobs(stack.url, [video], args.timeout)
            if not runs[0].ok:
                print(f"the job failed: {runs[0].job.get('error')}", file=sys.stderr)
                return 1
            single[video] = wall
        for n in rounds:
            sampler.reset()
            print(f"{n} job(s) at once: {', '.join(v.name for v in videos[:n])} ...", file=sys.stderr)
            wall, runs = concurrent_jobs(stack.url, videos[:n], args.timeout)
            memory = sampler.snapshot()
            failed = [r for r in runs if not r.ok]
            if failed:
                print(f"{len(failed)} job(s) failed: {failed[0].job.get('error')}", file=sys.stderr)
                return 1
            alone = sum(single[v] for v in videos[:n])
            busy: dict[str, float] = {}
            for run in runs:
                for stage, secs in (run.job.get("stage_seconds") or {}).items():
                    busy[stage] = busy.get(stage, 0.0) + secs
            results.append(
                {
                    "jobs": n,
                    "wall_seconds": round(wall, 2),
                    "sum_of_single_seconds": round(alone, 2),
                    "ratio": round(wall / alone, 3),
                    "mean_latency_seconds": round(sum(r.wall_seconds for r in runs) / n, 2),
                    "stage_seconds_total": {k: round(v, 2) for k, v in busy.items()},
                    "runs": [r.to_json() for r in runs],
                    "memory": {name: m.to_mb() for name, m in memory.items()},
                }
            )
            last_memory = memory
    shutil.rmtree(tmp, ignore_errors=True)
    stages = list(results[0]["stage_seconds_total"])
    rows = [
        [
            r["jobs"],
            f"{r['wall_seconds']:.1f}",
            f"{r['sum_of_single_seconds']:.1f}",
            f"**{r['ratio']:.2f}**",
            f"{r['mean_latency_seconds']:.1f}",
            *[f"{r['stage_seconds_total'].get(s, 0.0):.1f}" for s in stages],
        ]
        for r in results
    ]
    found = limits(env)
    markdown = (
        (
            f"Video: {args.video.name} ({media_seconds(args.video):.1f} s of media), the same file n times "
            "(llama.cpp reuses the cached prompt of an identical transcript: flattering).\n"
            if args.video
            else f"Videos: {len(videos)} different {CLIP_SECONDS} s stretches of {long_video(10).name}; "
            f"round n submits the first n; single-job times: "
            + ", ".join(f"{v.name} {single[v]:.1f} s" for v in videos)
            + ".\n"
        )
        + f"Limits: {', '.join(f'{k}={v}' for k, v in found.items()) or 'defaults'}\n\n"
        + md_table(
            ["jobs at once", "wall, s", "sum of their single-job times, s", "wall ÷ sum", "mean latency, s"]
            + [f"{s} busy, s" for s in stages],
            rows,
        )
        + f"\nMemory during the {rounds[-1]}-job round:\n\n"
        + memory_table(last_memory)
    )
    result = {
        "videos": [v.name for v in videos],
        "single_seconds": {v.name: round(t, 2) for v, t in single.items()},
        "overrides": overrides,
        "limits": found,
        "rounds": results,
    }
    save("concurrency", info, result, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
