"""One whole stack (SeaweedFS, the four real stages with the default models, the gateway) for
every test in tests/e2e: loading the models is the slow part, so it happens once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from konspekt_devstack import Stack


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run = Stack(tmp_path_factory.mktemp("stack"))
    try:
        run.start()
        yield run
    finally:
        run.stop()
