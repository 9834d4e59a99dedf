"""The Helm chart (deploy/helm/session-exporter), linted and rendered by the real Helm engine.

helm-python-sdk is Helm 4's Go SDK as a library: offline, no cluster, no binary. Every
rendered core object is validated strictly against the Kubernetes schemas
(kubernetes-validate), and the prometheus-operator kinds against the structural schemas of
tests/test_deploy.py, as the kustomize manifests are.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from deploy import rules
from exporter.config.settings import load_settings, shard_from_pod_name
from exporter.core.durations import parse_duration
from exporter.providers.target import TargetBase
from exporter.web.webconfig import load_web_config
from tests.test_deploy import (
    KUBERNETES_VERSION,
    PROMETHEUS_RULE,
    REST_MIB,
    SERVICE_MONITOR,
    _mib,
    check_config,
)
from tests.tools import ROOT

CHART = ROOT / "deploy" / "helm" / "session-exporter"
RELEASE = "obs"
CORE_KINDS = {"ServiceAccount", "ConfigMap", "Secret", "Deployment", "StatefulSet", "Service"}
A_HASH = "$2y$10$" + "a" * 53
EVERY_TOGGLE: dict[str, Any] = {
    "sharding": {"enabled": True, "shards": 4},
    "serviceMonitor": {
        "enabled": True,
        "labels": {"release": "prometheus"},
        "scheme": "https",
        "tlsConfig": {"insecureSkipVerify": True},
    },
    "podMonitor": {"enabled": True, "scheme": "https"},
    "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
    "webConfig": {
        "enabled": True,
        "tlsSecret": "session-exporter-tls",
        "config": {"basic_auth_users": {"prometheus": A_HASH}},
    },
    "extraArgs": ["--web.disable-exporter-metrics"],
}


def _monitor_schema(kind: str, endpoints: str) -> dict[str, Any]:
    """test_deploy's ServiceMonitor schema, with the fields the chart adds (jobLabel, the
    scheme and TLS of an endpoint), for ``kind`` whose endpoint list is ``endpoints``."""
    schema: dict[str, Any] = copy.deepcopy(SERVICE_MONITOR)
    schema["properties"]["kind"] = {"const": kind}
    spec = schema["properties"]["spec"]
    spec["properties"]["jobLabel"] = {"type": "string"}
    endpoint = spec["properties"]["endpoints"]
    endpoint["items"]["properties"] |= {
        "scheme": {"enum": ["http", "https"]},
        "tlsConfig": {"type": "object"},
    }
    if endpoints != "endpoints":
        spec["properties"][endpoints] = spec["properties"].pop("endpoints")
        spec["required"] = ["selector", endpoints]
    return schema


OPERATOR_SCHEMAS = {
    "ServiceMonitor": _monitor_schema("ServiceMonitor", "endpoints"),
    "PodMonitor": _monitor_schema("PodMonitor", "podMetricsEndpoints"),
    "PrometheusRule": PROMETHEUS_RULE,
}


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The chart's objects for ``values`` (after a clean strict lint), in template order."""
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBERNETES_VERSION}")
    assert [] == report["errors"], report
    assert [] == [m for m in report["messages"] if m["severity"] >= 2], report
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(values, name=RELEASE, namespace="monitoring")
    return [
        document
        for name, text in sorted(files.items())
        if name.endswith(".yaml") and text.strip()
        for document in yaml.safe_load_all(text)
        if document
    ]


def by_kind(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for document in objects:
        out.setdefault(document["kind"], []).append(document)
    return out


def main_container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


def validate(objects: list[dict[str, Any]]) -> None:
    """Each object against its schema: Kubernetes' for core kinds, structural for CRDs."""
    for document in objects:
        kind = document["kind"]
        if kind in CORE_KINDS:
            assert "1.30" == kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        else:
            jsonschema.validate(document, OPERATOR_SCHEMAS[kind])


def test_chart_version_follows_the_package() -> None:
    """Chart.yaml's version and appVersion are pyproject's version, and the image's tag
    defaults to it."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    (deployment,) = by_kind(render())["Deployment"]

    assert (version, version) == (chart["version"], chart["appVersion"])
    assert f"session-exporter:{version}" == main_container(deployment)["image"]


def test_default_values_render_the_deployment_and_validate() -> None:
    """With its default values the chart is a Deployment, its ConfigMap, Service and
    ServiceAccount, all valid; no operator object, no Secret (the keys' Secret exists)."""
    objects = render()
    kinds = sorted(o["kind"] for o in objects)

    assert ["ConfigMap", "Deployment", "Service", "ServiceAccount"] == kinds
    validate(objects)


def test_every_toggle_on_renders_and_validates() -> None:
    """Sharding, both monitors, the rules and the web config on: a StatefulSet and its
    headless Service instead of the Deployment, each operator object, the web config's
    Secret; every object valid."""
    objects = render(EVERY_TOGGLE)
    kinds = sorted(o["kind"] for o in objects)

    assert [
        "ConfigMap",
        "PodMonitor",
        "PrometheusRule",
        "Secret",
        "Service",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
        "StatefulSet",
    ] == kinds
    validate(objects)


def test_the_schema_check_rejects_a_wrong_field() -> None:
    """The validation above is effective on rendered objects: a misspelt field fails it."""
    objects = by_kind(render(EVERY_TOGGLE))
    workload = copy.deepcopy(objects["StatefulSet"][0])
    main_container(workload)["readinesProbe"] = {}
    monitor = copy.deepcopy(objects["PodMonitor"][0])
    monitor["spec"]["podMetricsEndpoints"][0]["intervall"] = "30s"

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(workload, KUBERNETES_VERSION, strict=True)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(monitor, OPERATOR_SCHEMAS["PodMonitor"])


def test_the_prometheus_rule_carries_the_generated_rules() -> None:
    """The chart's PrometheusRule holds rules.yml's groups, from the chart's copy that
    `python -m deploy.rules` writes (and its --check keeps current); the alerts' own
    templates reach it untouched by Helm's."""
    (rule,) = by_kind(render(EVERY_TOGGLE))["PrometheusRule"]
    shipped = yaml.safe_load(rules.RULES.read_text())["groups"]

    assert shipped == rule["spec"]["groups"]
    assert rules.render(rules.load())[rules.HELM_RULES] == rules.HELM_RULES.read_text()
    assert {"release": "prometheus"}.items() <= rule["metadata"]["labels"].items()
    assert "{{ $labels.target }}" in yaml.safe_dump(rule)


def test_config_keys_and_auto_reload_are_wired(tmp_path: Path) -> None:
    """The ConfigMap's config passes check-config with the keys' files; the pod mounts it and
    the keys' Secret, and turns auto-reload on; the Service selects the pods and is what the
    ServiceMonitor selects, with the job label the rules expect."""
    objects = by_kind(render({"serviceMonitor": {"enabled": True}}))
    (configmap,) = objects["ConfigMap"]
    (deployment,) = objects["Deployment"]
    (service,) = objects["Service"]
    (monitor,) = objects["ServiceMonitor"]
    main = main_container(deployment)
    pod = deployment["spec"]["template"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["name"]: m for m in main["volumeMounts"]}
    args = main["args"]
    text = configmap["data"]["config.yaml"]
    config = yaml.safe_load(text)
    keys = mounts["keys"]["mountPath"]
    for item in config["targets"]:
        (tmp_path / Path(item["api_key_file"]).name).write_text("a-test-key-value\n")
    path = tmp_path / "config.yaml"
    path.write_text(text.replace(f"{keys}/", f"{tmp_path}/"))

    code, output = check_config(path)
    assert 0 == code, output
    assert 0 == load_settings(path).config_auto_reload_interval  # the flag turns it on
    assert 30.0 == parse_duration(args[args.index("--config.auto-reload-interval") + 1])
    assert f"{mounts['config']['mountPath']}/config.yaml" == args[args.index("--config") + 1]
    assert configmap["metadata"]["name"] == volumes["config"]["configMap"]["name"]
    assert "session-exporter-keys" == volumes["keys"]["secret"]["secretName"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert rules.load().job == service["metadata"]["labels"][monitor["spec"]["jobLabel"]]


def test_sharding_runs_one_shard_per_pod() -> None:
    """sharding.shards is the StatefulSet's replicas and SESSION_EXPORTER_TOTAL_SHARDS; its
    pod names parse to every shard; the headless Service is not scraped twice."""
    objects = by_kind(render(EVERY_TOGGLE))
    (sts,) = objects["StatefulSet"]
    main = main_container(sts)
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in main["env"]}
    headless = next(s for s in objects["Service"] if s["spec"].get("clusterIP") == "None")
    (monitor,) = objects["ServiceMonitor"]

    assert 4 == sts["spec"]["replicas"]
    assert "4" == env["SESSION_EXPORTER_TOTAL_SHARDS"]
    assert {"fieldRef": {"fieldPath": "metadata.name"}} == env["POD_NAME"]
    assert "--shard-from-pod-name" in main["args"]
    assert [0, 1, 2, 3] == [shard_from_pod_name(f"{sts['metadata']['name']}-{i}") for i in range(4)]
    assert headless["metadata"]["name"] == sts["spec"]["serviceName"]
    matched = monitor["spec"]["selector"]["matchLabels"].items()
    assert not matched <= headless["metadata"]["labels"].items()


def test_web_config_serves_the_tls_secret_and_probes_follow(tmp_path: Path) -> None:
    """With webConfig and a TLS Secret, the web config names the Secret's tls.crt and tls.key
    (a valid exporter-toolkit file once they exist), is mounted and passed with
    --web.config.file, and the probes speak HTTPS (readiness on /healthz behind basic auth)."""
    from tests.test_watch import certificate  # noqa: PLC0415

    objects = by_kind(render(EVERY_TOGGLE))
    (secret,) = objects["Secret"]
    (sts,) = objects["StatefulSet"]
    main = main_container(sts)
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    cert, key, _ = certificate("server")
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    web_yml = tmp_path / "web.yml"
    web_yml.write_text(secret["stringData"]["web.yml"].replace(f"{mounts['tls']}/", ""))

    loaded = load_web_config(web_yml)
    assert loaded.ssl_context is not None
    assert ["prometheus"] == list(loaded.file.basic_auth_users)
    assert (
        f"{mounts['web-config']}/web.yml"
        == main["args"][main["args"].index("--web.config.file") + 1]
    )
    assert secret["metadata"]["name"] == volumes["web-config"]["secret"]["secretName"]
    assert "session-exporter-tls" == volumes["tls"]["secret"]["secretName"]
    assert ("HTTPS", "HTTPS", "HTTPS") == tuple(
        main[probe]["httpGet"]["scheme"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    )
    assert "/healthz" == main["readinessProbe"]["httpGet"]["path"]
    assert "--web.disable-exporter-metrics" == main["args"][-1]


def test_memory_limit_holds_the_default_answer_size_with_room() -> None:
    """The chart's memory limit holds the exporter at rest plus 4 x the default
    max_response_bytes with half as much again to spare, as the other manifests'."""
    default = TargetBase.model_fields["max_response_bytes"].default / (1024 * 1024)
    (deployment,) = by_kind(render())["Deployment"]
    limit = main_container(deployment)["resources"]["limits"]["memory"]

    needed = REST_MIB + 4 * default
    assert _mib(limit) >= needed + needed / 2, (limit, needed)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (
            {"serviceMonitor": {"enable": True}},
            "at '/serviceMonitor': additional properties 'enable'",
        ),
        (
            {"sharding": {"enabled": True, "shards": 0}},
            "at '/sharding/shards': minimum: got 0, want 1",
        ),
        ({"autoReloadInterval": "soon"}, "at '/autoReloadInterval'"),
    ],
)
def test_values_schema_refuses_wrong_values(values: dict[str, Any], problem: str) -> None:
    """values.schema.json: a misspelt toggle, no shard or a duration that is none fails the
    lint and the render, naming the value; an interval of 0 (off) is accepted."""
    report = helm.lint(str(CHART), values, strict=True)
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmValuesError) as caught:
        chart.render(values, name=RELEASE, namespace="monitoring")

    assert problem in "".join(report["errors"])
    assert problem in str(caught.value)
    assert [] == helm.lint(str(CHART), {"autoReloadInterval": 0}, strict=True)["errors"]


def test_rendering_without_the_keys_secret_fails_with_its_reason() -> None:
    """keys.existingSecret is required: rendering without it fails, naming it."""
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmRenderError) as caught:
        chart.render({"keys": {"existingSecret": ""}}, name=RELEASE, namespace="monitoring")

    assert "keys.existingSecret names the Secret of the API keys" in str(caught.value)
