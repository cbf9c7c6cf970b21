#!/usr/bin/env python3
"""Concurrent jobs: 1, 2 and 4 copies of a video submitted at once through the gateway; the wall
time (first upload byte → last job done) against the sum of single-job times. Below 1.0 means
the jobs overlapped (one job summarized while the next is transcribed). Not a test: it prints
markdown and writes bench/out/.

    .venv/bin/python bench/concurrency.py [--video PATH] [--jobs 1 2 4]
        [--env KONSPEKT_GATEWAY_CONCURRENT_JOBS=4 --env KONSPEKT_GATEWAY_ASR_CONCURRENCY=1 ...]

--env KEY=VALUE sets any variable of the local stack (gateway limits, stage workers, models), so
the script works with whatever concurrency settings the gateway and the stages have.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchlib import (
    TESTDATA,
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

from konspekt.devstack import default_stage_env

DEFAULT_VIDEO = TESTDATA / "video" / "news_en_169s.mp4"


def concurrent_jobs(url: str, video: Path, n: int, timeout: float) -> tuple[float, list[JobRun]]:
    """``n`` jobs of ``video`` started together, each from its own thread; (wall seconds, runs)."""
    started = time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        runs = list(pool.map(lambda _i: run_job(url, video, timeout), range(n)))
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
    parser.add_argument("--video", type=existing_file, default=DEFAULT_VIDEO)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4], help="jobs at once, per round")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="stack setting")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds to wait for one job")
    args = parser.parse_args()
    if any(n < 1 for n in args.jobs):
        parser.error("--jobs must be positive")
    rounds = sorted(set(args.jobs) | {1})  # the single-job time is the yardstick
    overrides = parse_env(args.env)
    env = {**os.environ, **default_stage_env(), **overrides}
    info = RunInfo.now()
    media = media_seconds(args.video)

    results: list[dict[str, Any]] = []
    with local_stack(overrides) as stack, MemorySampler(service_pids(stack)) as sampler:
        single = 0.0
        for n in rounds:
            sampler.reset()
            print(f"{n} job(s) at once: {args.video.name} ...", file=sys.stderr)
            wall, runs = concurrent_jobs(stack.url, args.video, n, args.timeout)
            memory = sampler.snapshot()
            failed = [r for r in runs if not r.ok]
            if failed:
                print(f"{len(failed)} job(s) failed: {failed[0].job.get('error')}", file=sys.stderr)
                return 1
            if n == 1:
                single = wall
            busy: dict[str, float] = {}
            for run in runs:
                for stage, secs in (run.job.get("stage_seconds") or {}).items():
                    busy[stage] = busy.get(stage, 0.0) + secs
            results.append(
                {
                    "jobs": n,
                    "wall_seconds": round(wall, 2),
                    "sum_of_single_seconds": round(n * single, 2),
                    "ratio": round(wall / (n * single), 3),
                    "mean_latency_seconds": round(sum(r.wall_seconds for r in runs) / n, 2),
                    "stage_seconds_total": {k: round(v, 2) for k, v in busy.items()},
                    "runs": [r.to_json() for r in runs],
                    "memory": {name: m.to_mb() for name, m in memory.items()},
                }
            )
            last_memory = memory

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
        f"Video: {args.video.name} ({media:.1f} s of media), the same file submitted n times at once.\n"
        f"Limits: {', '.join(f'{k}={v}' for k, v in found.items()) or 'defaults'}\n\n"
        + md_table(
            ["jobs at once", "wall, s", "n × single job, s", "wall ÷ (n × single)", "mean job latency, s"]
            + [f"{s} busy, s" for s in stages],
            rows,
        )
        + f"\nMemory during the {rounds[-1]}-job round:\n\n"
        + memory_table(last_memory)
    )
    result = {"video": args.video.name, "overrides": overrides, "limits": found, "rounds": results}
    save("concurrency", info, result, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
