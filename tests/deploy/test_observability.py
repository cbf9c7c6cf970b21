"""deploy/observability: the Grafana dashboard and the alert rules parse, use only metrics the
services really export, and the monitoring kustomization renders and fits the manifests."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY

from tests.deploy.conftest import K8S, ROOT, SERVICES, Obj, kustomize
from tests.scrape import OBSERVABILITY, referenced_metrics

DASHBOARD = OBSERVABILITY / "konspekt-dashboard.json"
RULES = OBSERVABILITY / "konspekt-rules.yaml"
#: Every module that defines metrics (importing them registers their metrics).
METRIC_MODULES = (
    "konspekt.metrics",
    "konspekt_audio.servicer",
    "konspekt_asr.servicer",
    "konspekt_summarizer.servicer",
    "konspekt_renderer.servicer",
    "konspekt_gateway.metrics",
)
#: Series Prometheus makes itself for every target.
FROM_PROMETHEUS = {"up"}
#: Labels every scraped series gets from its target: `job` and `instance` always, and those the
#: ServiceMonitors and scrape-config.yaml set (`app` = the pod's app.kubernetes.io/name,
#: `namespace`, `pod`; the operator's `service`, `endpoint`, `container`).
TARGET_LABELS = {"job", "instance", "app", "namespace", "pod", "service", "endpoint", "container"}
#: vLLM's own metrics, an external allow-list (the code here does not export them): the V1
#: engine's names in the pinned vllm/vllm-openai v0.11 (docs.vllm.ai, "Production Metrics"), each
#: with the labels `model_name` and `engine`. vllm:gpu_cache_usage_perc is its deprecated name
#: for vllm:kv_cache_usage_perc, hidden by default since v0.11: allowed, not used.
_VLLM = {"model_name", "engine"}
VLLM_METRICS: dict[str, set[str]] = {
    **{
        name: _VLLM
        for name in (
            "vllm:num_requests_running",
            "vllm:num_requests_waiting",
            "vllm:kv_cache_usage_perc",
            "vllm:gpu_cache_usage_perc",
            "vllm:prompt_tokens_total",
            "vllm:generation_tokens_total",
            "vllm:num_preemptions_total",
            "vllm:prefix_cache_queries_total",
            "vllm:prefix_cache_hits_total",
        )
    },
    "vllm:request_success_total": _VLLM | {"finished_reason"},
    **{
        f"vllm:{histogram}{suffix}": _VLLM | ({"le"} if suffix == "_bucket" else set())
        for histogram in (
            "time_to_first_token_seconds",
            "e2e_request_latency_seconds",
            "request_queue_time_seconds",
            "request_prefill_time_seconds",
            "request_decode_time_seconds",
        )
        for suffix in ("_bucket", "_sum", "_count")
    },
}
#: Grafana's variables, replaced by what they expand to before parsing.
GRAFANA_VARIABLES = {
    "$__rate_interval": "2m",
    "$__interval": "1m",
    "$namespace": "konspekt",
    "$__range": "1h",
}
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("_count", "_sum"),
}


def exported() -> dict[str, str]:
    """Every series name the services can export (what a query may select) -> metric type."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    names: dict[str, str] = {}
    for family in REGISTRY.collect():
        names[family.name] = family.type
        for suffix in _SUFFIXES.get(family.type, ()):
            names[family.name + suffix] = family.type
        for sample in family.samples:
            names[sample.name] = family.type
    return names


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def rules() -> list[dict[str, Any]]:
    spec = yaml.safe_load(RULES.read_text())["spec"]
    return [rule for group in spec["groups"] for rule in group["rules"]]


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every dashboard target and every rule."""
    found = [
        (f"panel {p['title']!r}", str(t["expr"]))
        for p in panels()
        for t in p.get("targets", [])
        if t.get("expr")
    ]
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            found.append((f"variable {var['name']}", _label_values_selector(var["definition"])))
    found += [(f"alert {r['alert']}", str(r["expr"])) for r in rules()]
    return found


def _label_values_selector(definition: str) -> str:
    """label_values(metric{...}, label) -> the metric selector (Grafana's, not PromQL)."""
    match = re.fullmatch(r"label_values\((.+),\s*\w+\)", definition.strip())
    assert match, definition
    return match.group(1)


def _grafana_to_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"an unknown Grafana variable in {expr}"
    return expr


def exported_labels() -> dict[str, set[str]]:
    """Every series name the services can export -> the label names its samples carry (a
    histogram's `_bucket` adds `le`), read from the registered collectors, so a labelled metric
    that has no sample yet counts too."""
    exported()  # imports every module that defines metrics
    labels: dict[str, set[str]] = {}
    for collector in list(REGISTRY._collector_to_names):
        name = getattr(collector, "_name", None)
        kind = getattr(collector, "_type", None)
        if name is not None and kind is not None and hasattr(collector, "_labelnames"):
            own = set(collector._labelnames)
            if kind == "counter":
                name = name.removesuffix("_total")
            labels[name] = own
            for suffix in _SUFFIXES.get(kind, ()):
                labels[name + suffix] = own | ({"le"} if suffix == "_bucket" else set())
            continue
        for family in collector.collect():
            own = set(getattr(family, "_labelnames", ()))
            labels.setdefault(family.name, set()).update(own)
            for sample in family.samples:
                labels.setdefault(sample.name, set()).update(own, sample.labels)
    return labels


def used_labels(expr: str) -> tuple[dict[str, set[str]], set[str]]:
    """(metric -> label names its selector matches on, label names of by/without/on/ignoring/
    group_left/group_right anywhere in the expression)."""
    matched: dict[str, set[str]] = {}
    grouping: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names = {m.name for m in node.matchers.matchers if m.name != "__name__"}
            matched.setdefault(str(node.name), set()).update(names)
        modifier = getattr(node, "modifier", None)
        if isinstance(node, promql_parser.AggregateExpr) and modifier is not None:
            grouping.update(modifier.labels)
        if isinstance(node, promql_parser.BinaryExpr) and modifier is not None:
            if modifier.matching is not None:
                grouping.update(modifier.matching.labels)
            grouping.update(modifier.group_labels or ())

    promql_parser.walk(promql_parser.parse(_grafana_to_promql(expr)), visit)
    return matched, grouping


def template_labels(text: str) -> set[str]:
    """Label names a Grafana legend ({{pod}}) or an alert annotation ({{ $labels.pod }}) shows."""
    return set(re.findall(r"\{\{\s*(?:\$labels\.)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", text)) - {"value"}


def selected_metrics(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(str(node.name))

    promql_parser.walk(promql_parser.parse(_grafana_to_promql(expr)), visit)
    return names


def test_every_query_parses_and_selects_only_exported_metrics() -> None:
    names = {**exported(), **dict.fromkeys(VLLM_METRICS, "external")}
    queries = expressions()
    assert len(queries) > 40
    used: set[str] = set()
    for where, expr in queries:
        try:
            selected = selected_metrics(expr)
        except ValueError as exc:
            raise AssertionError(f"{where}: {exc}\n{expr}") from None
        assert selected, f"{where} selects no metric: {expr}"
        unknown = selected - names.keys() - FROM_PROMETHEUS
        assert not unknown, f"{where} uses metrics no service exports: {sorted(unknown)}"
        used |= selected
    # and, read loosely, every konspekt_* name anywhere in the files (descriptions too)
    for path in (DASHBOARD, RULES):
        loose = referenced_metrics(path.read_text()) - names.keys()
        assert not loose, f"{path.name} names metrics no service exports: {sorted(loose)}"
    # the dashboard and the rules between them watch every konspekt metric family
    families = {name for name, kind in names.items() if name.startswith("konspekt_")}
    watched = {_family(name, names) for name in used}
    unwatched = {_family(f, names) for f in families} - watched
    assert not unwatched, f"metrics neither on the dashboard nor in a rule: {sorted(unwatched)}"


def labelled_expressions() -> list[tuple[str, str, set[str]]]:
    """(where, PromQL, label names its legend or annotations show) for every target and rule."""
    found = [
        (f"panel {p['title']!r}", str(t["expr"]), template_labels(str(t.get("legendFormat", ""))))
        for p in panels()
        for t in p.get("targets", [])
        if t.get("expr")
    ]
    for rule in rules():
        shown = set().union(*(template_labels(str(v)) for v in rule.get("annotations", {}).values()))
        found.append((f"alert {rule['alert']}", str(rule["expr"]), shown))
    return found


def test_every_query_uses_only_label_names_its_metrics_have() -> None:
    """Issue 13: KonspektStageErrors and KonspektStageBusy filtered on `code`, and the stages'
    metric says `grpc_code`: they could never fire. Each selector's matchers must be labels of
    that metric (or of its target); grouping (by, on...) and the labels a legend or an annotation
    shows must be labels of some metric the expression selects."""
    labels = {**exported_labels(), **VLLM_METRICS}
    checked = 0
    for where, expr, shown in labelled_expressions():
        matched, grouping = used_labels(expr)
        every: set[str] = set(TARGET_LABELS)
        for metric, names in matched.items():
            own = labels.get(metric, set()) | TARGET_LABELS
            assert metric in labels or metric in FROM_PROMETHEUS, f"{where}: {metric} is not exported"
            unknown = names - own
            assert not unknown, f"{where}: {metric} has no label {sorted(unknown)} (it has {sorted(own)})"
            every |= own
            checked += len(names)
        assert not grouping - every, f"{where}: groups by {sorted(grouping - every)}, which no metric has"
        assert not shown - every, f"{where}: shows {sorted(shown - every)}, which no metric has"
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            label = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", var["definition"].strip())
            assert label and label.group(2) in TARGET_LABELS | labels.get(
                selected_metrics(label.group(1)).pop(), set()
            )
    assert checked > 40


def test_the_label_check_catches_the_old_bug() -> None:
    labels = exported_labels()
    assert labels["konspekt_rpc_requests_total"] == {"grpc_service", "grpc_method", "grpc_code"}
    assert "le" in labels["konspekt_rpc_duration_seconds_bucket"]
    assert labels["konspekt_gateway_jobs"] == {"state"}  # read at scrape time, no sample needed
    matched, grouping = used_labels(
        'sum by (grpc_service) (rate(konspekt_rpc_requests_total{code="UNAVAILABLE"}[15m])) / on (pod) x'
    )
    assert matched["konspekt_rpc_requests_total"] - labels["konspekt_rpc_requests_total"] == {"code"}
    assert grouping == {"grpc_service", "pod"}
    assert template_labels("{{ $labels.grpc_service }} {{ $value }} {{pod}}") == {"grpc_service", "pod"}


def test_vllm_and_the_reaper_are_watched() -> None:
    """vLLM panels and alerts on its real metric names; the 24 h promise has an alert at 25 h."""
    by_name = {r["alert"]: r for r in rules()}
    for alert in ("KonspektVllmDown", "KonspektVllmQueueing", "KonspektVllmKvCacheFull"):
        assert alert in by_name
    assert "vllm:num_requests_waiting" in selected_metrics(str(by_name["KonspektVllmQueueing"]["expr"]))
    panel_metrics = {
        m for p in panels() for t in p.get("targets", []) for m in selected_metrics(str(t["expr"]))
    }
    assert {
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
    } <= panel_metrics
    age = by_name["KonspektObjectsOutliveRetention"]
    assert selected_metrics(str(age["expr"])) == {"konspekt_gateway_reaper_oldest_object_age_seconds"}
    assert str(age["expr"]).rstrip().endswith("> 25 * 3600")
    assert age["labels"]["severity"] == "critical"
    assert "KonspektReaperStalled" in by_name


def _family(name: str, names: dict[str, str]) -> str:
    for suffix in _SUFFIXES.get(names.get(name, ""), ()):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_the_name_check_catches_a_typo() -> None:
    names = exported()
    assert "konspekt_rpc_requests_total" in names and "konspekt_rpc_duration_seconds_bucket" in names
    assert selected_metrics('sum(rate(konspekt_rpc_request_total{grpc_code="OK"}[5m]))') - names.keys() == {
        "konspekt_rpc_request_total"
    }
    with pytest.raises(ValueError, match="parenthesis"):
        selected_metrics("sum(rate(konspekt_rpc_requests_total[5m])")


def test_metric_names_follow_the_conventions() -> None:
    for name, kind in exported().items():
        if not name.startswith("konspekt_"):
            continue
        assert re.fullmatch(r"konspekt_[a-z0-9_]+", name), name
        if kind == "counter":
            assert name.endswith("_total") or name + "_total" in exported(), name
        if "second" in name.replace("per_second", ""):
            assert "_seconds" in name, f"{name}: a duration in seconds, the base unit, says so"
        assert not re.search(r"milli|_ms\b|_ms_|minutes|hours|_kb|_mb", name), f"{name}: base units"


def test_every_konspekt_metric_is_documented() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text()
    families = {_family(n, exported()) for n in exported() if n.startswith("konspekt_")}
    missing = sorted(f for f in families if not re.search(rf"`{f}(_total)?[`{{]", readme))
    assert not missing, f"deploy/README.md does not describe {missing}"


def test_alert_rules_are_complete() -> None:
    doc = yaml.safe_load(RULES.read_text())
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"
    names = [r["alert"] for r in rules()]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in rules():
        where = rule["alert"]
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, where
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, where
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], where
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), where
    # what issue 5 asks to be alerted on
    for wanted in ("ServiceDown", "StageNotServing", "StageErrors", "QueueBacklog", "JobFailures", "AsrSlow"):
        assert f"Konspekt{wanted}" in names


def test_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] == "konspekt"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    titles = {p["title"] for p in panels()}
    for wanted in ("Jobs by state", "Queue wait", "Summarizer: tokens per second", "Uploads", "CPU per pod"):
        assert wanted in titles
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]


def test_monitoring_kustomization_renders_and_matches_the_manifests() -> None:
    objs = kustomize(OBSERVABILITY)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert kinds == {
        ("ServiceMonitor", "konspekt"),
        ("ServiceMonitor", "konspekt-vllm"),
        ("PrometheusRule", "konspekt"),
        ("ConfigMap", "konspekt-grafana-dashboard"),
    }
    for obj in objs:
        assert obj["metadata"]["namespace"] == "konspekt"
        if obj["kind"] == "ConfigMap":  # CRDs have no schema offline; the ConfigMap does
            kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
            assert obj["metadata"]["labels"]["grafana_dashboard"] == "1"
            assert json.loads(obj["data"]["konspekt-dashboard.json"]) == dashboard()
        if obj["kind"] == "PrometheusRule":
            assert obj["spec"] == yaml.safe_load(RULES.read_text())["spec"]
    monitors = {o["metadata"]["name"]: o["spec"] for o in objs if o["kind"] == "ServiceMonitor"}
    monitor = monitors["konspekt"]
    assert [e["port"] for e in monitor["endpoints"]] == ["metrics"]
    selector = monitor["selector"]["matchExpressions"][0]
    assert selector["key"] == "app.kubernetes.io/name" and set(selector["values"]) == set(SERVICES)
    for overlay in ("overlays/cpu", "overlays/gpu"):
        services = {o["metadata"]["name"]: o for o in kustomize(K8S / overlay) if o["kind"] == "Service"}
        for name in SERVICES:
            svc: Obj = services[name]
            assert svc["metadata"]["labels"]["app.kubernetes.io/name"] in selector["values"]
            assert "metrics" in {p["name"] for p in svc["spec"]["ports"]}, f"{overlay}: {name}"
    vllm = monitors["konspekt-vllm"]
    gpu_services = {
        o["metadata"]["name"]: o for o in kustomize(K8S / "overlays/gpu") if o["kind"] == "Service"
    }
    assert vllm["endpoints"][0]["port"] in {p["name"] for p in gpu_services["vllm"]["spec"]["ports"]}


def test_plain_prometheus_scrape_config_keeps_the_labels_the_queries_use() -> None:
    (job,) = yaml.safe_load((OBSERVABILITY / "scrape-config.yaml").read_text())
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    assert {"app", "pod", "namespace", "__address__", "__metrics_path__"} <= targets
    keep = job["relabel_configs"][0]
    assert keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    assert keep["action"] == "keep"
