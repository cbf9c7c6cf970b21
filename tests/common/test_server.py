"""The shared gRPC bootstrap: health, reflection, error translation, draining."""

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from konspekt.errors import DOMAIN, InvalidInput, details_of, reason_of
from konspekt.logs import JOB_ID_METADATA, job_id_var
from konspekt.notices import Note
from konspekt.server import LIVENESS_SERVICE, Loader, StageServer, rpc
from konspekt.settings import ServiceSettings
from konspekt.v1 import renderer_pb2, renderer_pb2_grpc

SERVICE = renderer_pb2.DESCRIPTOR.services_by_name["RendererService"].full_name


class _Servicer(renderer_pb2_grpc.RendererServiceServicer):
    """Raises what the request's source_name asks for, to exercise the translation."""

    def __init__(self, loader: Loader[str]) -> None:
        self.loader = loader
        self.seen_job_ids: list[str] = []
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    @rpc
    def Render(
        self, request: renderer_pb2.RenderRequest, context: grpc.ServicerContext
    ) -> renderer_pb2.RenderResponse:
        self.loader.get()
        self.seen_job_ids.append(job_id_var.get())
        if request.source_name == "bad":
            raise InvalidInput(Note("no_audio_track"), reason="NO_AUDIO_TRACK")
        if request.source_name == "block":
            self.entered.release()
            self.release.wait(30)
        if request.source_name == "bug":
            raise ZeroDivisionError("secret detail")
        return renderer_pb2.RenderResponse()


@pytest.fixture
def stage() -> Iterator[tuple[StageServer, Loader[str], _Servicer]]:
    loader: Loader[str] = Loader(lambda: "engine")
    servicer = _Servicer(loader)
    server = StageServer(
        ServiceSettings(port=0, workers=1, queue=1),
        [SERVICE],
        lambda s: renderer_pb2_grpc.add_RendererServiceServicer_to_server(servicer, s),
    ).start()
    yield server, loader, servicer
    server.stop(0)


def _health(address: str, service: str = "") -> int:
    with grpc.insecure_channel(address) as ch:
        return int(
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service)).status
        )


def test_not_serving_until_loaded_then_serving(stage: tuple[StageServer, Loader[str], _Servicer]) -> None:
    server, loader, _ = stage
    assert _health(server.address) == health_pb2.HealthCheckResponse.NOT_SERVING
    with grpc.insecure_channel(server.address) as ch, pytest.raises(grpc.RpcError) as err:
        renderer_pb2_grpc.RendererServiceStub(ch).Render(renderer_pb2.RenderRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "loading" in (err.value.details() or "")
    assert reason_of(err.value) == "LOADING"
    server.load_and_serve(loader)
    assert _health(server.address) == health_pb2.HealthCheckResponse.SERVING
    assert _health(server.address, SERVICE) == health_pb2.HealthCheckResponse.SERVING


def test_errors_become_statuses_with_human_messages(
    stage: tuple[StageServer, Loader[str], _Servicer],
) -> None:
    server, loader, servicer = stage
    server.load_and_serve(loader)
    with grpc.insecure_channel(server.address) as ch:
        stub = renderer_pb2_grpc.RendererServiceStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.Render(
                renderer_pb2.RenderRequest(source_name="bad"), timeout=5, metadata=((JOB_ID_METADATA, "j1"),)
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details() == "the file has no audio track"
        info = details_of(err.value)  # the reason and the note's code, for programs
        assert info is not None and info.domain == DOMAIN and info.reason == "NO_AUDIO_TRACK"
        assert dict(info.metadata) == {"code": "no_audio_track"}
        with pytest.raises(grpc.RpcError) as err:
            stub.Render(renderer_pb2.RenderRequest(source_name="bug"), timeout=5)
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert "secret detail" not in (err.value.details() or "")
        assert reason_of(err.value) == "INTERNAL"
    assert servicer.seen_job_ids == ["j1", ""]


def test_reflection_lists_the_service(stage: tuple[StageServer, Loader[str], _Servicer]) -> None:
    server, _, _ = stage
    with grpc.insecure_channel(server.address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names


def test_stop_reports_not_serving(stage: tuple[StageServer, Loader[str], _Servicer]) -> None:
    server, loader, _ = stage
    server.load_and_serve(loader)
    server.stop(0)
    # The port is closed now, so read the health servicer's state in-process.
    assert server.health._server_status[""] == health_pb2.HealthCheckResponse.NOT_SERVING
    with grpc.insecure_channel(server.address) as ch, pytest.raises(grpc.RpcError):
        health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)


def test_busy_stage_still_answers_health_and_refuses_overflow(
    stage: tuple[StageServer, Loader[str], _Servicer],
) -> None:
    server, loader, servicer = stage
    server.load_and_serve(loader)
    with grpc.insecure_channel(server.address) as ch, ThreadPoolExecutor(2) as pool:
        stub = renderer_pb2_grpc.RendererServiceStub(ch)
        blocked = renderer_pb2.RenderRequest(source_name="block")
        running = pool.submit(stub.Render, blocked, timeout=30)
        assert servicer.entered.acquire(timeout=10)  # one call is running...
        waiting = pool.submit(stub.Render, renderer_pb2.RenderRequest(), timeout=30)  # ...one queued
        time.sleep(0.3)
        assert not waiting.done()
        with pytest.raises(grpc.RpcError) as err:  # a third is over workers + queue
            stub.Render(renderer_pb2.RenderRequest(), timeout=5, wait_for_ready=False)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "busy" in (err.value.details() or "")
        assert reason_of(err.value) == "BUSY"
        assert _health(server.address) == health_pb2.HealthCheckResponse.SERVING
        servicer.release.set()
        running.result(timeout=10)
        waiting.result(timeout=10)


def test_connections_age_out_without_breaking_calls_under_way() -> None:
    """max_connection_age: the server asks clients to reconnect (so new replicas get traffic),
    but a call longer than the age still finishes, and the channel keeps working after it."""
    loader: Loader[str] = Loader(lambda: "engine")
    servicer = _Servicer(loader)
    server = StageServer(
        ServiceSettings(port=0, workers=1, queue=1, max_connection_age_seconds=0.3),
        [SERVICE],
        lambda s: renderer_pb2_grpc.add_RendererServiceServicer_to_server(servicer, s),
    ).start()
    server.load_and_serve(loader)
    try:
        with grpc.insecure_channel(server.address) as ch, ThreadPoolExecutor(1) as pool:
            stub = renderer_pb2_grpc.RendererServiceStub(ch)
            call = pool.submit(stub.Render, renderer_pb2.RenderRequest(source_name="block"), timeout=20)
            assert servicer.entered.acquire(timeout=10)
            time.sleep(1.0)  # > 3 connection ages while the call runs
            servicer.release.set()
            assert call.result(timeout=20) == renderer_pb2.RenderResponse()
            for _ in range(3):  # later calls go over a fresh connection
                time.sleep(0.4)
                stub.Render(renderer_pb2.RenderRequest(), timeout=10)
    finally:
        server.stop(0)


class _ProbedSettings(ServiceSettings):
    probe_seconds: float = 0.05


class _ModelServer:
    """An engine behind a model server that can stop answering (vLLM restarting)."""

    def __init__(self) -> None:
        self.up = True

    def alive(self) -> bool:
        return self.up


def test_liveness_says_alive_while_loading_while_the_model_is_gone_and_while_draining() -> None:
    """Issue 13: liveness (the Kubernetes livenessProbe) is the process, readiness ("") is "can
    take work". A model that is loading, a model server that stopped answering and a drain make
    the stage unready, never "dead"."""
    engine = _ModelServer()
    loader: Loader[_ModelServer] = Loader(lambda: engine)
    servicer = _Servicer(Loader(lambda: "engine"))
    servicer.loader.load()
    server = StageServer(
        _ProbedSettings(port=0, workers=1, queue=1),
        [SERVICE],
        lambda s: renderer_pb2_grpc.add_RendererServiceServicer_to_server(servicer, s),
    ).start()
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    try:
        assert (_health(server.address), _health(server.address, LIVENESS_SERVICE)) == (not_serving, serving)
        server.load_and_serve(loader)
        assert (_health(server.address), _health(server.address, LIVENESS_SERVICE)) == (serving, serving)
        engine.up = False  # vLLM restarts: unready, still alive
        deadline = time.monotonic() + 10
        while _health(server.address) == serving and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _health(server.address, SERVICE) == not_serving
        assert _health(server.address, LIVENESS_SERVICE) == serving
        engine.up = True
        while _health(server.address) != serving and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _health(server.address) == serving
        with grpc.insecure_channel(server.address) as ch, ThreadPoolExecutor(2) as pool:
            stub = renderer_pb2_grpc.RendererServiceStub(ch)
            running = pool.submit(stub.Render, renderer_pb2.RenderRequest(source_name="block"), timeout=30)
            assert servicer.entered.acquire(timeout=10)
            stopping = pool.submit(server.stop, 30)  # drains while the call runs
            while _health(server.address) == serving and time.monotonic() < deadline:
                time.sleep(0.05)
            assert (_health(server.address), _health(server.address, LIVENESS_SERVICE)) == (
                not_serving,
                serving,
            )
            servicer.release.set()
            running.result(timeout=10)
            stopping.result(timeout=10)
    finally:
        servicer.release.set()
        server.stop(0)
