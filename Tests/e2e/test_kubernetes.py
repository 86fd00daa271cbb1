"""kubectl (and the Python `kubernetes` client) through Porthole to a Kubernetes API stand-in.

user → controller (service listener, issued kubeconfig) → tunnel → agent (stand-in's CA, its token from a file)
→ kube_standin.py. Everything kubectl does for real users is exercised: discovery, get/list/watch with server-side
Tables, logs -f, exec (stdio, exit codes, 64 MiB stdin, a real terminal with resize), cp, port-forward, debug with an
ephemeral container, and a refused exec; plus a load of concurrent exec sessions and watches on one tunnel, and raw
SPDY/3.1 upgrades.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import json
import os
import pty
import re
import signal
import socket
import statistics
import struct
import subprocess
import termios
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote

import pytest

import porthole
import spdy
import ws
from porthole import HarnessError, KubeTunnel, wait_until

MiB = 1024 * 1024
NAMESPACE = "porthole-e2e"
FORBID_EXEC = "standin.porthole.test/forbid-exec"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (f"kubectl exited {result.returncode}\nstdout: {result.stdout[-2000:]!r}\n"
                                    f"stderr: {result.stderr.decode(errors='replace')[-3000:]}")
    return result.stdout.decode()


def deterministic(size: int, label: str) -> bytes:
    return b"".join(porthole.deterministic_chunks(size, label))


def delete_quietly(kube: KubeTunnel, namespace: str, name: str) -> None:
    """Cleanup that must not mask a test's own failure (the pod may already be gone)."""
    try:
        kube.standin.delete_pod(namespace, name)
    except HarnessError:
        pass


def requests_since(kube: KubeTunnel, count: int) -> list[dict]:
    return kube.standin.requests()[count:]


# kubectl >= 1.30 speaks WebSocket (v5.channel.k8s.io; port-forward: SPDY/3.1 tunnelled in a WebSocket) and falls
# back to SPDY/3.1 upgrades; these environment variables make it use SPDY from the start, as older kubectls do.
REMOTE_COMMAND = {"websocket": {}, "spdy": {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}}
PORT_FORWARD = {"websocket": {}, "spdy": {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}}
NEGOTIATED_EXEC = {"websocket": "v5.channel.k8s.io", "spdy": "SPDY/3.1+v4.channel.k8s.io"}
NEGOTIATED_FORWARD = {"websocket": "SPDY/3.1+portforward.k8s.io", "spdy": "SPDY/3.1+portforward.k8s.io (plain)"}


def environment(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra}


def run_kubectl(kube: KubeTunnel, *args: str, env: dict[str, str] | None = None, stdin=None,
                timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(kube.kubectl_argv(*args), stdin=stdin, capture_output=True, timeout=timeout,
                          env=environment(env or {}))


def direct_kubeconfig(kube: KubeTunnel, directory: Path) -> Path:
    """A kubeconfig straight to the stand-in with its token (no Porthole): what kubectl would see without the tunnel."""
    path = directory / "direct-kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "direct",
        "clusters": [{"name": "standin", "cluster": {"server": kube.standin.url,
                                                     "certificate-authority": str(kube.standin.ca_cert)}}],
        "users": [{"name": "sa", "user": {"token": kube.standin.token}}],
        "contexts": [{"name": "direct", "context": {"cluster": "standin", "user": "sa"}}]}))
    return path


# -- processes whose output is read as it comes -------------------------------------------------------------------


class LineReader:
    """A child process whose stdout lines (stderr kept apart) are collected by a thread, with bounded waits."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env)
        self.lines: list[tuple[float, str]] = []
        self.stderr = b""
        self._eof = False
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        for raw in self.process.stdout:
            with self._cond:
                self.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        self.stderr = self.process.stderr.read()

    def wait_for(self, text: str, timeout: float, after: int = 0) -> tuple[int, float, str]:
        """(index, arrival time, line) of the first line from index `after` containing `text`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for index in range(after, len(self.lines)):
                    arrived, line = self.lines[index]
                    if text in line:
                        return index, arrived, line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof:
                    raise HarnessError(f"no line containing {text!r} within {timeout:.0f}s from "
                                       f"{' '.join(self.argv[-4:])}; lines: {[line for _, line in self.lines]}; "
                                       f"exit {self.process.poll()}; stderr {self.stderr[-1500:]!r}")
                self._cond.wait(min(remaining, 0.2))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class Terminal:
    """A child process on a real pseudo-terminal (it is the session leader and the pty its controlling terminal)."""

    def __init__(self, argv: list[str], rows: int = 30, columns: int = 100, env: dict[str, str] | None = None) -> None:
        self.master, slave = pty.openpty()
        self.resize(rows, columns, signal_child=False)
        try:
            # `setsid -c`: a new session with the pty as controlling terminal, like a login shell's.
            self.process = subprocess.Popen(["setsid", "-c", *argv], stdin=slave, stdout=slave, stderr=slave,
                                            close_fds=True, env=env)
        finally:
            os.close(slave)
        self.output = bytearray()
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                data = b""
            with self._cond:
                if not data:
                    self._cond.notify_all()
                    return
                self.output += data
                self._cond.notify_all()

    def expect(self, pattern: bytes | re.Pattern, timeout: float, start: int = 0) -> int:
        """Waits until `pattern` appears in the output at or after `start`; returns the offset just past it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if isinstance(pattern, bytes):
                    index = self.output.find(pattern, start)
                    if index >= 0:
                        return index + len(pattern)
                else:
                    match = pattern.search(bytes(self.output), start)
                    if match:
                        return match.end()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise HarnessError(f"terminal: {pattern!r} did not appear within {timeout:.0f}s; output so far:\n"
                                       f"{bytes(self.output[-3000:]).decode(errors='replace')}")
                self._cond.wait(min(remaining, 0.2))

    @property
    def offset(self) -> int:
        with self._cond:
            return len(self.output)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def resize(self, rows: int, columns: int, signal_child: bool = True) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        if signal_child:
            os.kill(self.process.pid, signal.SIGWINCH)  # the kernel sends one too; this makes sure

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        try:
            os.close(self.master)
        except OSError:
            pass


class EchoServer:
    """A TCP echo server on 127.0.0.1 (what a pod's port runs): echoes until EOF, then closes."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        conn.settimeout(120)
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def echo_round_trip(port: int, data: bytes, timeout: float = 60.0) -> bytes:
    """Sends `data`, half-closes, and reads until the other side closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        writer = threading.Thread(target=lambda: (conn.sendall(data), conn.shutdown(socket.SHUT_WR)), daemon=True)
        writer.start()
        received = bytearray()
        while True:
            piece = conn.recv(65536)
            if not piece:
                break
            received += piece
        writer.join(timeout)
        return bytes(received)


# -- get, list, discovery -----------------------------------------------------------------------------------------


def test_kubectl_get_namespaces(kube: KubeTunnel) -> None:
    before = len(kube.standin.requests())
    output = ok(kube.kubectl("get", "ns"))
    rows = [line.split() for line in output.strip().splitlines()]
    assert rows[0][:3] == ["NAME", "STATUS", "AGE"]
    assert {"default", "kube-system", NAMESPACE} <= {row[0] for row in rows[1:]}
    assert all(row[1] == "Active" for row in rows[1:])
    seen = requests_since(kube, before)
    table_lists = [r for r in seen if r["path"] == "/api/v1/namespaces"]
    assert table_lists and "as=Table" in table_lists[-1]["accept"], seen
    # The stand-in refuses anything without its own token: every request arrived with the agent's credentials.
    assert all(r["authorized"] for r in seen), seen


def test_kubectl_get_pods_all_namespaces_wide(kube: KubeTunnel) -> None:
    output = ok(kube.kubectl("get", "pods", "-A", "-o", "wide"))
    lines = output.strip().splitlines()
    assert lines[0].split()[:6] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert "IP" in lines[0] and "NODE" in lines[0] and "NOMINATED NODE" in lines[0]
    rows = {(row.split()[0], row.split()[1]): row.split() for row in lines[1:]}
    assert ("default", "app-0") in rows and ("kube-system", "coredns-0") in rows, output
    app = rows[("default", "app-0")]
    assert app[2:4] == ["1/1", "Running"]
    assert re.fullmatch(r"10\.244\.0\.\d+", app[6]) and app[7] == "standin-node", app


def test_kubectl_get_pod_yaml_is_the_servers_object(kube: KubeTunnel) -> None:
    import yaml

    output = ok(kube.kubectl("get", "pod", "app-0", "-o", "yaml"))
    pod = yaml.safe_load(output)
    server_side = kube.standin.json("GET", "/api/v1/namespaces/default/pods/app-0")
    assert pod["kind"] == "Pod" and pod["apiVersion"] == "v1"
    assert pod["metadata"]["name"] == "app-0" and pod["metadata"]["namespace"] == "default"
    assert pod["metadata"]["uid"] == server_side["metadata"]["uid"]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["app"]
    assert pod["status"]["phase"] == "Running"


def test_openapi_404_is_survivable(kube: KubeTunnel, tmp_path: Path) -> None:
    """The stand-in has no OpenAPI documents: kubectl gets the 404s intact, says so clearly, and creates the pod
    once told not to validate client-side."""
    name = unique("created")
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\n"
                        "spec:\n  containers:\n  - name: app\n    image: busybox:1.36\n")
    refused = kube.kubectl("create", "-f", str(manifest))
    assert refused.returncode != 0
    assert "failed to download openapi" in refused.stderr.decode(), refused.stderr
    ok(kube.kubectl("create", "--validate=false", "-f", str(manifest)))
    try:
        assert kube.standin.json("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")["metadata"]["name"] == name
    finally:
        ok(kube.kubectl("delete", "-f", str(manifest), "--wait=false"))


# -- watch --------------------------------------------------------------------------------------------------------


def test_kubectl_get_pods_watch_sees_a_pod_created_after_it_began(kube: KubeTunnel) -> None:
    name = unique("watched")
    before = len(kube.standin.requests())
    watch = LineReader(kube.kubectl_argv("get", "pods", "-n", NAMESPACE, "-w"))
    try:
        # Wait until this kubectl's watch request has reached the stand-in: the pod is created after it began.
        wait_until(lambda: any(r["path"] == f"/api/v1/namespaces/{NAMESPACE}/pods" and r["query"].get("watch")
                               for r in requests_since(kube, before)), 20, "the watch request to reach the stand-in")
        kube.standin.create_pod(NAMESPACE, name)
        _, _, line = watch.wait_for(name, 15)
        assert "Running" in line
        kube.standin.delete_pod(NAMESPACE, name)
        watch.wait_for("Terminating", 15)
    finally:
        watch.stop()
        delete_quietly(kube, NAMESPACE, name)


def _ping_count(controller: porthole.Controller) -> float:
    response = http.client.HTTPConnection(*controller.addresses["metrics"].rsplit(":", 1), timeout=5)
    try:
        response.request("GET", "/metrics")
        text = response.getresponse().read().decode()
    finally:
        response.close()
    match = re.search(r"^porthole_tunnel_ping_rtt_seconds_count(?:\{[^}]*\})?\s+([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.mark.slow
def test_watch_idle_for_five_ping_intervals_still_delivers(start_kube_tunnel, kube_standin) -> None:
    """Controller and agent PING every 0.5 s (timeout 2 s); a watch that carries nothing for 5 intervals is still
    alive afterwards and delivers the next event at once, on the same tunnel."""
    interval = 0.5
    ping_args = ("--ping-interval", str(interval), "--ping-timeout", "2")
    tunnel = start_kube_tunnel(controller_args=ping_args, agent_args=ping_args)
    created = [unique("before-idle")]
    kube_standin.create_pod(NAMESPACE, created[0])
    watch = LineReader(tunnel.kubectl_argv("get", "pods", "-n", NAMESPACE, "-w"))
    try:
        watch.wait_for(created[0], 20)
        pings_before = _ping_count(tunnel.controller)
        idle = 5 * interval + 0.5
        idle_until = time.monotonic() + idle
        while time.monotonic() < idle_until:  # deliberately idle: nothing travels on the watch meanwhile
            time.sleep(0.1)
        pings = _ping_count(tunnel.controller) - pings_before
        assert pings >= 4, f"only {pings} PINGs answered in {idle}s at a {interval}s interval"
        created.append(unique("after-idle"))
        sent = time.monotonic()
        kube_standin.create_pod(NAMESPACE, created[1])
        _, arrived, _ = watch.wait_for(created[1], 10)
        assert arrived - sent < 5
        assert tunnel.agent.tunnels_up() == 1, "the tunnel was re-established during the idle watch"
        assert watch.process.poll() is None, watch.stderr
    finally:
        watch.stop()
        for name in created:
            try:
                kube_standin.delete_pod(NAMESPACE, name)
            except HarnessError:
                pass


# -- logs -f ------------------------------------------------------------------------------------------------------


def test_kubectl_logs_follow_shows_lines_as_they_are_written(kube: KubeTunnel) -> None:
    """Lines reach `kubectl logs -f` as the pod writes them, and the end of the stream ends kubectl."""
    name = unique("logger")
    kube.standin.create_pod(NAMESPACE, name)
    kube.standin.append_log(NAMESPACE, name, "existing line\n")
    logs = LineReader(kube.kubectl_argv("logs", "-f", "-n", NAMESPACE, name))
    try:
        logs.wait_for("existing line", 20)
        arrivals = []
        written = []
        for index in range(3):
            written.append(time.monotonic())
            kube.standin.append_log(NAMESPACE, name, f"live line {index}\n")
            _, arrived, _ = logs.wait_for(f"live line {index}", 10)
            arrivals.append(arrived)
        # Each line reached kubectl before the next one was even written: nothing buffers the stream.
        assert arrivals[0] < written[2], (written, arrivals)
        assert all(arrivals[i] < written[i + 1] for i in range(2))
        assert all(arrivals[i] - written[i] < 5 for i in range(3)), (written, arrivals)
        assert [line for _, line in logs.lines] == ["existing line"] + [f"live line {i}" for i in range(3)]
        # The API server ends the stream when the pod goes: the end reaches kubectl, which exits cleanly.
        kube.standin.delete_pod(NAMESPACE, name)
        assert logs.process.wait(20) == 0, logs.stderr
    finally:
        logs.stop()
        delete_quietly(kube, NAMESPACE, name)


# -- exec ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", list(REMOTE_COMMAND))
def test_kubectl_exec_separates_stdout_stderr_and_exit_code(kube: KubeTunnel, transport: str) -> None:
    before = len(kube.standin.requests())
    result = run_kubectl(kube, "exec", "-i", "app-0", "--", "sh", "-c", "cat; echo err >&2; exit 3",
                         env=REMOTE_COMMAND[transport], stdin=subprocess.DEVNULL)
    assert result.returncode == 3, result
    assert result.stdout == b""  # stdin was empty (closed at once)
    result = subprocess.run(kube.kubectl_argv("exec", "-i", "app-0", "--", "sh", "-c", "cat; echo err >&2; exit 3"),
                            input=b"out\n", capture_output=True, timeout=60, env=environment(REMOTE_COMMAND[transport]))
    assert result.returncode == 3, result
    assert result.stdout == b"out\n"
    stderr = result.stderr.decode()
    assert stderr.startswith("err\n"), stderr
    assert "command terminated with exit code 3" in stderr
    exec_requests = [r for r in requests_since(kube, before) if r["path"].endswith("/exec")]
    assert [r.get("negotiated") for r in exec_requests] == [NEGOTIATED_EXEC[transport]] * 2, exec_requests


def test_kubectl_exec_64_mib_stdin_digest(kube: KubeTunnel, tmp_path: Path) -> None:
    data = deterministic(64 * MiB, "exec-stdin")
    source = tmp_path / "stdin.bin"
    source.write_bytes(data)
    with open(source, "rb") as stdin:
        result = subprocess.run(kube.kubectl_argv("exec", "-i", "app-0", "--", "sha256sum"), stdin=stdin,
                                capture_output=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split()[0] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("transport", list(REMOTE_COMMAND))
def test_kubectl_exec_it_in_a_terminal_runs_input_and_follows_resizes(kube: KubeTunnel, transport: str) -> None:
    before = len(kube.standin.requests())
    terminal = Terminal(kube.kubectl_argv("exec", "-it", "app-0", "--", "sh"), rows=30, columns=100,
                        env=environment(REMOTE_COMMAND[transport]))
    try:
        position = terminal.expect(b"app-0$ ", 30)  # the shell's prompt (PS1) through the remote pty
        terminal.type("echo typed-$((40+2))\r")
        position = terminal.expect(b"typed-42", 10, position)
        terminal.type("stty size\r")
        position = terminal.expect(b"30 100", 10, position)
        terminal.resize(40, 120)

        def resized() -> bool:
            nonlocal position
            start = terminal.offset
            terminal.type("stty size\r")
            try:
                position = terminal.expect(re.compile(rb"\r\n(\d+ \d+)\r\n"), 2, start)
            except HarnessError:
                return False
            return b"40 120" in terminal.output[start:position]

        wait_until(resized, 15, "the remote terminal to report 40 rows x 120 columns", interval=0.3)
        terminal.type("exit 0\r")
        assert terminal.wait(20) == 0
    finally:
        terminal.close()
    exec_requests = [r for r in requests_since(kube, before) if r["path"].endswith("/exec")]
    assert [(r["query"].get("tty"), r.get("negotiated")) for r in exec_requests] == [
        (["true"], NEGOTIATED_EXEC[transport])], exec_requests


def test_kubectl_cp_32_mib_into_a_pod_and_back(kube: KubeTunnel, tmp_path: Path) -> None:
    data = deterministic(32 * MiB, "kubectl-cp")
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    remote = f"tmp/{unique('cp')}.bin"  # relative to the pod's root, where exec'd commands run
    ok(kube.kubectl("cp", str(source), f"default/app-0:{remote}", timeout=180))
    in_pod = kube.standin.pod_root("default", "app-0") / remote
    assert in_pod.stat().st_size == len(data)
    assert hashlib.sha256(in_pod.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    back = tmp_path / "download.bin"
    ok(kube.kubectl("cp", f"default/app-0:{remote}", str(back), timeout=180))
    assert back.stat().st_size == len(data)
    assert hashlib.sha256(back.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


# -- port-forward -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", list(PORT_FORWARD))
def test_kubectl_port_forward_20_concurrent_connections(kube: KubeTunnel, echo_server: EchoServer,
                                                        transport: str) -> None:
    before = len(kube.standin.requests())
    forward = LineReader(kube.kubectl_argv("port-forward", "pod/app-0", f":{echo_server.port}"),
                         env=environment(PORT_FORWARD[transport]))
    try:
        _, _, line = forward.wait_for("Forwarding from 127.0.0.1:", 30)
        local_port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
        payloads = [deterministic(200_000 + 4099 * index, f"pf-{index}") for index in range(20)]
        with ThreadPoolExecutor(20) as pool:
            echoed = list(pool.map(lambda payload: echo_round_trip(local_port, payload), payloads))
        for index, (sent, got) in enumerate(zip(payloads, echoed)):
            assert got == sent, (f"connection {index}: {len(got)} of {len(sent)} bytes back, equal prefix "
                                 f"{len(os.path.commonprefix([got, sent]))}")
        assert echo_server.connections == 20
        forwards = [r for r in requests_since(kube, before) if r["path"].endswith("/portforward")]
        assert [r.get("negotiated") for r in forwards] == [NEGOTIATED_FORWARD[transport]], forwards
        assert forward.process.poll() is None, forward.stderr
    finally:
        forward.stop()


def test_kubectl_port_forward_to_a_closed_port_shows_the_pods_error(kube: KubeTunnel) -> None:
    """The error stream of a SPDY port-forward connection carries the kubelet-side error back to kubectl."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed_port = probe.getsockname()[1]
    forward = LineReader(kube.kubectl_argv("port-forward", "pod/app-0", f":{closed_port}"))
    try:
        _, _, line = forward.wait_for("Forwarding from 127.0.0.1:", 30)
        local_port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
        with socket.create_connection(("127.0.0.1", local_port), timeout=20) as conn:
            assert conn.recv(100) == b""  # kubectl closes the local connection
        forward.process.wait(20)  # kubectl >= 1.30 gives up after a lost connection
    finally:
        forward.stop()
    assert f"error forwarding port {closed_port} to pod app-0" in forward.stderr.decode(), forward.stderr


# -- debug (ephemeral containers) ---------------------------------------------------------------------------------


def test_kubectl_debug_adds_an_ephemeral_container_and_attaches(kube: KubeTunnel) -> None:
    name = unique("debugged")
    kube.standin.create_pod(NAMESPACE, name)
    terminal = Terminal(kube.kubectl_argv("debug", "-it", "-n", NAMESPACE, name, "--image=busybox", "--target=app",
                                          "--", "sh"))
    try:
        position = terminal.expect(b"Defaulting debug container name to ", 30)
        terminal.type("echo debug-$((6*7))\r")
        position = terminal.expect(b"debug-42", 20, position)
        terminal.type("exit 0\r")
        assert terminal.wait(30) == 0, bytes(terminal.output).decode(errors="replace")
    finally:
        terminal.close()
    pod = kube.standin.json("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")
    (container,) = pod["spec"]["ephemeralContainers"]
    assert container["image"] == "busybox" and container["targetContainerName"] == "app"
    assert container["command"] == ["sh"] and container["tty"] and container["stdin"]
    status = wait_until(lambda: next(
        (s for s in kube.standin.json("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")["status"]
         .get("ephemeralContainerStatuses", []) if "terminated" in s["state"]), None), 10,
        "the ephemeral container to be reported terminated")
    assert status["name"] == container["name"] and status["state"]["terminated"]["exitCode"] == 0
    kube.standin.delete_pod(NAMESPACE, name)


# -- the Python client --------------------------------------------------------------------------------------------


def test_python_client_list_watch_exec_and_port_forward(kube: KubeTunnel, echo_server: EchoServer) -> None:
    from kubernetes import client, config, watch
    from kubernetes.stream import portforward, stream

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kube.kubeconfig.path)))
    pods = api.list_pod_for_all_namespaces()
    assert {("default", "app-0"), ("kube-system", "coredns-0")} <= {
        (pod.metadata.namespace, pod.metadata.name) for pod in pods.items}

    name = unique("py-watched")
    events: list[tuple[str, str]] = []
    watcher = watch.Watch()

    def consume() -> None:
        for event in watcher.stream(api.list_namespaced_pod, NAMESPACE, resource_version=pods.metadata.resource_version,
                                    timeout_seconds=30):
            events.append((event["type"], event["object"].metadata.name))
            if event["object"].metadata.name == name and event["type"] == "DELETED":
                watcher.stop()

    before = len(kube.standin.requests())
    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    wait_until(lambda: any(r["query"].get("watch") and r["path"] == f"/api/v1/namespaces/{NAMESPACE}/pods"
                           for r in requests_since(kube, before)), 15, "the Python client's watch")
    kube.standin.create_pod(NAMESPACE, name)
    kube.standin.delete_pod(NAMESPACE, name)
    reader.join(30)
    assert not reader.is_alive(), events
    assert [event for event in events if event[1] == name] == [("ADDED", name), ("DELETED", name)]

    response = stream(api.connect_get_namespaced_pod_exec, "app-0", "default",
                      command=["sh", "-c", "cat; echo done >&2; exit 5"], stdin=True, stdout=True, stderr=True,
                      tty=False, _preload_content=False, binary=True)
    assert response.subprotocol == "v5.channel.k8s.io"
    payload = deterministic(300_000, "python-exec")
    for offset in range(0, len(payload), 16384):
        response.write_stdin(payload[offset:offset + 16384])
    response.close_channel(ws.STDIN)
    response.run_forever(timeout=60)
    assert response.read_stdout() == payload
    assert response.read_stderr() == b"done\n"
    assert response.returncode == 5

    forward = portforward(api.connect_get_namespaced_pod_portforward, "app-0", "default",
                          ports=str(echo_server.port))
    sock = forward.socket(echo_server.port)
    sock.setblocking(True)
    sock.settimeout(30)
    data = deterministic(500_000, "python-portforward")
    sender = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    sender.start()
    received = porthole.receive_exactly(sock, len(data))
    sender.join(30)
    assert received == data
    assert forward.error(echo_server.port) is None
    sock.close()
    forward.close()


# -- load -----------------------------------------------------------------------------------------------------------


def _exec_session(kube: KubeTunnel, index: int, size: int) -> tuple[int, bytes, bytes, int]:
    """One exec over a hand-rolled WebSocket client; even sessions speak v5 (`cat`, half-close stdin), odd ones v4
    (no half-close: `head -c SIZE`). Returns (index, stdout, stdin sent, exit code)."""
    protocol = "v5.channel.k8s.io" if index % 2 == 0 else "v4.channel.k8s.io"
    command = ["cat"] if index % 2 == 0 else ["head", "-c", str(size)]
    query = "&".join([f"command={quote(part)}" for part in command] + ["stdin=true", "stdout=true", "stderr=true"])
    stream = ws.TLSStream.connect(kube.controller.service_address, kube.client_context(), server_hostname="127.0.0.1",
                                  timeout=30)
    stream.sock.settimeout(120)  # a stuck tunnel fails the session instead of hanging the test
    socket_ = ws.client_handshake(ws.Buffered(stream), kube.controller.service_address,
                                  f"/api/v1/namespaces/default/pods/app-0/exec?{query}", [protocol])
    assert socket_.subprotocol == protocol
    data = deterministic(size, f"load-{index}")

    def send() -> None:
        for offset in range(0, len(data), 32 * 1024):
            socket_.send_channel(ws.STDIN, data[offset:offset + 32 * 1024])
        if protocol.startswith("v5"):
            socket_.send(ws.OP_BINARY, bytes([ws.CLOSE_SIGNAL, ws.STDIN]))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    stdout = bytearray()
    status = b""
    while True:
        message = socket_.recv_message()
        if message is None:
            break
        _, payload = message
        if payload[:1] == bytes([ws.STDOUT]):
            stdout += payload[1:]
        elif payload[:1] == bytes([ws.ERROR]):
            status += payload[1:]
    sender.join(60)
    stream.close()
    return index, bytes(stdout), data, ws.status_exit_code(ws.parse_status(status))


def _watch_session(kube: KubeTunnel, label: str, resource_version: str, expected: set[str],
                   ready: threading.Barrier) -> list[str]:
    host, port = kube.controller.service_address.rsplit(":", 1)
    connection = http.client.HTTPSConnection(host, int(port), context=kube.client_context(), timeout=120)
    try:
        try:
            connection.request("GET", f"/api/v1/namespaces/{NAMESPACE}/pods?watch=true"
                                      f"&resourceVersion={resource_version}&labelSelector=load%3D{label}")
            response = connection.getresponse()
            assert response.status == 200, response.read()
        except BaseException:
            ready.abort()  # fail the test now rather than at the barrier's timeout
            raise
        ready.wait(60)
        names = []
        while set(names) != expected:
            line = response.readline()
            if not line:
                break
            event = json.loads(line)
            assert event["type"] == "ADDED", event
            names.append(event["object"]["metadata"]["name"])
        return names
    finally:
        connection.close()


def test_load_50_execs_and_50_watches_over_one_tunnel(kube: KubeTunnel) -> None:
    started = time.monotonic()
    label = uuid.uuid4().hex[:8]
    expected = {f"load-{label}-{i}" for i in range(5)}
    sessions_before = kube.controller.control().sessions(porthole.AGENT_NAME)
    tunnels_before = kube.agent.tunnels_up()
    resource_version = kube.standin.json("GET", f"/api/v1/namespaces/{NAMESPACE}/pods")["metadata"]["resourceVersion"]
    ready = threading.Barrier(51, timeout=90)
    size = 256 * 1024
    try:
        with ThreadPoolExecutor(100) as pool:
            watches = [pool.submit(_watch_session, kube, label, resource_version, expected, ready) for _ in range(50)]
            execs = [pool.submit(_exec_session, kube, index, size) for index in range(50)]
            ready.wait(90)  # every watch is open before the pods appear
            for name in sorted(expected):
                kube.standin.create_pod(NAMESPACE, name, labels={"load": label})
            exec_results = [future.result(timeout=120) for future in execs]
            watch_results = [future.result(timeout=120) for future in watches]
    finally:
        for name in expected:
            delete_quietly(kube, NAMESPACE, name)
    for index, stdout, sent, code in exec_results:
        assert code == 0, f"exec {index} exited {code}"
        assert stdout == sent, f"exec {index}: {len(stdout)} of {len(sent)} bytes back"
    for names in watch_results:
        assert sorted(names) == sorted(expected)
    elapsed = time.monotonic() - started
    assert elapsed < 120, f"load took {elapsed:.0f}s"
    assert kube.agent.tunnels_up() == tunnels_before, "the agent reconnected under load"
    assert len(kube.controller.control().sessions(porthole.AGENT_NAME)) == len(sessions_before) == 1


# -- raw SPDY/3.1 ---------------------------------------------------------------------------------------------------


def _raw_upgrade(kube: KubeTunnel, path: str, token: str | None = None,
                 extra: tuple[tuple[str, str], ...] = ()) -> tuple[ws.Buffered, list[tuple[str, str]]]:
    context = porthole.client_context(kube.ca) if token else kube.client_context()
    stream = ws.Buffered(ws.TLSStream.connect(kube.controller.service_address, context, server_hostname="127.0.0.1"))
    stream.stream.sock.settimeout(60)
    headers = [f"POST {path} HTTP/1.1", f"Host: {kube.controller.service_address}", "Connection: Upgrade",
               "Upgrade: SPDY/3.1", "Content-Length: 0", "User-Agent: porthole-e2e-spdy"]
    if token:
        headers.append(f"Authorization: Bearer {token}")
    headers += [f"{name}: {value}" for name, value in extra]
    stream.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
    head = stream.read_head()
    status_line, response_headers = ws.parse_head(head)
    if int(status_line.split()[1]) != 101:
        body = ws.read_response_body(stream, response_headers)
        raise AssertionError(f"{status_line} {response_headers} {body[:500]!r}")
    return stream, response_headers


def test_raw_spdy_upgrade_bytes_pass_unchanged(kube: KubeTunnel) -> None:
    token = kube.controller.control().service_token(ttl=600)["token"]
    before = len(kube.standin.requests())
    stream, headers = _raw_upgrade(kube, "/standin/upgrade-echo", token,
                                   (("X-Stream-Protocol-Version", "portforward.k8s.io"),))
    assert ws.header(headers, "Upgrade") == "SPDY/3.1"
    codec = spdy.HeaderCodec()
    frames = [
        spdy.control_frame(spdy.SYN_STREAM, 0, struct.pack("!IIBB", 1, 0, 0, 0) +
                           codec.encode({"streamtype": "data", "port": "80", "requestid": "0"})),
        spdy.data_frame(1, 0, bytes(range(256)) * 64),
        spdy.control_frame(spdy.PING, 0, struct.pack("!I", 1)),
        spdy.data_frame(1, 0, deterministic(300_000, "raw-spdy")[:spdy.MAX_DATA]),
        spdy.data_frame(1, spdy.FLAG_FIN, b""),
    ]
    sent = b"".join(frames)
    stream.sendall(sent)
    echoed = stream.read_exact(len(sent))
    assert echoed == sent
    decoder = spdy.HeaderCodec()
    offset = [0]

    def read_exact(size: int) -> bytes:
        piece = echoed[offset[0]:offset[0] + size]
        offset[0] += size
        return piece

    parsed = [spdy.read_frame(read_exact, decoder) for _ in frames]
    assert parsed[0].headers == {"streamtype": ["data"], "port": ["80"], "requestid": ["0"]}
    assert [frame.type for frame in parsed] == [spdy.SYN_STREAM, None, spdy.PING, None, None]
    stream.stream.shutdown_write()
    assert stream.recv_some() == b""  # the half-close reached the backend and its EOF came back
    stream.close()
    (seen,) = [r for r in requests_since(kube, before) if r["path"] == "/standin/upgrade-echo"]
    assert seen["method"] == "POST" and seen["upgrade"] == "SPDY/3.1" and seen["status"] == 101
    assert seen["streamProtocol"] == "portforward.k8s.io"


def test_plain_spdy_port_forward_session(kube: KubeTunnel, echo_server: EchoServer) -> None:
    """kubectl before 1.31 (and its fallback) speaks SPDY/3.1 directly: a real SPDY session through the tunnel."""
    stream, headers = _raw_upgrade(kube, "/api/v1/namespaces/default/pods/app-0/portforward",
                                   extra=(("X-Stream-Protocol-Version", "portforward.k8s.io"),))
    assert ws.header(headers, "X-Stream-Protocol-Version") == "portforward.k8s.io"
    session = spdy.Session(stream, server=False)
    reader = threading.Thread(target=session.serve, daemon=True)
    reader.start()
    try:
        assert session.ping(10), "no SPDY PING answer"
        results = []
        for request_id in range(3):
            common = {"port": str(echo_server.port), "requestid": str(request_id)}
            error = session.open_stream(common | {"streamtype": "error"})
            error.close()
            data_stream = session.open_stream(common | {"streamtype": "data"})
            payload = deterministic(150_000 + request_id, f"spdy-{request_id}")
            data_stream.send(payload)
            data_stream.close()
            results.append((payload, data_stream.read_all(30), error.read_all(30)))
        for payload, echoed, error_text in results:
            assert error_text == b""
            assert echoed == payload
    finally:
        session.goaway()
        session.close()
        reader.join(10)


# -- cancellation ---------------------------------------------------------------------------------------------------


def test_killing_kubectl_ends_its_exec_and_watch_at_the_api_server(kube: KubeTunnel) -> None:
    """A user who goes away mid-exec (an upgraded stream) or mid-watch (a long response): the agent closes its
    connection to the API server, which ends the exec'd process and the watch."""
    marker = unique("sleeper")
    wait_until(lambda: kube.standin.stats()["activeExecs"] == 0 and kube.standin.stats()["activeWatches"] == 0, 15,
               "earlier tests' execs and watches to finish")
    execs = LineReader(kube.kubectl_argv("exec", "app-0", "--", "sh", "-c", f"echo {marker}; exec sleep 300"))
    watch = LineReader(kube.kubectl_argv("get", "pods", "-n", "default", "-w"))
    try:
        execs.wait_for(marker, 30)
        watch.wait_for("app-0", 30)
        wait_until(lambda: kube.standin.stats()["activeWatches"] == 1, 10, "the watch at the stand-in")
        assert kube.standin.stats()["activeExecs"] == 1
        execs.process.kill()
        watch.process.kill()
        execs.process.wait(10)
        watch.process.wait(10)
        wait_until(lambda: kube.standin.stats()["activeExecs"] == 0, 15,
                   "the stand-in to see the exec connection close (and kill `sleep`)")
        wait_until(lambda: kube.standin.stats()["activeWatches"] == 0, 15,
                   "the stand-in to see the watch connection close")
    finally:
        execs.stop()
        watch.stop()


def _wait_until_still(read: Callable[[], int], timeout: float, still_for: float = 1.0) -> int:
    """Polls a growing counter until it has not moved for `still_for` seconds; returns its value."""
    deadline = time.monotonic() + timeout
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        value = read()
        if value != last:
            last, last_change = value, time.monotonic()
        elif time.monotonic() - last_change >= still_for:
            return value
        time.sleep(0.1)
    raise HarnessError(f"the counter kept moving for {timeout:.0f}s (last {last})")


def test_exec_output_nobody_reads_stalls_only_that_exec(kube: KubeTunnel) -> None:
    """`kubectl exec -- cat /dev/zero` into a pipe nobody reads: flow control reaches the process in the pod (it
    stops being read, bounded bytes in flight), other kubectl requests on the same tunnel stay fast, the exec
    resumes when read, and killing kubectl ends the process."""
    def output() -> int:
        return kube.standin.stats()["execOutputBytes"]

    wait_until(lambda: kube.standin.stats()["activeExecs"] == 0, 15, "earlier execs to finish")
    start = output()
    flood = subprocess.Popen(kube.kubectl_argv("exec", "app-0", "--", "cat", "/dev/zero"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        wait_until(lambda: output() - start > MiB, 30, "the exec to start producing output")
        in_flight = _wait_until_still(lambda: output() - start, timeout=60)
        assert in_flight < 128 * MiB, (f"{in_flight / MiB:.0f} MiB left the pod for a reader that reads nothing: "
                                       "flow control is not end to end for upgraded streams")
        latencies = []
        for _ in range(10):
            began = time.monotonic()
            ok(kube.kubectl("get", "--raw", "/version", timeout=30))
            latencies.append(time.monotonic() - began)
        assert statistics.median(latencies) < 1.0, f"kubectl latencies behind a stalled exec: {latencies}"
        received = 0
        while received < 4 * MiB:
            piece = flood.stdout.read1(65536)
            assert piece, f"the exec ended after {received} more bytes: {flood.stderr.read()[-500:]!r}"
            received += len(piece)
        wait_until(lambda: output() - start > in_flight, 10, "the pod's output to resume once read")
    finally:
        flood.kill()
        flood.wait(10)
        flood.stdout.close()
        flood.stderr.close()
    wait_until(lambda: kube.standin.stats()["activeExecs"] == 0, 15,
               "the stand-in to see the exec cancelled once kubectl is gone")


def test_rotated_service_account_token_takes_effect_within_a_second(kube: KubeTunnel,
                                                                     kube_services_file: Path) -> None:
    """The agent checks bearerTokenFile at most once a second (not on every request, which runs on the tunnel's
    event loop): a wrong token is the API server's 401 for kubectl within that second, the right one works again as
    quickly (no agent restart)."""
    token_file = kube_services_file.with_name(kube_services_file.stem + "-token")
    good = token_file.read_text()
    try:
        token_file.write_text("not-the-token")
        started = time.monotonic()
        refused = wait_until(lambda: (r := kube.kubectl("get", "pods", "-n", "default")).returncode != 0 and r,
                             5, "kubectl to be refused with the rotated-out token")
        # kubectl words the API server's 401 either way, depending on which of its calls met it first.
        stderr = refused.stderr.decode()
        assert "Unauthorized" in stderr or "provide credentials" in stderr, stderr
        assert time.monotonic() - started < 3
    finally:
        token_file.write_text(good)
    wait_until(lambda: kube.kubectl("get", "pods", "-n", "default").returncode == 0, 5,
               "kubectl to work again with the good token")
    assert kube.agent.tunnels_up() == 1


# -- refusals -------------------------------------------------------------------------------------------------------


def test_forbidden_exec_reaches_kubectl_with_the_servers_message(kube: KubeTunnel, tmp_path: Path) -> None:
    """The API server's 403 to both upgrade attempts (WebSocket, then kubectl's SPDY fallback) reaches kubectl as
    the server's Status: kubectl prints exactly what it prints without the tunnel."""
    name = unique("locked")
    kube.standin.create_pod(NAMESPACE, name, annotations={FORBID_EXEC: "true"})
    try:
        before = len(kube.standin.requests())
        result = kube.kubectl("exec", "-n", NAMESPACE, name, "--", "true")
        attempts = [(r["method"], r["upgrade"], r["status"]) for r in requests_since(kube, before)
                    if r["path"].endswith(f"/{name}/exec")]
        assert result.returncode == 1
        stderr = result.stderr.decode()
        expected = (f'pods "{name}" is forbidden: User "system:serviceaccount:porthole:porthole-agent" cannot create '
                    f'resource "pods/exec" in API group "" in the namespace "{NAMESPACE}"')
        assert expected in stderr, stderr
        assert attempts == [("GET", "websocket", 403), ("POST", "SPDY/3.1", 403)], attempts
        direct = subprocess.run([porthole.kubectl_path(), "--kubeconfig", str(direct_kubeconfig(kube, tmp_path)),
                                 "--cache-dir", str(tmp_path / "cache"), "exec", "-n", NAMESPACE, name, "--", "true"],
                                capture_output=True, timeout=60)
        assert (direct.returncode, direct.stderr) == (result.returncode, result.stderr)
    finally:
        delete_quietly(kube, NAMESPACE, name)
