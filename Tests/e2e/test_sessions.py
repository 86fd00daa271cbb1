"""Debug sessions (issue 13) through the gateway: the REST API, the ephemeral container, kubectl attach, expiry.

Real processes: a controller with `--gateway-config` and `--sessions-journal`, an agent whose kubernetes/default is
the Kubernetes stand-in, the local OIDC issuer, kubectl on a pseudo-terminal. The gateway fixtures (CA, issuer
entry, audit reader, kubeconfig helpers) are test_gateway.py's.

SAFETY: the stand-in runs exec commands on this machine; the controller only ever execs the plain `kill -HUP 1`,
which the stand-in intercepts and maps to the container's PID 1. No session here has a target container.
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

import porthole
from oidc_issuer import OIDCIssuer
from porthole import CA, Agent, Controller, KubeStandin, Response
from test_gateway import (AUDIENCE, CLUSTER, ISSUER_HOST, Audit, GatewayStack, gwca, gwdir,  # noqa: F401
                          issuer_entry, kube_services_file, kubectl_argv, run_kubectl, write_token_kubeconfig)
from test_kubernetes import Terminal

ALICE = "alice@example.com"  # debugger and approver (so that self-approval is a real question)
BOB = "bob@example.com"  # debugger
CAROL = "carol@example.com"  # approver
NONROOT_IMAGE = "registry.example/tools/netshoot-nonroot:v1"
BAD_IMAGE = "registry.example/tools/does-not-exist:v1"
LIMITS = {"defaultDurationSeconds": 30, "maxDurationSeconds": 60, "maxRenewals": 2,
          "images": {"allowed": ["registry.example/tools/*"]}, "securityProfile": "privileged"}
POLICY = {
    "roles": {"debugger": ["view", "debug"], "approver": ["view"]},
    "bindings": [
        {"name": "debug-sess", "groups": ["oidc:debuggers"], "role": "debugger", "clusters": [CLUSTER],
         "namespaces": ["sess-*"], "debug": LIMITS},
        {"name": "debug-appr", "groups": ["oidc:debuggers"], "role": "debugger", "clusters": [CLUSTER],
         "namespaces": ["appr-*"],
         "debug": {**LIMITS, "approval": {"required": True, "approverGroups": ["oidc:approvers"]}}},
        {"name": "approvers", "groups": ["oidc:approvers"], "role": "approver", "clusters": [CLUSTER],
         "namespaces": ["*"]},
    ],
    "admins": ["oidc:admins"],
}
API = "/api/gateway/v1/sessions"


@dataclass
class Sessions:
    stack: GatewayStack
    standin: KubeStandin
    directory: Path

    def token(self, who: str) -> str:
        groups = {ALICE: ["debuggers", "approvers"], BOB: ["debuggers"], CAROL: ["approvers"]}[who]
        return self.stack.issuer.mint(who, groups, ttl=3600)

    def call(self, method: str, path: str, who: str, body: object | None = None,
             headers: dict[str, str] | None = None) -> Response:
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        sent = {"Content-Type": "application/json", "X-Porthole-Request": "1"} if method == "POST" else {}
        sent.update(headers or {})
        return self.stack.request(method, path, token=self.token(who), body=data, headers=sent, timeout=40)

    def create(self, who: str, namespace: str, pod: str, **fields: object) -> Response:
        body = {"cluster": CLUSTER, "namespace": namespace, "pod": pod, "image": NONROOT_IMAGE, "command": ["sh"],
                "reason": "e2e: INC-42"} | fields
        return self.call("POST", API, who, body)

    def kubeconfig(self, who: str) -> Path:
        server = f"{self.stack.controller.service_url}/clusters/{CLUSTER}/default"
        name = who.split("@")[0]
        return write_token_kubeconfig(self.directory / f"{name}-kubeconfig", server, self.stack.ca.cert,
                                      self.token(who))

    def namespace(self, prefix: str, level: str | None = None) -> str:
        name = f"{prefix}-{int(time.time() * 1000) % 10**8}"
        labels = {"pod-security.kubernetes.io/enforce": level} if level else {}
        self.standin.json("POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": labels}})
        return name

    def pod(self, namespace: str, name: str = "app-0") -> str:
        restricted = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                      "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}}
        self.standin.json("POST", f"/api/v1/namespaces/{namespace}/pods", {"metadata": {"name": name}, "spec": {
            "containers": [{"name": "app", "image": "busybox:1.36", "securityContext": restricted}]}})
        return name

    def container_state(self, namespace: str, pod: str, container: str) -> dict:
        obj = self.standin.json("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}")
        for status in obj["status"].get("ephemeralContainerStatuses") or []:
            if status["name"] == container:
                return status["state"]
        return {}


@pytest.fixture(scope="module")
def sessions(gwca: CA, gwdir: Path, kube_standin: KubeStandin) -> Iterator[Sessions]:  # noqa: F811
    directory = gwdir / "sessions"
    directory.mkdir(parents=True, exist_ok=True)
    issuer = OIDCIssuer(gwdir / "idp-sessions", host=ISSUER_HOST)
    controller = None
    agent = None
    try:
        policy_path = directory / "policy.json"
        policy_path.write_text(json.dumps(POLICY, indent=2))
        audit_path = directory / "audit.jsonl"
        config_path = directory / "gateway.json"
        config_path.write_text(json.dumps({"issuers": [issuer_entry(issuer)], "policyFile": str(policy_path),
                                           "auditLog": str(audit_path)}))
        services = kube_services_file(directory / "services.json", kube_standin)
        controller = Controller(gwca, directory, ["--gateway-config", str(config_path),
                                                  "--sessions-journal", str(directory / "sessions.journal")],
                                name="sessions-controller")
        agent = Agent(gwca, controller, services, directory)
        porthole.wait_until(lambda: any(f.status == 200 for f in issuer.jwks_fetches()), 20, "the first JWKS fetch")
        stack = GatewayStack("sessions", gwca, issuer, controller, agent, Audit(audit_path), directory)
        yield Sessions(stack, kube_standin, directory)
    finally:
        if agent is not None:
            agent.stop()
        if controller is not None:
            controller.stop()
        issuer.stop()


def epoch(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def assert_error(response: Response, status: int, code: str, fragment: str) -> None:
    assert response.status == status, (response.status, response.body[:500])
    body = response.json()
    assert body["code"] == code and fragment in body["error"], body


def history_reasons(session: dict) -> str:
    return " | ".join(entry["reason"] for entry in session["history"])


def test_create_attach_for_the_owner_only_and_expiry_cuts_the_stream(sessions: Sessions) -> None:
    ns = sessions.namespace("sess-attach")
    pod = sessions.pod(ns)
    since = sessions.stack.audit.mark()
    created = sessions.create(ALICE, ns, pod, duration=9)
    assert created.status == 201, created.body[:500]
    session = created.json()
    assert session["state"] == "Active", session
    assert session["container"] == "porthole-" + session["id"] and session["profile"] == "privileged"
    assert session["owner"] == ALICE and 0 < session["remainingSeconds"] <= 9
    container = session["container"]
    sessions.stack.audit.expect(since, kind="session", event="started", sessionID=session["id"])
    sessions.stack.audit.expect(since, event="decision", decision="allow", operation="debug", verb="create")
    patch = sessions.stack.audit.expect(since, event="containerPatch", sessionID=session["id"], dryRun=False)
    assert patch["image"] == NONROOT_IMAGE and patch["profile"] == "privileged" and patch["result"] == "accepted"
    spec = sessions.standin.json("GET", f"/api/v1/namespaces/{ns}/pods/{pod}")["spec"]["ephemeralContainers"]
    assert [c["name"] for c in spec] == [container] and spec[0]["securityContext"] == {"privileged": True}

    # someone else is refused, with the session's reason
    refused = run_kubectl(sessions.kubeconfig(BOB), sessions.directory, "attach", "-n", ns, pod, "-c", container,
                          "-i", timeout=30)
    assert refused.returncode != 0 and f"belongs to {ALICE}" in refused.stderr.decode(), refused.stderr

    terminal = Terminal(kubectl_argv(sessions.kubeconfig(ALICE), sessions.directory, "attach", "-it", "-n", ns, pod,
                                     "-c", container))
    try:
        time.sleep(1.0)
        terminal.type("echo attached-$((6*7))\r")
        terminal.expect(b"attached-42", 20)
        deadline = epoch(session["deadline"])
        assert time.time() < deadline, "the attach took longer than the session"
        porthole.wait_until(lambda: terminal.process.poll() is not None, deadline - time.time() + 5,
                            "kubectl attach to end at the deadline")
        cut = time.time()
    finally:
        terminal.close()
    assert cut - deadline < 1.5, f"the attach ended {cut - deadline:.2f} s after the deadline"

    expired = sessions.call("GET", f"{API}/{session['id']}", ALICE).json()
    assert expired["state"] == "Expired" and expired["remainingSeconds"] == 0, expired
    state = porthole.wait_until(lambda: sessions.container_state(ns, pod, container).get("terminated"), 10,
                                "the debug container's process to end")
    assert state["exitCode"] == 129, state
    signals = sessions.standin.json("GET", f"/standin/pods/{ns}/{pod}")["signals"]
    assert [(s["container"], s["signal"], s["via"]) for s in signals] == [(container, "SIGHUP", "exec")], signals
    sessions.stack.audit.expect(since, kind="session", event="expired", sessionID=session["id"])
    sessions.stack.audit.expect(since, event="debugProcessEnd", sessionID=session["id"], result="kill -HUP 1 sent")

    after = run_kubectl(sessions.kubeconfig(ALICE), sessions.directory, "attach", "-n", ns, pod, "-c", container,
                        "-i", timeout=30)
    assert after.returncode != 0 and "is Expired" in after.stderr.decode(), after.stderr


def test_extend_within_and_beyond_the_maximum_and_terminate_by_the_owner(sessions: Sessions) -> None:
    ns = sessions.namespace("sess-extend")
    pod = sessions.pod(ns)
    session = sessions.create(ALICE, ns, pod, duration="20s").json()
    assert session["state"] == "Active", session
    sid = session["id"]

    no_header = sessions.call("POST", f"{API}/{sid}/extend", ALICE, {"duration": 5},
                              headers={"X-Porthole-Request": "0"})
    assert_error(no_header, 403, "forbidden", "X-Porthole-Request: 1")
    assert_error(sessions.call("POST", f"{API}/{sid}/extend", ALICE, {"duration": "2m"}), 422, "limit",
                 "more than the maximum 1m")
    extended = sessions.call("POST", f"{API}/{sid}/extend", ALICE, {"duration": 10, "reason": "more time"})
    assert extended.status == 200, extended.body[:400]
    assert extended.json()["renewals"] == 1 and epoch(extended.json()["deadline"]) == \
        pytest.approx(epoch(session["deadline"]) + 10, abs=0.01)

    assert_error(sessions.call("GET", f"{API}/{sid}", BOB), 404, "notFound", sid)
    assert_error(sessions.call("POST", f"{API}/{sid}/terminate", BOB), 404, "notFound", sid)
    mine = sessions.call("GET", f"{API}?scope=mine&state=Active", ALICE).json()["items"]
    assert sid in [item["id"] for item in mine]

    ended = sessions.call("POST", f"{API}/{sid}/terminate", ALICE, {"reason": "done"})
    assert ended.status == 200 and ended.json()["state"] == "Terminated", ended.body[:400]
    state = porthole.wait_until(lambda: sessions.container_state(ns, pod, session["container"]).get("terminated"),
                                10, "the debug container's process to end")
    assert state["exitCode"] == 129, state
    assert_error(sessions.call("POST", f"{API}/{sid}/terminate", ALICE), 409, "wrongState", "already Terminated")


def test_approval_required_self_approval_refused_another_approver_approves(sessions: Sessions) -> None:
    ns = sessions.namespace("appr-flow")
    pod = sessions.pod(ns)
    created = sessions.create(ALICE, ns, pod)
    assert created.status == 201 and created.json()["state"] == "PendingApproval", created.body[:400]
    sid = created.json()["id"]
    assert sessions.standin.json("GET", f"/api/v1/namespaces/{ns}/pods/{pod}")["spec"].get("ephemeralContainers") \
        in (None, [])
    assert_error(sessions.call("POST", f"{API}/{sid}/approve", ALICE, {"reason": "me"}), 403, "forbidden", "own")
    waiting = sessions.call("GET", f"{API}?scope=approvals", CAROL).json()["items"]
    assert sid in [item["id"] for item in waiting]
    assert_error(sessions.call("POST", f"{API}/{sid}/approve", CAROL, {}), 400, "invalid", "reason")
    approved = sessions.call("POST", f"{API}/{sid}/approve", CAROL, {"reason": "ok, INC-42"})
    assert approved.status == 200 and approved.json()["state"] == "Active", approved.body[:400]
    events = [entry["event"] for entry in approved.json()["history"]]
    assert events == ["created", "approved", "started"], events
    assert sessions.call("POST", f"{API}/{sid}/terminate", CAROL).json()["state"] == "Terminated"


def test_a_bad_image_fails_with_err_image_pull(sessions: Sessions) -> None:
    ns = sessions.namespace("sess-badimage")
    pod = sessions.pod(ns)
    created = sessions.create(ALICE, ns, pod, image=BAD_IMAGE)
    assert created.status == 201, created.body[:400]
    session = created.json()
    assert session["state"] == "Failed" and "ErrImagePull" in history_reasons(session), session
    assert_error(sessions.create(ALICE, ns, pod, image="docker.io/library/busybox:1.36"), 422, "limit", "")


def test_a_restricted_namespace_gets_the_restricted_profile_and_refuses_privileged(sessions: Sessions) -> None:
    ns = sessions.namespace("sess-restricted", level="restricted")
    pod = sessions.pod(ns)
    assert_error(sessions.create(ALICE, ns, pod), 422, "limit", "ask for the restricted profile")
    assert_error(sessions.create(ALICE, ns, pod, profile="privileged"), 422, "limit", "enforces PodSecurity restricted")
    created = sessions.create(ALICE, ns, pod, profile="restricted")
    assert created.status == 201, created.body[:400]
    session = created.json()
    assert session["state"] == "Active" and session["profile"] == "restricted", session
    spec = sessions.standin.json("GET", f"/api/v1/namespaces/{ns}/pods/{pod}")["spec"]["ephemeralContainers"][0]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["capabilities"] == \
        {"drop": ["ALL"]}
    assert sessions.call("POST", f"{API}/{session['id']}/terminate", ALICE).json()["state"] == "Terminated"


def test_a_recreated_pod_is_refused(sessions: Sessions) -> None:
    ns = sessions.namespace("appr-recreated")
    pod = sessions.pod(ns)
    sid = sessions.create(ALICE, ns, pod).json()["id"]
    sessions.standin.json("POST", f"/standin/pods/{ns}/{pod}/recreate")
    approved = sessions.call("POST", f"{API}/{sid}/approve", CAROL, {"reason": "ok"})
    assert approved.status == 200, approved.body[:400]
    session = approved.json()
    assert session["state"] == "Failed" and "immutable" in history_reasons(session), session
    assert not sessions.standin.json("GET", f"/api/v1/namespaces/{ns}/pods/{pod}")["spec"].get("ephemeralContainers")


def test_a_controller_restart_keeps_the_session_and_its_deadline(sessions: Sessions) -> None:
    ns = sessions.namespace("sess-restart")
    pod = sessions.pod(ns)
    session = sessions.create(ALICE, ns, pod, duration=60).json()
    assert session["state"] == "Active", session
    sessions.stack.controller.restart()
    issuer = sessions.stack.issuer
    porthole.wait_until(lambda: sessions.stack.me(sessions.token(ALICE)).status == 200, 30,
                        "the restarted controller to accept tokens")
    again = sessions.call("GET", f"{API}/{session['id']}", ALICE).json()
    assert again["state"] == "Active" and again["deadline"] == session["deadline"], again
    assert again["history"] == session["history"]
    assert issuer is not None
    ended = sessions.call("POST", f"{API}/{session['id']}/terminate", ALICE)
    assert ended.status == 200 and ended.json()["state"] == "Terminated"
