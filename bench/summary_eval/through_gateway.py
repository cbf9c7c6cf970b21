#!/usr/bin/env python3
"""Every rendered meeting (``../shared/eval-dev`` and ``bench/summary_eval/meetings``) through a
running gateway, as an API client would: upload ``meeting.mp4`` (style from ``facts.json``: a
lecture is sent as one), follow the job to its end, save ``<id>.konspekt.json`` and
``<id>.job.json`` (the names eval-dev's ``run.py`` uses) for ``report.py`` to score.

    ./dev run &      # then
    .venv/bin/python bench/summary_eval/through_gateway.py --out bench/out/run1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from devset import rendered

ROOT = Path(__file__).resolve().parents[2]
EVAL_DEV = ROOT.parent / "shared" / "eval-dev"
OWN = Path(__file__).resolve().parent / "meetings"
TOKEN = "summary-eval-token-0123456789abcdef"


def call(method: str, url: str, data: bytes | None = None, ctype: str | None = None) -> bytes:
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    if ctype:
        req.add_header("Content-Type", ctype)
    with urllib.request.urlopen(req, timeout=600) as r:
        body: bytes = r.read()
        return body


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="http://127.0.0.1:8000")
    ap.add_argument("--out", required=True)
    ap.add_argument("meetings", nargs="*")
    a = ap.parse_args()
    dirs = [Path(m) for m in a.meetings] or [
        p.parent for base in (EVAL_DEV, OWN) for p in sorted(base.glob("*/facts.json"))
    ]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for d in dirs:
        facts = json.loads((d / "facts.json").read_text(encoding="utf-8"))
        style = facts.get("style", "meeting")
        started = time.monotonic()
        url = f"{a.base}/api/v1/jobs?filename={d.name}.mp4&style={style}"
        job = json.loads(call("POST", url, rendered(d).read_bytes(), "video/mp4"))
        while job["state"] not in ("done", "failed"):
            time.sleep(2)
            job = json.loads(call("GET", f"{a.base}/api/v1/jobs/{job['id']}"))
        (out / f"{d.name}.job.json").write_text(
            json.dumps(job, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        if job["state"] == "done":
            k = json.loads(call("GET", f"{a.base}/api/v1/jobs/{job['id']}/konspekt"))
            (out / f"{d.name}.konspekt.json").write_text(
                json.dumps(k, ensure_ascii=False, indent=1), encoding="utf-8"
            )
        print(f"{d.name}: {job['state']} in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
