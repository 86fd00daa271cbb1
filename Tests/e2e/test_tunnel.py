"""The tunnel works: requests, bodies and streams get through unchanged, concurrently, without head-of-line blocking,
with cancellation both ways and recovery when the agent comes back."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
import statistics
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs

import pytest

import porthole
from porthole import AGENT_NAME, Response, Stack, client_context, curl, curl_args, https_request, kubectl, wait_until

MiB = 1024 * 1024
HTTP_VERSIONS = ["--http2", "--http1.1"]


def service_get(stack: Stack, path: str, token: str | None = None, timeout: float = 30.0) -> Response:
    return https_request(stack.service_address, client_context(stack.ca), "GET", path,
                         token=token if token is not None else stack.token, timeout=timeout)


def binary_body(size: int, label: str) -> bytes:
    """Every byte value, CR/LF and NULs included, then deterministic filler: nothing a text path would survive."""
    head = bytes(range(256)) + b"\r\n\r\n\x00" + label.encode()
    return (head + b"".join(porthole.deterministic_chunks(size, label)))[:size]


def assert_backend_saw_agent_credentials(seen: dict, stack: Stack, user_secret: str | None = None) -> None:
    assert seen["headers"].get("authorization") == f"Bearer {stack.backend.token}", seen["headers"]
    authorization_headers = [value for name, value in seen["headerList"] if name.lower() == "authorization"]
    assert len(authorization_headers) == 1, seen["headerList"]
    if user_secret:
        leaked = [(name, value) for name, value in seen["headerList"] if user_secret in value]
        assert not leaked, f"the user's credential reached the backend: {leaked}"


# -- plain requests -----------------------------------------------------------------------------------------------


def test_issued_kubeconfig_points_at_the_service_listener(stack: Stack) -> None:
    assert stack.kubeconfig.server.rstrip("/") == stack.service_url


def test_kubectl_get_raw_reaches_backend_with_agent_credentials(stack: Stack) -> None:
    result = kubectl(stack.kubeconfig, "get", "--raw", "/headers?labelSelector=app%3Ddemo&limit=5")
    assert result.returncode == 0, result.stderr.decode()
    seen = json.loads(result.stdout)
    assert seen["method"] == "GET"
    assert seen["path"] == "/headers"
    assert parse_qs(seen["query"]) == {"labelSelector": ["app=demo"], "limit": ["5"]}
    assert_backend_saw_agent_credentials(seen, stack)


def test_kubectl_create_raw_posts_body_byte_identical(stack: Stack, tmp_path: Path) -> None:
    body = binary_body(300_000, "kubectl-post")
    source = tmp_path / "body.bin"
    source.write_bytes(body)
    result = kubectl(stack.kubeconfig, "create", "--raw", "/echo", "-f", str(source))
    assert result.returncode == 0, result.stderr.decode()
    assert len(result.stdout) == len(body)
    assert result.stdout == body


@pytest.mark.parametrize("http_version", HTTP_VERSIONS)
def test_curl_with_service_token_get_and_post(stack: Stack, tmp_path: Path, http_version: str) -> None:
    result = curl(stack.ca, f"{stack.service_url}/headers", "--fail-with-body", token=stack.token,
                  http_version=http_version)
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    seen = json.loads(result.stdout)
    assert_backend_saw_agent_credentials(seen, stack, user_secret=stack.token)

    body = binary_body(1 * MiB + 17, f"curl-post{http_version}")
    source, received = tmp_path / "body.bin", tmp_path / "echoed.bin"
    source.write_bytes(body)
    result = curl(stack.ca, f"{stack.service_url}/echo", "--fail-with-body", "--data-binary", f"@{source}",
                  "-H", "Content-Type: application/x-porthole-test", "-o", str(received), "-D", "-",
                  token=stack.token, http_version=http_version)
    assert result.returncode == 0, result.stderr.decode()
    assert b"content-type: application/x-porthole-test" in result.stdout.lower()
    assert received.read_bytes() == body


def test_path_and_query_forwarded_unchanged(stack: Stack) -> None:
    target = "/headers?a=1&b=%2F%20x&c=%E2%9C%93&empty=&a=2"
    response = service_get(stack, target)
    assert response.status == 200, response.body
    assert response.json()["target"] == target


def test_hop_by_hop_and_user_credentials_not_forwarded(stack: Stack) -> None:
    headers = {
        "Connection": "keep-alive, X-Hop-Custom",
        "X-Hop-Custom": "hop-value",
        "Keep-Alive": "timeout=5",
        "Proxy-Connection": "keep-alive",
        "Proxy-Authorization": "Basic dXNlcjpwcm94eS1zZWNyZXQ=",
        "X-End-To-End": "kept",
    }
    response = https_request(stack.service_address, client_context(stack.ca), "GET", "/headers", headers=headers,
                             token=stack.token)
    assert response.status == 200, response.body
    seen = response.json()
    assert seen["headers"].get("x-end-to-end") == "kept"
    for name in ("x-hop-custom", "keep-alive", "proxy-connection", "proxy-authorization"):
        assert name not in seen["headers"], f"{name} reached the backend: {seen['headers']}"
    assert_backend_saw_agent_credentials(seen, stack, user_secret=stack.token)


def test_metrics_listener_serves_health_and_metrics(stack: Stack) -> None:
    host, port = stack.controller.addresses["metrics"].rsplit(":", 1)
    for path in ("/healthz", "/readyz", "/metrics"):
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        assert response.status == 200, f"{path}: {response.status} {body[:200]!r}"
        if path == "/metrics":
            assert b"# TYPE " in body, body[:500]


# -- big bodies ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_upload_256_mib_streams_intact(stack: Stack) -> None:
    size, seed = 256 * MiB, "upload-256"
    expected = hashlib.sha256()
    process = subprocess.Popen([*curl_args(stack.ca, stack.token), "--fail-with-body", "-X", "POST", "-T", "-",
                                f"{stack.service_url}/sha256"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        for piece in porthole.deterministic_chunks(size, seed):
            expected.update(piece)
            try:
                process.stdin.write(piece)
            except BrokenPipeError:
                break  # curl gave up; its exit status and stderr say why
        out, err = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, err.decode() + out.decode()
    assert json.loads(out) == {"sha256": expected.hexdigest(), "bytes": size}


@pytest.mark.slow
def test_download_256_mib_streams_intact(stack: Stack) -> None:
    size, seed = 256 * MiB, "download-256"
    digest, received = hashlib.sha256(), 0
    process = subprocess.Popen([*curl_args(stack.ca, stack.token), "--fail", "-o", "-",
                                f"{stack.service_url}/bytes?n={size}&seed={seed}"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        while piece := process.stdout.read(MiB):
            digest.update(piece)
            received += len(piece)
        process.wait(600)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, process.stderr.read().decode()
    assert received == size
    assert digest.hexdigest() == porthole.deterministic_sha256(size, seed)


# -- streaming ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("http_version", HTTP_VERSIONS)
def test_response_pieces_arrive_as_the_backend_writes_them(stack: Stack, http_version: str) -> None:
    count, delay = 5, 0.6
    started = time.monotonic()
    process = subprocess.Popen([*curl_args(stack.ca, stack.token, http_version), "--no-buffer", "--fail",
                                f"{stack.service_url}/pieces?count={count}&delay={delay}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        arrivals = []
        for _ in range(count):
            line = process.stdout.readline()
            arrivals.append((time.monotonic() - started, line))
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, process.stderr.read().decode()
    assert [line for _, line in arrivals] == [b"piece %d\n" % i for i in range(count)]
    first, last = arrivals[0][0], arrivals[-1][0]
    assert first < 1.0, f"first piece took {first:.2f}s: the response was buffered"
    assert last >= (count - 1) * delay, f"all pieces within {last:.2f}s: the backend did not pace them"
    assert last - first >= (count - 1) * delay * 0.8, f"pieces arrived together: {arrivals}"


# -- concurrency --------------------------------------------------------------------------------------------------


def test_200_concurrent_requests_over_one_tunnel(stack: Stack) -> None:
    count = 200
    tunnels_before = stack.agent.tunnels_up()
    barrier = threading.Barrier(count, timeout=60)
    context = client_context(stack.ca)
    host, port = stack.service_address.rsplit(":", 1)

    def one(index: int) -> tuple[int, bool, str]:
        body = binary_body(4096 + index * 37, f"concurrent-{index}")
        connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=60)
        try:
            try:
                connection.connect()
            except BaseException:
                barrier.abort()  # release the others at once instead of after the barrier's timeout
                raise
            barrier.wait()
            connection.request("POST", "/echo", body=body, headers={"Authorization": f"Bearer {stack.token}"})
            response = connection.getresponse()
            data = response.read()
            return response.status, data == body, data[:200].decode("latin-1")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(one, range(count)))
    failures = [(index, status, detail) for index, (status, ok, detail) in enumerate(results)
                if status != 200 or not ok]
    assert not failures, f"{len(failures)} of {count} failed, e.g. {failures[:5]}"
    assert stack.agent.tunnels_up() == tunnels_before, "the agent reconnected during the test"
    assert len(stack.control.sessions(AGENT_NAME)) == 1


def test_200_concurrent_streams_multiplexed_on_one_http2_connection(stack: Stack, tmp_path: Path) -> None:
    count = 200
    args = [porthole.curl_path(), "--parallel", "--parallel-max", str(count)]
    bodies = []
    for index in range(count):
        body = binary_body(2048 + index, f"h2-{index}")
        bodies.append(body)
        (tmp_path / f"in-{index}").write_bytes(body)
        if index:
            args.append("--next")
        args += [*curl_args(stack.ca, stack.token)[1:], "--fail", "--data-binary", f"@{tmp_path / f'in-{index}'}",
                 "-o", str(tmp_path / f"out-{index}"), f"{stack.service_url}/echo"]
    result = subprocess.run(args, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    wrong = [index for index in range(count) if (tmp_path / f"out-{index}").read_bytes() != bodies[index]]
    assert not wrong, f"bodies differ for requests {wrong[:10]}"


# -- backend keep-alive -------------------------------------------------------------------------------------------


def backend_connections(controller: porthole.Controller, token: str, rounds: int, concurrency: int,
                        delay: float = 0.0) -> list[dict]:
    """`rounds` rounds of `concurrency` overlapping GET /connection through the tunnel; every answer."""
    context = client_context(controller.ca)

    def one(_: int) -> dict:
        response = https_request(controller.service_address, context, "GET", f"/connection?delay={delay}",
                                 token=token, timeout=30)
        assert response.status == 200, response.body
        return response.json()

    answers: list[dict] = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in range(rounds):
            answers += list(pool.map(one, range(concurrency)))
    return answers


def test_sequential_requests_share_one_backend_connection(start_controller, start_agent) -> None:
    controller = start_controller()
    start_agent(controller)
    token = controller.control().service_token()["token"]
    answers = backend_connections(controller, token, rounds=20, concurrency=1)
    assert len({answer["port"] for answer in answers}) == 1, answers
    assert [answer["requests"] for answer in answers] == list(range(1, 21))


def test_overlapping_requests_keep_their_backend_connections(start_controller, start_agent) -> None:
    # 64 at a time, three times: each round finds the previous round's connections idle in the pool; a pool
    # capped below 64 would dial (and TLS-handshake) the difference again every round.
    controller = start_controller()
    start_agent(controller)
    token = controller.control().service_token()["token"]
    answers = backend_connections(controller, token, rounds=3, concurrency=64, delay=0.2)
    ports = {answer["port"] for answer in answers}
    assert len(ports) <= 64, f"{len(ports)} backend connections for 64 concurrent requests"
    assert max(answer["requests"] for answer in answers) >= 3


def test_max_idle_connections_zero_closes_each_backend_connection(ca, backend, start_controller, tmp_path) -> None:
    controller = start_controller()
    services = porthole.write_services_file(tmp_path / "services.json", backend, maxIdleConnections=0)
    agent = porthole.Agent(ca, controller, services, tmp_path)
    try:
        token = controller.control().service_token()["token"]
        answers = backend_connections(controller, token, rounds=5, concurrency=1)
    finally:
        agent.stop()
    assert len({answer["port"] for answer in answers}) == 5, answers
    assert {answer["requests"] for answer in answers} == {1}


def test_concurrent_slow_requests_overlap(stack: Stack) -> None:
    count, delay = 50, 1.0
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=count) as pool:
        statuses = list(pool.map(lambda _: service_get(stack, f"/slow?delay={delay}").status, range(count)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * count
    assert elapsed < 5 * delay, f"{count} requests of {delay}s took {elapsed:.1f}s: they were not concurrent"


# -- flow control: a stalled reader stalls only its own stream ----------------------------------------------------


class StalledHTTP1Reader:
    """A TLS socket that asks for a huge body, reads the head, and then reads nothing more."""

    def __init__(self, stack: Stack, path: str) -> None:
        host, port = stack.service_address.rsplit(":", 1)
        raw = socket.create_connection((host, int(port)), timeout=10)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self.sock = client_context(stack.ca).wrap_socket(raw, server_hostname=host)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {stack.service_address}\r\n"
                          f"Authorization: Bearer {stack.token}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.sock.recv(16384)
            assert data, f"connection closed before the response head: {head!r}"
            head += data
        assert head.startswith(b"HTTP/1.1 200"), head[:300]

    def read_more(self, count: int) -> int:
        received = 0
        while received < count:
            data = self.sock.recv(min(count - received, 65536))
            if not data:
                break
            received += len(data)
        return received

    def close(self) -> None:
        self.sock.close()


class StalledHTTP2Reader:
    """curl over HTTP/2 writing into a pipe nobody reads: once the pipe is full curl stops reading its stream."""

    def __init__(self, stack: Stack, path: str) -> None:
        self.process = subprocess.Popen([*curl_args(stack.ca, stack.token), "--no-buffer", "-o", "-",
                                         f"{stack.service_url}{path}"], stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)

    def read_more(self, count: int) -> int:
        assert self.process.poll() is None, f"curl exited with {self.process.returncode}"
        received = 0
        while received < count:
            data = self.process.stdout.read1(min(count - received, 65536))
            if not data:
                break
            received += len(data)
        return received

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self.process.stdout.close()


@pytest.mark.parametrize("reader", [StalledHTTP1Reader, StalledHTTP2Reader], ids=["http1.1", "http2"])
def test_stalled_stream_does_not_block_other_streams(stack: Stack, reader: type) -> None:
    size, stream_id = 512 * MiB, f"stall-{uuid.uuid4().hex[:8]}"
    stalled = reader(stack, f"/bytes?n={size}&seed=stall&id={stream_id}")
    try:
        # The backend blocks once every buffer between it and the stalled reader is full.
        written = wait_for_backend_to_block(stack, stream_id, timeout=30)
        assert written < size
        assert written < 128 * MiB, (f"{written / MiB:.0f} MiB buffered for one stalled stream: "
                                     "flow control is not end to end")

        latencies = []
        for _ in range(20):
            response = service_get(stack, "/", timeout=10)
            assert response.status == 200, response.body
            latencies.append(response.elapsed)
        assert statistics.median(latencies) < 0.5, f"latencies behind a stalled stream: {latencies}"
        assert max(latencies) < 2.0, f"latencies behind a stalled stream: {latencies}"

        assert stack.backend.get_json(f"/progress?id={stream_id}")["done"] is False, "the stalled stream was dropped"
        assert stalled.read_more(MiB) == MiB, "the stalled stream did not resume when read"
    finally:
        stalled.close()
    # Going away cancels the stream all the way to the backend.
    wait_until(lambda: stack.backend.get_json(f"/progress?id={stream_id}")["done"], 10,
               "the backend to see the stalled stream cancelled")


def wait_for_backend_to_block(stack: Stack, stream_id: str, timeout: float, still_for: float = 1.0) -> int:
    """Polls the backend's progress on /bytes until it has not moved for `still_for` seconds; returns bytes written."""
    deadline = time.monotonic() + timeout
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        state = stack.backend.get_json(f"/progress?id={stream_id}")
        assert not state["done"], f"the stalled stream ended: {state}"
        now = time.monotonic()
        if state["written"] != last:
            last, last_change = state["written"], now
        elif last > 0 and now - last_change >= still_for:
            return last
        time.sleep(0.1)
    raise AssertionError(f"the backend never blocked (still writing after {timeout}s, at {last} bytes)")


# -- cancellation -------------------------------------------------------------------------------------------------


def hold_with_socket(stack: Stack, hold_id: str) -> ssl.SSLSocket:
    host, port = stack.service_address.rsplit(":", 1)
    sock = client_context(stack.ca).wrap_socket(socket.create_connection((host, int(port)), timeout=10),
                                                server_hostname=host)
    sock.sendall(f"GET /hold?id={hold_id} HTTP/1.1\r\nHost: {stack.service_address}\r\n"
                 f"Authorization: Bearer {stack.token}\r\n\r\n".encode())
    received = b""
    while f"held {hold_id}".encode() not in received:
        data = sock.recv(4096)
        assert data, f"closed before the first piece: {received!r}"
        received += data
    return sock


@pytest.mark.parametrize("http_version", ["http1.1", "http2"])
def test_client_disconnect_closes_backend_connection(stack: Stack, http_version: str) -> None:
    hold_id = f"hold-{http_version}-{uuid.uuid4().hex[:8]}"
    if http_version == "http1.1":
        sock = hold_with_socket(stack, hold_id)
        assert stack.backend.get_json(f"/closed?id={hold_id}") == {"started": True, "closed": False,
                                                                     "closedAt": None}
        sock.close()
    else:
        process = subprocess.Popen([*curl_args(stack.ca, stack.token), "--no-buffer",
                                    f"{stack.service_url}/hold?id={hold_id}"], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL)
        try:
            assert process.stdout.readline() == f"held {hold_id}\n".encode()
            assert stack.backend.get_json(f"/closed?id={hold_id}")["closed"] is False
        finally:
            process.kill()
            process.wait(10)
            process.stdout.close()
    wait_until(lambda: stack.backend.get_json(f"/closed?id={hold_id}")["closed"], 10,
               "the backend to notice that the client went away")


# -- agent and controller restarts (own processes, so the shared tunnel is untouched) -----------------------------


def test_agent_killed_gives_fast_503_and_restart_recovers(start_controller, start_agent) -> None:
    controller = start_controller()
    agent = start_agent(controller)
    control = controller.control()
    token = control.service_token()["token"]
    context = client_context(controller.ca)

    def get(path: str = "/", timeout: float = 5.0) -> Response:
        return https_request(controller.service_address, context, "GET", path, token=token, timeout=timeout)

    assert get().status == 200

    agent.kill()
    killed = time.monotonic()
    first_503 = wait_until(lambda: (response := get(timeout=2)).status == 503 and response, 2.0,
                           "a 503 within 2s of the agent dying", interval=0.02)
    assert time.monotonic() - killed < 2.0
    assert AGENT_NAME in first_503.error(), first_503.body
    response = get(timeout=2)
    assert response.status == 503 and response.elapsed < 2.0, (response.status, response.elapsed)

    controller_pid = controller.pid
    agent.restart()
    response = get()
    assert response.status == 200, response.body
    assert response.json() == {"hello": "porthole demo backend"}
    assert controller.pid == controller_pid and controller.process.is_running()


def test_agent_reconnects_after_controller_restart(start_controller, start_agent) -> None:
    controller = start_controller()
    agent = start_agent(controller)
    controller.restart()
    agent.wait_tunnel_up(2, registered_before=0, timeout=60)
    token = controller.control().service_token()["token"]
    response = https_request(controller.service_address, client_context(controller.ca), "GET", "/", token=token)
    assert response.status == 200, response.body
    assert agent.process.is_running()
