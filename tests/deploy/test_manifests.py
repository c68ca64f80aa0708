"""deploy/'s Kubernetes manifests and compose file, checked offline: against the Kubernetes API schemas
(kubernetes-validate) and against each other (labels, ports, probes, the nginx files they mount)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate.utils import ValidationError, validate

DEPLOY = Path(__file__).parents[2] / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
# the oldest Kubernetes still widely run that the schemas cover, and the newest
VERSIONS = ("1.30.0", "1.37.0")


def documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def find(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_passes_the_kubernetes_schemas_strictly(version: str) -> None:
    docs = documents()
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "HorizontalPodAutoscaler"}
    for doc in docs:
        validate(doc, version, strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    broken = copy.deepcopy(find("Deployment", "glassbox"))
    broken["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {"tcpSocket": {"port": 1}}
    with pytest.raises(ValidationError):
        validate(broken, VERSIONS[-1], strict=True)


def test_deployment_service_and_autoscaler_share_labels_and_probe_healthz() -> None:
    deployment, service = find("Deployment", "glassbox"), find("Service", "glassbox-replicas")
    scaler = find("HorizontalPodAutoscaler", "glassbox")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["metadata"]["labels"] == service["metadata"]["labels"] == scaler["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"] == labels
    assert scaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "glassbox",
    }
    assert scaler["spec"]["metrics"][0]["resource"]["name"] == "cpu"

    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["enableServiceLinks"] is False  # else Services set GLASSBOX_* variables Glassbox would read
    assert [p["name"] for p in container["ports"]] == ["http"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    # sized from README: one core and about 1.6 GB for a replica with full caches
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "1600Mi"}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["GLASSBOX_THREADS"] == "1" and env["GLASSBOX_REPLICA_HEADER"] == "true"


def test_only_nginx_may_reach_the_replicas_that_trust_its_forwarded_for() -> None:
    policy = find("NetworkPolicy", "glassbox-replicas")
    proxy = find("Deployment", "glassbox-nginx")["spec"]["template"]["metadata"]["labels"]
    replicas = find("Deployment", "glassbox")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"] == replicas
    assert policy["spec"]["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": proxy}}], "ports": [{"port": "http"}]}
    ]


def test_nginx_runs_the_site_file_and_finds_the_replicas_in_dns() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    generated = kustomization["configMapGenerator"][0]
    files = dict(f.split("=", 1) if "=" in f else (Path(f).name, f) for f in generated["files"])
    assert all((DEPLOY / path).is_file() for path in files.values())
    assert files["glassbox.conf.template"] == "nginx/glassbox.conf.template"  # the file the tests run
    assert sorted(kustomization["resources"]) == sorted(f"kubernetes/{p.name}" for p in MANIFESTS)

    pod = find("Deployment", "glassbox-nginx")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for volume, key, directory in (
        ("site", "glassbox.conf.template", "/etc/nginx/templates"),
        ("replicas", "replicas.conf", "/etc/nginx/glassbox"),
    ):
        assert volumes[volume]["configMap"]["name"] == generated["name"]
        assert [i["key"] for i in volumes[volume]["configMap"]["items"]] == [key]
        assert mounts[volume] == directory
    assert "include glassbox/replicas.conf;" in (DEPLOY / "nginx" / "glassbox.conf.template").read_text()

    # the SRV name in replicas.conf is the headless Service's, in the kustomization's namespace
    service = find("Service", "glassbox-replicas")
    assert service["spec"]["clusterIP"] == "None"
    wanted = f"server glassbox-replicas.{kustomization['namespace']}.svc.cluster.local service=http resolve;"
    assert wanted in (DEPLOY / files["replicas.conf"]).read_text().splitlines()
    nginx = pod["containers"][0]
    assert {e["name"]: e["value"] for e in nginx["env"]}["NGINX_PORT"] == str(
        nginx["ports"][0]["containerPort"]
    )


def test_compose_lists_the_same_replicas_as_nginx_and_mounts_the_site_file() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    replicas = sorted(name for name in services if name.startswith("glassbox-"))
    servers = re.findall(
        r"^server (\S+):8000 resolve;$", (DEPLOY / "nginx" / "replicas-compose.conf").read_text(), re.M
    )
    assert replicas and servers == replicas
    for name in replicas:
        assert services[name]["environment"]["GLASSBOX_REPLICA_HEADER"] == "true"
        assert (
            "ports" not in services[name]
        )  # only nginx reaches them: it may be trusted with X-Forwarded-For
    nginx = services["nginx"]
    assert sorted(nginx["depends_on"]) == replicas
    mounted = {v.split(":")[1]: DEPLOY / v.split(":")[0] for v in nginx["volumes"]}
    assert mounted["/etc/nginx/templates/glassbox.conf.template"] == DEPLOY / "./nginx/glassbox.conf.template"
    assert mounted["/etc/nginx/glassbox/replicas.conf"].is_file()
    assert nginx["ports"] == [f"8000:{nginx['environment']['NGINX_PORT']}"]
