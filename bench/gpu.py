#!/usr/bin/env python3
"""GPU benchmark (for a machine with an NVIDIA GPU, CUDA and vllm installed): ASR with a large
Whisper model in fp16, sequential against batched; then the vLLM summarizer: one konspekt of
the transcript through the project's Summarizer (answer tokens per second, as a job sees it) and
the engine's throughput with several schema-constrained requests at once (continuous batching).
Not a test: it prints markdown and writes bench/out/.

    .venv/bin/python bench/gpu.py --asr-model /models/whisper-large-v3 \\
        --llm-model /models/llama-3.1-8b-instruct [--video PATH] [--long 60] [--batch-size 16]
        [--parallel 1 4 16] [--no-asr | --no-llm]

The ASR model is a local CTranslate2 folder (e.g. Systran/faster-whisper-large-v3), the LLM a
local folder or a Hugging Face id vLLM can load. Without --no-asr the LLM part summarizes the
transcript just made; with it, the testdata transcript of --video.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchlib import (
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

from konspekt.v1 import common_pb2

DEFAULT_VIDEO = TESTDATA / "video" / "news_en_169s.mp4"


def check_cuda() -> int:
    """Number of CUDA devices CTranslate2 sees; exits with a clear message when there are none."""
    import ctranslate2

    count = int(ctranslate2.get_cuda_device_count())
    if count == 0:
        raise SystemExit("no CUDA device visible to CTranslate2: bench/gpu.py needs an NVIDIA GPU")
    return count


def asr(video: Path, model_dir: str, compute_type: str, batch_size: int) -> tuple[dict[str, Any], Any]:
    """Sequential and batched runs of one model on the video's audio; (results, transcript)."""
    model, load_seconds = load_whisper(model_dir, "cuda", compute_type, 1)
    segments: list[common_pb2.Segment] = []

    def keep(seg: Any) -> None:
        segments.append(common_pb2.Segment(index=len(segments), start=seg.start, end=seg.end, text=seg.text))

    results: dict[str, Any] = {"model": model_dir, "compute_type": compute_type, "load_seconds": load_seconds}
    with tempfile.TemporaryDirectory() as tmp:
        wav = str(extract_wav(video, Path(tmp) / "audio.wav"))
        for batch in (0, batch_size):
            print(f"ASR {'batch ' + str(batch) if batch else 'sequential'} ...", file=sys.stderr)
            run = whisper_run(model, wav, WhisperOptions(batch_size=batch), keep if batch else None)
            run.pop("text")
            results["batched" if batch else "sequential"] = run
    transcript = common_pb2.Transcript(
        language=results["batched"]["language"], duration=results["batched"]["duration"], segments=segments
    )
    del model
    gc.collect()
    return results, transcript


def transcript_from_text(path: Path) -> common_pb2.Transcript:
    """A testdata transcript (plain text) as segments of one sentence, 5 s apart."""
    sentences = [s.strip() + "." for s in path.read_text().replace("\n", " ").split(". ") if s.strip()]
    segments = [
        common_pb2.Segment(index=i, start=5.0 * i, end=5.0 * i + 5.0, text=s) for i, s in enumerate(sentences)
    ]
    return common_pb2.Transcript(language="en", duration=5.0 * len(segments), segments=segments)


def llm(
    transcript: Any, model: str, max_model_len: int, memory: float, parallel: list[int]
) -> dict[str, Any]:
    from konspekt_summarizer.answer import konspekt_schema
    from konspekt_summarizer.engine import load_engine
    from konspekt_summarizer.konspekt import Summarizer
    from konspekt_summarizer.settings import SummarizerSettings

    settings = SummarizerSettings.model_validate(
        {"engine": "vllm", "model": model, "max_model_len": max_model_len, "gpu_memory_utilization": memory}
    )
    started = time.monotonic()
    engine = load_engine(settings)
    results: dict[str, Any] = {"model": model, "load_seconds": round(time.monotonic() - started, 1)}

    print("one konspekt through the Summarizer ...", file=sys.stderr)
    started = time.monotonic()
    _konspekt, usage, _warnings = Summarizer(engine, settings).summarize(transcript)
    results["konspekt"] = {
        "wall_seconds": round(time.monotonic() - started, 2),
        "calls": usage.calls,
        "prompt_tokens": usage.prompt_tokens,
        "answer_tokens": usage.completion_tokens,
        "answer_tokens_per_second": round(usage.completion_tokens / usage.seconds, 1) if usage.seconds else 0,
    }

    text = " ".join(seg.text for seg in transcript.segments)
    budget = max_model_len - settings.max_tokens - 256
    while engine.count_tokens(text) > budget:  # keep the prompt inside the context
        text = text[: int(len(text) * 0.8)]
    messages = [
        {"role": "system", "content": "Write a konspekt of the transcript as JSON."},
        {"role": "user", "content": text},
    ]
    schema = konspekt_schema()

    def one(_i: int) -> Any:
        return engine.complete_json(messages, schema, settings.max_tokens)

    rounds = []
    for n in parallel:
        print(f"{n} request(s) at once ...", file=sys.stderr)
        started = time.monotonic()
        with ThreadPoolExecutor(n) as pool:
            done = list(pool.map(one, range(n)))
        wall = time.monotonic() - started
        tokens = sum(c.completion_tokens for c in done)
        rounds.append(
            {
                "requests": n,
                "completed": len(done),
                "wall_seconds": round(wall, 2),
                "answer_tokens": tokens,
                "tokens_per_second": round(tokens / wall, 1),
            }
        )
    results["parallel"] = rounds
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--video", type=existing_file, default=DEFAULT_VIDEO)
    parser.add_argument("--long", type=float, metavar="MINUTES", help="a bench/make_long.py video instead")
    parser.add_argument("--asr-model", help="local CTranslate2 Whisper folder, e.g. faster-whisper-large-v3")
    parser.add_argument("--compute-type", default="float16")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--no-asr", dest="do_asr", action="store_false")
    parser.add_argument("--llm-model", help="vLLM model: local folder or Hugging Face id")
    parser.add_argument("--max-model-len", type=int, default=8192)
    parser.add_argument("--gpu-memory", type=float, default=0.85, help="vLLM gpu_memory_utilization")
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 4, 16], help="requests at once")
    parser.add_argument("--no-llm", dest="do_llm", action="store_false")
    args = parser.parse_args()
    if args.do_asr and not args.asr_model:
        parser.error("--asr-model is required (or --no-asr)")
    if args.do_llm and not args.llm_model:
        parser.error("--llm-model is required (or --no-llm)")
    if args.batch_size < 1 or any(n < 1 for n in args.parallel):
        parser.error("--batch-size and --parallel must be positive")
    video: Path = args.video
    if args.long:
        from make_long import long_video

        video = long_video(args.long)
    info = RunInfo.now()
    devices = check_cuda()
    result: dict[str, Any] = {"video": video.name, "cuda_devices": devices}
    markdown = ""
    if args.do_asr:
        result["asr"], transcript = asr(video, args.asr_model, args.compute_type, args.batch_size)
        rows = []
        for key in ("sequential", "batched"):
            run = result["asr"][key]
            label = f"batch {args.batch_size}" if key == "batched" else "sequential"
            rows.append([label, f"{run['seconds']:.1f}", f"{run['seconds'] / run['duration']:.4f}"])
        markdown += (
            f"ASR {Path(args.asr_model).name} {args.compute_type}, beam 5, VAD on, "
            f"{video.name} ({result['asr']['sequential']['duration']:.0f} s):\n\n"
            + md_table(["path", "seconds", "× real time"], rows)
            + "\n"
        )
    else:
        transcript = transcript_from_text(TESTDATA / "transcripts" / f"{video.stem}.asr-whisper-base.txt")
    if args.do_llm:
        result["llm"] = llm(transcript, args.llm_model, args.max_model_len, args.gpu_memory, args.parallel)
        k = result["llm"]["konspekt"]
        rows = [
            [r["requests"], f"{r['wall_seconds']:.1f}", r["answer_tokens"], f"{r['tokens_per_second']:.0f}"]
            for r in result["llm"]["parallel"]
        ]
        markdown += (
            f"vLLM {args.llm_model}: one konspekt in {k['wall_seconds']:.1f} s ({k['calls']} calls, "
            f"{k['answer_tokens']} answer tokens, {k['answer_tokens_per_second']:.0f} tokens/s)\n\n"
            + md_table(["requests at once", "wall, s", "answer tokens", "tokens/s (all requests)"], rows)
        )
    save("gpu", info, result, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
