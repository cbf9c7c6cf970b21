"""``konspekt submit VIDEO --wait --out DIR``: upload, follow the job, download the results."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from konspekt_gateway.downloads import download_name

CHUNK = 1 << 20


def _read(path: Path, total: int) -> Iterator[bytes]:
    sent = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            sent += len(chunk)
            print(
                f"\ruploading {sent * 100 // max(total, 1):3d}% ({sent >> 20}/{total >> 20} MB)",
                end="",
                file=sys.stderr,
                flush=True,
            )
            yield chunk
    print(file=sys.stderr)


def _error(resp: httpx.Response) -> str:
    try:
        return str(resp.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {resp.status_code}"


def submit(args: argparse.Namespace) -> int:
    video: Path = args.video
    if not video.is_file():
        print(f"konspekt: no such file: {video}", file=sys.stderr)
        return 2
    params = {"filename": video.name, "language": args.language, "style": args.style}
    with httpx.Client(base_url=args.url, timeout=httpx.Timeout(60.0, write=600.0)) as client:
        resp = client.post(
            "/api/v1/jobs",
            params=params,
            content=_read(video, video.stat().st_size),
            headers={"Content-Type": "application/octet-stream"},
        )
        if resp.status_code != 201:
            print(f"konspekt: upload failed: {_error(resp)}", file=sys.stderr)
            return 1
        job: dict[str, Any] = resp.json()
        print(f"job {job['id']}")
        if not args.wait:
            return 0
        job = _follow(client, job["id"])
        if job["state"] != "done":
            print(f"konspekt: failed: {job['error']}", file=sys.stderr)
            return 1
        if args.out:
            _download(client, job, args.out)
    return 0


def _follow(client: httpx.Client, job_id: str) -> dict[str, Any]:
    last = ""
    while True:
        resp = client.get(f"/api/v1/jobs/{job_id}")
        if resp.status_code != 200:
            raise SystemExit(f"konspekt: {_error(resp)}")
        job: dict[str, Any] = resp.json()
        status = job["state"] + (
            f" (queue position {job['queue_position']})" if job["queue_position"] else ""
        )
        if status != last:
            print(status, flush=True)
            last = status
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(1.0)


def _download(client: httpx.Client, job: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(job["filename"]).stem
    for name, link in job["links"]["files"].items():
        target = out / download_name(stem, name)
        with client.stream("GET", link) as resp:
            resp.raise_for_status()
            with target.open("wb") as f:
                for chunk in resp.iter_bytes(CHUNK):
                    f.write(chunk)
        print(f"saved {target}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="konspekt", description="konspekt command-line client")
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("submit", help="upload a recording and (with --wait) get the results")
    sub.add_argument("video", type=Path)
    sub.add_argument("--url", default="http://127.0.0.1:8000", help="gateway address")
    sub.add_argument("--language", default="", help="language hint, e.g. ru (default: detect)")
    sub.add_argument("--style", choices=("meeting", "lecture"), default="meeting")
    sub.add_argument("--wait", action="store_true", help="wait until the job is done")
    sub.add_argument("--out", type=Path, help="with --wait: download every file into this folder")
    args = parser.parse_args(argv)
    try:
        return submit(args)
    except httpx.HTTPError as exc:
        print(f"konspekt: {exc}", file=sys.stderr)
        return 1
