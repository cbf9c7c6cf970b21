"""Health follows an engine that can die after the load (``alive()``, konspekt.server.Probed):
the generic StageServer mechanism, with an engine switched off and on (no model needed)."""

from __future__ import annotations

import json
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from konspekt.server import PROBE_FAILURES, Loader, StageServer
from konspekt.v1 import summarizer_pb2, summarizer_pb2_grpc
from konspekt_summarizer.engine import Completion
from konspekt_summarizer.konspekt import Summarizer
from konspekt_summarizer.server import SERVICE_NAME
from konspekt_summarizer.servicer import SummarizerServicer
from konspekt_summarizer.settings import SummarizerSettings

from .test_server import SHORT, health, wait_for_health

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class SwitchEngine:
    """Answers a fixed konspekt while ``up``; counts the liveness probes."""

    name = "switch"
    context_size = 4096
    parallel = 1

    def __init__(self) -> None:
        self.up = True
        self.probes = 0

    def alive(self) -> bool:
        self.probes += 1
        return self.up

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def complete_json(self, messages: Any, schema: Any, max_tokens: int, on_token: Any = None) -> Completion:
        answer = {
            "title": "Website",
            "summary": "The launch is on Monday.",
            "decisions": [],
            "action_items": [],
        }
        return Completion(json.dumps(answer), 100, 20, 0.01)


def test_health_follows_the_engine() -> None:
    settings = SummarizerSettings(
        engine="openai", base_url="http://model-server/v1", port=0, metrics_port=0, probe_seconds=0.05
    )
    engine = SwitchEngine()
    loader: Loader[Summarizer] = Loader(lambda: Summarizer(engine, settings))
    servicer = SummarizerServicer(loader)
    server = StageServer(
        settings,
        [SERVICE_NAME],
        lambda s: summarizer_pb2_grpc.add_SummarizerServiceServicer_to_server(servicer, s),
    )
    server.start()
    try:
        assert not loader.alive()  # not loaded yet
        server.load_and_serve(loader)
        assert loader.probed and health(server.address) == SERVING
        engine.up = False
        assert wait_for_health(server.address, NOT_SERVING) == NOT_SERVING
        assert engine.probes >= PROBE_FAILURES
        engine.up = True
        assert wait_for_health(server.address, SERVING) == SERVING
        with grpc.insecure_channel(server.address) as ch:
            stub = summarizer_pb2_grpc.SummarizerServiceStub(ch)
            last = list(stub.Summarize(summarizer_pb2.SummarizeRequest(transcript=SHORT), timeout=30))[-1]
        assert last.result.konspekt.title == "Website"
    finally:
        server.stop(0)


def test_an_engine_whose_probe_raises_is_not_alive() -> None:
    class Broken:
        def alive(self) -> bool:
            raise OSError("connection reset")

    loader: Loader[Broken] = Loader(Broken)
    loader.load()
    assert loader.probed and not loader.alive()
    plain: Loader[object] = Loader(object)
    plain.load()
    assert not plain.probed and plain.alive()
