#!/usr/bin/env python3
"""ASR memory and speed of a long recording recognised at once against in pieces
(``KONSPEKT_ASR_PIECE_SECONDS``): the ASR stage's own transcriber (konspekt_asr.engine), each
setting in a fresh process so its peak memory (VmHWM) is its own; the words of each run are
compared with the first. Not a test: it prints markdown and writes bench/out/.

    .venv/bin/python bench/asr_pieces.py [--long 60] [--pieces 0 600]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchlib import RunInfo, asr_settings, extract_wav, md_table, save

from konspekt_devstack import MODELS


def child(wav: Path, piece_seconds: int) -> dict[str, Any]:
    """One run in this process: load the transcriber, read the WAV, transcribe."""
    from konspekt_asr.engine import load_audio, load_transcriber

    settings = asr_settings(
        {"KONSPEKT_ASR_MODEL": str(MODELS / "whisper-base"), "KONSPEKT_ASR_PIECE_SECONDS": str(piece_seconds)}
    )
    transcriber = load_transcriber(settings)
    loaded = vm_hwm_mb()
    started = time.monotonic()
    info, segments = transcriber.transcribe(load_audio(wav), None)
    texts = [s.text for s in segments]
    return {
        "piece_seconds": piece_seconds,
        "seconds": round(time.monotonic() - started, 2),
        "duration": info.duration,
        "segments": len(texts),
        "rss_loaded_mb": loaded,
        "peak_mb": vm_hwm_mb(),
        "text": " ".join(texts),
    }


def vm_hwm_mb() -> int:
    status = Path("/proc/self/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(found.group(1)) // 1024 if found else 0


def words(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text.lower()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--long", type=int, default=60, help="a bench/make_long.py video, minutes")
    parser.add_argument("--pieces", type=int, nargs="+", default=[0, 600], help="piece_seconds to compare")
    parser.add_argument("--child", nargs=2, metavar=("WAV", "PIECE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(Path(args.child[0]), int(args.child[1]))))
        return 0

    info = RunInfo.now()
    video = Path.home() / ".cache" / "konspekt-bench" / f"long_en_{args.long}min.mp4"
    if not video.is_file():
        subprocess.run([sys.executable, str(Path(__file__).with_name("make_long.py"))], check=True)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = extract_wav(video, Path(tmp) / "audio.wav")
        for piece in args.pieces:
            print(f"piece_seconds {piece} ...", file=sys.stderr)
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(wav), str(piece)],
                check=True,
                capture_output=True,
                text=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first = words(runs[0]["text"])
    rows = []
    for run in runs:
        same = sum((words(run["text"]) & first).values())
        rows.append(
            [
                run["piece_seconds"] or "all at once",
                run["seconds"],
                round(run["seconds"] / run["duration"], 3),
                run["rss_loaded_mb"],
                run["peak_mb"],
                run["segments"],
                sum(words(run["text"]).values()),
                f"{100 * same / max(sum(first.values()), 1):.1f} %",
            ]
        )
    markdown = (
        f"{video.name}, {runs[0]['duration']:.1f} s; whisper-base int8, the ASR stage's settings\n\n"
        + md_table(
            [
                "piece_seconds",
                "seconds",
                "× real time",
                "RSS loaded, MB",
                "peak RSS (VmHWM), MB",
                "segments",
                "words",
                "words as the first run",
            ],
            rows,
        )
    )
    save("asr-pieces", info, {"runs": runs}, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
