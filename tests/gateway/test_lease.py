"""The job lease (konspekt_gateway.lease) against the real SeaweedFS the suite starts: its
conditional writes decide races, an expired lease is taken over, a live one is not."""

from __future__ import annotations

import threading

import pytest

from konspekt.errors import Conflict
from konspekt.storage import ObjectStore
from konspekt_gateway.jobs import job_key, new_job_id
from konspekt_gateway.lease import LEASE, Held, LeaseLost, Leases


class Clock:
    """A clock the test moves by hand (the lease's expiry is read on the observer's clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_conditional_writes_are_honoured(bucket_store: ObjectStore) -> None:
    """What the lease relies on: If-None-Match: * and If-Match: <ETag> are enforced."""
    key = job_key(new_job_id(), "probe.json")
    first = bucket_store.put_if(key, b"1", None)
    with pytest.raises(Conflict):
        bucket_store.put_if(key, b"2", None)
    second = bucket_store.put_if(key, b"3", first)
    with pytest.raises(Conflict):
        bucket_store.put_if(key, b"4", first)  # stale ETag
    assert bucket_store.get_tagged(key) == (b"3", second)


def _race(claimers: list[Leases], job_id: str) -> list[Held]:
    """Every claimer claims ``job_id`` at the same moment, each in its own thread."""
    barrier = threading.Barrier(len(claimers))
    won: list[Held] = []

    def claim(leases: Leases) -> None:
        barrier.wait()
        held = leases.claim(job_id)
        if held is not None:
            won.append(held)

    threads = [threading.Thread(target=claim, args=(leases,)) for leases in claimers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won


def test_two_claimers_race_exactly_one_wins(bucket_store: ObjectStore) -> None:
    for fresh in (True, False):  # a job nobody held, and a released lease
        job_id = new_job_id()
        if not fresh:
            held = Leases(bucket_store, "earlier", 15.0).claim(job_id)
            assert held is not None
            Leases(bucket_store, "earlier", 15.0).release(held)
        for claimers in (2, 6):
            if claimers == 6:
                job_id = new_job_id()
            won = _race([Leases(bucket_store, f"replica-{i}", 15.0) for i in range(claimers)], job_id)
            assert len(won) == 1, won
            assert bucket_store.get_tagged(job_key(job_id, LEASE))[1] == won[0].etag


def test_a_live_lease_is_not_taken_an_expired_one_is(bucket_store: ObjectStore) -> None:
    job_id = new_job_id()
    clock = Clock()
    a = Leases(bucket_store, "a", ttl=10.0, clock=clock)
    b = Leases(bucket_store, "b", ttl=10.0, clock=clock)
    held = a.claim(job_id)
    assert held is not None
    assert b.claim(job_id) is None  # b first sees it now
    clock.now += 9
    assert b.claim(job_id) is None  # not yet its ttl
    held = a.renew(held)  # a is alive: b's wait starts again when b sees the new lease
    assert b.claim(job_id) is None
    clock.now += 9
    assert b.claim(job_id) is None
    clock.now += 2  # 11 s that b saw no renewal: a is taken for dead
    taken = b.claim(job_id)
    assert taken is not None
    with pytest.raises(LeaseLost) as lost:
        a.renew(held)
    assert not lost.value.gone
    a.release(held)  # a stale release changes nothing
    assert b.renew(taken).count == taken.count + 1


def test_released_lease_is_free_at_once_and_a_deleted_one_is_gone(bucket_store: ObjectStore) -> None:
    job_id = new_job_id()
    a = Leases(bucket_store, "a", ttl=60.0)
    b = Leases(bucket_store, "b", ttl=60.0)
    held = a.claim(job_id)
    assert held is not None
    a.release(held)
    taken = b.claim(job_id)
    assert taken is not None
    bucket_store.delete(job_key(job_id, LEASE))  # the job was deleted
    with pytest.raises(LeaseLost) as lost:
        b.renew(taken)
    assert lost.value.gone


def test_own_lease_after_restart_is_free(bucket_store: ObjectStore) -> None:
    """The same replica (same holder name, e.g. its pod restarted its container) takes its
    own jobs back at once, without waiting out the ttl."""
    job_id = new_job_id()
    assert Leases(bucket_store, "pod-1", ttl=60.0).claim(job_id) is not None
    assert Leases(bucket_store, "pod-2", ttl=60.0).claim(job_id) is None
    assert Leases(bucket_store, "pod-1", ttl=60.0).claim(job_id) is not None
