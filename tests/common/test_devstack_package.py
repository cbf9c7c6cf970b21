"""The local launcher lives outside the shared library the stage images ship (libs/common):
``konspekt_devstack`` in tools/devstack, installed in the dev venv only."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import konspekt
import konspekt_devstack
from konspekt_devstack import ROOT


def test_the_shared_library_has_no_launcher() -> None:
    assert importlib.util.find_spec("konspekt.devstack") is None
    library = ROOT / "libs" / "common" / "konspekt"
    assert konspekt.__file__ is not None and library in Path(konspekt.__file__).parents
    assert not (library / "devstack.py").exists()
    # the image's command stays in the library: every stage image runs it
    assert (library / "serve.py").exists()


def test_the_launcher_is_its_own_package_of_small_modules() -> None:
    package = ROOT / "tools" / "devstack" / "konspekt_devstack"
    assert konspekt_devstack.__file__ == str(package / "__init__.py")
    for module in package.glob("*.py"):
        assert len(module.read_text(encoding="utf-8").splitlines()) <= 500, module.name


def test_python_m_konspekt_devstack_starts_its_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "konspekt_devstack", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "--stages" in done.stdout and "--no-gateway" in done.stdout
