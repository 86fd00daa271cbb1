"""How the agent reaches a Kubernetes API server: in a cluster from the service-account mount and environment,
out of one from a kubeconfig; an exec-plugin kubeconfig is refused with a message saying why."""

from __future__ import annotations

import json
from pathlib import Path

import porthole
from porthole import (AGENT_NAME, CA, Controller, ManagedProcess, binary, client_context, https_request,
                      wait_until)


def agent_argv(ca: CA, controller: Controller, services: Path, env: dict[str, str] | None = None) -> list[str]:
    prefix = ["env", *(f"{key}={value}" for key, value in (env or {}).items())]
    return [*prefix, binary("porthole-agent"), "--controller", controller.agent_address,
            "--cert", str(ca.agent_cert()), "--key", str(ca.agent_key()), "--ca-cert", str(ca.cert),
            "--services", str(services)]


def kubernetes_services_file(directory: Path, **fields: object) -> Path:
    """A services file with one service, kubernetes/default, with these fields."""
    services = directory / "services.json"
    services.write_text(json.dumps({"services": [{"type": "kubernetes", "name": "default", **fields}]}))
    return services


def namespaces_through(controller: Controller) -> list[str]:
    token = controller.control().service_token()["token"]
    response = https_request(controller.service_address, client_context(controller.ca), "GET", "/api/v1/namespaces",
                             token=token)
    assert response.status == 200, response.body
    return [item["metadata"]["name"] for item in response.json()["items"]]


def test_in_cluster_service_account_and_rotating_token(ca: CA, kube_standin, start_controller,
                                                       tmp_path: Path) -> None:
    mount = tmp_path / "serviceaccount"
    mount.mkdir()
    (mount / "ca.crt").write_bytes(kube_standin.ca_cert.read_bytes())
    (mount / "token").write_text("stale-token-from-an-old-projection")
    services = kubernetes_services_file(tmp_path, inCluster=True, serviceAccountDirectory=str(mount))
    controller = start_controller()
    host, port = kube_standin.address.rsplit(":", 1)
    agent = ManagedProcess("agent-in-cluster", agent_argv(ca, controller, services, {
        "KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}), tmp_path)
    try:
        controller.process.wait_for_logs("agent connected", agent=AGENT_NAME)
        token = controller.control().service_token()["token"]
        refused = https_request(controller.service_address, client_context(ca), "GET", "/api/v1/namespaces",
                                token=token)
        assert refused.status == 401, refused.body  # the API server's answer to the stale token
        # The kubelet rotates the projected token by renaming a new file into place: requests use it within the
        # second the agent waits between checks of the file.
        fresh = mount / "token.new"
        fresh.write_text(kube_standin.token)
        fresh.rename(mount / "token")
        token = controller.control().service_token()["token"]
        wait_until(lambda: https_request(controller.service_address, client_context(ca), "GET", "/api/v1/namespaces",
                                         token=token).status == 200, 5, "the rotated token to be used")
        assert "default" in namespaces_through(controller)
    finally:
        agent.stop()


def test_kubeconfig_gives_server_ca_and_token(ca: CA, kube_standin, start_controller, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "agent-kubeconfig"
    (tmp_path / "token").write_text(kube_standin.token)
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
current-context: standin
clusters:
- name: standin
  cluster:
    server: {kube_standin.url}
    certificate-authority: {kube_standin.ca_cert}
users:
- name: porthole-agent
  user:
    tokenFile: token   # relative to this file
contexts:
- name: standin
  context:
    cluster: standin
    user: porthole-agent
""")
    services = kubernetes_services_file(tmp_path, kubeconfig=str(kubeconfig))
    controller = start_controller()
    agent = ManagedProcess("agent-kubeconfig", agent_argv(ca, controller, services), tmp_path)
    try:
        controller.process.wait_for_logs("agent connected", agent=AGENT_NAME)
        assert "default" in namespaces_through(controller)
    finally:
        agent.stop()


def test_exec_plugin_kubeconfig_is_refused_with_a_clear_message(ca: CA, start_controller, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "exec-kubeconfig"
    kubeconfig.write_text("""apiVersion: v1
kind: Config
current-context: cloud
clusters:
- name: cloud
  cluster:
    server: https://127.0.0.1:1
    insecure-skip-tls-verify: true
users:
- name: cloud-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: aws
contexts:
- name: cloud
  context:
    cluster: cloud
    user: cloud-user
""")
    services = kubernetes_services_file(tmp_path, kubeconfig=str(kubeconfig))
    controller = start_controller()
    agent = ManagedProcess("agent-exec-plugin", agent_argv(ca, controller, services), tmp_path)
    code = wait_until(lambda: agent.process.poll(), 20, "the agent to refuse to start")
    assert code == 64  # bad input in a file the user named, like a bad flag
    messages = " ".join(e.get("error", "") for e in agent.logs)
    assert "exec credential plugin" in messages, agent.tail()
