#!/usr/bin/env python3
"""Summary evaluation: the scripted meetings in tests/summarizer/data/ (with facts.json: who
decided what, who does what by when) through the Summarizer with one engine; prints a table and
writes bench/summary_eval/RESULTS.md. Not a test: it measures.

    .venv/bin/python bench/summary_eval/run.py                       # llama.cpp, the CPU default 1.5B
    .venv/bin/python bench/summary_eval/run.py --model .models/qwen2.5-0.5b-instruct/model.gguf
    .venv/bin/python bench/summary_eval/run.py --engine openai --base-url http://vllm:8000/v1

Scores per meeting:
- decisions: facts recalled (a konspekt decision mentions one of the fact's keywords);
- actions: action items recalled with the right owner *and* due date (task keyword, owner one of
  the fact's person's word forms, due sharing a word with the fact's due); "task+owner" without due;
- invented: the model's decisions and action items that were not said: dropped by the evidence
  check, a deferred topic turned into a decision, an owner who is not in the meeting, or a task
  with a due date other than the one said for it; "model" is over everything the model wrote,
  "kept" over what is left in the konspekt after the checks;
- language: whether title, summary and items are written in the meeting's language;
- seconds (wall) and answer tokens per second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "summarizer" / "data"
DEFAULT_MODEL = ROOT / ".models" / "qwen2.5-1.5b-instruct" / "model.gguf"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

from konspekt.transcripts import transcript_from_json  # noqa: E402
from konspekt.v1 import common_pb2  # noqa: E402
from konspekt_summarizer.dates import number_of  # noqa: E402
from konspekt_summarizer.engine import load_engine  # noqa: E402
from konspekt_summarizer.evidence import same_word  # noqa: E402
from konspekt_summarizer.konspekt import Summarizer  # noqa: E402
from konspekt_summarizer.settings import SummarizerSettings  # noqa: E402

_WORD = re.compile(r"\w+")
_FILLER = {"by", "до", "к", "ко", "the", "on", "в", "во", "next"}


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _FILLER]


def mentions(text: str, keywords: list[str]) -> bool:
    return any(k.lower() in text.lower() for k in keywords)


def is_person(owner: str, people: list[str]) -> bool:
    return any(same_word(w, p.lower()) for w in words(owner) for p in people)


def same_due(due: str, expected: str | list[str]) -> bool:
    """Every word of one of the expected forms is in ``due`` (word forms and "14th" = "14"
    allowed): "by March 14th" is "March 14", "March 10th" is not; "до пятницы" is "пятница"."""
    got = [number_of(w) for w in words(due)]
    forms = [expected] if isinstance(expected, str) else expected
    return any(
        all(any(same_word(number_of(e), g) for g in got) for e in words(form)) and words(form)
        for form in forms
    )


def first_form(expected: str | list[str]) -> str:
    return expected if isinstance(expected, str) else expected[0]


def cyrillic_share(text: str) -> float:
    letters = re.findall(r"[a-zа-яё]", text, re.IGNORECASE)
    return len(re.findall(r"[а-яё]", text, re.IGNORECASE)) / max(len(letters), 1)


@dataclass
class Score:
    meeting: str
    language: str
    decisions: tuple[int, int]
    actions: tuple[int, int]
    task_owner: tuple[int, int]
    produced: int  # decisions + action items the model wrote (before the checks)
    dropped: int  # of those, dropped by the evidence check
    wrong_kept: int  # kept but not said: a deferred topic as decision, an owner not in the meeting
    in_language: bool
    seconds: float
    answer_tokens: int
    model_seconds: float
    calls: int
    missed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.answer_tokens / self.model_seconds if self.model_seconds else 0.0


def score(
    name: str,
    fact: dict[str, Any],
    k: common_pb2.Konspekt,
    warnings: list[str],
    seconds: float,
    usage: Any,
) -> Score:
    missed: list[str] = []
    decisions = 0
    for keywords in fact["decisions"]:
        if any(mentions(d.text, keywords) for d in k.decisions):
            decisions += 1
        else:
            missed.append(f"decision {keywords[0]!r}")
    actions = task_owner = 0
    for item in fact["action_items"]:
        by_owner = [
            a
            for a in k.action_items
            if mentions(a.task, item["keywords"]) and is_person(a.owner, [item["owner"]])
        ]
        if by_owner:
            task_owner += 1
        if any(same_due(a.due, item["due"]) for a in by_owner):
            actions += 1
        else:
            got = f" (got due {by_owner[0].due!r})" if by_owner else ""
            missed.append(
                f"action {item['owner']}: {item['keywords'][0]!r} by {first_form(item['due'])!r}{got}"
            )
    dropped = sum(1 for w in warnings if w.startswith(("decision ", "action item ")) and " dropped: " in w)
    deferred = [d.text for d in k.decisions if mentions(d.text, fact["deferred"])]
    strangers = [a.owner for a in k.action_items if a.owner and not is_person(a.owner, fact["people"])]
    wrong_due = [
        f"{a.task!r}: {a.due!r} (said: {first_form(item['due'])!r})"
        for item in fact["action_items"]
        for a in k.action_items
        if a.due and mentions(a.task, item["keywords"]) and not same_due(a.due, item["due"])
    ]
    notes = [f"deferred topic as a decision: {t!r}" for t in deferred]
    notes += [f"owner not in the meeting: {o!r}" for o in strangers]
    notes += [f"wrong due date: {w}" for w in wrong_due]
    notes += [f"warning: {w}" for w in warnings]
    text = " ".join(
        [k.title, k.summary]
        + [p.text for p in [*k.key_points, *k.decisions]]
        + [a.task for a in k.action_items]
    )
    share = cyrillic_share(text)
    in_language = share > 0.8 if fact.get("language", k.language) == "ru" else share < 0.05
    return Score(
        meeting=name,
        language=str(fact.get("language", "")),
        decisions=(decisions, len(fact["decisions"])),
        actions=(actions, len(fact["action_items"])),
        task_owner=(task_owner, len(fact["action_items"])),
        produced=len(k.decisions) + len(k.action_items) + dropped,
        dropped=dropped,
        wrong_kept=len(deferred) + len(strangers) + len(wrong_due),
        in_language=in_language,
        seconds=seconds,
        answer_tokens=usage.completion_tokens,
        model_seconds=usage.seconds,
        calls=usage.calls,
        missed=missed,
        notes=notes,
    )


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "-"


def table(scores: list[Score]) -> str:
    head = (
        "| meeting | decisions | actions (owner+due) | task+owner | invented (model) | invented (kept) "
        "| language ok | seconds | answer tok/s | calls |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for s in scores:
        kept = s.produced - s.dropped
        rows.append(
            f"| {s.meeting} | {s.decisions[0]}/{s.decisions[1]} | {s.actions[0]}/{s.actions[1]} "
            f"| {s.task_owner[0]}/{s.task_owner[1]} "
            f"| {s.dropped + s.wrong_kept}/{s.produced} ({pct(s.dropped + s.wrong_kept, s.produced)}) "
            f"| {s.wrong_kept}/{kept} ({pct(s.wrong_kept, kept)}) | {'yes' if s.in_language else 'NO'} "
            f"| {s.seconds:.0f} | {s.tokens_per_second:.1f} | {s.calls} |"
        )
    return head + "\n".join(rows) + "\n"


HISTORY_MARK = "## History"


def totals(scores: list[Score], label: str) -> str:
    """Recall of decisions + action items (with owner and due) together, as the targets count them."""
    found = sum(s.decisions[0] + s.actions[0] for s in scores)
    whole = sum(s.decisions[1] + s.actions[1] for s in scores)
    kept = sum(s.produced - s.dropped for s in scores)
    return (
        f"{label}: decisions and action items (owner + due) recalled {found}/{whole} ({pct(found, whole)}), "
        f"decisions {pct(sum(s.decisions[0] for s in scores), sum(s.decisions[1] for s in scores))}, "
        f"actions {pct(sum(s.actions[0] for s in scores), sum(s.actions[1] for s in scores))}; "
        f"invented (kept) {pct(sum(s.wrong_kept for s in scores), kept)}; "
        f"in the meeting's language {sum(s.in_language for s in scores)}/{len(scores)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--engine", choices=["llamacpp", "openai", "vllm"], default="llamacpp")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="GGUF path (llamacpp) or HF id (vllm)")
    parser.add_argument("--base-url", default="", help="openai: the server's API root")
    parser.add_argument("--api-model", default="", help="openai: served model name")
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--max-tokens", type=int, default=900)
    parser.add_argument("--temperature", type=float, default=None, help="default: the stage's setting")
    parser.add_argument("--repeat-penalty", type=float, default=None, help="default: the stage's setting")
    parser.add_argument("--runs", type=int, default=1, help="runs per meeting (sampling varies)")
    parser.add_argument("--meetings", nargs="*", help="file names in tests/summarizer/data (default: all)")
    parser.add_argument(
        "--out",
        default=str(RESULTS),
        help="markdown file to write ('' = none); text under its '## History' heading is kept",
    )
    args = parser.parse_args(argv)

    facts: dict[str, Any] = json.loads((DATA / "facts.json").read_text("utf-8"))
    meetings = args.meetings or sorted(facts)
    values: dict[str, Any] = {
        "engine": args.engine,
        "n_ctx": args.n_ctx,
        "max_tokens": args.max_tokens,
        "port": 0,
    }
    if args.temperature is not None:
        values["temperature"] = args.temperature
    if args.repeat_penalty is not None:
        values["repeat_penalty"] = args.repeat_penalty
    if args.engine == "openai":
        values.update(base_url=args.base_url, api_model=args.api_model)
    else:
        values["model"] = args.model
    settings = SummarizerSettings.model_validate(values)
    started = time.monotonic()
    engine = load_engine(settings)
    load_seconds = time.monotonic() - started
    summarizer = Summarizer(engine, settings)

    scores: list[Score] = []
    for run in range(args.runs):
        for name in meetings:
            transcript = transcript_from_json((DATA / name).read_bytes())
            fact = dict(facts[name])
            fact.setdefault("language", transcript.language)
            t0 = time.monotonic()
            k, usage, warnings = summarizer.summarize(transcript)
            seconds = time.monotonic() - t0
            label = f"{name} #{run + 1}" if args.runs > 1 else name
            s = score(label, fact, k, warnings, seconds, usage)
            scores.append(s)
            print(
                f"{label}: {seconds:.0f} s; missed {s.missed or 'nothing'}; notes {s.notes}",
                file=sys.stderr,
            )
            for d in k.decisions:
                print(f"  decision [{d.segment_index}] {d.text}", file=sys.stderr)
            for a in k.action_items:
                print(
                    f"  action [{a.segment_index}] {a.task} | owner {a.owner!r} | due {a.due!r}",
                    file=sys.stderr,
                )

    rendered = table(scores)
    languages = sorted({s.language for s in scores})
    summary = (
        "\n"
        + "\n".join(
            [totals(scores, "All")]
            + [totals([s for s in scores if s.language == lang], lang.upper()) for lang in languages]
        )
        + "\n"
    )
    print(rendered + summary)
    if args.out:
        out = Path(args.out)
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        source = Path(args.model).parent.name if args.engine == "llamacpp" else args.model or args.base_url
        engine_line = (
            f"engine `{args.engine}`, model `{engine.name}` ({source}), "
            f"n_ctx {settings.n_ctx}, max_tokens {settings.max_tokens}, temperature {settings.temperature}, "
            f"repeat_penalty {settings.repeat_penalty}"
        )
        command = "bench/summary_eval/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
        details = "\n".join(
            f"- **{s.meeting}**: missed {', '.join(s.missed) or 'nothing'}"
            + "".join(f"\n  - {n}" for n in s.notes)
            for s in scores
        )
        old = out.read_text("utf-8") if out.is_file() else ""
        history = old[old.index(HISTORY_MARK) :] if HISTORY_MARK in old else ""
        out.write_text(
            "# Summary evaluation\n\n"
            "Written by `bench/summary_eval/run.py` (see its docstring for how each column is scored); "
            "the meetings and their facts are in `tests/summarizer/data/`.\n\n"
            f"{when}; `{command.strip()}`; {engine_line}; {platform.machine()}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; "
            f"model load + ping {load_seconds:.0f} s.\n\n"
            + rendered
            + summary
            + "\nDetails:\n\n"
            + details
            + "\n"
            + ("\n" + history if history else ""),
            encoding="utf-8",
        )
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
