"""Jobs shared by several gateway replicas through the object store, nothing else.

Every replica keeps a view of every job: it lists ``jobs/`` every ``sync_seconds`` and reads the
records whose ETag changed (the jobs other replicas run move on its pages and event streams too).
A job that is not finished and that no live replica holds (konspekt_gateway.lease: no lease, a
released one, or one not renewed for its ttl) waits in this replica's fair queue; a worker runs it
only after it took the job's lease, and reads the record afresh then (the last holder's state).
While a job runs, its lease is renewed every third of its ttl; a lease that was taken over or
deleted, or that could not be renewed in time, stops the run here (it goes on elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pydantic import ValidationError

from konspekt.errors import StageError
from konspekt.notices import Note
from konspekt.storage import ObjectStore
from konspekt_gateway import notes
from konspekt_gateway.jobs import PREFIX, RECORD, FairQueue, Job, JobState, JobStore, job_key, valid_job_id
from konspekt_gateway.lease import LEASE, SELF_FENCE, Held, LeaseLost, Leases
from konspekt_gateway.settings import GatewaySettings
from konspekt_gateway.stagecalls import StageCalls, StageClients

log = logging.getLogger(__name__)

#: The message of a job that waits here to go on where a stopped replica left it.
RESUMING = Note("job_resuming")


class Lease:
    """The lease of one run here, as last written (renewals replace ``held``)."""

    def __init__(self, held: Held) -> None:
        self.held = held


class Replicas(StageCalls):
    """The job view, the queue and the leases of one replica (the orchestrator's base)."""

    def __init__(
        self, settings: GatewaySettings, store: ObjectStore, jobs: JobStore, clients: StageClients
    ) -> None:
        super().__init__(settings, store, jobs, clients)
        self._jobs: dict[str, Job] = {}
        self._waiting = FairQueue()
        self._wakeup = asyncio.Condition()
        self._running: dict[str, asyncio.Task[None]] = {}
        self.leases = Leases(store, settings.replica_name(), settings.lease_seconds)
        self._held: dict[str, Lease] = {}
        #: jobs a worker is taking the lease of (popped from the queue, not yet held)
        self._claiming: set[str] = set()
        #: jobs whose run stops here: True when the job was deleted, False when taken over
        self._lost: dict[str, bool] = {}
        #: the record ETags as last read; the jobs whose record was in the store (so: a listing
        #: without it means it was deleted); jobs deleted here (not read back from a listing made
        #: before the delete)
        self._etags: dict[str, str] = {}
        self._stored: set[str] = set()
        self._deleted: set[str] = set()
        self._lease_lock = asyncio.Lock()
        self._sharing: list[asyncio.Task[None]] = []
        self.draining = False

    def drain(self) -> None:
        """The process was asked to stop (SIGTERM): event streams end (their clients reconnect to
        another replica) while uploads under way finish; jobs run on until the stop."""
        self.draining = True
        self.changed()

    def start_sharing(self) -> None:
        self._sharing = [
            asyncio.create_task(self._sync_loop(), name="konspekt-sync"),
            asyncio.create_task(self._keep_leases(), name="konspekt-leases"),
        ]

    async def stop_sharing(self) -> None:
        for task in self._sharing:
            task.cancel()
        await asyncio.gather(*self._sharing, return_exceptions=True)
        self._sharing = []

    # -- the view of every job ----------------------------------------------------------------
    async def read(self, job_id: str) -> Job | None:
        """A job this replica has not seen yet, read from the store (None if there is none)."""
        if not valid_job_id(job_id) or job_id in self._deleted:
            return None
        try:
            job = await asyncio.to_thread(self.jobstore.load, job_id)
        except (StageError, ValidationError) as exc:
            log.warning("job %s: could not read its record: %s", job_id[:8], exc)
            return None
        if job is None:
            return None
        self._stored.add(job_id)
        return self._jobs.setdefault(job_id, job)

    async def sync(self) -> None:
        """Read what changed in the store: new, changed and deleted records, and which unfinished
        jobs are free to claim (queued here) or held by a live replica (not queued here)."""
        try:
            listing = await asyncio.to_thread(lambda: list(self.store.list_etags(PREFIX)))
        except StageError as exc:
            log.warning("could not list the jobs: %s", exc.message)
            return
        records: dict[str, str] = {}
        leases: dict[str, str] = {}
        for key, etag in listing:
            job_id, _, name = key[len(PREFIX) :].partition("/")
            if name == RECORD:
                records[job_id] = etag
            elif name == LEASE:
                leases[job_id] = etag
        changed = False
        gone = [j for j in self._jobs if j in self._stored and j not in records and j not in self._held]
        for job_id in gone:
            self._forget(job_id)  # deleted by another replica (or its reaper)
            changed = True
        self._stored = (self._stored & self._jobs.keys()) | records.keys()
        self._etags = {j: e for j, e in self._etags.items() if j in records}
        self._deleted &= set(records)
        stale = [j for j, e in records.items() if self._etags.get(j) != e and j not in self._held]
        for job_id, job in await asyncio.to_thread(self._load_all, stale):
            if job_id in self._held or job_id in self._deleted:
                continue
            self._jobs[job_id] = job
            self._etags[job_id] = records[job_id]
            changed = True
        # in upload order: the queue keeps each owner's jobs in it (jobs.FairQueue)
        in_order = sorted(self._jobs.values(), key=lambda job: job.created_at)
        open_ = [job.id for job in in_order if not job.state.terminal and job.id not in self._held]
        unfinished = {job_id: leases.get(job_id) for job_id in open_}
        free = await asyncio.to_thread(self._free, unfinished)
        async with self._wakeup:
            for job_id, ok in free.items():
                cached = self._jobs.get(job_id)
                if cached is None or cached.state.terminal or self._here(job_id):
                    continue
                if ok and job_id not in self._waiting:
                    if cached.state is not JobState.QUEUED:
                        notes.say(cached, RESUMING)
                    self._waiting.append(job_id, cached.owner or "")
                    changed = True
                elif not ok and job_id in self._waiting:
                    self._waiting.remove(job_id)  # another replica took it
                    changed = True
            if self._waiting:
                self._wakeup.notify_all()
        if changed:
            self.changed()

    def _load_all(self, job_ids: list[str]) -> list[tuple[str, Job]]:
        loaded = []
        for job_id in job_ids:
            try:
                job = self.jobstore.load(job_id)
            except (StageError, ValidationError) as exc:
                log.warning("skipping job record %s: %s", job_id[:8], exc)
                continue
            if job is not None:
                loaded.append((job_id, job))
        return loaded

    def _free(self, unfinished: dict[str, str | None]) -> dict[str, bool]:
        free = {}
        for job_id, etag in unfinished.items():
            with contextlib.suppress(StageError):  # unknown this time: asked again at the next sync
                free[job_id] = self.leases.free(job_id, etag)
        return free

    def _forget(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)
        self._waiting.remove(job_id)
        self._etags.pop(job_id, None)
        self._stored.discard(job_id)
        self.leases.forget(job_id)

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sync_seconds)
            try:
                await self.sync()
            except Exception:  # one failed round must not end the loop
                log.exception("reading the jobs from the store failed")

    # -- leases -------------------------------------------------------------------------------
    def _here(self, job_id: str) -> bool:
        """Whether a worker here is taking, holding or still stopping the job's run (a lease of
        this replica's is free to it: the job must not run here twice)."""
        return job_id in self._claiming or job_id in self._held or job_id in self._running

    async def claim(self, job_id: str) -> tuple[Job, Lease] | None:
        """Take the job's lease and read its record afresh; None when another replica holds
        it, the job ended or went meanwhile, or it runs here already (queued twice: a sync
        listed it between the queue and the lease)."""
        if self._here(job_id):
            return None
        self._claiming.add(job_id)
        try:
            return await self._claim(job_id)
        finally:
            self._claiming.discard(job_id)

    async def _claim(self, job_id: str) -> tuple[Job, Lease] | None:
        try:
            held = await asyncio.to_thread(self.leases.claim, job_id)
        except StageError as exc:
            log.warning("job %s: could not take its lease: %s", job_id[:8], exc.message)
            return None  # queued again by the next sync
        if held is None:
            return None
        lease = self._held[job_id] = Lease(held)
        try:
            job = await asyncio.to_thread(self.jobstore.load, job_id)
        except (StageError, ValidationError) as exc:
            log.warning("job %s: could not read its record: %s", job_id[:8], exc)
            await self.hand_back(job_id, lease)
            return None
        if job is None and job_id in self._jobs and job_id not in self._stored | self._deleted:
            job = await self._unsaved(job_id)  # submitted here, its record perhaps never stored
        if job is None:  # deleted meanwhile: the lease just written goes too
            self._held.pop(job_id, None)
            with contextlib.suppress(StageError):
                await asyncio.to_thread(self.store.delete, job_key(job_id, LEASE))
            self._forget(job_id)
            return None
        self._jobs[job_id] = job
        self._stored.add(job_id)
        if job.state.terminal:
            await self.hand_back(job_id, lease)
            return None
        return job, lease

    async def _unsaved(self, job_id: str) -> Job | None:
        """A job submitted here whose record is not in the store: its first save failed (the
        upload is there: run it, its saves store it) or it was deleted (nothing is there)."""
        job = self._jobs[job_id]
        try:
            uploaded = await asyncio.to_thread(self.store.exists, job.files.get("upload", ""))
        except StageError:
            uploaded = False
        return job if uploaded else None

    async def hand_back(self, job_id: str, lease: Lease) -> None:
        """After a run here, or at stop: release the lease (another replica may take the job at
        once). A lease taken over is not released; a deleted job's objects that a save of the
        run wrote after the delete go again."""
        ours = self._held.get(job_id) is lease
        if ours:
            del self._held[job_id]
        gone = self._lost.pop(job_id, None) if ours or job_id not in self._held else None
        await asyncio.gather(*self._saves.get(job_id, set()), return_exceptions=True)
        if gone:
            self._forget(job_id)
            with contextlib.suppress(StageError):
                await asyncio.to_thread(self.jobstore.delete, job_id)
            return
        if not ours or gone is not None:
            return
        async with self._lease_lock:  # a renewal under way ends first (and updates lease.held)
            pass
        try:
            await asyncio.to_thread(self.leases.release, lease.held)
        except StageError as exc:
            log.info("job %s: lease not released (it expires): %s", job_id[:8], exc.message)

    def lose(self, job_id: str, gone: bool) -> None:
        """Stop the job's run here: it was deleted (``gone``) or another replica runs it now."""
        self._lost[job_id] = gone
        self._held.pop(job_id, None)
        task = self._running.get(job_id)
        if task is not None:
            task.cancel()
        if gone:
            self._jobs.pop(job_id, None)
            self._waiting.remove(job_id)

    async def _keep_leases(self) -> None:
        every = self.leases.ttl / 3
        while True:
            await asyncio.sleep(every)
            async with self._lease_lock:
                for job_id, lease in list(self._held.items()):
                    await self._renew(job_id, lease, every)

    async def _renew(self, job_id: str, lease: Lease, every: float) -> None:
        held = lease.held
        try:
            renewed = await asyncio.wait_for(asyncio.to_thread(self.leases.renew, held), every)
        except LeaseLost as lost:
            if self._held.get(job_id) is not lease:
                return  # the run ended meanwhile
            log.warning("job %s: %s; its run here stops", job_id[:8], lost)
            self.lose(job_id, lost.gone)
            self.changed()
            return
        except (StageError, TimeoutError) as exc:
            # the next try would come too late: stop before another replica may take the job
            late = self.leases.clock() - held.renewed + every >= SELF_FENCE * self.leases.ttl
            log.warning("job %s: lease not renewed (%s)%s", job_id[:8], exc, "; its run here stops" * late)
            if late and self._held.get(job_id) is lease:
                self.lose(job_id, gone=False)
            return
        lease.held = renewed
