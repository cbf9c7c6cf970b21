"""The orchestrator: a queue of jobs served fairly across owners (jobs.FairQueue) and
``concurrent_jobs`` workers that call the four stages over gRPC (audio → asr → summarizer →
renderer), persisting every state change. The stage calls are in konspekt_gateway.stagecalls,
each stage's step of a run in konspekt_gateway.steps.

Several replicas share the jobs through the object store (konspekt_gateway.replicas): each one
reads the records every ``sync_seconds``, queues the jobs that no live replica holds, and a worker
runs a job only once it holds the job's lease (konspekt_gateway.lease)."""

from __future__ import annotations

import asyncio
import logging
import secrets

from konspekt.errors import StageError
from konspekt.logs import job_id_var
from konspekt.notices import Note
from konspekt.storage import ObjectStore
from konspekt_gateway import callbacks, stages
from konspekt_gateway import metrics as gateway_metrics
from konspekt_gateway.jobs import RECORD, Job, JobState, JobStore, PastRun, Style, utcnow
from konspekt_gateway.lease import LEASE
from konspekt_gateway.notes import Notice, warn
from konspekt_gateway.replicas import Replicas
from konspekt_gateway.settings import GatewaySettings
from konspekt_gateway.stagecalls import JobFailed, StageClients
from konspekt_gateway.steps import NEXT_KONSPEKT, StageSteps
from konspekt_gateway.views import job_view

__all__ = ["JobFailed", "Orchestrator", "StageClients"]

log = logging.getLogger(__name__)

#: Earlier runs a job record keeps (the oldest are forgotten).
MAX_RUNS = 20


class Orchestrator(Replicas, StageSteps):
    """Owns the in-memory view of every job (read from the store, persisted on each change)."""

    def __init__(
        self,
        settings: GatewaySettings,
        store: ObjectStore,
        jobs: JobStore,
        clients: StageClients,
        *,
        callback_key: bytes | None = None,
    ) -> None:
        super().__init__(settings, store, jobs, clients)
        #: Signs callbacks (callbacks.signing_key); without one, the configured secret or a random key.
        self.callback_key = callback_key or callbacks.signing_key(settings, secrets.token_bytes(32))
        self._workers: list[asyncio.Task[None]] = []
        self._callbacks: set[asyncio.Task[None]] = set()

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Read every record; unfinished jobs that no live replica holds go back in the queue in
        creation order (each owner's in its order, owners taking turns)."""
        await self.sync()
        if self._waiting:
            log.info("resuming %d unfinished job(s)", len(self._waiting))
        self._workers = [
            asyncio.create_task(self._worker(), name=f"konspekt-worker-{i}")
            for i in range(self.settings.concurrent_jobs)
        ]
        self.start_sharing()

    async def stop(self) -> None:
        """Stop the workers; running jobs keep their persisted state, their leases are released
        (another replica resumes them at once; or this one on its next start)."""
        await self.stop_sharing()
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

    # -- queries ------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    async def find(self, job_id: str) -> Job | None:
        """The job, read from the store when this replica has not seen it yet (uploaded to
        another replica since the last sync)."""
        job = self._jobs.get(job_id)
        if job is None:
            job = await self.read(job_id)
        return job

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
                error_notice=job.error_notice,
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
        job.message_notice = job.error_notice = None
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
        self._deleted.add(job_id)
        self._etags.pop(job_id, None)
        task = self._running.get(job_id)
        if task is not None:
            self.lose(job_id, gone=True)
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
            claimed = await self.claim(job_id)
            if claimed is None:  # another replica runs it, or it ended or went meanwhile
                continue
            job, lease = claimed
            task = asyncio.create_task(self._run(job), name=f"konspekt-job-{job.short_id}")
            self._running[job_id] = task
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()
                await asyncio.wait({task})
                await self.hand_back(job_id, lease)
                raise
            finally:
                self._running.pop(job_id, None)
            await self.hand_back(job_id, lease)

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
            self._finish(job, JobState.FAILED, error=Note("gateway_internal"))
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
            warn(job, [note])
            await self._save(job)

    @staticmethod
    def _finish(job: Job, state: JobState, error: str = "", failed_stage: str = "") -> None:
        job.state = state
        job.error = error
        job.error_notice = Notice.of(error) if error else None
        job.failed_stage = failed_stage
        job.message = ""
        job.stage_started_at = None
        if state is JobState.DONE:
            job.progress = 1.0
        job.finished_at = utcnow()

    async def _drop_unclaimed(self, job: Job, tries: int = 4) -> None:
        """A failed job keeps only what its record lists: an output that a stage wrote in a try
        that was then reported failed (a fault after the write, the reply lost) is removed, with
        a few tries if the store is away. Best effort: what is left goes at the job's retention."""
        claimed = {job.key(RECORD), job.key(LEASE), *job.files.values()}

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
