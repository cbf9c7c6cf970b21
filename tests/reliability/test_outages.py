"""Outages the gateway must sit out without spending its tries (fake stages on real gRPC
servers, the real S3 server behind a proxy that can drop it): a stage that is down or restarting,
a stage that drains or loads its model, the object store gone."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from konspekt.server import DRAINING, LOADING, Loader, StageServer
from konspekt.settings import S3Settings, ServiceSettings
from konspekt.storage import ObjectStore
from konspekt.v1 import renderer_pb2, renderer_pb2_grpc
from tests.gateway.conftest import TERMINAL, gateway_settings, serve, upload, wait_state
from tests.gateway.fake_stages import FakeStages, Script
from tests.reliability.conftest import assert_keeps_only_what_it_claims
from tests.reliability.proxy import TcpProxy

pytestmark = pytest.mark.anyio


@pytest.fixture
def proxy(bucket_s3: S3Settings, bucket_store: ObjectStore) -> Iterator[TcpProxy]:
    running = TcpProxy(bucket_s3.endpoint).start()
    yield running
    running.close()


@pytest.mark.parametrize(
    ("answer", "reason", "shown"),
    [(LOADING, "LOADING", "ждёт запуска"), (DRAINING, "DRAINING", "ждёт запуска")],
)
async def test_a_stage_that_loads_or_drains_is_waited_for_without_spending_tries(
    stages: FakeStages, bucket_s3: S3Settings, answer: str, reason: str, shown: str
) -> None:
    """More such answers than tries: the job still completes, with one try counted."""
    stages.script.fail_first["summarizer"] = (6, grpc.StatusCode.UNAVAILABLE, answer, reason)
    settings = gateway_settings(stages.target, stage_attempts=2, retry_backoff_seconds=0.02)
    async with serve(settings, bucket_s3) as client:
        created = await upload(client, b"data", "a.mp4")
        seen = set()
        for _ in range(400):
            job = (
                await client.get(f"/api/v1/jobs/{created['id']}", headers={"Accept-Language": "ru"})
            ).json()
            seen.add((job["message"], job["message_text"]))
            if job["state"] in TERMINAL:
                break
            await asyncio.sleep(0.01)
    assert job["state"] == "done", job
    assert job["attempts"]["summarizer"] == 1
    assert stages.script.calls["summarizer"] == 7
    assert (
        "waiting for the summarizer service to start",
        "ждёт запуска службы «составление конспекта»",
    ) in seen
    assert any(shown in text for _, text in seen)


async def test_a_stage_that_is_down_when_called_is_waited_for(
    bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    """The ASR server is gone when the job reaches it and comes back 1.5 s later on its port:
    the call waits for it (wait_for_ready in the service config) and needs one try."""
    script = Script()
    others = FakeStages(bucket_store, script, services={"audio", "summarizer", "renderer"}).start()
    asr = FakeStages(bucket_store, script, services={"asr"}).start()
    port = asr.port
    gate = script.gate("audio")
    settings = gateway_settings(others.target, asr_target=asr.target)
    try:
        async with serve(settings, bucket_s3) as client:
            created = await upload(client, b"data", "a.mp4")
            await asyncio.to_thread(script.reached("audio").wait, 10)
            asr.stop()
            gate.set()
            await asyncio.sleep(1.5)
            assert (await client.get(f"/api/v1/jobs/{created['id']}")).json()["state"] == "transcribing"
            asr = FakeStages(bucket_store, script, port=port, services={"asr"}).start()
            job = await wait_state(client, created["id"], TERMINAL)
    finally:
        asr.stop()
        others.stop()
    assert job["state"] == "done", job
    assert job["attempts"]["asr"] == 1
    assert script.calls["asr"] == 1


async def test_the_object_store_gone_mid_job_makes_it_wait_then_resume(
    bucket_s3: S3Settings, bucket_store: ObjectStore, proxy: TcpProxy
) -> None:
    """Gateway and stages reach the store through the proxy. It goes down while ASR works: the
    ASR call fails, the gateway finds the store down and waits (no try spent), /readyz says
    so, uploads get 503; the store comes back and the job completes."""
    via_proxy = bucket_s3.model_copy(update={"endpoint": proxy.endpoint})
    script = Script()
    fakes = FakeStages(ObjectStore(via_proxy, timeout=5), script).start()
    gate = script.gate("asr")
    try:
        async with serve(gateway_settings(fakes.target), via_proxy) as client:
            created = await upload(client, b"data", "a.mp4")
            await asyncio.to_thread(script.reached("asr").wait, 10)
            proxy.down()
            gate.set()  # the fake ASR now fails to store its transcript
            job = {}
            for _ in range(600):
                job = (await client.get(f"/api/v1/jobs/{created['id']}")).json()
                if job["message"] == "waiting for the object store":
                    break
                await asyncio.sleep(0.02)
            assert job["message"] == "waiting for the object store", job
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["store"] == "unreachable"
            refused = await client.post(
                "/api/v1/jobs", params={"filename": "b.mp4"}, content=b"x", headers={"Accept-Language": "ru"}
            )
            assert refused.status_code == 503
            assert refused.json()["error"]["message"] == "хранилище недоступно; попробуйте позже"
            proxy.up()
            job = await wait_state(client, created["id"], TERMINAL)
            assert (await client.get("/readyz")).status_code == 200
    finally:
        fakes.stop()
    assert job["state"] == "done", job
    assert job["attempts"]["asr"] == 1
    assert script.calls["asr"] == 2  # the call that could not store, then the one that could
    assert_keeps_only_what_it_claims(bucket_store, job["id"])
    assert [k for k in bucket_store.list_keys("jobs/") if not k.startswith(f"jobs/{job['id']}/")] == []


async def test_a_store_outage_longer_than_the_lease_stops_the_run_and_resumes_it_after(
    bucket_s3: S3Settings, bucket_store: ObjectStore, proxy: TcpProxy
) -> None:
    """The gateway cannot renew the lease of the job it runs (the store is gone for longer than
    the lease): it stops the run itself, since another replica could take the job over (it cannot
    tell that none can reach the store either). Once the store is back, the job's lease is still
    its own: it takes the job again and completes it, never in two calls at once."""
    via_proxy = bucket_s3.model_copy(update={"endpoint": proxy.endpoint})
    script = Script()
    fakes = FakeStages(ObjectStore(via_proxy, timeout=5), script).start()
    gate = script.gate("asr")
    settings = gateway_settings(fakes.target, lease_seconds=2.0, sync_seconds=0.2)
    try:
        async with serve(settings, via_proxy) as client:
            created = await upload(client, b"data", "a.mp4")
            await asyncio.to_thread(script.reached("asr").wait, 10)
            proxy.down()
            down = time.monotonic()
            while script.active[created["id"]] and time.monotonic() - down < 10:
                await asyncio.sleep(0.02)  # the run stops itself: its ASR call is cancelled
            assert not script.active[created["id"]], "the run went on without its lease"
            proxy.up()
            gate.set()
            job = await wait_state(client, created["id"], TERMINAL)
    finally:
        fakes.stop()
    assert job["state"] == "done", job
    assert script.calls["asr"] == 2  # the call cut by the stop, then the one that finished
    assert script.overlaps == []
    assert_keeps_only_what_it_claims(bucket_store, job["id"])


class _Blocking(renderer_pb2_grpc.RendererServiceServicer):
    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def Render(
        self, request: renderer_pb2.RenderRequest, context: grpc.ServicerContext
    ) -> renderer_pb2.RenderResponse:
        self.entered.set()
        self.release.wait(30)
        return renderer_pb2.RenderResponse()


def test_a_draining_stage_says_not_serving_refuses_new_calls_and_lets_running_ones_end() -> None:
    """In process, the part of a SIGTERM that is the shared server's: the port stays open while
    the call under way finishes, health answers NOT_SERVING, new calls get UNAVAILABLE."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    servicer = _Blocking()
    service = renderer_pb2.DESCRIPTOR.services_by_name["RendererService"].full_name
    server = StageServer(
        ServiceSettings(port=0, workers=1, queue=1, grace_seconds=30),
        [service],
        lambda s: renderer_pb2_grpc.add_RendererServiceServicer_to_server(servicer, s),
    ).start()
    server.load_and_serve(Loader(lambda: "engine"))
    with grpc.insecure_channel(server.address) as channel:
        stub = renderer_pb2_grpc.RendererServiceStub(channel)
        running = stub.Render.future(renderer_pb2.RenderRequest(), timeout=30)
        assert servicer.entered.wait(10)
        stopping = threading.Thread(target=server.stop)
        stopping.start()
        health = health_pb2_grpc.HealthStub(channel)
        status = health_pb2.HealthCheckResponse.SERVING
        for _ in range(100):
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=2).status
            if status == health_pb2.HealthCheckResponse.NOT_SERVING:
                break
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.RpcError) as refused:
            stub.Render(renderer_pb2.RenderRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert refused.value.details() == DRAINING
        assert stopping.is_alive()  # still draining
        servicer.release.set()
        assert running.result(timeout=10) == renderer_pb2.RenderResponse()
        stopping.join(10)
        assert not stopping.is_alive()
