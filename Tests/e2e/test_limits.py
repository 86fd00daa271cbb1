"""Resource limits on the service listener: head and idle timeouts, no accept spin when descriptors run out, and
a bound on the memory one HTTP/2 connection can pin. Each test runs its own controller with short limits."""

from __future__ import annotations

import os
import select
import socket
import ssl
import time
from pathlib import Path
from typing import Callable

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from porthole import (CA, Agent, Controller, ManagedProcess, binary, client_context, https_request, receive_exactly,
                      wait_until)

HEAD_TIMEOUT = 2.0
IDLE_TIMEOUT = 2.0
# Timers fire within 50 ms of their deadline; the rest is scheduling on 2 shared cores and Python's own loop.
MARGIN = 2.5


def start_stack(start_controller: Callable[..., Controller], start_agent: Callable[..., Agent],
                *controller_args: str) -> tuple[Controller, str]:
    controller = start_controller("--request-head-timeout", str(HEAD_TIMEOUT), "--idle-timeout", str(IDLE_TIMEOUT),
                                  *controller_args)
    start_agent(controller)
    token = controller.control().service_token(ttl=600)["token"]
    return controller, token


def connect_tls(controller: Controller, ca: CA, alpn: str = "http/1.1") -> ssl.SSLSocket:
    host, port = controller.service_address.rsplit(":", 1)
    return client_context(ca, alpn=(alpn,)).wrap_socket(socket.create_connection((host, int(port)), timeout=10),
                                                         server_hostname=host)


def healthy(controller: Controller, ca: CA, token: str) -> None:
    response = https_request(controller.service_address, client_context(ca), "GET", "/", token=token, timeout=10)
    assert response.status == 200, response.body


def wait_closed(sock: ssl.SSLSocket, timeout: float) -> bytes:
    """Reads until the server closes (EOF or reset) and returns what it sent; fails after `timeout`."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionError, ssl.SSLError):
        pass
    except socket.timeout:
        raise AssertionError(f"the connection was still open after {timeout:.1f}s") from None
    return received


def read_http1_response(sock: ssl.SSLSocket) -> tuple[bytes, bytes]:
    """One response with a Content-Length body: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return head, receive_exactly(sock, length, body)


# -- timeouts ---------------------------------------------------------------------------------------------------


def test_slowloris_heads_are_closed_within_the_head_timeout_while_others_are_served(
        ca: CA, start_controller: Callable[..., Controller], start_agent: Callable[..., Agent]) -> None:
    controller, token = start_stack(start_controller, start_agent)
    count = 200
    sockets: dict[ssl.SSLSocket, float] = {}
    try:
        for _ in range(count):
            sock = connect_tls(controller, ca)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: ")
            sock.setblocking(False)
            sockets[sock] = time.monotonic()
        # One header byte per connection every 0.3 s, as slowloris does, until the server closes each one.
        open_socks = dict(sockets)
        closed_after: list[float] = []
        statuses: list[bytes] = []
        deadline = time.monotonic() + HEAD_TIMEOUT + MARGIN + 5
        next_drip = time.monotonic()
        normal_checked = False
        while open_socks and time.monotonic() < deadline:
            if time.monotonic() >= next_drip:
                for sock in list(open_socks):
                    try:
                        sock.send(b"a")
                    except (ConnectionError, ssl.SSLError, BlockingIOError, ssl.SSLWantWriteError):
                        pass
                next_drip = time.monotonic() + 0.3
            readable, _, _ = select.select(list(open_socks), [], [], 0.05)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                except (ConnectionError, ssl.SSLError):
                    data = b""
                if data:
                    statuses.append(data.split(b"\r\n", 1)[0])
                    continue
                closed_after.append(time.monotonic() - open_socks.pop(sock))
            if not normal_checked and time.monotonic() - min(sockets.values()) > HEAD_TIMEOUT / 2:
                # Meanwhile an ordinary request on a new connection is answered.
                healthy(controller, ca, token)
                normal_checked = True
        assert not open_socks, f"{len(open_socks)} of {count} slowloris connections still open"
        assert normal_checked
        # None closed early (a slow head is not cut before its time), none late.
        assert min(closed_after) >= HEAD_TIMEOUT - 0.2, min(closed_after)
        assert max(closed_after) <= HEAD_TIMEOUT + MARGIN, max(closed_after)
        assert all(status.startswith(b"HTTP/1.1 408") for status in statuses), set(statuses)
        healthy(controller, ca, token)
    finally:
        for sock in sockets:
            sock.close()


def test_a_connection_that_never_finishes_its_tls_handshake_is_closed(
        start_controller: Callable[..., Controller], start_agent: Callable[..., Agent]) -> None:
    controller, _ = start_stack(start_controller, start_agent)
    host, port = controller.service_address.rsplit(":", 1)
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=HEAD_TIMEOUT + MARGIN) as sock:
        sock.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, and no more
        try:
            assert sock.recv(1024) == b""
        except ConnectionError:
            pass
    assert HEAD_TIMEOUT - 0.2 <= time.monotonic() - started <= HEAD_TIMEOUT + MARGIN


def test_idle_keep_alive_connection_is_closed_after_the_idle_timeout(
        ca: CA, start_controller: Callable[..., Controller], start_agent: Callable[..., Agent]) -> None:
    controller, token = start_stack(start_controller, start_agent)
    sock = connect_tls(controller, ca)
    try:
        for _ in range(2):  # a second request on the same connection shows it was kept alive
            sock.sendall(f"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
            head, _ = read_http1_response(sock)
            assert head.startswith(b"HTTP/1.1 200"), head
        idle_from = time.monotonic()
        assert wait_closed(sock, IDLE_TIMEOUT + MARGIN) == b""
        assert time.monotonic() - idle_from >= IDLE_TIMEOUT - 0.2
    finally:
        sock.close()


def h2_connect(controller: Controller, ca: CA) -> tuple[ssl.SSLSocket, h2.connection.H2Connection, dict]:
    """An HTTP/2 client connection past the settings exchange; returns the server's settings too."""
    sock = connect_tls(controller, ca, alpn="h2")
    assert sock.selected_alpn_protocol() == "h2"
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    connection.initiate_connection()
    sock.sendall(connection.data_to_send())
    settings: dict = {}
    while h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS not in settings:
        data = sock.recv(65536)
        assert data, "closed during the settings exchange"
        for event in connection.receive_data(data):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                settings.update({code: change.new_value for code, change in event.changed_settings.items()})
        sock.sendall(connection.data_to_send())
    return sock, connection, settings


def h2_headers(token: str, path: str, method: str = "GET") -> list[tuple[str, str]]:
    return [(":method", method), (":scheme", "https"), (":authority", "porthole"), (":path", path),
            ("authorization", f"Bearer {token}")]


def h2_get(sock: ssl.SSLSocket, connection: h2.connection.H2Connection, token: str, path: str) -> tuple[int, bytes]:
    stream_id = connection.get_next_available_stream_id()
    connection.send_headers(stream_id, h2_headers(token, path), end_stream=True)
    sock.sendall(connection.data_to_send())
    status, body = 0, b""
    while True:
        data = sock.recv(65536)
        assert data, "closed mid-response"
        for event in connection.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                status = int(dict(event.headers)[":status"])
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                body += event.data
                connection.acknowledge_received_data(event.flow_controlled_length, stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                sock.sendall(connection.data_to_send())
                return status, body
        sock.sendall(connection.data_to_send())


def test_idle_http2_connection_gets_goaway_then_is_closed(
        ca: CA, start_controller: Callable[..., Controller], start_agent: Callable[..., Agent]) -> None:
    controller, token = start_stack(start_controller, start_agent)
    sock, connection, settings = h2_connect(controller, ca)
    try:
        assert settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 128
        status, _ = h2_get(sock, connection, token, "/")
        assert status == 200
        idle_from = time.monotonic()
        received = wait_closed(sock, IDLE_TIMEOUT + MARGIN)
        idle_for = time.monotonic() - idle_from
        events = connection.receive_data(received) if received else []
        assert any(isinstance(event, h2.events.ConnectionTerminated) and event.error_code == 0 for event in events), \
            events
        assert idle_for >= IDLE_TIMEOUT - 0.2, idle_for
    finally:
        sock.close()


def test_long_streams_and_slow_bodies_outlive_the_timeouts(
        ca: CA, start_controller: Callable[..., Controller], start_agent: Callable[..., Agent]) -> None:
    controller, token = start_stack(start_controller, start_agent)
    pieces, delay = 10, 0.5  # 5 s: more than the head and idle timeouts put together
    # HTTP/1.1: a chunked response trickling for 5 s.
    response = https_request(controller.service_address, client_context(ca), "GET",
                             f"/pieces?count={pieces}&delay={delay}", token=token, timeout=30)
    assert response.status == 200 and response.body.count(b"piece ") == pieces
    # HTTP/2: the same on a connection with one stream open and nothing else.
    sock, connection, _ = h2_connect(controller, ca)
    try:
        status, body = h2_get(sock, connection, token, f"/pieces?count={pieces}&delay={delay}")
        assert status == 200 and body.count(b"piece ") == pieces
    finally:
        sock.close()
    # HTTP/1.1: a request body dribbled over 5 s, after its head came in time.
    sock = connect_tls(controller, ca)
    try:
        body = b"x" * pieces
        sock.sendall(f"POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode())
        for index in range(pieces):
            time.sleep(delay)  # the point of the test: a body slower than every timeout
            sock.sendall(body[index:index + 1])
        head, echoed = read_http1_response(sock)
        assert head.startswith(b"HTTP/1.1 200") and echoed == body, head
    finally:
        sock.close()


# -- descriptors --------------------------------------------------------------------------------------------------


class LimitedController(Controller):
    """A controller started under `prlimit --nofile=N:N`, so the soft and hard limits are both N."""

    def __init__(self, ca: CA, log_dir: Path, soft: int, hard: int, extra_args: tuple[str, ...] = ()) -> None:
        self.soft, self.hard = soft, hard
        super().__init__(ca, log_dir, extra_args, name="controller-limited")

    def _start(self) -> None:
        real_binary = binary("porthole-controller")
        argv = ["prlimit", f"--nofile={self.soft}:{self.hard}", "--", real_binary,
                "--ca-cert", str(self.ca.cert), "--ca-key", str(self.ca.key), "--server-name", "127.0.0.1"]
        for listener, address in self.addresses.items():
            argv += [f"--{listener}-listen", address]
        argv += self.extra_args
        self.process = ManagedProcess(self.name, argv, self.log_dir)
        try:
            for listener in self.addresses:
                self.addresses[listener] = self.process.wait_for_logs("listening", listener=listener)[-1]["address"]
        except Exception:
            self.process.stop()
            raise


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one(ca: CA, tmp_path: Path) -> None:
    controller = LimitedController(ca, tmp_path, soft=64, hard=4096)
    try:
        limit = controller.process.wait_for_logs("descriptor limit")[-1]
        assert (limit["before"], limit["soft"], limit["hard"]) == ("64", "4096", "4096"), limit
        soft, hard = Path(f"/proc/{controller.pid}/limits").read_text().split("Max open files")[1].split()[:2]
        assert (soft, hard) == ("4096", "4096")
    finally:
        controller.stop()


def accept_failures(controller: Controller) -> list[dict]:
    return [entry for entry in controller.logs if str(entry.get("msg", "")).startswith("accept failed")]


def test_running_out_of_descriptors_pauses_accepting_without_spinning(
        ca: CA, tmp_path: Path, start_agent: Callable[..., Agent]) -> None:
    # The head timeout is long so that the flood keeps its descriptors for the whole measurement.
    controller = LimitedController(ca, tmp_path, soft=64, hard=64, extra_args=("--request-head-timeout", "60"))
    flood: list[socket.socket] = []
    try:
        start_agent(controller)
        token = controller.control().service_token(ttl=600)["token"]
        healthy(controller, ca, token)
        host, port = controller.service_address.rsplit(":", 1)
        for _ in range(100):  # the kernel completes these handshakes itself; the controller runs out at ~50
            flood.append(socket.create_connection((host, int(port)), timeout=10))
        wait_until(lambda: accept_failures(controller), 10, "an accept failure to be logged")
        cpu_before, measured_from = cpu_seconds(controller.pid), time.monotonic()
        time.sleep(3)  # the measurement window: CPU used while out of descriptors
        cpu_used = cpu_seconds(controller.pid) - cpu_before
        window = time.monotonic() - measured_from
        lines = accept_failures(controller)
        print(f"{cpu_used:.2f}s CPU in {window:.1f}s, {len(lines)} accept-failure lines")
        assert cpu_used < 0.3 * window, f"{cpu_used:.2f}s CPU in {window:.1f}s, {len(lines)} log lines"
        # One line per 10 s interval, each with the count it stands for.
        assert 1 <= len(lines) <= 2, len(lines)
        assert all(int(line["count"]) >= 1 for line in lines)
        for sock in flood:
            sock.close()
        flood.clear()
        # Descriptors come back as the controller sees the flood go; the listener resumes within its pause.
        wait_until(lambda: controller.process.log_entries("listener accepting again"), 15,
                   "the listener to accept again")
        healthy(controller, ca, token)
    finally:
        for sock in flood:
            sock.close()
        controller.stop()


# -- memory -------------------------------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_stalled_uploads_on_one_http2_connection_pin_a_bounded_amount_of_memory(
        ca: CA, tmp_path: Path, start_controller: Callable[..., Controller],
        start_agent: Callable[..., Agent]) -> None:
    """120 streams each upload to a backend that never reads (GET /hold ignores its body). Without a connection
    window the controller held a full stream window per stream; with it, at most the connection window in all.

    Windows are scaled down so the test moves ~150 MiB, not gigabytes: 1 MiB per user stream (120 MiB in all
    before the fix), 64 KiB per tunnel stream at the agent, and a 4 MiB connection window."""
    streams, stream_window, window = 120, 1 << 20, 4 << 20
    controller_config = tmp_path / "controller-windows.json"
    controller_config.write_text(f'{{"streamWindowBytes": {stream_window}}}')
    agent_config = tmp_path / "agent-windows.json"
    agent_config.write_text('{"streamWindowBytes": 65535}')
    controller = start_controller("--config", str(controller_config), "--user-connection-window", str(window))
    start_agent(controller, "--config", str(agent_config))
    token = controller.control().service_token(ttl=600)["token"]
    per_stream = 2 * stream_window  # more than either window lets through: the client stalls, not the test
    sock, connection, settings = h2_connect(controller, ca)
    try:
        baseline = rss_bytes(controller.pid)
        ids = []
        for index in range(streams):
            stream_id = connection.get_next_available_stream_id()
            headers = h2_headers(token, f"/hold?id=mem-{os.getpid()}-{index}")
            connection.send_headers(stream_id, headers + [("content-type", "application/octet-stream")])
            ids.append(stream_id)
        sock.sendall(connection.data_to_send())
        # Push body bytes on every stream for as long as flow control lets us, up to 8 MiB per stream.
        chunk = b"\0" * 16384
        sent = {stream_id: 0 for stream_id in ids}
        sock.setblocking(False)
        deadline = time.monotonic() + 20
        last_progress = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_progress < 2:
            progressed = False
            for stream_id in ids:
                allowed = min(connection.local_flow_control_window(stream_id), connection.max_outbound_frame_size)
                if allowed >= len(chunk) and sent[stream_id] < per_stream:
                    connection.send_data(stream_id, chunk)
                    sent[stream_id] += len(chunk)
                    progressed = True
            out = connection.data_to_send()
            if out:
                sock.setblocking(True)
                sock.sendall(out)
                sock.setblocking(False)
            try:
                data = sock.recv(65536)
                if data:
                    connection.receive_data(data)
                    progressed = True
            except (ssl.SSLWantReadError, BlockingIOError):
                pass
            if progressed:
                last_progress = time.monotonic()
            else:
                time.sleep(0.05)  # flow control is closed; wait for a WINDOW_UPDATE or the end of progress
        total_sent = sum(sent.values())
        growth = rss_bytes(controller.pid) - baseline
        print(f"sent {total_sent >> 20} MiB on {streams} streams; controller RSS grew {growth >> 20} MiB")
        # The controller holds at most the connection window of request bytes, plus buffers and stream state;
        # before the fix it held a stream window per stream (streams * stream_window = 120 MiB).
        assert total_sent > 0
        assert growth < window + (32 << 20), f"RSS grew {growth >> 20} MiB"
        # ... and the connection is still usable.
        assert settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 128
    finally:
        sock.close()
