"""Shared helpers for the deploy tests: paths, YAML loading, the rendered kustomizations."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from konspekt_asr.settings import AsrSettings
from konspekt_audio.settings import AudioSettings
from konspekt_gateway.settings import GatewaySettings
from konspekt_renderer.settings import RendererSettings
from konspekt_summarizer.settings import SummarizerSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
STAGES = ("audio", "asr", "summarizer", "renderer")
PORTS = {"audio": 50051, "asr": 50052, "summarizer": 50053, "renderer": 50054}
SERVICES = (*STAGES, "gateway")
#: Each service's /metrics port: the default of its settings' ``metrics_port``.
METRICS_PORTS: dict[str, int] = {
    name: int(settings.model_fields["metrics_port"].default)
    for name, settings in (
        ("audio", AudioSettings),
        ("asr", AsrSettings),
        ("summarizer", SummarizerSettings),
        ("renderer", RendererSettings),
        ("gateway", GatewaySettings),
    )
}

Obj = dict[str, Any]


def kustomize(path: Path) -> list[Obj]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (it renders the kustomizations)")
    done = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]
