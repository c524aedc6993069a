"""The Kubernetes manifests, rendered by the real `kubectl kustomize`, checked against the code.

Each overlay is rendered from a copy of k8s/ after the secrets tool has written the dev overlay's
Secret material into it. The checks tie the YAML to the code it runs: container arguments parsed by
the real `rustchain` click command, peers compared with the embedded deployment's supervisor, the
NATS auth include compared with `server_configuration`, and the rendered nats-server configuration
started with the rendered Secrets, admitting the rendered admin token through the auth callout.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rustchain.cli.app import app
from rustchain.domain.access.credentials import Claims, Role
from rustchain.domain.access.quotas import TenantQuotas
from rustchain.platform.credentials.signing_keys import (
    CHECKPOINT_KEYS,
    TOKEN_KEYS,
    VERDICT_KEYS,
    parse_private_key,
    parse_public_key,
)
from rustchain.platform.credentials.tokens import TOKEN_VARIABLE, issue, verify
from rustchain.platform.deployment.endpoints import SERVICES
from rustchain.platform.deployment.replicas import EXECUTOR_ID_VARIABLE
from rustchain.platform.deployment.supervisor import RELAYED_STORES, _serve_argv
from rustchain.platform.grpc.decoding import max_message_bytes
from rustchain.platform.nats.auth_callout import (
    SECRETS_FILE,
    CalloutSecrets,
    serve_callout,
    server_configuration,
)
from rustchain.platform.nats.jetstream import (
    NatsCredentials,
    NatsPermissionError,
    NatsUnavailableError,
    connect,
    stream_replicas,
)
from rustchain.platform.nats.jwt import public_key
from rustchain.platform.nats.server import NATS_URL_VARIABLE, nats_server_binary
from rustchain.platform.storage.home import HOME_VARIABLE
from rustchain.tools.k8s_secrets import AUTH_CONF_FILE, ROUTES_CONF_FILE, write_secrets
from rustchain.verifier.policy_files import POLICIES_FOLDER
from tests.conditions import wait_until_sync
from tests.paths import REPO

OVERLAYS = ("dev", "production")
DATABASE_VARIABLE = "RUSTCHAIN_DATABASE_URL"
PUBLIC_KEY = TOKEN_KEYS.public_variable
VERDICT_PUBLIC_KEY = VERDICT_KEYS.public_variable
VERDICT_KEY_FILE = f"{VERDICT_KEYS.private_variable}_FILE"
VERDICT_KEY_SECRET = "rustchain-verdict-signing-key"
CHECKPOINT_KEY_FILE = f"{CHECKPOINT_KEYS.private_variable}_FILE"
CHECKPOINT_KEY_SECRET = "rustchain-checkpoint-signing-key"
SECRET_VARIABLES = (PUBLIC_KEY, VERDICT_PUBLIC_KEY, TOKEN_VARIABLE, DATABASE_VARIABLE)
# What production expects the platform team to have created (k8s/overlays/production, docs).
PRODUCTION_SECRETS = {
    "rustchain-token-public-key": {PUBLIC_KEY},
    VERDICT_KEY_SECRET: {"verdict-signing.pem"},
    "rustchain-verdict-public-key": {VERDICT_PUBLIC_KEY},
    CHECKPOINT_KEY_SECRET: {"checkpoint-signing.pem"},
    "rustchain-admin-token": {TOKEN_VARIABLE},
    "rustchain-database": {DATABASE_VARIABLE},
    "rustchain-nats-callout": {SECRETS_FILE},
    "rustchain-nats-auth-conf": {AUTH_CONF_FILE},
    "rustchain-nats-routes": {ROUTES_CONF_FILE},
}
NATS_CLIENTS = ("trainer", *(f"relay-{store}" for store in RELAYED_STORES), "nats-auth-callout")
SINGLETONS = ("executor", "memory", "trainer", *(f"relay-{s}" for s in RELAYED_STORES))
PRODUCTION_REPLICAS = {
    "planner": 3,
    "verifier": 3,
    "executor": 3,
    "memory": 2,
    "trainer": 2,
    **{f"relay-{store}": 2 for store in RELAYED_STORES},
    "nats-auth-callout": 1,
}
RELAYS = tuple(f"relay-{store}" for store in RELAYED_STORES)
Resource = dict[str, Any]


@dataclass
class Rendered:
    """One overlay's resources, as `kubectl kustomize` printed them."""

    resources: list[Resource]

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r["kind"] == kind]

    def named(self, kind: str, name: str) -> Resource:
        found = [r for r in self.of_kind(kind) if r["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def secret_named(self, prefix: str) -> Resource:
        """A generated Secret, whose name carries kustomize's hash suffix."""
        found = [
            s for s in self.of_kind("Secret") if s["metadata"]["name"].rsplit("-", 1)[0] == prefix
        ]
        assert len(found) == 1, f"expected one Secret {prefix}-<hash>, found {len(found)}"
        return found[0]

    def secret_value(self, prefix: str, key: str) -> str:
        return base64.b64decode(self.secret_named(prefix)["data"][key]).decode()

    def workloads(self) -> list[Resource]:
        return self.of_kind("Deployment") + self.of_kind("StatefulSet")

    def service_for(self, deployment: Resource) -> Resource | None:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        for service in self.of_kind("Service"):
            selector = service["spec"].get("selector") or {}
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                return service
        return None


def container(workload: Resource) -> Resource:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']}: one container expected"
    return dict(containers[0])


def env_of(workload: Resource) -> dict[str, Resource]:
    return {item["name"]: item for item in container(workload).get("env", [])}


def literal_env(workload: Resource, name: str) -> str:
    item = env_of(workload)[name]
    assert "value" in item, f"{workload['metadata']['name']}: {name} is not a literal"
    return str(item["value"])


def parse_cli(args: list[str]) -> click.Context:
    """The context of the command `args` name, parsed by the real `rustchain` command, not run.

    Groups are walked by their subcommand names (the manifests give no group options); the last
    command parses its own arguments strictly, so an unknown option or value fails here.
    """
    command: click.Command = app
    context = app.make_context("rustchain", [], resilient_parsing=True)
    rest = list(args)
    while isinstance(command, click.Group):
        assert rest, f"{args}: no subcommand after {context.command_path}"
        name, rest = rest[0], rest[1:]
        found = command.get_command(context, name)
        assert found is not None, f"{args}: no command {name!r} in {context.command_path}"
        command = found
        if isinstance(command, click.Group):
            context = command.make_context(name, [], parent=context, resilient_parsing=True)
    return command.make_context(name, rest, parent=context, resilient_parsing=False)


def render(tree: Path, overlay: str) -> Rendered:
    completed = subprocess.run(
        ["kubectl", "kustomize", str(tree / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, f"kubectl kustomize {overlay} failed: {completed.stderr}"
    return Rendered([r for r in yaml.safe_load_all(completed.stdout) if r])


@pytest.fixture(scope="module")
def k8s_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of k8s/ with the dev overlay's secrets freshly written by the tool."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the overlays are rendered with `kubectl kustomize`")
    tree = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(REPO / "k8s", tree, ignore=shutil.ignore_patterns("secrets"))
    write_secrets(tree / "overlays" / "dev" / "secrets")
    return tree


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, k8s_tree: Path) -> Rendered:
    return render(k8s_tree, request.param)


@pytest.fixture(scope="module")
def dev(k8s_tree: Path) -> Rendered:
    return render(k8s_tree, "dev")


@pytest.fixture(scope="module")
def production(k8s_tree: Path) -> Rendered:
    return render(k8s_tree, "production")


# The secrets tool.


def test_secrets_tool_writes_a_token_the_public_key_verifies_and_the_issuer_of_its_seed(
    tmp_path: Path,
) -> None:
    material = write_secrets(tmp_path / "secrets")
    out = tmp_path / "secrets"
    key = parse_public_key((out / "token-signing.pub.pem").read_text(), "test")
    claims = verify(key, (out / "admin.token").read_text())
    assert claims.role is Role.ADMIN
    assert claims.exp is not None, "the services' token expires too"
    verdict = parse_public_key((out / "verdict-signing.pub.pem").read_text(), "test")
    assert verdict != key
    seed = json.loads((out / SECRETS_FILE).read_text())["issuer_seed"]
    include = json.loads((out / AUTH_CONF_FILE).read_text())
    assert include["authorization"]["auth_callout"]["issuer"] == public_key(seed)
    assert include == server_configuration(material.callout)
    assert material.postgres_password in (out / "database.url").read_text()
    for path in out.iterdir():
        # A secretGenerator takes the file's bytes: a newline would end up in the value.
        pem = path.name.endswith(".pem")
        include = path.name in (AUTH_CONF_FILE, ROUTES_CONF_FILE)
        assert not path.read_text().endswith("\n") or include or pem, path.name
        assert path.stat().st_mode & 0o077 == 0, f"{path.name} is readable by others"


def test_secrets_tool_keeps_what_exists_and_rotate_replaces_everything(tmp_path: Path) -> None:
    out = tmp_path / "secrets"
    first = write_secrets(out)
    again = write_secrets(out)
    assert again == first
    rotated = write_secrets(out, rotate=True)
    assert rotated.token_key != first.token_key
    assert rotated.verdict_key != first.verdict_key
    assert rotated.callout.issuer_seed != first.callout.issuer_seed
    assert rotated.postgres_password != first.postgres_password
    assert rotated.routes_conf != first.routes_conf
    verify(parse_public_key(rotated.token_public_key, "test"), rotated.admin_token)


def test_secrets_tool_replaces_an_admin_token_the_key_no_longer_verifies(tmp_path: Path) -> None:
    out = tmp_path / "secrets"
    write_secrets(out)
    other = Ed25519PrivateKey.generate()
    (out / "admin.token").write_text(issue(other, Claims(sub="x", role=Role.ADMIN)))
    material = write_secrets(out)
    key = parse_public_key(material.token_public_key, "test")
    assert verify(key, (out / "admin.token").read_text()).role is Role.ADMIN


def test_secrets_tool_renews_an_admin_token_close_to_its_expiry(tmp_path: Path) -> None:
    out = tmp_path / "secrets"
    first = write_secrets(out)
    key = parse_private_key(first.token_key, "test")
    (out / "admin.token").write_text(
        issue(key, Claims(sub="x", role=Role.ADMIN), expires_in=86_400)
    )
    renewed = write_secrets(out)
    claims = verify(key.public_key(), renewed.admin_token)
    assert claims.exp is not None and claims.exp - time.time() > 300 * 86_400


# Both overlays.


def test_every_service_has_a_deployment_and_a_service(rendered: Rendered) -> None:
    for name in SERVICES:
        deployment = rendered.named("Deployment", name)
        service = rendered.named("Service", name)
        assert rendered.service_for(deployment) is service


def test_every_rustchain_container_parses_with_the_real_command(rendered: Rendered) -> None:
    for workload in rendered.of_kind("Deployment"):
        context = parse_cli(list(container(workload)["args"]))
        assert context.command.name, workload["metadata"]["name"]


def test_serve_arguments_are_the_supervisors_with_peers_at_their_services(
    rendered: Rendered,
) -> None:
    endpoints = {}
    for name in SERVICES:
        port = rendered.named("Service", name)["spec"]["ports"][0]["port"]
        endpoints[name] = f"{name}:{port}"
    headless = _headless_service_of(rendered, rendered.named("Deployment", "executor"))
    if headless is not None:
        # Several executors: the planner balances over every pod the headless name resolves to.
        port = headless["spec"]["ports"][0]["port"]
        endpoints["executor"] = f"dns:///{headless['metadata']['name']}:{port}"
    for name in SERVICES:
        args = list(container(rendered.named("Deployment", name))["args"])
        # Listening beyond loopback is the one thing the embedded supervisor does not ask for.
        assert args[2:4] == ["--host", "0.0.0.0"], f"{name}: {args}"
        del args[2:4]
        port = int(args[args.index("--port") + 1])
        assert args == _serve_argv(name, port, endpoints)[3:], name


def _headless_service_of(rendered: Rendered, deployment: Resource) -> Resource | None:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for service in rendered.of_kind("Service"):
        selector = service["spec"].get("selector") or {}
        headless = service["spec"].get("clusterIP") == "None"
        if headless and selector and all(labels.get(k) == v for k, v in selector.items()):
            return service
    return None


def test_every_service_has_grpc_probes_on_the_port_its_service_targets(rendered: Rendered) -> None:
    for name in SERVICES:
        deployment = rendered.named("Deployment", name)
        service = rendered.named("Service", name)
        main = container(deployment)
        target = service["spec"]["ports"][0]["targetPort"]
        ports = {p.get("name"): p["containerPort"] for p in main["ports"]}
        port = ports[target] if isinstance(target, str) else target
        assert port in ports.values(), f"{name}: the Service targets no container port"
        args = main["args"]
        assert int(args[args.index("--port") + 1]) == port, f"{name} listens elsewhere"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            # No `service` field: the overall health name "", which every server sets SERVING.
            assert main[probe]["grpc"] == {"port": port}, f"{name} {probe}"


def test_nats_url_names_the_nats_service_where_it_is_needed(rendered: Rendered) -> None:
    service = rendered.named("Service", "nats")
    client = next(p for p in service["spec"]["ports"] if p["name"] == "client")
    statefulset = rendered.named("StatefulSet", "nats")
    client_port = next(p for p in container(statefulset)["ports"] if p["name"] == "client")
    assert client["targetPort"] == "client"
    assert client_port["containerPort"] == 4222
    expected = f"nats://{service['metadata']['name']}:{client['port']}"
    for name in (*SERVICES, *NATS_CLIENTS):
        assert literal_env(rendered.named("Deployment", name), NATS_URL_VARIABLE) == expected


def test_credentials_come_from_secrets_never_literals(rendered: Rendered) -> None:
    needs = {name: {PUBLIC_KEY, TOKEN_VARIABLE} for name in SERVICES}
    needs.update({f"relay-{store}": {TOKEN_VARIABLE} for store in RELAYED_STORES})
    needs["nats-auth-callout"] = {PUBLIC_KEY}
    needs["executor"].add(VERDICT_PUBLIC_KEY)
    needs["verifier"].add(VERDICT_KEY_FILE)
    for name in ("verifier", "executor", *(f"relay-{s}" for s in RELAYED_STORES)):
        needs[name].add(DATABASE_VARIABLE)
    for workload in rendered.workloads():
        name = workload["metadata"]["name"]
        env = env_of(workload)
        for variable in SECRET_VARIABLES:
            if variable in env:
                assert "value" not in env[variable], f"{name}: {variable} is a literal"
                assert "secretKeyRef" in env[variable]["valueFrom"], f"{name}: {variable}"
        assert needs.get(name, set()) <= env.keys(), f"{name} lacks {needs[name] - env.keys()}"


def _secrets_of(workload: Resource) -> set[str]:
    pod = workload["spec"]["template"]["spec"]
    names = {
        item["valueFrom"]["secretKeyRef"]["name"]
        for item in container(workload).get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                names.add(source["secret"]["name"])
    return {name if name in PRODUCTION_SECRETS else name.rsplit("-", 1)[0] for name in names}


def _private_key_mount(workload: dict[str, Any], variable: str, secret_name: str) -> None:
    """The key file named by the variable is on a read-only mount of that Secret, mode <= 0440."""
    path = Path(literal_env(workload, variable))
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    mount = next(
        m for m in container(workload)["volumeMounts"] if m["mountPath"] == str(path.parent)
    )
    assert mount["readOnly"] is True
    secret = volumes[mount["name"]]["secret"]
    assert secret["secretName"].startswith(secret_name)
    assert secret["defaultMode"] & 0o037 == 0, "a private key is readable by its group at most"


def test_only_the_verifier_and_relays_mount_a_private_key_and_no_pod_the_token_signing_key(
    rendered: Rendered,
) -> None:
    def holders(secret_name: str) -> list[str]:
        return [
            w["metadata"]["name"] for w in rendered.workloads() if secret_name in _secrets_of(w)
        ]

    assert holders(VERDICT_KEY_SECRET) == ["verifier"]
    relays = sorted(holders(CHECKPOINT_KEY_SECRET))
    assert relays and all(name.startswith("relay-") for name in relays)
    _private_key_mount(
        rendered.named("Deployment", "verifier"), VERDICT_KEY_FILE, VERDICT_KEY_SECRET
    )
    for relay in relays:
        workload = rendered.named("Deployment", relay)
        _private_key_mount(workload, CHECKPOINT_KEY_FILE, CHECKPOINT_KEY_SECRET)
    signers = {"verifier", *relays}
    for workload in rendered.workloads():
        for item in container(workload).get("env", []):
            assert "SIGNING_KEY" not in item["name"] or workload["metadata"]["name"] in signers
    for secret in rendered.of_kind("Secret"):
        name = secret["metadata"]["name"]
        for value in secret.get("data", {}).values():
            assert b"PRIVATE KEY" not in base64.b64decode(value) or name.startswith(
                (VERDICT_KEY_SECRET, CHECKPOINT_KEY_SECRET)
            )


def test_every_secret_referenced_is_generated_or_documented(rendered: Rendered) -> None:
    generated = {s["metadata"]["name"]: set(s["data"]) for s in rendered.of_kind("Secret")}
    for workload in rendered.workloads():
        pod = workload["spec"]["template"]["spec"]
        wanted: list[tuple[str, str | None]] = []
        for item in container(workload).get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                wanted.append((ref["name"], ref["key"]))
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                wanted.append((volume["secret"]["secretName"], None))
            for source in volume.get("projected", {}).get("sources", []):
                if "secret" in source:
                    wanted.append((source["secret"]["name"], None))
        for secret, key in wanted:
            if generated:
                assert secret in generated, f"{workload['metadata']['name']}: no Secret {secret}"
                assert key is None or key in generated[secret], f"{secret} has no key {key}"
            else:
                assert secret in PRODUCTION_SECRETS, f"undocumented Secret {secret}"
                assert key is None or key in PRODUCTION_SECRETS[secret], f"{secret}: {key}"


def test_no_container_runs_as_root(rendered: Rendered) -> None:
    for workload in rendered.workloads():
        pod = workload["spec"]["template"]["spec"].get("securityContext", {})
        for item in workload["spec"]["template"]["spec"]["containers"]:
            own = item.get("securityContext", {})
            effective = {**pod, **own}
            where = f"{workload['metadata']['name']}/{item['name']}"
            assert effective.get("runAsNonRoot") is True, where
            assert effective.get("runAsUser", 0) != 0, where
            assert own.get("allowPrivilegeEscalation") is False, where
            assert own.get("readOnlyRootFilesystem") is True, where


def test_dev_runs_stateful_processes_alone_replaced_not_rolled(dev: Rendered) -> None:
    for name in (*SINGLETONS, "nats-auth-callout"):
        deployment = dev.named("Deployment", name)
        assert deployment["spec"]["replicas"] == 1, name
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}, name


def test_no_deployment_of_several_replicas_claims_a_read_write_once_volume(
    rendered: Rendered,
) -> None:
    claims = {c["metadata"]["name"]: c for c in rendered.of_kind("PersistentVolumeClaim")}
    for deployment in rendered.of_kind("Deployment"):
        volumes = deployment["spec"]["template"]["spec"]["volumes"]
        for volume in volumes:
            if "persistentVolumeClaim" not in volume:
                continue
            claim = claims[volume["persistentVolumeClaim"]["claimName"]]
            name = deployment["metadata"]["name"]
            if deployment["spec"]["replicas"] > 1:
                assert claim["spec"]["accessModes"] == ["ReadWriteMany"], name
            else:
                assert deployment["spec"]["strategy"] == {"type": "Recreate"}, name


def test_each_executor_pod_names_itself_in_its_leases(rendered: Rendered) -> None:
    variable = env_of(rendered.named("Deployment", "executor"))[EXECUTOR_ID_VARIABLE]
    assert variable["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_home_and_policies_are_where_the_code_looks(rendered: Rendered) -> None:
    for name in (*SERVICES, *NATS_CLIENTS):
        deployment = rendered.named("Deployment", name)
        home = literal_env(deployment, HOME_VARIABLE)
        mounts = {m["mountPath"]: m for m in container(deployment)["volumeMounts"]}
        assert home in mounts, f"{name}: nothing writable at {home}"
    for name in ("verifier", "executor"):
        deployment = rendered.named("Deployment", name)
        home = literal_env(deployment, HOME_VARIABLE)
        mount = next(
            m
            for m in container(deployment)["volumeMounts"]
            if m["mountPath"] == f"{home}/{POLICIES_FOLDER}"
        )
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        policies = volumes[mount["name"]]["configMap"]["name"]
        # A fixed name: an edited policy reaches the running pods in place, with no restart.
        assert policies == "rustchain-policies", name
        rendered.named("ConfigMap", policies)
    callout = rendered.named("Deployment", "nats-auth-callout")
    home = literal_env(callout, HOME_VARIABLE)
    mount = next(
        m for m in container(callout)["volumeMounts"] if m["mountPath"] == f"{home}/{SECRETS_FILE}"
    )
    assert mount["subPath"] == SECRETS_FILE


# One overlay or the other.


def test_production_scales_out_every_part_on_postgresql(production: Rendered) -> None:
    deployments = production.of_kind("Deployment")
    counts = {d["metadata"]["name"]: d["spec"]["replicas"] for d in deployments}
    assert counts == PRODUCTION_REPLICAS
    for name, count in counts.items():
        deployment = production.named("Deployment", name)
        if count > 1 and name in (*SINGLETONS, "memory", "trainer"):
            # Their state is in PostgreSQL (leases, tables, an advisory lock): pods may overlap.
            variable = env_of(deployment)[DATABASE_VARIABLE]
            assert variable["valueFrom"]["secretKeyRef"]["name"] == "rustchain-database", name
            assert deployment["spec"]["strategy"]["type"] == "RollingUpdate", name
    claimed = {
        v["persistentVolumeClaim"]["claimName"]
        for d in production.of_kind("Deployment")
        for v in d["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claimed == {"executor-home"}, "memory and the trainer need no volume on PostgreSQL"
    assert {c["metadata"]["name"] for c in production.of_kind("PersistentVolumeClaim")} == claimed
    executor = production.named("Deployment", "executor")
    spread = executor["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread[0]["topologyKey"] == "kubernetes.io/hostname"
    planner_args = list(container(production.named("Deployment", "planner"))["args"])
    assert planner_args[planner_args.index("--executor") + 1] == "dns:///executor-replicas:50051"
    assert production.of_kind("Secret") == [], "production generates no Secret"
    assert [s["metadata"]["name"] for s in production.of_kind("StatefulSet")] == ["nats"]
    for workload in production.of_kind("Deployment"):
        image = container(workload)["image"]
        assert ":" in image and not image.endswith(":latest"), image


def test_dev_runs_one_relay_per_store_and_production_a_standby_beside_it(
    dev: Rendered, production: Rendered
) -> None:
    for name in RELAYS:
        alone = dev.named("Deployment", name)
        assert alone["spec"]["replicas"] == 1
        assert alone["spec"]["strategy"] == {"type": "Recreate"}
        paired = production.named("Deployment", name)
        assert paired["spec"]["replicas"] == 2
        # Only the holder of the store's advisory lock relays: a rollout may overlap them.
        assert paired["spec"]["strategy"]["type"] == "RollingUpdate"
        assert "secretKeyRef" in env_of(paired)[DATABASE_VARIABLE]["valueFrom"]
        spread = paired["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert spread[0]["topologyKey"] == "kubernetes.io/hostname"


def test_production_nats_is_a_three_server_cluster_keeping_each_stream_on_all(
    production: Rendered, tmp_path: Path
) -> None:
    nats = production.named("StatefulSet", "nats")
    servers = nats["spec"]["replicas"]
    assert servers == 3
    # All at once: a JetStream cluster is healthy only once a majority of its servers runs.
    assert nats["spec"]["podManagementPolicy"] == "Parallel"
    ports = {p["name"]: p["containerPort"] for p in container(nats)["ports"]}
    headless = production.named("Service", "nats-headless")
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert {p["name"]: p["port"] for p in headless["spec"]["ports"]}["cluster"] == ports["cluster"]
    (settings,) = [
        m
        for m in production.of_kind("ConfigMap")
        if m["metadata"]["name"].startswith("rustchain-settings-")
    ]
    assert stream_replicas(settings["data"]) == servers
    # The rendered configuration, with the includes the secrets tool writes, is valid for the real
    # nats-server as each pod runs it, and routes to every server of the StatefulSet with the
    # password each of them asks of a route.
    (config,) = [
        m for m in production.of_kind("ConfigMap") if m["metadata"]["name"].startswith("nats-")
    ]
    projected = next(
        v["projected"] for v in nats["spec"]["template"]["spec"]["volumes"] if "projected" in v
    )
    mounted = {source["secret"]["name"] for source in projected["sources"] if "secret" in source}
    assert mounted == {"rustchain-nats-auth-conf", "rustchain-nats-routes"}
    (tmp_path / "nats.conf").write_text(config["data"]["nats.conf"])
    material = write_secrets(tmp_path / "secrets")
    (tmp_path / AUTH_CONF_FILE).write_text(material.auth_conf)
    (tmp_path / ROUTES_CONF_FILE).write_text(material.routes_conf)
    cluster = json.loads(material.routes_conf)["cluster"]
    password = cluster["authorization"]["password"]
    assert len(password) >= 32 and cluster["listen"].endswith(f":{ports['cluster']}")
    assert cluster["routes"] == [
        f"nats-route://route:{password}@nats-{index}.nats-headless:{ports['cluster']}"
        for index in range(servers)
    ]
    checked = subprocess.run(
        [str(nats_server_binary()), "-t", "-c", str(tmp_path / "nats.conf")],
        capture_output=True,
        text=True,
        check=False,
        env={"POD_NAME": "nats-0"},
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The tool keeps the password when run again (a running cluster keeps its routes).
    again = write_secrets(tmp_path / "secrets")
    assert json.loads(again.routes_conf)["cluster"]["authorization"]["password"] == password


def test_dev_database_url_names_the_postgres_service_and_its_password(dev: Rendered) -> None:
    url = dev.secret_value("rustchain-database", DATABASE_VARIABLE)
    password = dev.secret_value("rustchain-postgres", "POSTGRES_PASSWORD")
    service = dev.named("Service", "postgres")
    postgres = container(dev.named("StatefulSet", "postgres"))
    user = literal_env(dev.named("StatefulSet", "postgres"), "POSTGRES_USER")
    database = literal_env(dev.named("StatefulSet", "postgres"), "POSTGRES_DB")
    port = service["spec"]["ports"][0]["port"]
    assert url == f"postgresql://{user}:{password}@postgres:{port}/{database}"
    assert postgres["ports"][0]["containerPort"] == port


def test_dev_nats_include_names_the_issuer_of_the_callout_seed(dev: Rendered) -> None:
    stored = json.loads(dev.secret_value("rustchain-nats-callout", SECRETS_FILE))
    callout = CalloutSecrets(stored["issuer_seed"], stored["password"])
    include = json.loads(dev.secret_value("rustchain-nats-auth-conf", AUTH_CONF_FILE))
    assert include["authorization"]["auth_callout"]["issuer"] == public_key(callout.issuer_seed)
    assert include == server_configuration(callout)
    key = parse_public_key(dev.secret_value("rustchain-token-public-key", PUBLIC_KEY), "test")
    assert verify(key, dev.secret_value("rustchain-admin-token", TOKEN_VARIABLE)).role is Role.ADMIN


def _nats_config_files(dev: Rendered, folder: Path) -> Path:
    """The files the nats pod's projected volume holds, written to `folder`; nats.conf's path."""
    statefulset = dev.named("StatefulSet", "nats")
    volumes = statefulset["spec"]["template"]["spec"]["volumes"]
    projected = next(v["projected"] for v in volumes if "projected" in v)
    for source in projected["sources"]:
        kind = "Secret" if "secret" in source else "ConfigMap"
        name = source["secret" if kind == "Secret" else "configMap"]["name"]
        resource = dev.named(kind, name)
        for file, value in resource["data"].items():
            text = base64.b64decode(value).decode() if kind == "Secret" else value
            (folder / file).write_text(text)
    command = container(statefulset)["command"]
    config = Path(command[command.index("--config") + 1])
    return folder / config.name


def test_dev_nats_configuration_is_valid_for_nats_server(dev: Rendered, tmp_path: Path) -> None:
    config = _nats_config_files(dev, tmp_path)
    checked = subprocess.run(
        [str(nats_server_binary()), "-t", "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def rendered_nats(dev: Rendered, tmp_path: Path) -> Iterator[str]:
    """nats-server run from the rendered configuration and Secrets, on loopback ports of its own."""
    config = _nats_config_files(dev, tmp_path)
    port, monitor = _free_port(), _free_port()
    local = tmp_path / "local.conf"
    # Later keys override earlier ones: the rendered file as is, only addresses and storage moved.
    local.write_text(
        f'include "./{config.name}"\nlisten: "127.0.0.1:{port}"\nhttp: "127.0.0.1:{monitor}"\n'
        f'jetstream {{ store_dir: "{tmp_path / "data"}" }}\n'
    )
    log = (tmp_path / "nats.log").open("wb")
    process = subprocess.Popen(
        [str(nats_server_binary()), "-c", str(local)], stdout=log, stderr=subprocess.STDOUT
    )

    def healthy() -> bool:
        assert process.poll() is None, (tmp_path / "nats.log").read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_until_sync(healthy, 20, "nats-server answers /healthz")
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_dev_secrets_let_the_callout_admit_the_admin_token_and_refuse_a_forged_one(
    dev: Rendered, rendered_nats: str
) -> None:
    stored = json.loads(dev.secret_value("rustchain-nats-callout", SECRETS_FILE))
    callout = CalloutSecrets(stored["issuer_seed"], stored["password"])
    key = parse_public_key(dev.secret_value("rustchain-token-public-key", PUBLIC_KEY), "test")
    admin = dev.secret_value("rustchain-admin-token", TOKEN_VARIABLE)
    forged = issue(Ed25519PrivateKey.generate(), Claims(sub="admin", role=Role.ADMIN))

    async def scenario() -> None:
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve_callout(rendered_nats, callout, key, stop, ready))
        try:
            await asyncio.wait_for(ready.wait(), timeout=20)
            client = await connect(rendered_nats, credentials=NatsCredentials.of_token(admin))
            await client.close()
            with pytest.raises((NatsPermissionError, NatsUnavailableError)):
                await connect(rendered_nats, credentials=NatsCredentials.of_token(forged))
        finally:
            stop.set()
            await task

    asyncio.run(scenario())


def test_every_rustchain_process_reads_one_set_of_quotas_and_limits(rendered: Rendered) -> None:
    settings = [
        m
        for m in rendered.of_kind("ConfigMap")
        if m["metadata"]["name"].startswith("rustchain-settings-")
    ]
    assert len(settings) == 1
    values = settings[0]["data"]
    # Parsed as the executor, the relays and every server parse them: a bad value fails here.
    quotas = TenantQuotas.from_settings(values)
    assert quotas.max_concurrent_missions >= 1
    assert max_message_bytes(values) >= 1
    # Every Deployment runs the rustchain image (the other workloads are StatefulSets).
    deployments = rendered.of_kind("Deployment")
    assert {w["metadata"]["name"] for w in deployments} >= {*SERVICES, *SINGLETONS, *RELAYS}
    for workload in deployments:
        sources = [s["configMapRef"]["name"] for s in container(workload).get("envFrom", [])]
        assert sources == [settings[0]["metadata"]["name"]], workload["metadata"]["name"]


def test_services_serve_metrics_and_production_names_its_collector(
    rendered: Rendered, production: Rendered
) -> None:
    from rustchain.platform.telemetry.setup import exporter_names, otlp_protocol

    def settings(of: Rendered) -> dict[str, str]:
        (found,) = [
            m
            for m in of.of_kind("ConfigMap")
            if m["metadata"]["name"].startswith("rustchain-settings-")
        ]
        return dict(found["data"])

    values = settings(rendered)
    assert 0 < int(values["RUSTCHAIN_METRICS_PORT"]) < 65536
    assert values["RUSTCHAIN_LOG_FORMAT"] == "json"
    assert otlp_protocol(values, "TRACES") == "grpc"
    for workload in rendered.of_kind("Deployment"):
        annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
        if workload["metadata"]["labels"].get("app.kubernetes.io/component") == "service":
            assert annotations["prometheus.io/port"] == values["RUSTCHAIN_METRICS_PORT"]
    shipped = settings(production)
    assert shipped["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://")
    assert exporter_names(shipped, "TRACES") == ["otlp"]
    assert exporter_names(shipped, "METRICS") == ["otlp"]
