"""deploy/k8s: both overlays (and the init kustomizations) render with `kubectl kustomize`,
every object validates against the Kubernetes OpenAPI schema offline (kubernetes-validate,
strict: unknown fields fail), and the invariants ops rely on hold."""

from __future__ import annotations

import copy
import os
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from konspekt.server import LIVENESS_SERVICE
from tests.deploy.conftest import K8S, METRICS_PORTS, PORTS, ROOT, SERVICES, STAGES, Obj, kustomize

OVERLAYS = ("overlays/cpu", "overlays/gpu")
EXTRAS = (
    "models/cpu",
    "models/gpu",
    "minio",
    "examples/site",
    "examples/external-grpc",
    "examples/without-keda",
)
# the oldest supported release with every field used (gRPC probes GA: 1.27) and the newest known
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
WORKLOADS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}
#: Every kustomization under deploy/ (overlays, inits, monitoring, examples), found, not listed.
KUSTOMIZATIONS = tuple(
    os.path.relpath(p.parent, K8S) for p in sorted((ROOT / "deploy").rglob("kustomization.yaml"))
)
#: API groups of custom resources (KEDA's ScaledObject), validated by their own test.
CRD_GROUPS = ("keda.sh/",)
#: Kinds that live in no namespace.
CLUSTER_SCOPED = {
    "Namespace",
    "PersistentVolume",
    "StorageClass",
    "IngressClass",
    "PriorityClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
}

_rendered: dict[str, list[Obj]] = {}


def rendered(path: str) -> list[Obj]:
    if path not in _rendered:
        _rendered[path] = kustomize(K8S / path)
    return _rendered[path]


def by_kind(objs: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def pod_spec(obj: Obj) -> Obj:
    spec: Obj = obj["spec"]["template"]["spec"]
    return spec


def containers(obj: Obj) -> list[Obj]:
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.mark.parametrize("path", OVERLAYS + EXTRAS)
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_renders_and_validates_against_the_schema(path: str, version: str) -> None:
    objs = rendered(path)
    assert objs
    for obj in objs:
        if obj["apiVersion"].startswith(CRD_GROUPS):
            continue  # no CRD in kubernetes-validate: test_k8s_scaling.py checks KEDA's schema
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{path}: {obj['kind']}/{obj['metadata']['name']}: {exc.message}") from None


def test_the_validator_catches_mistakes() -> None:
    """Strict validation is not a no-op: a misspelt field and a wrong type fail."""
    deployment = copy.deepcopy(by_kind(rendered("overlays/cpu"), "Deployment")["asr"])
    pod_spec(deployment)["containers"][0]["readinesProbe"] = {"grpc": {"port": 50052}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)
    deployment = copy.deepcopy(by_kind(rendered("overlays/cpu"), "Deployment")["asr"])
    pod_spec(deployment)["containers"][0]["ports"][0]["containerPort"] = "grpc"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def _workloads(path: str) -> list[Obj]:
    return [o for o in rendered(path) if o["kind"] in WORKLOADS]


@pytest.mark.parametrize("path", OVERLAYS + EXTRAS)
def test_every_container_is_locked_down(path: str) -> None:
    for obj in _workloads(path):
        where = f"{path}: {obj['kind']}/{obj['metadata']['name']}"
        pod = pod_spec(obj)
        psc = pod.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, where
        assert psc.get("runAsUser") == 10001, where
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert pod.get("automountServiceAccountToken") is False, where
        mounts_tmp = {
            v["name"]
            for v in pod.get("volumes", [])
            if "emptyDir" in v and v["emptyDir"].get("medium") != "Memory"
        }
        for c in containers(obj):
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("privileged", False) is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert sc.get("runAsUser", 10001) != 0, where
            limits = c.get("resources", {}).get("limits", {})
            requests = c.get("resources", {}).get("requests", {})
            assert {"cpu", "memory"} <= limits.keys(), f"{where}: limits"
            assert {"cpu", "memory"} <= requests.keys(), f"{where}: requests"
            tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert tmp and tmp[0]["name"] in mounts_tmp, f"{where}: a writable /tmp (emptyDir)"
            image = c["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), f"{where}: {image}"


@pytest.mark.parametrize("path", OVERLAYS)
def test_long_running_containers_have_probes(path: str) -> None:
    for obj in by_kind(rendered(path), "Deployment").values():
        for c in containers(obj):
            where = f"{path}: {obj['metadata']['name']}/{c['name']}"
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in c, f"{where}: {probe}"


@pytest.mark.parametrize("path", OVERLAYS)
def test_each_probe_asks_what_it_should(path: str) -> None:
    """Issue 13, probes that keep what works working: a stage's liveness (and startup) is the
    process (gRPC health service konspekt.liveness, which never follows the model or vLLM), its
    readiness is "can take work" (the server's overall health, NOT_SERVING while loading, draining
    or while its model server does not answer); the gateway is ready when it can serve (/healthz),
    never when "every stage is up" (/readyz)."""
    deployments = by_kind(rendered(path), "Deployment")
    for stage in STAGES:
        c = pod_spec(deployments[stage])["containers"][0]
        port = PORTS[stage]
        assert c["ports"][0] == {"name": "grpc", "containerPort": port, "protocol": "TCP"}
        assert c["startupProbe"]["grpc"] == {"port": port, "service": LIVENESS_SERVICE}, stage
        assert c["livenessProbe"]["grpc"] == {"port": port, "service": LIVENESS_SERVICE}, stage
        assert c["readinessProbe"]["grpc"] == {"port": port}, f"{stage}: readiness is the server's health"
        # the process listens within seconds: startup does not wait for the model (readiness does)
        startup = c["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] <= 300, stage
        liveness = c["livenessProbe"]
        assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60, f"{stage}: no hair trigger"
    gateway = pod_spec(deployments["gateway"])["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert gateway[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    if "vllm" in deployments:
        vllm = pod_spec(deployments["vllm"])["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert vllm[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    # nothing anywhere restarts or unreadies a pod because another service is down
    for obj in deployments.values():
        for c in containers(obj):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert c[probe].get("httpGet", {}).get("path") != "/readyz", obj["metadata"]["name"]


@pytest.mark.parametrize("path", OVERLAYS)
def test_stage_services_are_headless_with_named_grpc_ports(path: str) -> None:
    services = by_kind(rendered(path), "Service")
    config = next(o for o in rendered(path) if o["kind"] == "ConfigMap")["data"]
    for stage in STAGES:
        svc = services[stage]["spec"]
        assert svc["clusterIP"] == "None", f"{stage}: headless, for the gateway's round_robin"
        assert svc["ports"][0] == {
            "name": "grpc",
            "port": PORTS[stage],
            "targetPort": "grpc",
            "protocol": "TCP",
            "appProtocol": "grpc",
        }
        assert config[f"KONSPEKT_GATEWAY_{stage.upper()}_TARGET"] == f"{stage}:{PORTS[stage]}"
        assert config[f"KONSPEKT_{stage.upper()}_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("path", [*OVERLAYS, "examples/without-keda"])
def test_every_stage_has_a_pdb_and_one_autoscaler(path: str) -> None:
    """A PDB per stage, and one autoscaler: KEDA's ScaledObject (the overlays; tests in
    test_k8s_scaling.py) or, without KEDA, a CPU HPA (components/cpu-hpa)."""
    objs = rendered(path)
    pdbs = by_kind(objs, "PodDisruptionBudget")
    hpas = by_kind(objs, "HorizontalPodAutoscaler")
    scaled = by_kind(objs, "ScaledObject")
    deployments = by_kind(objs, "Deployment")
    for stage in STAGES:
        assert pdbs[stage]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": stage}
        assert (stage in hpas) != (stage in scaled), f"{stage}: one autoscaler"
        assert "replicas" not in deployments[stage]["spec"], f"{stage}: the autoscaler owns replicas"
    # the gateway: two replicas or more (they share the jobs through the store's leases), rolled
    # one new pod before one old one goes, and a node drain takes one at a time
    gateway = deployments["gateway"]["spec"]
    assert gateway["replicas"] >= 2
    rolling = {"maxSurge": 1, "maxUnavailable": 0}
    assert gateway["strategy"] == {"type": "RollingUpdate", "rollingUpdate": rolling}
    assert pdbs["gateway"]["spec"] == {
        "minAvailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}},
    }
    assert "gateway" not in hpas and "gateway" not in scaled


def _secret_refs(obj: Obj) -> set[str]:
    names = set()
    for c in containers(obj):
        for env in c.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                names.add(ref["name"])
    return names


SENSITIVE = ("SECRET", "PASSWORD", "TOKEN", "ACCESS_KEY")


@pytest.mark.parametrize("path", OVERLAYS + EXTRAS)
def test_no_secret_values_in_manifests(path: str) -> None:
    objs = rendered(path)
    assert not [o for o in objs if o["kind"] == "Secret"], "Secrets are created by the operator"
    for obj in objs:
        if obj["kind"] == "ConfigMap":
            for key in obj["data"]:
                assert not any(word in key.upper() for word in SENSITIVE), f"{key} in a ConfigMap"
        if obj["kind"] in WORKLOADS:
            for c in containers(obj):
                for env in c.get("env", []):
                    if any(word in env["name"].upper() for word in SENSITIVE):
                        assert "value" not in env, f"{obj['metadata']['name']}: {env['name']} inline"
                        assert "secretKeyRef" in env["valueFrom"], env["name"]
    for obj in by_kind(objs, "Deployment").values():
        if obj["metadata"]["name"] != "vllm":
            assert "konspekt-s3" in _secret_refs(obj)


def _policy(objs: list[Obj], name: str) -> Any:
    return by_kind(objs, "NetworkPolicy")[name]["spec"]


@pytest.mark.parametrize("path", OVERLAYS)
def test_network_policies(path: str) -> None:
    objs = rendered(path)
    deny = _policy(objs, "default-deny-all")
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    # only the gateway reaches the stages, on their gRPC port
    stages_in = _policy(objs, "stages-from-gateway")
    assert stages_in["podSelector"]["matchLabels"] == {"app.kubernetes.io/component": "stage"}
    assert stages_in["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}],
            "ports": [{"protocol": "TCP", "port": "grpc"}],
        }
    ]
    # only the ingress controller's namespace reaches the gateway
    gw_in = _policy(objs, "gateway-from-ingress")
    assert gw_in["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
    # every konspekt pod reaches MinIO:9000 and DNS, nothing else by default
    minio = _policy(objs, "to-minio")
    assert minio["podSelector"]["matchLabels"] == {"app.kubernetes.io/part-of": "konspekt"}
    assert minio["egress"][0]["ports"] == [{"protocol": "TCP", "port": 9000}]
    dns_ports = {p["port"] for p in _policy(objs, "allow-dns")["egress"][0]["ports"]}
    assert dns_ports == {53}
    # every ingress rule selects its pods; no policy opens ingress to everything
    for name, spec in ((o["metadata"]["name"], o["spec"]) for o in objs if o["kind"] == "NetworkPolicy"):
        for rule in spec.get("ingress", []):
            assert rule.get("from"), f"{name}: an ingress rule without `from` admits everyone"
    # every pod template carries the labels the policies select on
    for obj in by_kind(objs, "Deployment").values():
        labels = obj["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "konspekt"


def test_ingress_fits_large_streamed_uploads() -> None:
    ingress = by_kind(rendered("overlays/cpu"), "Ingress")["gateway"]
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "4g"
    assert notes["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "gateway", "port": {"name": "http"}}


@pytest.mark.parametrize("path", OVERLAYS)
def test_models_volume_is_mounted_read_only(path: str) -> None:
    deployments = by_kind(rendered(path), "Deployment")
    for name in ("asr", "summarizer", *(("vllm",) if path.endswith("gpu") else ())):
        pod = pod_spec(deployments[name])
        vol = next(v for v in pod["volumes"] if v["name"] == "models")
        assert vol["persistentVolumeClaim"] == {"claimName": "konspekt-models", "readOnly": True}
        mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "models")
        assert mount["readOnly"] is True


def test_cpu_overlay_is_all_cpu() -> None:
    objs = rendered("overlays/cpu")
    config = next(o for o in objs if o["kind"] == "ConfigMap")["data"]
    assert config["KONSPEKT_ASR_DEVICE"] == "cpu"
    assert config["KONSPEKT_SUMMARIZER_ENGINE"] == "llamacpp"
    assert config["KONSPEKT_SUMMARIZER_MODEL"].endswith(".gguf")
    for obj in by_kind(objs, "Deployment").values():
        for c in containers(obj):
            assert "nvidia.com/gpu" not in c["resources"].get("limits", {})
            assert not c["image"].endswith("-cuda")


def test_gpu_overlay_puts_asr_and_vllm_on_gpu_nodes() -> None:
    objs = rendered("overlays/gpu")
    config = next(o for o in objs if o["kind"] == "ConfigMap")["data"]
    assert config["KONSPEKT_ASR_DEVICE"] == "cuda"
    assert config["KONSPEKT_ASR_COMPUTE_TYPE"] == "float16"
    assert config["KONSPEKT_SUMMARIZER_ENGINE"] == "openai"
    assert config["KONSPEKT_SUMMARIZER_BASE_URL"] == "http://vllm:8000/v1"
    deployments = by_kind(objs, "Deployment")
    for name in ("asr", "vllm"):
        pod = pod_spec(deployments[name])
        c = pod["containers"][0]
        assert c["resources"]["limits"]["nvidia.com/gpu"] == "1", name
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}, name
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod_spec(deployments["asr"])["containers"][0]["image"] == "konspekt/asr:0.1.0-cuda"
    vllm = pod_spec(deployments["vllm"])["containers"][0]
    assert vllm["image"].startswith("vllm/vllm-openai:v")
    assert "--served-model-name=ErenBukov/llama_31_8b_7k_Dataset" in vllm["args"]
    assert by_kind(objs, "Service")["vllm"]["spec"]["ports"][0]["port"] == 8000
    for stage in STAGES:  # only the ASR and vLLM take GPUs
        if stage != "asr":
            c = pod_spec(deployments[stage])["containers"][0]
            assert "nvidia.com/gpu" not in c["resources"]["limits"], stage
    into_vllm = _policy(objs, "vllm-from-summarizer")["ingress"][0]["from"]
    assert into_vllm == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "summarizer"}}}]


@pytest.mark.parametrize("path", OVERLAYS)
def test_every_container_serves_metrics_for_prometheus(path: str) -> None:
    """Each konspekt container declares a port named `metrics` (its settings' default), its pod
    is annotated for Prometheus' pod discovery, its Service names the port for a ServiceMonitor,
    and only the monitoring namespace may reach it (the Ingress never routes to it)."""
    objs = rendered(path)
    deployments = by_kind(objs, "Deployment")
    services = by_kind(objs, "Service")
    for name in SERVICES:
        port = METRICS_PORTS[name]
        for c in containers(deployments[name]):
            assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in c["ports"], name
        notes = deployments[name]["spec"]["template"]["metadata"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true"
        assert notes["prometheus.io/port"] == str(port), name
        assert notes["prometheus.io/path"] == "/metrics"
        metrics = [p for p in services[name]["spec"]["ports"] if p["name"] == "metrics"]
        assert metrics == [
            {
                "name": "metrics",
                "port": port,
                "targetPort": "metrics",
                "protocol": "TCP",
                "appProtocol": "http",
            }
        ], name
    # every workload annotated for scraping names a port one of its containers declares
    for obj in deployments.values():
        notes = obj["spec"]["template"]["metadata"].get("annotations", {})
        if notes.get("prometheus.io/scrape") == "true":
            declared = {p["containerPort"] for c in containers(obj) for p in c.get("ports", [])}
            assert int(notes["prometheus.io/port"]) in declared, obj["metadata"]["name"]
    scrape = _policy(objs, "metrics-from-monitoring")
    assert scrape["podSelector"]["matchLabels"] == {"app.kubernetes.io/part-of": "konspekt"}
    assert scrape["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
            "ports": [{"protocol": "TCP", "port": "metrics"}],
        }
    ]
    for ingress in by_kind(objs, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for route in rule["http"]["paths"]:
                assert route["backend"]["service"]["port"] == {"name": "http"}
    config = next(o for o in objs if o["kind"] == "ConfigMap")["data"]
    assert not [k for k in config if k.endswith("_METRICS_PORT")], "ports set once: the settings' defaults"


def test_every_kustomization_is_found() -> None:
    assert {*OVERLAYS, *EXTRAS, "../observability"} <= set(KUSTOMIZATIONS)


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_every_namespaced_object_renders_into_konspekt(path: str) -> None:
    """Issue 13: the gpu overlay's vLLM objects rendered with no namespace and landed in the
    context's. Every namespaced object of every kustomization must say `konspekt`."""
    objs = rendered(path)
    assert objs
    for obj in objs:
        where = f"{path}: {obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in obj["metadata"], where
        else:
            assert obj["metadata"].get("namespace") == "konspekt", where
    for ns in (o for o in objs if o["kind"] == "Namespace"):
        assert ns["metadata"]["name"] == "konspekt"


@pytest.mark.parametrize("path", OVERLAYS)
def test_every_deployment_spreads_over_nodes_and_zones(path: str) -> None:
    for name, obj in by_kind(rendered(path), "Deployment").items():
        selector = obj["spec"]["selector"]["matchLabels"]
        spread = pod_spec(obj).get("topologySpreadConstraints", [])
        keys = {c["topologyKey"] for c in spread}
        assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}, name
        for c in spread:
            assert c["labelSelector"] == {"matchLabels": selector}, name
            assert c["whenUnsatisfiable"] == "ScheduleAnyway", f"{name}: a small cluster must still schedule"
            assert c["matchLabelKeys"] == ["pod-template-hash"], f"{name}: spread each rollout's pods"


def _gib(quantity: str) -> float:
    units = {"Mi": 1 / 1024, "Gi": 1.0, "Ti": 1024.0}
    return float(quantity[:-2]) * units[quantity[-2:]]


@pytest.mark.parametrize("path", OVERLAYS)
def test_audio_reserves_disk_for_a_whole_upload(path: str) -> None:
    objs = rendered(path)
    audio = by_kind(objs, "Deployment")["audio"]
    (c,) = pod_spec(audio)["containers"]
    config = next(o for o in objs if o["kind"] == "ConfigMap")["data"]
    biggest = int(config["KONSPEKT_GATEWAY_MAX_UPLOAD_MB"]) / 1024
    requested = _gib(c["resources"]["requests"]["ephemeral-storage"])
    limit = _gib(c["resources"]["limits"]["ephemeral-storage"])
    tmp = next(v for v in pod_spec(audio)["volumes"] if v["name"] == "tmp")
    assert requested > biggest, "the upload and its WAV"
    assert limit > _gib(tmp["emptyDir"]["sizeLimit"]) >= requested


def test_the_site_example_sets_every_site_value() -> None:
    """Issue 13, part 6: registry and tag, ingress host/class/TLS, storage class, the namespaces
    of the ingress controller, Prometheus and MinIO, the models, node selectors/tolerations."""
    objs = rendered("examples/site")
    deployments = by_kind(objs, "Deployment")
    assert set(deployments) == set(SERVICES)
    for name, obj in deployments.items():
        pod = pod_spec(obj)
        assert pod["containers"][0]["image"] == f"registry.example.org/konspekt/{name}:0.1.0"
        assert pod["nodeSelector"] == {"node-pool": "konspekt"}, name
        assert pod["tolerations"] == [
            {"key": "dedicated", "operator": "Equal", "value": "konspekt", "effect": "NoSchedule"}
        ], name
    ingress = by_kind(objs, "Ingress")["gateway"]["spec"]
    assert ingress["ingressClassName"] == "nginx-public"
    assert ingress["tls"] == [{"hosts": ["konspekt.example.org"], "secretName": "konspekt-example-org-tls"}]
    assert [r["host"] for r in ingress["rules"]] == ["konspekt.example.org"]
    notes = by_kind(objs, "Ingress")["gateway"]["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "4g", "the base's annotations kept"
    pvc = by_kind(objs, "PersistentVolumeClaim")["konspekt-models"]["spec"]
    assert pvc["storageClassName"] == "nfs-client" and pvc["accessModes"] == ["ReadWriteMany"]

    def peer(policy: str) -> Any:
        spec = _policy(objs, policy)
        rule = (spec.get("ingress") or spec["egress"])[0]
        return (rule.get("from") or rule["to"])[0]["namespaceSelector"]["matchLabels"]

    assert peer("gateway-from-ingress") == {"kubernetes.io/metadata.name": "ingress"}
    assert peer("metrics-from-monitoring") == {"kubernetes.io/metadata.name": "observability"}
    assert peer("to-minio") == {"kubernetes.io/metadata.name": "storage"}
    config = next(o for o in objs if o["kind"] == "ConfigMap")["data"]
    assert config["KONSPEKT_S3_ENDPOINT"] == "minio.storage.svc.cluster.local:9000"
    assert config["KONSPEKT_ASR_MODEL"] == "/models/whisper-base"
    assert config["KONSPEKT_SUMMARIZER_MODEL"].endswith(".gguf")
    assert config["KONSPEKT_GATEWAY_PUBLIC_URL"] == "https://konspekt.example.org"
