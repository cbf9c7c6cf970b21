"""Long transcripts: overlapping windows, merge in rounds when the window summaries do not fit
the context together, deduplicated items, progress per window. The engine here answers from the
prompt it is given (no model), so what each call saw can be checked exactly."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from konspekt.v1 import common_pb2
from konspekt_summarizer.engine import TEMPLATE_OVERHEAD, Completion
from konspekt_summarizer.evidence import found_by_another_window
from konspekt_summarizer.konspekt import Summarizer
from konspekt_summarizer.settings import SummarizerSettings
from konspekt_summarizer.windows import Line, split_windows, transcript_lines

from .test_pure import CALLS_PER_WINDOW

_LINE = re.compile(r"^\[(\d\d:\d\d)\] (.*)$", re.MULTILINE)
_IDS = re.compile(r"\bw\d+\b")


def words(text: str) -> int:
    return len(text.split())


class EchoEngine:
    """Counts words as tokens and answers from the prompt: a window call decides every line that
    says "decided" and names its window ``wN`` in the summary (the other calls of a meeting's
    pass find no task and no key point); a merge call's summary names every ``wN`` of the parts
    it got. Each summary is padded to ``summary_words`` words, so that the parts are large
    against a small context. Refuses a prompt that does not fit its context."""

    name = "echo"

    def __init__(self, context_size: int, summary_words: int = 60) -> None:
        self.context_size = context_size
        self.parallel = 1
        self.summary_words = summary_words
        self.windows: list[list[str]] = []  # the labels of the lines each window's pass saw
        self.reads: list[list[str]] = []  # the same, of every call of the passes
        self.merges: list[list[str]] = []  # the window ids each merge call saw

    def count_tokens(self, text: str) -> int:
        return words(text)

    def pad(self, ids: list[str]) -> str:
        return " ".join(ids + ["pad"] * (self.summary_words - len(ids)))

    def complete_json(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        max_tokens: int,
        on_token: Callable[[int], None] | None = None,
    ) -> Completion:
        prompt = sum(words(m["content"]) for m in messages)
        assert prompt + max_tokens + TEMPLATE_OVERHEAD <= self.context_size, "the prompt does not fit"
        user = messages[-1]["content"]
        props = set(schema["properties"])
        answer: dict[str, Any] = {}
        if props == {"title", "summary"}:  # a merge
            ids = _IDS.findall(user)
            self.merges.append(ids)
            answer = {"title": "Merged", "summary": self.pad(ids)}
        else:  # a call of a window's pass
            lines = _LINE.findall(user)
            self.reads.append([label for label, _ in lines])
            if "decisions" in props:
                answer["decisions"] = [
                    {"text": text, "time": label} for label, text in lines if "decided" in text
                ]
            answer.update({name: [] for name in ("action_items", "key_points") if name in props})
            if "title" in props:  # the one call of the pass that writes the window's summary
                self.windows.append([label for label, _ in lines])
                answer.update(
                    title=f"Window {len(self.windows)}", summary=self.pad([f"w{len(self.windows)}"])
                )
        for n in range(1, 4):
            if on_token is not None:
                on_token(n)
        return Completion(json.dumps(answer), prompt, 3, 0.01)


def settings(max_tokens: int = 100) -> SummarizerSettings:
    return SummarizerSettings(engine="openai", base_url="http://model-server/v1", max_tokens=max_tokens)


def transcript(n: int) -> common_pb2.Transcript:
    t = common_pb2.Transcript(language="en", duration=n * 10.0)
    for i in range(n):
        text = (
            f"Topic {i}: we decided to do thing number {i}." if i % 8 == 0 else f"Talk about item {i} here."
        )
        t.segments.add(index=i, start=i * 10.0, end=i * 10.0 + 9.0, text=text)
    return t


def test_windows_overlap_and_cover_every_line_in_order() -> None:
    lines = [Line(i, f"00:{i:02d}", f"segment {i} has five words") for i in range(20)]
    windows = split_windows(lines, words, budget=30, overlap=10)  # 7 "tokens" a line
    assert len(windows) > 1
    assert all(sum(words(ln.render()) + 1 for ln in w) <= 30 for w in windows)
    seen: list[Line] = []
    for before, after in itertools.pairwise(windows):
        shared = [ln for ln in after if ln in before]
        assert shared == before[len(before) - len(shared) :]  # the tail of the window before
        assert len(shared) >= 1 and sum(words(ln.render()) + 1 for ln in shared) <= 10
    for w in windows:
        seen += [ln for ln in w if ln not in seen]
    assert seen == lines
    assert split_windows(lines, words, budget=30) == split_windows(lines, words, budget=30, overlap=0)
    # an overlap as large as a window still moves on
    assert [ln for w in split_windows(lines, words, 30, overlap=1000) for ln in w if ln == lines[-1]]


def test_merge_in_rounds_when_the_parts_do_not_fit_together() -> None:
    engine = EchoEngine(context_size=900)
    summarizer = Summarizer(engine, settings())
    t = transcript(300)
    progress: list[tuple[float, str]] = []
    k, usage, warnings = summarizer.summarize(t, on_progress=lambda f, m: progress.append((f, m)))

    windows = summarizer.plan_windows(t)
    n = len(windows)
    assert n >= 6 and len(engine.windows) == n
    # every line was read (windows overlap: some twice)
    read = [label for w in engine.windows for label in w]
    assert sorted(set(read)) == sorted(ln.label for ln in transcript_lines(t)) and len(read) > len(t.segments)
    # the merge went in rounds: the first calls saw some windows each, the last all of them...
    assert len(engine.merges) >= 3, engine.merges
    assert all(len(m) < n for m in engine.merges[:-1]) and engine.merges[0][0] == "w1"
    assert _IDS.findall(k.summary) == [f"w{i}" for i in range(1, n + 1)]  # ...but nothing was dropped
    assert not [w for w in warnings if "joined" in w]
    # one pass over each window: its calls, one after another, each with the window's lines
    per_window = CALLS_PER_WINDOW[common_pb2.STYLE_MEETING]
    assert engine.reads == [w for w in engine.windows for _ in range(per_window)]
    assert usage.calls == per_window * n + len(engine.merges)
    # every decision once (the overlap shows some lines twice), at its own segment
    decided = [s for s in t.segments if "decided" in s.text]
    assert [d.text for d in k.decisions] == [s.text for s in decided]
    assert [d.segment_index for d in k.decisions] == [s.index for s in decided]
    # progress per window, then the merge rounds, in order
    messages = [m for _, m in progress]
    for i in range(1, n + 1):
        assert any(m.startswith(f"window {i}/{n}:") for m in messages)
    assert any("round 1" in m for m in messages) and any(m.startswith("merging windows:") for m in messages)
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_parts_that_cannot_be_merged_are_joined_with_a_warning() -> None:
    # each window summary alone nearly fills what the merge call has room for
    engine = EchoEngine(context_size=900, summary_words=200)
    k, _, warnings = Summarizer(engine, settings()).summarize(transcript(100))
    assert len(engine.windows) >= 2 and not engine.merges
    assert any("joined instead" in w for w in warnings)
    assert _IDS.findall(k.summary) == [f"w{i}" for i in range(1, len(engine.windows) + 1)]


@pytest.mark.parametrize("n", [2, 5])  # one line of 8 words is quoted, not summarized
def test_short_transcripts_need_no_merge(n: int) -> None:
    engine = EchoEngine(context_size=4096)
    k, usage, _ = Summarizer(engine, settings()).summarize(transcript(n))
    assert usage.calls == CALLS_PER_WINDOW[common_pb2.STYLE_MEETING]  # one pass
    assert not engine.merges and k.summary.startswith("w1")


def test_an_item_read_twice_where_windows_overlap_is_kept_once() -> None:
    placed = [(0, "Move the release to March 17th", 3)]
    # the next window, same line, other words
    assert found_by_another_window(1, "The release moves to March 17th", 4, placed)
    # not the same: another number, another place, or two items of one answer
    assert not found_by_another_window(1, "Move the release to March 10th", 3, placed)
    assert not found_by_another_window(1, "Move the release to March 17th", 9, placed)
    assert not found_by_another_window(0, "The release moves to March 17th", 3, placed)
    assert not found_by_another_window(1, "Invite fifty beta testers", 3, placed)
