"""StreamedCompletion: the chunk accumulator of the llama.cpp and OpenAI-compatible engines."""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client import REGISTRY

from konspekt.errors import Cancelled
from konspekt_summarizer.stream import StreamedCompletion


def cancelled_calls(at: str) -> float:
    return REGISTRY.get_sample_value("konspekt_summarizer_cancelled_calls_total", {"at": at}) or 0.0


def test_pieces_tokens_finish_reason_and_timing() -> None:
    seen: list[int] = []
    answer = StreamedCompletion(seen.append)
    answer.add({"delta": {"role": "assistant"}})  # no content: no token
    assert (answer.chunks, answer.first, answer.at) == (0, 0.0, "prompt")
    time.sleep(0.01)
    answer.add({"delta": {"content": '{"ok"'}})
    first = answer.first
    assert first >= 0.01
    answer.add({"delta": {"content": ": true}"}, "finish_reason": None})
    answer.add({"delta": {}, "finish_reason": "length"})
    assert seen == [1, 2]
    assert answer.at == "answer"
    assert answer.first == first  # the first piece's time, not the last's
    done = answer.completion(prompt_tokens=30, completion_tokens=5)
    assert done.text == '{"ok": true}'
    assert (done.prompt_tokens, done.completion_tokens) == (30, 5)
    assert done.finish_reason == "length"
    assert done.prompt_seconds == first
    assert done.seconds >= first


def test_finish_reason_is_stop_when_no_choice_gives_one() -> None:
    answer = StreamedCompletion()
    answer.add({"delta": None})
    answer.add({"delta": {"content": "{}"}})
    done = answer.completion(0, 1)
    assert (done.text, done.finish_reason, done.completion_tokens) == ("{}", "stop", 1)


def test_on_token_exception_propagates() -> None:
    def stop(n: int) -> None:
        raise Cancelled("stop")

    answer = StreamedCompletion(stop)
    with pytest.raises(Cancelled):
        answer.add({"delta": {"content": "x"}})


def test_check_raises_once_the_flag_is_set_counted_where_it_stopped() -> None:
    flag = threading.Event()
    answer = StreamedCompletion(cancelled=flag)
    answer.check()  # not set: nothing
    StreamedCompletion().check()  # no flag at all: nothing
    flag.set()
    before = cancelled_calls("prompt")
    with pytest.raises(Cancelled):
        answer.check()
    assert cancelled_calls("prompt") == before + 1
    answer.add({"delta": {"content": "x"}})
    before = cancelled_calls("answer")
    with pytest.raises(Cancelled) as raised:
        answer.check()
    assert cancelled_calls("answer") == before + 1
    assert raised.value.__cause__ is None


def test_check_with_a_cause_chains_it_only_when_cancelled() -> None:
    flag = threading.Event()
    answer = StreamedCompletion(cancelled=flag)
    broken = RuntimeError("llama_decode returned 2")
    answer.check(cause=broken)  # not cancelled: the caller raises its own error
    flag.set()
    with pytest.raises(Cancelled) as raised:
        answer.check(cause=broken)
    assert raised.value.__cause__ is broken
