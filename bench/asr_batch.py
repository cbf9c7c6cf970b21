#!/usr/bin/env python3
"""ASR speed on CPU: faster-whisper's sequential path against its BatchedInferencePipeline on the
same audio, model and settings (whisper-base int8, beam 5, VAD on, threads = the cores this
process may use, as the ASR stage does). Reports seconds, real-time factor, the speed-up over
sequential (wall and CPU time: the CPU time of this process is the steadier figure on a shared
machine), when the first segment came, and how many words agree with the sequential text.
Not a test: it prints markdown and writes bench/out/.

    .venv/bin/python bench/asr_batch.py [--video PATH]... [--batch 0 4 8 16] [--repeat 1]

Batch 0 is the sequential path (KONSPEKT_ASR_BATCH_SIZE=0 or 1); batched runs keep timestamps,
as the ASR stage does.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from benchlib import (
    OUT,
    TESTDATA,
    RunInfo,
    WhisperOptions,
    existing_file,
    extract_wav,
    load_whisper,
    md_table,
    save,
    whisper_run,
)

from konspekt.settings import available_cores
from konspekt_devstack import MODELS

DEFAULT_VIDEO = TESTDATA / "video" / "news_en_169s.mp4"


def agreement(reference: str, text: str) -> float:
    """Share of the reference's words that the other text has too, counted as multisets (word
    order is ignored: the long videos repeat their clips, which confuses sequence matching)."""
    ref, other = Counter(_words(reference)), Counter(_words(text))
    total = sum(ref.values())
    if not total:
        return 1.0 if not other else 0.0
    return sum((ref & other).values()) / total


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--video", dest="videos", action="append", type=existing_file, default=[])
    parser.add_argument("--batch", type=int, nargs="+", default=[0, 4, 8, 16], help="0, 1 = sequential")
    parser.add_argument("--model", default=str(MODELS / "whisper-base"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--threads", type=int, default=available_cores())
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1, help="runs per setting; the fastest counts")
    args = parser.parse_args()
    if any(b < 0 for b in args.batch) or args.repeat < 1 or args.threads < 1:
        parser.error("--batch must be >= 0, --repeat and --threads >= 1")
    batches = [0, *[b for b in dict.fromkeys(args.batch) if b > 1]]
    videos: list[Path] = args.videos or [DEFAULT_VIDEO]
    info = RunInfo.now()
    model, load_seconds = load_whisper(args.model, args.device, args.compute_type, args.threads)

    results: list[dict[str, Any]] = []
    markdown = (
        f"Model {Path(args.model).name} {args.compute_type} on {args.device}, {args.threads} threads, "
        f"beam {args.beam_size}, VAD on, best of {args.repeat} run(s) per setting "
        f"(model load + warm-up {load_seconds:.1f} s).\n\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for video in videos:
            wav = str(extract_wav(video, Path(tmp) / f"{video.stem}.wav"))
            runs: dict[int, dict[str, Any]] = {}
            for _ in range(args.repeat):  # settings interleaved, so load changes hit all alike
                for batch in batches:
                    label = f"batch {batch}" if batch else "sequential"
                    print(f"{video.name}: {label} ...", file=sys.stderr)
                    options = WhisperOptions(beam_size=args.beam_size, vad=True, batch_size=batch)
                    run = whisper_run(model, wav, options)
                    if batch not in runs or run["seconds"] < runs[batch]["seconds"]:
                        runs[batch] = run
            base = runs[0]
            rows = []
            for batch, run in runs.items():
                run["speedup"] = round(base["seconds"] / run["seconds"], 3)
                run["cpu_speedup"] = round(base["cpu_seconds"] / run["cpu_seconds"], 3)
                run["words"] = len(run["text"].split())
                run["agreement_with_sequential"] = round(agreement(base["text"], run["text"]), 3)
                rows.append(
                    [
                        f"batch {batch}" if batch else "sequential",
                        f"{run['seconds']:.2f}",
                        f"{run['seconds'] / run['duration']:.3f}",
                        f"{run['speedup']:.2f}",
                        f"{run['cpu_seconds']:.1f}",
                        f"{run['cpu_speedup']:.2f}",
                        f"{run['first_segment_seconds'] or 0:.1f}",
                        run["segments"],
                        run["words"],
                        f"{run['agreement_with_sequential']:.1%}",
                    ]
                )
            markdown += (
                f"### {video.name} ({base['duration']:.1f} s, {base['speech_duration']:.1f} s speech)\n\n"
            )
            markdown += md_table(
                ["path", "wall, s", "× real time", "speed-up (wall)", "CPU, s", "speed-up (CPU)",
                 "1st segment at, s", "segments", "words", "words as sequential"],
                rows,
            )  # fmt: skip
            markdown += "\n"
            OUT.mkdir(parents=True, exist_ok=True)
            for batch, run in runs.items():  # the texts, for reading the differences
                name = f"asr-batch-{video.stem}-{batch or 'sequential'}.txt"
                (OUT / name).write_text(run.pop("text") + "\n")
            results.append({"video": video.name, "runs": {str(b): r for b, r in runs.items()}})
    config = {
        "model": args.model,
        "device": args.device,
        "compute_type": args.compute_type,
        "threads": args.threads,
        "beam_size": args.beam_size,
        "repeat": args.repeat,
        "load_seconds": round(load_seconds, 2),
    }
    save("asr-batch", info, {"config": config, "videos": results}, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
