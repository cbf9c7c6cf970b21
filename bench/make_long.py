#!/usr/bin/env python3
"""Long test videos for the benchmarks: the testdata's English speech (news 169 s, lecture 60 s,
JFK 11 s; with --russian also the 51 s Russian call) concatenated to 10, 30 and 60 minutes.

Each source clip is re-encoded once into a common form (H.264 320x240 at 5 fps over a plain
background, AAC 16 kHz mono); the long videos are then stream copies of those clips (ffmpeg's
concat demuxer), so building even 60 minutes takes seconds. They are cached outside the
checkout and reused while their duration is right.

    .venv/bin/python bench/make_long.py [--minutes 10 30 60] [--russian] [--force]

Cache folder: $KONSPEKT_BENCH_CACHE or ~/.cache/konspekt-bench.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from itertools import cycle
from pathlib import Path

from benchlib import MB, TESTDATA, md_table, media_seconds

CACHE = Path(os.environ.get("KONSPEKT_BENCH_CACHE", "~/.cache/konspekt-bench")).expanduser()
ENGLISH = ("video/news_en_169s.mp4", "video/lecture_en_60s.webm", "video/jfk_en_11s.mp4")
RUSSIAN = ("video/call_ru_51s.mkv",)
#: Background and format of the generated picture: cheap to encode, decode and upload.
VIDEO = "color=c=0x1e2a38:s=320x240:r=5"


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *args], check=True)


def unit(source: Path, cache: Path = CACHE) -> Path:
    """``source``'s first audio stream in the common form, with the generated picture."""
    out = cache / "units" / f"{source.stem}.mp4"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.mp4")
    _ffmpeg(
        "-i", str(source), "-f", "lavfi", "-i", VIDEO,
        "-map", "1:v", "-map", "0:a:0", "-shortest",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "stillimage", "-pix_fmt", "yuv420p",
        "-g", "50", "-c:a", "aac", "-ar", "16000", "-ac", "1", "-b:a", "48k",
        str(tmp),
    )  # fmt: skip
    tmp.replace(out)
    return out


def long_video(minutes: float, *, russian: bool = False, force: bool = False, cache: Path = CACHE) -> Path:
    """A ``minutes``-long video of testdata speech (built once, then reused)."""
    if minutes <= 0:
        raise ValueError(f"minutes must be positive, got {minutes}")
    target = minutes * 60.0
    tag = "en-ru" if russian else "en"
    out = cache / f"long_{tag}_{minutes:g}min.mp4"
    if out.exists() and not force and abs(media_seconds(out) - target) < 5.0:
        return out
    sources = [TESTDATA / rel for rel in (*ENGLISH, *(RUSSIAN if russian else ()))]
    missing = [str(s) for s in sources if not s.is_file()]
    if missing:
        raise FileNotFoundError(f"testdata clips missing: {', '.join(missing)} (set KONSPEKT_TESTDATA)")
    units = [(u, media_seconds(u)) for u in (unit(s, cache) for s in sources)]
    playlist: list[Path] = []
    total = 0.0
    for path, seconds in cycle(units):
        if total >= target:
            break
        playlist.append(path)
        total += seconds
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{p}'\n" for p in playlist))
    tmp = out.with_suffix(".tmp.mp4")
    try:
        _ffmpeg(
            "-f", "concat", "-safe", "0", "-i", str(listing),
            "-t", f"{target:.3f}", "-c", "copy", "-movflags", "+faststart", str(tmp),
        )  # fmt: skip
        tmp.replace(out)
    finally:
        listing.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 30, 60])
    parser.add_argument("--russian", action="store_true", help="mix in the 51 s Russian call")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"cache folder (default {CACHE})")
    args = parser.parse_args()
    rows = []
    for minutes in args.minutes:
        path = long_video(minutes, russian=args.russian, force=args.force, cache=args.cache)
        rows.append([str(path), f"{media_seconds(path):.1f}", f"{path.stat().st_size / MB:.1f}"])
        print(path)
    print("\n" + md_table(["video", "seconds", "MB"], rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
