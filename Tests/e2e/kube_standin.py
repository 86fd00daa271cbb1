#!/usr/bin/env python3
"""TEST FIXTURE — a Kubernetes API server stand-in for Porthole's end-to-end tests. Not Kubernetes, not Porthole.

It serves just enough of the core/v1 API, over HTTPS with its own CA, for kubectl (and the Python `kubernetes`
client) to do what users do through Porthole: discovery, get/list/watch namespaces and pods (server-side Tables
included), create/delete pods, logs -f, exec and attach (WebSocket v5/v4.channel.k8s.io, SPDY/3.1 fallback),
port-forward (SPDY/3.1 inside a WebSocket as kubectl >= 1.31 does, v4.channel.k8s.io as the Python client does, and
plain SPDY/3.1 upgrades), and ephemeral containers for `kubectl debug`. Pods are fake; what runs "in" them is real:
exec/attach start local processes (in a pseudo-terminal when tty=true) whose working directory and $HOME are the
pod's private root directory, DIR/pods/NAMESPACE/NAME; a pod's port P is 127.0.0.1:P. Standard library only,
plus `cryptography` for its CA and serving certificate.

    python3 kube_standin.py --dir DIR --token TOKEN [--listen 127.0.0.1:0] [--simulated]

It writes DIR/ca.crt (what clients trust), DIR/ca.key, DIR/tls.crt, DIR/tls.key, and once it accepts connections
prints {"listening": "127.0.0.1:PORT"} on stdout. Every request, the side channel included, needs
`Authorization: Bearer TOKEN` (401 Status otherwise).

Seeded: namespaces default, kube-system, porthole-e2e; pods default/app-0 (container "app"),
kube-system/coredns-0 (container "coredns"). With --simulated (what `make run` starts when the user has no
kubeconfig): namespaces default, kube-system, simulated-cluster and the pod default/simulated-app-0, whose log,
like the stand-in's first log line, says the cluster is simulated; the server version says so too.

Side channel for tests (not Kubernetes):

    POST /standin/pods/NS/NAME/log      append the body to the pod's log (what `logs -f` streams)
    GET  /standin/pods/NS/NAME          {"root", "processes", "uid", "resourceVersion", "ephemeralContainers",
                                        "patches", "dryRuns", "refusals", "signals"} of a pod
    POST /standin/pods/NS/NAME/recreate delete the pod and create it again under its name (new uid)
    POST /standin/pods/NS/NAME/containers/C/signal   {"signal": "HUP"} to a container's main process
    GET|PUT /standin/config             knownImages, nonRootImages, containerStartSeconds, imagePullBackOffSeconds
    GET  /standin/requests              the requests served so far (method, path, query, upgrade, protocol, status,
                                        headers but Authorization, authorizationSHA256)
    GET  /standin/stats                 {"activeWatches": N, "activeExecs": N, "activeForwards": N, ...}
    ANY  /standin/upgrade-echo          any `Upgrade:` (SPDY/3.1, …): 101 with the same Upgrade, then echoes raw bytes

A pod whose annotations have "standin.porthole.test/forbid-exec": "true" answers exec and attach with 403 and a
Status whose message is the RBAC refusal kube-apiserver would give.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import errno
import fcntl
import hashlib
import json
import os
import pty
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import termios
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import parse_qs, unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import spdy  # noqa: E402 - helpers next to this file
import ws  # noqa: E402
from backend import parse_address  # noqa: E402 - the test backend's HOST:PORT flag parser

SERVER_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0-porthole-standin",
                  "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                  "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
                  "platform": "linux/amd64"}
FORBID_EXEC_ANNOTATION = "standin.porthole.test/forbid-exec"
SERVICE_ACCOUNT = "system:serviceaccount:porthole:porthole-agent"
WATCH_LIMIT = 1800.0  # a watch ends by itself after this long unless timeoutSeconds says less
BOOKMARK_INTERVAL = 10.0
EXEC_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
SPDY_EXEC_PROTOCOLS = ["v4.channel.k8s.io"]
PORTFORWARD_WS_PROTOCOLS = ["SPDY/3.1+portforward.k8s.io", "v4.channel.k8s.io"]
READ_SIZE = 16 * 1024
MAX_BODY = 16 * 1024 * 1024


def log(message: str) -> None:
    sys.stderr.write(f"standin: {message}\n")
    sys.stderr.flush()


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def rfc3339(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def human_age(since: str) -> str:
    """kubectl's short durations: 45s, 3m12s, 5h, 2d."""
    seconds = max(0, int((now() - parse_rfc3339(since)).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    return f"{hours}h" if hours < 48 else f"{hours // 24}d"


def status_object(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
              "reason": reason, "code": code}
    if details:
        status["details"] = details
    return status


# -- certificates -------------------------------------------------------------------------------------------------


def make_certificates(directory: Path) -> tuple[Path, Path]:
    """Its own CA (ca.crt, ca.key) and a serving certificate for 127.0.0.1 / localhost (tls.crt, tls.key)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    start = now() - datetime.timedelta(minutes=5)
    end = now() + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-standin-ca")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
                x509.DNSName("kubernetes.default.svc")]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    (directory / "ca.crt").write_bytes(ca_cert.public_bytes(pem))
    (directory / "ca.key").write_bytes(ca_key.private_bytes(pem, pkcs8, serialization.NoEncryption()))
    (directory / "tls.crt").write_bytes(cert.public_bytes(pem))
    (directory / "tls.key").write_bytes(key.private_bytes(pem, pkcs8, serialization.NoEncryption()))
    for name in ("ca.key", "tls.key"):
        (directory / name).chmod(0o600)
    return directory / "tls.crt", directory / "tls.key"


# -- local processes ----------------------------------------------------------------------------------------------


PROCESSES: set["Proc"] = set()
PROCESSES_LOCK = threading.Lock()


class Proc:
    """A local process standing in for a container's: own session (killed as a group), pipes or a pty."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], stdin: bool, tty: bool,
                 size: tuple[int, int] | None = None) -> None:
        self.argv = argv
        self.tty = tty
        self.master: int | None = None
        self._stdin_lock = threading.Lock()
        self.stdin_closed = False
        if shutil.which(argv[0], path=env.get("PATH")) is None and not os.path.isfile(os.path.join(cwd, argv[0])):
            raise FileNotFoundError(errno.ENOENT, f'exec: "{argv[0]}": executable file not found in $PATH')
        if tty:
            master, slave = pty.openpty()
            if size:
                set_window_size(slave, *size)
            try:
                # setsid -c: a new session whose controlling terminal is the pty, so the shell gets job control and
                # SIGWINCH when the size changes.
                self.popen = subprocess.Popen(["setsid", "-c", *argv], cwd=cwd, env=env, stdin=slave, stdout=slave,
                                              stderr=slave, close_fds=True)
            finally:
                os.close(slave)
            self.master = master
            self.stdout_fd: int | None = master
            self.stderr_fd: int | None = None
            self.stdin_fd: int | None = master if stdin else None
        else:
            self.popen = subprocess.Popen(argv, cwd=cwd, env=env,
                                          stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            self.stdout_fd = self.popen.stdout.fileno()
            self.stderr_fd = self.popen.stderr.fileno()
            self.stdin_fd = self.popen.stdin.fileno() if stdin else None
        with PROCESSES_LOCK:
            PROCESSES.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def write_stdin(self, data: bytes) -> None:
        with self._stdin_lock:
            if self.stdin_fd is None or self.stdin_closed:
                return
            view = memoryview(data)
            try:
                while view:
                    written = os.write(self.stdin_fd, view)
                    view = view[written:]
            except OSError:
                self._close_stdin_locked()

    def close_stdin(self) -> None:
        with self._stdin_lock:
            self._close_stdin_locked()

    def _close_stdin_locked(self) -> None:
        if self.stdin_closed:
            return
        self.stdin_closed = True
        if self.tty:
            return  # the pty stays open for output; a terminal has no half-close
        if self.popen.stdin is not None:
            try:
                self.popen.stdin.close()
            except OSError:
                pass

    def resize(self, width: int, height: int) -> None:
        if self.master is not None and width > 0 and height > 0:
            set_window_size(self.master, height, width)

    def kill(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    self.popen.kill()
                except ProcessLookupError:
                    pass

    def wait(self) -> int:
        code = self.popen.wait()
        with PROCESSES_LOCK:
            PROCESSES.discard(self)
        return code

    def release(self) -> None:
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        if self.master is not None:
            try:
                os.close(self.master)
            except OSError:
                pass
            self.master = None


def set_window_size(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def read_fd(fd: int) -> bytes:
    """One read; b"" at EOF (a pty master reports EIO once the last slave holder is gone)."""
    try:
        return os.read(fd, READ_SIZE)
    except OSError as error:
        if error.errno in (errno.EIO, errno.EBADF):
            return b""
        raise


def exit_status(code: int, argv: list[str]) -> dict:
    if code < 0:
        code = 128 - code  # killed by a signal: what a shell would report
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command {argv}, "
                       f"exit code {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def internal_error_status(message: str) -> dict:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError",
            "details": {"causes": [{"message": message}]}, "code": 500}


# -- the store ----------------------------------------------------------------------------------------------------


class Pod:
    def __init__(self, obj: dict, root: Path) -> None:
        self.obj = obj
        self.root = root
        self.log: list[tuple[str, str]] = []  # (RFC 3339 nano timestamp, line with "\n")
        self.deleted = False
        self.containers: dict[str, "ContainerRuntime"] = {}
        self.patches = 0  # ephemeralcontainers updates stored (dry runs and refusals not counted)
        self.dry_runs = 0  # dryRun=All updates that passed validation and admission
        self.refusals = 0  # updates answered 403, 409 or 422
        self.signals: list[dict] = []  # signals delivered to a container's PID 1 (exec `kill`, the side channel)

    @property
    def name(self) -> str:
        return self.obj["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return self.obj["metadata"]["namespace"]

    def env(self, tty: bool) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": str(self.root),
               "HOSTNAME": self.name, "PS1": f"{self.name}$ ", "LANG": "C.UTF-8",
               "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
        if tty:
            env["TERM"] = "xterm"
        return env

    def container_spec(self, name: str) -> dict | None:
        for key in ("containers", "initContainers", "ephemeralContainers"):
            for container in self.obj["spec"].get(key) or []:
                if container.get("name") == name:
                    return container
        return None

    def default_container(self) -> str:
        annotation = self.obj["metadata"].get("annotations", {}).get("kubectl.kubernetes.io/default-container")
        return annotation or self.obj["spec"]["containers"][0]["name"]


class Store:
    """Namespaces, pods and a change log of (resourceVersion, kind, type, object) for watches; one lock."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cond = threading.Condition()
        self.rv = 100
        self.namespaces: dict[str, dict] = {}
        self.pods: dict[tuple[str, str], Pod] = {}
        self.events: list[tuple[int, str, str, dict]] = []
        self.requests: list[dict] = []
        self.stats = {"activeWatches": 0, "activeExecs": 0, "activeAttaches": 0, "activeForwards": 0,
                      "activeLogs": 0, "watchesServed": 0, "execsServed": 0, "forwardConnections": 0,
                      "execOutputBytes": 0}
        self._ip = 10
        # The simulated kubelet and image registry (GET/PUT /standin/config).
        self.config = {"knownImages": ["*"], "nonRootImages": ["*nonroot*"], "containerStartSeconds": 0.5,
                       "imagePullBackOffSeconds": 1.0}

    # -- helpers (call with the lock held) --------------------------------------------------------------------

    def _bump(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _record(self, kind: str, event_type: str, obj: dict) -> None:
        self.events.append((self.rv, kind, event_type, copy.deepcopy(obj)))
        self.cond.notify_all()

    def stat(self, key: str, delta: int) -> None:
        with self.cond:
            self.stats[key] += delta

    # -- namespaces -------------------------------------------------------------------------------------------

    def add_namespace(self, name: str, labels: dict | None = None, annotations: dict | None = None) -> dict:
        with self.cond:
            obj = {"kind": "Namespace", "apiVersion": "v1",
                   "metadata": {"name": name, "uid": str(uuid.uuid4()), "resourceVersion": self._bump(),
                                "creationTimestamp": rfc3339(now()),
                                "labels": dict(labels or {}) | {"kubernetes.io/metadata.name": name}},
                   "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
            if annotations:
                obj["metadata"]["annotations"] = dict(annotations)
            self.namespaces[name] = obj
            self._record("Namespace", "ADDED", obj)
            return copy.deepcopy(obj)

    def create_namespace(self, body: dict) -> tuple[int, dict]:
        metadata = body.get("metadata") or {}
        name = metadata.get("name") or ""
        with self.cond:
            if not is_dns_label(name):
                error = FieldError("metadata.name", "Required value", "name or generateName is required") if not name \
                    else FieldError("metadata.name", "Invalid value", f'"{name}": {DNS_LABEL_MESSAGE}')
                return 422, invalid_status("Namespace", name, [error])
            if name in self.namespaces:
                return 409, status_object(409, "AlreadyExists", f'namespaces "{name}" already exists',
                                          {"name": name, "kind": "namespaces"})
            return 201, self.add_namespace(name, metadata.get("labels"), metadata.get("annotations"))

    def patch_namespace(self, name: str, patch: dict) -> tuple[int, dict]:
        """Labels and annotations (merge or strategic patch: the same for maps); the name label stays."""
        with self.cond:
            obj = self.namespaces.get(name)
            if obj is None:
                return 404, status_object(404, "NotFound", f'namespaces "{name}" not found',
                                          {"name": name, "kind": "namespaces"})
            metadata = patch.get("metadata") or {}
            for key in ("labels", "annotations"):
                if key in metadata:
                    merged = json_merge_patch(obj["metadata"].get(key) or {}, metadata[key] or {})
                    if merged:
                        obj["metadata"][key] = merged
                    else:
                        obj["metadata"].pop(key, None)
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            obj["metadata"]["resourceVersion"] = self._bump()
            self._record("Namespace", "MODIFIED", obj)
            return 200, copy.deepcopy(obj)

    # -- pods -------------------------------------------------------------------------------------------------

    def create_pod(self, namespace: str, body: dict) -> tuple[int, dict]:
        metadata = dict(body.get("metadata") or {})
        spec = copy.deepcopy(body.get("spec") or {})
        with self.cond:
            if namespace not in self.namespaces:
                return 404, status_object(404, "NotFound", f'namespaces "{namespace}" not found',
                                          {"name": namespace, "kind": "namespaces"})
            name = metadata.get("name") or (metadata.get("generateName", "pod-") + secrets.token_hex(3)[:5])
            if (namespace, name) in self.pods:
                return 409, status_object(409, "AlreadyExists", f'pods "{name}" already exists',
                                          {"name": name, "kind": "pods"})
            containers = spec.get("containers") or []
            if not containers or not all(isinstance(c, dict) and c.get("name") for c in containers):
                return 422, status_object(422, "Invalid", f'Pod "{name}" is invalid: spec.containers: Required value',
                                          {"name": name, "kind": "Pod"})
            if spec.get("ephemeralContainers"):
                return 422, invalid_status("Pod", name, [FieldError(
                    "spec.ephemeralContainers", "Forbidden", "cannot be set on create")])
            refusal = pod_security_refusal(self.namespaces[namespace], name, spec)
            if refusal is not None:
                return 403, refusal
            started = rfc3339(now())
            self._ip += 1
            for container in containers:
                container.setdefault("image", "busybox")
                container.setdefault("imagePullPolicy", "IfNotPresent")
                container.setdefault("terminationMessagePolicy", "File")
                container.setdefault("resources", {})
            spec.setdefault("nodeName", "standin-node")
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("dnsPolicy", "ClusterFirst")
            spec.setdefault("schedulerName", "default-scheduler")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            spec.setdefault("securityContext", {})  # kube-apiserver defaults it; kubectl debug dereferences it
            spec.setdefault("serviceAccountName", "default")
            spec.setdefault("serviceAccount", "default")
            spec.setdefault("enableServiceLinks", True)
            spec.setdefault("priority", 0)
            spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
            obj = {
                "kind": "Pod", "apiVersion": "v1",
                "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                             "resourceVersion": self._bump(), "creationTimestamp": started,
                             "labels": dict(metadata.get("labels") or {}),
                             "annotations": dict(metadata.get("annotations") or {})},
                "spec": spec,
                "status": {
                    "phase": "Running", "hostIP": "192.168.49.2", "podIP": f"10.244.0.{self._ip % 250 + 2}",
                    "podIPs": [{"ip": f"10.244.0.{self._ip % 250 + 2}"}], "startTime": started,
                    "qosClass": "BestEffort",
                    "conditions": [{"type": condition, "status": "True", "lastProbeTime": None,
                                    "lastTransitionTime": started}
                                   for condition in ("PodReadyToStartContainers", "Initialized", "Ready",
                                                     "ContainersReady", "PodScheduled")],
                    "containerStatuses": [self._running_status(container, started) for container in containers],
                },
            }
            if not obj["metadata"]["labels"]:
                del obj["metadata"]["labels"]
            if not obj["metadata"]["annotations"]:
                del obj["metadata"]["annotations"]
            root = self.root / "pods" / namespace / name
            (root / "tmp").mkdir(parents=True, exist_ok=True)
            self.pods[(namespace, name)] = Pod(obj, root)
            self._record("Pod", "ADDED", obj)
            return 201, copy.deepcopy(obj)

    @staticmethod
    def _running_status(container: dict, started: str) -> dict:
        return {"name": container["name"], "ready": True, "started": True, "restartCount": 0,
                "image": container.get("image", "busybox"), "imageID": "docker.io/library/busybox@sha256:" + "0" * 64,
                "containerID": "containerd://" + secrets.token_hex(32),
                "state": {"running": {"startedAt": started}}, "lastState": {}}

    def get_pod(self, namespace: str, name: str) -> Pod | None:
        with self.cond:
            return self.pods.get((namespace, name))

    def delete_pod(self, namespace: str, name: str) -> dict | None:
        with self.cond:
            pod = self.pods.pop((namespace, name), None)
            if pod is None:
                return None
            pod.deleted = True
            pod.obj["metadata"]["resourceVersion"] = self._bump()
            pod.obj["metadata"]["deletionTimestamp"] = rfc3339(now())
            pod.obj["metadata"]["deletionGracePeriodSeconds"] = 0
            self._record("Pod", "DELETED", pod.obj)
            runtimes = list(pod.containers.values())
            result = copy.deepcopy(pod.obj)
        for runtime in runtimes:
            runtime.proc.kill()
        return result

    def recreate_pod(self, namespace: str, name: str) -> tuple[int, dict]:
        """Test hook: delete the pod and create it again under the same name (new uid, no ephemeral containers), as a
        controller replacing it would."""
        with self.cond:
            pod = self.pods.get((namespace, name))
            if pod is None:
                return 404, status_object(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
            spec = copy.deepcopy(pod.obj["spec"])
            spec.pop("ephemeralContainers", None)
            metadata = {key: copy.deepcopy(pod.obj["metadata"][key]) for key in ("name", "labels", "annotations")
                        if key in pod.obj["metadata"]}
        self.delete_pod(namespace, name)
        return self.create_pod(namespace, {"metadata": metadata, "spec": spec})

    def update_ephemeral_containers(self, pod: Pod, patched: dict, precondition_uid: str | None,
                                    dry_run: bool) -> tuple[int, dict, list[dict]]:
        """The ephemeralcontainers subresource's update: `patched` is the whole pod after the client's patch (or
        the PUT body). Only spec.ephemeralContainers is taken from it (EphemeralContainersStrategy); metadata.uid and
        metadata.resourceVersion are checked; then validation (422), then PodSecurity admission (403). Returns
        (status, body, containers added); with `dry_run` nothing is stored and the body is what would be."""
        with self.cond:
            if pod.deleted:
                return 404, status_object(404, "NotFound", f'pods "{pod.name}" not found',
                                          {"name": pod.name, "kind": "pods"}), []
            current = pod.obj
            uid = current["metadata"]["uid"]
            if precondition_uid and precondition_uid != uid:
                pod.refusals += 1
                return 409, conflict_status(pod.name, f"Precondition failed: UID in precondition: {precondition_uid}, "
                                                      f"UID in object meta: {uid}"), []
            metadata = patched.get("metadata") if isinstance(patched.get("metadata"), dict) else {}
            wanted_rv = metadata.get("resourceVersion")
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                pod.refusals += 1
                return 409, conflict_status(pod.name, "the object has been modified; please apply your changes to "
                                                      "the latest version and try again"), []
            errors = []
            if metadata.get("uid") and metadata["uid"] != uid:
                errors.append(FieldError("metadata.uid", "Invalid value", f'"{metadata["uid"]}": field is immutable'))
            spec = patched.get("spec") if isinstance(patched.get("spec"), dict) else {}
            new_list = copy.deepcopy(spec.get("ephemeralContainers") or [])
            if not isinstance(new_list, list):
                new_list = []
            for container in new_list:
                if isinstance(container, dict):
                    default_ephemeral_container(container)
            errors += validate_ephemeral_update(current["spec"], new_list)
            if errors:
                pod.refusals += 1
                return 422, invalid_status("Pod", pod.name, errors), []
            result = copy.deepcopy(current)
            result["spec"]["ephemeralContainers"] = new_list
            if not new_list:
                del result["spec"]["ephemeralContainers"]
            namespace = self.namespaces.get(pod.namespace)
            refusal = pod_security_refusal(namespace, pod.name, result["spec"]) if namespace else None
            if refusal is not None:
                pod.refusals += 1
                return 403, refusal, []
            old_names = {c["name"] for c in current["spec"].get("ephemeralContainers") or []}
            added = [c for c in new_list if c["name"] not in old_names]
            if dry_run:
                pod.dry_runs += 1
                return 200, result, added
            pod.patches += 1
            if added:
                current["spec"]["ephemeralContainers"] = new_list
                current["metadata"]["resourceVersion"] = self._bump()
                self._record("Pod", "MODIFIED", current)
            return 200, copy.deepcopy(current), added

    def set_ephemeral_state(self, pod: Pod, name: str, state: dict, **fields: object) -> bool:
        """The kubelet's status update for one ephemeral container: a MODIFIED event for watches."""
        with self.cond:
            if pod.deleted:
                return False
            statuses = pod.obj["status"].setdefault("ephemeralContainerStatuses", [])
            status = next((s for s in statuses if s["name"] == name), None)
            if status is None:
                spec = pod.container_spec(name) or {}
                status = {"name": name, "state": {}, "lastState": {}, "ready": False, "restartCount": 0,
                          "image": spec.get("image", ""), "imageID": ""}
                statuses.append(status)
            status["state"] = state
            status.update(fields)
            pod.obj["metadata"]["resourceVersion"] = self._bump()
            self._record("Pod", "MODIFIED", pod.obj)
            return True

    def restart_container(self, pod: Pod, name: str, signal_number: int) -> None:
        """A regular container whose main process died of a signal: the kubelet restarts it."""
        with self.cond:
            for status in pod.obj["status"].get("containerStatuses") or []:
                if status["name"] == name:
                    started = status["state"].get("running", {}).get("startedAt", rfc3339(now()))
                    status["lastState"] = {"terminated": {"exitCode": 128 + signal_number, "reason": "Error",
                                                          "startedAt": started, "finishedAt": rfc3339(now()),
                                                          "containerID": status.get("containerID", "")}}
                    status["restartCount"] += 1
                    status["containerID"] = "containerd://" + secrets.token_hex(32)
                    status["state"] = {"running": {"startedAt": rfc3339(now())}}
                    pod.obj["metadata"]["resourceVersion"] = self._bump()
                    self._record("Pod", "MODIFIED", pod.obj)

    def container_state(self, pod: Pod, name: str) -> dict | None:
        with self.cond:
            for status in pod.obj["status"].get("ephemeralContainerStatuses") or []:
                if status["name"] == name:
                    return copy.deepcopy(status["state"])
        return None

    def container_exited(self, pod: Pod, name: str, code: int) -> None:
        """An ephemeral container's process ended: its status says terminated (others stay "running")."""
        if code < 0:
            signal_number, code = -code, 128 - code
        else:
            signal_number = 0
        with self.cond:
            statuses = pod.obj["status"].get("ephemeralContainerStatuses") or []
            status = next((s for s in statuses if s["name"] == name), None)
            if status is None or pod.deleted:
                return
            started = status["state"].get("running", {}).get("startedAt", rfc3339(now()))
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "startedAt": started,
                      "finishedAt": rfc3339(now()), "containerID": status.get("containerID", "")}
        if signal_number:
            terminated["signal"] = signal_number
        self.set_ephemeral_state(pod, name, {"terminated": terminated}, started=False)

    def append_log(self, pod: Pod, text: str) -> int:
        lines = text.splitlines(keepends=True)
        with self.cond:
            for line in lines:
                stamp = now().strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
                pod.log.append((stamp, line if line.endswith("\n") else line + "\n"))
            self.cond.notify_all()
        return len(lines)

    # -- lists ------------------------------------------------------------------------------------------------

    def list_objects(self, kind: str, namespace: str | None, matches: Callable[[dict], bool]) -> tuple[list, int]:
        with self.cond:
            if kind == "Namespace":
                objects = list(self.namespaces.values())
            else:
                objects = [pod.obj for (ns, _), pod in self.pods.items() if namespace is None or ns == namespace]
            return [copy.deepcopy(obj) for obj in objects if matches(obj)], self.rv


# -- ephemeral containers: patches, validation, PodSecurity admission, images -------------------------------------
#
# Each behaviour below is taken from the Kubernetes API server or kubelet, named where it comes from:
#   validation    pkg/apis/core/validation: ValidatePodEphemeralContainersUpdate, validateEphemeralContainers
#   strategy      pkg/registry/core/pod: EphemeralContainersStrategy (only spec.ephemeralContainers is taken
#                 from the patched object; everything else comes from the stored pod)
#   metadata      apiserver rest.BeforeUpdate: a PATCH whose metadata.uid differs is 422 "field is immutable";
#                 a PUT carrying a uid is a storage precondition: 409 "Precondition failed: UID in precondition"
#   PodSecurity   staging/src/k8s.io/pod-security-admission/policy/check_*.go (message forms, check order)
#   kubelet       ErrImagePull / ImagePullBackOff / CreateContainerConfigError (verifyRunAsNonRoot) reasons

EPHEMERAL_FORBIDDEN_FIELDS = ("ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "resources",
                              "resizePolicy", "restartPolicy")
DNS_LABEL_MESSAGE = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                     "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                     "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
PSA_ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"
BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                         "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
UNKNOWN_IMAGE_MARKER = "does-not-exist"


class FieldError:
    """One field.Error: `PATH: TYPE: DETAIL` as kube-apiserver prints it, and its Status cause."""

    REASONS = {"Required value": "FieldValueRequired", "Forbidden": "FieldValueForbidden",
               "Not found": "FieldValueNotFound", "Duplicate value": "FieldValueDuplicate",
               "Invalid value": "FieldValueInvalid", "Unsupported value": "FieldValueNotSupported"}

    def __init__(self, field: str, kind: str, text: str) -> None:
        self.field, self.kind, self.text = field, kind, text

    @property
    def message(self) -> str:
        return f"{self.kind}: {self.text}" if self.text else self.kind

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def cause(self) -> dict:
        return {"reason": self.REASONS[self.kind], "message": self.message, "field": self.field}


def invalid_status(kind: str, name: str, errors: list[FieldError]) -> dict:
    """errors.NewInvalid: `Kind "name" is invalid: ERR` (one) or `[ERR1, ERR2]` (several), 422 with causes."""
    text = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(error) for error in errors) + "]"
    return status_object(422, "Invalid", f'{kind} "{name}" is invalid: {text}',
                         {"name": name, "kind": kind, "causes": [error.cause() for error in errors]})


def conflict_status(name: str, why: str) -> dict:
    return status_object(409, "Conflict", f'Operation cannot be fulfilled on pods "{name}": {why}',
                         {"name": name, "kind": "pods"})


def json_merge_patch(target: object, patch: object) -> object:
    """RFC 7386: maps merge, null deletes, anything else (lists included) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


# Strategic merge: the lists Pod patches touch here that merge by a key instead of being replaced.
STRATEGIC_MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name",
                        "env": "name", "volumeMounts": "mountPath", "ports": "containerPort", "volumes": "name"}


def strategic_merge_patch(target: object, patch: object, key: str = "") -> object:
    """A strategic merge patch as kube-apiserver applies it to core/v1 objects: maps merge (null deletes), lists
    with a patch merge key merge element by element (`$patch: delete` removes one, `$patch: replace` on the list's
    parent replaces), other lists replace; `$setElementOrder/…` and `$retainKeys` directives are accepted."""
    if isinstance(patch, list):
        merge_key = STRATEGIC_MERGE_KEYS.get(key)
        if merge_key is None or not isinstance(target, list):
            return [item for item in copy.deepcopy(patch) if not (isinstance(item, dict) and "$patch" in item)]
        result = copy.deepcopy(target)
        for item in patch:
            if not isinstance(item, dict):
                continue
            if item.get("$patch") == "replace":
                return [entry for entry in copy.deepcopy(patch) if entry is not item]
            index = next((i for i, entry in enumerate(result)
                          if isinstance(entry, dict) and merge_key in item and entry.get(merge_key) == item[merge_key]),
                         None)
            if item.get("$patch") == "delete":
                if index is not None:
                    del result[index]
                continue
            if index is None:
                result.append(strategic_merge_patch({}, item))
            else:
                result[index] = strategic_merge_patch(result[index], item)
        return result
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if name.startswith("$setElementOrder/") or name in ("$retainKeys", "$patch") or name.startswith("$deleteFromPrimitiveList/"):
            continue
        if value is None:
            result.pop(name, None)
        else:
            result[name] = strategic_merge_patch(result.get(name), value, name)
    return result


def json_pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer {path!r} does not start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def json_patch(document: object, operations: object) -> object:
    """RFC 6902 add / remove / replace / test / copy / move."""
    if not isinstance(operations, list):
        raise ValueError("a JSON patch is a list of operations")
    document = copy.deepcopy(document)

    def walk(parts: list[str]) -> tuple[object, str]:
        node = document
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node, parts[-1]

    def get(path: str) -> object:
        node = document
        for part in json_pointer(path):
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def add(path: str, value: object) -> None:
        parent, last = walk(json_pointer(path))
        if isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(value))
        else:
            parent[last] = copy.deepcopy(value)

    def remove(path: str) -> object:
        parent, last = walk(json_pointer(path))
        return parent.pop(int(last)) if isinstance(parent, list) else parent.pop(last)

    for operation in operations:
        op, path = operation.get("op"), operation.get("path", "")
        try:
            if op == "add":
                add(path, operation.get("value"))
            elif op == "remove":
                remove(path)
            elif op == "replace":
                get(path)
                parent, last = walk(json_pointer(path))
                parent[int(last) if isinstance(parent, list) else last] = copy.deepcopy(operation.get("value"))
            elif op == "test":
                if get(path) != operation.get("value"):
                    raise ValueError(f"testing value {path} failed")
            elif op in ("copy", "move"):
                value = get(operation.get("from", "")) if op == "copy" else remove(operation.get("from", ""))
                add(path, value)
            else:
                raise ValueError(f"Unexpected kind: {op}")
        except (KeyError, IndexError, TypeError) as error:
            raise ValueError(f"doc is missing path: {path!r}: {error}") from None
    return document


def is_dns_label(name: str) -> bool:
    import re
    return len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) is not None


def default_ephemeral_container(container: dict) -> None:
    """What decoding defaults on a core/v1 EphemeralContainer."""
    image = container.get("image") or ""
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})


def validate_ephemeral_update(old_spec: dict, new_list: list) -> list[FieldError]:
    """validateEphemeralContainers for every entry, then "existing ephemeral containers may not be changed/removed"."""
    errors: list[FieldError] = []
    others = [c.get("name") for key in ("initContainers", "containers") for c in old_spec.get(key) or []]
    targets = set(others)
    seen = set(others)
    for index, container in enumerate(new_list):
        path = f"spec.ephemeralContainers[{index}]"
        if not isinstance(container, dict):
            errors.append(FieldError(path, "Invalid value", "must be an object"))
            continue
        name = container.get("name") or ""
        if not name:
            errors.append(FieldError(f"{path}.name", "Required value", ""))
        elif not is_dns_label(name):
            errors.append(FieldError(f"{path}.name", "Invalid value", f'"{name}": {DNS_LABEL_MESSAGE}'))
        elif name in seen:
            errors.append(FieldError(f"{path}.name", "Duplicate value", f'"{name}"'))
        seen.add(name)
        if not container.get("image"):
            errors.append(FieldError(f"{path}.image", "Required value", ""))
        for field in EPHEMERAL_FORBIDDEN_FIELDS:
            if container.get(field) not in (None, {}, []):
                errors.append(FieldError(f"{path}.{field}", "Forbidden", "cannot be set for an Ephemeral Container"))
        target = container.get("targetContainerName")
        if target and target not in targets:
            errors.append(FieldError(f"{path}.targetContainerName", "Not found", f'"{target}"'))
    new_by_name = {c.get("name"): c for c in new_list if isinstance(c, dict)}
    for old in old_spec.get("ephemeralContainers") or []:
        new = new_by_name.get(old["name"])
        if new is None:
            errors.append(FieldError("spec.ephemeralContainers", "Forbidden",
                                     f'existing ephemeral containers "{old["name"]}" may not be removed\n'))
        elif new != old:
            changed = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
            diff = "\n".join(f"  core.EphemeralContainer.{key}: -{json.dumps(old.get(key))} +{json.dumps(new.get(key))}"
                             for key in changed)
            errors.append(FieldError("spec.ephemeralContainers", "Forbidden",
                                     f'existing ephemeral containers "{old["name"]}" may not be changed\n{diff}'))
    return errors


def pod_containers(spec: dict) -> list[dict]:
    """The order PodSecurity visits them: init containers, containers, ephemeral containers."""
    return [c for key in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(key) or []]


def _containers(names: list[str]) -> str:
    return ("container " if len(names) == 1 else "containers ") + ", ".join(f'"{name}"' for name in names)


def _quote(values: Iterable[str]) -> str:
    return ", ".join(f'"{value}"' for value in values)


def pod_security_violations(level: str, spec: dict) -> list[tuple[str, str]]:
    """(reason, detail) of each failed check, in kube's order (baseline checks, then restricted or the overlapping
    baseline ones). Checks of a container's or pod's securityContext, host namespaces and hostPath volumes."""
    if level not in ("baseline", "restricted"):
        return []
    pod_sc = spec.get("securityContext") or {}
    containers = pod_containers(spec)

    def sc(container: dict) -> dict:
        return container.get("securityContext") or {}

    results: list[tuple[str, str]] = []
    host = [field for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    if host:
        results.append(("host namespaces", " and ".join(f"{field}=true" for field in host)))
    host_paths = [v["name"] for v in spec.get("volumes") or [] if isinstance(v, dict) and "hostPath" in v]
    if host_paths:
        results.append(("hostPath volumes", ("volume " if len(host_paths) == 1 else "volumes ") + _quote(host_paths)))
    privileged = [c["name"] for c in containers if sc(c).get("privileged") is True]
    if privileged:
        results.append(("privileged", f"{_containers(privileged)} must not set securityContext.privileged=true"))

    def bad_seccomp(profile: dict | None) -> bool:
        return profile is not None and profile.get("type") not in ("RuntimeDefault", "Localhost")

    if level == "baseline":
        bad, caps = [], set()
        for c in containers:
            added = [cap for cap in (sc(c).get("capabilities") or {}).get("add") or [] if cap not in BASELINE_CAPABILITIES]
            if added:
                bad.append(c["name"])
                caps.update(added)
        if bad:
            results.append(("non-default capabilities", f"{_containers(bad)} must not include {_quote(sorted(caps))} "
                                                        "in securityContext.capabilities.add"))
        setters, values = [], set()
        if (pod_sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            setters.append("pod")
            values.add(pod_sc["seccompProfile"].get("type"))
        explicit = [c["name"] for c in containers if (sc(c).get("seccompProfile") or {}).get("type") == "Unconfined"]
        if explicit:
            setters.append(_containers(explicit))
            values.add("Unconfined")
        if setters:
            results.append(("seccompProfile", f"{' and '.join(setters)} must not set securityContext.seccompProfile.type "
                                              f"to {_quote(sorted(values))}"))
        return results

    escalating = [c["name"] for c in containers if sc(c).get("allowPrivilegeEscalation") is not False]
    if escalating:
        results.append(("allowPrivilegeEscalation != false",
                        f"{_containers(escalating)} must set securityContext.allowPrivilegeEscalation=false"))
    missing_drop, adding, caps = [], [], set()
    for c in containers:
        capabilities = sc(c).get("capabilities")
        if capabilities is None:
            missing_drop.append(c["name"])
            continue
        if "ALL" not in (capabilities.get("drop") or []):
            missing_drop.append(c["name"])
        added = [cap for cap in capabilities.get("add") or [] if cap != "NET_BIND_SERVICE"]
        if added:
            adding.append(c["name"])
            caps.update(added)
    details = []
    if missing_drop:
        details.append(f'{_containers(missing_drop)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_containers(adding)} must not include {_quote(sorted(caps))} in "
                       "securityContext.capabilities.add")
    if details:
        results.append(("unrestricted capabilities", "; ".join(details)))
    setters = []
    pod_non_root = False
    if "runAsNonRoot" in pod_sc and pod_sc["runAsNonRoot"] is not None:
        if pod_sc["runAsNonRoot"] is False:
            setters.append("pod")
        else:
            pod_non_root = True
    explicit = [c["name"] for c in containers if sc(c).get("runAsNonRoot") is False]
    implicit = [c["name"] for c in containers if sc(c).get("runAsNonRoot") is None and not pod_non_root]
    if explicit:
        setters.append(_containers(explicit))
    details = []
    if setters:
        details.append(f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false")
    if implicit:
        details.append(f"pod or {_containers(implicit)} must set securityContext.runAsNonRoot=true")
    if details:
        results.append(("runAsNonRoot != true", "\n".join(details)))
    setters = ["pod"] if pod_sc.get("runAsUser") == 0 else []
    root_users = [c["name"] for c in containers if sc(c).get("runAsUser") == 0]
    if root_users:
        setters.append(_containers(root_users))
    if setters:
        results.append(("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0"))
    setters, values = [], set()
    pod_seccomp = False
    if pod_sc.get("seccompProfile") is not None:
        if bad_seccomp(pod_sc["seccompProfile"]):
            setters.append("pod")
            values.add(pod_sc["seccompProfile"].get("type"))
        else:
            pod_seccomp = True
    explicit, implicit = [], []
    for c in containers:
        profile = sc(c).get("seccompProfile")
        if profile is not None:
            if bad_seccomp(profile):
                explicit.append(c["name"])
                values.add(profile.get("type"))
        elif not pod_seccomp:
            implicit.append(c["name"])
    if explicit:
        setters.append(_containers(explicit))
    if setters:
        results.append(("seccompProfile", f"{' and '.join(setters)} must not set securityContext.seccompProfile.type "
                                          f"to {_quote(sorted(str(v) for v in values))}"))
    elif implicit:
        results.append(("seccompProfile", f'pod or {_containers(implicit)} must set securityContext.seccompProfile.type '
                                          'to "RuntimeDefault" or "Localhost"'))
    return results


def pod_security_refusal(namespace: dict, pod_name: str, spec: dict) -> dict | None:
    """The 403 Status PodSecurity admission answers for a namespace's `enforce` level, or None if admitted."""
    labels = namespace["metadata"].get("labels") or {}
    level = labels.get(PSA_ENFORCE, "privileged")
    violations = pod_security_violations(level, spec)
    if not violations:
        return None
    version = labels.get(PSA_ENFORCE_VERSION, "latest")
    text = ", ".join(f"{reason} ({detail})" if detail else reason for reason, detail in violations)
    return status_object(403, "Forbidden",
                         f'pods "{pod_name}" is forbidden: violates PodSecurity "{level}:{version}": {text}',
                         {"name": pod_name, "kind": "pods"})


def glob_match(value: str, patterns: Iterable[str]) -> bool:
    import fnmatch
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def effective_security(pod_spec: dict, container: dict) -> dict:
    """The container's securityContext over the pod's, for the fields the kubelet's non-root check reads."""
    pod_sc = pod_spec.get("securityContext") or {}
    sc = container.get("securityContext") or {}
    return {key: sc[key] if sc.get(key) is not None else pod_sc.get(key) for key in ("runAsNonRoot", "runAsUser")}


# -- selectors ----------------------------------------------------------------------------------------------------


def field_value(obj: dict, path: str) -> str:
    value: object = obj
    for part in path.split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return "" if value is None else str(value)


def selector(field_selector: str, label_selector: str, namespace: str | None) -> Callable[[dict], bool]:
    """Equality-based field (metadata.name, metadata.namespace, spec.nodeName, status.phase) and label selectors."""
    fields: list[tuple[str, str, bool]] = []
    for term in filter(None, (part.strip() for part in field_selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            fields.append((key, value, False))
        else:
            key, value = term.split("==", 1) if "==" in term else term.split("=", 1)
            fields.append((key, value, True))
    labels: list[tuple[str, str | None, bool]] = []
    for term in filter(None, (part.strip() for part in label_selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            labels.append((key.strip(), value.strip(), False))
        elif "=" in term:
            key, value = term.split("==", 1) if "==" in term else term.split("=", 1)
            labels.append((key.strip(), value.strip(), True))
        elif term.startswith("!"):
            labels.append((term[1:], None, False))
        else:
            labels.append((term, None, True))

    def matches(obj: dict) -> bool:
        if namespace is not None and obj["metadata"].get("namespace", namespace) != namespace:
            return False
        for key, value, equal in fields:
            if (field_value(obj, key) == value) != equal:
                return False
        obj_labels = obj["metadata"].get("labels") or {}
        for key, value, equal in labels:
            present = key in obj_labels if value is None else obj_labels.get(key) == value
            if present != equal:
                return False
        return True

    return matches


# -- tables -------------------------------------------------------------------------------------------------------


POD_COLUMNS = [
    ("Name", "string", "name", 0, "Name must be unique within a namespace."),
    ("Ready", "string", "", 0, "The aggregate readiness state of this pod for accepting traffic."),
    ("Status", "string", "", 0, "The aggregate status of the containers in this pod."),
    ("Restarts", "string", "", 0, "The number of times the containers in this pod have been restarted."),
    ("Age", "string", "", 0, "CreationTimestamp is a timestamp representing the server time when this object was created."),
    ("IP", "string", "", 1, "IP address allocated to the pod."),
    ("Node", "string", "", 1, "NodeName is a request to schedule this pod onto a specific node."),
    ("Nominated Node", "string", "", 1, "nominatedNodeName is set only when this pod preempts other pods."),
    ("Readiness Gates", "string", "", 1, "If specified, all readiness gates will be evaluated for pod readiness."),
]
NAMESPACE_COLUMNS = [
    ("Name", "string", "name", 0, "Name must be unique within a namespace."),
    ("Status", "string", "", 0, "The status of the namespace"),
    ("Age", "string", "", 0, "CreationTimestamp is a timestamp representing the server time when this object was created."),
]


def table_columns(kind: str) -> list[dict]:
    columns = POD_COLUMNS if kind == "Pod" else NAMESPACE_COLUMNS
    return [{"name": name, "type": kind_, "format": fmt, "description": description, "priority": priority}
            for name, kind_, fmt, priority, description in columns]


def table_cells(obj: dict) -> list:
    metadata = obj["metadata"]
    if obj.get("kind") == "Namespace":
        return [metadata["name"], obj["status"]["phase"], human_age(metadata["creationTimestamp"])]
    statuses = obj["status"].get("containerStatuses") or []
    ready = sum(1 for status in statuses if status.get("ready"))
    phase = "Terminating" if metadata.get("deletionTimestamp") else obj["status"].get("phase", "Pending")
    restarts = sum(status.get("restartCount", 0) for status in statuses)
    return [metadata["name"], f"{ready}/{len(obj['spec']['containers'])}", phase, restarts,
            human_age(metadata["creationTimestamp"]), obj["status"].get("podIP", "<none>"),
            obj["spec"].get("nodeName", "<none>"), "<none>", "<none>"]


def table_row(obj: dict, include_object: str) -> dict:
    row: dict = {"cells": table_cells(obj)}
    if include_object == "Object":
        row["object"] = obj
    elif include_object != "None":
        row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                         "metadata": obj["metadata"]}
    return row


def table(kind: str, objects: list[dict], rv: int, include_object: str, version: str,
          with_columns: bool = True) -> dict:
    result = {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": {"resourceVersion": str(rv)},
              "columnDefinitions": table_columns(kind) if with_columns else [],
              "rows": [table_row(obj, include_object) for obj in objects]}
    return result


def wants_table(accept: str) -> str | None:
    """'v1' or 'v1beta1' if the Accept header asks for a meta.k8s.io Table (first such wins), else None."""
    for media in accept.split(","):
        params = {}
        for part in media.split(";")[1:]:
            key, _, value = part.partition("=")
            params[key.strip()] = value.strip()
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return params["v"]
    return None


# -- discovery ----------------------------------------------------------------------------------------------------


def api_resources() -> dict:
    def resource(name: str, kind: str, verbs: list[str], singular: str = "", namespaced: bool = True,
                 short: list[str] | None = None, categories: list[str] | None = None) -> dict:
        entry = {"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind, "verbs": verbs}
        if short:
            entry["shortNames"] = short
        if categories:
            entry["categories"] = categories
        return entry

    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        resource("namespaces", "Namespace", ["create", "get", "list", "patch", "watch"], "namespace", False, ["ns"]),
        resource("pods", "Pod", ["create", "delete", "get", "list", "watch"], "pod", True, ["po"], ["all"]),
        resource("pods/attach", "PodAttachOptions", ["create", "get"]),
        resource("pods/ephemeralcontainers", "Pod", ["get", "patch", "update"]),
        resource("pods/exec", "PodExecOptions", ["create", "get"]),
        resource("pods/log", "Pod", ["get"]),
        resource("pods/portforward", "PodPortForwardOptions", ["create", "get"]),
    ]}


# -- HTTP ---------------------------------------------------------------------------------------------------------


class Request:
    def __init__(self, method: str, target: str, headers: list[tuple[str, str]]) -> None:
        self.method = method
        self.target = target
        split = urlsplit(target)
        self.path = unquote(split.path)
        self.query = parse_qs(split.query, keep_blank_values=True)
        self.headers = headers
        self.body = b""

    def header(self, name: str, default: str = "") -> str:
        return ws.header(self.headers, name, default)

    def param(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str) -> bool:
        return self.param(name).lower() in ("true", "1")

    @property
    def upgrade(self) -> str:
        connection = [token.lower() for token in ws.tokens(self.header("Connection"))]
        return self.header("Upgrade") if "upgrade" in connection else ""


class Handled(Exception):
    """Raised after a response that ends the connection (upgrades, streams)."""


class Connection:
    """One client connection: TLS, keep-alive HTTP/1.1 requests, and upgrades that take the connection over."""

    def __init__(self, server: "Server", sock: socket.socket, peer: str) -> None:
        self.server = server
        self.store = server.store
        self.peer = peer
        self.tls = ws.TLSStream(sock, server.context, server_side=True)
        self.stream = ws.Buffered(self.tls)
        self.record: dict = {}

    # -- plumbing ---------------------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self.tls.handshake(10.0)
            while True:
                head = self.stream.read_head()
                if not head:
                    break
                request_line, headers = ws.parse_head(head)
                parts = request_line.split()
                if len(parts) != 3:
                    self.send_json(400, status_object(400, "BadRequest", "malformed request line"), close=True)
                    break
                request = Request(parts[0], parts[1], headers)
                keep_alive = request.header("Connection").lower() != "close" and not request.upgrade
                self.record = {"time": time.time(), "method": request.method, "path": request.path,
                               "query": request.query, "upgrade": request.upgrade,
                               "protocols": request.header("Sec-WebSocket-Protocol"),
                               "streamProtocol": request.header("X-Stream-Protocol-Version"),
                               "accept": request.header("Accept"), "userAgent": request.header("User-Agent"),
                               "contentType": request.header("Content-Type"), "status": None,
                               # Every header but the credential, whose SHA-256 is kept instead (the gateway tests
                               # check who a request claims to be and that no user token reaches the cluster).
                               "headers": [[name, value] for name, value in headers
                                           if name.lower() != "authorization"],
                               "authorizationSHA256": hashlib.sha256(
                                   request.header("Authorization").encode()).hexdigest()}
                with self.store.cond:
                    self.store.requests.append(self.record)
                try:
                    if not request.upgrade:
                        request.body = self.read_body(request)
                    self.server.route(self, request)
                except Handled:
                    break
                finally:
                    log(f"{self.peer} {request.method} {request.target} {request.upgrade or ''} -> "
                        f"{self.record.get('status')}")
                if not keep_alive:
                    break
        except (ws.StreamClosed, ssl.SSLError, OSError, ValueError) as error:
            log(f"{self.peer} connection error: {error!r}")
        except Exception:  # noqa: BLE001 - a stand-in bug: say so loudly in its log, never hang the client
            log(f"{self.peer} INTERNAL ERROR in the stand-in:\n{traceback.format_exc()}")
            if self.record.get("status") is None:
                try:
                    self.send_status(500, "InternalError", "kube stand-in internal error (see its log)", close=True)
                except (ws.StreamClosed, OSError):
                    pass
        finally:
            self.tls.close()

    def read_body(self, request: Request) -> bytes:
        if request.header("Expect").lower() == "100-continue":
            self.stream.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in request.header("Transfer-Encoding").lower():
            body = bytearray()
            while True:
                size = int(self.stream.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.stream.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                if len(body) + size > MAX_BODY:
                    raise ValueError("request body too large")
                body += self.stream.read_exact(size)
                self.stream.readline()
        length = int(request.header("Content-Length", "0") or "0")
        if length > MAX_BODY:
            raise ValueError("request body too large")
        return self.stream.read_exact(length) if length else b""

    def send_head(self, status: int, headers: Iterable[tuple[str, str]], reason: str = "") -> None:
        self.record["status"] = status
        reasons = {200: "OK", 201: "Created", 101: "Switching Protocols", 400: "Bad Request", 401: "Unauthorized",
                   403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
                   415: "Unsupported Media Type", 422: "Unprocessable Entity", 500: "Internal Server Error"}
        lines = [f"HTTP/1.1 {status} {reason or reasons.get(status, 'Status')}",
                 f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}",
                 "Audit-Id: " + str(uuid.uuid4())]
        lines += [f"{name}: {value}" for name, value in headers]
        self.stream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send_bytes(self, status: int, body: bytes, content_type: str, close: bool = False) -> None:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if close:
            headers.append(("Connection", "close"))
        self.send_head(status, headers)
        self.stream.sendall(body)

    def send_json(self, status: int, value: object, close: bool = False,
                  content_type: str = "application/json") -> None:
        self.send_bytes(status, json.dumps(value).encode() + b"\n", content_type, close)

    def send_status(self, code: int, reason: str, message: str, details: dict | None = None,
                    close: bool = False) -> None:
        self.send_json(code, status_object(code, reason, message, details), close=close)

    def start_chunked(self, content_type: str) -> None:
        self.send_head(200, [("Content-Type", content_type), ("Transfer-Encoding", "chunked"),
                             ("Cache-Control", "no-cache, private")])

    def write_chunk(self, data: bytes) -> None:
        if data:
            self.stream.sendall(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunked(self) -> None:
        self.stream.sendall(b"0\r\n\r\n")


class Server:
    def __init__(self, address: tuple[str, int], store: Store, token: str, context: ssl.SSLContext) -> None:
        self.store = store
        self.token = token
        self.context = context
        self.listener = socket.create_server(address, backlog=512)
        self.stopping = threading.Event()

    @property
    def address(self) -> str:
        host, port = self.listener.getsockname()[:2]
        return f"{host}:{port}"

    def serve_forever(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                sock, peer = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                if self.stopping.is_set():
                    break
                raise
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(self, sock, f"{peer[0]}:{peer[1]}")
            threading.Thread(target=connection.run, name=f"conn-{peer[1]}", daemon=True).start()

    # -- routing ----------------------------------------------------------------------------------------------

    def route(self, conn: Connection, request: Request) -> None:
        if request.header("Authorization") != f"Bearer {self.token}":
            conn.record["authorized"] = False
            conn.send_status(401, "Unauthorized", "Unauthorized", close=bool(request.upgrade))
            if request.upgrade:
                raise Handled
            return
        conn.record["authorized"] = True
        parts = [part for part in request.path.split("/") if part]
        method = request.method
        if parts and parts[0] == "standin":
            return self.route_standin(conn, request, parts[1:])
        if request.path == "/version":
            return conn.send_json(200, SERVER_VERSION)
        if request.path == "/api":
            host = request.header("Host") or self.address
            return conn.send_json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": host}]})
        if request.path == "/apis":
            return conn.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        if request.path == "/api/v1":
            return conn.send_json(200, api_resources())
        if parts[:1] in (["openapi"], ["swagger.json"]):
            return conn.send_status(404, "NotFound", "the server could not find the requested resource")
        if parts[:2] != ["api", "v1"]:
            return conn.send_status(404, "NotFound", "the server could not find the requested resource")
        rest = parts[2:]
        if rest == ["namespaces"] and method == "GET":
            return self.list_or_watch(conn, request, "Namespace", None)
        if rest == ["pods"] and method == "GET":
            return self.list_or_watch(conn, request, "Pod", None)
        if rest == ["namespaces"] and method == "POST":
            return self.create_namespace(conn, request)
        if len(rest) == 2 and rest[0] == "namespaces" and method == "GET":
            return self.get_namespace(conn, request, rest[1])
        if len(rest) == 2 and rest[0] == "namespaces" and method == "PATCH":
            return self.patch_namespace(conn, request, rest[1])
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == "pods":
            namespace = rest[1]
            if len(rest) == 3:
                if method == "GET":
                    return self.list_or_watch(conn, request, "Pod", namespace)
                if method == "POST":
                    return self.create_pod(conn, request, namespace)
                return conn.send_status(405, "MethodNotAllowed", f"{method} is not supported on pods")
            name = rest[3]
            subresource = rest[4] if len(rest) > 4 else ""
            pod = self.store.get_pod(namespace, name)
            if pod is None:
                if request.upgrade:
                    conn.send_status(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"},
                                     close=True)
                    raise Handled
                return conn.send_status(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
            if subresource == "":
                if method == "GET":
                    return conn.send_json(200, self.pod_json(pod))
                if method == "DELETE":
                    deleted = self.store.delete_pod(namespace, name)
                    return conn.send_json(200, deleted)
                return conn.send_status(405, "MethodNotAllowed", f"{method} is not supported on a pod")
            if subresource == "log" and method == "GET":
                return self.pod_log(conn, request, pod)
            if subresource == "ephemeralcontainers":
                if method == "GET":
                    return conn.send_json(200, self.pod_json(pod))
                if method in ("PATCH", "PUT"):
                    return self.update_ephemeral(conn, request, pod)
                return conn.send_status(405, "MethodNotAllowed", f"{method} is not supported on ephemeralcontainers")
            if subresource in ("exec", "attach", "portforward") and method in ("GET", "POST"):
                return self.stream_subresource(conn, request, pod, subresource)
        return conn.send_status(404, "NotFound", "the server could not find the requested resource")

    def pod_json(self, pod: Pod) -> dict:
        with self.store.cond:
            return copy.deepcopy(pod.obj)

    # -- side channel -----------------------------------------------------------------------------------------

    def route_standin(self, conn: Connection, request: Request, parts: list[str]) -> None:
        if parts == ["requests"]:
            with self.store.cond:
                return conn.send_json(200, {"requests": list(self.store.requests)})
        if parts == ["stats"]:
            with self.store.cond:
                return conn.send_json(200, dict(self.store.stats))
        if parts == ["upgrade-echo"]:
            return self.upgrade_echo(conn, request)
        if parts == ["config"]:
            if request.method == "PUT":
                try:
                    update = json.loads(request.body or b"{}")
                except ValueError:
                    return conn.send_status(400, "BadRequest", "the body is not JSON")
                unknown = set(update) - set(self.store.config)
                if unknown:
                    return conn.send_status(400, "BadRequest", f"unknown config keys {sorted(unknown)}")
                with self.store.cond:
                    self.store.config.update(update)
            with self.store.cond:
                return conn.send_json(200, dict(self.store.config))
        if len(parts) >= 3 and parts[0] == "pods":
            if parts[3:] == ["recreate"] and request.method == "POST":
                status, result = self.store.recreate_pod(parts[1], parts[2])
                return conn.send_json(status, result)
            pod = self.store.get_pod(parts[1], parts[2])
            if pod is None:
                return conn.send_status(404, "NotFound", f'pods "{parts[2]}" not found')
            if len(parts) == 6 and parts[3] == "containers" and parts[5] == "signal" and request.method == "POST":
                try:
                    name = (json.loads(request.body or b"{}").get("signal") or "HUP").upper().removeprefix("SIG")
                    number = int(name) if name.isdigit() else int(signal.Signals["SIG" + name])
                except (ValueError, KeyError, AttributeError):
                    return conn.send_status(400, "BadRequest", "body: {\"signal\": \"HUP\"} (a name or number)")
                runtime = pod.containers.get(parts[4])
                if runtime is None or runtime.exited.is_set():
                    return conn.send_status(409, "Conflict", f"container {parts[4]} has no running process")
                os.kill(runtime.proc.pid, number)
                with self.store.cond:
                    pod.signals.append({"time": time.time(), "container": parts[4], "pid1Of": parts[4],
                                        "signal": signal.Signals(number).name, "via": "standin",
                                        "effect": f"delivered to pid {runtime.proc.pid}"})
                return conn.send_json(200, {"signalled": runtime.proc.pid})
            if parts[3:] == ["log"] and request.method == "POST":
                count = self.store.append_log(pod, request.body.decode("utf-8", "replace"))
                return conn.send_json(200, {"appended": count})
            if parts[3:] == []:
                with self.store.cond:
                    processes = [{"container": name, "pid": runtime.proc.pid, "running": runtime.exit_code is None,
                                  "exitCode": runtime.exit_code}
                                 for name, runtime in pod.containers.items()]
                    statuses = {s["name"]: s for s in pod.obj["status"].get("ephemeralContainerStatuses") or []}
                    ephemeral = [{"name": c["name"], "image": c.get("image"), "spec": copy.deepcopy(c),
                                  "state": copy.deepcopy(statuses.get(c["name"], {}).get("state"))}
                                 for c in pod.obj["spec"].get("ephemeralContainers") or []]
                    return conn.send_json(200, {
                        "root": str(pod.root), "processes": processes, "uid": pod.obj["metadata"]["uid"],
                        "resourceVersion": pod.obj["metadata"]["resourceVersion"], "ephemeralContainers": ephemeral,
                        "patches": pod.patches, "dryRuns": pod.dry_runs, "refusals": pod.refusals,
                        "signals": list(pod.signals)})
        return conn.send_status(404, "NotFound", "no such stand-in endpoint")

    def upgrade_echo(self, conn: Connection, request: Request) -> None:
        if not request.upgrade:
            return conn.send_status(400, "BadRequest", "expected Connection: Upgrade and an Upgrade header")
        conn.send_head(101, [("Connection", "Upgrade"), ("Upgrade", request.upgrade)])
        while True:
            data = conn.stream.recv_some()
            if not data:
                break
            conn.stream.sendall(data)
        raise Handled

    # -- reads ------------------------------------------------------------------------------------------------

    def get_namespace(self, conn: Connection, request: Request, name: str) -> None:
        with self.store.cond:
            obj = copy.deepcopy(self.store.namespaces.get(name))
        if obj is None:
            return conn.send_status(404, "NotFound", f'namespaces "{name}" not found',
                                    {"name": name, "kind": "namespaces"})
        version = wants_table(request.header("Accept"))
        if version:
            return conn.send_json(200, table("Namespace", [obj], int(obj["metadata"]["resourceVersion"]),
                                             request.param("includeObject", "Metadata"), version),
                                  content_type=f"application/json;as=Table;v={version};g=meta.k8s.io")
        conn.send_json(200, obj)

    def list_or_watch(self, conn: Connection, request: Request, kind: str, namespace: str | None) -> None:
        try:
            matches = selector(request.param("fieldSelector"), request.param("labelSelector"), namespace)
        except ValueError:
            return conn.send_status(400, "BadRequest", "unable to parse the selector")
        if request.flag("watch"):
            return self.watch(conn, request, kind, namespace, matches)
        objects, rv = self.store.list_objects(kind, namespace, matches)
        version = wants_table(request.header("Accept"))
        if version:
            return conn.send_json(200, table(kind, objects, rv, request.param("includeObject", "Metadata"), version),
                                  content_type=f"application/json;as=Table;v={version};g=meta.k8s.io")
        conn.send_json(200, {"kind": f"{kind}List", "apiVersion": "v1", "metadata": {"resourceVersion": str(rv)},
                             "items": objects})

    def watch(self, conn: Connection, request: Request, kind: str, namespace: str | None,
              matches: Callable[[dict], bool]) -> None:
        store = self.store
        version = wants_table(request.header("Accept"))
        include_object = request.param("includeObject", "Metadata")
        send_initial = request.flag("sendInitialEvents")
        bookmarks = request.flag("allowWatchBookmarks")
        timeout = min(float(request.param("timeoutSeconds") or WATCH_LIMIT), WATCH_LIMIT)
        resource_version = request.param("resourceVersion")
        with store.cond:
            if resource_version in ("", "0") or send_initial:
                initial = [copy.deepcopy(obj) for obj in self.store.list_objects(kind, namespace, matches)[0]]
                cursor = store.rv
            else:
                try:
                    cursor = int(resource_version)
                except ValueError:
                    return conn.send_status(400, "BadRequest", f"invalid resourceVersion {resource_version!r}")
                initial = []
                if cursor < store.rv - 100000:
                    return conn.send_status(410, "Expired", f"too old resource version: {cursor} ({store.rv})")
        content_type = f"application/json;as=Table;v={version};g=meta.k8s.io" if version else "application/json"
        conn.start_chunked(content_type)
        columns_sent = False

        def event(event_type: str, obj: dict) -> bytes:
            nonlocal columns_sent
            if version and event_type != "BOOKMARK":
                obj = table(kind, [obj], int(obj["metadata"]["resourceVersion"]), include_object, version,
                            with_columns=not columns_sent)
                columns_sent = True
            return json.dumps({"type": event_type, "object": obj}).encode() + b"\n"

        def bookmark(annotations: dict | None = None) -> bytes:
            metadata: dict = {"resourceVersion": str(cursor)}
            if annotations:
                metadata["annotations"] = annotations
            return json.dumps({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": "v1",
                                                             "metadata": metadata}}).encode() + b"\n"

        store.stat("activeWatches", 1)
        store.stat("watchesServed", 1)
        try:
            conn.write_chunk(b"".join(event("ADDED", obj) for obj in initial))
            if send_initial:
                conn.write_chunk(bookmark({"k8s.io/initial-events-end": "true"}))
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + BOOKMARK_INTERVAL
            while True:
                with store.cond:
                    pending = [entry for entry in store.events if entry[0] > cursor] if store.rv > cursor else []
                    if not pending:
                        store.cond.wait(0.5)
                        pending = [entry for entry in store.events if entry[0] > cursor] if store.rv > cursor else []
                    if pending:
                        cursor = pending[-1][0]
                out = b"".join(event(event_type, obj) for _, event_kind, event_type, obj in pending
                               if event_kind == kind and matches(obj))
                if out:
                    conn.write_chunk(out)
                moment = time.monotonic()
                if bookmarks and moment >= next_bookmark:
                    conn.write_chunk(bookmark())
                    next_bookmark = moment + BOOKMARK_INTERVAL
                if moment >= deadline:
                    conn.end_chunked()
                    return
                if not pending and conn.tls.peer_closed():
                    raise Handled
        except (ws.StreamClosed, OSError):
            raise Handled
        finally:
            store.stat("activeWatches", -1)

    def pod_log(self, conn: Connection, request: Request, pod: Pod) -> None:
        container = request.param("container") or pod.default_container()
        if pod.container_spec(container) is None:
            return conn.send_status(400, "BadRequest",
                                    f"container {container} is not valid for pod {pod.name}")
        follow = request.flag("follow")
        timestamps = request.flag("timestamps")
        with self.store.cond:
            index = 0
            if request.param("tailLines"):
                index = max(0, len(pod.log) - int(request.param("tailLines")))
        conn.start_chunked("text/plain")
        self.store.stat("activeLogs", 1)
        try:
            while True:
                with self.store.cond:
                    if index >= len(pod.log) and follow and not pod.deleted:
                        self.store.cond.wait(0.5)
                    lines = pod.log[index:]
                    index += len(lines)
                    finished = pod.deleted or not follow
                if lines:
                    conn.write_chunk(b"".join(((stamp + " ") if timestamps else "").encode() + line.encode()
                                              for stamp, line in lines))
                elif finished:
                    conn.end_chunked()
                    return
                elif conn.tls.peer_closed():
                    raise Handled
        except (ws.StreamClosed, OSError):
            raise Handled
        finally:
            self.store.stat("activeLogs", -1)

    # -- writes -----------------------------------------------------------------------------------------------

    def create_pod(self, conn: Connection, request: Request, namespace: str) -> None:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return conn.send_status(400, "BadRequest", "the request body is not JSON")
        if body.get("kind", "Pod") != "Pod":
            return conn.send_status(400, "BadRequest", f"expected a Pod, got {body.get('kind')}")
        status, result = self.store.create_pod(namespace, body)
        conn.send_json(status, result)

    def create_namespace(self, conn: Connection, request: Request) -> None:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return conn.send_status(400, "BadRequest", "the request body is not JSON")
        status, result = self.store.create_namespace(body if isinstance(body, dict) else {})
        conn.send_json(status, result)

    def patch_namespace(self, conn: Connection, request: Request, name: str) -> None:
        content_type = request.header("Content-Type").split(";")[0].strip()
        if content_type not in ("application/strategic-merge-patch+json", "application/merge-patch+json"):
            return conn.send_status(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                                    f"accepted media types include: application/merge-patch+json, "
                                    f"application/strategic-merge-patch+json")
        try:
            patch = json.loads(request.body or b"{}")
        except ValueError:
            return conn.send_status(400, "BadRequest", "the patch is not JSON")
        status, result = self.store.patch_namespace(name, patch if isinstance(patch, dict) else {})
        conn.send_json(status, result)

    PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                   "application/strategic-merge-patch+json")

    def update_ephemeral(self, conn: Connection, request: Request, pod: Pod) -> None:
        """PATCH (JSON, merge or strategic merge patch) or PUT of pods/NAME/ephemeralcontainers, `dryRun=All`."""
        dry_run = request.query.get("dryRun", [])
        if any(value != "All" for value in dry_run):
            bad = next(value for value in dry_run if value != "All")
            return conn.send_status(400, "BadRequest", f'Invalid dry run value: dryRun: Unsupported value: "{bad}": '
                                    'supported values: "All"')
        content_type = request.header("Content-Type").split(";")[0].strip()
        if request.method == "PATCH" and content_type not in self.PATCH_TYPES:
            return conn.send_status(415, "UnsupportedMediaType",
                                    "the body of the request was in an unknown format - accepted media types include: "
                                    + ", ".join(self.PATCH_TYPES))
        try:
            body = json.loads(request.body or b"{}")
        except ValueError as error:
            return conn.send_status(400, "BadRequest", f"error decoding patch: {error}")
        current = self.pod_json(pod)
        precondition_uid = None
        try:
            if request.method == "PUT":
                if not isinstance(body, dict) or body.get("kind", "Pod") != "Pod":
                    return conn.send_status(400, "BadRequest", "the body of a PUT of ephemeralcontainers is a Pod")
                if (body.get("metadata") or {}).get("name", pod.name) != pod.name:
                    return conn.send_status(400, "BadRequest", "the name of the object "
                                            f"({body['metadata']['name']}) does not match the name on the URL "
                                            f"({pod.name})")
                patched = body
                precondition_uid = (body.get("metadata") or {}).get("uid") or None
                patched = copy.deepcopy(body)
                patched.setdefault("metadata", {}).pop("uid", None)
            elif content_type == "application/json-patch+json":
                patched = json_patch(current, body)
            elif content_type == "application/merge-patch+json":
                patched = json_merge_patch(current, body)
            else:
                patched = strategic_merge_patch(current, body)
        except ValueError as error:
            return conn.send_json(422, status_object(422, "Invalid", f"the server rejected our request due to an "
                                                     f"error in our request: {error}"))
        if not isinstance(patched, dict):
            return conn.send_status(400, "BadRequest", "the patched object is not a Pod")
        status, result, added = self.store.update_ephemeral_containers(pod, patched, precondition_uid,
                                                                       dry_run=bool(dry_run))
        if status == 200 and not dry_run:
            for container in added:
                threading.Thread(target=self.kubelet_start, args=(pod, container), daemon=True).start()
        conn.send_json(status, result)

    def kubelet_start(self, pod: Pod, spec: dict) -> None:
        """What the kubelet does with a new ephemeral container: Waiting/ContainerCreating, then pull the image
        (unknown → ErrImagePull, then ImagePullBackOff), check runAsNonRoot against the image's user
        (CreateContainerConfigError), start the process (Running) or report StartError."""
        store, name, image = self.store, spec["name"], spec.get("image", "")
        with store.cond:
            config = copy.deepcopy(store.config)
        time.sleep(0.05)
        if not store.set_ephemeral_state(pod, name, {"waiting": {"reason": "ContainerCreating"}}, started=False):
            return
        time.sleep(float(config["containerStartSeconds"]))
        if UNKNOWN_IMAGE_MARKER in image or not glob_match(image, config["knownImages"]):
            reference = image if "/" in image.split(":")[0] else f"docker.io/library/{image}"
            if ":" not in reference.rsplit("/", 1)[-1] and "@" not in reference:
                reference += ":latest"
            message = (f'rpc error: code = NotFound desc = failed to pull and unpack image "{reference}": failed to '
                       f'resolve reference "{reference}": {reference}: not found')
            if not store.set_ephemeral_state(pod, name, {"waiting": {"reason": "ErrImagePull", "message": message}}):
                return
            time.sleep(float(config["imagePullBackOffSeconds"]))
            store.set_ephemeral_state(pod, name, {"waiting": {
                "reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}": ErrImagePull: {message}'}})
            return
        security = effective_security(pod.obj["spec"], spec)
        image_user = 65532 if glob_match(image, config["nonRootImages"]) else 0
        user = security["runAsUser"] if security["runAsUser"] is not None else image_user
        pod_ref = f'{pod.name}_{pod.namespace}({pod.obj["metadata"]["uid"]})'
        if security["runAsNonRoot"] and user == 0:
            message = (f'container\'s runAsUser breaks non-root policy (pod: "{pod_ref}", container: {name})'
                       if security["runAsUser"] == 0 else
                       f'container has runAsNonRoot and image will run as root (pod: "{pod_ref}", container: {name})')
            store.set_ephemeral_state(pod, name, {"waiting": {"reason": "CreateContainerConfigError",
                                                              "message": message}})
            return
        if pod.deleted:
            return
        container_id = "containerd://" + secrets.token_hex(32)
        try:
            self.start_container(pod, spec)
        except OSError as error:
            message = (f"failed to create containerd task: failed to create shim task: OCI runtime create failed: "
                       f"runc create failed: unable to start container process: {error.strerror or error}")
            store.set_ephemeral_state(pod, name, {"terminated": {
                "exitCode": 128, "reason": "StartError", "message": message, "startedAt": "1970-01-01T00:00:00Z",
                "finishedAt": rfc3339(now()), "containerID": container_id}}, containerID=container_id)
            return
        with store.cond:  # the process's end reports "terminated" under this lock: never overwrite it
            runtime = pod.containers.get(name)
            if runtime is None or runtime.exited.is_set():
                return
            store.set_ephemeral_state(pod, name, {"running": {"startedAt": rfc3339(now())}}, started=True,
                                      containerID=container_id,
                                      imageID=f"docker.io/library/{image}@sha256:" + "0" * 64)

    def pid1_owner(self, pod: Pod, container: str) -> str | None:
        """Whose process is PID 1 in `container`'s process namespace: its own, its target's (an ephemeral container
        with targetContainerName shares the target's), or None for the pause process (shareProcessNamespace)."""
        if pod.obj["spec"].get("shareProcessNamespace"):
            return None
        spec = pod.container_spec(container) or {}
        return spec.get("targetContainerName") or container

    def pid1_env(self, pod: Pod, container: str) -> dict[str, str]:
        """For shells: ENV defines a `kill` that maps PID 1 to the container's PID 1 (see SHRC)."""
        owner = self.pid1_owner(pod, container)
        runtime = pod.containers.get(owner) if owner else None
        pid = runtime.proc.pid if runtime is not None and not runtime.exited.is_set() else NO_SUCH_PID
        return {"STANDIN_PID1": str(pid), "ENV": str(write_shrc(pod))}

    def signal_pid1(self, pod: Pod, container: str, signal_number: int, via: str) -> tuple[int, str]:
        """`kill -SIG 1` in `container`: the signal reaches its process namespace's PID 1. Returns (exit code, stderr)."""
        owner = self.pid1_owner(pod, container)
        record = {"time": time.time(), "container": container, "pid1Of": owner or "pause",
                  "signal": signal.Signals(signal_number).name if signal_number else "0", "via": via}
        with self.store.cond:
            pod.signals.append(record)
            runtime = pod.containers.get(owner) if owner else None
        if owner is None:
            record["effect"] = "ignored by the pause process"
            return 0, ""
        if runtime is not None and not runtime.exited.is_set():
            try:
                os.kill(runtime.proc.pid, signal_number)
                record["effect"] = f"delivered to pid {runtime.proc.pid}"
                return 0, ""
            except ProcessLookupError:
                pass
        regular = owner in {c["name"] for c in pod.obj["spec"]["containers"]}
        if regular and runtime is None and signal_number in FATAL_SIGNALS:
            self.store.restart_container(pod, owner, signal_number)
            record["effect"] = f"container {owner} exited on the signal and was restarted"
            return 0, ""
        if regular and runtime is None:
            record["effect"] = "no effect"
            return 0, ""
        record["effect"] = "no such process"
        return 1, "sh: kill: (1) - No such process\n"

    def start_container(self, pod: Pod, spec: dict) -> "ContainerRuntime":
        runtime = ContainerRuntime(self.store, pod, spec, self.pid1_env(pod, spec["name"])
                                   if spec.get("targetContainerName") else {"ENV": str(write_shrc(pod))})
        with self.store.cond:
            pod.containers[spec["name"]] = runtime
        return runtime

    # -- exec, attach, port-forward ---------------------------------------------------------------------------

    def stream_subresource(self, conn: Connection, request: Request, pod: Pod, subresource: str) -> None:
        upgrade = request.upgrade.lower()
        if upgrade not in ("websocket", "spdy/3.1"):
            conn.send_status(400, "BadRequest", "Upgrade request required", close=True)
            raise Handled
        annotations = pod.obj["metadata"].get("annotations") or {}
        if subresource in ("exec", "attach") and annotations.get(FORBID_EXEC_ANNOTATION) == "true":
            message = (f'pods "{pod.name}" is forbidden: User "{SERVICE_ACCOUNT}" cannot create resource '
                       f'"pods/{subresource}" in API group "" in the namespace "{pod.namespace}"')
            conn.send_status(403, "Forbidden", message, {"name": pod.name, "kind": f"pods/{subresource}"}, close=True)
            raise Handled
        if subresource == "portforward":
            self.port_forward(conn, request, pod, upgrade)
        else:
            self.remote_command(conn, request, pod, subresource, upgrade)
        raise Handled

    def remote_command(self, conn: Connection, request: Request, pod: Pod, subresource: str, upgrade: str) -> None:
        container = request.param("container") or pod.default_container()
        spec = pod.container_spec(container)
        if spec is None:
            conn.send_status(400, "BadRequest", f"container {container} is not valid for pod {pod.name}", close=True)
            return
        ephemeral = container in {c["name"] for c in pod.obj["spec"].get("ephemeralContainers") or []}
        state = self.store.container_state(pod, container) if ephemeral else {"running": {}}
        if state is None or "waiting" in state:
            reason = (state or {}).get("waiting", {}).get("reason", "ContainerCreating")
            conn.send_status(400, "BadRequest", f'container "{container}" in pod "{pod.name}" is waiting to start: '
                             f"{reason}", close=True)
            return
        options = {"stdin": request.flag("stdin"), "stdout": request.flag("stdout"),
                   "stderr": request.flag("stderr"), "tty": request.flag("tty")}
        if options["tty"]:
            options["stderr"] = False
        command = request.query.get("command", [])
        if subresource == "exec" and not command:
            conn.send_status(400, "BadRequest", "you must specify at least 1 command", close=True)
            return
        if not (options["stdin"] or options["stdout"] or options["stderr"]):
            conn.send_status(400, "BadRequest", "you must specify at least 1 of stdin, stdout, stderr", close=True)
            return
        if upgrade == "websocket":
            socket_ = ws.server_accept(conn.stream, request.headers, EXEC_PROTOCOLS)
            if socket_ is None:
                conn.send_status(400, "BadRequest", f"none of the offered subprotocols "
                                 f"{request.header('Sec-WebSocket-Protocol')!r} is supported; want {EXEC_PROTOCOLS}",
                                 close=True)
                return
            conn.record["status"] = 101
            conn.record["negotiated"] = socket_.subprotocol
            channels: "Channels" = WebSocketChannels(socket_)
        else:
            offered = [token for value in (v for k, v in request.headers if k.lower() == "x-stream-protocol-version")
                       for token in ws.tokens(value)]
            chosen = next((protocol for protocol in offered if protocol in SPDY_EXEC_PROTOCOLS), None)
            if chosen is None:
                conn.send_status(403, "Forbidden", f"subprotocol negotiation failed: offered {offered}, "
                                 f"the stand-in speaks {SPDY_EXEC_PROTOCOLS} over SPDY", close=True)
                return
            conn.send_head(101, [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
                                 ("X-Stream-Protocol-Version", chosen)])
            conn.record["negotiated"] = "SPDY/3.1+" + chosen
            channels = SpdyChannels(conn.stream, options)
            if not channels.wait_ready(30.0):
                channels.close()
                return
        kind = "activeExecs" if subresource == "exec" else "activeAttaches"
        self.store.stat(kind, 1)
        self.store.stat("execsServed", 1)
        try:
            signal_number = pid1_signal(command) if subresource == "exec" else None
            if signal_number is not None:
                code, message = self.signal_pid1(pod, container, signal_number, via="exec")
                if message and options["stderr"]:
                    channels.send(ws.STDERR if not options["tty"] else ws.STDOUT, message.encode())
                channels.finish(exit_status(code, command))
                channels.close()
            elif subresource == "exec":
                run_exec(channels, pod, command, options, lambda size: self.store.stat("execOutputBytes", size),
                         self.pid1_env(pod, container))
            else:
                run_attach(self, channels, pod, container, spec, options)
        finally:
            self.store.stat(kind, -1)

    def port_forward(self, conn: Connection, request: Request, pod: Pod, upgrade: str) -> None:
        self.store.stat("activeForwards", 1)
        try:
            if upgrade == "websocket":
                socket_ = ws.server_accept(conn.stream, request.headers, PORTFORWARD_WS_PROTOCOLS)
                if socket_ is None:
                    conn.send_status(400, "BadRequest", f"none of the offered subprotocols "
                                     f"{request.header('Sec-WebSocket-Protocol')!r} is supported; want "
                                     f"{PORTFORWARD_WS_PROTOCOLS}", close=True)
                    return
                conn.record["status"] = 101
                conn.record["negotiated"] = socket_.subprotocol
                if socket_.subprotocol.startswith("SPDY/3.1+"):
                    serve_spdy_port_forward(self.store, ws.WebSocketByteStream(socket_), pod)
                else:
                    ports = [int(port) for value in request.query.get("ports", []) for port in value.split(",")
                             if port.strip()]
                    serve_websocket_port_forward(self.store, socket_, pod, ports)
            else:
                offered = [token for value in (v for k, v in request.headers if k.lower() == "x-stream-protocol-version")
                           for token in ws.tokens(value)]
                if "portforward.k8s.io" not in offered:
                    conn.send_status(403, "Forbidden", f"subprotocol negotiation failed: offered {offered}", close=True)
                    return
                conn.send_head(101, [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
                                     ("X-Stream-Protocol-Version", "portforward.k8s.io")])
                conn.record["negotiated"] = "SPDY/3.1+portforward.k8s.io (plain)"
                serve_spdy_port_forward(self.store, conn.stream, pod)
        finally:
            self.store.stat("activeForwards", -1)


# -- remote command channels --------------------------------------------------------------------------------------


class Channels:
    """What exec/attach need from a transport: send on a channel, receive (channel, data) until the end, finish."""

    def send(self, channel: int, data: bytes) -> None:
        raise NotImplementedError

    def receive(self) -> tuple[int, bytes] | None:
        """(channel, data) from the client; (channel, b"") when it half-closed that channel; None at the end."""
        raise NotImplementedError

    def finish(self, status: dict) -> None:
        """Sends the Status on the error channel, then ends the connection."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class WebSocketChannels(Channels):
    def __init__(self, socket_: ws.WebSocket) -> None:
        self.ws = socket_
        self.v5 = socket_.subprotocol == "v5.channel.k8s.io"

    def send(self, channel: int, data: bytes) -> None:
        self.ws.send_channel(channel, data)

    def receive(self) -> tuple[int, bytes] | None:
        while True:
            message = self.ws.recv_message()
            if message is None:
                return None
            _, payload = message
            if not payload:
                continue
            if payload[0] == ws.CLOSE_SIGNAL and self.v5 and len(payload) >= 2:
                return payload[1], b""
            if len(payload) > 1:
                return payload[0], payload[1:]

    def finish(self, status: dict) -> None:
        try:
            self.ws.send_channel(ws.ERROR, json.dumps(status).encode())
            self.ws.close(1000)
        except (ws.StreamClosed, OSError):
            pass

    def close(self) -> None:
        self.ws.stream.close()


class SpdyChannels(Channels):
    """remotecommand v4 over SPDY/3.1: the client opens one stream per channel, told apart by `streamtype`."""

    TYPES = {"stdin": ws.STDIN, "stdout": ws.STDOUT, "stderr": ws.STDERR, "error": ws.ERROR, "resize": ws.RESIZE}

    def __init__(self, stream: ws.Buffered, options: dict) -> None:
        import queue

        self.inbox: "queue.Queue[tuple[int, bytes] | None]" = queue.Queue()
        self.streams: dict[int, spdy.Stream] = {}
        self.expected = {ws.ERROR} | {channel for name, channel in self.TYPES.items()
                                      if name in ("stdin", "stdout", "stderr") and options.get(name)}
        if options.get("tty"):
            self.expected.add(ws.RESIZE)
        self.ready = threading.Event()
        self.session = spdy.Session(stream, server=True, on_stream=self._on_stream)
        self.reader = threading.Thread(target=self._serve, daemon=True)
        self.reader.start()

    def _serve(self) -> None:
        try:
            self.session.serve()
        finally:
            self.ready.set()
            self.inbox.put(None)

    def _on_stream(self, stream: spdy.Stream) -> None:
        channel = self.TYPES.get(stream.header("streamtype"))
        if channel is None:
            stream.send_reset(spdy.RST_PROTOCOL_ERROR)
            return
        self.streams[channel] = stream
        stream.on_data = lambda data, channel=channel: self.inbox.put((channel, data))
        stream.on_remote_close = lambda channel=channel: self.inbox.put((channel, b""))
        if self.expected <= set(self.streams):
            self.ready.set()

    def wait_ready(self, timeout: float) -> bool:
        return self.ready.wait(timeout) and self.expected <= set(self.streams)

    def send(self, channel: int, data: bytes) -> None:
        stream = self.streams.get(channel)
        if stream is not None:
            stream.send(data)

    def receive(self) -> tuple[int, bytes] | None:
        return self.inbox.get()

    def finish(self, status: dict) -> None:
        try:
            error = self.streams.get(ws.ERROR)
            if error is not None and status.get("status") != "Success":
                error.send(json.dumps(status).encode())
            for stream in list(self.streams.values()):
                stream.close()
            self.session.goaway()
        except OSError:
            pass
        self.session.close()

    def close(self) -> None:
        self.session.close()


def pump(fd: int, send: Callable[[bytes], None]) -> threading.Thread:
    def run() -> None:
        while True:
            data = read_fd(fd)
            if not data:
                return
            try:
                send(data)
            except (ws.StreamClosed, OSError):
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def handle_input(channels: Channels, proc: Proc, options: dict, done: threading.Event) -> None:
    """Client → process until the client goes away or `done` (the process ended and the status went out)."""
    while True:
        item = channels.receive()
        if item is None:
            return
        channel, data = item
        if channel == ws.STDIN:
            if not data:
                proc.close_stdin()
            elif options["stdin"]:
                proc.write_stdin(data)
        elif channel == ws.RESIZE and data:
            for line in data.decode("utf-8", "replace").splitlines() or [data.decode()]:
                try:
                    size = json.loads(line)
                    proc.resize(int(size.get("Width", 0)), int(size.get("Height", 0)))
                except (ValueError, AttributeError, OSError):
                    pass


NO_SUCH_PID = 2 ** 22 + 1  # above pid_max: `kill` of it says "No such process"
FATAL_SIGNALS = {signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGKILL, signal.SIGUSR1,
                 signal.SIGUSR2, signal.SIGABRT, signal.SIGALRM, signal.SIGPIPE}
SHRC = """# kube_standin.py: in a container, PID 1 is the container's main process, not this machine's init.
: "${STANDIN_PID1:=$$}"
export STANDIN_PID1
kill() {
    _standin_args=
    for _standin_arg in "$@"; do
        [ "$_standin_arg" = 1 ] && _standin_arg=$STANDIN_PID1
        _standin_args="$_standin_args $_standin_arg"
    done
    command kill $_standin_args
}
"""


def write_shrc(pod: Pod) -> Path:
    path = pod.root / ".standin-shrc"
    if not path.exists():
        path.write_text(SHRC)
    return path


def pid1_signal(command: list[str]) -> int | None:
    """The signal of `kill [-SIG | -s SIG | -n N] 1` (also inside `sh -c '…'`), else None."""
    import shlex
    if len(command) == 3 and os.path.basename(command[0]) in ("sh", "bash", "ash", "dash") and command[1] == "-c":
        if any(mark in command[2] for mark in (";", "&", "|", "$", "`", "\n", ">", "<")):
            return None
        try:
            command = shlex.split(command[2])
        except ValueError:
            return None
    if not command or os.path.basename(command[0]) != "kill" or command[-1] != "1":
        return None
    options = command[1:-1]
    name = "TERM"
    if len(options) == 1 and options[0].startswith("-") and options[0] != "--":
        name = options[0][1:]
    elif len(options) == 2 and options[0] in ("-s", "-n"):
        name = options[1]
    elif options:
        return None
    if name.isdigit():
        return int(name)
    try:
        return int(signal.Signals["SIG" + name.upper().removeprefix("SIG")])
    except KeyError:
        return None


def run_exec(channels: Channels, pod: Pod, command: list[str], options: dict,
             count: Callable[[int], None] = lambda size: None, extra_env: dict | None = None) -> None:
    try:
        proc = Proc(command, pod.root, pod.env(options["tty"]) | (extra_env or {}), stdin=options["stdin"],
                    tty=options["tty"])
    except OSError as error:
        channels.finish(internal_error_status(
            f"failed to exec in container: failed to start exec: OCI runtime exec failed: {error.strerror or error}"))
        channels.close()
        return
    done = threading.Event()

    def sender(channel: int) -> Callable[[bytes], None]:
        def send(data: bytes) -> None:
            channels.send(channel, data)  # blocks while the client does not read: backpressure reaches the process
            count(len(data))
        return send

    pumps = [pump(proc.stdout_fd, sender(ws.STDOUT))] if proc.stdout_fd is not None else []
    if proc.stderr_fd is not None:
        pumps.append(pump(proc.stderr_fd, sender(ws.STDERR)))

    def finisher() -> None:
        code = proc.wait()
        for thread in pumps:
            thread.join(5.0)
        channels.finish(exit_status(code, command))
        proc.release()
        done.set()

    waiter = threading.Thread(target=finisher, daemon=True)
    waiter.start()
    handle_input(channels, proc, options, done)
    if not done.is_set():
        proc.kill()  # the client went away before the command ended
    waiter.join(10.0)
    channels.close()


class ContainerRuntime:
    """A container's main process (attach target): started once, its output goes to whoever is attached."""

    def __init__(self, store: Store, pod: Pod, spec: dict, extra_env: dict | None = None) -> None:
        self.store = store
        self.pod = pod
        self.name = spec["name"]
        self.argv = list(spec.get("command") or []) + list(spec.get("args") or []) or ["sh"]
        self.tty = bool(spec.get("tty"))
        self.stdin = bool(spec.get("stdin"))
        self.lock = threading.Lock()
        self.sink: Callable[[int, bytes], None] | None = None
        self.exit_code: int | None = None
        self.exited = threading.Event()
        self.proc = Proc(self.argv, pod.root, pod.env(self.tty) | (extra_env or {}), stdin=self.stdin, tty=self.tty,
                         size=(24, 80))
        self.pumps = [self._pump(self.proc.stdout_fd, ws.STDOUT)]
        if self.proc.stderr_fd is not None:
            self.pumps.append(self._pump(self.proc.stderr_fd, ws.STDERR))
        threading.Thread(target=self._wait, daemon=True).start()

    def _pump(self, fd: int, channel: int) -> threading.Thread:
        def send(data: bytes) -> None:
            with self.lock:
                sink = self.sink
            if sink is not None:
                try:
                    sink(channel, data)
                except (ws.StreamClosed, OSError):
                    pass
        return pump(fd, send)

    def _wait(self) -> None:
        code = self.proc.wait()
        for thread in self.pumps:
            thread.join(5.0)
        self.exit_code = code
        self.proc.release()
        self.exited.set()
        self.store.container_exited(self.pod, self.name, code)


def run_attach(server: Server, channels: Channels, pod: Pod, container: str, spec: dict, options: dict) -> None:
    with server.store.cond:
        runtime = pod.containers.get(container)
    if runtime is None or runtime.exited.is_set():
        if runtime is not None and container in {c["name"] for c in pod.obj["spec"].get("ephemeralContainers") or []}:
            channels.finish(internal_error_status(f"container {container} has terminated"))
            channels.close()
            return
        runtime = server.start_container(pod, spec)
    with runtime.lock:
        runtime.sink = lambda channel, data: channels.send(channel if not runtime.tty else ws.STDOUT, data)
    done = threading.Event()

    def finisher() -> None:
        runtime.exited.wait()
        if not done.is_set():
            channels.finish(exit_status(runtime.exit_code or 0, runtime.argv))
            done.set()

    threading.Thread(target=finisher, daemon=True).start()
    handle_input(channels, runtime.proc, options | {"stdin": options["stdin"] and runtime.stdin}, done)
    with runtime.lock:
        runtime.sink = None  # detached; the container keeps running
    done.set()
    channels.close()


# -- port-forward -------------------------------------------------------------------------------------------------


def relay_until_eof(target: socket.socket, send: Callable[[bytes], None]) -> None:
    """Passes what the pod's port sends to `send` until it closes (or fails, which ends the stream the same way)."""
    while True:
        try:
            data = target.recv(READ_SIZE)
        except OSError:
            data = b""
        if not data:
            return
        send(data)


def connect_pod_port(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def serve_spdy_port_forward(store: Store, transport, pod: Pod) -> None:
    """kubelet's port-forward over SPDY: per connection the client opens an error and a data stream sharing a
    requestid; data streams are spliced to 127.0.0.1:port; errors are written to the error stream."""
    pairs: dict[str, dict[str, spdy.Stream]] = {}
    targets: list[socket.socket] = []
    lock = threading.Lock()

    def fail(pair: dict, message: str) -> None:
        error = pair.get("error")
        if error is not None:
            try:
                error.send(message.encode())
                error.close()
            except OSError:
                pass
        else:
            pair["pending_error"] = message  # type: ignore[assignment]
        data = pair.get("data")
        if data is not None:
            try:
                data.close()
            except OSError:
                pass

    def start_data(pair: dict, stream: spdy.Stream, port_text: str) -> None:
        try:
            port = int(port_text)
            target = connect_pod_port(port)
        except (ValueError, OSError) as error:
            fail(pair, f"error forwarding port {port_text} to pod {pod.name}, uid {pod.obj['metadata']['uid']}: "
                       f"{error}")
            stream.on_data = lambda data: None
            return
        with lock:
            targets.append(target)
        store.stat("forwardConnections", 1)

        def to_target(data: bytes) -> None:
            try:
                target.sendall(data)
            except OSError:
                pass

        def half_close() -> None:
            try:
                target.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        def reset() -> None:
            try:
                target.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        stream.on_data = to_target
        stream.on_remote_close = half_close
        stream.on_reset = reset

        def from_target() -> None:
            try:
                relay_until_eof(target, stream.send)
                stream.close()
                error = pair.get("error")
                if error is not None:
                    error.close()
            except OSError:
                pass
            finally:
                target.close()

        threading.Thread(target=from_target, daemon=True).start()

    def on_stream(stream: spdy.Stream) -> None:
        stream_type = stream.header("streamtype")
        request_id = stream.header("requestid") or str(stream.id)
        port = stream.header("port")
        if stream_type not in ("error", "data"):
            stream.send_reset(spdy.RST_PROTOCOL_ERROR)
            return
        with lock:
            pair = pairs.setdefault(request_id, {})
            pair[stream_type] = stream
        if stream_type == "data":
            start_data(pair, stream, port)
        elif "pending_error" in pair:
            fail(pair, pair.pop("pending_error"))  # type: ignore[arg-type]

    session = spdy.Session(transport, server=True, on_stream=on_stream)
    try:
        session.serve()
    finally:
        with lock:
            for target in targets:
                try:
                    target.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        session.close()


def serve_websocket_port_forward(store: Store, socket_: ws.WebSocket, pod: Pod, ports: list[int]) -> None:
    """port-forward over v4.channel.k8s.io: port i has data channel 2i and error channel 2i+1; the first message on
    each channel is the port (little-endian uint16)."""
    if not ports:
        socket_.send_channel(1, b"query parameter \"ports\" is required")
        socket_.close(1000)
        socket_.stream.close()
        return
    targets: list[socket.socket | None] = []
    for index, port in enumerate(ports):
        socket_.send(ws.OP_BINARY, bytes([2 * index]) + struct.pack("<H", port))
        socket_.send(ws.OP_BINARY, bytes([2 * index + 1]) + struct.pack("<H", port))
        try:
            targets.append(connect_pod_port(port))
            store.stat("forwardConnections", 1)
        except OSError as error:
            targets.append(None)
            socket_.send_channel(2 * index + 1, f"error forwarding port {port} to pod {pod.name}, uid "
                                                f"{pod.obj['metadata']['uid']}: {error}".encode())
    remaining = [sum(1 for target in targets if target is not None)]
    lock = threading.Lock()

    def from_target(index: int, target: socket.socket) -> None:
        try:
            relay_until_eof(target, lambda data: socket_.send_channel(2 * index, data))
        except (ws.StreamClosed, OSError):
            pass
        finally:
            target.close()
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                try:
                    socket_.close(1000)
                except (ws.StreamClosed, OSError):
                    pass

    for index, target in enumerate(targets):
        if target is not None:
            threading.Thread(target=from_target, args=(index, target), daemon=True).start()
    if remaining[0] == 0:
        socket_.close(1000)
    while True:
        message = socket_.recv_message()
        if message is None:
            break
        _, payload = message
        if len(payload) < 2 or payload[0] % 2:
            continue
        index = payload[0] // 2
        target = targets[index] if index < len(targets) else None
        if target is not None:
            try:
                target.sendall(payload[1:])
            except OSError:
                pass
    for target in targets:
        if target is not None:
            try:
                target.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    socket_.stream.close()


# -- main ---------------------------------------------------------------------------------------------------------


SIMULATED_NOTICE = ("This is a SIMULATED Kubernetes cluster: Tests/e2e/kube_standin.py, started by `make run` because "
                    "no kubeconfig was found. Its pods are not real; `kubectl exec` runs the command as a local "
                    "process on this machine, in the pod's folder under {root}/pods.")


def seed(store: Store, simulated: bool = False) -> None:
    """The tests' objects; with `simulated` (the demo), objects whose names say it is not a real cluster."""
    if simulated:
        for name in ("default", "kube-system", "simulated-cluster"):
            store.add_namespace(name)
        store.create_pod("default", {
            "metadata": {"name": "simulated-app-0", "labels": {"app": "demo"},
                         "annotations": {"standin.porthole.test/notice": "simulated pod, not Kubernetes"}},
            "spec": {"containers": [{"name": "app", "image": "simulated:demo"}]}})
        store.append_log(store.get_pod("default", "simulated-app-0"),
                         SIMULATED_NOTICE.format(root=store.root) + "\nhello from the simulated pod simulated-app-0\n")
        return
    for name in ("default", "kube-system", "porthole-e2e"):
        store.add_namespace(name)
    store.create_pod("default", {"metadata": {"name": "app-0", "labels": {"app": "demo"}},
                                 "spec": {"containers": [{"name": "app", "image": "busybox:1.36",
                                                          "ports": [{"containerPort": 8080}]}]}})
    store.create_pod("kube-system", {"metadata": {"name": "coredns-0", "labels": {"k8s-app": "kube-dns"}},
                                     "spec": {"containers": [{"name": "coredns", "image": "coredns:1.11"}]}})


def kill_all_processes() -> None:
    with PROCESSES_LOCK:
        processes = list(PROCESSES)
    for proc in processes:
        proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Kubernetes API stand-in (TEST FIXTURE) for Porthole's e2e tests.")
    parser.add_argument("--listen", type=parse_address, default=("127.0.0.1", 0), help="HOST:PORT, port 0 = ephemeral")
    parser.add_argument("--dir", required=True, type=Path, help="where ca.crt, the serving cert and pod roots go")
    parser.add_argument("--token", required=True, help="the bearer token every request must carry")
    parser.add_argument("--simulated", action="store_true",
                        help="for the demo: seed a namespace and pod named to say the cluster is simulated, log so, "
                             "and report a server version that says so")
    args = parser.parse_args(argv)

    cert, key = make_certificates(args.dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    context.set_alpn_protocols(["http/1.1"])
    store = Store(args.dir.resolve())
    seed(store, simulated=args.simulated)
    if args.simulated:
        SERVER_VERSION["gitVersion"] = "v1.33.0-simulated-by-porthole-demo"
        log(SIMULATED_NOTICE.format(root=store.root))
    server = Server(args.listen, store, args.token, context)

    def stop(signum: int, frame: object) -> None:
        server.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(json.dumps({"listening": server.address}), flush=True)
    try:
        server.serve_forever()
    finally:
        kill_all_processes()
        server.listener.close()
        log("stopped")
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
