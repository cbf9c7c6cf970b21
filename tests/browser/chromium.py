"""Debian's Chromium driven by Playwright: where it is, how to start it on a closed network, and
where screenshots go (test-artifacts/, git-ignored)."""

from __future__ import annotations

from pathlib import Path

import pytest

from konspekt_devstack import ROOT

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / "test-artifacts"


def require_chromium() -> None:
    """Skip the calling module when Debian's chromium is missing (./dev setup installs it)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium", allow_module_level=True)
