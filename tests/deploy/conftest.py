"""Shared helpers for the deploy tests: paths, YAML loading, the rendered kustomizations."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
STAGES = ("audio", "asr", "summarizer", "renderer")
PORTS = {"audio": 50051, "asr": 50052, "summarizer": 50053, "renderer": 50054}
SERVICES = (*STAGES, "gateway")

Obj = dict[str, Any]


def kustomize(path: Path) -> list[Obj]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (it renders the kustomizations)")
    done = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]
