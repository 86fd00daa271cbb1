"""Bad input of every kind gets a clear error to its sender, one log line, and harms no other stream."""

from __future__ import annotations

import socket
import ssl
import threading
import time
import uuid

import pytest

from porthole import Stack, client_context, https_request, wait_until


def raw_tls(stack: Stack, alpn: str = "http/1.1", address: str | None = None,
            context: ssl.SSLContext | None = None) -> ssl.SSLSocket:
    host, port = (address or stack.service_address).rsplit(":", 1)
    context = context or client_context(stack.ca, alpn=(alpn,))
    return context.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host)


def read_all(sock: ssl.SSLSocket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionError, ssl.SSLError):
        pass
    return data


def healthy(stack: Stack) -> None:
    response = https_request(stack.service_address, client_context(stack.ca), "GET", "/", token=stack.token)
    assert response.status == 200, response.body


def logged(stack: Stack, msg: str, since: int) -> list[dict]:
    return [entry for entry in stack.controller.logs[since:] if entry.get("msg") == msg]


@pytest.mark.parametrize("request_bytes, status, reason", [
    (b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, "malformed"),
    (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "malformed"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "conflicting"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431, "larger than"),
    (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, "not a forward proxy"),
], ids=["start-line", "space-before-colon", "smuggling", "oversized-header", "connect"])
def test_malformed_http1_gets_a_json_error_and_one_log_line(stack: Stack, request_bytes: bytes, status: int,
                                                            reason: str) -> None:
    since = len(stack.controller.logs)
    sock = raw_tls(stack)
    try:
        sock.sendall(request_bytes)
        answer = read_all(sock)
    finally:
        sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode()), answer[:300]
    assert b'"error"' in body and reason.encode() in body, body
    wait_until(lambda: logged(stack, "malformed HTTP/1.1 request", since) or logged(stack, "CONNECT refused", since),
               5, "the refusal to be logged")
    healthy(stack)


def test_garbage_on_http2_ends_that_connection_only(stack: Stack) -> None:
    sock = raw_tls(stack, alpn="h2")
    try:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x04\x09\x00\x00\x00\x00\x01garbage-frame")
        answer = read_all(sock)
    finally:
        sock.close()
    # A GOAWAY frame (type 7) with a protocol error, then the connection closes.
    assert b"\x07" in answer[:200], answer[:100]
    healthy(stack)


def test_plain_http_on_the_tls_listener_is_refused_and_logged(stack: Stack) -> None:
    since = len(stack.controller.logs)
    host, port = stack.service_address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except ConnectionError:
            pass
    assert not answer.startswith(b"HTTP/1.1 200")
    wait_until(lambda: logged(stack, "TLS handshake failed", since), 5, "the failed handshake to be logged")
    healthy(stack)


def test_user_certificate_on_the_agent_listener_is_refused(stack: Stack, tmp_path) -> None:
    from test_refusals import mint
    since = len(stack.controller.logs)
    context = mint(stack, tmp_path, "spiffe://porthole.local/kubernetes/edge/default", "mallory")
    context.set_alpn_protocols(["h2"])
    sock = raw_tls(stack, address=stack.controller.agent_address, context=context)
    try:
        assert read_all(sock) == b""
    finally:
        sock.close()
    refusals = wait_until(lambda: logged(stack, "agent listener refused a certificate that is not an agent's", since),
                          5, "the refusal to be logged")
    assert "kubernetes" in refusals[0]["identity"]
    assert len(refusals) == 1


def test_client_vanishing_mid_upload_cancels_only_its_stream(stack: Stack) -> None:
    since = len(stack.controller.logs)
    sock = raw_tls(stack)
    sock.sendall(f"POST /sha256 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {stack.token}\r\n"
                 f"Content-Length: {64 << 20}\r\n\r\n".encode() + b"x" * (1 << 20))
    # Another request runs while the upload is half done.
    healthy(stack)
    sock.close()
    wait_until(lambda: logged(stack, "user went away mid-request", since), 5, "the cancellation to be logged")
    healthy(stack)


def test_a_response_larger_than_the_header_limit_from_a_user_is_not_buffered_forever(stack: Stack) -> None:
    """A head that never ends (no blank line) is cut off at the limit instead of growing without bound."""
    sock = raw_tls(stack)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(40):
                sock.sendall(b"X-Filler: " + b"b" * 4000 + b"\r\n")
        except (ConnectionError, ssl.SSLError):
            pass  # the controller may stop reading once it has answered; its answer is already on the way
        answer = read_all(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
