"""The deployment examples hold together: examples/kubernetes and its Containerfiles.

No cluster is needed. Every YAML file is parsed with PyYAML and checked for the facts docs/deploy.md relies on
(kinds, replicas, RBAC verbs, PDBs, probes on declared ports, hardened security contexts). The containers'
arguments are checked against the real binaries: every flag must appear in their `--help`, and the controller and
agent are started with exactly the manifests' arguments, the Secret and ConfigMap volumes materialised from
`make-ca`'s secrets.yaml and the ConfigMap, so the names in the controller's certificate, the agent's SNI, the
listen ports and the probes' paths are proven to line up. kubectl (offline, `--local`) and, when installed,
kubernetes-validate (the API's OpenAPI schemas) check the objects as Kubernetes would read them.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

import porthole

KUBE_DIR = porthole.REPO_ROOT / "examples" / "kubernetes"
NAMESPACE = "porthole-system"
AGENT = "edge"
# The namespace the default Role lets users debug in (role-debug.yaml); every other object lives in NAMESPACE.
DEBUG_NAMESPACE = "default"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
LISTENER_PORTS = {"--agent-listen": "agent", "--service-listen": "service", "--control-listen": "control",
                  "--metrics-listen": "metrics"}


def _load_documents() -> list[tuple[Path, dict]]:
    documents = []
    for path in sorted(KUBE_DIR.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is not None:
                documents.append((path, document))
    return documents


DOCUMENTS = _load_documents()


def objects(kind: str, folder: str | None = None) -> list[dict]:
    return [doc for path, doc in DOCUMENTS
            if doc.get("kind") == kind and (folder is None or path.relative_to(KUBE_DIR).parts[0] == folder)]


def find(kind: str, name: str) -> dict:
    found = [doc for doc in objects(kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_spec(deployment: str) -> dict:
    return find("Deployment", deployment)["spec"]["template"]["spec"]


def container(deployment: str) -> dict:
    containers = pod_spec(deployment)["containers"]
    assert len(containers) == 1
    return containers[0]


def args(deployment: str) -> dict[str, list[str]]:
    """The container's `--flag=value` arguments as flag -> values (repeatable flags keep their order)."""
    parsed: dict[str, list[str]] = {}
    for argument in container(deployment)["args"]:
        assert argument.startswith("--") and "=" in argument, f"{deployment}: write {argument!r} as --flag=value"
        flag, value = argument.split("=", 1)
        parsed.setdefault(flag, []).append(value)
    return parsed


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def help_flags(binary: str) -> set[str]:
    result = subprocess.run([porthole.binary(binary), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return set(re.findall(r"^\s+(--[a-z][a-z0-9-]*)", result.stdout, re.MULTILINE))


@pytest.fixture(scope="module")
def make_ca_secrets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The Secrets `make-ca --agent edge --namespace porthole-system` writes, by name."""
    out = tmp_path_factory.mktemp("manifests-ca") / "ca"
    result = subprocess.run([porthole.binary("make-ca"), "--out", str(out), "--agent", AGENT,
                             "--namespace", NAMESPACE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    secrets = {}
    for document in yaml.safe_load_all((out / "secrets.yaml").read_text(encoding="utf-8")):
        if document:
            secrets[document["metadata"]["name"]] = document
    return secrets


# -- the objects ----------------------------------------------------------------------------------------------------


def test_every_document_is_a_named_kubernetes_object_in_the_porthole_namespace():
    assert DOCUMENTS, f"no YAML under {KUBE_DIR}"
    for path, document in DOCUMENTS:
        assert {"apiVersion", "kind", "metadata"} <= document.keys(), path
        assert document["metadata"].get("name"), path
        if document["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in document["metadata"], path
        elif document["kind"] in ("Role", "RoleBinding"):
            assert document["metadata"].get("namespace") == DEBUG_NAMESPACE, path
        else:
            assert document["metadata"].get("namespace") == NAMESPACE, path


def test_each_folder_holds_the_objects_the_install_guide_applies():
    def kinds(folder: str) -> set[tuple[str, str]]:
        return {(doc["kind"], doc["metadata"]["name"]) for path, doc in DOCUMENTS
                if path.parent == KUBE_DIR / folder}

    assert kinds("controller") == {
        ("Namespace", NAMESPACE), ("ServiceAccount", "porthole-controller"),
        ("Deployment", "porthole-controller"), ("PodDisruptionBudget", "porthole-controller"),
        ("Service", "porthole-controller-agents"), ("Service", "porthole-controller"),
        ("Service", "porthole-controller-control"),
    }
    assert kinds("agent") == {
        ("Namespace", NAMESPACE), ("ServiceAccount", "porthole-agent"),
        ("Role", "porthole-agent-debug"), ("RoleBinding", "porthole-agent-debug"),
        ("ConfigMap", "porthole-agent-services"), ("Deployment", "porthole-agent"),
        ("PodDisruptionBudget", "porthole-agent"),
    }
    # Not applied with the folder: the credential placeholder and the broader RBAC choices.
    assert kinds("agent/secret") == {("Secret", f"porthole-agent-{AGENT}")}
    assert kinds("agent/rbac-choices") == {
        ("ClusterRole", "porthole-agent-debug-all-namespaces"),
        ("ClusterRoleBinding", "porthole-agent-debug-all-namespaces"),
        ("ClusterRole", "porthole-agent-broad"), ("ClusterRole", "porthole-agent-broad-debugging"),
        ("ClusterRoleBinding", "porthole-agent-broad"), ("ClusterRoleBinding", "porthole-agent-cluster-admin"),
        ("ClusterRole", "porthole-agent-impersonate"), ("ClusterRoleBinding", "porthole-agent-impersonate"),
    }
    # What `kubectl apply -f agent/` grants is namespaced: nothing cluster-wide unless a choice is applied by name.
    assert not {kind for kind, _ in kinds("agent")} & {"ClusterRole", "ClusterRoleBinding"}


def test_replica_counts():
    assert find("Deployment", "porthole-controller")["spec"]["replicas"] == 3
    assert find("Deployment", "porthole-agent")["spec"]["replicas"] == 2


def test_selectors_match_the_pod_labels():
    for deployment in objects("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), deployment["metadata"]["name"]
        for constraint in deployment["spec"]["template"]["spec"].get("topologySpreadConstraints", []):
            assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()
    controller_labels = find("Deployment", "porthole-controller")["spec"]["template"]["metadata"]["labels"]
    for service in objects("Service"):
        assert service["spec"]["selector"].items() <= controller_labels.items(), service["metadata"]["name"]


def test_disruption_budgets_cover_both_deployments():
    agent = find("PodDisruptionBudget", "porthole-agent")["spec"]
    assert agent["minAvailable"] == 1
    controller = find("PodDisruptionBudget", "porthole-controller")["spec"]
    assert controller.get("maxUnavailable") == 1 or controller.get("minAvailable", 0) >= 2
    for name, spec in (("porthole-agent", agent), ("porthole-controller", controller)):
        labels = find("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items(), name


def granted(rules: list[dict]) -> set[tuple[str, str, str]]:
    assert not any("resourceNames" in rule or "nonResourceURLs" in rule for rule in rules)
    return {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def debugging_verbs(*readable: str) -> set[tuple[str, str, str]]:
    expected = set()
    for resource in readable:
        expected |= {("", resource, verb) for verb in ("get", "list", "watch")}
    for resource in ("pods/exec", "pods/attach", "pods/portforward"):
        # get AND create: a WebSocket upgrade is a GET, authorized as both since Kubernetes 1.35.
        expected |= {("", resource, verb) for verb in ("get", "create")}
    expected.add(("", "pods/ephemeralcontainers", "patch"))
    return expected


def test_default_role_grants_exactly_the_debugging_verbs_in_one_namespace():
    role = find("Role", "porthole-agent-debug")
    assert role["metadata"]["namespace"] == DEBUG_NAMESPACE
    assert granted(role["rules"]) == debugging_verbs("pods", "pods/log")
    binding = find("RoleBinding", "porthole-agent-debug")
    assert binding["metadata"]["namespace"] == DEBUG_NAMESPACE
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "porthole-agent-debug"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "porthole-agent", "namespace": NAMESPACE}]


def test_cluster_wide_choices_are_named_and_documented_as_such():
    every_namespace = find("ClusterRole", "porthole-agent-debug-all-namespaces")
    assert granted(every_namespace["rules"]) == debugging_verbs("pods", "namespaces", "pods/log")
    assert granted(find("ClusterRole", "porthole-agent-broad-debugging")["rules"]) == debugging_verbs(
        "pods", "namespaces", "pods/log")
    for name in ("cluster-debug.yaml", "broad.yaml", "cluster-admin.yaml"):
        header = (KUBE_DIR / "agent" / "rbac-choices" / name).read_text().split("apiVersion:")[0]
        assert "deliberate choice" in header, name
    assert "kube-system" in (KUBE_DIR / "agent" / "rbac-choices" / "cluster-debug.yaml").read_text()


def test_role_bindings_name_the_agents_service_account():
    service_account = find("ServiceAccount", "porthole-agent")
    assert pod_spec("porthole-agent")["serviceAccountName"] == service_account["metadata"]["name"]
    bindings = {binding["metadata"]["name"]: binding for binding in objects("ClusterRoleBinding")}
    assert bindings["porthole-agent-debug-all-namespaces"]["roleRef"]["name"] == "porthole-agent-debug-all-namespaces"
    assert bindings["porthole-agent-broad"]["roleRef"]["name"] == "porthole-agent-broad"
    assert bindings["porthole-agent-cluster-admin"]["roleRef"]["name"] == "cluster-admin"
    for binding in bindings.values():
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "porthole-agent", "namespace": NAMESPACE}]
    # The broad role aggregates view with its own debugging role, whose label it selects.
    selectors = [s["matchLabels"] for s in find("ClusterRole", "porthole-agent-broad")["aggregationRule"][
        "clusterRoleSelectors"]]
    assert {"rbac.authorization.k8s.io/aggregate-to-view": "true"} in selectors
    debug_labels = find("ClusterRole", "porthole-agent-broad-debugging")["metadata"]["labels"]
    assert any(selector.items() <= debug_labels.items() for selector in selectors)


def test_the_controller_needs_no_kubernetes_api_access():
    spec = pod_spec("porthole-controller")
    assert spec["automountServiceAccountToken"] is False
    assert find("ServiceAccount", spec["serviceAccountName"])["automountServiceAccountToken"] is False


def test_pods_run_hardened():
    for name in ("porthole-controller", "porthole-agent"):
        spec = pod_spec(name)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        context = container(name)["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        assert "add" not in context["capabilities"], name
        resources = container(name)["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"] and resources["limits"]["memory"]
        assert len(spec["topologySpreadConstraints"]) >= 1, name


def test_probes_use_the_metrics_listener_and_its_paths():
    for name in ("porthole-controller", "porthole-agent"):
        spec = container(name)
        ports = {port["name"]: port["containerPort"] for port in spec["ports"]}
        assert port_of(args(name)["--metrics-listen"][0]) == ports["metrics"], name
        paths = {}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = spec[probe]["httpGet"]
            assert get["port"] in ports, f"{name} {probe} names an undeclared port {get['port']}"
            assert get["port"] == "metrics", name
            paths[probe] = get["path"]
        # Readiness is /readyz; liveness must not be, or an unreachable peer would restart the process.
        assert paths == {"startupProbe": "/healthz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"}
        annotations = find("Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == ports["metrics"]
        assert annotations["prometheus.io/path"] == "/metrics"


def test_controller_listeners_services_and_container_ports_agree():
    flags = args("porthole-controller")
    ports = {port["name"]: port["containerPort"] for port in container("porthole-controller")["ports"]}
    for flag, port_name in LISTENER_PORTS.items():
        assert port_of(flags[flag][0]) == ports[port_name], flag

    agents = find("Service", "porthole-controller-agents")["spec"]
    assert agents["clusterIP"] == "None"
    assert agents["publishNotReadyAddresses"] is False
    assert [(p["port"], p["targetPort"]) for p in agents["ports"]] == [(8441, "agent")]

    users = find("Service", "porthole-controller")["spec"]
    assert [(p["port"], p["targetPort"]) for p in users["ports"]] == [(8443, "service")]
    assert port_of(flags["--service-url"][0].rstrip("/")) == users["ports"][0]["port"]

    control = find("Service", "porthole-controller-control")["spec"]
    assert control["type"] == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in control["ports"]] == [(8444, "control")]


def test_controller_replicas_are_named_after_their_pods_and_drain_within_the_grace_period():
    flags = args("porthole-controller")
    env = {item["name"]: item for item in container("porthole-controller")["env"]}
    assert flags["--instance-id"] == ["$(POD_NAME)"]
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    grace = pod_spec("porthole-controller")["terminationGracePeriodSeconds"]
    pre_stop = container("porthole-controller")["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0].endswith("sleep")
    assert float(pre_stop[1]) + float(flags["--drain-timeout"][0]) < grace


def test_agent_replicas_drain_within_the_grace_period():
    flags = args("porthole-agent")
    assert float(flags["--drain-timeout"][0]) < pod_spec("porthole-agent")["terminationGracePeriodSeconds"]


def test_agents_dial_the_headless_service_named_in_the_controller_certificate():
    (controller_address,) = args("porthole-agent")["--controller"]
    host, port = controller_address.rsplit(":", 1)
    headless = find("Service", "porthole-controller-agents")
    assert host == f"{headless['metadata']['name']}.{headless['metadata']['namespace']}.svc"
    assert int(port) == headless["spec"]["ports"][0]["port"]
    assert host in args("porthole-controller")["--server-name"]
    assert f"porthole-controller-control.{NAMESPACE}.svc" in args("porthole-controller")["--server-name"]


def test_services_configmap_serves_the_in_cluster_api_server():
    configmap = find("ConfigMap", "porthole-agent-services")
    services = json.loads(configmap["data"]["services.json"])["services"]
    kubernetes = [s for s in services if s["type"] == "kubernetes" and s["name"] == "default"]
    assert kubernetes and kubernetes[0]["inCluster"] is True and "url" not in kubernetes[0]


def test_arguments_are_flags_the_binaries_accept():
    for deployment, binary in (("porthole-controller", "porthole-controller"), ("porthole-agent", "porthole-agent")):
        unknown = set(args(deployment)) - help_flags(binary)
        assert not unknown, f"{deployment} passes flags that `{binary} --help` does not list: {sorted(unknown)}"


def test_mounted_secrets_are_the_ones_make_ca_writes(make_ca_secrets: dict[str, dict]):
    placeholder = find("Secret", f"porthole-agent-{AGENT}")
    written = make_ca_secrets[f"porthole-agent-{AGENT}"]
    assert placeholder["type"] == written["type"] == "kubernetes.io/tls"
    assert set(placeholder["data"]) == set(written["data"]) == {"tls.crt", "tls.key", "ca.crt"}

    for deployment in ("porthole-controller", "porthole-agent"):
        volumes = {volume["name"]: volume for volume in pod_spec(deployment)["volumes"]}
        mounts = {mount["mountPath"]: mount["name"] for mount in container(deployment)["volumeMounts"]}
        for flag, values in args(deployment).items():
            for value in values:
                if not value.startswith("/"):
                    continue
                directory, file = value.rsplit("/", 1)
                assert directory in mounts, f"{deployment} {flag}={value} is not under a volume mount"
                volume = volumes[mounts[directory]]
                if "secret" in volume:
                    secret = make_ca_secrets.get(volume["secret"]["secretName"])
                    assert secret is not None, f"make-ca writes no Secret {volume['secret']['secretName']}"
                    assert file in secret["data"], f"{flag}={value}: {secret['metadata']['name']} has no {file}"
                else:
                    configmap = find("ConfigMap", volume["configMap"]["name"])
                    assert file in configmap["data"], f"{flag}={value}"


def test_containerfiles_build_and_run_the_products_the_manifests_use():
    version = re.search(r'portholeVersion = "([^"]+)"',
                        (porthole.REPO_ROOT / "Sources/Tunnel/Version.swift").read_text()).group(1)
    package = (porthole.REPO_ROOT / "Package.swift").read_text()
    for deployment, products in (("porthole-controller", ("porthole-controller", "make-ca")),
                                 ("porthole-agent", ("porthole-agent",))):
        text = (KUBE_DIR / f"Containerfile.{deployment.removeprefix('porthole-')}").read_text()
        for product in products:
            assert f'.executable(name: "{product}"' in package
            assert f"--static-swift-stdlib --product {product}" in text
        assert re.search(r"^FROM \S+ AS build$", text, re.MULTILINE)
        assert "libssl-dev libnghttp2-dev" in text and "libssl3 libnghttp2-14" in text
        assert f'ENTRYPOINT ["/usr/local/bin/{deployment}"]' in text
        user = re.search(r"^USER (\d+):(\d+)$", text, re.MULTILINE)
        assert user and int(user.group(1)) == pod_spec(deployment)["securityContext"]["runAsUser"] != 0
        image = container(deployment)["image"]
        assert image.rsplit("/", 1)[-1] == f"{deployment}:{version}", image


# -- as Kubernetes reads them ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["controller", "agent", "agent/rbac-choices", "agent/secret"])
def test_kubectl_decodes_every_object(folder: str):
    try:
        kubectl = porthole.kubectl_path()
    except porthole.HarnessError as error:
        pytest.skip(str(error))
    # `--local` decodes and prints without a cluster (apply --dry-run=client still needs an API server).
    result = subprocess.run([kubectl, "annotate", "--local", "--dry-run=client", "--recursive=false", "-o", "name",
                             "-f", str(KUBE_DIR / folder), "porthole.test/decoded=true"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    expected = sum(1 for path, _ in DOCUMENTS if path.parent == KUBE_DIR / folder)
    assert len(result.stdout.split()) == expected, result.stdout


@pytest.mark.parametrize("version", ["1.29.0", "1.35.0"])
def test_objects_match_the_kubernetes_schema(version: str):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for path, document in DOCUMENTS:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{path.relative_to(KUBE_DIR)}: {document['kind']} {document['metadata']['name']}: {error}")


# -- the binaries with the manifests' arguments ---------------------------------------------------------------------


def materialise_volumes(deployment: str, root: Path, secrets: dict[str, dict], overrides: dict[str, str]) -> dict:
    """Writes each Secret and ConfigMap volume under `root` the way the kubelet would; returns mountPath -> dir."""
    volumes = {volume["name"]: volume for volume in pod_spec(deployment)["volumes"]}
    mounted = {}
    for mount in container(deployment)["volumeMounts"]:
        volume = volumes[mount["name"]]
        directory = root / deployment / mount["name"]
        directory.mkdir(parents=True)
        if "secret" in volume:
            for key, value in secrets[volume["secret"]["secretName"]]["data"].items():
                (directory / key).write_bytes(base64.b64decode(value))
        elif "configMap" in volume:
            for key, value in find("ConfigMap", volume["configMap"]["name"])["data"].items():
                (directory / key).write_text(overrides.get(key, value))
        mounted[mount["mountPath"]] = str(directory)
    return mounted


def local_argv(deployment: str, mounted: dict[str, str], env: dict[str, str]) -> list[str]:
    """The container's arguments with mount paths mapped to `mounted`, $(VAR) expanded, listeners on loopback."""
    argv = [porthole.binary(deployment)]
    for argument in container(deployment)["args"]:
        flag, value = argument.split("=", 1)
        for name, replacement in env.items():
            value = value.replace(f"$({name})", replacement)
        for mount_path in sorted(mounted, key=len, reverse=True):
            if value.startswith(mount_path + "/"):
                value = mounted[mount_path] + value[len(mount_path):]
                break
        if flag in LISTENER_PORTS:
            value = f"127.0.0.1:{porthole.free_port()}" if deployment == "porthole-agent" else "127.0.0.1:0"
        argv.append(f"{flag}={value}")
    return argv


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_controller_and_agent_run_with_the_manifests_arguments(make_ca_secrets: dict[str, dict], tmp_path: Path):
    backend = porthole.Backend(tmp_path)
    processes: list[porthole.ManagedProcess] = []
    try:
        pod_name = "porthole-controller-5d8f7c9b4-x2k7q"
        controller_argv = local_argv("porthole-controller",
                                     materialise_volumes("porthole-controller", tmp_path, make_ca_secrets, {}),
                                     {"POD_NAME": pod_name})
        controller = porthole.ManagedProcess("manifest-controller", controller_argv, tmp_path)
        processes.append(controller)
        addresses = {}
        for listener in ("agent", "metrics"):
            addresses[listener] = controller.wait_for_logs("listening", listener=listener)[-1]["address"]
        controller.wait_for_logs("controller started", instance=pod_name)
        porthole.wait_until(lambda: http_status(f"http://{addresses['metrics']}/readyz") == 200, 10,
                            "controller /readyz 200")

        # Outside a cluster there is no service-account mount: serve the demo backend instead of inCluster.
        services = porthole.write_services_file(tmp_path / "services.json", backend).read_text()
        agent_argv = local_argv("porthole-agent",
                                materialise_volumes("porthole-agent", tmp_path, make_ca_secrets,
                                                    {"services.json": services}), {})
        # Dial the local controller but expect the name the manifest dials, so the controller's certificate
        # (issued for the manifest's --server-name list) must cover it.
        (manifest_controller,) = args("porthole-agent")["--controller"]
        agent_argv = [a for a in agent_argv if not a.startswith("--controller=")] + [
            f"--controller={addresses['agent']}",
            f"--controller-server-name={manifest_controller.rsplit(':', 1)[0]}"]
        agent_metrics = next(a for a in agent_argv if a.startswith("--metrics-listen=")).split("=", 1)[1]
        agent = porthole.ManagedProcess("manifest-agent", agent_argv, tmp_path)
        processes.append(agent)
        agent.wait_for_logs("tunnel up")
        controller.wait_for_logs("agent connected", agent=AGENT)
        porthole.wait_until(lambda: http_status(f"http://{agent_metrics}/readyz") == 200, 10, "agent /readyz 200")
        assert http_status(f"http://{agent_metrics}/healthz") == 200

        # SIGTERM, as the kubelet sends it: both exit by themselves well within terminationGracePeriodSeconds.
        for process, deployment in ((agent, "porthole-agent"), (controller, "porthole-controller")):
            grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
            assert process.stop(timeout=grace) == 0, f"{deployment} did not exit 0 after SIGTERM"
    finally:
        porthole.stop_all(processes)
        backend.stop()
