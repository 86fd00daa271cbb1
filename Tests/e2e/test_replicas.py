"""Controller replicas behind one load-balanced name, and tunnels replaced when their session sends GOAWAY.

- Three controllers behind one HAProxy in TCP round-robin mode; the agent is given only HAProxy's address and
  must hold a tunnel to each replica (Konnectivity's `serverCount` pattern), and get back to three after one is
  restarted.
- The agent's tunnel-side nghttp2 stream-reset guard set very low (a test-only environment knob): a client's
  cancellation storm makes the agent's session send GOAWAY, and the agent must replace the tunnel at once
  (make-before-break) so that ordinary requests see at most a brief window of errors.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import h2.config
import h2.connection
import h2.events
import pytest
from prometheus_client.parser import text_string_to_metric_families

from porthole import (AGENT_NAME, CA, Controller, HarnessError, ManagedProcess, binary, client_context,
                      free_port, https_request, wait_until)


def scrape(url: str) -> dict[str, float]:
    """Unlabelled samples of /metrics by name."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {sample.name: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if not sample.labels}


def start_agent(ca: CA, services_file: Path, log_dir: Path, controller_address: str, metrics_port: int,
                *extra_args: str, env: dict[str, str] | None = None) -> ManagedProcess:
    argv = [binary("porthole-agent"), "--controller", controller_address, "--cert", str(ca.agent_cert()),
            "--key", str(ca.agent_key()), "--ca-cert", str(ca.cert), "--services", str(services_file),
            "--metrics-listen", f"127.0.0.1:{metrics_port}", "--reconnect-min", "0.1", "--reconnect-max", "0.5",
            *extra_args]
    return ManagedProcess("agent", argv, log_dir, env=env)


class HAProxy:
    """haproxy in the foreground, TCP mode, round robin over `servers`; its config in a tmp dir."""

    def __init__(self, servers: list[str], directory: Path) -> None:
        if not shutil.which("haproxy"):
            raise HarnessError("haproxy not found: `make deps` installs it")
        self.address = f"127.0.0.1:{free_port()}"
        lines = [
            "global", "    maxconn 1000",
            "defaults", "    mode tcp", "    timeout connect 1s", "    timeout client 1h", "    timeout server 1h",
            "    retries 1", "    option redispatch",
            "frontend agents", f"    bind {self.address}", "    default_backend controllers",
            "backend controllers", "    balance roundrobin",
        ] + [f"    server controller-{index + 1} {server}" for index, server in enumerate(servers)]
        config = directory / "haproxy.cfg"
        config.write_text("\n".join(lines) + "\n")
        self.process = ManagedProcess("haproxy", ["haproxy", "-db", "-f", str(config)], directory)
        host, port = self.address.rsplit(":", 1)

        def accepts() -> bool:
            with socket.create_connection((host, int(port)), timeout=1):
                return True
        wait_until(accepts, 10, f"haproxy accepting on {self.address}")

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[list[HAProxy]]:
    started: list[HAProxy] = []
    yield started
    for proxy in started:
        proxy.stop()


def sessions_per_controller(controllers: list[Controller]) -> list[int]:
    return [len(controller.control().sessions(AGENT_NAME)) for controller in controllers]


def test_an_agent_given_one_load_balanced_name_reaches_every_replica(
        ca: CA, services_file: Path, tmp_path: Path, start_controller, haproxy) -> None:
    controllers = [start_controller("--replicas", "3", "--instance-id", f"replica-{index}") for index in (1, 2, 3)]
    proxy = HAProxy([controller.agent_address for controller in controllers], tmp_path)
    haproxy.append(proxy)
    metrics_port = free_port()
    agent = start_agent(ca, services_file, tmp_path, proxy.address, metrics_port)
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        # One tunnel per replica, and no duplicate left behind once the agent is satisfied.
        wait_until(lambda: sessions_per_controller(controllers) == [1, 1, 1], 20,
                   "one session of edge on each of the three controllers")
        samples = wait_until(lambda: (s := scrape(metrics_url))["porthole_agent_controllers_connected"] == 3 and s,
                             10, "the agent to count three connected replicas")
        assert samples["porthole_agent_controllers_expected"] == 3
        instances = {entry["instance"] for entry in agent.log_entries("tunnel up")}
        assert {"replica-1", "replica-2", "replica-3"} <= instances
        assert all(entry.get("replicas") == "3" for entry in agent.log_entries("tunnel up"))

        # Every replica serves the agent's services.
        token = controllers[0].control().service_token()["token"]
        for controller in controllers:
            response = https_request(controller.service_address, client_context(ca), "GET", "/", token=token,
                                     timeout=10)
            assert response.status == 200, (controller.name, response.body)

        # One replica goes: the agent notices, keeps the other two, and holds all three again once it is back.
        controllers[1].process.stop()
        wait_until(lambda: scrape(metrics_url)["porthole_agent_controllers_connected"] == 2, 10,
                   "the agent to count two connected replicas")
        # While it is down, HAProxy hands the agent's redials to the other two: each such tunnel is let go again.
        agent.wait_for_logs("tunnel reached a controller replica already held; dialling again", timeout=10)
        assert agent.is_running()
        controllers[1].restart()
        wait_until(lambda: sessions_per_controller(controllers) == [1, 1, 1], 30,
                   "one session of edge on each controller after the restart")
        wait_until(lambda: scrape(metrics_url)["porthole_agent_controllers_connected"] == 3, 10,
                   "the agent to count three connected replicas again")
        response = https_request(controllers[1].service_address, client_context(ca), "GET", "/", token=token,
                                 timeout=10)
        assert response.status == 200, response.body
        # The duplicates closed politely: each surviving controller still has exactly one session of edge.
        assert sessions_per_controller(controllers) == [1, 1, 1]
    finally:
        agent.stop()


def test_a_controller_without_a_replica_count_counts_as_one(
        ca: CA, services_file: Path, tmp_path: Path, start_controller) -> None:
    controller = start_controller()
    metrics_port = free_port()
    agent = start_agent(ca, services_file, tmp_path, controller.agent_address, metrics_port)
    try:
        wait_until(lambda: scrape(f"http://127.0.0.1:{metrics_port}/metrics")
                   ["porthole_agent_controllers_connected"] == 1, 20, "the agent to count one connected replica")
        assert scrape(f"http://127.0.0.1:{metrics_port}/metrics")["porthole_agent_controllers_expected"] == 1
        assert "replicas" not in agent.wait_for_logs("tunnel up")[0]
        # Nothing dials a second tunnel to a controller that announced no count.
        assert len(controller.control().sessions(AGENT_NAME)) == 1
    finally:
        agent.stop()


# -- a tunnel whose session sends GOAWAY is replaced -----------------------------------------------------------


class Probe(threading.Thread):
    """Ordinary requests, one after another on fresh connections, each answer's status and time recorded."""

    def __init__(self, controller: Controller, ca: CA, token: str) -> None:
        super().__init__(daemon=True)
        self.controller, self.context, self.token = controller, client_context(ca), token
        self.results: list[tuple[float, int]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                status = https_request(self.controller.service_address, self.context, "GET", "/", token=self.token,
                                       timeout=5).status
            except OSError:
                status = 0
            self.results.append((time.monotonic(), status))
            self.stopping.wait(0.02)

    def longest_failure(self) -> float:
        """Seconds from the first failed answer of a run of failures to the next success (0: none failed)."""
        longest, started = 0.0, None
        for at, status in self.results:
            if status != 200 and started is None:
                started = at
            elif status == 200 and started is not None:
                longest, started = max(longest, at - started), None
        if started is not None:
            longest = max(longest, self.results[-1][0] - started)
        return longest


def cancellation_storm(controller: Controller, ca: CA, token: str, streams: int, in_flight_before: float) -> None:
    """Opens `streams` slow requests on one HTTP/2 connection, waits until the tunnel carries them, resets them all."""
    metrics_url = f"{controller.metrics_url}/metrics"
    context = client_context(ca)
    context.set_alpn_protocols(["h2"])
    host, port = controller.service_address.rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=10)
    sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
    try:
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                          header_encoding="utf-8"))
        connection.initiate_connection()
        ids = []
        for index in range(streams):
            stream = connection.get_next_available_stream_id()
            connection.send_headers(stream, [(":method", "GET"), (":scheme", "https"),
                                             (":authority", controller.service_address),
                                             (":path", f"/slow?delay=20&storm={index}"),
                                             ("authorization", f"Bearer {token}")], end_stream=True)
            ids.append(stream)
        sock.sendall(connection.data_to_send())
        # The resets only count at the agent once the streams reached it.
        wait_until(lambda: scrape(metrics_url)["porthole_streams_active"] >= in_flight_before + streams, 15,
                   f"{streams} storm streams in flight on the tunnel")
        for stream in ids:
            connection.reset_stream(stream)
        sock.sendall(connection.data_to_send())
    finally:
        sock.close()


def test_a_tunnel_whose_session_sends_goaway_is_replaced_make_before_break(
        ca: CA, services_file: Path, tmp_path: Path, start_controller) -> None:
    controller = start_controller()
    metrics_port = free_port()
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    # nghttp2 on the agent's tunnel sends GOAWAY after a burst of 5 stream resets (1 more per second).
    agent = start_agent(ca, services_file, tmp_path, controller.agent_address, metrics_port,
                        env={"PORTHOLE_TEST_TUNNEL_RESET_LIMIT": "5,1"})
    try:
        agent.wait_for_logs("tunnel up")
        wait_until(lambda: len(controller.control().sessions(AGENT_NAME)) == 1, 10, "edge registered")
        first_session = controller.control().sessions(AGENT_NAME)[0]["id"]
        token = controller.control().service_token()["token"]

        # A long request in flight on the tunnel that is about to go: it must finish there (make-before-break).
        long_result: list = []
        long_request = threading.Thread(target=lambda: long_result.append(https_request(
            controller.service_address, client_context(ca), "GET", "/slow?delay=8", token=token, timeout=60)),
            daemon=True)
        long_request.start()
        wait_until(lambda: scrape(f"{controller.metrics_url}/metrics")["porthole_streams_active"] >= 1, 10,
                   "the long request in flight")

        probe = Probe(controller, ca, token)
        probe.start()
        wait_until(lambda: len(probe.results) >= 5, 10, "the probe answering before the storm")
        assert all(status == 200 for _, status in probe.results), probe.results
        cancellation_storm(controller, ca, token, streams=30, in_flight_before=1)

        # A new session is up at the controller and the agent, while the long request is still running.
        # Bounds are generous: on a loaded 2-core CI machine the redial and its TLS handshake can take seconds.
        wait_until(lambda: any(s["id"] != first_session for s in controller.control().sessions(AGENT_NAME)), 30,
                   "a new session of edge at the controller")
        wait_until(lambda: len(agent.log_entries("tunnel up")) >= 2, 15, "the agent's second tunnel up")
        wait_until(lambda: scrape(metrics_url)["porthole_tunnel_sessions"] == 1
                   and scrape(metrics_url)["porthole_reconnects_total"] >= 1, 15,
                   "the agent's metrics showing the replacement tunnel up")
        assert long_request.is_alive(), "the replacement came up while the old tunnel still had a stream"

        # Ordinary requests keep working after the swap.
        count = len(probe.results)
        wait_until(lambda: len(probe.results) >= count + 10, 10, "ten more probe answers")
        probe.stopping.set()
        probe.join(10)
        assert all(status == 200 for _, status in probe.results[count:]), probe.results[count:]
        assert probe.longest_failure() < 1.0, \
            f"requests failed for {probe.longest_failure():.2f}s around the swap: {probe.results}"

        assert agent.log_entries("tunnel session sent GOAWAY; dialling a replacement")
        long_request.join(30)
        assert long_result and long_result[0].status == 200, long_result
        # The old session leaves once its last stream is done.
        wait_until(lambda: [s["id"] for s in controller.control().sessions(AGENT_NAME)] != [first_session]
                   and first_session not in [s["id"] for s in controller.control().sessions(AGENT_NAME)], 10,
                   "the old session gone from the controller")
    finally:
        agent.stop()
