"""The stages' shared metrics: a real StageServer with its /metrics endpoint, scraped after
real gRPC calls (unary and streaming, OK and failing, busy, cancelled)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest

from konspekt.errors import InvalidInput
from konspekt.logs import JOB_ID_METADATA
from konspekt.metrics import MetricsEndpoint, serve_metrics
from konspekt.server import StageServer, rpc
from konspekt.settings import ServiceSettings
from konspekt.v1 import asr_pb2, asr_pb2_grpc, common_pb2, renderer_pb2, renderer_pb2_grpc
from konspekt_devstack import free_port
from tests.scrape import Scrape, scrape

RENDERER = renderer_pb2.DESCRIPTOR.services_by_name["RendererService"].full_name
ASR = asr_pb2.DESCRIPTOR.services_by_name["AsrService"].full_name


class _Renderer(renderer_pb2_grpc.RendererServiceServicer):
    """Unary: fails or blocks as the request's source_name says."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    @rpc
    def Render(
        self, request: renderer_pb2.RenderRequest, context: grpc.ServicerContext
    ) -> renderer_pb2.RenderResponse:
        if request.source_name == "bad":
            raise InvalidInput("the file has no audio track")
        if request.source_name == "bug":
            raise ZeroDivisionError("a bug")
        if request.source_name == "block":
            self.entered.release()
            deadline = time.monotonic() + 30
            # like a real stage, stop when the client is gone
            while context.is_active() and not self.release.wait(0.05) and time.monotonic() < deadline:
                pass
        return renderer_pb2.RenderResponse()


class _Asr(asr_pb2_grpc.AsrServiceServicer):
    """Streaming: a progress event, then a result, or an error after the first event."""

    @rpc
    def Transcribe(
        self, request: asr_pb2.TranscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[asr_pb2.TranscribeResponse]:
        yield asr_pb2.TranscribeResponse(progress=common_pb2.Progress(fraction=0.5))
        if request.language == "xx":
            raise InvalidInput("unknown language 'xx'")
        yield asr_pb2.TranscribeResponse(result=asr_pb2.TranscribeResult(language="en"))


@pytest.fixture
def metered() -> Iterator[tuple[StageServer, _Renderer]]:
    renderer = _Renderer()

    def register(server: grpc.Server) -> None:
        renderer_pb2_grpc.add_RendererServiceServicer_to_server(renderer, server)
        asr_pb2_grpc.add_AsrServiceServicer_to_server(_Asr(), server)

    settings = ServiceSettings(port=0, workers=1, queue=0, metrics_port=free_port())
    server = StageServer(settings, [RENDERER, ASR], register).start()
    yield server, renderer
    server.stop(0)


def _metrics(server: StageServer) -> Scrape:
    assert server.metrics is not None
    return scrape(server.metrics.url)


def test_calls_move_the_counters_by_method_and_code(metered: tuple[StageServer, _Renderer]) -> None:
    server, _ = metered
    before = _metrics(server)
    assert before.value("konspekt_stage_serving", grpc_service=RENDERER) == 0  # not loaded yet
    assert before.value("konspekt_stage_workers", grpc_service=ASR) == 1
    server.load_and_serve()
    with grpc.insecure_channel(server.address) as ch:
        render = renderer_pb2_grpc.RendererServiceStub(ch).Render
        asr = asr_pb2_grpc.AsrServiceStub(ch).Transcribe
        render(renderer_pb2.RenderRequest(), timeout=5, metadata=((JOB_ID_METADATA, "j1"),))
        render(renderer_pb2.RenderRequest(), timeout=5)
        for name, code in (("bad", grpc.StatusCode.INVALID_ARGUMENT), ("bug", grpc.StatusCode.INTERNAL)):
            with pytest.raises(grpc.RpcError) as err:
                render(renderer_pb2.RenderRequest(source_name=name), timeout=5)
            assert err.value.code() == code
        assert len(list(asr(asr_pb2.TranscribeRequest(), timeout=5))) == 2
        with pytest.raises(grpc.RpcError) as err:
            list(asr(asr_pb2.TranscribeRequest(language="xx"), timeout=5))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    after = _metrics(server)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert (
        moved("konspekt_rpc_requests_total", grpc_service=RENDERER, grpc_method="Render", grpc_code="OK") == 2
    )
    assert moved("konspekt_rpc_requests_total", grpc_service=RENDERER, grpc_code="INVALID_ARGUMENT") == 1
    assert moved("konspekt_rpc_requests_total", grpc_service=RENDERER, grpc_code="INTERNAL") == 1
    assert (
        moved("konspekt_rpc_requests_total", grpc_service=ASR, grpc_method="Transcribe", grpc_code="OK") == 1
    )
    assert moved("konspekt_rpc_requests_total", grpc_service=ASR, grpc_code="INVALID_ARGUMENT") == 1
    assert moved("konspekt_rpc_duration_seconds_count", grpc_service=RENDERER, grpc_method="Render") == 4
    assert moved("konspekt_rpc_duration_seconds_count", grpc_service=ASR, grpc_method="Transcribe") == 2
    assert after.value("konspekt_rpc_in_flight", grpc_service=RENDERER) == 0
    assert after.value("konspekt_stage_serving", grpc_service=RENDERER) == 1
    assert after.value("konspekt_stage_serving", grpc_service=ASR) == 1
    # health checks are not stage calls
    assert "grpc.health.v1.Health" not in after.label_values("konspekt_rpc_requests_total", "grpc_service")
    # the process's own metrics come along (CPU, memory) for per-pod panels
    assert after.value("process_resident_memory_bytes") > 0


def test_a_running_call_is_in_flight_and_a_busy_rejection_is_counted(
    metered: tuple[StageServer, _Renderer],
) -> None:
    server, renderer = metered
    server.load_and_serve()
    before = _metrics(server)
    with grpc.insecure_channel(server.address) as ch, ThreadPoolExecutor(1) as pool:
        stub = renderer_pb2_grpc.RendererServiceStub(ch)
        running = pool.submit(stub.Render, renderer_pb2.RenderRequest(source_name="block"), timeout=30)
        assert renderer.entered.acquire(timeout=10)
        during = _metrics(server)
        with pytest.raises(grpc.RpcError) as err:  # one worker, no queue: the stage is full
            stub.Render(renderer_pb2.RenderRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        renderer.release.set()
        running.result(timeout=10)
    after = _metrics(server)
    assert during.value("konspekt_rpc_in_flight", grpc_service=RENDERER, grpc_method="Render") == 1
    assert after.value("konspekt_rpc_in_flight", grpc_service=RENDERER, grpc_method="Render") == 0
    busy = after.value("konspekt_rpc_requests_total", grpc_service=RENDERER, grpc_code="UNAVAILABLE")
    assert (
        busy - before.value("konspekt_rpc_requests_total", grpc_service=RENDERER, grpc_code="UNAVAILABLE")
        == 1
    )


def test_a_cancelled_call_is_counted_as_cancelled(metered: tuple[StageServer, _Renderer]) -> None:
    server, renderer = metered
    server.load_and_serve()
    before = _metrics(server)
    with grpc.insecure_channel(server.address) as ch:
        call = renderer_pb2_grpc.RendererServiceStub(ch).Render.future(
            renderer_pb2.RenderRequest(source_name="block"), timeout=30
        )
        assert renderer.entered.acquire(timeout=10)
        call.cancel()  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.FutureCancelledError):
            call.result()

    def cancelled(scrape: Scrape) -> float:
        return scrape.value("konspekt_rpc_requests_total", grpc_service=RENDERER, grpc_code="CANCELLED")

    # The server ends the call on its own thread, and counts it after it leaves in-flight:
    # wait for the count itself, then check nothing else was counted.
    after = before
    for _ in range(100):
        after = _metrics(server)
        if cancelled(after) > cancelled(before):
            break
        time.sleep(0.1)
    assert cancelled(after) - cancelled(before) == 1
    assert after.value("konspekt_rpc_in_flight", grpc_service=RENDERER) == 0


def test_the_endpoint_stops_with_the_server_and_port_0_means_off() -> None:
    settings = ServiceSettings(port=0, metrics_port=free_port())
    server = StageServer(settings, [RENDERER], lambda s: None).start()
    assert server.metrics is not None
    url = server.metrics.url
    assert httpx.get(url, timeout=5).status_code == 200
    server.stop(0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)
    off = StageServer(ServiceSettings(port=0, metrics_port=0), [RENDERER], lambda s: None).start()
    assert off.metrics is None
    off.stop(0)
    assert serve_metrics("127.0.0.1", 0) is None


def test_a_taken_metrics_port_fails_with_a_clear_error() -> None:
    taken = MetricsEndpoint("127.0.0.1", 0)
    try:
        with pytest.raises(RuntimeError, match=f"cannot serve metrics on 127.0.0.1:{taken.port}"):
            MetricsEndpoint("127.0.0.1", taken.port)
    finally:
        taken.stop()
