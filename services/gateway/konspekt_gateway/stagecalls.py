"""Calling the stages: one channel and stub per stage, and the base of the orchestrator that
makes one call with its tries, deadline, stage slot and progress, and persists job records.
konspekt_gateway.steps builds each stage's request on it, konspekt_gateway.pipeline the queue."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from konspekt.channels import job_metadata, open_aio_channel
from konspekt.errors import StageError, reason_of
from konspekt.notices import Note
from konspekt.storage import ObjectStore
from konspekt.v1 import asr_pb2_grpc, audio_pb2_grpc, common_pb2, renderer_pb2_grpc, summarizer_pb2_grpc
from konspekt_gateway import metrics as gateway_metrics
from konspekt_gateway import stages
from konspekt_gateway.jobs import Job, JobStore, utcnow
from konspekt_gateway.notes import from_error, received, say
from konspekt_gateway.settings import GatewaySettings
from konspekt_gateway.stages import STAGES, Stage

log = logging.getLogger(__name__)

#: A call past its deadline still runs at the stage for a moment: the stage's copy of the
#: deadline started when the call arrived there, a little after ours. The retry waits at least
#: this long, so two calls of one job never run at once at the stage (the soak saw it with a
#: 0.05 s backoff on a loaded machine).
DEADLINE_SETTLE_SECONDS = 1.0

T = TypeVar("T")

#: The stage said the input is bad: retrying cannot help, its message goes to the user.
PERMANENT = frozenset(
    {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND}
)
#: Transient trouble: the call is retried (stage outputs are keyed by job, so retries are idempotent).
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNKNOWN,
    }
)
#: ErrorInfo reasons (konspekt.errors.REASONS) that mean "no capacity right now" (busy,
#: draining, loading the model): the job waits for the stage without spending a try. Decided on
#: the reason the stage sends, never on its message.
_NOT_A_TRY = frozenset({"BUSY", "LOADING", "DRAINING"})
#: How often a job that waits for the object store asks whether it is back.
STORE_POLL_SECONDS = 2.0


class JobFailed(Exception):
    def __init__(self, stage: Stage, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message


class CallFailed(Exception):
    """A failed stage call reduced to a status code, a message (a Note when the stage named
    its code) and the ErrorInfo reason ("" when the stage sent none)."""

    def __init__(self, code: grpc.StatusCode, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason


class StageClients:
    """One aio channel and stub per stage (the channel carries the retry service config)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.channels = {
            # wait_for_ready: a call to a stage that is being restarted waits for it (within
            # its deadline) rather than spending a try
            stage: open_aio_channel(settings.target(stage), settings.max_message_mb, wait_for_ready=True)
            for stage in STAGES
        }
        self.audio = audio_pb2_grpc.AudioServiceStub(self.channels["audio"])
        self.asr = asr_pb2_grpc.AsrServiceStub(self.channels["asr"])
        self.summarizer = summarizer_pb2_grpc.SummarizerServiceStub(self.channels["summarizer"])
        self.renderer = renderer_pb2_grpc.RendererServiceStub(self.channels["renderer"])

    def metadata(self, job_id: str) -> tuple[tuple[str, str], ...]:
        """Every stage call's metadata: the job id (for logs) and the gateway's token."""
        return job_metadata(job_id, self.settings.stage_token.get_secret_value())

    async def health(self) -> dict[str, str]:
        """Each stage's gRPC health status name, or why it could not be asked."""

        async def check(stage: Stage) -> str:
            stub = health_pb2_grpc.HealthStub(self.channels[stage])
            try:
                resp = await stub.Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=self.settings.health_timeout_seconds
                )
            except grpc.aio.AioRpcError as exc:
                return f"{exc.code().name}: {exc.details() or ''}".strip()
            return str(health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status))

        results = await asyncio.gather(*(check(stage) for stage in STAGES))
        return dict(zip(STAGES, results, strict=True))

    async def close(self) -> None:
        await asyncio.gather(*(ch.close(None) for ch in self.channels.values()))


class StageCalls:
    """Stage calls with tries and waits, change notification and record saving: what every
    step of a job's run needs (the orchestrator's state that the steps share)."""

    def __init__(
        self, settings: GatewaySettings, store: ObjectStore, jobs: JobStore, clients: StageClients
    ) -> None:
        self.settings = settings
        self.store = store
        self.jobstore = jobs
        self.clients = clients
        self._saves: dict[str, set[asyncio.Future[None]]] = collections.defaultdict(set)
        self._saved_at: dict[str, float] = {}
        self._tick = asyncio.Event()
        self._slots = {stage: asyncio.Semaphore(settings.concurrency(stage)) for stage in STAGES}

    # -- change notification ------------------------------------------------------------------
    def changed(self) -> None:
        """Wake everyone waiting in ``wait_change`` (some job changed or went)."""
        self._tick.set()
        self._tick = asyncio.Event()

    def tick(self) -> asyncio.Event:
        """Set at the next change: take it before reading jobs, then ``wait_change`` on it."""
        return self._tick

    @staticmethod
    async def wait_change(tick: asyncio.Event, timeout: float) -> bool:
        """Wait until ``tick`` is set; False after ``timeout`` seconds without a change."""
        try:
            await asyncio.wait_for(tick.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # -- calls --------------------------------------------------------------------------------
    async def _enter(self, job: Job, stage: Stage, message: str) -> None:
        job.state = stages.info(stage).state
        job.progress = 0.0
        say(job, message)
        job.stage_started_at = utcnow()
        job.touch()
        await self._save(job)

    async def _consume(self, job: Job, call: AsyncIterable[Any], result_field: str) -> Any:
        """Read a stage's event stream: progress updates the job, the result is returned. A run
        that is stopped here (cancelled) cancels the call: grpc.aio does so itself only once the
        call has started, not while it waits for the stage's first answer, and the stage would
        work on (while another replica may already call it for the same job)."""
        result = None
        try:
            async for event in call:
                which = event.WhichOneof("event")
                if which == "progress":
                    await self._progress(job, event.progress)
                elif which == result_field:
                    result = getattr(event, result_field)
        except asyncio.CancelledError:
            if isinstance(call, grpc.aio.Call):
                call.cancel()
            raise
        if result is None:
            raise CallFailed(grpc.StatusCode.INTERNAL, "the stage ended its reply without a result")
        return result

    async def _progress(self, job: Job, progress: common_pb2.Progress) -> None:
        job.progress = min(max(float(progress.fraction), 0.0), 1.0)
        if progress.message:
            say(job, received(progress.notice, progress.message))
        job.touch()
        self.changed()
        if time.monotonic() - self._saved_at.get(job.id, 0.0) >= self.settings.progress_save_seconds:
            await self._save(job)

    async def _attempts(
        self,
        job: Job,
        stage: Stage,
        call: Callable[[float], Awaitable[T]],
        deadline: Callable[[], float],
        *,
        probe: bool = False,
    ) -> T:
        """Run ``call`` with a deadline, retrying transient failures with backoff.

        Raises JobFailed with words for people. A probe counts its tries apart and raises
        CallFailed for UNIMPLEMENTED (the probe is optional).
        """
        started = time.monotonic()
        waited = 0.0
        attempts = self.settings.stage_attempts
        slot = self._slots[stage]
        attempt = busy = 0
        try:
            while True:
                attempt += 1
                counter = "probe" if probe else stage
                if slot.locked():
                    say(job, Note("waiting_slot", stage=stages.info(stage).reason_name))
                    job.touch()
                    self.changed()
                queued = time.monotonic()
                async with slot:
                    waited += time.monotonic() - queued
                    job.attempts[counter] = job.attempts.get(counter, 0) + 1
                    seconds = deadline()
                    try:
                        return await call(seconds)
                    except grpc.aio.AioRpcError as exc:
                        failure = CallFailed(exc.code(), from_error(exc, exc.details() or ""), reason_of(exc))
                    except StageError as exc:  # the gateway's own object store access
                        failure = CallFailed(exc.code, exc.message, exc.reason)
                    except CallFailed as exc:
                        failure = exc
                name = stages.info(stage).reason_name
                if failure.code is grpc.StatusCode.UNAVAILABLE and failure.reason in _NOT_A_TRY:
                    # every worker of the stage is taken, or it is being restarted (draining,
                    # loading its model): wait for capacity, not a failed try
                    attempt -= 1
                    job.attempts[counter] -= 1
                    busy += 1
                    waited_for = self.settings.backoff(min(busy, 5))
                    say(
                        job, Note("waiting_slot" if failure.reason == "BUSY" else "waiting_start", stage=name)
                    )
                    job.touch()
                    self.changed()
                    await asyncio.sleep(waited_for)
                    waited += waited_for
                    continue
                if failure.code in RETRYABLE and not await asyncio.to_thread(self.store.ping):
                    # the object store is down (the stage could not read or write it): nothing can
                    # progress until it is back, so wait for it without spending a try
                    attempt -= 1
                    job.attempts[counter] -= 1
                    waited += await self._wait_for_store(job)
                    continue
                gateway_metrics.stage_failed(stage, failure.code)
                if failure.code in PERMANENT:
                    raise JobFailed(stage, failure.message or Note("stage_rejected", stage=name))
                if failure.code is grpc.StatusCode.UNIMPLEMENTED and probe:
                    raise failure
                reason = _reason(name, failure, seconds)
                if failure.code not in RETRYABLE:
                    raise JobFailed(stage, reason)
                if attempt == attempts:
                    raise JobFailed(stage, Note("tried_times", reason=reason, tries=str(attempts)))
                wait = self.settings.backoff(attempt)
                if failure.code is grpc.StatusCode.DEADLINE_EXCEEDED:
                    wait = max(wait, DEADLINE_SETTLE_SECONDS)
                log.warning("job %s: %s; retrying in %.1f s", job.short_id, reason, wait)
                say(job, Note("retrying", reason=reason, attempt=str(attempt + 1), attempts=str(attempts)))
                job.progress = 0.0
                job.touch()
                await self._save(job)
                await asyncio.sleep(wait)
        finally:
            gateway_metrics.stage_waited(stage, waited)
            job.stage_seconds[stage] = round(
                job.stage_seconds.get(stage, 0.0) + time.monotonic() - started - waited, 3
            )

    async def _wait_for_store(self, job: Job) -> float:
        """Poll the object store until it answers; returns the seconds waited."""
        started = time.monotonic()
        log.warning("job %s: the object store is unreachable; waiting for it", job.short_id)
        say(job, Note("waiting_store"))
        job.progress = 0.0
        job.touch()
        self.changed()
        while not await asyncio.to_thread(self.store.ping):
            await asyncio.sleep(STORE_POLL_SECONDS)
        log.info("job %s: the object store is back after %.0f s", job.short_id, time.monotonic() - started)
        return time.monotonic() - started

    async def _save(self, job: Job) -> None:
        """Persist the record. A save that is under way finishes even if the job is
        cancelled, and delete/stop wait for it (no record reappears after a delete)."""
        job.touch()
        self.changed()
        self._saved_at[job.id] = time.monotonic()
        snapshot = job.model_copy(deep=True)
        future = asyncio.ensure_future(asyncio.to_thread(self.jobstore.save, snapshot))
        saves = self._saves[job.id]
        saves.add(future)
        future.add_done_callback(saves.discard)
        try:
            await asyncio.shield(future)
        except StageError as exc:
            log.warning("job %s: could not save the record: %s", job.short_id, exc.message)


def _reason(name: str, failure: CallFailed, deadline: float) -> Note:
    code = failure.code
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        shown = f"{deadline:.1f}" if deadline < 10 else f"{deadline:.0f}"
        return Note("stage_timeout", stage=name, seconds=shown)
    kind = {grpc.StatusCode.UNAVAILABLE: "unavailable", grpc.StatusCode.RESOURCE_EXHAUSTED: "overloaded"}
    what = f"stage_{kind.get(code, 'failed')}"
    if not failure.message:
        return Note(what, stage=name)
    return Note(f"{what}_detail", stage=name, detail=failure.message)
