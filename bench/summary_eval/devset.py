#!/usr/bin/env python3
"""The summarizer alone on rendered meetings (``../shared/eval-dev`` and ``bench/summary_eval/
meetings``): each ``meeting.mp4`` is transcribed once with whisper-base (cached under
``bench/out/transcripts``), then summarized in process and scored strictly like the eval-dev
``run.py`` (a decision only in ``decisions``, a task with owner and due in one action item,
numbers anywhere). Quick loop for prompt and check changes; the published figures come from
``run.py`` through a running gateway. Prints per-language recall, calls, tokens and the time
against the cost of one pass (prompt tokens ÷ prompt tok/s + answer tokens ÷ answer tok/s, both
measured in this run).

    .venv/bin/python bench/summary_eval/devset.py [--out DIR] [MEETING_DIR ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EVAL_DEV = ROOT.parent / "shared" / "eval-dev"
OWN = Path(__file__).resolve().parent / "meetings"
CACHE = ROOT / "bench" / "out" / "transcripts"
WHISPER = ROOT / ".models" / "whisper-base"
MODEL = ROOT / ".models" / "qwen2.5-1.5b-instruct" / "model.gguf"

from konspekt.transcripts import to_json, transcript_from_json  # noqa: E402
from konspekt.v1 import common_pb2  # noqa: E402
from konspekt_summarizer.engine import load_engine  # noqa: E402
from konspekt_summarizer.konspekt import Summarizer  # noqa: E402
from konspekt_summarizer.settings import SummarizerSettings  # noqa: E402

KINDS = ("decisions", "action_items", "numbers")


def meetings(args: list[str]) -> list[Path]:
    if args:
        return [Path(a) for a in args]
    found = [p.parent for base in (EVAL_DEV, OWN) for p in sorted(base.glob("*/facts.json"))]
    return found


def rendered(meeting: Path) -> Path:
    """The meeting's video; our own meetings keep only their script in git and are rendered
    here the first time (eval-dev's render_meeting.py is deterministic for a toolchain)."""
    video = meeting / "meeting.mp4"
    if not video.exists():
        subprocess.run(
            [sys.executable, str(EVAL_DEV / "render_meeting.py"), str(meeting / "script.txt")], check=True
        )
    return video


def transcript(meeting: Path, language: str) -> common_pb2.Transcript:
    video = rendered(meeting)
    digest = hashlib.sha256(video.read_bytes()).hexdigest()[:16]
    cached = CACHE / f"{meeting.name}-{digest}.json"
    if cached.exists():
        return transcript_from_json(cached.read_text(encoding="utf-8"))
    from faster_whisper import WhisperModel  # only when a transcript is missing

    model = WhisperModel(str(WHISPER), device="cpu", compute_type="int8")
    segments, info = model.transcribe(str(video), language=language, beam_size=5, vad_filter=True)
    out = common_pb2.Transcript(language=language, duration=info.duration)
    for i, s in enumerate(segments):
        out.segments.append(common_pb2.Segment(index=i, start=s.start, end=s.end, text=s.text.strip()))
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(to_json(out))
    return out


class Replay:
    """The engine with its answers kept in ``folder`` by request: a second run with the same
    requests answers from there at once, so a change of the checks is judged on the same model
    answers in seconds (a request the change altered goes to the model). Bench only."""

    def __init__(self, engine: Any, folder: Path) -> None:
        self.engine, self.folder = engine, folder
        self.name, self.context_size, self.parallel = engine.name, engine.context_size, engine.parallel
        folder.mkdir(parents=True, exist_ok=True)

    def count_tokens(self, text: str) -> int:
        return int(self.engine.count_tokens(text))

    def complete_json(
        self, messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int, *args: Any, **kw: Any
    ) -> Any:
        from konspekt_summarizer.engine import Completion

        key = json.dumps([messages, schema, max_tokens], ensure_ascii=False, sort_keys=True)
        kept = self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
        if kept.exists():
            return Completion(**json.loads(kept.read_text(encoding="utf-8")))
        done = self.engine.complete_json(messages, schema, max_tokens, *args, **kw)
        kept.write_text(json.dumps(vars(done), ensure_ascii=False), encoding="utf-8")
        return done


def hit(text: str, groups: list[list[str]]) -> bool:
    low = text.lower().replace("ё", "е")
    return all(any(alt.lower().replace("ё", "е") in low for alt in g) for g in groups)


def score(facts: dict[str, Any], k: dict[str, Any]) -> dict[str, tuple[int, int, list[str]]]:
    """The strict score of eval-dev's run.py."""
    whole = json.dumps(k, ensure_ascii=False)
    units = {
        "decisions": [d.get("text", "") for d in k.get("decisions", [])],
        "action_items": [
            " ".join(str(a.get(f, "")) for f in ("task", "owner", "due")) for a in k.get("action_items", [])
        ],
    }
    out = {}
    for kind in KINDS:
        got, missed = 0, []
        for it in facts.get(kind, []):
            ok = any(hit(u, it["match"]) for u in units[kind]) if kind in units else hit(whole, it["match"])
            got += ok
            if not ok:
                missed.append(
                    it.get("text") or it.get("what") or f"{it['owner']}: {it['task']} ({it['due']})"
                )
        out[kind] = (got, len(facts.get(kind, [])), missed)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(MODEL))
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "devset"))
    ap.add_argument("meetings", nargs="*")
    ap.add_argument("--replay", help="keep the model's answers in this folder and answer from it (Replay)")
    ap.add_argument("--log", default="WARNING", help="log level of the summarizer (INFO: every call)")
    a = ap.parse_args()
    logging.basicConfig(level=a.log, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    dirs = meetings(a.meetings)
    facts = {d: json.loads((d / "facts.json").read_text(encoding="utf-8")) for d in dirs}
    transcripts = {d: transcript(d, facts[d]["language"]) for d in dirs}
    settings = SummarizerSettings(engine="llamacpp", model=a.model)
    engine = load_engine(settings)
    summarizer = Summarizer(Replay(engine, Path(a.replay)) if a.replay else engine, settings)
    totals: dict[str, dict[str, list[int]]] = {}
    cost = {"seconds": 0.0, "one_pass": 0.0, "calls": 0}
    print("| meeting | decisions | action items | numbers | s | calls | prompt+answer tok | missed |")
    print("|---|---|---|---|---|---|---|---|")
    for d in dirs:
        started = time.monotonic()
        lecture = facts[d].get("style") == "lecture"
        style = common_pb2.STYLE_LECTURE if lecture else common_pb2.STYLE_MEETING
        konspekt, usage, warnings = summarizer.summarize(transcripts[d], style)
        seconds = time.monotonic() - started
        from google.protobuf.json_format import MessageToDict

        k = MessageToDict(konspekt, preserving_proto_field_name=True)
        (out / f"{d.name}.json").write_text(
            json.dumps({"konspekt": k, "warnings": warnings}, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        s = score(facts[d], k)
        lang = facts[d]["language"]
        for kind, (got, n, _) in s.items():
            t = totals.setdefault(lang, {}).setdefault(kind, [0, 0])
            t[0] += got
            t[1] += n
        cost["seconds"] += seconds
        cost["one_pass"] += usage.one_pass_seconds()
        cost["calls"] += usage.calls
        missed = "; ".join(m for _, _, ms in s.values() for m in ms)
        cells = " | ".join(f"{g}/{n}" for g, n, _ in s.values())
        print(
            f"| {d.name} | {cells} | {seconds:.0f} | {usage.calls} | "
            f"{usage.prompt_tokens}+{usage.completion_tokens} | {missed} |",
            flush=True,
        )
    print()
    for lang, kinds in sorted(totals.items()):
        print(lang, ", ".join(f"{k} {g}/{n} ({100 * g / max(n, 1):.0f} %)" for k, (g, n) in kinds.items()))
    ratio = cost["seconds"] / max(cost["one_pass"], 1e-9)
    print(f"summarizer {cost['seconds']:.0f} s, {cost['calls']} calls, {ratio:.2f}x the cost of one pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
