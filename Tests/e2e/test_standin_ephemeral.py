"""The Kubernetes stand-in's ephemeral containers, checked against the API server's documented behaviour.

kube_standin.py is a test fixture, but the debug sessions (issue 13) rely on it behaving as kube-apiserver and the
kubelet do: the `ephemeralcontainers` subresource (strategic merge, merge and JSON patches; PUT), `dryRun=All`,
validation messages, the pod's uid, PodSecurity admission for labelled namespaces, `ephemeralContainerStatuses`
transitions seen by watches, attach, and a debug process ended by a signal to PID 1. Most tests talk to the stand-in
directly; the last ones go through Porthole with kubectl.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
import time
import uuid
from typing import Callable
from urllib.parse import quote

import pytest

import porthole
import ws
from porthole import KubeStandin, KubeTunnel, wait_until

SMP = "application/strategic-merge-patch+json"
RESTRICTED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
              "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def namespace(standin: KubeStandin, level: str | None = None) -> str:
    name = unique(f"ns-{level or 'plain'}")
    labels = {"pod-security.kubernetes.io/enforce": level} if level else {}
    standin.json("POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": labels}})
    return name


def compliant_pod(standin: KubeStandin, ns: str, name: str | None = None) -> str:
    name = name or unique("pod")
    standin.json("POST", f"/api/v1/namespaces/{ns}/pods", {"metadata": {"name": name}, "spec": {
        "containers": [{"name": "app", "image": "busybox:1.36", "securityContext": RESTRICTED}]}})
    return name


def patch(standin: KubeStandin, ns: str, pod: str, body: object, content_type: str = SMP,
          query: str = "") -> porthole.Response:
    return standin.call("PATCH", f"/api/v1/namespaces/{ns}/pods/{pod}/ephemeralcontainers{query}",
                        body=json.dumps(body).encode(), headers={"Content-Type": content_type})


def add(container: dict) -> dict:
    return {"spec": {"ephemeralContainers": [container]}}


def debugger(name: str = "debugger", **fields: object) -> dict:
    return {"name": name, "image": "busybox:1.36", "stdin": True, "tty": True} | fields


def inspect(standin: KubeStandin, ns: str, pod: str) -> dict:
    return standin.json("GET", f"/standin/pods/{ns}/{pod}")


def state_of(standin: KubeStandin, ns: str, pod: str, container: str) -> dict:
    obj = standin.json("GET", f"/api/v1/namespaces/{ns}/pods/{pod}")
    for status in obj["status"].get("ephemeralContainerStatuses") or []:
        if status["name"] == container:
            return status["state"]
    return {}


def wait_state(standin: KubeStandin, ns: str, pod: str, container: str, key: str, reason: str | None = None,
               timeout: float = 10.0) -> dict:
    def reached() -> dict | None:
        state = state_of(standin, ns, pod, container)
        if key in state and (reason is None or state[key].get("reason") == reason):
            return state
        return None
    return wait_until(reached, timeout, f"{container} to be {key} {reason or ''}")


def status_message(response: porthole.Response) -> str:
    body = response.json()
    assert body["kind"] == "Status", body
    return body["message"]


# -- the subresource ----------------------------------------------------------------------------------------------


def test_dry_run_validates_and_admits_but_stores_nothing(kube_standin: KubeStandin) -> None:
    ns = namespace(kube_standin)
    pod = compliant_pod(kube_standin, ns)
    before = kube_standin.json("GET", f"/api/v1/namespaces/{ns}/pods/{pod}")
    response = patch(kube_standin, ns, pod, add(debugger()), query="?dryRun=All")
    assert response.status == 200, response.body
    would_be = response.json()
    (container,) = would_be["spec"]["ephemeralContainers"]
    assert container["name"] == "debugger" and container["terminationMessagePolicy"] == "File"
    after = kube_standin.json("GET", f"/api/v1/namespaces/{ns}/pods/{pod}")
    assert "ephemeralContainers" not in after["spec"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    # a dry run is validated like the real thing
    refused = patch(kube_standin, ns, pod, add(debugger(ports=[{"containerPort": 80}])), query="?dryRun=All")
    assert refused.status == 422
    assert patch(kube_standin, ns, pod, add(debugger()), query="?dryRun=Some").status == 400
    seen = inspect(kube_standin, ns, pod)
    assert (seen["patches"], seen["dryRuns"], seen["refusals"], seen["ephemeralContainers"]) == (0, 1, 1, [])
    time.sleep(1.0)  # and no kubelet acted on it
    assert "ephemeralContainerStatuses" not in kube_standin.json(
        "GET", f"/api/v1/namespaces/{ns}/pods/{pod}")["status"]


def test_validation_answers_as_the_api_server_does(kube_standin: KubeStandin) -> None:
    ns = namespace(kube_standin)
    pod = compliant_pod(kube_standin, ns)
    response = patch(kube_standin, ns, pod, add(debugger(
        targetContainerName="nope", ports=[{"containerPort": 80}], readinessProbe={"exec": {"command": ["true"]}},
        resources={"limits": {"cpu": "1"}})))
    assert response.status == 422
    assert status_message(response) == (
        f'Pod "{pod}" is invalid: [spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral '
        'Container, spec.ephemeralContainers[0].readinessProbe: Forbidden: cannot be set for an Ephemeral Container, '
        'spec.ephemeralContainers[0].resources: Forbidden: cannot be set for an Ephemeral Container, '
        'spec.ephemeralContainers[0].targetContainerName: Not found: "nope"]')
    causes = response.json()["details"]["causes"]
    assert causes[0] == {"reason": "FieldValueForbidden", "field": "spec.ephemeralContainers[0].ports",
                         "message": "Forbidden: cannot be set for an Ephemeral Container"}
    duplicate = patch(kube_standin, ns, pod, add(debugger(name="app")))
    assert status_message(duplicate) == f'Pod "{pod}" is invalid: spec.ephemeralContainers[0].name: Duplicate value: "app"'
    assert patch(kube_standin, ns, pod, add({"name": "noimage"})).json()["message"].endswith(
        "spec.ephemeralContainers[0].image: Required value")

    assert patch(kube_standin, ns, pod, add(debugger(command=["sleep", "60"]))).status == 200
    # repeating it unchanged is fine; changing it is not
    assert patch(kube_standin, ns, pod, add(debugger(command=["sleep", "60"]))).status == 200
    changed = patch(kube_standin, ns, pod, add(debugger(image="alpine:3.20")))
    assert changed.status == 422
    assert status_message(changed).startswith(
        f'Pod "{pod}" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers "debugger" may '
        "not be changed\n")
    removed = patch(kube_standin, ns, pod, {"spec": {"ephemeralContainers": [{"name": "debugger", "$patch": "delete"}]}})
    assert status_message(removed) == (f'Pod "{pod}" is invalid: spec.ephemeralContainers: Forbidden: existing '
                                       'ephemeral containers "debugger" may not be removed\n')
    # a JSON merge patch replaces the list: leaving the existing container out removes it, which is refused
    merge = patch(kube_standin, ns, pod, add(debugger(name="second")), "application/merge-patch+json")
    assert "may not be removed" in status_message(merge)
    # a JSON patch appends
    appended = patch(kube_standin, ns, pod, [{"op": "add", "path": "/spec/ephemeralContainers/-",
                                             "value": debugger(name="second", command=["sleep", "60"])}],
                     "application/json-patch+json")
    assert appended.status == 200, appended.body
    assert [c["name"] for c in appended.json()["spec"]["ephemeralContainers"]] == ["debugger", "second"]
    unsupported = kube_standin.call("PATCH", f"/api/v1/namespaces/{ns}/pods/{pod}/ephemeralcontainers",
                                    body=b"{}", headers={"Content-Type": "text/plain"})
    assert unsupported.status == 415 and unsupported.json()["reason"] == "UnsupportedMediaType"
    assert kube_standin.json("GET", f"/api/v1/namespaces/{ns}/pods/{pod}/ephemeralcontainers")["kind"] == "Pod"
    assert inspect(kube_standin, ns, pod)["patches"] == 3


def test_a_recreated_pod_refuses_a_patch_bound_to_the_old_uid(kube_standin: KubeStandin) -> None:
    ns = namespace(kube_standin)
    pod = compliant_pod(kube_standin, ns)
    old = kube_standin.json("GET", f"/api/v1/namespaces/{ns}/pods/{pod}")["metadata"]["uid"]
    bound = {"metadata": {"uid": old}} | add(debugger(command=["sleep", "60"]))
    assert patch(kube_standin, ns, pod, bound, query="?dryRun=All").status == 200
    recreated = kube_standin.json("POST", f"/standin/pods/{ns}/{pod}/recreate")
    new = recreated["metadata"]["uid"]
    assert new != old and recreated["metadata"]["name"] == pod
    # PATCH: the uid is immutable (rest.BeforeUpdate's metadata validation)
    response = patch(kube_standin, ns, pod, bound)
    assert response.status == 422
    assert status_message(response) == f'Pod "{pod}" is invalid: metadata.uid: Invalid value: "{old}": field is immutable'
    # PUT: the uid is a storage precondition
    body = kube_standin.json("GET", f"/api/v1/namespaces/{ns}/pods/{pod}")
    body["metadata"]["uid"] = old
    body["spec"]["ephemeralContainers"] = [debugger(command=["sleep", "60"])]
    put = kube_standin.call("PUT", f"/api/v1/namespaces/{ns}/pods/{pod}/ephemeralcontainers",
                            body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    assert put.status == 409
    assert status_message(put) == (f'Operation cannot be fulfilled on pods "{pod}": Precondition failed: UID in '
                                   f"precondition: {old}, UID in object meta: {new}")
    # a stale resourceVersion is a conflict too
    stale = {"metadata": {"uid": new, "resourceVersion": "1"}} | add(debugger())
    assert status_message(patch(kube_standin, ns, pod, stale)).endswith(
        "the object has been modified; please apply your changes to the latest version and try again")
    assert patch(kube_standin, ns, pod, {"metadata": {"uid": new}} | add(debugger(command=["sleep", "60"]))).status == 200
    seen = inspect(kube_standin, ns, pod)
    assert (seen["uid"], seen["patches"], seen["refusals"]) == (new, 1, 3)


# -- PodSecurity --------------------------------------------------------------------------------------------------


def test_restricted_namespace_refuses_a_debugger_without_the_restricted_profile(kube_standin: KubeStandin) -> None:
    ns = namespace(kube_standin, "restricted")
    labels = kube_standin.json("GET", f"/api/v1/namespaces/{ns}")["metadata"]["labels"]
    assert labels == {"pod-security.kubernetes.io/enforce": "restricted", "kubernetes.io/metadata.name": ns}
    pod = compliant_pod(kube_standin, ns)
    for query in ("?dryRun=All", ""):
        response = patch(kube_standin, ns, pod, add(debugger()), query=query)
        assert response.status == 403
        assert response.json()["reason"] == "Forbidden"
        assert status_message(response) == (
            f'pods "{pod}" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
            '(container "debugger" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities '
            '(container "debugger" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or '
            'container "debugger" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container '
            '"debugger" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')
    # a root or privileged one is refused for more reasons
    root = debugger(securityContext=RESTRICTED | {"runAsUser": 0, "privileged": True,
                                                  "capabilities": {"drop": ["ALL"], "add": ["SYS_PTRACE"]}})
    assert status_message(patch(kube_standin, ns, pod, add(root))) == (
        f'pods "{pod}" is forbidden: violates PodSecurity "restricted:latest": privileged (container "debugger" must '
        'not set securityContext.privileged=true), unrestricted capabilities (container "debugger" must not include '
        '"SYS_PTRACE" in securityContext.capabilities.add), runAsUser=0 (container "debugger" must not set '
        'runAsUser=0)')
    assert patch(kube_standin, ns, pod, add(debugger(securityContext=RESTRICTED))).status == 200
    wait_state(kube_standin, ns, pod, "debugger", "running")
    # pods are admitted on create too
    refused = kube_standin.call("POST", f"/api/v1/namespaces/{ns}/pods", headers={"Content-Type": "application/json"},
                                body=json.dumps({"metadata": {"name": "loose"}, "spec": {"containers": [
                                    {"name": "app", "image": "busybox"}]}}).encode())
    assert refused.status == 403 and 'violates PodSecurity "restricted:latest"' in status_message(refused)


def test_baseline_namespace_refuses_privileged_and_added_capabilities(kube_standin: KubeStandin) -> None:
    ns = namespace(kube_standin, "baseline")
    pod = unique("pod")
    kube_standin.create_pod(ns, pod)
    response = patch(kube_standin, ns, pod, add(debugger(securityContext={
        "privileged": True, "capabilities": {"add": ["NET_ADMIN", "SYS_ADMIN", "CHOWN"]}})))
    assert response.status == 403
    assert status_message(response) == (
        f'pods "{pod}" is forbidden: violates PodSecurity "baseline:latest": privileged (container "debugger" must not '
        'set securityContext.privileged=true), non-default capabilities (container "debugger" must not include '
        '"NET_ADMIN", "SYS_ADMIN" in securityContext.capabilities.add)')
    # baseline lets a root debugger with default capabilities in
    assert patch(kube_standin, ns, pod, add(debugger(command=["sleep", "60"]))).status == 200
    # relabelling the namespace takes effect for the next request
    kube_standin.call("PATCH", f"/api/v1/namespaces/{ns}", headers={"Content-Type": "application/merge-patch+json"},
                      body=json.dumps({"metadata": {"labels": {
                          "pod-security.kubernetes.io/enforce": "privileged"}}}).encode())
    assert patch(kube_standin, ns, pod, add(debugger(name="priv", command=["sleep", "60"],
                                                     securityContext={"privileged": True}))).status == 200


# -- the kubelet --------------------------------------------------------------------------------------------------


def watch_states(standin: KubeStandin, ns: str, pod: str, container: str, until: Callable, timeout: float = 15.0
                 ) -> list[dict]:
    """Reads a pod watch (from the pod's current resourceVersion) until `until(state)`; returns every state seen."""
    rv = standin.json("GET", f"/api/v1/namespaces/{ns}/pods/{pod}")["metadata"]["resourceVersion"]
    host, port = standin.address.split(":")
    connection = http.client.HTTPSConnection(host, int(port), context=standin.context, timeout=timeout)
    connection.request("GET", f"/api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={rv}"
                              f"&fieldSelector={quote('metadata.name=' + pod)}",
                       headers={"Authorization": f"Bearer {standin.token}"})
    response = connection.getresponse()
    assert response.status == 200
    return response, connection


def collect(response, container: str, until, seen: list[dict]) -> None:
    while True:
        line = response.readline()
        if not line:
            return
        event = json.loads(line)
        for status in event["object"]["status"].get("ephemeralContainerStatuses") or []:
            if status["name"] == container:
                seen.append((event["type"], status["state"]))
                if until(status["state"]):
                    return


def test_status_goes_creating_then_running_and_watches_see_it(kube_standin: KubeStandin) -> None:
    ns = namespace(kube_standin)
    pod = compliant_pod(kube_standin, ns)
    response, connection = watch_states(kube_standin, ns, pod, "debugger", None)
    assert patch(kube_standin, ns, pod, add(debugger(command=["sleep", "60"]))).status == 200
    seen: list = []
    collect(response, "debugger", lambda state: "running" in state, seen)
    connection.close()
    assert [event for event, _ in seen] == ["MODIFIED"] * len(seen)
    assert seen[0][1] == {"waiting": {"reason": "ContainerCreating"}}
    assert "startedAt" in seen[-1][1]["running"]
    assert inspect(kube_standin, ns, pod)["processes"][0]["running"]


def test_an_unknown_image_is_err_image_pull_then_image_pull_back_off(kube_standin: KubeStandin) -> None:
    ns = namespace(kube_standin)
    pod = compliant_pod(kube_standin, ns)
    response, connection = watch_states(kube_standin, ns, pod, "debugger", None)
    assert patch(kube_standin, ns, pod, add(debugger(image="registry.example/does-not-exist:1"))).status == 200
    seen: list = []
    collect(response, "debugger", lambda state: state.get("waiting", {}).get("reason") == "ImagePullBackOff", seen)
    connection.close()
    reasons = [state["waiting"]["reason"] for _, state in seen]
    assert reasons == ["ContainerCreating", "ErrImagePull", "ImagePullBackOff"]
    assert 'failed to pull and unpack image "registry.example/does-not-exist:1"' in seen[1][1]["waiting"]["message"]
    assert seen[2][1]["waiting"]["message"].startswith('Back-off pulling image "registry.example/does-not-exist:1"')
    assert inspect(kube_standin, ns, pod)["processes"] == []
    attach = kube_standin.call("POST", f"/api/v1/namespaces/{ns}/pods/{pod}/attach?container=debugger&stdout=true",
                               headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                        "Sec-WebSocket-Protocol": "v5.channel.k8s.io"})
    assert attach.status == 400
    assert status_message(attach) == f'container "debugger" in pod "{pod}" is waiting to start: ImagePullBackOff'


def test_run_as_non_root_with_a_root_image_is_create_container_config_error(kube_standin: KubeStandin) -> None:
    ns = namespace(kube_standin)
    pod = compliant_pod(kube_standin, ns)
    uid = kube_standin.json("GET", f"/api/v1/namespaces/{ns}/pods/{pod}")["metadata"]["uid"]
    root_image = {key: value for key, value in RESTRICTED.items() if key != "runAsUser"}
    assert patch(kube_standin, ns, pod, add(debugger(securityContext=root_image))).status == 200
    state = wait_state(kube_standin, ns, pod, "debugger", "waiting", "CreateContainerConfigError")
    assert state["waiting"]["message"] == (f'container has runAsNonRoot and image will run as root (pod: '
                                           f'"{pod}_{ns}({uid})", container: debugger)')
    # an explicit non-root user, or an image whose user is not root, runs
    assert patch(kube_standin, ns, pod, add(debugger(name="as-user", securityContext=RESTRICTED))).status == 200
    assert patch(kube_standin, ns, pod, add(debugger(name="nonroot-image", image="gcr.io/distroless/base:nonroot",
                                                     command=["sleep", "60"], securityContext=root_image))).status == 200
    wait_state(kube_standin, ns, pod, "as-user", "running")
    wait_state(kube_standin, ns, pod, "nonroot-image", "running")


# -- attach, and ending the debug process -------------------------------------------------------------------------


def open_channel(standin: KubeStandin, ns: str, pod: str, subresource: str, query: str) -> ws.WebSocket:
    stream = ws.TLSStream.connect(standin.address, standin.context, server_hostname="127.0.0.1", timeout=10)
    stream.sock.settimeout(20)
    return ws.client_handshake(ws.Buffered(stream), standin.address,
                               f"/api/v1/namespaces/{ns}/pods/{pod}/{subresource}?{query}", ["v5.channel.k8s.io"],
                               headers=[("Authorization", f"Bearer {standin.token}")])


def exec_command(standin: KubeStandin, ns: str, pod: str, container: str, command: list[str]) -> tuple[bytes, dict]:
    query = "&".join([f"command={quote(part)}" for part in command] + [f"container={container}", "stdout=true",
                                                                       "stderr=true"])
    socket_ = open_channel(standin, ns, pod, "exec", query)
    output, status = b"", b""
    while (message := socket_.recv_message()) is not None:
        if message[1][:1] in (bytes([ws.STDOUT]), bytes([ws.STDERR])):
            output += message[1][1:]
        elif message[1][:1] == bytes([ws.ERROR]):
            status += message[1][1:]
    socket_.stream.close()
    return output, json.loads(status or b"{}")


def test_attach_works_and_kill_hup_1_ends_the_debug_process_and_the_stream(kube_standin: KubeStandin) -> None:
    ns = namespace(kube_standin)
    pod = compliant_pod(kube_standin, ns)
    assert patch(kube_standin, ns, pod, add(debugger(command=["sh"]))).status == 200
    wait_state(kube_standin, ns, pod, "debugger", "running")
    attach = open_channel(kube_standin, ns, pod, "attach", "container=debugger&stdin=true&stdout=true&tty=true")
    attach.send_channel(ws.STDIN, b"echo attached-$((6*7))\r")
    output = b""
    while b"attached-42" not in output:
        message = attach.recv_message()
        assert message is not None, output
        output += message[1][1:]
    assert exec_command(kube_standin, ns, pod, "debugger", ["kill", "-HUP", "1"]) == (b"", {"metadata": {},
                                                                                           "status": "Success"})
    started = time.monotonic()
    ended = False
    while not ended:
        message = attach.recv_message()
        ended = message is None or message[1][:1] == bytes([ws.ERROR])
    assert time.monotonic() - started < 5
    attach.stream.close()
    state = wait_state(kube_standin, ns, pod, "debugger", "terminated")
    assert (state["terminated"]["exitCode"], state["terminated"]["reason"]) == (129, "Error")
    (signalled,) = inspect(kube_standin, ns, pod)["signals"]
    assert (signalled["signal"], signalled["pid1Of"], signalled["via"]) == ("SIGHUP", "debugger", "exec")
    # it cannot be attached again, nor re-added
    again = open_channel(kube_standin, ns, pod, "attach", "container=debugger&stdout=true")
    message = again.recv_message()
    assert message is not None and b"has terminated" in message[1]
    again.stream.close()


def test_kill_1_in_a_targeted_debugger_reaches_the_target_and_the_side_channel_signals(
        kube_standin: KubeStandin) -> None:
    """With targetContainerName the debugger shares the target's process namespace: PID 1 is the app's process."""
    ns = namespace(kube_standin)
    pod = compliant_pod(kube_standin, ns)
    assert patch(kube_standin, ns, pod, add(debugger(command=["sh"], targetContainerName="app"))).status == 200
    assert patch(kube_standin, ns, pod, add(debugger(name="own", command=["sleep", "60"]))).status == 200
    wait_state(kube_standin, ns, pod, "debugger", "running")
    wait_state(kube_standin, ns, pod, "own", "running")
    output, status = exec_command(kube_standin, ns, pod, "debugger", ["sh", "-c", "kill 1"])
    assert status["status"] == "Success"
    app = kube_standin.json("GET", f"/api/v1/namespaces/{ns}/pods/{pod}")["status"]["containerStatuses"][0]
    assert app["restartCount"] == 1 and app["lastState"]["terminated"]["exitCode"] == 143
    assert state_of(kube_standin, ns, pod, "debugger").get("running") is not None  # the debugger itself lives on
    signalled = kube_standin.json("POST", f"/standin/pods/{ns}/{pod}/containers/own/signal", {"signal": "TERM"})
    assert signalled["signalled"] > 0
    state = wait_state(kube_standin, ns, pod, "own", "terminated")
    assert state["terminated"]["exitCode"] == 143
    assert [s["pid1Of"] for s in inspect(kube_standin, ns, pod)["signals"]] == ["app", "own"]


# -- through Porthole ---------------------------------------------------------------------------------------------


def test_kubectl_debug_through_porthole_meets_pod_security_and_the_kubelet(kube: KubeTunnel) -> None:
    standin = kube.standin
    ns = namespace(standin, "restricted")
    pod = compliant_pod(standin, ns)
    refused = kube.kubectl("debug", "-n", ns, pod, "--image=busybox:1.36", "--container=general",
                           "--profile=general", "--", "sleep", "60")
    assert refused.returncode != 0
    assert (f'pods "{pod}" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false'
            in refused.stderr.decode()), refused.stderr
    admitted = kube.kubectl("debug", "-n", ns, pod, "--image=busybox:1.36", "--container=restricted",
                            "--profile=restricted", "--", "sleep", "60")
    assert admitted.returncode == 0, admitted.stderr
    state = wait_state(standin, ns, pod, "restricted", "waiting", "CreateContainerConfigError")
    assert "container has runAsNonRoot and image will run as root" in state["waiting"]["message"]
    shown = kube.kubectl("get", "pod", "-n", ns, pod, "-o",
                         "jsonpath={.status.ephemeralContainerStatuses[0].state.waiting.reason}")
    assert shown.stdout.decode() == "CreateContainerConfigError", shown.stderr
