"""The MinIO init (deploy/k8s/minio/konspekt-init.sh), which Kubernetes' Job and compose's
minio-init both run: it needs nothing but a shell and `mc` (the pinned mc image has no sed or
grep), it is idempotent, it sets exactly the lifecycle rule the gateway sets (same id, `jobs/`
only), and it gives konspekt a user whose policy names this bucket alone.

`mc` here is tests/deploy/fake_mc.py: bucket and lifecycle calls go to the embedded S3 server
(SeaweedFS); MinIO's admin calls are checked and recorded (no MinIO server or mc binary installs
offline)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from konspekt.settings import S3Settings
from konspekt.storage import EXPIRY_PREFIX, EXPIRY_RULE_ID, ObjectStore
from tests.deploy.conftest import K8S, ROOT, kustomize

SCRIPT = K8S / "minio" / "konspekt-init.sh"
FAKE_MC = Path(__file__).with_name("fake_mc.py")
SHELLS = [s for s in ("/bin/dash", "/bin/bash") if Path(s).exists()]  # ubi-micro's /bin/sh is bash


@pytest.fixture
def mc_bin(tmp_path: Path) -> Path:
    """A PATH with `mc` and nothing else."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    mc = bindir / "mc"
    mc.write_text(
        f"#!{sys.executable}\nimport runpy, sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        f"runpy.run_path({str(FAKE_MC)!r}, run_name='__main__')\n"
    )
    mc.chmod(0o755)
    return bindir


def _env(s3: S3Settings, bindir: Path, tmp: Path, bucket: str, **extra: str) -> dict[str, str]:
    env = {
        "PATH": str(bindir),
        "TMPDIR": str(tmp),
        "MINIO_URL": "http://minio:9000",
        "MINIO_ROOT_USER": "minio-admin",
        "MINIO_ROOT_PASSWORD": "root-password-long",
        "BUCKET": bucket,
        "KONSPEKT_S3_ACCESS_KEY": "konspekt",
        "KONSPEKT_S3_SECRET_KEY": "konspekt-secret-long",
        "FAKE_MC_STATE": str(tmp / "mc-state.json"),
        "FAKE_MC_ENDPOINT": s3.endpoint,
        "FAKE_MC_ACCESS_KEY": s3.access_key,
        "FAKE_MC_SECRET_KEY": s3.secret_key.get_secret_value(),
    }
    return {**env, **extra}


def run(shell: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([shell, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def _rules(store: ObjectStore, bucket: str) -> list[tuple[Any, ...]]:
    config = store.client.get_bucket_lifecycle(bucket)
    assert config is not None
    return [
        (
            r.rule_id,
            r.rule_filter.prefix if r.rule_filter else None,
            r.expiration.days if r.expiration else None,
            r.abort_incomplete_multipart_upload.days_after_initiation
            if r.abort_incomplete_multipart_upload
            else None,
        )
        for r in config.rules
    ]


@pytest.mark.parametrize("shell", SHELLS)
def test_init_runs_with_only_mc_twice_and_matches_the_gateway(
    shell: str, s3_settings: S3Settings, mc_bin: Path, tmp_path: Path
) -> None:
    bucket = f"init-{uuid.uuid4().hex[:12]}"
    env = _env(s3_settings, mc_bin, tmp_path, bucket)
    for attempt in (1, 2):  # a re-run (a Job retried, compose up again) changes nothing
        done = run(shell, env)
        assert done.returncode == 0, f"run {attempt}: {done.stderr}"
        assert f"lifecycle rule {EXPIRY_RULE_ID} (jobs/, 1 d)" in done.stdout
    store = ObjectStore(s3_settings.model_copy(update={"bucket": bucket}))
    assert _rules(store, bucket) == [(EXPIRY_RULE_ID, EXPIRY_PREFIX, 1, 1)]
    # the gateway sets the same one rule at start: nothing changes, nothing is added
    store.ensure_bucket(expire_days=1)
    assert _rules(store, bucket) == [(EXPIRY_RULE_ID, EXPIRY_PREFIX, 1, 1)]

    state = json.loads((tmp_path / "mc-state.json").read_text())
    assert set(state["aliases"]) == {"konspektroot"}
    assert state["aliases"]["konspektroot"]["user"] == "minio-admin"
    policy_name = f"konspekt-{bucket}"
    assert state["users"] == {"konspekt": {"policies": [policy_name], "secret": "konspekt-secret-long"}}
    policy = state["policies"][policy_name]
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:PutLifecycleConfiguration"} <= actions
    assert not [a for a in actions if "*" in a or a.startswith("admin:")], actions


def test_init_refuses_missing_settings_and_the_root_user_for_konspekt(
    s3_settings: S3Settings, mc_bin: Path, tmp_path: Path
) -> None:
    env = _env(s3_settings, mc_bin, tmp_path, "unused", KONSPEKT_S3_SECRET_KEY="")
    done = run(SHELLS[0], env)
    assert done.returncode == 2 and "KONSPEKT_S3_SECRET_KEY is not set" in done.stderr
    env = _env(s3_settings, mc_bin, tmp_path, "unused", KONSPEKT_S3_ACCESS_KEY="minio-admin")
    done = run(SHELLS[0], env)
    assert done.returncode == 2 and "root user" in done.stderr
    assert not (tmp_path / "mc-state.json").exists(), "nothing was called"


def test_an_mc_failure_stops_the_init(s3_settings: S3Settings, mc_bin: Path, tmp_path: Path) -> None:
    bucket = f"init-{uuid.uuid4().hex[:12]}"
    env = _env(s3_settings, mc_bin, tmp_path, bucket, KONSPEKT_S3_SECRET_KEY="short")  # mc wants 8+
    done = run(SHELLS[0], env)
    assert done.returncode != 0 and "secret key 8+" in done.stderr
    assert "konspekt-init: bucket" not in done.stdout


def test_kubernetes_and_compose_run_this_script() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["minio-init"]
    assert compose["entrypoint"] == ["/bin/sh", "/init/konspekt-init.sh"]
    assert compose["volumes"] == ["./deploy/k8s/minio/konspekt-init.sh:/init/konspekt-init.sh:ro"]
    assert compose["image"].startswith("quay.io/minio/mc:RELEASE.")
    assert compose["environment"]["KONSPEKT_S3_ACCESS_KEY"].startswith("${KONSPEKT_S3_ACCESS_KEY:?")
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (it renders the kustomizations)")
    objs = kustomize(K8S / "minio")
    config = next(o for o in objs if o["kind"] == "ConfigMap")
    assert config["data"] == {"konspekt-init.sh": SCRIPT.read_text()}
    job = next(o for o in objs if o["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["/bin/sh", "/init/konspekt-init.sh"]
    assert container["image"] == compose["image"]
    assert {"name": "init", "configMap": {"name": config["metadata"]["name"]}} in pod["volumes"]
    secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e
    }
    assert secrets == {
        "MINIO_ROOT_USER": "konspekt-minio-admin",
        "MINIO_ROOT_PASSWORD": "konspekt-minio-admin",
        "KONSPEKT_S3_ACCESS_KEY": "konspekt-s3",
        "KONSPEKT_S3_SECRET_KEY": "konspekt-s3",
    }


def test_the_script_calls_no_tool_but_mc() -> None:
    """Belt and braces for the PATH test above: no sed, grep, awk, cut, tr, cat or jq."""
    words = {
        w
        for line in SCRIPT.read_text().splitlines()
        if not line.lstrip().startswith("#")
        for w in line.split()
    }
    assert not words & {"sed", "grep", "awk", "cut", "tr", "cat", "jq", "envsubst", "|grep", "|sed"}
    assert os.access(FAKE_MC, os.R_OK)
