"""Fixtures for Porthole's end-to-end tests.

Session-wide: one CA, one backend, one controller and one agent ("edge", service kubernetes/default) that most
tests share. Tests that kill or restart processes start their own with the `start_controller` / `start_agent`
factories, so a failure there cannot break the shared tunnel. Every process is stopped at the end of its scope.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

import porthole
from porthole import CA, Agent, Backend, Controller, ControlClient, Kubeconfig, Stack


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("porthole")


@pytest.fixture(scope="session")
def ca(workdir: Path) -> CA:
    """make-ca --out DIR --agent edge (also proves make-ca writes the files the contract lists)."""
    return porthole.make_ca(workdir / "ca")


@pytest.fixture(scope="session")
def backend(workdir: Path) -> Iterator[Backend]:
    server = Backend(workdir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def services_file(workdir: Path, backend: Backend) -> Path:
    return porthole.write_services_file(workdir / "services.json", backend)


@pytest.fixture(scope="session")
def controller(ca: CA, workdir: Path) -> Iterator[Controller]:
    process = Controller(ca, workdir)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def agent(ca: CA, controller: Controller, services_file: Path, workdir: Path) -> Iterator[Agent]:
    process = Agent(ca, controller, services_file, workdir)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def control(controller: Controller) -> ControlClient:
    return controller.control()


@pytest.fixture(scope="session")
def token(control: ControlClient, agent: Agent) -> str:
    """A service token for edge's kubernetes/default, valid for the whole session."""
    return control.service_token(ttl=3600)["token"]


@pytest.fixture(scope="session")
def kubeconfig(control: ControlClient, agent: Agent, workdir: Path) -> Kubeconfig:
    return porthole.save_kubeconfig(control.kubeconfig(user="e2e-kubectl", ttl=3600), workdir)


@pytest.fixture
def stack(ca: CA, backend: Backend, controller: Controller, agent: Agent, control: ControlClient, token: str,
          kubeconfig: Kubeconfig) -> Stack:
    for process in (backend.process, controller.process, agent.process):
        assert process.is_running(), f"{process.name} is not running (exit {process.process.returncode})\n" \
                                     f"{process.tail()}"
    return Stack(ca, backend, controller, agent, control, token, kubeconfig)


@pytest.fixture
def start_controller(ca: CA, tmp_path: Path) -> Iterator[Callable[..., Controller]]:
    """Factory for a controller owned by one test; stopped when the test ends."""
    started: list[Controller] = []

    def start(*extra_args: str) -> Controller:
        process = Controller(ca, tmp_path, extra_args, name=f"controller-{len(started) + 1}")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def start_agent(ca: CA, services_file: Path, tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    """Factory for an agent owned by one test (same services file as the shared one); stopped when the test ends."""
    started: list[Agent] = []

    def start(controller: Controller, *extra_args: str) -> Agent:
        process = Agent(ca, controller, services_file, tmp_path, extra_args=extra_args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


# -- show the processes' logs when a test fails -------------------------------------------------------------------


_first_process = pytest.StashKey[int]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_first_process] = len(porthole.STARTED)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when not in ("setup", "call") or not report.failed:
        return
    first = item.stash.get(_first_process, 0)
    for index, process in enumerate(porthole.STARTED):
        if index >= first or process in porthole.RUNNING:
            report.sections.append((f"{process.name} log (pid {process.pid}, {process.log_path})", process.tail(80)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Last line of defence: nothing the harness started outlives the run."""
    porthole.stop_all(porthole.RUNNING)


# -- Kubernetes stand-in and its tunnel (test_kubernetes.py) -------------------------------------------------------


@pytest.fixture(scope="session")
def kube_standin(workdir: Path) -> Iterator[porthole.KubeStandin]:
    """kube_standin.py with its own CA and token (session-wide)."""
    server = porthole.KubeStandin(workdir / "kube-standin", workdir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kube_services_file(workdir: Path, kube_standin: porthole.KubeStandin) -> Path:
    return porthole.write_kube_services_file(workdir / "kube-services.json", kube_standin)


@pytest.fixture(scope="session")
def kube_tunnel_session(ca: CA, kube_standin: porthole.KubeStandin, kube_services_file: Path,
                        workdir: Path) -> Iterator[porthole.KubeTunnel]:
    """Its own controller and agent `edge` whose kubernetes/default is the stand-in, and an issued kubeconfig."""
    tunnel = porthole.start_kube_tunnel(ca, kube_standin, kube_services_file, workdir / "kube")
    yield tunnel
    tunnel.agent.stop()
    tunnel.controller.stop()


@pytest.fixture
def kube(kube_tunnel_session: porthole.KubeTunnel) -> porthole.KubeTunnel:
    tunnel = kube_tunnel_session
    for process in (tunnel.standin.process, tunnel.controller.process, tunnel.agent.process):
        assert process.is_running(), f"{process.name} is not running (exit {process.process.returncode})\n" \
                                     f"{process.tail()}"
    return tunnel


@pytest.fixture
def start_kube_tunnel(ca: CA, kube_standin: porthole.KubeStandin, kube_services_file: Path,
                      tmp_path: Path) -> Iterator[Callable[..., porthole.KubeTunnel]]:
    """Factory for a controller + agent for the stand-in owned by one test (e.g. with other PING settings)."""
    started: list[porthole.KubeTunnel] = []

    def start(controller_args: tuple[str, ...] = (), agent_args: tuple[str, ...] = ()) -> porthole.KubeTunnel:
        tunnel = porthole.start_kube_tunnel(ca, kube_standin, kube_services_file, tmp_path / f"kube-{len(started)}",
                                            controller_args, agent_args, name=f"kube{len(started) + 1}")
        started.append(tunnel)
        return tunnel

    yield start
    for tunnel in started:
        tunnel.agent.stop()
        tunnel.controller.stop()
