#!/usr/bin/env python3
"""End-to-end benchmark: videos through the whole local stack one after another: per-stage
seconds, the real-time factor (processing seconds ÷ media seconds) and the peak memory of every
service process; then raw faster-whisper on the same audio with the ASR stage's settings, in the
same run (the pipeline's ASR overhead). Not a test: it prints markdown and writes bench/out/.

    .venv/bin/python bench/e2e.py                        # testdata/video/news_en_169s.mp4
    .venv/bin/python bench/e2e.py --long 10 --long 60    # bench/make_long.py videos (cached)
    .venv/bin/python bench/e2e.py --video a.mp4 --video b.mkv --env KONSPEKT_ASR_BATCH_SIZE=8

Without --url the script starts SeaweedFS, the four stages and the gateway (konspekt_devstack)
with the embedded defaults; --env KEY=VALUE overrides any setting of any of them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchlib import (
    TESTDATA,
    JobRun,
    MemorySampler,
    RunInfo,
    ServiceMemory,
    WhisperOptions,
    asr_settings,
    existing_file,
    extract_wav,
    load_whisper,
    local_stack,
    md_table,
    media_seconds,
    memory_table,
    parse_env,
    run_job,
    save,
    service_pids,
    whisper_run,
)
from make_long import long_video

from konspekt_devstack import default_stage_env

DEFAULT_VIDEO = TESTDATA / "video" / "news_en_169s.mp4"


def raw_whisper(videos: list[Path], env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """faster-whisper alone (model loaded and warmed once), with the ASR stage's settings."""
    settings = asr_settings(env)
    options = WhisperOptions.from_settings(settings)
    model, load_seconds = load_whisper(
        settings.model, settings.device, settings.compute_type, settings.threads
    )
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for video in videos:
            wav = extract_wav(video, Path(tmp) / "audio.wav")
            print(f"raw faster-whisper on {video.name} ...", file=sys.stderr)
            run = whisper_run(model, str(wav), options)
            run.pop("text")
            results[video.name] = {**run, "load_seconds": round(load_seconds, 2)}
    return results


def report(
    run: JobRun, media: float, raw: dict[str, Any] | None, memory: dict[str, ServiceMemory] | None
) -> tuple[dict[str, Any], str]:
    stages: dict[str, float] = run.job.get("stage_seconds") or {}

    def row(name: str, seconds: float) -> list[object]:
        return [name, f"{seconds:.2f}", f"{seconds / media:.3f}"]

    rows = [row("upload (HTTP, streamed)", run.upload_seconds)]
    rows += [row(name, secs) for name, secs in stages.items()]
    rows.append(row("**end to end (upload → done, wall)**", run.wall_seconds))
    ratio = None
    if raw is not None:
        rows.append(row("raw faster-whisper, same audio and settings", raw["seconds"]))
        if stages.get("asr") and raw["seconds"] > 0:
            ratio = stages["asr"] / raw["seconds"]
    text = f"### {run.video} ({media:.1f} s of media)\n\n"
    text += md_table(["stage", "seconds", "× real time"], rows)
    if ratio is not None:
        text += f"\n**ASR stage ÷ raw faster-whisper = {ratio:.3f}**\n"
    if memory:
        text += "\nMemory of each service during this job:\n\n" + memory_table(memory)
    result = {
        **run.to_json(),
        "media_seconds": media,
        "rtf": round(run.wall_seconds / media, 4),
        "raw_whisper": raw,
        "asr_overhead_ratio": round(ratio, 4) if ratio is not None else None,
        "memory": {name: m.to_mb() for name, m in (memory or {}).items()},
    }
    return result, text


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("video", nargs="?", type=existing_file, help="a video (default: news_en_169s.mp4)")
    parser.add_argument("--video", dest="videos", action="append", type=existing_file, default=[])
    parser.add_argument(
        "--long", type=float, action="append", default=[], metavar="MINUTES",
        help="a bench/make_long.py video this many minutes long (built if missing)",
    )  # fmt: skip
    parser.add_argument("--url", help="use a running gateway (no memory figures, no --env)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="stack setting")
    parser.add_argument("--no-raw", dest="raw", action="store_false", help="skip raw faster-whisper")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds to wait for one job")
    args = parser.parse_args()
    videos: list[Path] = ([args.video] if args.video else []) + args.videos
    videos += [long_video(minutes) for minutes in args.long]
    videos = videos or [DEFAULT_VIDEO]
    overrides = parse_env(args.env)
    info = RunInfo.now()

    runs: list[tuple[JobRun, dict[str, ServiceMemory] | None]] = []
    if args.url:
        runs = [(run_job(args.url, v, args.timeout), None) for v in videos]
    else:
        with local_stack(overrides) as stack, MemorySampler(service_pids(stack)) as sampler:
            for video in videos:
                sampler.reset()
                print(f"job: {video.name} ...", file=sys.stderr)
                run = run_job(stack.url, video, args.timeout)
                runs.append((run, sampler.snapshot()))
    failed = [run for run, _ in runs if not run.ok]
    for run in failed:
        print(f"job {run.video} failed: {run.job.get('error')}", file=sys.stderr)

    env = {**os.environ, **default_stage_env(), **overrides}
    raw = raw_whisper([v for v, (r, _) in zip(videos, runs, strict=True) if r.ok], env) if args.raw else {}
    settings = asr_settings(env)
    markdown = (
        f"ASR: {settings.model_name} {settings.compute_type} on {settings.device}, {settings.threads} "
        f"threads, beam {settings.beam_size}, VAD {'on' if settings.vad else 'off'}, batch "
        f"{settings.batch_size if settings.batch_size > 1 else 'off (sequential)'}"
        + (f"; overrides: {', '.join(f'{k}={v}' for k, v in overrides.items())}" if overrides else "")
        + "\n\n"
    )
    results = []
    for video, (run, memory) in zip(videos, runs, strict=True):
        media = float(run.job.get("audio_duration") or 0) or media_seconds(video)
        result, text = report(run, media, raw.get(video.name), memory)
        results.append(result)
        markdown += text + "\n"
    save("e2e", info, {"overrides": overrides, "runs": results}, markdown)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
