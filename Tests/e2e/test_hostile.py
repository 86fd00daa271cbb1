"""A hostile user cannot take a tunnel down, exhaust memory, leak streams, reach the tunnel protocol or leave a
service's path (issue 9). Each test measures the outcome a user or operator would see."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest

import porthole
from porthole import CA, Backend, Stack, client_context, https_request, wait_until
from test_bad_input import healthy, logged, raw_tls, read_all
from test_production import scrape


class H2Client:
    """A raw HTTP/2 client (python-h2) over TLS: sends what a test builds, frame by frame."""

    def __init__(self, ca: CA, address: str) -> None:
        self.sock = raw_tls_h2(ca, address)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.flush()
        self.events: list[h2.events.Event] = []

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path: str, token: str, extra: list[tuple[str, str]] = (), end: bool = True) -> int:
        stream = self.conn.get_next_available_stream_id()
        headers = [(":method", "GET"), (":scheme", "https"), (":authority", "127.0.0.1"), (":path", path),
                   ("authorization", f"Bearer {token}"), *extra]
        self.conn.send_headers(stream, headers, end_stream=end)
        self.flush()
        return stream

    def reset(self, stream: int) -> None:
        self.conn.reset_stream(stream)
        self.flush()

    def pump(self, timeout: float = 0.0) -> bool:
        """Reads what has arrived (waiting up to `timeout`); false once the connection is gone."""
        self.sock.settimeout(timeout if timeout > 0 else 0.0001)
        try:
            data = self.sock.recv(65536)
        except (TimeoutError, ssl.SSLWantReadError, BlockingIOError, socket.timeout):
            return True
        except (ConnectionError, ssl.SSLError, OSError):
            return False
        if not data:
            return False
        self.events += self.conn.receive_data(data)
        for event in self.events:
            if isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        self.flush()
        return True

    def status(self, stream: int) -> int | None:
        for event in self.events:
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream:
                return int(dict(event.headers)[":status"])
        return None

    def wait_status(self, stream: int, timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (status := self.status(stream)) is not None:
                return status
            assert self.pump(0.2), "connection closed before a response"
        raise AssertionError(f"no response on stream {stream} within {timeout}s")

    def close(self) -> None:
        self.sock.close()


def raw_tls_h2(ca: CA, address: str) -> ssl.SSLSocket:
    host, port = address.rsplit(":", 1)
    return client_context(ca, alpn=("h2",)).wrap_socket(socket.create_connection((host, int(port)), timeout=10),
                                                       server_hostname=host)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


# -- 1. user cancellations never count against the tunnel ---------------------------------------------------------


def test_cancellation_storm_from_many_users_does_not_take_the_tunnel_down(start_controller, start_agent) -> None:
    """3,000 requests cancelled 30 ms after they start, by 20 users at once, while a probe makes ordinary requests:
    nghttp2's default rapid-reset guard at the agent (1,000 + 33/s) would have sent GOAWAY and left every user
    with 503s. The probe sees only 200s and the agent keeps its one tunnel."""
    controller = start_controller()
    agent = start_agent(controller)
    control = controller.control()
    tokens = [control.service_token(user=f"storm-{index}")["token"] for index in range(20)]
    probe_token = control.service_token(user="probe")["token"]
    statuses: list[int] = []
    stop = threading.Event()

    def probe() -> None:
        context = client_context(controller.ca)
        while not stop.is_set():
            try:
                statuses.append(https_request(controller.service_address, context, "GET", "/", token=probe_token,
                                              timeout=10).status)
            except OSError as error:
                statuses.append(-1)
                print("probe failed:", error)
            time.sleep(0.05)

    def storm(token: str) -> int:
        client = H2Client(controller.ca, controller.service_address)
        cancelled = 0
        try:
            for _ in range(15):
                streams = [client.request("/slow?delay=2", token) for _ in range(10)]
                time.sleep(0.03)
                for stream in streams:
                    client.reset(stream)
                    cancelled += 1
                client.pump()
        finally:
            client.close()
        return cancelled

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
            assert sum(pool.map(storm, tokens)) == 3000
        time.sleep(1.0)  # the probe keeps going while the agent works through the resets
    finally:
        stop.set()
        prober.join(15)
    assert statuses and set(statuses) == {200}, f"probe saw {sorted(set(statuses))} over {len(statuses)} requests"
    assert agent.tunnels_up() == 1, "the tunnel was replaced"
    assert not agent.process.log_entries("controller is draining this tunnel")
    healthy_after = https_request(controller.service_address, client_context(controller.ca), "GET", "/",
                                  token=probe_token)
    assert healthy_after.status == 200


def test_one_users_cancellations_are_limited_without_touching_others(start_controller, start_agent,
                                                                     tmp_path: Path) -> None:
    config = tmp_path / "controller.json"
    config.write_text(json.dumps({"userCancellationBurst": 20, "userCancellationsPerSecond": 2}))
    controller = start_controller("--config", str(config))
    start_agent(controller)
    control = controller.control()
    mallory = control.service_token(user="mallory")["token"]
    alice = control.service_token(user="alice")["token"]
    client = H2Client(controller.ca, controller.service_address)
    try:
        streams = [client.request("/slow?delay=2", mallory) for _ in range(30)]
        time.sleep(0.2)
        for stream in streams:
            client.reset(stream)
        refused = client.request("/", mallory)
        assert client.wait_status(refused) == 429
        retry = next(dict(e.headers) for e in client.events
                     if isinstance(e, h2.events.ResponseReceived) and e.stream_id == refused)
        assert int(retry["retry-after"]) >= 1
        assert client.wait_status(client.request("/", alice)) == 200
    finally:
        client.close()
    scraped = scrape(controller.metrics_url + "/metrics")
    assert scraped["porthole_auth_failures_total"][(("reason", "cancellation_budget"),)] >= 1


# -- 2. HPACK bombs -------------------------------------------------------------------------------------------------


def test_hpack_bomb_is_refused_and_controller_memory_stays_bounded(stack: Stack) -> None:
    """Ten header blocks of 20,000 copies of one indexed 3,000-byte field: about 20 KB each on the wire, 60 MB each
    once decoded. Each gets 431; the controller's RSS grows by far less than one decoded block; others are served."""
    before = rss_kib(stack.controller.pid)
    since = len(stack.controller.logs)
    client = H2Client(stack.ca, stack.service_address)
    try:
        bomb = [("x-bomb", "b" * 3000)] * 20_000
        streams = [client.request("/", stack.token, bomb) for _ in range(10)]
        for stream in streams:
            assert client.wait_status(stream, timeout=30) == 431
        assert client.wait_status(client.request("/", stack.token)) == 200
    finally:
        client.close()
    growth_mib = (rss_kib(stack.controller.pid) - before) / 1024
    assert growth_mib < 40, f"controller RSS grew by {growth_mib:.0f} MiB"
    assert len(logged(stack, "HTTP/2 header list too large", since)) == 10
    healthy(stack)


def test_header_list_over_the_limit_never_reaches_the_backend(stack: Stack) -> None:
    """A 240 KB header list in 3 KB on the wire, as found: refused before any backend sees it."""
    client = H2Client(stack.ca, stack.service_address)
    try:
        stream = client.request("/headers", stack.token, [("x-big", "c" * 3000)] * 80)
        assert client.wait_status(stream) == 431
    finally:
        client.close()


# -- 3. no stream outlives a malformed body ------------------------------------------------------------------------


def test_malformed_chunk_after_a_valid_head_cancels_its_tunnel_stream(stack: Stack) -> None:
    metrics = stack.controller.metrics_url + "/metrics"
    baseline = scrape(metrics)["porthole_streams_active"][()]
    agent_fds = open_fds(stack.agent.process.pid)
    for _ in range(100):
        sock = raw_tls(stack)
        try:
            sock.sendall(f"POST /sha256 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {stack.token}\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n".encode())
            time.sleep(0.005)
            sock.sendall(b"zz-not-a-chunk-size\r\n")
            answer = read_all(sock)
        finally:
            sock.close()
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    wait_until(lambda: scrape(metrics)["porthole_streams_active"][()] == baseline, 10,
               f"porthole_streams_active back to {baseline}")
    wait_until(lambda: open_fds(stack.agent.process.pid) <= agent_fds + 5, 10,
               f"the agent's descriptors back near {agent_fds}")
    healthy(stack)


# -- 5. the tunnel protocol is out of users' reach -----------------------------------------------------------------


@pytest.mark.parametrize("http_version", ["http1.1", "http2"])
def test_the_hello_path_from_a_user_goes_to_the_service_not_the_agent(stack: Stack, http_version: str) -> None:
    up_before = stack.agent.tunnels_up()
    if http_version == "http1.1":
        response = https_request(stack.service_address, client_context(stack.ca), "GET", "/.porthole/v1/hello",
                                 token=stack.token)
        status, body = response.status, response.body
    else:
        client = H2Client(stack.ca, stack.service_address)
        try:
            stream = client.request("/.porthole/v1/hello", stack.token)
            status = client.wait_status(stream)
            while not any(isinstance(e, h2.events.StreamEnded) and e.stream_id == stream for e in client.events):
                assert client.pump(1)
            body = b"".join(e.data for e in client.events
                            if isinstance(e, h2.events.DataReceived) and e.stream_id == stream)
        finally:
            client.close()
    assert status == 404 and b"backend: no route" in body, body
    assert b"protocolVersion" not in body
    assert stack.agent.tunnels_up() == up_before


# -- 6. a service's base path cannot be escaped --------------------------------------------------------------------


@pytest.mark.parametrize("target", ["-admin/x", "/../small", "/%2e%2e/small", "/a/..%2fsmall", "http://evil/x",
                                    "evil:443", "*"])
def test_targets_that_would_leave_the_service_are_refused(stack: Stack, target: str) -> None:
    since = len(stack.controller.logs)
    sock = raw_tls(stack)
    try:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {stack.token}\r\n\r\n".encode())
        answer = read_all(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"origin-form" in answer or b"segments" in answer
    wait_until(lambda: logged(stack, "request refused", since), 5, "the refusal to be logged")
    time.sleep(0.2)  # a second line, if any, would follow at once
    assert len(logged(stack, "request refused", since)) == 1


def test_dot_segments_over_http2_are_refused(stack: Stack) -> None:
    client = H2Client(stack.ca, stack.service_address)
    try:
        assert client.wait_status(client.request("/../small", stack.token)) == 400
        assert client.wait_status(client.request("/headers", stack.token)) == 200
    finally:
        client.close()


def test_a_base_path_is_joined_on_a_slash_boundary(ca: CA, backend: Backend, start_controller, tmp_path: Path) -> None:
    services = porthole.write_services_file(tmp_path / "services.json", backend)
    entries = json.loads(services.read_text())
    entries["services"][0]["url"] = backend.url + "/base"
    services.write_text(json.dumps(entries))
    controller = start_controller()
    agent = porthole.Agent(ca, controller, services, tmp_path)
    try:
        token = controller.control().service_token()["token"]
        response = https_request(controller.service_address, client_context(ca), "GET", "/headers?q=1", token=token)
        assert response.status == 200, response.body
        assert response.json()["target"] == "/base/headers?q=1"
    finally:
        agent.stop()


# -- 7. smaller: framing, Host, version, identity headers ----------------------------------------------------------


def send_raw(stack: Stack, head: str, body: bytes = b"") -> bytes:
    sock = raw_tls(stack)
    try:
        sock.sendall(head.encode() + body)
        return read_all(sock)
    finally:
        sock.close()


@pytest.mark.parametrize("lengths", ["Content-Length: 5, 5\r\n", "Content-Length: 5\r\nContent-Length: 5\r\n"])
def test_repeated_content_length_reaches_the_backend_once_with_its_body(stack: Stack, lengths: str) -> None:
    answer = send_raw(stack, f"POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {stack.token}\r\n{lengths}"
                             "Connection: close\r\n\r\n", b"hello")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer[:300]
    assert body == b"hello"
    answer = send_raw(stack, f"POST /headers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {stack.token}\r\n{lengths}"
                             "Connection: close\r\n\r\n", b"hello")
    seen = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert [v for n, v in seen["headerList"] if n.lower() == "content-length"] == ["5"]


@pytest.mark.parametrize("head, status", [
    ("GET / HTTP/1.1\r\n", 400),
    ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n", 400),
    ("GET / HTTP/1.2\r\nHost: a\r\n", 505),
], ids=["no-host", "two-hosts", "http-1.2"])
def test_host_and_version_rules(stack: Stack, head: str, status: int) -> None:
    answer = send_raw(stack, f"{head}Authorization: Bearer {stack.token}\r\n\r\n")
    assert answer.startswith(f"HTTP/1.1 {status}".encode()), answer[:200]


def test_identity_style_headers_never_reach_the_backend_and_forwarding_is_the_controllers(stack: Stack) -> None:
    claimed = {
        "X-Forwarded-User": "admin", "X-Forwarded-Groups": "system:masters", "X-Auth-Request-User": "admin",
        "X-Auth-Request-Email": "admin@example.com", "Remote-User": "admin", "X-Original-URL": "/admin",
        "X-Rewrite-URL": "/admin", "Impersonate_User": "admin", "X_Remote_User": "admin",
        "X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9", "X-Real-IP": "203.0.113.9",
        "X-Kept": "yes",
    }
    response = https_request(stack.service_address, client_context(stack.ca), "GET", "/headers", headers=claimed,
                             token=stack.token)
    assert response.status == 200, response.body
    seen = response.json()["headers"]
    for name in ("x-forwarded-user", "x-forwarded-groups", "x-auth-request-user", "x-auth-request-email",
                 "remote-user", "x-original-url", "x-rewrite-url", "impersonate_user", "x_remote_user", "x-real-ip"):
        assert name not in seen, f"{name} reached the backend: {seen}"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["forwarded"] == "for=127.0.0.1;proto=https"
    assert seen["x-kept"] == "yes"


def test_two_authorization_headers_are_refused_on_both_protocols(stack: Stack) -> None:
    answer = send_raw(stack, f"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {stack.token}\r\n"
                             f"Authorization: Bearer {stack.token}\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400") and b"more than one Authorization" in answer, answer[:300]
    client = H2Client(stack.ca, stack.service_address)
    try:
        stream = client.request("/", stack.token, [("authorization", f"Bearer {stack.token}")])
        assert client.wait_status(stream) == 400
    finally:
        client.close()


def test_fatal_http2_error_gets_a_readable_goaway_and_one_log_line(stack: Stack) -> None:
    since = len(stack.controller.logs)
    sock = raw_tls(stack, alpn="h2")
    try:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + b"\x00" * 64)
        answer = read_all(sock)
    finally:
        sock.close()
    index = answer.find(b"\x07\x00\x00\x00\x00\x00")  # type GOAWAY, no flags, stream 0
    assert index >= 3, answer[:200]
    length = int.from_bytes(answer[index - 3:index], "big")
    payload = answer[index + 6:index + 6 + length]
    assert int.from_bytes(payload[4:8], "big") == 1  # PROTOCOL_ERROR
    assert b"magic" in payload[8:].lower() or b"preface" in payload[8:].lower(), payload
    time.sleep(0.3)  # a second line, if any, comes right after the first
    lines = [entry for entry in stack.controller.logs[since:] if entry.get("level") in ("warning", "error")]
    assert len(lines) == 1, lines
    healthy(stack)
