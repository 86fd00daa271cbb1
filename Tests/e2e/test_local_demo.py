"""`make run`'s script, examples/local-deploy/run.sh, with ports and a demo folder chosen by the test.

The demo serves a Kubernetes API through the tunnel: the simulated cluster (kube_standin.py --simulated) when the
user has no kubeconfig, else the kubeconfig's current context behind the read-only gate. A second run while one
runs must change nothing; a process that exits while the script waits for it fails the run at once; SIGTERM and
Ctrl-C stop everything and exit 0.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import porthole

RUN_SH = porthole.REPO_ROOT / "examples" / "local-deploy" / "run.sh"
READY_LINE = "Press Ctrl-C to stop."
START_TIMEOUT = 60.0


class Demo:
    """run.sh as a child process, stdout and stderr in files, in its own process group (as under make)."""

    def __init__(self, tmp_path: Path, name: str, demo_dir: Path, ports: dict[str, int], home: Path,
                 bin_dir: str | None = None, extra_env: dict[str, str] | None = None) -> None:
        self.dir = demo_dir
        self.ports = ports
        self.is_ready = False  # once ready, the pids recorded in the demo folder are this run's
        self.stdout_path = tmp_path / f"{name}.stdout"
        self.stderr_path = tmp_path / f"{name}.stderr"
        env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
        env.update({"HOME": str(home), "PYTHON": sys.executable, "PORTHOLE_DEMO_DIR": str(demo_dir),
                    **{key: str(port) for key, port in ports.items()}, **(extra_env or {})})
        with open(self.stdout_path, "w") as stdout, open(self.stderr_path, "w") as stderr:
            self.process = subprocess.Popen(["bash", str(RUN_SH), bin_dir or str(porthole.bin_dir())],
                                            stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env,
                                            start_new_session=True)

    def output(self) -> str:
        return self.stdout_path.read_text() + self.stderr_path.read_text()

    def wait_ready(self) -> None:
        porthole.wait_until(lambda: self.process.poll() is not None or READY_LINE in self.stdout_path.read_text(),
                            START_TIMEOUT, f"run.sh to print {READY_LINE!r}", interval=0.1)
        if self.process.poll() is not None:
            raise porthole.HarnessError(f"run.sh exited {self.process.returncode}:\n{self.output()}")
        self.is_ready = True

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise porthole.HarnessError(f"run.sh still running after {timeout:.0f}s:\n{self.output()}") from None

    def kubectl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([porthole.kubectl_path(), "--kubeconfig", str(self.dir / "kubeconfig"), *args],
                              capture_output=True, text=True, timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.wait_exit(30)

    def kill(self) -> None:
        """SIGTERM (run.sh stops what it started), bounded; then SIGKILL for it and every pid it recorded."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        pids = self.dir / "pids"
        for line in pids.read_text().splitlines() if self.is_ready and pids.exists() else []:
            try:
                os.kill(int(line.split()[1]), signal.SIGKILL)
            except ProcessLookupError:
                pass


def demo_ports() -> dict[str, int]:
    return {name: porthole.free_port() for name in ("AGENT_PORT", "SERVICE_PORT", "CONTROL_PORT", "METRICS_PORT")}


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory):
    """One demo without a kubeconfig (HOME has none, KUBECONFIG unset): it must start the simulated cluster."""
    tmp_path = tmp_path_factory.mktemp("demo")
    home = tmp_path / "home"
    home.mkdir()
    demo = Demo(tmp_path, "first", tmp_path / "demo", demo_ports(), home)
    try:
        demo.wait_ready()
        yield demo
    finally:
        demo.kill()


def test_without_a_kubeconfig_kubectl_reaches_a_cluster_that_says_it_is_simulated(simulated: Demo):
    output = simulated.output()
    assert "SIMULATED cluster (no kubeconfig found)" in output
    assert "get pods" in output and "logs simulated-app-0" in output and "exec simulated-app-0" in output

    pods = simulated.kubectl("get", "pods")
    assert pods.returncode == 0, pods.stderr
    assert pods.stdout.split()[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert "simulated-app-0" in pods.stdout and "Running" in pods.stdout

    logs = simulated.kubectl("logs", "simulated-app-0")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.startswith("This is a SIMULATED Kubernetes cluster")

    exec_ = simulated.kubectl("exec", "simulated-app-0", "--", "sh", "-c", "echo hello from $PWD")
    assert exec_.returncode == 0, exec_.stderr
    assert exec_.stdout.strip() == f"hello from {simulated.dir / 'kube' / 'pods' / 'default' / 'simulated-app-0'}"

    namespaces = simulated.kubectl("get", "namespaces", "-o", "name")
    assert "namespace/simulated-cluster" in namespaces.stdout.split()
    assert "simulated" in (simulated.dir / "kube.log").read_text().splitlines()[0].lower()


def test_a_second_run_says_a_demo_is_running_and_changes_nothing(simulated: Demo, tmp_path: Path):
    before = {name: (simulated.dir / name).read_bytes() for name in ("ca/ca.crt", "ca/ca.key", "kubeconfig", "token")}
    # Same folder: the lock says a demo runs there, whatever the ports.
    second = Demo(tmp_path, "second", simulated.dir, demo_ports(), tmp_path)
    try:
        assert second.wait_exit(10) == 1
    finally:
        second.kill()
    message = second.output()
    assert f"a Porthole demo is already running from {simulated.dir}; nothing was changed" in message
    assert f"run.sh pid {simulated.process.pid}" in message
    assert f"service https://127.0.0.1:{simulated.ports['SERVICE_PORT']}" in message

    # Another folder, the same ports: refused before anything is created there but the lock.
    other = tmp_path / "other"
    third = Demo(tmp_path, "third", other, simulated.ports, tmp_path)
    try:
        assert third.wait_exit(10) == 1
    finally:
        third.kill()
    assert "are in use by another program; nothing was started or deleted" in third.output()
    assert sorted(path.name for path in other.iterdir()) == ["lock"]

    assert {name: (simulated.dir / name).read_bytes() for name in before} == before
    assert simulated.process.poll() is None
    pods = simulated.kubectl("get", "pods")
    assert pods.returncode == 0 and "simulated-app-0" in pods.stdout, pods.stderr


def test_a_process_that_exits_fails_the_run_at_once(tmp_path: Path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for name in ("make-ca", "porthole-agent"):
        (fake_bin / name).symlink_to(porthole.binary(name))
    controller = fake_bin / "porthole-controller"
    controller.write_text("#!/bin/sh\necho 'error: --agent-listen: the controller could not start' >&2\nexit 3\n")
    controller.chmod(0o755)
    started = time.monotonic()
    demo = Demo(tmp_path, "failing", tmp_path / "demo", demo_ports(), tmp_path, bin_dir=str(fake_bin),
                extra_env={"DEMO_KUBE": "simulated"})
    try:
        # run.sh waits up to 20 s for the controller to be ready; an exit must end that wait at once.
        assert demo.wait_exit(15) == 1
    finally:
        demo.kill()
    assert time.monotonic() - started < 15
    message = demo.stderr_path.read_text()
    assert "error: controller exited (status 3) before it was ready" in message
    assert "the controller could not start" in message
    # Everything it started before is stopped again.
    address = (tmp_path / "demo" / "kube.out").read_text().split('"')[3]
    assert not accepts(int(address.rsplit(":", 1)[1]))


def test_processes_left_by_a_killed_run_are_named_and_left_alone(tmp_path: Path):
    ports = demo_ports()
    first = Demo(tmp_path, "killed", tmp_path / "demo", ports, tmp_path, extra_env={"DEMO_KUBE": "simulated"})
    try:
        first.wait_ready()
        os.kill(first.process.pid, signal.SIGKILL)  # run.sh only: what it started keeps running
        first.process.wait(10)
        controller_pid = next(line.split()[1] for line in (tmp_path / "demo" / "pids").read_text().splitlines()
                              if line.startswith("controller "))
        second = Demo(tmp_path, "after-kill", tmp_path / "demo", demo_ports(), tmp_path)
        try:
            assert second.wait_exit(10) == 1
        finally:
            second.kill()
        message = second.stderr_path.read_text()
        assert "processes of an earlier demo" in message and f"controller={controller_pid}" in message
        assert "nothing was changed" in message
        assert accepts(ports["SERVICE_PORT"])
    finally:
        first.kill()
    porthole.wait_until(lambda: not accepts(ports["SERVICE_PORT"]), 10, "the killed demo's controller to be gone")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_stop_everything_and_exit_0(tmp_path: Path, sig: int):
    ports = demo_ports()
    demo = Demo(tmp_path, "stopped", tmp_path / "demo", ports, tmp_path, extra_env={"DEMO_KUBE": "simulated"})
    try:
        demo.wait_ready()
        assert accepts(ports["SERVICE_PORT"])
        assert demo.stop(sig) == 0, demo.output()
    finally:
        demo.kill()
    for port in ports.values():
        assert not accepts(port), port
    assert not (tmp_path / "demo" / "run.info").exists()


def home_with_kubeconfig(tmp_path: Path, standin: porthole.KubeStandin) -> Path:
    """A HOME whose ~/.kube/config has one context, "mine", for the stand-in (a token, its CA as a file)."""
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(f"""apiVersion: v1
kind: Config
current-context: mine
contexts:
- name: mine
  context:
    cluster: standin
    user: me
clusters:
- name: standin
  cluster:
    server: "{standin.url}"
    certificate-authority: "{standin.ca_cert}"
users:
- name: me
  user:
    token: "{standin.token}"
""")
    return home


def test_with_a_kubeconfig_the_demo_serves_its_context_read_only(tmp_path: Path):
    standin = porthole.KubeStandin(tmp_path / "standin", tmp_path)
    demo = Demo(tmp_path, "kubeconfig", tmp_path / "demo", demo_ports(), home_with_kubeconfig(tmp_path, standin))
    try:
        demo.wait_ready()
        assert 'context "mine"' in demo.output() and "read-only" in demo.output()
        pods = demo.kubectl("get", "pods")
        assert pods.returncode == 0, pods.stderr
        assert "app-0" in pods.stdout
        deleted = demo.kubectl("delete", "pod", "app-0")
        assert deleted.returncode != 0
        assert "the Porthole demo serves your cluster read-only: DELETE" in deleted.stderr
        exec_ = demo.kubectl("exec", "app-0", "--", "true")
        assert exec_.returncode != 0
        assert "read-only" in exec_.stderr
        assert standin.json("GET", "/api/v1/namespaces/default/pods/app-0")["metadata"]["name"] == "app-0"
        assert not [r for r in standin.requests() if r["method"] != "GET" or r.get("upgrade")]
        assert demo.stop() == 0
    finally:
        demo.kill()
        standin.stop()


def test_demo_kube_write_lets_the_agent_use_the_kubeconfig_itself(tmp_path: Path):
    standin = porthole.KubeStandin(tmp_path / "standin", tmp_path)
    demo = Demo(tmp_path, "kubeconfig-write", tmp_path / "demo", demo_ports(),
                home_with_kubeconfig(tmp_path, standin), extra_env={"DEMO_KUBE": "write"})
    try:
        demo.wait_ready()
        assert 'context "mine"' in demo.output() and "READ-WRITE" in demo.output()
        services = (tmp_path / "demo" / "services.json").read_text()
        assert '"kubeconfig": "' + str(tmp_path / "home" / ".kube" / "config") + '"' in services
        exec_ = demo.kubectl("exec", "app-0", "--", "sh", "-c", "echo written")
        assert exec_.returncode == 0 and exec_.stdout.strip() == "written", exec_.stderr
        deleted = demo.kubectl("delete", "pod", "app-0", "--wait=false")
        assert deleted.returncode == 0, deleted.stderr
        assert standin.call("GET", "/api/v1/namespaces/default/pods/app-0").status == 404
        assert demo.stop() == 0
    finally:
        demo.kill()
        standin.stop()
