"""Deployment artifacts: Kubernetes manifests, docker compose, Dockerfile and the systemd unit.

Core Kubernetes kinds are validated against the Kubernetes JSON schemas (kubernetes-validate,
offline, strict: unknown fields fail); the prometheus-operator kinds against a structural schema
of the fields they use. There is no container engine here, so the Dockerfile and compose file are
parsed and their important properties asserted; the systemd unit goes through
``systemd-analyze verify`` and its offline security score.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from deploy import rules
from exporter.config.settings import shard_from_pod_name
from exporter.core.names import MAX_CONNECTIONS
from exporter.providers.target import TargetBase
from exporter.web.server import FD_RESERVE
from tests.tools import ROOT, require, run

DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
SHARDED = DEPLOY / "kubernetes-sharded"
KUBERNETES_VERSION = "1.30.0"
CORE_KINDS = {"ServiceAccount", "ConfigMap", "Secret", "Deployment", "Service"}
NAME = {"app.kubernetes.io/name": "session-exporter"}


def manifests() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object of deploy/kubernetes (kustomization excluded), by kind."""
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] not in objects, f"two {document['kind']} objects"
            objects[document["kind"]] = document
    return objects


def container() -> dict[str, Any]:
    """The exporter's container in the Deployment."""
    (only,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


# --- Kubernetes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(CORE_KINDS))
def test_core_manifests_match_the_kubernetes_schema(kind: str) -> None:
    """Each core object validates strictly against the Kubernetes schema of its kind."""
    assert "1.30" == kubernetes_validate.validate(
        manifests()[kind], KUBERNETES_VERSION, strict=True
    )


def test_the_schema_check_rejects_an_unknown_field() -> None:
    """The validation above is effective: a misspelt container field fails it."""
    deployment = copy.deepcopy(manifests()["Deployment"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "properties": {"matchLabels": {"type": "object"}},
                    "required": ["matchLabels"],
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                            "scrapeTimeout": {
                                "type": "string",
                                "pattern": "^([0-9]+(ms|s|m|h))+$",
                            },
                        },
                    },
                },
            },
        },
    },
}

PROMETHEUS_RULE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string"},
                            "interval": {"type": "string"},
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["expr"],
                                    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
                                    "properties": {
                                        "record": {"type": "string"},
                                        "alert": {"type": "string"},
                                        "expr": {"type": "string"},
                                        "for": {"type": "string"},
                                        "labels": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                        "annotations": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}


@pytest.mark.parametrize(
    ("kind", "schema"),
    [("ServiceMonitor", SERVICE_MONITOR), ("PrometheusRule", PROMETHEUS_RULE)],
)
def test_operator_resources_are_structurally_valid(kind: str, schema: dict[str, Any]) -> None:
    """ServiceMonitor and PrometheusRule have the shape prometheus-operator's CRDs define."""
    jsonschema.validate(manifests()[kind], schema)


def test_prometheus_rule_carries_exactly_the_rules_file() -> None:
    """The PrometheusRule's groups are rules.yml's groups, generated from the same thresholds."""
    shipped = yaml.safe_load(rules.RULES.read_text())["groups"]

    assert shipped == manifests()["PrometheusRule"]["spec"]["groups"]
    assert rules.render(rules.load())[rules.PROMETHEUS_RULE] == rules.PROMETHEUS_RULE.read_text()


def test_kustomization_lists_every_manifest_and_the_image() -> None:
    """Every manifest file is a kustomize resource, and `images` names the Deployment's image."""
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    files = sorted(p.name for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")

    assert files == sorted(kustomization["resources"])
    (image,) = kustomization["images"]
    assert image["name"] == container()["image"].split(":")[0]


def test_deployment_is_hardened_and_probed() -> None:
    """Non-root, read-only root, no privilege escalation or capabilities, probes and resources."""
    pod = manifests()["Deployment"]["spec"]["template"]["spec"]
    main = container()
    security = main["securityContext"]

    assert (True, True, False, ["ALL"]) == (
        pod["securityContext"]["runAsNonRoot"],
        security["readOnlyRootFilesystem"],
        security["allowPrivilegeEscalation"],
        security["capabilities"]["drop"],
    )
    assert 0 != pod["securityContext"]["runAsUser"]
    assert "RuntimeDefault" == pod["securityContext"]["seccompProfile"]["type"]
    assert False is pod["automountServiceAccountToken"]
    assert ("/healthz", "/readyz") == (
        main["livenessProbe"]["httpGet"]["path"],
        main["readinessProbe"]["httpGet"]["path"],
    )
    assert {"cpu", "memory"} == set(main["resources"]["requests"])
    assert "memory" in main["resources"]["limits"]


REST_MIB = 64
"""Peak RSS of the exporter polling nothing, rounded up (``python -m bench``: ~57 MiB)."""


def _mib(quantity: str) -> float:
    """A Kubernetes (``256Mi``) or systemd (``256M``) memory amount in MiB."""
    number, unit = re.fullmatch(r"(\d+)(Mi|M|Gi|G)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit.startswith("G") else 1)


def test_shipped_memory_limits_hold_the_default_answer_size_with_room() -> None:
    """Every shipped memory limit (Deployment, StatefulSet, systemd ``MemoryMax``) holds the
    exporter at rest plus 4 x the default ``max_response_bytes`` (the bound on one answer),
    with half as much again to spare."""
    default = TargetBase.model_fields["max_response_bytes"].default / (1024 * 1024)
    sharded = yaml.safe_load_all((SHARDED / "statefulset.yaml").read_text())
    (stateful,) = [d for d in sharded if d and d.get("kind") == "StatefulSet"]
    limits = {
        "deployment": container()["resources"]["limits"]["memory"],
        "statefulset": stateful["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"][
            "memory"
        ],
        "systemd": re.search(r"^MemoryMax=(\S+)$", UNIT.read_text(), re.M).group(1),  # type: ignore[union-attr]
    }

    needed = REST_MIB + 4 * default
    assert dict.fromkeys(limits, True) == {
        name: _mib(limit) >= needed + needed / 2 for name, limit in limits.items()
    }, (limits, needed)


def test_deployment_wires_config_keys_service_and_monitor_together() -> None:
    """Config from the ConfigMap, keys from the Secret as files; Service and monitor match."""
    objects = manifests()
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    main = container()
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in main["volumeMounts"]}
    config_path = main["args"][main["args"].index("--config") + 1]

    assert objects["ConfigMap"]["metadata"]["name"] == volumes["config"]["configMap"]["name"]
    assert f"{mounts['config']['mountPath']}/config.yaml" == config_path
    assert objects["Secret"]["metadata"]["name"] == volumes["keys"]["secret"]["secretName"]
    assert 0o440 == volumes["keys"]["secret"]["defaultMode"]
    assert all(m.get("readOnly") for name, m in mounts.items() if name != "tmp")
    config = yaml.safe_load(objects["ConfigMap"]["data"]["config.yaml"])
    key_files = {t["api_key_file"] for t in config["targets"]}
    secret_files = {f"{mounts['keys']['mountPath']}/{k}" for k in objects["Secret"]["stringData"]}
    assert secret_files == key_files
    assert objects["ServiceAccount"]["metadata"]["name"] == pod["serviceAccountName"]

    service = objects["Service"]
    monitor = objects["ServiceMonitor"]["spec"]
    template_labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= template_labels.items()
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    assert port["name"] == monitor["endpoints"][0]["port"]
    assert port["targetPort"] == main["ports"][0]["name"]
    assert rules.load().job == service["metadata"]["name"]  # the job label the operator sets


def check_config(config: Path) -> tuple[int, str]:
    """`session-exporter check-config` on ``config``: exit code and output."""
    result = run([sys.executable, "-m", "exporter", "check-config", "--config", str(config)])
    return result.returncode, result.stdout + result.stderr


def test_configmap_config_is_valid_with_the_secrets_keys(tmp_path: Path) -> None:
    """The ConfigMap's config passes check-config once the Secret's files exist."""
    objects = manifests()
    text = objects["ConfigMap"]["data"]["config.yaml"]
    for key, value in objects["Secret"]["stringData"].items():
        (tmp_path / key).write_text(value + "\n")
    config = tmp_path / "config.yaml"
    config.write_text(text.replace("/run/secrets/session-exporter/", f"{tmp_path}/"))

    code, output = check_config(config)

    assert 0 == code, output


# --- the sharded StatefulSet ---------------------------------------------------------------------


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize`` builds from ``directory`` (offline, no cluster)."""
    kubectl = require("kubectl")
    result = run([kubectl, "kustomize", str(directory)])
    assert 0 == result.returncode, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def statefulset() -> dict[str, Any]:
    """The StatefulSet of the sharded kustomization, as kustomize builds it."""
    (found,) = [o for o in kustomize(SHARDED) if o["kind"] == "StatefulSet"]
    return found


def env_of(main: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in main["env"]}


def test_both_kustomizations_build_and_validate() -> None:
    """deploy/kubernetes builds with its Deployment; deploy/kubernetes-sharded builds with a
    StatefulSet instead (no Deployment), and every core object validates strictly."""
    base = kustomize(KUBERNETES)
    sharded = kustomize(SHARDED)

    assert 1 == sum(o["kind"] == "Deployment" for o in base)
    assert "StatefulSet" not in {o["kind"] for o in base}
    kinds = sorted(o["kind"] for o in sharded)
    assert [
        "ConfigMap",
        "PrometheusRule",
        "Secret",
        "Service",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
        "StatefulSet",
    ] == kinds
    for document in sharded:
        if document["kind"] in CORE_KINDS | {"StatefulSet"}:
            assert "1.30" == kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_statefulset_takes_the_shard_from_the_pod_ordinal() -> None:
    """Each pod gets POD_NAME from the downward API and --shard-from-pod-name; the total is
    the replica count, and the pod names NAME-0..NAME-(replicas-1) parse to every shard."""
    sts = statefulset()
    (main,) = sts["spec"]["template"]["spec"]["containers"]
    env = env_of(main)
    replicas = sts["spec"]["replicas"]

    assert "--shard-from-pod-name" in main["args"]
    assert {"fieldRef": {"fieldPath": "metadata.name"}} == env["POD_NAME"]
    assert str(replicas) == env["SESSION_EXPORTER_TOTAL_SHARDS"]
    assert list(range(replicas)) == [
        shard_from_pod_name(f"{sts['metadata']['name']}-{i}") for i in range(replicas)
    ]
    headless = next(
        o for o in kustomize(SHARDED) if o["metadata"]["name"] == sts["spec"]["serviceName"]
    )
    assert "None" == headless["spec"]["clusterIP"]
    monitor = manifests()["ServiceMonitor"]["spec"]["selector"]["matchLabels"]
    assert not monitor.items() <= headless["metadata"]["labels"].items()  # not scraped twice


def test_statefulset_pod_template_is_the_deployments() -> None:
    """Apart from the shard flag and its environment, the pods are the Deployment's pods."""
    deployment = copy.deepcopy(manifests()["Deployment"]["spec"]["template"])
    template = copy.deepcopy(statefulset()["spec"]["template"])
    (ours,) = template["spec"]["containers"]
    (theirs,) = deployment["spec"]["containers"]

    assert [*theirs.pop("args"), "--shard-from-pod-name"] == ours.pop("args")
    assert theirs.pop("env") == [
        e for e in ours.pop("env") if e["name"] not in {"POD_NAME", "SESSION_EXPORTER_TOTAL_SHARDS"}
    ]
    assert deployment == template


def test_every_statefulset_pod_runs_its_own_shard(tmp_path: Path) -> None:
    """check-config as pod NAME-i of the StatefulSet reports shard i of replicas, and the pods'
    targets partition the ConfigMap's targets."""
    objects = manifests()
    for key, value in objects["Secret"]["stringData"].items():
        (tmp_path / key).write_text(value + "\n")
    config = tmp_path / "config.yaml"
    config.write_text(
        objects["ConfigMap"]["data"]["config.yaml"].replace(
            "/run/secrets/session-exporter/", f"{tmp_path}/"
        )
    )
    sts = statefulset()
    (main,) = sts["spec"]["template"]["spec"]["containers"]
    total = env_of(main)["SESSION_EXPORTER_TOTAL_SHARDS"]
    flags = [a for a in main["args"] if a.startswith("--shard")]
    owned: list[str] = []
    for ordinal in range(sts["spec"]["replicas"]):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_EXPORTER_")}
        env |= {"POD_NAME": f"session-exporter-{ordinal}", "SESSION_EXPORTER_TOTAL_SHARDS": total}
        result = subprocess.run(
            [sys.executable, "-m", "exporter", "check-config", "--config", str(config), *flags],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=60,
        )
        assert 0 == result.returncode, result.stderr
        lines = result.stdout.splitlines()
        (header,) = [i for i, line in enumerate(lines) if line.startswith("shard ")]
        assert lines[header].startswith(f"shard {ordinal} of {total}: ")
        owned += [line.strip() for line in lines[header + 1 :]]
    names = [
        t["name"] for t in yaml.safe_load(objects["ConfigMap"]["data"]["config.yaml"])["targets"]
    ]
    assert sorted(names) == sorted(owned)


# --- docker compose and Dockerfile ----------------------------------------------------------------


def compose() -> dict[str, Any]:
    """deploy/docker-compose.yml."""
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return document


def host_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """A service's bind mounts: container path -> host path (relative to deploy/)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[target] = (DEPLOY / source).resolve()
    return mounts


def test_compose_brings_up_exporter_prometheus_alertmanager_and_grafana() -> None:
    """Four services; the exporter is built from deploy/Dockerfile and runs the demo."""
    services = compose()["services"]

    assert {"session-exporter", "prometheus", "alertmanager", "grafana"} == set(services)
    exporter = services["session-exporter"]
    assert (DEPLOY / exporter["build"]["context"] / exporter["build"]["dockerfile"]).is_file()
    assert "demo" == exporter["command"][0]
    assert "9864:9864" in exporter["ports"]
    assert exporter["read_only"]
    for service in services.values():
        for path in host_mounts(service).values():
            assert path.exists(), path


def test_compose_prometheus_scrapes_the_exporter_with_the_rules() -> None:
    """Prometheus gets the shipped config and rules; its targets are the compose services."""
    prometheus = compose()["services"]["prometheus"]
    mounts = host_mounts(prometheus)
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())

    assert rules.RULES == mounts["/etc/prometheus/rules.yml"]
    (scrape,) = config["scrape_configs"]
    assert ["session-exporter:9864"] == scrape["static_configs"][0]["targets"]
    (alerting,) = config["alerting"]["alertmanagers"]
    assert ["alertmanager:9093"] == alerting["static_configs"][0]["targets"]
    assert "9093:9093" in compose()["services"]["alertmanager"]["ports"]


def test_compose_grafana_is_provisioned_with_the_dashboard_as_home() -> None:
    """Grafana mounts the provisioning files and the dashboard where the provider looks."""
    grafana = compose()["services"]["grafana"]
    mounts = host_mounts(grafana)
    provider_file = mounts["/etc/grafana/provisioning"] / "dashboards" / "session-exporter.yml"
    (provider,) = yaml.safe_load(provider_file.read_text())["providers"]
    folder = provider["options"]["path"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]

    assert (ROOT / "grafana" / "dashboards") == mounts[folder]
    assert home.startswith(folder + "/")
    assert (mounts[folder] / Path(home).name).is_file()
    source = mounts["/etc/grafana/provisioning"] / "datasources" / "prometheus.yml"
    assert "http://prometheus:9090" == yaml.safe_load(source.read_text())["datasources"][0]["url"]
    assert "true" == grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    """Two slim stages; the runtime copies the build's venv and runs as a numeric non-root user."""
    instructions = dockerfile()
    froms = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    runtime = instructions[froms[-1] :]

    assert 2 == len(froms)
    for index in froms:
        assert "-slim" in instructions[index][1]
    assert instructions[froms[0]][1].endswith("AS build")
    assert any(w == "COPY" and a.startswith("--from=build ") for w, a in runtime)
    (user,) = [a for w, a in runtime if w == "USER"]
    assert 0 != int(user.split(":")[0])
    assert ("EXPOSE", "9864") in runtime
    assert ("ENTRYPOINT", '["session-exporter"]') in runtime


def test_dockerfile_healthcheck_uses_the_healthcheck_command() -> None:
    """HEALTHCHECK runs `session-exporter healthcheck`, which finds the config the image names.

    The command reads the config (and web config) from the environment, so the port and TLS
    it checks are those `serve` uses; tests/test_healthcheck.py runs it against a real serve.
    """
    instructions = dockerfile()
    (check,) = [a for w, a in instructions if w == "HEALTHCHECK"]
    command = json.loads(check[check.index("CMD") + 3 :])
    env = " ".join(a for w, a in instructions if w == "ENV")

    assert ["session-exporter", "healthcheck"] == command
    assert "SESSION_EXPORTER_CONFIG=/etc/session-exporter/config.yaml" in env.split()
    assert ("CMD", '["serve"]') in instructions


def test_compose_demo_healthcheck_asks_the_demo_port() -> None:
    """The demo reads no config file, so compose's healthcheck names the port it listens on."""
    exporter = compose()["services"]["session-exporter"]
    port = exporter["command"][exporter["command"].index("--listen") + 1].rpartition(":")[2]

    test = exporter["healthcheck"]["test"]
    assert ["CMD", "session-exporter", "healthcheck", "--web.listen-address"] == test[:4]
    assert f":{port}" == test[4]


def test_root_dockerignore_keeps_the_venv_and_git_out_of_the_context() -> None:
    """Builders without BuildKit read only the root .dockerignore: it excludes the heavy parts."""
    patterns = {
        line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
    }

    assert {".venv", ".git", ".sdk", "node_modules", "**/__pycache__", ".mypy_cache"} <= patterns
    for source in ("pyproject.toml", "README.md", "exporter"):  # what the Dockerfile copies
        assert source not in patterns


def test_dockerfile_copies_only_existing_sources_the_ignore_file_allows() -> None:
    """Every COPY source exists and is let through by Dockerfile.dockerignore."""
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}

    for word, args in dockerfile():
        if word == "COPY" and not args.startswith("--from"):
            *sources, _ = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), source
                assert source.rstrip("/") in allowed, source


# --- systemd ---------------------------------------------------------------------------------


UNIT = DEPLOY / "systemd" / "session-exporter.service"


def unit_here(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's installed console script."""
    script = Path(sys.executable).parent / "session-exporter"
    text = UNIT.read_text().replace("/opt/session-exporter/bin/session-exporter", str(script))
    path = tmp_path / UNIT.name
    path.write_text(text)
    return path


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a single warning."""
    analyze = require("systemd-analyze")

    result = run([analyze, "verify", str(unit_here(tmp_path))])

    assert (0, "") == (result.returncode, result.stderr.strip())


def test_systemd_unit_is_sandboxed(tmp_path: Path) -> None:
    """The unit's offline security exposure score is at most 2.0 ("OK" or better)."""
    analyze = require("systemd-analyze")

    result = run([analyze, "security", "--offline=yes", "--threshold=20", str(unit_here(tmp_path))])

    assert 0 == result.returncode, result.stderr
    score = float(re.findall(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)[0])
    assert score <= 2.0, result.stdout


def test_systemd_unit_options() -> None:
    """DynamicUser, keys through LoadCredential, the main sandboxing switches, and
    `systemctl reload` sending the SIGHUP that reloads the config."""
    lines = {line.strip() for line in UNIT.read_text().splitlines()}

    assert {
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "ExecReload=/bin/kill -HUP $MAINPID",
    } <= lines
    assert {line for line in lines if line.startswith("LoadCredential=")}


def test_systemd_unit_leaves_descriptors_for_the_connection_cap() -> None:
    """LimitNOFILE is set, with room for the default connection cap, the reserve and polls."""
    limits = [line for line in UNIT.read_text().splitlines() if line.startswith("LimitNOFILE=")]

    assert ["LimitNOFILE=8192"] == limits
    assert 8192 >= 4 * (MAX_CONNECTIONS + FD_RESERVE)


def test_systemd_config_reads_keys_from_the_units_credentials(tmp_path: Path) -> None:
    """Every key file in the example config is a LoadCredential of the unit, and it validates."""
    config_text = (DEPLOY / "systemd" / "config.yaml").read_text()
    credentials_dir = "/run/credentials/session-exporter.service/"
    credentials = {
        line.split("=", 1)[1].split(":")[0]
        for line in UNIT.read_text().splitlines()
        if line.startswith("LoadCredential=")
    }
    targets = yaml.safe_load(config_text)["targets"]

    assert {credentials_dir + name for name in credentials} == {t["api_key_file"] for t in targets}
    for name in credentials:
        (tmp_path / name).write_text("a-key\n")
    config = tmp_path / "config.yaml"
    config.write_text(config_text.replace(credentials_dir, f"{tmp_path}/"))
    assert 0 == check_config(config)[0]
