"""LlamaCppEngine with the real 0.5B model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from konspekt_summarizer.engine import LlamaCppEngine
from konspekt_summarizer.settings import SummarizerSettings


def test_count_tokens_uses_the_model_tokenizer(small_engine: LlamaCppEngine) -> None:
    assert small_engine.count_tokens("") == 0
    en = small_engine.count_tokens("The release moves to March 17th.")
    ru = small_engine.count_tokens("Релиз переносится на семнадцатое марта.")
    assert 5 <= en <= 15
    assert ru > en  # Cyrillic costs more tokens
    assert small_engine.context_size == 4096
    assert small_engine.name


def test_complete_json_respects_schema_limits(small_engine: LlamaCppEngine) -> None:
    schema = {
        "type": "object",
        "properties": {
            "colors": {
                "type": "array",
                "maxItems": 3,
                "items": {"type": "string", "maxLength": 12},
            },
            "comment": {"type": "string", "maxLength": 40},
        },
        "required": ["colors", "comment"],
        "additionalProperties": False,
    }
    seen: list[int] = []
    done = small_engine.complete_json(
        [{"role": "user", "content": "List twenty colors, with long descriptions, and a long comment."}],
        schema,
        max_tokens=150,
        on_token=seen.append,
    )
    data = json.loads(done.text)
    assert set(data) == {"colors", "comment"}
    assert len(data["colors"]) <= 3
    assert all(len(c) <= 12 for c in data["colors"])
    assert len(data["comment"]) <= 40
    assert seen == list(range(1, len(seen) + 1)) and seen
    assert 0 < done.completion_tokens <= 150
    assert done.prompt_tokens > 10
    assert done.seconds > 0


def test_on_token_exception_stops_generation(small_engine: LlamaCppEngine) -> None:
    class Stop(Exception):
        pass

    def stop_after_5(n: int) -> None:
        if n >= 5:
            raise Stop

    schema = {"type": "object", "properties": {"story": {"type": "string", "maxLength": 2000}}}
    with pytest.raises(Stop):
        small_engine.complete_json(
            [{"role": "user", "content": "Tell a long story."}], schema, 400, stop_after_5
        )
    # the engine is usable again afterwards (lock released, context reset)
    small_engine.ping()


def test_settings_fail_fast_on_a_missing_model(tmp_path: Path, small_model: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        SummarizerSettings(model=str(tmp_path / "nope.gguf"))
    with pytest.raises(ValidationError, match="half of n_ctx"):
        SummarizerSettings(model=str(small_model), n_ctx=1024, max_tokens=800)
    s = SummarizerSettings(model=str(small_model))
    assert (s.port, s.workers, s.n_ctx, s.max_tokens, s.engine) == (50053, 1, 8192, 1200, "llamacpp")
    assert s.n_threads >= 1
