"""Second buckets on the test S3 server, for refs that name a bucket other than the store's."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from konspekt.storage import ObjectStore


@contextlib.contextmanager
def another_bucket(store: ObjectStore) -> Iterator[str]:
    """A new bucket on the store's server; it is emptied and removed afterwards."""
    name = f"konspekt-other-{uuid.uuid4().hex[:12]}"
    store.client.make_bucket(name)
    try:
        yield name
    finally:
        for obj in store.client.list_objects(name, recursive=True):
            if obj.object_name:
                store.client.remove_object(name, obj.object_name)
        store.client.remove_bucket(name)


def missing_bucket(store: ObjectStore) -> str:
    """The name of a bucket that does not exist on the store's server."""
    name = f"konspekt-missing-{uuid.uuid4().hex[:12]}"
    assert not store.client.bucket_exists(name)
    return name
