"""Running Porthole as an operator does: several controllers, agent replicas, liveness, drain, rotation, metrics.

Every test starts its own processes (controllers through the `start_controller` factory, agents with their own
arguments here) so that killing, stopping or restarting them cannot disturb the shared tunnel of other tests.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

import porthole
from porthole import (AGENT_NAME, CA, Controller, HarnessError, ManagedProcess, Response, binary, client_context,
                      https_request, wait_until)


class AgentProcess:
    """porthole-agent with whatever arguments a test needs (several controllers, its own certificate files)."""

    def __init__(self, ca: CA, controllers: list[Controller], services_file: Path, log_dir: Path, name: str,
                 cert: Path | None = None, key: Path | None = None, extra_args: tuple[str, ...] = ()) -> None:
        argv = [binary("porthole-agent")]
        for controller in controllers:
            argv += ["--controller", controller.agent_address]
        argv += ["--cert", str(cert or ca.agent_cert()), "--key", str(key or ca.agent_key()),
                 "--ca-cert", str(ca.cert), "--services", str(services_file), *extra_args]
        self.process = ManagedProcess(name, argv, log_dir)

    def tunnels_up(self) -> list[dict]:
        return self.process.log_entries("tunnel up")

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def start_agent_process(ca: CA, services_file: Path, tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    started: list[AgentProcess] = []

    def start(controllers: list[Controller], *extra_args: str, cert: Path | None = None,
              key: Path | None = None) -> AgentProcess:
        agent = AgentProcess(ca, controllers, services_file, tmp_path, f"agent-{len(started) + 1}", cert, key,
                             extra_args)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


def connected(controller: Controller, count: int = 1, timeout: float = 20.0) -> list[dict]:
    """Waits for the controller's `count`-th "agent connected" line for edge."""
    return controller.process.wait_for_logs("agent connected", count=count, timeout=timeout, agent=AGENT_NAME)


def get(controller: Controller, token: str, path: str = "/", timeout: float = 10.0) -> Response:
    return https_request(controller.service_address, client_context(controller.ca), "GET", path, token=token,
                         timeout=timeout)


def test_every_controller_replica_serves_and_a_lost_one_is_rejoined(start_controller, start_agent_process) -> None:
    first = start_controller("--instance-id", "replica-a")
    second = start_controller("--instance-id", "replica-b")
    agent = start_agent_process([first, second], "--reconnect-min", "0.2", "--reconnect-max", "1")
    connected(first)
    connected(second)
    instances = {entry["instance"] for entry in agent.process.wait_for_logs("tunnel up", count=2)}
    assert instances == {"replica-a", "replica-b"}, "each tunnel knows which replica it reached"

    # Tokens are signed with the CA key, so one replica's token works on the other.
    token = first.control().service_token()["token"]
    assert get(first, token).status == 200
    assert get(second, token).status == 200

    first.stop()
    for _ in range(10):
        response = get(second, token)
        assert response.status == 200, response.body
    assert agent.process.is_running()

    first.restart()
    connected(first, timeout=30)
    response = get(first, token)
    assert response.status == 200, response.body
    assert {s["name"] for s in first.control().agents()} == {AGENT_NAME}


def test_requests_spread_over_agent_replicas_and_survive_losing_one(start_controller, start_agent_process) -> None:
    controller = start_controller()
    replicas = [start_agent_process([controller]) for _ in range(2)]
    connected(controller, count=2)
    wait_until(lambda: len(controller.control().sessions(AGENT_NAME)) == 2, 10, "two sessions for edge")
    token = controller.control().service_token()["token"]

    def slow(index: int) -> Response:
        return get(controller, token, f"/slow?delay=1.5&i={index}", timeout=30)

    with ThreadPoolExecutor(max_workers=100) as pool:
        results = list(pool.map(slow, range(100)))
    assert [r.status for r in results] == [200] * 100
    served = [len(replica.process.log_entries("request done")) for replica in replicas]
    assert sum(served) == 100, served
    assert min(served) >= 25, f"least-busy routing should spread 100 concurrent requests, got {served}"

    # Losing one replica fails only its own in-flight streams; the other's finish, new ones succeed.
    before = [len(replica.process.log_entries("request done")) for replica in replicas]
    with ThreadPoolExecutor(max_workers=40) as pool:
        futures = [pool.submit(slow, index) for index in range(40)]
        wait_until(lambda: controller.control().sessions(AGENT_NAME)
                   and sum(s["activeStreams"] for s in controller.control().sessions(AGENT_NAME)) >= 40,
                   10, "40 streams in flight")
        replicas[0].process.kill()
        statuses = [future.result().status for future in futures]
    survivors = len(replicas[1].process.log_entries("request done")) - before[1]
    assert statuses.count(200) >= survivors > 0, (statuses, survivors)
    assert all(status in (200, 502) for status in statuses), statuses
    for _ in range(10):
        assert get(controller, token).status == 200


def test_a_stopped_controller_is_declared_dead_within_the_ping_timeout(start_controller, start_agent_process) -> None:
    controller = start_controller()
    agent = start_agent_process([controller], "--ping-interval", "0.5", "--ping-timeout", "2",
                                "--reconnect-min", "0.2", "--reconnect-max", "1")
    connected(controller)
    os.kill(controller.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        down = agent.process.wait_for_logs("tunnel down", timeout=10)[-1]
        detected = time.monotonic() - stopped
    finally:
        os.kill(controller.pid, signal.SIGCONT)
    assert "PING" in down["error"], down
    assert detected < 2 + 0.5 + 1.0, f"declared dead after {detected:.2f}s with a 2s timeout"
    # Once it runs again the agent comes back by itself.
    connected(controller, count=2, timeout=30)


def test_sigterm_drains_in_flight_streams_and_new_requests_go_elsewhere(start_controller,
                                                                         start_agent_process) -> None:
    draining = start_controller("--drain-timeout", "10")
    other = start_controller()
    start_agent_process([draining, other], "--reconnect-min", "0.2", "--reconnect-max", "1")
    connected(draining)
    connected(other)
    token = draining.control().service_token()["token"]

    with ThreadPoolExecutor(max_workers=5) as pool:
        futures = [pool.submit(get, draining, token, f"/slow?delay=2&i={i}", 30) for i in range(5)]
        wait_until(lambda: sum(s["activeStreams"] for s in draining.control().sessions(AGENT_NAME)) >= 5, 10,
                   "5 slow requests in flight")
        signalled = time.monotonic()
        draining.process.process.send_signal(signal.SIGTERM)
        draining.process.wait_for_logs("controller draining", timeout=5)
        # New users reach the other replica at once.
        assert get(other, token).status == 200
        statuses = [future.result().status for future in futures]
    assert statuses == [200] * 5, statuses
    exit_code = draining.process.process.wait(15)
    assert exit_code == 0
    assert time.monotonic() - signalled < 10, "drain waited for the streams, not for the whole timeout"
    with pytest.raises(OSError):
        get(draining, token, timeout=2)


def test_agent_takes_a_new_certificate_without_dropping_streams(start_controller, start_agent_process, ca: CA,
                                                                 backend, tmp_path: Path) -> None:
    first = start_controller()
    second = start_controller()
    cert, key = tmp_path / "agent.crt", tmp_path / "agent.key"
    cert.write_bytes(ca.agent_cert().read_bytes())
    key.write_bytes(ca.agent_key().read_bytes())
    agent = start_agent_process([first, second], "--reload-check", "0.3", cert=cert, key=key)
    old_serials = {connected(first)[-1]["certificateSerial"], connected(second)[-1]["certificateSerial"]}
    assert len(old_serials) == 1
    token = second.control().service_token()["token"]

    # A long-lived stream (a watch) through the second controller.
    hold_id = f"rotate-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen([*porthole.curl_args(ca, token), "--no-buffer",
                                f"{second.service_url}/hold?id={hold_id}"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    try:
        assert process.stdout.readline() == f"held {hold_id}\n".encode()
        issued = first.control().call("POST", "/api/v1/agent-credentials", {"agent": AGENT_NAME}).json()
        # Replace the files the way a Secret update does: write beside, then rename into place.
        for path, text in ((key, issued["key"]), (cert, issued["certificate"])):
            fresh = path.with_suffix(".new")
            fresh.write_text(text)
            fresh.rename(path)
        agent.process.wait_for_logs("agent certificate reloaded", timeout=10)
        new_serials = {connected(first, count=2)[-1]["certificateSerial"],
                       connected(second, count=2)[-1]["certificateSerial"]}
        assert len(new_serials) == 1 and new_serials != old_serials
        # The watch kept flowing across the switch.
        for _ in range(3):
            assert process.stdout.readline().strip(), "the long-lived stream stopped"
        assert backend.get_json(f"/closed?id={hold_id}")["closed"] is False
    finally:
        process.kill()
        process.wait(10)
        process.stdout.close()
    assert get(first, token).status == 200


def test_reconnections_spread_over_the_backoff_window(start_controller, start_agent_process) -> None:
    controller = start_controller()
    tunnels = 200
    repeated = [controller] * tunnels
    start_agent_process(repeated, "--reconnect-min", "1", "--reconnect-max", "4")
    connected(controller, count=tunnels, timeout=60)
    controller.restart()
    entries = connected(controller, count=tunnels, timeout=60)
    times = sorted(time_of(entry) for entry in entries)
    spread = times[-1] - times[0]
    middle = times[int(tunnels * 0.9)] - times[int(tunnels * 0.1)]
    print(f"\n{tunnels} tunnels reconnected over {spread:.2f}s (10th-90th percentile {middle:.2f}s)")
    assert middle > 0.3, f"reconnections bunched together: 10th-90th percentile within {middle:.3f}s"
    assert spread < 10, f"reconnections took {spread:.1f}s with a 4s backoff ceiling"


def time_of(entry: dict) -> float:
    from datetime import datetime
    return datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def scrape(url: str) -> dict[str, dict[tuple, float]]:
    """Parses /metrics with prometheus_client; returns {sample name: {label items: value}}."""
    import urllib.request
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_parse_and_move_with_traffic(start_controller, start_agent_process) -> None:
    controller = start_controller("--ping-interval", "0.5", "--ping-timeout", "5")
    agent_metrics = porthole.free_port()
    start_agent_process([controller], "--metrics-listen", f"127.0.0.1:{agent_metrics}")
    connected(controller)
    token = controller.control().service_token()["token"]
    before = scrape(f"{controller.metrics_url}/metrics")
    for _ in range(5):
        assert get(controller, token, "/bytes?n=100000&seed=m").status == 200
    key = (("agent", AGENT_NAME), ("code", "200"), ("service_type", "kubernetes"))
    done_before = before.get("porthole_requests_total", {}).get(key, 0)

    def settled() -> dict | None:
        # A request is counted when its stream closes, a moment after the client has its last byte.
        samples = scrape(f"{controller.metrics_url}/metrics")
        counted = samples.get("porthole_requests_total", {}).get(key, 0) - done_before
        return samples if counted >= 5 and samples.get("porthole_tunnel_ping_rtt_seconds_count") else None

    after = wait_until(settled, 10, "five requests counted and a PING round trip measured")

    assert after["porthole_agents_connected"][()] == 1
    assert after["porthole_tunnel_sessions"][()] == 1
    assert after["porthole_requests_total"][key] - done_before == 5
    assert after["porthole_request_duration_seconds_count"][(("agent", AGENT_NAME),
                                                             ("service_type", "kubernetes"))] >= 5
    from_agent = (("direction", "from_agent"),)
    assert after["porthole_tunnel_bytes_total"][from_agent] - before.get(
        "porthole_tunnel_bytes_total", {}).get(from_agent, 0) >= 500_000
    for name in ("porthole_streams_active", "porthole_stream_flow_blocked_seconds_total",
                 "porthole_reconnects_total"):
        assert name in after, name

    agent_side = scrape(f"http://127.0.0.1:{agent_metrics}/metrics")
    assert agent_side["porthole_tunnel_sessions"][()] == 1
    assert sum(agent_side["porthole_requests_total"].values()) >= 5
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{agent_metrics}/readyz", timeout=5) as response:
        assert response.status == 200


def test_request_id_is_logged_by_controller_and_agent(stack) -> None:
    response = https_request(stack.service_address, client_context(stack.ca), "GET", "/?trace=1", token=stack.token)
    assert response.status == 200
    request_id = wait_until(lambda: next((e["request"] for e in reversed(stack.controller.logs)
                                          if e.get("msg") == "request done"), None), 5, "controller request log")
    wait_until(lambda: stack.agent.process.log_entries("request done", request=request_id), 5,
               "the agent to log the same request id")


class ControllerAt(Controller):
    """A controller whose agent listener is on a fixed address (replicas share a port on different IPs)."""

    def __init__(self, ca: CA, log_dir: Path, agent_listen: str, name: str) -> None:
        self.ca, self.log_dir, self.name = ca, log_dir, name
        self.extra_args = ["--server-name", "replicas.test"]
        self.addresses = {listener: "127.0.0.1:0" for listener in porthole.LISTENERS}
        self.addresses["agent"] = agent_listen
        self._start()


def unshare_works() -> bool:
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not unshare_works(), reason="needs a private mount namespace (unshare -m) for its own /etc/hosts")
def test_agent_follows_the_dns_records_of_a_controller_name(ca: CA, services_file: Path, tmp_path: Path) -> None:
    port = porthole.free_port()
    controllers = [ControllerAt(ca, tmp_path, f"127.0.0.{index}:{port}", f"controller-{index}") for index in (1, 2)]
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.0.1 replicas.test\n")
    agent_argv = [binary("porthole-agent"), "--controller", f"replicas.test:{port}", "--resolve-interval", "0.3",
                  "--reconnect-min", "0.2", "--reconnect-max", "1", "--cert", str(ca.agent_cert()),
                  "--key", str(ca.agent_key()), "--ca-cert", str(ca.cert), "--services", str(services_file)]
    # The agent alone sees this hosts file: a private mount namespace with it bound over /etc/hosts.
    script = f"mount --bind {hosts} /etc/hosts && exec " + " ".join(agent_argv)
    agent = ManagedProcess("agent-dns", ["unshare", "-m", "sh", "-c", script], tmp_path)
    try:
        connected(controllers[0])
        assert not controllers[1].process.log_entries("agent connected")

        # A replica that appears in DNS is joined.
        with hosts.open("a") as file:
            file.write("127.0.0.2 replicas.test\n")
        connected(controllers[1], timeout=10)
        token = controllers[0].control().service_token()["token"]
        assert get(controllers[1], token).status == 200

        # One whose record disappears is let go; the other keeps serving.
        hosts.write_text("127.0.0.1 localhost\n127.0.0.2 replicas.test\n")
        agent.wait_for_logs("controller replica is gone from DNS", timeout=10)
        assert get(controllers[1], token).status == 200
    finally:
        agent.stop()
        for controller in controllers:
            controller.stop()
