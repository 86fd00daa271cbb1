"""Requests the controller makes or answers itself (issue 11): its own tunnel client (the hello, and a streamed
GET through `POST /api/v1/probes`), and the route table it serves on the service listener."""

from __future__ import annotations

import hashlib

import pytest

from backend import deterministic_chunks
from porthole import Stack, client_context, https_request
from test_hostile import H2Client


def test_probe_streams_a_large_body_through_the_tunnel_and_counts_every_byte(stack: Stack) -> None:
    size = 20 * 1024 * 1024 + 123
    response = stack.control.call("POST", "/api/v1/probes", {
        "agent": "edge", "type": "kubernetes", "service": "default", "path": f"/bytes?n={size}&seed=probe"})
    assert response.status == 200, response.body
    result = response.json()
    expected = hashlib.sha256()
    for piece in deterministic_chunks(size, "probe"):
        expected.update(piece)
    assert result["status"] == 200
    assert result["bytes"] == size
    assert result["sha256"] == expected.hexdigest()


def test_probe_sees_pieces_as_the_backend_writes_them(stack: Stack) -> None:
    response = stack.control.call("POST", "/api/v1/probes", {
        "agent": "edge", "service": "default", "path": "/pieces?count=4&delay=0.3"})
    result = response.json()
    assert response.status == 200 and result["status"] == 200, result
    assert result["bytes"] == len(b"".join(f"piece {i}\n".encode() for i in range(4)))
    # Streamed: the first piece arrived long before the last one was written.
    assert result["firstByteMilliseconds"] < result["totalMilliseconds"] - 600, result


@pytest.mark.parametrize("payload, status", [
    ({"agent": "nobody"}, 503),
    ({"agent": "edge", "service": "other"}, 503),
    ({"agent": "edge", "path": "/../x"}, 400),
    ({"agent": "edge", "extra": 1}, 400),
])
def test_probe_refusals(stack: Stack, payload: dict, status: int) -> None:
    response = stack.control.call("POST", "/api/v1/probes", payload)
    assert response.status == status, response.body
    assert response.error()


def test_probe_needs_a_control_identity(stack: Stack) -> None:
    """A service-listener credential cannot ask the controller to reach into a cluster."""
    import ssl
    context = client_context(stack.ca, stack.kubeconfig.cert, stack.kubeconfig.key)
    try:
        response = https_request(stack.controller.control_url.removeprefix("https://"), context, "POST",
                                 "/api/v1/probes", body=b'{"agent":"edge"}')
    except (ssl.SSLError, ConnectionError):
        return  # refused at the TLS level
    assert response.status == 403, response.body


@pytest.mark.parametrize("protocol", ["http1.1", "http2"])
def test_the_controller_serves_its_well_known_document_itself(stack: Stack, protocol: str) -> None:
    if protocol == "http1.1":
        response = https_request(stack.service_address, client_context(stack.ca), "GET", "/.well-known/porthole")
        assert response.status == 200, response.body
        document = response.json()
    else:
        import json
        client = H2Client(stack.ca, stack.service_address)
        try:
            stream = client.request("/.well-known/porthole", "no-token-needed")
            assert client.wait_status(stream) == 200
            import h2.events
            while not any(isinstance(e, h2.events.StreamEnded) and e.stream_id == stream for e in client.events):
                assert client.pump(1)
            document = json.loads(b"".join(e.data for e in client.events
                                           if isinstance(e, h2.events.DataReceived) and e.stream_id == stream))
        finally:
            client.close()
    assert document["service"] == "porthole"
    assert document["serviceURL"] == stack.service_url
    assert document["protocolVersion"] == 1
    assert document["version"]
