"""OpenAIEngine against a real OpenAI-compatible server: llama-cpp-python's, with the 0.5B.

vLLM's server speaks the same protocol (its json_schema dialect is covered by the json_mode
setting); it needs a GPU and is not run here.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from konspekt.errors import FailedPrecondition, Unavailable
from konspekt.v1 import summarizer_pb2, summarizer_pb2_grpc
from konspekt_summarizer.engine import LlamaCppEngine, load_engine
from konspekt_summarizer.konspekt import Summarizer
from konspekt_summarizer.openai_engine import OpenAIEngine
from konspekt_summarizer.server import build_server
from konspekt_summarizer.settings import SummarizerSettings

from .conftest import LlamaServer, load_transcript
from .test_konspekt import check_konspekt
from .test_server import SHORT, health, wait_for_health

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def openai_settings(base_url: str, **overrides: Any) -> SummarizerSettings:
    values: dict[str, Any] = {
        "engine": "openai",
        "base_url": base_url,
        "port": 0,
        "n_ctx": 4096,
        "max_tokens": 500,
        "startup_wait": 0,
        "log_json": False,
    }
    values.update(overrides)
    return SummarizerSettings.model_validate(values)


@pytest.fixture(scope="module")
def engine(llama_server: LlamaServer) -> OpenAIEngine:
    loaded = load_engine(openai_settings(llama_server.base_url))
    assert isinstance(loaded, OpenAIEngine)
    return loaded


def test_load_finds_the_model_dialect_and_tokenizer(
    engine: OpenAIEngine, small_engine: LlamaCppEngine
) -> None:
    assert engine.json_mode == "json_object"  # llama-cpp-python refuses OpenAI's json_schema
    assert "qwen2.5-0.5b" in engine.name
    assert engine.context_size == 4096
    for text in ("", "The release moves to March 17th.", "Релиз переносится на семнадцатое марта."):
        # the server's own tokenizer: the same counts as the same GGUF in process
        assert engine.count_tokens(text) == small_engine.count_tokens(text)


def test_complete_json_streams_and_respects_the_schema(engine: OpenAIEngine) -> None:
    schema = {
        "type": "object",
        "properties": {
            "colors": {"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 12}},
            "comment": {"type": "string", "maxLength": 40},
        },
        "required": ["colors", "comment"],
        "additionalProperties": False,
    }
    seen: list[int] = []
    done = engine.complete_json(
        [{"role": "user", "content": "List twenty colors, with long descriptions, and a long comment."}],
        schema,
        max_tokens=150,
        on_token=seen.append,
    )
    data = json.loads(done.text)
    assert set(data) == {"colors", "comment"}
    assert len(data["colors"]) <= 3 and all(len(c) <= 12 for c in data["colors"])
    assert len(data["comment"]) <= 40
    assert seen == list(range(1, len(seen) + 1)) and len(seen) > 5  # progress per streamed token
    assert 0 < done.completion_tokens <= 150 and done.prompt_tokens > 10 and done.seconds > 0
    assert done.finish_reason in {"stop", "length"}


def test_on_token_exception_stops_the_stream(engine: OpenAIEngine) -> None:
    class Stop(Exception):
        pass

    def stop_after_5(n: int) -> None:
        if n >= 5:
            raise Stop

    schema = {"type": "object", "properties": {"story": {"type": "string", "maxLength": 2000}}}
    with pytest.raises(Stop):
        engine.complete_json([{"role": "user", "content": "Tell a long story."}], schema, 400, stop_after_5)
    engine.ping()  # the server and the engine are usable again


def test_summarizer_over_http(engine: OpenAIEngine) -> None:
    transcript = load_transcript("meeting_en.json")
    del transcript.segments[3:]  # plumbing: a short answer keeps the 0.5B quick
    settings = openai_settings(engine.base_url)
    progress: list[tuple[float, str]] = []
    k, usage, _ = Summarizer(engine, settings).summarize(
        transcript, on_progress=lambda f, m: progress.append((f, m))
    )
    check_konspekt(k, transcript)
    assert k.language == "en" and usage.calls >= 1 and usage.model == engine.name
    assert usage.completion_tokens > 0 and usage.prompt_tokens > 150
    assert any("writing" in m for _, m in progress) and progress[-1][0] == 1.0


def test_a_dialect_the_server_refuses_fails_the_load(llama_server: LlamaServer) -> None:
    with pytest.raises(FailedPrecondition, match="accepts no JSON-schema request"):
        load_engine(openai_settings(llama_server.base_url, json_mode="json_schema"))
    with pytest.raises(FailedPrecondition, match="not nope"):
        load_engine(openai_settings(llama_server.base_url, api_model="nope"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_server_down_at_load_means_not_serving() -> None:
    settings = openai_settings(f"http://127.0.0.1:{free_port()}/v1")
    server, loader = build_server(settings)
    server.start()
    try:
        with pytest.raises(Unavailable, match="unreachable"):
            server.load_and_serve(loader)
        assert health(server.address) == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        server.stop(0)


def test_server_dying_later_makes_calls_unavailable(small_model: Path, tmp_path: Path) -> None:
    llama = LlamaServer(small_model, tmp_path / "server.log", n_ctx=2048)
    try:
        server, loader = build_server(openai_settings(llama.base_url, n_ctx=2048))
        server.start()
        server.load_and_serve(loader)  # pinged: the server answers
        assert health(server.address) == health_pb2.HealthCheckResponse.SERVING
        llama.stop()
        with grpc.insecure_channel(server.address) as ch:
            stub = summarizer_pb2_grpc.SummarizerServiceStub(ch)
            with pytest.raises(grpc.RpcError) as info:
                list(stub.Summarize(summarizer_pb2.SummarizeRequest(transcript=SHORT), timeout=60))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # retryable
        assert "unreachable" in str(info.value.details())
        server.stop(0)
    finally:
        llama.stop()


def test_health_follows_the_model_server(small_model: Path, tmp_path: Path) -> None:
    """The model server dies after the load: NOT_SERVING; it comes back: SERVING, and it works."""
    llama = LlamaServer(small_model, tmp_path / "first.log", n_ctx=2048)
    settings = openai_settings(llama.base_url, n_ctx=2048, probe_seconds=0.3, metrics_port=0)
    server, loader = build_server(settings)
    server.start()
    try:
        server.load_and_serve(loader)
        assert health(server.address) == health_pb2.HealthCheckResponse.SERVING
        assert loader.alive()
        llama.process.kill()  # dies, as an OOM-killed pod would
        llama.stop()
        assert wait_for_health(server.address, NOT_SERVING) == NOT_SERVING
        assert not loader.alive()

        llama = LlamaServer(small_model, tmp_path / "second.log", n_ctx=2048, port=llama.port)
        assert wait_for_health(server.address, SERVING) == SERVING
        with grpc.insecure_channel(server.address) as ch:
            stub = summarizer_pb2_grpc.SummarizerServiceStub(ch)
            responses = list(stub.Summarize(summarizer_pb2.SummarizeRequest(transcript=SHORT), timeout=300))
        assert responses[-1].HasField("result") and responses[-1].result.konspekt.title
    finally:
        server.stop(0)
        llama.stop()
