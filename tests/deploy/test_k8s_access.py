"""deploy/k8s: the stages' callers (konspekt.access) — every stage knows the gateway's token
from the Secret konspekt-stage-tokens, the gateway sends the same key — and the optional
TLS-terminated entry for external gRPC clients with its NetworkPolicy."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

import pytest

from konspekt.access import check_prefix
from tests.deploy.conftest import STAGES
from tests.deploy.test_k8s import OVERLAYS, by_kind, pod_spec, rendered

SECRET = "konspekt-stage-tokens"


def config(objs: list[Any]) -> dict[str, str]:
    data: dict[str, str] = next(o for o in objs if o["kind"] == "ConfigMap")["data"]
    return data


def clients(objs: list[Any], stage: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(config(objs)[f"KONSPEKT_{stage.upper()}_CLIENTS"])
    return found


def token_files(deployment: Any) -> PurePosixPath:
    """Where the stage container mounts the Secret of client tokens."""
    pod = pod_spec(deployment)
    volume = next(v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == SECRET)
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
    assert mount["readOnly"] is True
    return PurePosixPath(mount["mountPath"])


@pytest.mark.parametrize("path", [*OVERLAYS, "examples/site", "examples/external-grpc"])
def test_every_stage_admits_the_gateway_by_the_token_it_sends(path: str) -> None:
    objs = rendered(path)
    deployments = by_kind(objs, "Deployment")
    assert "KONSPEKT_GATEWAY_STAGE_TOKEN" not in config(objs)  # a Secret, never the ConfigMap
    gateway_env = {e["name"]: e for e in pod_spec(deployments["gateway"])["containers"][0]["env"]}
    sent = gateway_env["KONSPEKT_GATEWAY_STAGE_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert sent == {"name": SECRET, "key": "gateway"}
    for stage in STAGES:
        known = clients(objs, stage)
        assert known["gateway"] == {
            "token_file": str(token_files(deployments[stage]) / "gateway"),
            "prefix": "jobs/",
        }
        for client in known.values():  # each client's token is a file of the mounted Secret
            assert PurePosixPath(client["token_file"]).parent == token_files(deployments[stage])
            assert set(client) == {"token_file", "prefix"}
            check_prefix(client["prefix"])
        assert f"KONSPEKT_{stage.upper()}_ALLOW_UNAUTHENTICATED" not in config(objs)


@pytest.mark.parametrize("path", OVERLAYS)
def test_the_overlays_have_no_entry_from_outside(path: str) -> None:
    objs = rendered(path)
    assert "stages-grpc" not in by_kind(objs, "Ingress")
    assert "stages-from-ingress" not in by_kind(objs, "NetworkPolicy")
    assert all(set(clients(objs, stage)) == {"gateway"} for stage in STAGES)


def test_the_external_entry_is_tls_grpc_to_each_stage_with_a_policy_to_match() -> None:
    objs = rendered("examples/external-grpc")
    ingress = by_kind(objs, "Ingress")["stages-grpc"]
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
    assert notes["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    spec = ingress["spec"]
    hosts = {rule["host"]: rule["http"]["paths"] for rule in spec["rules"]}
    assert spec["tls"] == [{"hosts": list(hosts), "secretName": "konspekt-grpc-tls"}]
    services = by_kind(objs, "Service")
    for stage in STAGES:
        (route,) = hosts[f"{stage}.grpc.konspekt.example.org"]
        assert route["backend"]["service"] == {"name": stage, "port": {"name": "grpc"}}
        assert "grpc" in {p["name"] for p in services[stage]["spec"]["ports"]}
    # the stages' gRPC port admits the ingress controller (as the gateway's port does), no one else new
    policy = by_kind(objs, "NetworkPolicy")["stages-from-ingress"]["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/component": "stage"}}
    gateway_in = by_kind(objs, "NetworkPolicy")["gateway-from-ingress"]["spec"]["ingress"][0]["from"]
    assert policy["ingress"] == [{"from": gateway_in, "ports": [{"protocol": "TCP", "port": "grpc"}]}]
    # the example's external client: its own token file and a prefix apart from the gateway's jobs
    for stage in STAGES:
        team = clients(objs, stage)["team-a"]
        assert team["token_file"].endswith("/team-a") and team["prefix"] == "jobs/ext-team-a/"
