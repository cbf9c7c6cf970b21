#!/usr/bin/env python3
"""Scores konspekts made through a running gateway by ``../shared/eval-dev/run.py --out DIR``
(one DIR per run) and writes the table for bench/summary_eval/RESULTS.md.

Per meeting and per language: strict recall (a decision only in ``decisions``; a task with owner
and due in one action item; numbers anywhere), items kept that the meeting never said (fewer than
half of their content words in the spoken script: "invented kept"), timestamps outside the
utterance the matched fact was said in (``timeline.tsv``), summarizer seconds, model calls and
tokens, and summarizer seconds ÷ the cost of one pass (both measured in the same call).

    .venv/bin/python bench/summary_eval/report.py --runs out/run1 out/run2 [MEETING_DIR ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EVAL_DEV = ROOT.parent / "shared" / "eval-dev"
OWN = Path(__file__).resolve().parent / "meetings"
KINDS = ("decisions", "action_items", "numbers")
_WORD = re.compile(r"\w+")
#: seconds of slack around an utterance for a cited time
SLACK = 1.5


def hit(text: str, groups: list[list[str]]) -> bool:
    low = text.lower().replace("ё", "е")
    return all(any(alt.lower().replace("ё", "е") in low for alt in g) for g in groups)


def units(k: dict[str, Any]) -> dict[str, list[tuple[str, float]]]:
    return {
        "decisions": [(d.get("text", ""), float(d.get("at", 0))) for d in k.get("decisions", [])],
        "action_items": [
            (" ".join(str(a.get(f, "")) for f in ("task", "owner", "due")), float(a.get("at", 0)))
            for a in k.get("action_items", [])
        ],
    }


def stems(text: str) -> set[str]:
    return {w[:5] for w in _WORD.findall(text.lower().replace("ё", "е")) if len(w) > 3}


def utterances(meeting: Path) -> list[tuple[float, float, str]]:
    with (meeting / "timeline.tsv").open(encoding="utf-8") as f:
        return [
            (float(r["start_s"]), float(r["end_s"]), r["text"]) for r in csv.DictReader(f, delimiter="\t")
        ]


def in_its_utterance(at: float, fact: dict[str, Any], said: list[tuple[float, float, str]]) -> bool:
    """Whether ``at`` lies in an utterance that says part of the fact (tasks are often given over
    two lines: the item may cite either)."""
    return any(
        start - SLACK <= at <= end + SLACK and any(hit(text, [g]) for g in fact["match"])
        for start, end, text in said
    )


def score(meeting: Path, k: dict[str, Any]) -> dict[str, Any]:
    facts = json.loads((meeting / "facts.json").read_text(encoding="utf-8"))
    said = utterances(meeting)
    spoken = stems(" ".join(t for _, _, t in said))
    whole = json.dumps(k, ensure_ascii=False)
    found = units(k)
    out: dict[str, Any] = {"language": facts["language"], "missed": [], "misplaced": 0}
    for kind in KINDS:
        got = 0
        for fact in facts.get(kind, []):
            if kind == "numbers":
                ok = hit(whole, fact["match"])
            else:
                matching = [at for text, at in found[kind] if hit(text, fact["match"])]
                ok = bool(matching)
                if ok and not any(in_its_utterance(at, fact, said) for at in matching):
                    out["misplaced"] += 1
            got += ok
            if not ok:
                out["missed"].append(
                    fact.get("text") or fact.get("what") or f"{fact['owner']}: {fact['task']}"
                )
        out[kind] = (got, len(facts.get(kind, [])))
    items = [text for kind in ("decisions", "action_items") for text, _ in found[kind]]
    out["items"] = len(items)
    out["invented"] = sum(1 for t in items if stems(t) and len(stems(t) & spoken) < len(stems(t)) / 2)
    out["in_language"] = k.get("language", "") == facts["language"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", required=True, help="run.py --out folders")
    ap.add_argument("meetings", nargs="*")
    a = ap.parse_args()
    dirs = [Path(m) for m in a.meetings] or [
        p.parent for base in (EVAL_DEV, OWN) for p in sorted(base.glob("*/facts.json"))
    ]
    per_lang: dict[str, dict[str, list[float]]] = {}
    print(
        "| run | meeting | decisions | action items | numbers | invented kept | misplaced | "
        "summarizer s | calls | tokens (prompt+answer) | ÷ one pass |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r, run in enumerate(a.runs, 1):
        for d in dirs:
            kfile, jfile = Path(run) / f"{d.name}.konspekt.json", Path(run) / f"{d.name}.job.json"
            if not kfile.exists():
                print(f"| {r} | {d.name} | no konspekt | | | | | | | | |")
                continue
            s = score(d, json.loads(kfile.read_text(encoding="utf-8")))
            job = json.loads(jfile.read_text(encoding="utf-8"))
            usage = job.get("model_usage") or {}
            seconds = float(job.get("stage_seconds", {}).get("summarizer", 0.0))
            one_pass = float(usage.get("one_pass_seconds") or 0.0)
            ratio = float(usage.get("seconds") or 0.0) / one_pass if one_pass else 0.0
            t = per_lang.setdefault(s["language"], {})
            for key, value in (
                *((kind, s[kind]) for kind in KINDS),
                ("invented", (s["invented"], s["items"])),
                ("misplaced", (s["misplaced"], 0)),
                ("seconds", (seconds, 1)),
                ("calls", (usage.get("calls", 0), 1)),
                ("model", (float(usage.get("seconds") or 0.0), one_pass)),
                ("language", (int(s["in_language"]), 1)),
            ):
                acc = t.setdefault(key, [0.0, 0.0])
                acc[0] += value[0]
                acc[1] += value[1]
            cells = " | ".join(f"{s[k][0]}/{s[k][1]}" for k in KINDS)
            print(
                f"| {r} | {d.name} | {cells} | {s['invented']}/{s['items']} | {s['misplaced']} | "
                f"{seconds:.0f} | {usage.get('calls', '')} | "
                f"{usage.get('prompt_tokens', '')}+{usage.get('completion_tokens', '')} | {ratio:.2f} |"
            )
    print()
    print(
        "| language | decisions | action items | numbers | invented kept | misplaced | konspekt in "
        "its language | summarizer s (mean) | calls (mean) | model s ÷ one pass |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for lang, t in sorted(per_lang.items()):

        def pct(key: str, t: dict[str, list[float]] = t) -> str:
            g, n = t[key]
            return f"{g:.0f}/{n:.0f} ({100 * g / max(n, 1):.0f} %)"

        runs = t["seconds"][1]
        print(
            f"| {lang} | {pct('decisions')} | {pct('action_items')} | {pct('numbers')} | {pct('invented')} | "
            f"{t['misplaced'][0]:.0f} | {pct('language')} | {t['seconds'][0] / runs:.0f} | "
            f"{t['calls'][0] / runs:.1f} | {t['model'][0] / max(t['model'][1], 1e-9):.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
