"""``konspekt submit VIDEO --wait --out DIR``: upload, follow the job, download the results."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from konspekt_gateway.downloads import download_name

CHUNK = 1 << 20
BAR = 30


def bar(fraction: float) -> str:
    filled = int(max(0.0, min(fraction, 1.0)) * BAR)
    return "[" + "#" * filled + "-" * (BAR - filled) + "]"


def _read(path: Path, total: int) -> Iterator[bytes]:
    sent = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            sent += len(chunk)
            fraction = sent / max(total, 1)
            print(
                f"\ruploading {bar(fraction)} {int(fraction * 100):3d}% ({sent >> 20}/{total >> 20} MB)",
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
    token = args.token or os.environ.get("KONSPEKT_TOKEN", "")
    if not token:
        token = secrets.token_urlsafe(24)
        print(f"no token given: using {token} (set KONSPEKT_TOKEN to see these jobs later)", file=sys.stderr)
    headers = {"Authorization": f"Bearer {token}"}
    timeout = httpx.Timeout(60.0, write=600.0)
    with httpx.Client(base_url=args.url, timeout=timeout, headers=headers) as client:
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
    """Poll the job: each new state on stdout, the running stage's progress bar on stderr."""
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
            if last:
                print(file=sys.stderr)
            print(status, flush=True)
            last = status
        if job["state"] in ("done", "failed"):
            return job
        if job["state"] != "queued":
            eta = f", about {job['eta_seconds']:.0f} s left" if job.get("eta_seconds") is not None else ""
            print(
                f"\r  {bar(job['progress'])} {int(job['progress'] * 100):3d}%{eta}    ",
                end="",
                file=sys.stderr,
                flush=True,
            )
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
    sub.add_argument(
        "--token",
        default="",
        help="bearer token, 16+ characters: your jobs are the ones sent with it "
        "(default: $KONSPEKT_TOKEN, else a new random one)",
    )
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
