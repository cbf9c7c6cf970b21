"""What the CPU default model (the 1.5B) recalls of the scripted meetings in data/."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from konspekt.v1 import common_pb2
from konspekt_summarizer.engine import LlamaCppEngine
from konspekt_summarizer.evidence import same_word
from konspekt_summarizer.konspekt import Summarizer

from .conftest import load_transcript, make_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def summarizer(default_model: Path) -> Summarizer:
    settings = make_settings(default_model, n_ctx=4096, max_tokens=900)
    return Summarizer(LlamaCppEngine.from_settings(settings), settings)


def mentions(text: str, keywords: list[str]) -> bool:
    return any(k.lower() in text.lower() for k in keywords)


def is_person(owner: str, people: list[str]) -> bool:
    words = re.findall(r"\w+", owner.lower())
    return any(same_word(w, p.lower()) for w in words for p in people)


def run(summarizer: Summarizer, name: str) -> tuple[common_pb2.Konspekt, common_pb2.Transcript]:
    transcript = load_transcript(name)
    started = time.monotonic()
    k, usage, warnings = summarizer.summarize(transcript)
    print(f"{name}: {time.monotonic() - started:.1f} s, {usage}, warnings {warnings}\n{k}")
    n = len(transcript.segments)
    for i in [p.segment_index for p in [*k.key_points, *k.decisions]] + [
        a.segment_index for a in k.action_items
    ]:
        assert 0 <= i < n
    return k, transcript


def score(k: common_pb2.Konspekt, fact: dict[str, Any]) -> tuple[int, int]:
    decisions = sum(any(mentions(d.text, kw) for d in k.decisions) for kw in fact["decisions"])
    actions = sum(
        any(
            mentions(a.task, item["keywords"]) and is_person(a.owner, [item["owner"]]) for a in k.action_items
        )
        for item in fact["action_items"]
    )
    total_d, total_a = len(fact["decisions"]), len(fact["action_items"])
    print(f"recalled {decisions}/{total_d} decisions, {actions}/{total_a} actions")
    return decisions, actions


def test_english_meeting_recall(summarizer: Summarizer, facts: dict[str, Any]) -> None:
    fact = facts["meeting_en.json"]
    k, _ = run(summarizer, "meeting_en.json")
    decisions, actions = score(k, fact)
    assert decisions >= 2, k.decisions
    assert actions >= 2, k.action_items
    # an owner the transcript does not say is kept, marked; every other one is a person of the meeting
    confirmed = [a.owner for a in k.action_items if a.owner and not a.owner_unconfirmed]
    assert all(is_person(o, fact["people"]) for o in confirmed), k.action_items
    assert not any(mentions(d.text, fact["deferred"]) for d in k.decisions), (
        "a deferred item became a decision"
    )
    assert k.language == "en"


def test_russian_meeting_is_written_in_russian(summarizer: Summarizer, facts: dict[str, Any]) -> None:
    fact = facts["meeting_ru.json"]
    k, _ = run(summarizer, "meeting_ru.json")
    letters = re.findall(r"[a-zа-яё]", k.summary, re.IGNORECASE)
    cyrillic = re.findall(r"[а-яё]", k.summary, re.IGNORECASE)
    assert len(cyrillic) > 0.8 * len(letters), k.summary
    assert k.language == "ru"
    owners = [a.owner for a in k.action_items if a.owner and not a.owner_unconfirmed]
    assert len(owners) >= 2, k.action_items
    assert all(is_person(o, fact["people"]) for o in owners), owners
    score(k, fact)
