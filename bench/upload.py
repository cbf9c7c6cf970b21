#!/usr/bin/env python3
"""Upload: the gateway's memory while a large upload (2 GB by default) streams in over loopback,
and the throughput. The payload is generated on the fly by the client (nothing written here); it
lands in the object store, and the job is deleted as soon as the upload is answered. Not a test:
it prints markdown and writes bench/out/.

    .venv/bin/python bench/upload.py [--size-mb 2048] [--parallel 1]

The local stack is SeaweedFS and the gateway only (no stages: the job would only retry its first
stage until deleted). --parallel N sends N such uploads at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
from benchlib import API, MB, MemorySampler, RunInfo, local_stack, md_table, parse_env, save, service_pids


def payload(size: int, chunk: int) -> Iterator[bytes]:
    """``size`` bytes in ``chunk``-sized pieces of one random block (not compressible)."""
    block = os.urandom(chunk)
    sent = 0
    while sent < size:
        piece = block[: min(chunk, size - sent)]
        sent += len(piece)
        yield piece


def upload(url: str, size: int, chunk: int) -> tuple[float, str]:
    """One streamed upload; (seconds to the 201 answer, job id). The job is deleted afterwards."""
    with httpx.Client(base_url=url, timeout=600) as client:
        started = time.monotonic()
        resp = client.post(
            f"{API}/jobs",
            params={"filename": "big.mp4"},
            content=payload(size, chunk),
            headers={"content-type": "video/mp4", "content-length": str(size)},
        )
        seconds = time.monotonic() - started
        if resp.status_code != 201:
            raise RuntimeError(f"upload refused: HTTP {resp.status_code} {resp.text[:300]}")
        job_id = str(resp.json()["id"])
        client.delete(f"{API}/jobs/{job_id}").raise_for_status()
    return seconds, job_id


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=2048, help="upload size, MiB (default 2048)")
    parser.add_argument("--parallel", type=int, default=1, help="uploads at once")
    parser.add_argument("--chunk-kb", type=int, default=1024, help="client write size, KiB")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="stack setting")
    args = parser.parse_args()
    if args.size_mb < 1 or args.parallel < 1 or args.chunk_kb < 1:
        parser.error("sizes and --parallel must be positive")
    size = args.size_mb * MB
    overrides = {
        "KONSPEKT_GATEWAY_MAX_UPLOAD_MB": str(max(4096, args.size_mb)),
        "KONSPEKT_GATEWAY_MAX_CONCURRENT_UPLOADS": str(max(4, args.parallel)),
        **parse_env(args.env),
    }
    info = RunInfo.now()
    with (
        local_stack(overrides, stages=False) as stack,
        MemorySampler(service_pids(stack), interval=0.1) as sampler,
    ):
        sampler.reset()
        started = time.monotonic()
        print(f"uploading {args.parallel} × {args.size_mb} MiB ...", file=sys.stderr)
        with ThreadPoolExecutor(args.parallel) as pool:
            done = list(
                pool.map(lambda _i: upload(stack.url, size, args.chunk_kb * 1024), range(args.parallel))
            )
        wall = time.monotonic() - started
        memory = sampler.snapshot()
        time.sleep(2.0)
        after = sampler.tree_rss()

    total = size * args.parallel
    gateway = memory["gateway"]
    summary = [
        args.parallel,
        args.size_mb * args.parallel,
        f"{wall:.1f}",
        f"{total / 1e6 / wall:.0f}",
        f"{(gateway.hwm - gateway.start) / MB:+.0f}",
    ]
    rows = [
        [name, *(f"{v / MB:.0f}" for v in (m.start, m.hwm)), f"{(m.hwm - m.start) / MB:+.0f}",
         f"{after[name] / MB:.0f}"]
        for name, m in memory.items()
    ]  # fmt: skip
    markdown = (
        f"{args.parallel} × {args.size_mb} MiB streamed over loopback (raw body, client chunks of "
        f"{args.chunk_kb} KiB) into the gateway → SeaweedFS; job deleted after each upload.\n\n"
        + md_table(
            ["uploads", "MiB in all", "wall, s", "throughput, MB/s", "gateway peak RSS growth, MB"], [summary]
        )
        + "\n"
        + md_table(
            ["service", "RSS before, MB", "peak RSS (VmHWM), MB", "growth, MB", "RSS 2 s after, MB"], rows
        )
    )
    result = {
        "size_mb": args.size_mb,
        "parallel": args.parallel,
        "chunk_kb": args.chunk_kb,
        "wall_seconds": round(wall, 2),
        "upload_seconds": [round(s, 2) for s, _ in done],
        "throughput_mb_s": round(total / 1e6 / wall, 1),
        "memory": {name: m.to_mb() for name, m in memory.items()},
        "rss_after_mb": {name: round(v / MB, 1) for name, v in after.items()},
    }
    save("upload", info, result, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
