"""The reaper: the hard deadline behind "everything of a job is gone within 24 h".

The bucket's lifecycle rule counts whole days and S3 servers apply it about once a day, so an
object can outlive it by up to another day. The reaper deletes each job (its record and every
object under ``jobs/<id>/``) as soon as ``retention_hours`` have passed since the upload, whatever
its state, and removes objects under ``jobs/`` that no job record claims (a record that could
not be read, or a stage that wrote after the job was deleted) once they are as old, and the
parts of uploads that were never completed (the store was down when an upload was cut off).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from konspekt.errors import StageError
from konspekt.storage import ObjectStore
from konspekt_gateway import metrics
from konspekt_gateway.jobs import PREFIX, RECORD, utcnow
from konspekt_gateway.pipeline import Orchestrator
from konspekt_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

#: Objects of a job id that has no record at all are given this long (or the retention, if that
#: is shorter): an upload is stored a moment before its record.
ORPHAN_GRACE = timedelta(hours=1)
#: After a failed sweep (the object store is down), try again this soon.
RETRY_SECONDS = 30.0


@dataclass
class Swept:
    """What one sweep removed."""

    jobs: int = 0
    orphans: int = 0
    objects: int = 0
    uploads: int = 0


class Reaper:
    """Deletes expired jobs at their expiry time and orphan objects every ``reap_interval_seconds``."""

    def __init__(self, settings: GatewaySettings, store: ObjectStore, orchestrator: Orchestrator) -> None:
        self.retention = settings.retention
        self.interval = settings.reap_interval_seconds
        self.store = store
        self.orchestrator = orchestrator
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="konspekt-reaper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            wait = self._next_wait()
            try:
                await self.sweep()
            except StageError as exc:
                log.warning("reaper: the object store failed (%s); trying again soon", exc.message)
                wait = min(wait, RETRY_SECONDS)
            except Exception:
                log.exception("reaper: unexpected error; trying again soon")
                wait = min(wait, RETRY_SECONDS)
            await asyncio.sleep(max(wait, 0.05))

    def _next_wait(self) -> float:
        """Seconds until the next job expires, at most the interval, and at most the retention
        (a job submitted meanwhile expires no sooner than that)."""
        now = utcnow()
        wait = min(self.interval, self.retention.total_seconds())
        for job in self.orchestrator.list():
            wait = min(wait, (job.created_at + self.retention - now).total_seconds())
        return wait

    async def sweep(self) -> Swept:
        """Delete every job older than the retention, then every unclaimed object as old."""
        swept = Swept()
        now = utcnow()
        for job in self.orchestrator.list():
            if job.created_at + self.retention <= now:
                log.info("reaper: job %s expired (uploaded %s); deleting it", job.short_id, job.created_at)
                await self.orchestrator.delete(job.id)
                swept.jobs += 1

        objects = await asyncio.to_thread(lambda: list(self.store.list_modified(PREFIX)))
        groups: dict[str, list[tuple[str, datetime]]] = {}
        for key, modified in objects:
            groups.setdefault(key[len(PREFIX) :].partition("/")[0], []).append((key, modified))
        left: list[datetime] = []  # when each object the sweep leaves was written
        for job_id, entries in groups.items():
            oldest = min(modified for _, modified in entries)
            if self.orchestrator.get(job_id) is not None:
                left.append(oldest)
                continue
            has_record = any(key.endswith("/" + RECORD) for key, _ in entries)
            allowed = self.retention if has_record else min(self.retention, ORPHAN_GRACE)
            if oldest + allowed > now:
                left.append(oldest)
                continue
            log.info("reaper: deleting %d object(s) of %s that no job claims", len(entries), job_id[:8])
            removed = await asyncio.to_thread(self._delete, [key for key, _ in entries])
            swept.orphans += 1
            swept.objects += removed
        for key, upload_id, started in await asyncio.to_thread(self.store.stale_uploads, PREFIX):
            if started + self.retention <= now:
                await asyncio.to_thread(self.store.abort_upload, key, upload_id)
                swept.uploads += 1
        oldest_age = (now - min(left)).total_seconds() if left else 0.0
        metrics.reaper_swept(swept.jobs, swept.objects, swept.uploads, oldest_age)
        if swept.jobs or swept.orphans or swept.uploads:
            log.info(
                "reaper: deleted %d expired job(s), %d unclaimed object(s), %d unfinished upload(s)",
                swept.jobs,
                swept.objects,
                swept.uploads,
            )
            self.orchestrator.changed()
        return swept

    def _delete(self, keys: list[str]) -> int:
        for key in keys:
            self.store.delete(key)
        return len(keys)
