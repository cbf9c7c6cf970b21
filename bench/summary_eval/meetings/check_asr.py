#!/usr/bin/env python3
"""Check that every fact of a rendered meeting survives ASR.

Transcribes ``<meeting>/meeting.mp4`` with whisper-base (the same call as ``bench/summary_eval/
devset.py``: CPU, int8, beam 5, VAD) and writes ``<meeting>/asr_check.txt``: a rough WER against
``reference.txt``, the transcript with times, and for every decision, action item and number of
``facts.json`` whether all its match groups are found in the transcript text (case-insensitive
substrings, ё = е) and which alternatives hit. A fact whose groups are not all found is marked
``[--]``: fix the script, voice or match groups and render again.

    .venv/bin/python bench/summary_eval/meetings/check_asr.py bench/summary_eval/meetings/<id> [...]

Exit status 1 when any fact is not findable.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
WHISPER = ROOT / ".models" / "whisper-base"


def norm(text: str) -> str:
    return text.lower().replace("ё", "е")


def words(text: str) -> list[str]:
    return re.findall(r"[\w%$]+", norm(text))


def wer(ref: list[str], hyp: list[str]) -> float:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / max(len(ref), 1)


def label(kind: str, it: dict[str, Any]) -> str:
    if kind == "decisions":
        return str(it["text"])
    if kind == "action_items":
        return f"{it['owner']}: {it['task']} ({it['due']})"
    return f"{it.get('what')} = {it.get('value')} {it.get('unit', '')}".strip()


def check(meeting: Path, model: Any) -> bool:
    facts = json.loads((meeting / "facts.json").read_text(encoding="utf-8"))
    segments, info = model.transcribe(
        str(meeting / "meeting.mp4"), language=facts["language"], beam_size=5, vad_filter=True
    )
    segs = [(s.start, s.end, s.text.strip()) for s in segments]
    text = " ".join(t for _, _, t in segs)
    low = norm(text)
    reference = (meeting / "reference.txt").read_text(encoding="utf-8")
    lines = [
        f"# {facts['id']} — ASR check (whisper-base, cpu int8, beam 5, vad_filter, "
        f"language={facts['language']})",
        f"# audio {info.duration:.1f} s, {len(segs)} segments, rough WER vs reference.txt "
        f"{wer(words(reference), words(text)):.2f} (numbers as digits count as errors)",
        "",
        "## transcript",
    ]
    lines += [f"[{a:6.1f}-{b:6.1f}] {t}" for a, b, t in segs]
    lines += ["", "## facts (every match group must have an alternative in the transcript)"]
    ok_all, counts = True, {}
    for kind in ("decisions", "action_items", "numbers"):
        got = 0
        for it in facts.get(kind, []):
            hits = [[alt for alt in g if norm(alt) in low] for g in it["match"]]
            ok = all(hits)
            got += ok
            ok_all &= ok
            groups = "; ".join(
                ("+" + "|".join(h) if h else "MISSING(" + "|".join(g) + ")")
                for g, h in zip(it["match"], hits, strict=True)
            )
            lines.append(f"[{'ok' if ok else '--'}] {kind}: {label(kind, it)}  <- {groups}")
        counts[kind] = (got, len(facts.get(kind, [])))
    summary = ", ".join(f"{k} {g}/{n}" for k, (g, n) in counts.items())
    lines += ["", f"findable: {summary}"]
    (meeting / "asr_check.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{facts['id']}: {info.duration:.0f} s, {summary}" + ("" if ok_all else "  <-- MISSING"))
    for line in lines:
        if line.startswith("[--]"):
            print("  " + line)
    return ok_all


def main() -> int:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(WHISPER), device="cpu", compute_type="int8", cpu_threads=2)
    ok = True
    for arg in sys.argv[1:]:
        ok &= check(Path(arg), model)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
