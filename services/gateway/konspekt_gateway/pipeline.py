"""The orchestrator: a queue of jobs served fairly across owners (jobs.FairQueue) and
``concurrent_jobs`` workers that call the four stages over gRPC (audio → asr → summarizer →
renderer), persisting every state change."""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from konspekt.channels import job_metadata, open_aio_channel
from konspekt.errors import StageError
from konspekt.logs import job_id_var
from konspekt.server import BUSY, DRAINING, LOADING
from konspekt.storage import ObjectStore
from konspekt.transcripts import konspekt_from_json
from konspekt.v1 import (
    asr_pb2,
    asr_pb2_grpc,
    audio_pb2,
    audio_pb2_grpc,
    common_pb2,
    renderer_pb2,
    renderer_pb2_grpc,
    summarizer_pb2,
    summarizer_pb2_grpc,
)
from konspekt_gateway import callbacks, stages
from konspekt_gateway import metrics as gateway_metrics
from konspekt_gateway.jobs import (
    DOWNLOADS,
    RECORD,
    FairQueue,
    Job,
    JobState,
    JobStore,
    MediaFacts,
    ModelUsage,
    PastRun,
    Style,
    utcnow,
)
from konspekt_gateway.settings import GatewaySettings
from konspekt_gateway.stages import STAGES, Stage
from konspekt_gateway.views import job_view

log = logging.getLogger(__name__)

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
#: Upper bound on the media duration when the audio stage cannot probe it (8 kbit/s, ≤ 24 h).
_MIN_BYTES_PER_SECOND = 1000
#: UNAVAILABLE details that mean "no capacity right now" (busy, draining, loading the model):
#: the job waits for the stage without spending a try.
_NOT_A_TRY = frozenset({BUSY, LOADING, DRAINING})
#: How often a job that waits for the object store asks whether it is back.
STORE_POLL_SECONDS = 2.0
_MAX_GUESSED_DURATION = 24 * 3600.0
#: The documents made from a konspekt (a konspekt written again or edited; the transcript's stay).
KONSPEKT_DOCUMENTS = {
    renderer_pb2.FORMAT_KONSPEKT_DOCX: "konspekt.docx",
    renderer_pb2.FORMAT_KONSPEKT_TXT: "konspekt.txt",
    renderer_pb2.FORMAT_KONSPEKT_MD: "konspekt.md",
}
#: ``files`` name of the konspekt a run of "resummarize" wrote, until it replaces konspekt.json.
NEXT_KONSPEKT = "konspekt.next"
#: Earlier runs a job record keeps (the oldest are forgotten).
MAX_RUNS = 20


class JobFailed(Exception):
    def __init__(self, stage: Stage, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message


class _CallFailed(Exception):
    """A failed stage call reduced to a status code and a message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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


class Orchestrator:
    """Owns the in-memory view of every job (loaded at start, persisted on each change)."""

    def __init__(
        self,
        settings: GatewaySettings,
        store: ObjectStore,
        jobs: JobStore,
        clients: StageClients,
        *,
        callback_key: bytes | None = None,
    ) -> None:
        self.settings = settings
        #: Signs callbacks (callbacks.signing_key); without one, the configured secret or a random key.
        self.callback_key = callback_key or callbacks.signing_key(settings, secrets.token_bytes(32))
        self.store = store
        self.jobstore = jobs
        self.clients = clients
        self._jobs: dict[str, Job] = {}
        self._waiting = FairQueue()
        self._wakeup = asyncio.Condition()
        self._workers: list[asyncio.Task[None]] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._saves: dict[str, set[asyncio.Future[None]]] = collections.defaultdict(set)
        self._saved_at: dict[str, float] = {}
        self._tick = asyncio.Event()
        self._callbacks: set[asyncio.Task[None]] = set()
        self._slots = {stage: asyncio.Semaphore(settings.concurrency(stage)) for stage in STAGES}

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Load every record; unfinished jobs go back in the queue in creation order (each
        owner's in its order, owners taking turns)."""
        for job in await asyncio.to_thread(self.jobstore.list):
            self._jobs[job.id] = job
            if not job.state.terminal:
                if job.state is not JobState.QUEUED:
                    job.message = "waiting to resume after a restart"
                self._waiting.append(job.id, job.owner or "")
        if self._waiting:
            log.info("resuming %d unfinished job(s)", len(self._waiting))
        self._workers = [
            asyncio.create_task(self._worker(), name=f"konspekt-worker-{i}")
            for i in range(self.settings.concurrent_jobs)
        ]

    async def stop(self) -> None:
        """Stop the workers; running jobs keep their persisted state and resume on next start."""
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        pending = [f for saves in self._saves.values() for f in saves]
        await asyncio.gather(*pending, return_exceptions=True)
        if self._callbacks:  # give callbacks under way a moment, then drop them
            await asyncio.wait(self._callbacks, timeout=self.settings.callback_timeout_seconds)
            for task in self._callbacks:
                task.cancel()

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

    # -- queries ------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        """Newest first."""
        return sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)

    def position(self, job_id: str) -> int | None:
        """1-based place in the order waiting jobs will start, None when not waiting."""
        return self._waiting.position(job_id)

    def unfinished(self, owner: str) -> int:
        """Jobs of ``owner`` waiting or in progress."""
        return sum(1 for job in self._jobs.values() if job.owner == owner and not job.state.terminal)

    # -- commands -----------------------------------------------------------------------------
    def queue_length(self) -> int:
        """Jobs waiting for a worker."""
        return len(self._waiting)

    async def submit(self, job: Job) -> None:
        gateway_metrics.job_submitted()
        self._jobs[job.id] = job
        await self._save(job)
        async with self._wakeup:
            self._waiting.append(job.id, job.owner or "")
            self._wakeup.notify()

    async def resummarize(self, job: Job, style: Style, language: str, instruction: str) -> None:
        """Write the konspekt of a finished job again from its stored transcript (no audio, no
        ASR): the job runs the summarizer and the renderer like any other, with its progress;
        the run before is kept in ``runs``. The caller has checked that the job has ended and
        has a transcript."""
        job.runs.append(
            PastRun(
                run=job.run,
                started_at=job.started_at,
                finished_at=job.finished_at,
                state=job.state,
                error=job.error,
                failed_stage=job.failed_stage,
                style=job.style,
                konspekt_language=job.konspekt_language,
                instruction=job.instruction,
                stage_seconds=dict(job.stage_seconds),
                attempts=dict(job.attempts),
                model_usage=job.model_usage,
                konspekt_version=job.konspekt_version,
            )
        )
        del job.runs[:-MAX_RUNS]
        job.run = "resummarize"
        job.style, job.konspekt_language, job.instruction = style, language, instruction
        job.state = JobState.QUEUED  # at once: a second request now finds it running
        job.progress = 0.0
        job.message = job.error = job.failed_stage = ""
        job.started_at = job.finished_at = job.stage_started_at = None
        job.stage_seconds, job.attempts, job.model_usage = {}, {}, None
        job.resummarized_at = utcnow()
        ending = self._running.get(job.id)
        if ending is not None:  # the run before is still saving its end
            await asyncio.wait({ending})
        await self._save(job)
        async with self._wakeup:
            self._waiting.append(job.id, job.owner or "")
            self._wakeup.notify()

    async def delete(self, job_id: str) -> bool:
        """Stop the job if it runs, then remove its record and every object."""
        job = self._jobs.pop(job_id, None)
        self._waiting.remove(job_id)
        task = self._running.get(job_id)
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        await asyncio.gather(*self._saves.pop(job_id, set()), return_exceptions=True)
        self._saved_at.pop(job_id, None)
        removed = await asyncio.to_thread(self.jobstore.delete, job_id)
        self.changed()
        return job is not None or removed > 0

    # -- workers ------------------------------------------------------------------------------
    async def _next(self) -> str:
        async with self._wakeup:
            await self._wakeup.wait_for(lambda: bool(self._waiting))
            return self._waiting.popleft()

    async def _worker(self) -> None:
        while True:
            job_id = await self._next()
            job = self._jobs.get(job_id)
            if job is None:
                continue
            task = asyncio.create_task(self._run(job), name=f"konspekt-job-{job.short_id}")
            self._running[job_id] = task
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()
                await asyncio.wait({task})
                raise
            finally:
                self._running.pop(job_id, None)

    async def _run(self, job: Job) -> None:
        job_id_var.set(job.id)
        again = job.run == "resummarize"
        if not again:  # its queue wait and duration are the upload's
            gateway_metrics.job_started(job)
        job.started_at = job.started_at or utcnow()
        log.info("job %s (%s) started%s", job.short_id, job.filename, " (summarizing again)" if again else "")
        try:
            if again:
                await self._resummarize(job)
            else:
                await self._stages(job)
        except JobFailed as exc:
            log.warning("job %s failed in %s: %s", job.short_id, exc.stage, exc.message)
            self._finish(job, JobState.FAILED, error=exc.message, failed_stage=exc.stage)
        except asyncio.CancelledError:
            log.info("job %s interrupted in state %s", job.short_id, job.state)
            raise
        except Exception:
            log.exception("job %s: unexpected gateway error", job.short_id)
            running = stages.running_in(job.state)
            self._finish(job, JobState.FAILED, error="internal error in the gateway; see its log")
            job.failed_stage = running.id if running else ""
        else:
            log.info("job %s done", job.short_id)
            self._finish(job, JobState.DONE)
        if again:
            job.files.pop(NEXT_KONSPEKT, None)  # a failed run's konspekt goes (_drop_unclaimed)
        else:
            gateway_metrics.job_finished(job)
        await self._save(job)
        if job.state is JobState.FAILED:
            await self._drop_unclaimed(job)
        if job.callback_url:
            task = asyncio.create_task(self._callback(job), name=f"konspekt-callback-{job.short_id}")
            self._callbacks.add(task)
            task.add_done_callback(self._callbacks.discard)

    async def _stages(self, job: Job) -> None:
        """An upload's run: each stage whose output the job does not have yet."""
        if stages.AUDIO.output not in job.files:
            await self._audio(job)
        if stages.ASR.output not in job.files:
            await self._transcribe(job)
        if stages.SUMMARIZER.output not in job.files:
            await self._summarize(job)
        if not job.downloads:
            await self._render(job)

    async def _resummarize(self, job: Job) -> None:
        """A run of "resummarize": the summarizer writes a konspekt from the stored transcript
        (into konspekt.next.json), the renderer makes its documents (into out/v<N>/), and only
        then does it become konspekt.json: the previous kept as konspekt.v<N-1>.json, the
        version counted up, the documents before deleted (as an edit does, edits.py)."""
        version = job.konspekt_version + 1
        if NEXT_KONSPEKT not in job.files:
            await self._summarize(job, NEXT_KONSPEKT, job.key("konspekt.next.json"))
        data = await asyncio.to_thread(self.store.get_bytes, job.files[NEXT_KONSPEKT])
        konspekt = konspekt_from_json(data)
        await self._enter(job, "renderer", "rendering the documents")

        async def render(deadline: float) -> renderer_pb2.RenderResponse:
            request = renderer_pb2.RenderRequest(
                konspekt=konspekt,
                transcript_ref=self.store.ref(job.files["transcript"]),
                formats=list(KONSPEKT_DOCUMENTS),
                output_prefix=self.store.ref(job.key(f"out/v{version}/")),
                source_name=job.filename,
            )
            return await self.clients.renderer.Render(
                request, timeout=deadline, metadata=self.clients.metadata(job.id)
            )

        response = await self._attempts(
            job, "renderer", render, lambda: self.settings.deadline("renderer", self._duration(job))
        )
        names = set(KONSPEKT_DOCUMENTS.values())
        made = {f.name: f.ref.key for f in response.files if f.name in names and f.ref.key}
        stray = [f.ref.key for f in response.files if f.ref.key and f.ref.key not in made.values()]
        if set(made) != names:
            raise JobFailed("renderer", "the renderer stored no files")
        previous = job.key(f"konspekt.v{job.konspekt_version}.json")

        def store_version() -> None:
            # konspekt.v<N>.json exists only if this was done before a restart: it holds the
            # konspekt before, and konspekt.json may already be the new one
            if not self.store.exists(previous):
                self.store.put_bytes(
                    previous, self.store.get_bytes(job.files["konspekt"]), "application/json"
                )
            self.store.put_bytes(job.files["konspekt"], data, "application/json")

        for attempt in range(1, self.settings.stage_attempts + 1):
            try:
                await asyncio.to_thread(store_version)
                break
            except StageError as exc:
                if attempt == self.settings.stage_attempts:
                    raise JobFailed("renderer", f"the konspekt could not be stored: {exc.message}") from None
                if not await asyncio.to_thread(self.store.ping):
                    await self._wait_for_store(job)
                else:
                    await asyncio.sleep(self.settings.backoff(attempt))
        replaced = [job.files[name] for name in made if job.files.get(name) not in (None, made[name])]
        staged = job.files.pop(NEXT_KONSPEKT)
        job.files[f"konspekt.v{job.konspekt_version}"] = previous
        job.files.update(made)
        job.konspekt_version = version
        await self._save(job)
        for key in [*replaced, *stray, staged]:  # the documents before, any extra, the staged copy
            try:
                await asyncio.to_thread(self.store.delete, key)
            except StageError as exc:
                log.info("job %s: %s stays until the job expires: %s", job.short_id, key, exc.message)

    async def _callback(self, job: Job) -> None:
        """POST the finished job's JSON to its callback_url (callbacks.py: public addresses
        only, signed, 3 tries); a callback refused or not delivered leaves a note on the job."""
        body = job_view(job, None, retention=self.settings.retention)
        try:
            note = await callbacks.deliver(
                job.callback_url, body, key=self.callback_key, settings=self.settings, label=job.short_id
            )
        except Exception:  # a bug here must not end as an unretrieved task exception
            log.exception("job %s: the callback failed in the gateway", job.short_id)
            return
        if note and note not in job.warnings and job.id in self._jobs:  # not if deleted meanwhile
            job.warnings.append(note)
            await self._save(job)

    @staticmethod
    def _finish(job: Job, state: JobState, error: str = "", failed_stage: str = "") -> None:
        job.state = state
        job.error = error
        job.failed_stage = failed_stage
        job.message = ""
        job.stage_started_at = None
        if state is JobState.DONE:
            job.progress = 1.0
        job.finished_at = utcnow()

    # -- stages -------------------------------------------------------------------------------
    def _duration(self, job: Job) -> float:
        if job.audio_duration > 0:
            return job.audio_duration
        if job.media and job.media.duration > 0:
            return job.media.duration
        return min(job.size / _MIN_BYTES_PER_SECOND, _MAX_GUESSED_DURATION)

    async def _audio(self, job: Job) -> None:
        await self._enter(job, "audio", "reading the media")
        upload = common_pb2.Blob(ref=self.store.ref(job.files["upload"]))
        meta = self.clients.metadata(job.id)
        if job.media is None:

            async def probe(deadline: float) -> audio_pb2.MediaInfo:
                return await self.clients.audio.Probe(
                    audio_pb2.ProbeRequest(input=upload), timeout=deadline, metadata=meta
                )

            try:
                info = await self._attempts(
                    job, "audio", probe, lambda: self.settings.probe_deadline, probe=True
                )
            except _CallFailed:  # UNIMPLEMENTED: guess the duration from the size instead
                log.warning("the audio stage cannot probe; deadline from the file size")
            else:
                job.media = _media(info)

        key = job.key("audio.wav")

        async def extract(deadline: float) -> audio_pb2.ExtractResult:
            call = self.clients.audio.Extract(
                audio_pb2.ExtractRequest(input=upload, output=self.store.ref(key)),
                timeout=deadline,
                metadata=meta,
            )
            result: audio_pb2.ExtractResult = await self._consume(job, call, "result")
            return result

        result = await self._attempts(
            job, "audio", extract, lambda: self.settings.deadline("audio", self._duration(job))
        )
        if result.HasField("media"):
            job.media = _media(result.media)
        job.audio_duration = result.audio_duration
        job.warnings.extend(w for w in result.warnings if w not in job.warnings)
        job.files["audio"] = result.audio.key or key

    async def _transcribe(self, job: Job) -> None:
        await self._enter(job, "asr", "recognising speech")
        key = job.key("transcript.json")
        request = asr_pb2.TranscribeRequest(
            audio=common_pb2.Blob(ref=self.store.ref(job.files["audio"])),
            language=job.language,
            output=self.store.ref(key),
        )

        async def transcribe(deadline: float) -> asr_pb2.TranscribeResult:
            call = self.clients.asr.Transcribe(
                request, timeout=deadline, metadata=self.clients.metadata(job.id)
            )
            result: asr_pb2.TranscribeResult = await self._consume(job, call, "result")
            return result

        result = await self._attempts(
            job, "asr", transcribe, lambda: self.settings.deadline("asr", self._duration(job))
        )
        job.detected_language = result.language
        job.no_speech = result.no_speech
        if result.duration > 0 and job.audio_duration <= 0:
            job.audio_duration = result.duration
        if result.no_speech and "no speech was found in the recording" not in job.warnings:
            job.warnings.append("no speech was found in the recording")
        job.files["transcript"] = result.transcript.key or key

    async def _summarize(self, job: Job, name: str = "konspekt", key: str = "") -> None:
        """The summarizer stage; its konspekt is stored as ``key`` (konspekt.json) and listed in
        the job's files as ``name``."""
        await self._enter(job, "summarizer", "writing the konspekt")
        key = key or job.key("konspekt.json")
        style = common_pb2.STYLE_LECTURE if job.style == "lecture" else common_pb2.STYLE_MEETING
        request = summarizer_pb2.SummarizeRequest(
            transcript_ref=self.store.ref(job.files["transcript"]),
            style=style,
            language=job.konspekt_language,
            instruction=job.instruction,
            output=self.store.ref(key),
        )

        async def summarize(deadline: float) -> summarizer_pb2.SummarizeResult:
            call = self.clients.summarizer.Summarize(
                request, timeout=deadline, metadata=self.clients.metadata(job.id)
            )
            result: summarizer_pb2.SummarizeResult = await self._consume(job, call, "result")
            return result

        result = await self._attempts(
            job, "summarizer", summarize, lambda: self.settings.deadline("summarizer", self._duration(job))
        )
        job.warnings.extend(w for w in result.warnings if w not in job.warnings)
        job.files[name] = result.stored.key or key
        if result.HasField("usage"):
            u = result.usage
            job.model_usage = ModelUsage(
                model=u.model,
                calls=u.calls,
                prompt_tokens=u.prompt_tokens,
                completion_tokens=u.completion_tokens,
                seconds=round(u.seconds, 2),
                one_pass_seconds=round(u.one_pass_seconds, 2),
            )

    async def _render(self, job: Job) -> None:
        await self._enter(job, "renderer", "rendering the documents")

        async def render(deadline: float) -> renderer_pb2.RenderResponse:
            data = await asyncio.to_thread(self.store.get_bytes, job.files["konspekt"])
            request = renderer_pb2.RenderRequest(
                konspekt=konspekt_from_json(data),
                transcript_ref=self.store.ref(job.files["transcript"]),
                output_prefix=self.store.ref(job.key("out/")),
                source_name=job.filename,
            )
            return await self.clients.renderer.Render(
                request, timeout=deadline, metadata=self.clients.metadata(job.id)
            )

        response = await self._attempts(
            job, "renderer", render, lambda: self.settings.deadline("renderer", self._duration(job))
        )
        for file in response.files:
            if file.name in DOWNLOADS and file.ref.key:
                job.files[file.name] = file.ref.key
        if not job.downloads:
            raise JobFailed("renderer", "the renderer stored no files")

    # -- calls --------------------------------------------------------------------------------
    async def _enter(self, job: Job, stage: Stage, message: str) -> None:
        job.state = stages.info(stage).state
        job.progress = 0.0
        job.message = message
        job.stage_started_at = utcnow()
        job.touch()
        await self._save(job)

    async def _consume(self, job: Job, call: AsyncIterable[Any], result_field: str) -> Any:
        """Read a stage's event stream: progress updates the job, the result is returned."""
        result = None
        async for event in call:
            which = event.WhichOneof("event")
            if which == "progress":
                await self._progress(job, event.progress)
            elif which == result_field:
                result = getattr(event, result_field)
        if result is None:
            raise _CallFailed(grpc.StatusCode.INTERNAL, "the stage ended its reply without a result")
        return result

    async def _progress(self, job: Job, progress: common_pb2.Progress) -> None:
        job.progress = min(max(float(progress.fraction), 0.0), 1.0)
        if progress.message:
            job.message = progress.message
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
        _CallFailed for UNIMPLEMENTED (the probe is optional).
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
                    job.message = f"waiting for a free {stages.info(stage).reason_name} slot"
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
                        failure = _CallFailed(exc.code(), exc.details() or "")
                    except StageError as exc:  # the gateway's own object store access
                        failure = _CallFailed(exc.code, exc.message)
                    except _CallFailed as exc:
                        failure = exc
                name = stages.info(stage).reason_name
                if failure.code is grpc.StatusCode.UNAVAILABLE and failure.message in _NOT_A_TRY:
                    # every worker of the stage is taken, or it is being restarted (draining,
                    # loading its model): wait for capacity, not a failed try
                    attempt -= 1
                    job.attempts[counter] -= 1
                    busy += 1
                    waited_for = self.settings.backoff(min(busy, 5))
                    job.message = (
                        f"waiting for a free {name} slot"
                        if failure.message == BUSY
                        else f"waiting for the {name} service to start"
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
                    raise JobFailed(stage, failure.message or f"the {name} stage rejected the file")
                if failure.code is grpc.StatusCode.UNIMPLEMENTED and probe:
                    raise failure
                reason = _reason(name, failure, seconds)
                if failure.code not in RETRYABLE:
                    raise JobFailed(stage, reason)
                if attempt == attempts:
                    raise JobFailed(stage, f"{reason} (tried {attempts} times)")
                wait = self.settings.backoff(attempt)
                log.warning("job %s: %s; retrying in %.1f s", job.short_id, reason, wait)
                job.message = f"{reason}; retrying (try {attempt + 1} of {attempts})"
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
        job.message = "waiting for the object store"
        job.progress = 0.0
        job.touch()
        self.changed()
        while not await asyncio.to_thread(self.store.ping):
            await asyncio.sleep(STORE_POLL_SECONDS)
        log.info("job %s: the object store is back after %.0f s", job.short_id, time.monotonic() - started)
        return time.monotonic() - started

    async def _drop_unclaimed(self, job: Job, tries: int = 4) -> None:
        """A failed job keeps only what its record lists: an output that a stage wrote in a try
        that was then reported failed (a fault after the write, the reply lost) is removed, with
        a few tries if the store is away. Best effort: what is left goes at the job's retention."""
        claimed = {job.key(RECORD), *job.files.values()}

        def sweep() -> int:
            stray = [key for key in self.store.list_keys(job.key("")) if key not in claimed]
            for key in stray:
                self.store.delete(key)
            return len(stray)

        for attempt in range(1, tries + 1):
            try:
                removed = await asyncio.to_thread(sweep)
            except StageError as exc:
                if attempt == tries:
                    log.warning("job %s: stray outputs not removed: %s", job.short_id, exc.message)
                    return
                await asyncio.sleep(self.settings.backoff(attempt))
                continue
            if removed:
                log.info("job %s: removed %d output(s) of failed tries", job.short_id, removed)
            return

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


def _media(info: audio_pb2.MediaInfo) -> MediaFacts:
    return MediaFacts(
        duration=info.duration,
        container=info.container,
        has_audio=info.has_audio,
        has_video=info.has_video,
        audio_codec=info.audio_codec,
        video_codec=info.video_codec,
    )


def _reason(name: str, failure: _CallFailed, deadline: float) -> str:
    code = failure.code
    detail = f": {failure.message}" if failure.message else ""
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        shown = f"{deadline:.1f}" if deadline < 10 else f"{deadline:.0f}"
        return f"the {name} stage did not finish within {shown} s"
    if code is grpc.StatusCode.UNAVAILABLE:
        return f"the {name} service is unavailable{detail}"
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return f"the {name} service is overloaded{detail}"
    return f"the {name} service failed{detail}"
