"""Which gateway replica runs a job: a lease per job, ``jobs/<id>/lease.json``, taken and kept with
S3 conditional writes (``If-None-Match: *`` to take a job nobody held, ``If-Match: <ETag>`` to
take over a lease or to renew one's own), so that of two replicas that race for a job exactly one
wins, and the store itself is the only thing the replicas share (no other server).

A lease expires when its holder stops renewing it: a replica that sees the same lease (the same
ETag) unchanged for the lease's ``ttl`` seconds of *its own* clock may take it over. No clock is
compared between machines (the way Kubernetes' leader election reads its Lease objects). A holder
that could not renew for ``SELF_FENCE`` of the ttl stops its run by itself, before anyone may take
the job over. A replica that stops cleanly writes its leases released, so another takes the jobs at
once; the leases of a killed one expire after ``ttl``. Every write counts up ``count``, so each
write has other content, and so another ETag (ETags are content hashes), even when the same holder
writes again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from konspekt.errors import Conflict, NotFound
from konspekt.storage import ObjectStore
from konspekt_gateway.jobs import job_key

log = logging.getLogger(__name__)

LEASE = "lease.json"
#: A holder stops its run once it could not renew for this share of the ttl.
SELF_FENCE = 0.8


class LeaseBody(BaseModel):
    holder: str = ""
    #: writes of this lease so far (by every holder)
    count: int = 0
    ttl: float = 30.0
    released: bool = False


@dataclass(frozen=True)
class Held:
    """A lease this replica holds, as it last wrote it."""

    job_id: str
    etag: str
    count: int
    #: when it was last written (this replica's monotonic clock)
    renewed: float


class LeaseLost(Exception):
    """Another replica took the lease over (``gone`` False), or the job was deleted (True)."""

    def __init__(self, job_id: str, gone: bool) -> None:
        super().__init__(f"the lease of job {job_id[:8]} was {'deleted' if gone else 'taken over'}")
        self.job_id = job_id
        self.gone = gone


class Leases:
    """This replica's view of the job leases. Blocking (object store): call from a thread."""

    def __init__(
        self, store: ObjectStore, holder: str, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.holder = holder
        self.ttl = ttl
        self.clock = clock
        #: per job, the lease as last read: its ETag, when this replica first saw that ETag, body
        self._seen: dict[str, tuple[str, float, LeaseBody]] = {}

    def free(self, job_id: str, etag: str | None) -> bool:
        """Whether ``job_id`` may be claimed, as this replica sees it: no lease (``etag`` None, as
        listed), a released one, one of this holder's, or one whose ETag this replica has seen
        unchanged for its ttl. The lease is read only when its ETag changed."""
        if etag is None:
            self._seen.pop(job_id, None)
            return True
        seen = self._seen.get(job_id)
        if seen is None or seen[0] != etag:
            try:
                data, etag = self.store.get_tagged(job_key(job_id, LEASE))
            except NotFound:
                self._seen.pop(job_id, None)
                return True
            seen = (etag, self.clock(), _parse(data))
            self._seen[job_id] = seen
        _etag, since, body = seen
        return body.released or body.holder == self.holder or self.clock() - since >= body.ttl

    def claim(self, job_id: str) -> Held | None:
        """Take the job's lease if it is free (``free``); None when it is held elsewhere or
        another replica took it first."""
        key = job_key(job_id, LEASE)
        try:
            _data, etag = self.store.get_tagged(key)
        except NotFound:
            etag = ""
        count = 0
        if etag:
            if not self.free(job_id, etag):
                return None
            count = self._seen[job_id][2].count
        return self._write(job_id, LeaseBody(holder=self.holder, count=count + 1, ttl=self.ttl), etag or None)

    def renew(self, held: Held) -> Held:
        """Write the lease again (its expiry starts anew); LeaseLost when it is no longer ours."""
        body = LeaseBody(holder=self.holder, count=held.count + 1, ttl=self.ttl)
        try:
            renewed = self._write(held.job_id, body, held.etag)
        except NotFound:
            raise LeaseLost(held.job_id, gone=True) from None
        if renewed is None:
            raise LeaseLost(held.job_id, gone=not self.store.exists(job_key(held.job_id, LEASE)))
        return renewed

    def release(self, held: Held) -> None:
        """Mark the lease released (any replica may claim the job at once); nothing if it is no
        longer ours. A renewal of ours that landed after ``held`` (its reply was given up on) is
        released too."""
        etag, count = held.etag, held.count
        for _ in range(3):
            body = LeaseBody(holder=self.holder, count=count + 1, ttl=self.ttl, released=True)
            try:
                if self._write(held.job_id, body, etag) is not None:
                    return
                data, etag = self.store.get_tagged(job_key(held.job_id, LEASE))
            except NotFound:
                return
            now = _parse(data)
            if now.holder != self.holder or now.released:
                return
            count = now.count

    def forget(self, job_id: str) -> None:
        self._seen.pop(job_id, None)

    def _write(self, job_id: str, body: LeaseBody, etag: str | None) -> Held | None:
        key = job_key(job_id, LEASE)
        data = body.model_dump_json().encode()
        try:
            new_etag = self.store.put_if(key, data, etag)
        except Conflict:
            # lost the race, unless it was our own write whose reply was lost and whose retry
            # then found the object changed (by that very write)
            try:
                now, new_etag = self.store.get_tagged(key)
            except NotFound:
                return None
            if _parse(now) != body:
                return None
        self._seen.pop(job_id, None)
        return Held(job_id, new_etag, body.count, self.clock())


def _parse(data: bytes) -> LeaseBody:
    try:
        return LeaseBody.model_validate_json(data)
    except ValidationError:
        log.warning("unreadable lease %r: taken as released", data[:80])
        return LeaseBody(released=True)
