"""Summarizer with the real 0.5B model: structure, limits, mapping, windows, no-speech."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from konspekt.v1 import common_pb2
from konspekt_summarizer.answer import (
    ACTION_ITEMS_MAX,
    DECISIONS_MAX,
    KEY_POINTS_MAX,
    NAME_MAX,
    SUMMARY_MAX,
    TEXT_MAX,
    TITLE_MAX,
)
from konspekt_summarizer.engine import Completion, LlamaCppEngine
from konspekt_summarizer.konspekt import Summarizer
from konspekt_summarizer.settings import SummarizerSettings

from .conftest import load_transcript, make_settings
from .test_pure import CALLS_PER_WINDOW


def first_segments(name: str, n: int) -> common_pb2.Transcript:
    """The start of a scripted meeting: the 0.5B copies whole lines, so keep its answers short."""
    transcript = load_transcript(name)
    del transcript.segments[n:]
    return transcript


class CountingEngine:
    """The real engine, counting the model calls made through it."""

    def __init__(self, engine: LlamaCppEngine) -> None:
        self.engine = engine
        self.name = engine.name
        self.context_size = engine.context_size
        self.parallel = engine.parallel
        self.calls = 0

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    def complete_json(self, *args: Any, **kwargs: Any) -> Completion:
        self.calls += 1
        return self.engine.complete_json(*args, **kwargs)


def check_konspekt(k: common_pb2.Konspekt, transcript: common_pb2.Transcript) -> None:
    n = len(transcript.segments)
    assert k.title.strip() and len(k.title) <= TITLE_MAX
    assert k.summary.strip() and len(k.summary) <= SUMMARY_MAX * 2
    for p in [*k.key_points, *k.decisions]:
        assert p.text.strip() and len(p.text) <= TEXT_MAX
        assert -1 <= p.segment_index < n
        if p.segment_index >= 0:
            assert p.at == transcript.segments[p.segment_index].start
    for a in k.action_items:
        assert a.task.strip() and len(a.task) <= TEXT_MAX
        assert len(a.owner) <= NAME_MAX and len(a.due) <= NAME_MAX
        assert -1 <= a.segment_index < n
        if a.segment_index >= 0:
            assert a.at == transcript.segments[a.segment_index].start


def test_meeting_konspekt_is_valid_and_bounded(
    small_engine: LlamaCppEngine, small_settings: SummarizerSettings
) -> None:
    transcript = first_segments("meeting_en.json", 7)
    progress: list[tuple[float, str]] = []
    k, usage, warnings = Summarizer(small_engine, small_settings).summarize(
        transcript, common_pb2.STYLE_MEETING, "", lambda f, m: progress.append((f, m))
    )
    check_konspekt(k, transcript)
    assert k.language == "en" and k.style == common_pb2.STYLE_MEETING
    assert len(k.key_points) <= KEY_POINTS_MAX and len(k.decisions) <= DECISIONS_MAX
    assert len(k.action_items) <= ACTION_ITEMS_MAX
    # one pass (it fits one window), a retry per call if its answer was rejected; nothing is
    # read again
    per_window = CALLS_PER_WINDOW[common_pb2.STYLE_MEETING]
    assert per_window <= usage.calls <= 2 * per_window and usage.model == small_engine.name
    assert usage.completion_tokens > 0 and usage.prompt_tokens > 200
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("writing" in m for _, m in progress)
    # every owner was said in the meeting, or is marked as not said
    said = " ".join(s.text for s in transcript.segments).lower()
    assert all(
        a.owner.lower().split()[0] in said for a in k.action_items if a.owner and not a.owner_unconfirmed
    )
    assert isinstance(warnings, list)


def test_no_speech_makes_no_model_call(
    small_engine: LlamaCppEngine, small_settings: SummarizerSettings
) -> None:
    engine = CountingEngine(small_engine)
    summarizer = Summarizer(engine, small_settings)
    silent = common_pb2.Transcript(language="ru", duration=20.0)
    silent.segments.add(start=0, end=1, text="   ")
    k, usage, _ = summarizer.summarize(silent, common_pb2.STYLE_LECTURE)
    assert engine.calls == 0 and usage.calls == 0
    assert k.language == "ru" and "Речь не найдена" in k.title and k.summary
    assert k.style == common_pb2.STYLE_LECTURE
    assert not (k.key_points or k.decisions or k.action_items)
    k, _, _ = summarizer.summarize(common_pb2.Transcript(language="cy"))
    assert engine.calls == 0
    assert (k.language, k.title) == ("en", "No speech found")
    assert k.style == common_pb2.STYLE_MEETING


def test_long_transcript_is_split_into_windows_and_merged(small_model: Path) -> None:
    # a context so small that 6 segments need two windows (the 0.5B needs ~500 answer tokens)
    settings = make_settings(small_model, n_ctx=1300, max_tokens=500)
    engine = CountingEngine(LlamaCppEngine.from_settings(settings))
    summarizer = Summarizer(engine, settings)
    transcript = first_segments("meeting_en.json", 6)
    windows = summarizer.plan_windows(transcript)
    assert len(windows) >= 2
    # every line in a window, in order; a window may start with the last lines of the one before
    read = [ln.index for w in windows for ln in w]
    assert sorted(set(read)) == list(range(len(transcript.segments)))
    assert all(b[0].index <= a[-1].index + 1 for a, b in itertools.pairwise(windows))  # no gap

    progress: list[str] = []
    k, usage, _ = summarizer.summarize(transcript, on_progress=lambda _f, m: progress.append(m))
    n = len(windows)
    assert any(f"window {n}/{n}" in m for m in progress)
    assert any("merging" in m for m in progress)
    assert engine.calls == usage.calls >= n + 1
    check_konspekt(k, transcript)
    first = {ln.index for ln in windows[0]}
    last = {ln.index for ln in windows[-1]}
    found = {p.segment_index for p in [*k.key_points, *k.decisions]} | {
        a.segment_index for a in k.action_items
    }
    assert found & first, f"no item from the first window: {k}"
    assert found & last, f"no item from the last window: {k}"
