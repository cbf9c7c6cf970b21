"""The gateway's Prometheus metrics: jobs, queue, stage times as the gateway sees them (retries
and capacity waits included), uploads and HTTP requests. Served on ``metrics_port`` by
konspekt.metrics.MetricsEndpoint, never through the public HTTP port.

The orchestrator and the upload path call the small functions below; jobs by state and the
queue length are read from the orchestrators at scrape time (no bookkeeping to drift).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import grpc
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from konspekt.metrics import DURATION_BUCKETS, RTF_BUCKETS
from konspekt_gateway.jobs import Job, JobState

JOBS_SUBMITTED = Counter("konspekt_gateway_jobs_submitted_total", "Jobs created (upload stored and queued).")
JOBS_FINISHED = Counter(
    "konspekt_gateway_jobs_finished_total",
    "Jobs that ended, by state (done, failed) and the stage a failed job failed in.",
    ["state", "failed_stage"],
)
QUEUE_WAIT = Histogram(
    "konspekt_gateway_queue_wait_seconds",
    "Time a job waited in the gateway's queue before its first stage started.",
    buckets=DURATION_BUCKETS,
)
JOB_DURATION = Histogram(
    "konspekt_gateway_job_duration_seconds",
    "Time from upload to done, for jobs that finished successfully.",
    buckets=DURATION_BUCKETS,
)
MEDIA_SECONDS = Counter(
    "konspekt_gateway_media_seconds_total", "Seconds of recordings turned into a konspekt (done jobs)."
)
STAGE_DURATION = Histogram(
    "konspekt_gateway_stage_duration_seconds",
    "A stage's time per done job as the gateway measures it (retries included, capacity waits not).",
    ["stage"],
    buckets=DURATION_BUCKETS,
)
STAGE_RTF = Histogram(
    "konspekt_gateway_stage_real_time_factor",
    "A stage's time per second of the recording, per done job (< 1: faster than real time).",
    ["stage"],
    buckets=RTF_BUCKETS,
)
STAGE_WAIT = Histogram(
    "konspekt_gateway_stage_wait_seconds",
    "Time a job waited for a free slot of a stage (gateway concurrency, or the stage busy).",
    ["stage"],
    buckets=DURATION_BUCKETS,
)
STAGE_ERRORS = Counter(
    "konspekt_gateway_stage_errors_total",
    "Failed stage calls by stage and gRPC status code (each failed try; busy answers excluded).",
    ["stage", "code"],
)
UPLOAD_BYTES = Counter(
    "konspekt_gateway_upload_bytes_total", "Bytes of uploaded files received (failed uploads included)."
)
UPLOADS = Counter("konspekt_gateway_uploads_total", "Uploads by outcome: stored or failed.", ["outcome"])
HTTP_REQUESTS = Counter(
    "konspekt_gateway_http_requests_total",
    "HTTP requests by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "konspekt_gateway_http_request_duration_seconds",
    "HTTP request time by method and route template (event streams last as long as their job).",
    ["method", "route"],
    buckets=DURATION_BUCKETS,
)

# The reaper (konspekt_gateway.reaper): what it deletes, and the oldest object it leaves under
# jobs/ after a sweep, the measure of the promise "everything of a job is gone within 24 h".
REAPER_DELETED = Counter(
    "konspekt_gateway_reaper_deleted_total",
    "What the reaper deleted: expired jobs (record and objects), objects no job claims, "
    "unfinished multipart uploads.",
    ["what"],
)
REAPER_OLDEST_AGE = Gauge(
    "konspekt_gateway_reaper_oldest_object_age_seconds",
    "Age of the oldest object under jobs/ that the last sweep left (0 when there is none).",
)
REAPER_LAST_SWEEP = Gauge(
    "konspekt_gateway_reaper_last_sweep_timestamp_seconds",
    "Unix time the reaper's last sweep finished (0: none yet).",
)
for _what in ("job", "unclaimed_object", "unfinished_upload"):
    REAPER_DELETED.labels(_what)


# -- hooks --------------------------------------------------------------------------------------
def job_submitted() -> None:
    JOBS_SUBMITTED.inc()


def job_started(job: Job) -> None:
    """At the start of a job's run; its queue wait counts only the first time (not on resume)."""
    if job.started_at is None:
        QUEUE_WAIT.observe(max((time.time() - job.created_at.timestamp()), 0.0))


def job_finished(job: Job) -> None:
    JOBS_FINISHED.labels(job.state.value, job.failed_stage).inc()
    if job.state is not JobState.DONE:
        return
    if job.finished_at is not None:
        JOB_DURATION.observe(max((job.finished_at - job.created_at).total_seconds(), 0.0))
    media = job.audio_duration
    if media > 0:
        MEDIA_SECONDS.inc(media)
    for stage, seconds in job.stage_seconds.items():
        STAGE_DURATION.labels(stage).observe(seconds)
        if media > 0:
            STAGE_RTF.labels(stage).observe(seconds / media)


def stage_waited(stage: str, seconds: float) -> None:
    STAGE_WAIT.labels(stage).observe(seconds)


def stage_failed(stage: str, code: grpc.StatusCode) -> None:
    STAGE_ERRORS.labels(stage, code.name).inc()


def upload_received(size: int) -> None:
    UPLOAD_BYTES.inc(size)


def upload_finished(stored: bool) -> None:
    UPLOADS.labels("stored" if stored else "failed").inc()


def reaper_swept(jobs: int, objects: int, uploads: int, oldest_age: float) -> None:
    """After a sweep that completed: what it deleted, the oldest object it left, when."""
    REAPER_DELETED.labels("job").inc(jobs)
    REAPER_DELETED.labels("unclaimed_object").inc(objects)
    REAPER_DELETED.labels("unfinished_upload").inc(uploads)
    REAPER_OLDEST_AGE.set(max(oldest_age, 0.0))
    REAPER_LAST_SWEEP.set(time.time())


# -- jobs by state, queue length (read at scrape time) ------------------------------------------
class JobSource(Protocol):
    def list(self) -> list[Job]: ...

    def queue_length(self) -> int: ...


class _JobsCollector(Collector):
    """Sums over every live orchestrator of this process (one in production)."""

    def __init__(self) -> None:
        self.sources: weakref.WeakSet[Any] = weakref.WeakSet()

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        by_state = dict.fromkeys((state.value for state in JobState), 0)
        queued = 0
        for source in list(self.sources):
            for job in source.list():
                by_state[job.state.value] += 1
            queued += source.queue_length()
        return list(self._families(by_state, queued))

    @staticmethod
    def _families(by_state: dict[str, int] | None = None, queued: int = 0) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "konspekt_gateway_jobs",
            "Jobs by state (done and failed ones until they expire); every gateway replica reports "
            "every job: aggregate with max.",
            labels=["state"],
        )
        for state, count in (by_state or {}).items():
            jobs.add_metric([state], count)
        yield jobs
        yield GaugeMetricFamily(
            "konspekt_gateway_queue_length",
            "Jobs waiting for a worker (new ones, and unfinished ones after a restart or a replica's "
            "end); the same on every replica: aggregate with max.",
            value=queued,
        )


_JOBS = _JobsCollector()
REGISTRY.register(_JOBS)


def watch(source: JobSource) -> None:
    """Report ``source``'s jobs and queue (until ``forget`` or its end)."""
    _JOBS.sources.add(source)


def forget(source: JobSource) -> None:
    _JOBS.sources.discard(source)


# -- HTTP ---------------------------------------------------------------------------------------
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """ASGI middleware: counts requests by route template (``/api/v1/jobs/{job_id}``, never the
    raw path, so job ids do not become label values) and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500  # if the app fails before it answers

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            template = str(getattr(route, "path", "")) or "unmatched"
            method = str(scope.get("method", ""))
            method = method if method in _METHODS else "other"
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_DURATION.labels(method, template).observe(time.monotonic() - started)
