"""Issue 13, part 3: scaling on work, not CPU. Every rendered KEDA ScaledObject is valid (against
the vendored schema tests/deploy/schemas/keda-scaledobject.schema.json: kubernetes-validate knows
no CRDs), targets a Deployment of the same kustomization that nothing else scales, and asks
Prometheus about metrics and labels the code exports (names read from the code, not copied);
each stage's thresholds match its workers and the gateway's concurrency; GPU ASR scales to zero
and the gateway's queue wakes it; every drain lasts the longest deadline of a call."""

from __future__ import annotations

import ast
import copy
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import jsonschema  # type: ignore[import-untyped]
import promql_parser
import pytest

from konspekt.metrics import RPC_IN_FLIGHT
from konspekt.settings import ServiceSettings
from konspekt.v1 import asr_pb2, audio_pb2, renderer_pb2, summarizer_pb2
from konspekt_asr.settings import AsrSettings
from konspekt_audio.settings import AudioSettings
from konspekt_gateway.jobs import JobState
from konspekt_gateway.settings import GatewaySettings, Stage
from konspekt_renderer.settings import RendererSettings
from konspekt_summarizer.settings import SummarizerSettings
from tests.deploy.conftest import STAGES, Obj
from tests.deploy.test_k8s import KUSTOMIZATIONS, OVERLAYS, by_kind, pod_spec, rendered
from tests.deploy.test_observability import (
    TARGET_LABELS,
    VLLM_METRICS,
    exported_labels,
    selected_metrics,
    used_labels,
)

SCHEMA_PATH = Path(__file__).parent / "schemas" / "keda-scaledobject.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
#: Each stage's settings (its workers' and grace's defaults) and gRPC services (their full names
#: are the `grpc_service` label of konspekt_rpc_in_flight).
SETTINGS: dict[str, type[ServiceSettings]] = {
    "audio": AudioSettings,
    "asr": AsrSettings,
    "summarizer": SummarizerSettings,
    "renderer": RendererSettings,
}
GRPC_SERVICES = {
    stage: {s.full_name for s in module.DESCRIPTOR.services_by_name.values()}
    for stage, module in (
        ("audio", audio_pb2),
        ("asr", asr_pb2),
        ("summarizer", summarizer_pb2),
        ("renderer", renderer_pb2),
    )
}
#: The gateway's job state while a job is at each stage (konspekt_gateway_jobs{state=...}).
STAGE_STATES = {
    "audio": JobState.EXTRACTING_AUDIO.value,
    "asr": JobState.TRANSCRIBING.value,
    "summarizer": JobState.SUMMARIZING.value,
    "renderer": JobState.RENDERING.value,
}
#: The metric the gateway's queue is (its collector's family), read from the registry.
QUEUE_METRIC = "konspekt_gateway_queue_length"
JOBS_METRIC = "konspekt_gateway_jobs"
WITHOUT_KEDA = "examples/without-keda"


def scaled_objects(path: str) -> dict[str, Obj]:
    return by_kind(rendered(path), "ScaledObject")


def config(path: str) -> dict[str, str]:
    data: dict[str, str] = next(o for o in rendered(path) if o["kind"] == "ConfigMap")["data"]
    return data


def setting(path: str, stage: str, field: str) -> float:
    """A stage's setting as the pods get it: the ConfigMap's value, else the settings' default."""
    cls = SETTINGS[stage]
    default = cls.model_fields[field].default
    return float(config(path).get(f"KONSPEKT_{stage.upper()}_{field.upper()}", default))


def triggers(obj: Obj) -> dict[str, Obj]:
    return {t["name"]: t for t in obj["spec"]["triggers"]}


def prometheus_queries(obj: Obj) -> Iterator[tuple[str, str]]:
    for trigger in obj["spec"]["triggers"]:
        assert trigger["type"] == "prometheus", f"{obj['metadata']['name']}: only Prometheus triggers"
        yield trigger["name"], trigger["metadata"]["query"]


_OPS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


def matchers(expr: str, metric: str) -> dict[str, tuple[str, str]]:
    """label -> (operator, value) of every selector of ``metric`` in ``expr`` (merged)."""
    found: dict[str, tuple[str, str]] = {}

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name == metric:
            for m in node.matchers.matchers:
                found[m.name] = (next(s for op, s in _OPS if m.op == op), m.value)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


#: Every kustomization under deploy/k8s; components (rendered alone) are pieces, not deployments.
RENDERED = [p for p in KUSTOMIZATIONS if p != "../observability"]
DEPLOYABLE = [p for p in RENDERED if not p.startswith("components/")]


def _with_keda() -> list[str]:
    return [p for p in DEPLOYABLE if scaled_objects(p)]


def test_the_overlays_scale_on_work() -> None:
    """Both overlays (and what builds on them) scale every stage with KEDA; the example without
    KEDA has none, and HPAs instead."""
    with_keda = set(_with_keda())
    assert {*OVERLAYS, "examples/site", "examples/external-grpc"} <= with_keda
    for path in with_keda:
        assert set(STAGES) <= set(scaled_objects(path)), path
    assert not scaled_objects(WITHOUT_KEDA)
    hpas = by_kind(rendered(WITHOUT_KEDA), "HorizontalPodAutoscaler")
    for stage in STAGES:
        spec = hpas[stage]["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": stage}
        assert spec["metrics"][0]["resource"]["name"] == "cpu"
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]


@pytest.mark.parametrize("path", RENDERED)
def test_every_scaled_object_validates_against_the_vendored_schema(path: str) -> None:
    for name, obj in scaled_objects(path).items():
        errors = sorted(VALIDATOR.iter_errors(obj), key=lambda e: list(e.absolute_path))
        assert not errors, f"{path}: ScaledObject/{name}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
        )


def test_the_schema_catches_mistakes() -> None:
    """Not a no-op: a misspelt field, a number where KEDA wants a string, a missing query."""
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    good = scaled_objects("overlays/cpu")["asr"]
    assert VALIDATOR.is_valid(good)
    spelt = copy.deepcopy(good)
    spelt["spec"]["minReplicas"] = 1
    typed = copy.deepcopy(good)
    typed["spec"]["triggers"][0]["metadata"]["threshold"] = 1
    missing = copy.deepcopy(good)
    del missing["spec"]["triggers"][0]["metadata"]["query"]
    unknown = copy.deepcopy(good)
    unknown["spec"]["triggers"][0]["metadata"]["metricName"] = "x"  # removed in KEDA 2.12
    window = copy.deepcopy(good)
    window["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"][
        "stabilizationWindowSeconds"
    ] = 7200
    for bad in (spelt, typed, missing, unknown, window):
        assert not VALIDATOR.is_valid(bad)


@pytest.mark.parametrize("path", DEPLOYABLE)
def test_each_scaled_object_targets_a_deployment_nothing_else_scales(path: str) -> None:
    objs = rendered(path)
    deployments = by_kind(objs, "Deployment")
    targets: dict[str, str] = {}
    for name, obj in scaled_objects(path).items():
        ref = obj["spec"]["scaleTargetRef"]
        assert ref.get("apiVersion", "apps/v1") == "apps/v1" and ref.get("kind", "Deployment") == "Deployment"
        assert ref["name"] in deployments, f"{path}: ScaledObject/{name} scales no Deployment here"
        assert ref["name"] not in targets, f"{path}: two ScaledObjects on {ref['name']}"
        targets[ref["name"]] = name
        assert obj["metadata"]["namespace"] == deployments[ref["name"]]["metadata"]["namespace"]
        assert "replicas" not in deployments[ref["name"]]["spec"], f"{ref['name']}: apply would reset it"
    for name, hpa in by_kind(objs, "HorizontalPodAutoscaler").items():
        target = hpa["spec"]["scaleTargetRef"]["name"]
        assert target not in targets, f"{path}: HPA/{name} and ScaledObject/{targets[target]} on {target}"
        assert target in deployments
    assert "gateway" not in targets, "the gateway is not scaled here (issue 13, part 1)"


@pytest.mark.parametrize("path", DEPLOYABLE)
def test_queries_use_exported_metric_and_label_names(path: str) -> None:
    """Every query parses, selects only metrics the services (or vLLM) export, with their label
    names, and is confined to the ScaledObject's own namespace."""
    labels = {**exported_labels(), **VLLM_METRICS}
    for name, obj in scaled_objects(path).items():
        for trigger, query in prometheus_queries(obj):
            where = f"{path}: {name}/{trigger}"
            selected = selected_metrics(query)
            assert selected and selected <= labels.keys(), f"{where}: {sorted(selected - labels.keys())}"
            matched, grouping = used_labels(query)
            for metric, names in matched.items():
                assert names <= labels[metric] | TARGET_LABELS, (
                    f"{where}: {metric} has no {names - labels[metric] - TARGET_LABELS}"
                )
                assert matchers(query, metric)["namespace"] == ("=", obj["metadata"]["namespace"]), where
            assert not grouping, f"{where}: KEDA wants a single value"
            # one value over all pods: the stages' gauges are each pod's own (sum), every gateway
            # replica reports every job (max: a sum would count each job once per replica)
            for metric in selected:
                shared = metric.startswith("konspekt_gateway_")
                assert re.search(rf"\b{'max' if shared else 'sum'}\({re.escape(metric)}\{{", query), (
                    f"{where}: {'max' if shared else 'sum'}({metric}{{...}})"
                )


@pytest.mark.parametrize("path", DEPLOYABLE)
def test_keda_asks_the_prometheus_that_scrapes_the_stages(path: str) -> None:
    """Every trigger asks one Prometheus, in the namespace the NetworkPolicy
    metrics-from-monitoring admits to the metrics ports (the site example moves both)."""
    objs = rendered(path)
    if not scaled_objects(path):
        return
    policy = by_kind(objs, "NetworkPolicy")["metrics-from-monitoring"]["spec"]
    scraper = policy["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]
    addresses = {
        t["metadata"]["serverAddress"]
        for obj in scaled_objects(path).values()
        for t in obj["spec"]["triggers"]
    }
    assert len(addresses) == 1, f"{path}: {sorted(addresses)}"
    host = re.fullmatch(r"https?://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(\.cluster\.local)?:\d+", addresses.pop())
    assert host, f"{path}: a Service address"
    assert scraper == {"kubernetes.io/metadata.name": host.group(2)}, path


@pytest.mark.parametrize("path", OVERLAYS)
def test_each_stage_scales_on_its_in_flight_calls_and_its_jobs(path: str) -> None:
    """The in-flight trigger reads konspekt.metrics.RPC_IN_FLIGHT for the stage's own gRPC
    service, one replica per `workers` calls; the jobs trigger reads the gateway's jobs in the
    stage's state; the gateway's concurrency is maxReplicaCount × workers."""
    in_flight = RPC_IN_FLIGHT._name
    assert JOBS_METRIC in exported_labels() and exported_labels()[JOBS_METRIC] == {"state"}
    for stage in STAGES:
        obj = scaled_objects(path)[stage]
        spec = obj["spec"]
        by_name = triggers(obj)
        workers = setting(path, stage, "workers")
        calls = by_name["in-flight"]["metadata"]
        assert selected_metrics(calls["query"]) == {in_flight}, stage
        op, service = matchers(calls["query"], in_flight)["grpc_service"]
        assert op == "=" and service in GRPC_SERVICES[stage], f"{stage}: {service}"
        assert float(calls["threshold"]) == workers, f"{stage}: threshold = KONSPEKT_{stage.upper()}_WORKERS"
        jobs = by_name["jobs"]["metadata"]
        assert selected_metrics(jobs["query"]) == {JOBS_METRIC}
        assert matchers(jobs["query"], JOBS_METRIC)["state"] == ("=", STAGE_STATES[stage]), stage
        assert float(jobs["threshold"]) == workers
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert spec["fallback"]["replicas"] <= spec["maxReplicaCount"]
        concurrency = int(config(path)[f"KONSPEKT_GATEWAY_{stage.upper()}_CONCURRENCY"])
        assert concurrency == spec["maxReplicaCount"] * workers, f"{stage}: gateway concurrency"
        behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        down = behavior["scaleDown"]
        assert down["stabilizationWindowSeconds"] >= 300, f"{stage}: no flapping on long calls"
        assert all(p["type"] == "Pods" and p["value"] == 1 for p in down["policies"]), stage


def test_gpu_asr_scales_to_zero_and_the_gateway_queue_wakes_it() -> None:
    cpu = scaled_objects("overlays/cpu")["asr"]["spec"]
    gpu = scaled_objects("overlays/gpu")["asr"]
    spec = gpu["spec"]
    assert cpu["minReplicaCount"] >= 1, "CPU ASR keeps a replica"
    assert spec["minReplicaCount"] == 0
    assert spec["cooldownPeriod"] >= 600, "idle for minutes, not between two jobs"
    assert spec["maxReplicaCount"] <= 4 and spec["fallback"]["replicas"] >= 1
    wake = triggers(gpu)["wake"]["metadata"]
    assert QUEUE_METRIC in exported_labels()
    assert QUEUE_METRIC in selected_metrics(wake["query"]), "the gateway's queue wakes it"
    op, states = matchers(wake["query"], JOBS_METRIC)["state"]
    assert op == "=~"
    assert set(states.split("|")) == {JobState.QUEUED.value, JobState.EXTRACTING_AUDIO.value}
    assert float(wake.get("activationThreshold", "0")) == 0, "any job at all wakes it"
    assert float(wake["threshold"]) >= 100, "waking asks for one replica, never more"
    # the calls that wait for the cold start keep their deadline: 10 minutes before the work
    data = config("overlays/gpu")
    assert float(data["KONSPEKT_GATEWAY_ASR_DEADLINE_BASE"]) >= 600


def test_vllm_scales_on_its_queue_and_finishes_requests_before_it_stops() -> None:
    objs = rendered("overlays/gpu")
    obj = scaled_objects("overlays/gpu")["vllm"]
    by_name = triggers(obj)
    assert selected_metrics(by_name["waiting"]["metadata"]["query"]) == {"vllm:num_requests_waiting"}
    assert selected_metrics(by_name["running"]["metadata"]["query"]) == {"vllm:num_requests_running"}
    assert obj["spec"]["minReplicaCount"] >= 1, "loading the weights takes minutes"
    # the summarizers never send more than vLLM's replicas batch well
    data = config("overlays/gpu")
    summarizer = scaled_objects("overlays/gpu")["summarizer"]["spec"]
    workers = setting("overlays/gpu", "summarizer", "workers")
    parallel = float(data.get("KONSPEKT_SUMMARIZER_PARALLEL_REQUESTS", 0)) or float(
        SummarizerSettings.model_fields["parallel_requests"].default
    )
    sequences = summarizer["maxReplicaCount"] * workers * parallel
    running = float(by_name["running"]["metadata"]["threshold"])
    assert running * obj["spec"]["maxReplicaCount"] >= sequences
    # preStop: wait (bounded) for the requests under way, inside the grace period
    pod = pod_spec(by_kind(objs, "Deployment")["vllm"])
    command = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["python3", "-c"]
    script = command[2]
    ast.parse(script)
    bound = re.search(r"time\.monotonic\(\) \+ (\d+)", script)
    settle = re.search(r"time\.sleep\((\d+)\)", script)
    assert bound and settle
    timeout = float(SummarizerSettings.model_fields["request_timeout"].default)
    assert float(bound.group(1)) >= timeout, "as long as a summarizer waits for one request"
    assert pod["terminationGracePeriodSeconds"] > int(bound.group(1)) + int(settle.group(1))
    literal = re.search(r'pattern = r"(.+)"', script)
    assert literal
    sample = (
        'vllm:num_requests_running{engine="0",model_name="m"} 3.0\n'
        'vllm:num_requests_waiting{engine="0",model_name="m"} 1.0\n'
        "vllm:num_requests_swapped 0.0\n"
    )
    assert [float(v) for v in re.findall(literal.group(1), sample, re.M)] == [3.0, 1.0]


def longest_deadline(path: str, stage: str, monkeypatch: pytest.MonkeyPatch) -> float:
    """The gateway's deadline of one call to ``stage`` on the longest recording the audio stage
    takes, with the ConfigMap's gateway settings (GatewaySettings.deadline, the code's formula)."""
    data = config(path)
    longest = float(
        data.get("KONSPEKT_AUDIO_MAX_DURATION_S", AudioSettings.model_fields["max_duration_s"].default)
    )
    with monkeypatch.context() as env:
        for key in [k for k in os.environ if k.startswith("KONSPEKT_")]:
            env.delenv(key)
        for key, value in data.items():
            if key.startswith("KONSPEKT_GATEWAY_"):
                env.setenv(key, value)
        gateway = GatewaySettings()
    return float(gateway.deadline(cast(Stage, stage), longest))


@pytest.mark.parametrize("path", OVERLAYS)
def test_every_drain_lasts_the_longest_call(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scale-down (or rollout) removes a pod while a call may run: the stage drains for
    GRACE_SECONDS >= the gateway's longest deadline for that stage, and kubelet waits longer."""
    deployments = by_kind(rendered(path), "Deployment")
    for stage in STAGES:
        deadline = longest_deadline(path, stage, monkeypatch)
        grace = setting(path, stage, "grace_seconds")
        assert grace >= deadline, f"{stage}: drains {grace} s, a call may run {deadline} s"
        pod = pod_spec(deployments[stage])
        assert pod["terminationGracePeriodSeconds"] >= grace + 10, f"{stage}: kubelet kills mid-drain"
        assert pod["terminationGracePeriodSeconds"] <= grace + 120, f"{stage}: follows the drain"
        # the stage leaves the Service on SIGTERM (readiness NOT_SERVING, new calls "draining",
        # which the gateway waits out): no preStop needed, none that would delay the drain
        assert "lifecycle" not in pod["containers"][0], stage


def test_the_drain_check_catches_a_short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    assert longest_deadline("overlays/cpu", "asr", monkeypatch) == 120 + 2 * 4 * 3600
    assert longest_deadline("overlays/gpu", "asr", monkeypatch) == 600 + 2 * 4 * 3600
    assert float(ServiceSettings.model_fields["grace_seconds"].default) < longest_deadline(
        "overlays/cpu", "renderer", monkeypatch
    ), "the code's default drain (20 s) would cut calls short: the ConfigMap must set it"


@pytest.mark.parametrize("path", OVERLAYS)
def test_a_stopping_gateway_lets_uploads_finish_then_hands_its_jobs_over(path: str) -> None:
    """The gateway's rollout (deploy/README.md): preStop waits until the Service and the ingress
    forget the pod, SIGTERM lets uploads under way finish for DRAIN_SECONDS, then its leases are
    released; kubelet waits for all of it. A replica that dies instead is taken over after
    LEASE_SECONDS, and every replica sees the others' jobs within SYNC_SECONDS."""
    data = config(path)
    settings = GatewaySettings.model_validate(
        {
            name: data[f"KONSPEKT_GATEWAY_{name.upper()}"]
            for name in ("drain_seconds", "lease_seconds", "sync_seconds")
        }
    )
    pod = pod_spec(by_kind(rendered(path), "Deployment")["gateway"])
    settle = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert 3 <= settle <= 15
    assert pod["terminationGracePeriodSeconds"] >= settle + settings.drain_seconds + 20
    assert settings.drain_seconds >= 300, "a 4 GiB upload at 100 Mbit/s takes about 6 minutes"
    assert settings.sync_seconds < settings.lease_seconds <= 60
