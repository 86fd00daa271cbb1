"""Errors Porthole itself produces reach users in a shape their client reads: a Kubernetes `Status` for `kubernetes`
services (so kubectl prints Porthole's reason), `{"error": …}` for every other service; and an empty bearer token
is a 401 naming it, with one log line, over HTTP/1.1 and HTTP/2 alike.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Callable

import h2.config
import h2.connection
import h2.events

import porthole
from porthole import AGENT_NAME, Stack, client_context, https_request, wait_until


def status_object(body: bytes) -> dict:
    """The Kubernetes `Status` in `body` (fails the test if it is not one)."""
    value = json.loads(body)
    assert set(value) == {"kind", "apiVersion", "metadata", "status", "message", "reason", "code"}, value
    assert (value["kind"], value["apiVersion"], value["metadata"], value["status"]) == (
        "Status", "v1", {}, "Failure"), value
    return value


def kubectl_error(tunnel: porthole.KubeTunnel, cache_dir: Path | None = None) -> str:
    """kubectl's stderr for a `get pods` that must fail (with the tunnel's warm discovery cache unless `cache_dir`)."""
    argv = tunnel.kubectl_argv("get", "pods", "--request-timeout=20s")
    if cache_dir is not None:
        argv[argv.index("--cache-dir") + 1] = str(cache_dir)
    result = subprocess.run(argv, capture_output=True, timeout=60)
    assert result.returncode != 0, result.stdout
    return result.stderr.decode(errors="replace")


def warm(tunnel: porthole.KubeTunnel) -> None:
    """One working `kubectl get pods`, so kubectl's discovery cache holds the stand-in's API list."""
    result = tunnel.kubectl("get", "pods", "--request-timeout=20s")
    assert result.returncode == 0, result.stderr


# -- the two shapes -----------------------------------------------------------------------------------------------


def test_a_kubernetes_service_gets_a_status_and_another_service_json(stack: Stack) -> None:
    kubernetes = stack.control.service_token(agent="nobody")["token"]
    response = https_request(stack.service_address, client_context(stack.ca), "GET", "/api", token=kubernetes)
    assert response.status == 503 and response.headers["content-type"] == "application/json", response
    status = status_object(response.body)
    assert (status["reason"], status["code"], status["message"]) == (
        "ServiceUnavailable", 503, "agent nobody is not connected")

    other = stack.control.service_token(agent="nobody", service_type="jenkins", service="ci")["token"]
    response = https_request(stack.service_address, client_context(stack.ca), "GET", "/", token=other)
    assert response.status == 503 and response.headers["content-type"] == "application/json", response
    assert response.json()["error"] == "agent nobody is not connected"
    assert "kind" not in response.json()


def test_an_expired_token_for_a_kubernetes_service_is_an_unauthorized_status(stack: Stack) -> None:
    issued = stack.control.service_token(ttl=1)
    response = wait_until(
        lambda: (r := https_request(stack.service_address, client_context(stack.ca), "GET", "/api",
                                    token=issued["token"])).status == 401 and r,
        15, "the token to expire", interval=0.25)
    status = status_object(response.body)
    assert (status["reason"], status["code"]) == ("Unauthorized", 401), status
    assert "expired" in status["message"], status


# -- kubectl ------------------------------------------------------------------------------------------------------


def test_kubectl_names_an_agent_that_is_not_connected(start_kube_tunnel: Callable[..., porthole.KubeTunnel],
                                                      tmp_path: Path) -> None:
    tunnel = start_kube_tunnel()
    warm(tunnel)
    tunnel.agent.stop()
    tunnel.controller.process.wait_for_logs("agent disconnected", agent=AGENT_NAME, timeout=10)
    # With discovery cached (a user whose agent went away), kubectl reads the Status body.
    stderr = kubectl_error(tunnel)
    assert f"Error from server (ServiceUnavailable): agent {AGENT_NAME} is not connected" in stderr, stderr
    # Discovery itself ignores error bodies; the Warning header still says why.
    stderr = kubectl_error(tunnel, cache_dir=tmp_path / "cold-cache")
    assert f"Warning: agent {AGENT_NAME} is not connected" in stderr, stderr


def test_kubectl_names_an_unreachable_backend(ca: porthole.CA, tmp_path: Path) -> None:
    standin = porthole.KubeStandin(tmp_path / "standin", tmp_path)
    try:
        services = porthole.write_kube_services_file(tmp_path / "services.json", standin)
        tunnel = porthole.start_kube_tunnel(ca, standin, services, tmp_path / "tunnel", name="dead-backend")
    except BaseException:
        standin.process.stop()
        raise
    try:
        warm(tunnel)
        standin.process.stop()
        reason = "service kubernetes/default is unreachable: connect: Connection refused"
        stderr = kubectl_error(tunnel)
        assert f"Error from server (ServiceUnavailable): {reason}" in stderr, stderr
        stderr = kubectl_error(tunnel, cache_dir=tmp_path / "cold-cache")
        assert f"Warning: {reason}" in stderr, stderr
    finally:
        tunnel.agent.stop()
        tunnel.controller.stop()
        standin.process.stop()


# -- empty bearer token -------------------------------------------------------------------------------------------


def refusals_since(stack: Stack, since: int) -> list[dict]:
    return [entry for entry in stack.controller.logs[since:]
            if entry.get("msg") == "request refused" and entry.get("reason") == "empty bearer token"]


def test_an_empty_bearer_token_over_http1_is_401_naming_it(stack: Stack) -> None:
    for value in ("Bearer", "Bearer ", "bearer   "):
        since = len(stack.controller.logs)
        response = https_request(stack.service_address, client_context(stack.ca), "GET", "/",
                                 headers={"Authorization": value})
        assert response.status == 401, (value, response)
        assert response.error() == "empty bearer token"
        wait_until(lambda: refusals_since(stack, since), 5, "the refusal to be logged")
        assert len(refusals_since(stack, since)) == 1


def test_an_empty_bearer_token_over_http2_is_401_naming_it(stack: Stack) -> None:
    host, port = stack.service_address.rsplit(":", 1)
    for value in ("Bearer", "Bearer "):
        since = len(stack.controller.logs)
        context = client_context(stack.ca, alpn=("h2",))
        sock = context.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host)
        # As curl sends it: the trailing space is kept (h2 would strip it by default).
        connection = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=False,
            normalize_outbound_headers=False))
        connection.initiate_connection()
        connection.send_headers(1, [(":method", "GET"), (":scheme", "https"), (":path", "/"),
                                    (":authority", stack.service_address), ("authorization", value)],
                                end_stream=True)
        sock.sendall(connection.data_to_send())
        status, body, ended = None, b"", False
        try:
            while not ended:
                data = sock.recv(65536)
                assert data, "connection closed"
                for event in connection.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        status = dict(event.headers)[":status"]
                    elif isinstance(event, h2.events.DataReceived):
                        body += event.data
                    elif isinstance(event, h2.events.StreamEnded):
                        ended = True
                    elif isinstance(event, h2.events.StreamReset):
                        raise AssertionError(f"{value!r}: stream reset with code {event.error_code}")
                sock.sendall(connection.data_to_send())
        finally:
            sock.close()
        assert status == "401", (value, status, body)
        assert json.loads(body)["error"] == "empty bearer token"
        wait_until(lambda: refusals_since(stack, since), 5, "the refusal to be logged")
        assert len(refusals_since(stack, since)) == 1
