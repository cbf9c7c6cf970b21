"""Prometheus metrics shared by every service, and the HTTP endpoint that serves them.

Names follow Prometheus conventions: a ``konspekt_`` prefix, base units (seconds, bytes) in the
name, counters ending in ``_total``. Every stage records the generic per-RPC metrics below once,
in konspekt.server (the admission interceptor sees every call, busy rejections included, and
the final gRPC status that the ``@rpc`` wrapper mapped); stage-specific metrics (audio seconds,
tokens...) are defined next to the code that counts them. The process's own CPU, memory and
open-file metrics (``process_*``) come with the default registry.

Label names avoid the ones Prometheus' Kubernetes discovery sets on targets (``service``,
``pod``, ``namespace``, ``job``, ``instance``), which would turn ours into ``exported_*``.

The endpoint listens on its own port (``metrics_port``), apart from gRPC and the public HTTP
port, so a NetworkPolicy can open it to the monitoring namespace only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger(__name__)

# The *_created series double every counter and no dashboard or alert here uses them.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

#: Seconds, from a tiny render to a multi-hour recording's transcription.
DURATION_BUCKETS = (
    *(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    *(60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0),
)
#: Processing seconds per second of media: < 1 is faster than real time.
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

RPC_REQUESTS = Counter(
    "konspekt_rpc_requests_total",
    "Stage RPCs finished, by gRPC service, method and status code (busy rejections included).",
    ["grpc_service", "grpc_method", "grpc_code"],
)
RPC_DURATION = Histogram(
    "konspekt_rpc_duration_seconds",
    "Time from a stage RPC's arrival to its end (waiting for a worker included).",
    ["grpc_service", "grpc_method"],
    buckets=DURATION_BUCKETS,
)
RPC_IN_FLIGHT = Gauge(
    "konspekt_rpc_in_flight",
    "Stage RPCs admitted and not finished (running or waiting for a worker).",
    ["grpc_service", "grpc_method"],
)
STAGE_SERVING = Gauge(
    "konspekt_stage_serving",
    "1 when the stage reports gRPC health SERVING (model loaded), else 0.",
    ["grpc_service"],
)
STAGE_WORKERS = Gauge(
    "konspekt_stage_workers",
    "Stage RPCs this process runs at once (KONSPEKT_<STAGE>_WORKERS).",
    ["grpc_service"],
)


@contextmanager
def track_rpc(service: str, method: str) -> Iterator[None]:
    """Count an admitted RPC as in flight while the block runs."""
    gauge = RPC_IN_FLIGHT.labels(service, method)
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


def rpc_finished(service: str, method: str, code: str, seconds: float) -> None:
    RPC_REQUESTS.labels(service, method, code).inc()
    RPC_DURATION.labels(service, method).observe(seconds)


class MetricsEndpoint:
    """``GET /metrics`` (any path, in fact) in the Prometheus text format, served from a
    daemon thread. Here ``port`` 0 picks a free one (``port`` says which after the start)."""

    def __init__(self, host: str, port: int) -> None:
        try:
            server, _thread = prometheus_client.start_http_server(port, addr=host)
        except OSError as exc:
            raise RuntimeError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
        self._server: WSGIServer = server
        self.host = host
        self.port = int(server.server_port)
        log.info("metrics on http://%s:%d/metrics", host, self.port)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::", "[::]", ""} else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_metrics(host: str, port: int) -> MetricsEndpoint | None:
    """The endpoint for a ``metrics_port`` setting: 0 means metrics off (None)."""
    return MetricsEndpoint(host, port) if port else None
