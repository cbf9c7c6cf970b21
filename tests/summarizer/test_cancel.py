"""A cancelled or expired Summarize stops its model calls (issue 15, part 4): waiting for the
engine, while llama.cpp reads a prompt, between generated tokens; over HTTP the stream is hung
up; vLLM's request is aborted. The 0.5B model, a real stage on port 0; what it stopped is asserted
(tokens, the engine's cancel counter, the prompt tokens read), not how long it took: that is
bench/cancel.py's."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from konspekt.channels import open_channel
from konspekt.errors import Cancelled
from konspekt.server import Loader, StageServer
from konspekt.v1 import summarizer_pb2, summarizer_pb2_grpc
from konspekt_summarizer.engine import CallEngine, LlamaCppEngine, ping
from konspekt_summarizer.konspekt import Summarizer
from konspekt_summarizer.openai_engine import OpenAIEngine
from konspekt_summarizer.server import SERVICE_NAME
from konspekt_summarizer.servicer import SummarizerServicer
from konspekt_summarizer.vllm_engine import VllmEngine

from .conftest import LlamaServer, make_settings
from .test_openai_engine import openai_settings
from .test_server import SHORT

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"items": {"type": "array", "items": {"type": "string"}}},
    "required": ["items"],
}
COUNT = [{"role": "user", "content": "List the numbers from one to fifty in words, as JSON."}]


def cancelled_calls(at: str) -> float:
    return REGISTRY.get_sample_value("konspekt_summarizer_cancelled_calls_total", {"at": at}) or 0.0


def long_prompt() -> list[dict[str, str]]:
    """About 2500 tokens no earlier call began with (so none of it is in the KV cache)."""
    lines = "\n".join(
        f"[{i // 60:02d}:{i % 60:02d}] Anna: item {i} of the budget is approved." for i in range(180)
    )
    return [{"role": "user", "content": f"{uuid.uuid4().hex}\n{lines}\nList the items as JSON."}]


def stop_at(n: int, cancelled: threading.Event, seen: list[int]) -> Callable[[int], None]:
    def on_token(count: int) -> None:
        seen.append(count)
        if count == n:
            cancelled.set()

    return on_token


def eventually(check: Callable[[], bool], seconds: float = 300.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- llama.cpp in process ------------------------------------------------------------------


def test_llamacpp_stops_between_tokens(small_engine: LlamaCppEngine) -> None:
    cancelled, seen = threading.Event(), list[int]()
    before = cancelled_calls("answer")
    with pytest.raises(Cancelled):
        small_engine.complete_json(COUNT, SCHEMA, 200, stop_at(3, cancelled, seen), cancelled=cancelled)
    assert seen == [1, 2, 3]  # no token after the one that saw the flag set
    assert cancelled_calls("answer") == before + 1
    assert ping(small_engine).text  # and the engine answers the next call


def test_llamacpp_stops_while_reading_the_prompt(small_engine: LlamaCppEngine) -> None:
    messages = long_prompt()
    prompt = small_engine.count_tokens(messages[0]["content"])
    cancelled, seen = threading.Event(), list[int]()
    before = cancelled_calls("prompt")
    timer = threading.Timer(0.3, cancelled.set)
    timer.start()
    with pytest.raises(Cancelled):
        small_engine.complete_json(messages, SCHEMA, 50, seen.append, cancelled=cancelled)
    assert seen == []
    assert cancelled_calls("prompt") == before + 1
    # llama.cpp's abort callback stopped the decode: not all of the prompt was read
    assert int(small_engine._llm.n_tokens) < prompt
    assert ping(small_engine).text  # the cache holds nothing of the aborted batch


def test_a_call_waiting_for_the_engine_stops_waiting(small_engine: LlamaCppEngine) -> None:
    cancelled = threading.Event()
    before = cancelled_calls("waiting")
    with small_engine._lock:  # another call is running
        threading.Timer(0.2, cancelled.set).start()
        with pytest.raises(Cancelled):
            small_engine.complete_json(COUNT, SCHEMA, 20, cancelled=cancelled)
    assert cancelled_calls("waiting") == before + 1


def test_the_call_view_checks_engines_without_the_flag() -> None:
    """An engine whose complete_json has no ``cancelled`` (a test double) is stopped by the
    view between tokens, through on_token."""

    class Plain:
        name, context_size, parallel = "plain", 4096, 1
        tokens = 0

        def count_tokens(self, text: str) -> int:
            return len(text.split())

        def complete_json(self, messages: Any, schema: Any, max_tokens: int, on_token: Any = None) -> Any:
            for n in range(1, max_tokens + 1):
                self.tokens = n
                on_token(n)
            raise AssertionError("not stopped")

    plain, cancelled, seen = Plain(), threading.Event(), list[int]()
    with pytest.raises(Cancelled):
        CallEngine(plain, cancelled).complete_json(COUNT, SCHEMA, 100, stop_at(4, cancelled, seen))
    assert plain.tokens == 5 and seen == [1, 2, 3, 4]
    with pytest.raises(Cancelled):  # set before the call: no call at all
        CallEngine(plain, cancelled).complete_json(COUNT, SCHEMA, 100)
    assert plain.tokens == 5


# -- the stage -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stage(small_model: Path, small_engine: LlamaCppEngine) -> Iterator[str]:
    """The stage as build_server makes it, around the session's 0.5B engine."""
    settings = make_settings(small_model, max_tokens=150, log_json=False)
    loader: Loader[Summarizer] = Loader(lambda: Summarizer(small_engine, settings))
    servicer = SummarizerServicer(loader)
    server = StageServer(
        settings,
        [SERVICE_NAME],
        lambda s: summarizer_pb2_grpc.add_SummarizerServiceServicer_to_server(servicer, s),
    )
    server.start()
    server.load_and_serve(loader)
    yield server.address
    server.stop(0)


def test_a_cancelled_summarize_stops_generating_and_the_next_call_streams(stage: str) -> None:
    before = sum(cancelled_calls(at) for at in ("waiting", "prompt", "answer"))
    with open_channel(stage) as channel:
        stub = summarizer_pb2_grpc.SummarizerServiceStub(channel)
        call = stub.Summarize(summarizer_pb2.SummarizeRequest(transcript=SHORT), timeout=600)
        for event in call:
            if "writing" in event.progress.message:  # the model is generating
                break
        call.cancel()  # type: ignore[no-untyped-call]  # grpc's stubs leave it untyped
        events = stub.Summarize(summarizer_pb2.SummarizeRequest(transcript=SHORT), timeout=600)
        first = next(iter(events))
        rest = list(events)
    assert first.HasField("progress")
    assert rest[-1].HasField("result") and rest[-1].result.konspekt.summary
    assert eventually(lambda: sum(cancelled_calls(at) for at in ("waiting", "prompt", "answer")) > before)


# -- over HTTP (llama-cpp-python's OpenAI-compatible server) ---------------------------------


@pytest.fixture(scope="module")
def http_engine(llama_server: LlamaServer) -> OpenAIEngine:
    return OpenAIEngine.from_settings(openai_settings(llama_server.base_url))


def test_openai_hangs_up_between_tokens(http_engine: OpenAIEngine) -> None:
    cancelled, seen = threading.Event(), list[int]()
    before = cancelled_calls("answer")
    with pytest.raises(Cancelled):
        http_engine.complete_json(COUNT, SCHEMA, 200, stop_at(3, cancelled, seen), cancelled=cancelled)
    assert seen == [1, 2, 3]
    assert cancelled_calls("answer") == before + 1


def test_openai_hangs_up_while_the_server_reads_the_prompt(http_engine: OpenAIEngine) -> None:
    cancelled, seen = threading.Event(), list[int]()
    before = cancelled_calls("prompt")
    threading.Timer(0.3, cancelled.set).start()
    with pytest.raises(Cancelled):
        http_engine.complete_json(long_prompt(), SCHEMA, 50, seen.append, cancelled=cancelled)
    assert seen == []  # the socket was shut down before the first token came
    assert cancelled_calls("prompt") == before + 1
    assert ping(http_engine).text  # the server serves the next request


# -- vLLM in process (a stand-in for its async engine: vLLM needs a GPU) ----------------------


class FakeAsyncEngine:
    """vLLM's AsyncLLMEngine as the engine uses it: generate() streams cumulative outputs,
    abort() ends a request."""

    def __init__(self, first_delay: float) -> None:
        self.first_delay = first_delay
        self.aborted: list[str] = []
        self.made = 0

    async def generate(self, prompt: str, sampling: Any, request_id: str) -> AsyncIterator[Any]:
        await asyncio.sleep(self.first_delay)
        for n in range(1, 1000):
            if request_id in self.aborted:
                return
            self.made = n
            output = SimpleNamespace(token_ids=list(range(n)), text="x" * n, finish_reason=None)
            yield SimpleNamespace(outputs=[output], prompt_token_ids=[0, 1])
            await asyncio.sleep(0.01)

    def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)


@pytest.fixture
def vllm() -> Iterator[tuple[VllmEngine, FakeAsyncEngine]]:
    engine = VllmEngine.__new__(VllmEngine)
    engine._loop = asyncio.new_event_loop()
    thread = threading.Thread(target=engine._loop.run_forever, daemon=True)
    thread.start()
    fake = FakeAsyncEngine(first_delay=0.0)
    engine._engine = fake
    engine._tokenizer = SimpleNamespace(apply_chat_template=lambda messages, **_: "prompt")
    engine._sampling = lambda schema, max_tokens: None  # type: ignore[method-assign]
    yield engine, fake
    engine._loop.call_soon_threadsafe(engine._loop.stop)
    thread.join(5)


def test_vllm_aborts_the_request_between_tokens(vllm: tuple[VllmEngine, FakeAsyncEngine]) -> None:
    engine, fake = vllm
    cancelled, seen = threading.Event(), list[int]()
    with pytest.raises(Cancelled):
        engine.complete_json(COUNT, SCHEMA, 500, stop_at(3, cancelled, seen), cancelled=cancelled)
    assert seen == [1, 2, 3]
    assert eventually(lambda: len(fake.aborted) == 1, 10)
    assert fake.made < 50


def test_vllm_aborts_a_request_still_reading_its_prompt(vllm: tuple[VllmEngine, FakeAsyncEngine]) -> None:
    engine, fake = vllm
    fake.first_delay = 30.0
    cancelled = threading.Event()
    before = cancelled_calls("prompt")
    threading.Timer(0.2, cancelled.set).start()
    with pytest.raises(Cancelled):
        engine.complete_json(COUNT, SCHEMA, 500, cancelled=cancelled)
    assert cancelled_calls("prompt") == before + 1
    assert eventually(lambda: len(fake.aborted) == 1, 10)
    assert fake.made == 0
