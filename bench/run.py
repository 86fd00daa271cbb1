#!/usr/bin/env python3
"""`make bench`: Porthole against a direct connection, HAProxy and an `ssh -R` tunnel, on one machine, in one run.

Starts nginx (TLS; a small JSON document and a large file; an upload sink), HAProxy in front of it, an OpenSSH
reverse tunnel to it (a throwaway sshd on loopback and `ssh -N -R`), and a Porthole controller + agent whose service
points at the same nginx, then measures:

1. request rate and latency (h2load): 1x100 and 16x8 over HTTP/2, 16 connections over HTTP/1.1;
2. single-stream bulk throughput both ways (curl), SHA-256 checked;
3. controller and agent CPU seconds per 10,000 small requests and per GiB moved;
4. controller memory per idle agent tunnel (porthole-bench-agents) and the time for all of them to come back
   after a controller restart;
5. controller and agent memory per idle long-poll stream;
6. a gateway identity request (ID token, `--gateway-config`) against a service-token request: rate and CPU.

Writes a Markdown report (machine, versions, commands, raw outputs, the tables) to bench/results/ and prints the
tables. Standard library only. `python3 bench/run.py --help` for the knobs; `hold-server` is an internal
subcommand (the long-poll backend of phase 5).
"""

import argparse
import asyncio
import datetime
import hashlib
import json
import os
import platform
import pwd
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1 << 20
GIB = 1 << 30
PATHS = ("direct", "haproxy", "ssh -R", "porthole")
CONFIGS = ("h2 1×100", "h2 16×8", "h1 16", "h2 1×1")

# --------------------------------------------------------------------------------------------------------------
# The long-poll backend (phase 5): holds every request until released, counts what it holds.


async def hold_server_main(port: int, max_hold: float) -> None:
    held = 0
    release = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal held
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"
        body = b"ok\n"
        if target.startswith(b"/__count"):
            body = b"%d\n" % held
        elif target.startswith(b"/__release"):
            release.set()
        elif not target.startswith(b"/__nohold"):
            held += 1
            try:
                await asyncio.wait_for(release.wait(), max_hold)
            except asyncio.TimeoutError:
                pass
            held -= 1
        try:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=65535, limit=65536)
    print(json.dumps({"listening": port}), flush=True)
    async with server:
        await server.serve_forever()


# --------------------------------------------------------------------------------------------------------------
# Processes, /proc, small helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, seconds: float, what: str, proc: "Proc | None" = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise SystemExit(f"error: {what} exited early (status {proc.popen.returncode}); see {proc.log}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"error: {what} did not listen on 127.0.0.1:{port} within {seconds}s")


def metric_value(port: int, name: str) -> float | None:
    """One unlabelled sample from a Prometheus endpoint on 127.0.0.1, or None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def wait_for_metric(port: int, name: str, minimum: float, seconds: float, what: str, log: Path) -> None:
    """Waits for a metric instead of a log line, so any --log-level works."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = metric_value(port, name)
        if value is not None and value >= minimum:
            return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    raise SystemExit(f"error: timed out waiting for {what} ({name} >= {minimum}):\n{tail}")


def raise_nofile(limit: int = 65536) -> None:
    """In a child before exec: thousands of tunnels and streams need thousands of descriptors."""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    except (ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def descendants_of(pid: int) -> list[int]:
    """Children, grandchildren, …: nginx workers, and sshd's per-connection monitor and session processes."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    """user + system CPU of a process (all its threads), from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Proc:
    """A process this run started; `tree` also counts its descendants (nginx workers, sshd's sessions)."""

    def __init__(self, name: str, argv: list[str], log: Path, report: "Report", tree: bool = False,
                 stdin=subprocess.DEVNULL, stdout=None, env=None, nofile: bool = True):
        self.name = name
        self.argv = argv
        self.log = log
        self.tree = tree
        report.command(argv, note=f"started in the background ({name}); stderr to {log.name}")
        self.log_file = open(log, "ab")
        self.started_at = time.time()
        self.popen = subprocess.Popen(
            argv, stdin=stdin, stdout=stdout if stdout is not None else self.log_file, stderr=self.log_file,
            preexec_fn=raise_nofile if nofile else None, env=env, cwd=ROOT)
        self.pid = self.popen.pid

    def pids(self) -> list[int]:
        return [self.pid] + (descendants_of(self.pid) if self.tree else [])

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def rss(self) -> int:
        return sum(rss_bytes(pid) for pid in self.pids())

    def stop(self, timeout: float = 30) -> None:
        # Descendants found now (sshd's session processes outlive the listener), stopped after it by their PIDs.
        rest = descendants_of(self.pid) if self.tree and self.popen.poll() is None else []
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        for pid in rest:
            try:
                os.kill(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        self.log_file.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, int(round(fraction * (len(sorted_values) - 1)))))
    return sorted_values[index]


def fmt_bytes(count: float) -> str:
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if abs(count) >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


def ratio(value: float, base: float) -> str:
    if not base or value != value or base != base:
        return "–"
    return f"{value / base:.2f}×"


def num(value: float, digits: int = 2) -> str:
    return "–" if value is None or value != value else f"{value:,.{digits}f}"


# --------------------------------------------------------------------------------------------------------------
# The report: every command, raw outputs, tables


class Report:
    def __init__(self) -> None:
        self.commands: list[str] = []
        self.raw: list[tuple[str, str]] = []
        self.tables: list[str] = []
        self.notes: list[str] = []
        self.lock_step = 0

    def command(self, argv, note: str | None = None) -> None:
        text = argv if isinstance(argv, str) else shlex.join(str(a) for a in argv)
        self.commands.append(text + (f"    # {note}" if note else ""))

    def output(self, title: str, text: str) -> None:
        self.raw.append((title, text.rstrip()))

    def table(self, title: str, header: list[str], rows: list[list[str]], note: str = "", left: int = 2,
              align: str = "") -> str:
        """`align` is one letter per column (l, r); by default the first `left` columns are text."""
        align = align or "l" * left + "r" * (len(header) - left)
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
                 "| " + " | ".join("---" if a == "l" else "---:" for a in align) + " |"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        if note:
            lines += ["", note]
        text = "\n".join(lines)
        self.tables.append(text)
        return text


def run(report: Report, argv: list[str], title: str | None = None, check: bool = True, timeout: float = 600,
        record_output: bool = True, **kwargs) -> subprocess.CompletedProcess:
    report.command(argv)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kwargs)
    if record_output and (result.stdout.strip() or result.stderr.strip()):
        report.output(title or shlex.join(str(a) for a in argv)[:120],
                      (result.stdout + ("\n" + result.stderr if result.stderr.strip() else "")).strip())
    if check and result.returncode != 0:
        raise SystemExit(f"error: {shlex.join(str(a) for a in argv)} exited {result.returncode}:\n"
                         f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result


# --------------------------------------------------------------------------------------------------------------
# The bench


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.work = Path(args.work).resolve() / self.stamp if args.work else ROOT / "scratch" / "bench" / self.stamp
        self.work.mkdir(parents=True, exist_ok=True)
        self.bin = Path(args.bin).resolve()
        self.exe = {name: self.bin / name for name in
                    ("porthole-controller", "porthole-agent", "make-ca", "porthole-bench-agents")}
        if args.isolate_names:
            # On a shared machine, someone's `pkill porthole-…` must not reach the processes being measured.
            folder = self.work / "bin"
            folder.mkdir()
            for name, path in self.exe.items():
                copy = folder / name.replace("porthole-", "phb-")
                shutil.copy2(path, copy)
                self.exe[name] = copy
        self.shm = Path(f"/dev/shm/porthole-bench-{os.getpid()}")
        self.shm.mkdir(parents=True, exist_ok=True)
        self.report = Report()
        self.procs: list[Proc] = []
        self.results: dict = {"requests": {}, "bulk": {}, "agents": {}, "streams": {}, "gateway": {}}
        self.started = time.monotonic()
        self.ports = {name: free_port() for name in (
            "nginx_https", "nginx_http", "sink", "haproxy", "agent", "service", "control", "metrics", "hold",
            "sshd", "ssh_forward")}
        self.controller: Proc | None = None
        self.agent: Proc | None = None
        self.haproxy: Proc | None = None
        self.nginx: Proc | None = None
        self.sshd: Proc | None = None
        self.ssh: Proc | None = None
        self.profiles: list[tuple[str, str]] = []

    # ---- setup ------------------------------------------------------------------------------------------------

    def log(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", flush=True)

    def start(self, *args, **kwargs) -> Proc:
        proc = Proc(*args, report=self.report, **kwargs)
        self.procs.append(proc)
        return proc

    def setup(self) -> None:
        a = self.args
        w = self.work
        r = self.report
        self.log(f"work folder {w}, large files in {self.shm}")
        # The backend's own CA and server certificate (what HAProxy and the agent verify nginx against).
        run(r, ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", w / "backend-ca.key", "-out", w / "backend-ca.crt", "-days", "2",
                "-subj", "/CN=porthole-bench backend CA", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign"], record_output=False)
        run(r, ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", w / "backend.key", "-out", w / "backend.csr", "-subj", "/CN=127.0.0.1"],
            record_output=False)
        (w / "backend.ext").write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
        run(r, ["openssl", "x509", "-req", "-in", w / "backend.csr", "-CA", w / "backend-ca.crt",
                "-CAkey", w / "backend-ca.key", "-CAcreateserial", "-days", "2", "-out", w / "backend.crt",
                "-extfile", w / "backend.ext"], record_output=False)
        (w / "haproxy.pem").write_text((w / "backend.crt").read_text() + (w / "backend.key").read_text())
        run(r, [self.exe["make-ca"], "--out", w / "ca", "--agent", "bench"], record_output=False)

        # Documents: a small JSON document and the bulk file (random bytes, hashed while written).
        docroot = self.shm / "docroot"
        docroot.mkdir()
        small = {"kind": "Status", "apiVersion": "v1", "metadata": {"resourceVersion": "12345"},
                 "status": "Success", "message": "porthole bench small document",
                 "items": [{"name": f"item-{i}", "ready": True, "restarts": i} for i in range(8)]}
        self.small_body = json.dumps(small, indent=1).encode()
        (docroot / "small.json").write_bytes(self.small_body)
        self.bulk_size = a.bulk_mib * MIB
        self.bulk_path = docroot / "big.bin"
        digest = hashlib.sha256()
        began = time.monotonic()
        with open(self.bulk_path, "wb") as f:
            remaining = self.bulk_size
            while remaining:
                chunk = os.urandom(min(remaining, 8 * MIB))
                digest.update(chunk)
                f.write(chunk)
                remaining -= len(chunk)
        self.bulk_sha = digest.hexdigest()
        r.command(f"python3: write {self.bulk_size} random bytes to {self.bulk_path} (SHA-256 {self.bulk_sha})")
        self.log(f"bulk file {fmt_bytes(self.bulk_size)} written in {time.monotonic() - began:.1f}s")
        (self.shm / "bodies").mkdir()

        # nginx
        p = self.ports
        conf = (BENCH / "nginx.conf.template").read_text()
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nofile = min(nofile, 65536) if nofile != resource.RLIM_INFINITY else 65536
        self.nofile = nofile
        for key, value in {"WORKERS": str(a.nginx_workers), "WORK": str(w), "NOFILE": str(nofile),
                           "CONNECTIONS": str(max(1024, nofile // 2)), "BODIES": str(self.shm / "bodies"),
                           "HTTPS_PORT": str(p["nginx_https"]), "HTTP_PORT": str(p["nginx_http"]),
                           "SINK_PORT": str(p["sink"]), "CERT": str(w / "backend.crt"),
                           "KEY": str(w / "backend.key"), "DOCROOT": str(docroot)}.items():
            conf = conf.replace(f"@{key}@", value)
        (w / "nginx.conf").write_text(conf)
        run(r, ["nginx", "-t", "-p", w, "-c", w / "nginx.conf"], record_output=False)
        self.nginx = self.start("nginx", ["nginx", "-p", str(w), "-c", str(w / "nginx.conf"), "-g", "daemon off;"],
                                w / "nginx.log", tree=True)
        wait_for_port(p["nginx_https"], 10, "nginx", self.nginx)
        wait_for_port(p["sink"], 10, "nginx sink", self.nginx)

        # HAProxy, reaching nginx the way the agent does.
        if a.backend == "https":
            server = (f"127.0.0.1:{p['nginx_https']} ssl verify required ca-file {w / 'backend-ca.crt'} "
                      f"alpn http/1.1")
            self.backend_url = f"https://127.0.0.1:{p['nginx_https']}"
        else:
            server = f"127.0.0.1:{p['nginx_http']}"
            self.backend_url = f"http://127.0.0.1:{p['nginx_http']}"
        cfg = (BENCH / "haproxy.cfg.template").read_text()
        for key, value in {"PORT": str(p["haproxy"]), "PEM": str(w / "haproxy.pem"),
                           "MAXCONN": str(max(256, min(10000, (self.nofile - 200) // 2))),
                           "BACKEND_SERVER": server}.items():
            cfg = cfg.replace(f"@{key}@", value)
        (w / "haproxy.cfg").write_text(cfg)
        run(r, ["haproxy", "-c", "-f", w / "haproxy.cfg"], record_output=False)
        self.haproxy = self.start("haproxy", ["haproxy", "-db", "-f", str(w / "haproxy.cfg")], w / "haproxy.log")
        wait_for_port(p["haproxy"], 10, "haproxy", self.haproxy)

        self.start_ssh()

        # The long-poll backend for phase 5.
        self.hold = self.start("hold-server", [sys.executable, str(Path(__file__).resolve()), "hold-server",
                                               "--port", str(p["hold"])], w / "hold.log")
        wait_for_port(p["hold"], 10, "hold server", self.hold)

        # Porthole: the agent's service is the same nginx over the same protocol as HAProxy's backend.
        service = {"type": "x-bench", "name": "nginx", "url": self.backend_url, "credentials": {}}
        if a.backend == "https":
            service["caFile"] = str(w / "backend-ca.crt")
        services = {"services": [service, {"type": "x-bench", "name": "hold",
                                            "url": f"http://127.0.0.1:{p['hold']}", "credentials": {}}]}
        (w / "services.json").write_text(json.dumps(services, indent=1))
        self.start_porthole("main")
        self.token = self.service_token("nginx")
        self.hold_token = self.service_token("hold")
        self.urls = {"direct": f"https://127.0.0.1:{p['nginx_https']}",
                     "haproxy": f"https://127.0.0.1:{p['haproxy']}",
                     "ssh -R": f"https://127.0.0.1:{p['ssh_forward']}",
                     "porthole": f"https://127.0.0.1:{p['service']}"}
        # Every path must serve the same document before anything is measured.
        for path in PATHS:
            result = run(r, self.curl(path) + ["-o", "-", "-w", "\\n%{http_code} %{http_version}",
                                               f"{self.urls[path]}/small.json"], record_output=False)
            body, _, status = result.stdout.rpartition("\n")
            if not status.startswith("200") or body.encode() != self.small_body:
                raise SystemExit(f"error: {path} did not serve /small.json: status {status!r}")
        self.log(f"nginx, haproxy, sshd + ssh -R, controller and agent up (backend {self.backend_url})")

    def start_ssh(self) -> None:
        """The `ssh -R` peer: a throwaway sshd on loopback (its own keys and configuration in the work folder) and
        `ssh -N -R 127.0.0.1:FORWARD:127.0.0.1:NGINX`: client → sshd's forwarded port → SSH channel → ssh → nginx,
        TLS end to end between the client and nginx, as someone would set it up by hand."""
        w, p, r = self.work, self.ports, self.report
        d = w / "ssh"
        d.mkdir(mode=0o700)
        for key in ("host_key", "client_key"):
            run(r, ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"porthole-bench {key}", "-f", d / key],
                record_output=False)
        (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
        (d / "authorized_keys").chmod(0o600)
        user = pwd.getpwuid(os.getuid()).pw_name
        (d / "sshd_config").write_text("\n".join([
            "ListenAddress 127.0.0.1", f"Port {p['sshd']}", f"HostKey {d / 'host_key'}",
            f"AuthorizedKeysFile {d / 'authorized_keys'}", f"PidFile {d / 'sshd.pid'}", "UsePAM no",
            "StrictModes no", "PermitRootLogin prohibit-password", "PubkeyAuthentication yes",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", f"AllowUsers {user}",
            "AllowTcpForwarding yes", "GatewayPorts no", "X11Forwarding no", "PrintMotd no", "LogLevel ERROR", ""]))
        if os.getuid() == 0 and not Path("/run/sshd").is_dir():
            # sshd as root needs its privilege-separation directory (Debian's service unit makes it at boot).
            r.command("mkdir -p -m 0755 /run/sshd")
            Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        run(r, [sshd, "-t", "-f", d / "sshd_config"], record_output=False)
        self.sshd = self.start("sshd", [sshd, "-D", "-e", "-f", str(d / "sshd_config")], w / "sshd.log", tree=True)
        wait_for_port(p["sshd"], 10, "sshd", self.sshd)
        self.ssh = self.start("ssh -R", [
            "ssh", "-N", "-F", "/dev/null", "-R", f"127.0.0.1:{p['ssh_forward']}:127.0.0.1:{p['nginx_https']}",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR", "-i", str(d / "client_key"),
            "-p", str(p["sshd"]), f"{user}@127.0.0.1"], w / "ssh.log")
        wait_for_port(p["ssh_forward"], 15, "ssh -R's forwarded port", self.ssh)

    def controller_argv(self) -> list[str]:
        w, p = self.work, self.ports
        argv = [str(self.exe["porthole-controller"]), "--ca-cert", str(w / "ca" / "ca.crt"),
                "--ca-key", str(w / "ca" / "ca.key"), "--server-name", "127.0.0.1",
                "--agent-listen", f"127.0.0.1:{p['agent']}", "--service-listen", f"127.0.0.1:{p['service']}",
                "--control-listen", f"127.0.0.1:{p['control']}", "--metrics-listen", f"127.0.0.1:{p['metrics']}"]
        if self.args.log_level:
            argv += ["--log-level", self.args.log_level]
        return argv

    def start_controller(self, label: str, extra: list[str] = ()) -> Proc:
        log = self.work / f"controller-{label}.log"
        controller = self.start(f"controller ({label})", self.controller_argv() + list(extra), log)
        wait_for_metric(self.ports["metrics"], "porthole_tunnel_sessions", 0, 30, "the controller", log)
        return controller

    def start_porthole(self, label: str, extra: list[str] = (), services: str = "services.json") -> None:
        w, p = self.work, self.ports
        self.controller = self.start_controller(label, extra)
        argv = [str(self.exe["porthole-agent"]), "--controller", f"127.0.0.1:{p['agent']}",
                "--cert", str(w / "ca" / "agent-bench.crt"), "--key", str(w / "ca" / "agent-bench.key"),
                "--ca-cert", str(w / "ca" / "ca.crt"), "--services", str(w / services)]
        if self.args.log_level:
            argv += ["--log-level", self.args.log_level]
        self.agent = self.start(f"agent ({label})", argv, w / f"agent-{label}.log")
        wait_for_metric(self.ports["metrics"], "porthole_tunnel_sessions", 1, 30, "the agent's tunnel",
                        self.controller.log)

    def stop_porthole(self) -> None:
        for proc in (self.agent, self.controller):
            if proc:
                proc.stop()
        self.agent = self.controller = None

    def control_curl(self) -> list[str]:
        ca = self.work / "ca"
        return ["curl", "-sS", "--fail-with-body", "--cacert", str(ca / "ca.crt"), "--cert", str(ca / "control.crt"),
                "--key", str(ca / "control.key")]

    def service_token(self, service: str, service_type: str = "x-bench") -> str:
        result = run(self.report, self.control_curl() + [
            "-X", "POST", f"https://127.0.0.1:{self.ports['control']}/api/v1/service-tokens",
            "-d", json.dumps({"agent": "bench", "type": service_type, "service": service, "ttl": 86400})],
            record_output=False)
        return json.loads(result.stdout)["token"]

    def curl(self, path: str) -> list[str]:
        ca = self.work / ("ca/ca.crt" if path == "porthole" else "backend-ca.crt")
        return ["curl", "-sS", "--cacert", str(ca), "-H", f"Authorization: Bearer {self.token}"]

    def check_alive(self, during: str) -> None:
        """A process that died mid-run would turn into zeros in the tables: stop and say so instead."""
        for proc in (self.controller, self.agent, self.haproxy, self.nginx, self.sshd, self.ssh):
            if proc is not None and proc.popen.poll() is not None:
                raise SystemExit(f"error: {proc.name} exited with status {proc.popen.returncode} during {during} "
                                 f"(negative: killed by that signal); see {proc.log}")

    def cpu_snapshot(self) -> dict[str, float]:
        procs = {"controller": self.controller, "agent": self.agent, "haproxy": self.haproxy, "nginx": self.nginx,
                 "sshd": self.sshd, "ssh": self.ssh}
        return {name: proc.cpu() for name, proc in procs.items() if proc is not None}

    # ---- profiling (optional) ---------------------------------------------------------------------------------

    def profile_start(self, label: str) -> subprocess.Popen | None:
        if not self.args.profile or shutil.which("perf") is None:
            return None
        out = self.work / f"perf-{label}.data"
        pids = f"{self.controller.pid},{self.agent.pid}"
        argv = ["perf", "record", "-F", "499", "-g", "-p", pids, "-o", str(out)]
        self.report.command(argv, note=f"profile during {label}")
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def profile_stop(self, perf: subprocess.Popen | None, label: str) -> None:
        if perf is None:
            return
        perf.send_signal(signal.SIGINT)
        perf.wait(60)
        out = self.work / f"perf-{label}.data"
        text = []
        for comm, pid in (("controller", self.controller.pid), ("agent", self.agent.pid)):
            argv = ["perf", "report", "-i", str(out), "--stdio", "--no-children", "--pid", str(pid),
                    "--sort", "dso,symbol", "--percent-limit", "0.8", "-g", "none"]
            self.report.command(argv)
            result = subprocess.run(argv, capture_output=True, text=True)
            lines = [line for line in result.stdout.splitlines() if line.strip() and not line.startswith("#")]
            demangled = self.demangle("\n".join(lines))
            text.append(f"-- {comm} --\n{demangled}")
        self.profiles.append((label, "\n".join(text)))

    def demangle(self, text: str) -> str:
        swift = shutil.which("swift-demangle") or shutil.which("swift")
        if swift is None:
            return text
        argv = [swift, "--simplified"] if swift.endswith("demangle") else [swift, "demangle", "--simplified"]
        result = subprocess.run(argv, input=text, capture_output=True, text=True)
        return result.stdout if result.returncode == 0 else text

    # ---- phase 1 and 3a: request rate, latency, CPU per 10k --------------------------------------------------

    def phase_requests(self) -> None:
        a = self.args
        # `h2 1×1` is one request at a time: latency without queueing, what a single kubectl call sees.
        configs = [("h2 1×100", ["-c", "1", "-m", "100"]), ("h2 16×8", ["-c", "16", "-m", "8"]),
                   ("h1 16", ["--h1", "-c", "16", "-m", "1"]), ("h2 1×1", ["-c", "1", "-m", "1"])]
        # Rounds interleave the paths, so a noisy neighbour hits all three alike; the tables take medians.
        for round_number in range(1, a.rounds + 1):
            for name, flags in configs:
                for path in PATHS:
                    self.request_run(name, flags, path, round_number)

    def request_run(self, name: str, flags: list[str], path: str, round_number: int) -> None:
        a = self.args
        log_file = self.work / f"h2load-{name.replace(' ', '').replace('×', 'x')}-{path.replace(' ', '')}.tsv"
        argv = ["h2load", *flags, "-t", "1", "-D", str(a.duration), "--log-file", str(log_file),
                "-H", f"Authorization: Bearer {self.token}", f"{self.urls[path]}/small.json"]
        shown = [x if not x.startswith("Authorization") else "Authorization: Bearer $TOKEN" for x in argv]
        self.report.command(shown)
        profiled = path == "porthole" and name == "h2 16×8" and round_number == 1
        perf = self.profile_start(f"{name}-{path}") if profiled else None
        before = self.cpu_snapshot()
        result = subprocess.run(argv, capture_output=True, text=True, timeout=a.duration * 3 + 60)
        after = self.cpu_snapshot()
        self.profile_stop(perf, f"{name}-{path}")
        self.report.output(f"h2load {name} {path} (round {round_number})", result.stdout + result.stderr)
        parsed = self.parse_h2load(result.stdout)
        latencies = self.read_latencies(log_file)
        parsed["p50"] = percentile(latencies, 0.50) / 1000
        parsed["p99"] = percentile(latencies, 0.99) / 1000
        parsed["cpu"] = {k: after[k] - before[k] for k in after}
        self.check_alive(f"h2load {name} {path}")
        self.results["requests"].setdefault((name, path), []).append(parsed)
        self.log(f"{round_number}  {name:9} {path:9} {parsed['rps']:>10,.0f} req/s  p50 {parsed['p50']:.2f} ms  "
                 f"p99 {parsed['p99']:.2f} ms  non-2xx/failed {parsed['bad']}")
        log_file.unlink(missing_ok=True)

    @staticmethod
    def parse_h2load(text: str) -> dict:
        out = {"rps": float("nan"), "done": 0, "succeeded": 0, "bad": 0}
        if m := re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", text):
            out["seconds"] = float(m.group(1))
            out["rps"] = float(m.group(2))
        if m := re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                          r"(\d+) errored, (\d+) timeout", text):
            out["done"] = int(m.group(3))
            out["succeeded"] = int(m.group(4))
            out["bad"] = int(m.group(5)) + int(m.group(6)) + int(m.group(7))
        if m := re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text):
            out["2xx"] = int(m.group(1))
            out["bad"] += int(m.group(2)) + int(m.group(3)) + int(m.group(4))
        return out

    @staticmethod
    def read_latencies(path: Path) -> list[float]:
        values = []
        if path.exists():
            with open(path) as f:
                for line in f:
                    parts = line.split("\t")
                    if len(parts) >= 3 and parts[1].startswith("2"):
                        values.append(float(parts[2]))
        values.sort()
        return values

    # ---- phase 2 and 3b: bulk both ways ------------------------------------------------------------------------

    def phase_bulk(self) -> None:
        for round_number in range(1, self.args.bulk_rounds + 1):
            for direction in ("download", "upload"):
                for path in PATHS:
                    self.bulk_run(direction, path, round_number)

    def bulk_run(self, direction: str, path: str, round_number: int) -> None:
        profiled = path == "porthole" and round_number == 1
        perf = self.profile_start(f"{direction}-{path}") if profiled else None
        before = self.cpu_snapshot()
        began = time.monotonic()
        if direction == "download":
            target = self.shm / f"download-{path.replace(' ', '')}.bin"
            argv = self.curl(path) + ["-o", str(target), "-w", "%{json}",
                                      f"{self.urls[path]}/big.bin"]
        else:
            argv = self.curl(path) + ["-T", str(self.bulk_path), "-D", "-", "-o", "/dev/null",
                                      "-w", "\\n%{json}", f"{self.urls[path]}/upload"]
        shown = [x if not x.startswith("Authorization") else "Authorization: Bearer $TOKEN" for x in argv]
        self.report.command(shown)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        elapsed = time.monotonic() - began
        after = self.cpu_snapshot()
        self.profile_stop(perf, f"{direction}-{path}")
        info = {}
        try:
            info = json.loads(result.stdout[result.stdout.rfind("\n{") + 1:] if "\n{" in result.stdout
                              else result.stdout)
        except json.JSONDecodeError:
            pass
        seconds = info.get("time_total") or elapsed
        status = info.get("http_code") or info.get("response_code")
        # What arrived, checked after the clock stopped.
        if direction == "download":
            received = target
        else:
            m = re.search(r"(?im)^x-body-file:\s*(\S+)", result.stdout)
            received = Path(m.group(1)) if m else None
        if received is not None and received.exists():
            size = received.stat().st_size
            sha = self.sha256_file(received)
            received.unlink()
        else:
            size, sha = 0, None
        ok = sha == self.bulk_sha and size == self.bulk_size
        record = {"seconds": seconds, "mibps": self.bulk_size / MIB / seconds if ok else float("nan"),
                  "status": status, "http": info.get("http_version"), "sha_ok": ok,
                  "cpu": {k: after[k] - before[k] for k in after}, "curl_exit": result.returncode}
        self.check_alive(f"{direction} {path}")
        self.results["bulk"].setdefault((direction, path), []).append(record)
        summary = {k: info.get(k) for k in ("http_code", "http_version", "size_download", "size_upload",
                                            "speed_download", "speed_upload", "time_total", "exitcode",
                                            "errormsg")}
        self.report.output(f"curl {direction} {path} (round {round_number})",
                           json.dumps(summary) + f"\nreceived {size} bytes, SHA-256 {sha} "
                           f"({'matches' if ok else 'DOES NOT MATCH'} {self.bulk_sha})"
                           + (f"\nstderr: {result.stderr.strip()}" if result.stderr.strip() else ""))
        self.log(f"{round_number}  {direction:8} {path:9} {record['mibps']:>8,.0f} MiB/s  {seconds:.2f}s  "
                 f"HTTP/{record['http']} {status}  sha256 {'ok' if ok else 'MISMATCH'}")

    @staticmethod
    def sha256_file(path: Path) -> str:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(8 * MIB):
                digest.update(chunk)
        return digest.hexdigest()

    # ---- phase 5: idle long-poll streams over one tunnel -------------------------------------------------------

    def hold_count(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['hold']}/__count", timeout=5) as response:
            return int(response.read().strip() or 0)

    def phase_streams(self) -> None:
        a = self.args
        total = a.streams
        if self.nofile < total + 2000:
            total = max(100, self.nofile - 2000)
            self.log(f"RLIMIT_NOFILE hard limit {self.nofile}: measuring {total} streams instead of {a.streams}")
        self.log("phase 5: fresh controller and agent for the stream-memory measurement")
        self.stop_porthole()
        self.start_porthole("streams")
        # Warm both processes with a few ordinary requests, then take the baseline.
        for _ in range(3):
            run(self.report, self.curl("porthole") + ["-o", "/dev/null", f"{self.urls['porthole']}/small.json"],
                record_output=False)
        hold_curl = ["curl", "-sS", "--cacert", str(self.work / "ca/ca.crt"), "-H",
                     f"Authorization: Bearer {self.hold_token}", "-o", "/dev/null"]
        run(self.report, hold_curl + [f"{self.urls['porthole']}/__nohold"], record_output=False)
        time.sleep(1)
        base = {"controller": self.controller.rss(), "agent": self.agent.rss()}
        clients = max(1, min(100, total // 100))
        streams_per_client = max(1, total // clients)
        argv = ["h2load", "-n", str(clients * streams_per_client), "-c", str(clients), "-m",
                str(streams_per_client), "-t", "1", "-H", f"Authorization: Bearer {self.hold_token}",
                f"{self.urls['porthole']}/hold"]
        shown = [x if not x.startswith("Authorization") else "Authorization: Bearer $HOLD_TOKEN" for x in argv]
        self.report.command(shown, note="runs until the hold server is released")
        began = time.monotonic()
        h2load = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  preexec_fn=raise_nofile)
        held, last_change, previous = 0, time.monotonic(), -1
        while time.monotonic() - began < a.stream_ramp_timeout:
            held = self.hold_count()
            if held != previous:
                previous, last_change = held, time.monotonic()
            if held >= total or (held > 0 and time.monotonic() - last_change > 5):
                break
            time.sleep(0.25)
        ramp = time.monotonic() - began
        time.sleep(2)  # let allocations settle
        held = self.hold_count()
        peak = {"controller": self.controller.rss(), "agent": self.agent.rss()}
        self.report.command(f"curl http://127.0.0.1:{self.ports['hold']}/__release", note="hold server lets go")
        urllib.request.urlopen(f"http://127.0.0.1:{self.ports['hold']}/__release", timeout=5).read()
        try:
            out, _ = h2load.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            h2load.kill()
            out, _ = h2load.communicate()
        self.report.output("h2load hold", out)
        parsed = self.parse_h2load(out)
        self.results["streams"] = {"target": total, "held": held, "ramp": ramp, "base": base, "peak": peak,
                                   "h2load": parsed, "clients": clients}
        for side in ("controller", "agent"):
            delta = peak[side] - base[side]
            self.log(f"{held} held streams: {side} RSS {fmt_bytes(base[side])} → {fmt_bytes(peak[side])} "
                     f"= {delta / max(held, 1):,.0f} B/stream")
        self.stop_porthole()

    # ---- phase 6: a gateway identity request against a service-token request -----------------------------------

    GATEWAY_ISSUER = "https://idp.bench.invalid"
    GATEWAY_USER = "bench@example.com"
    GATEWAY_NAMESPACE_PATH = "/api/v1/namespaces/bench/pods/small"

    def phase_gateway(self) -> None:
        """A controller with `--gateway-config` (a JWKS-file issuer, a policy granting `view` to the bench user) and
        an agent whose `kubernetes/kube` service is the same nginx; h2load sends `/clusters/bench/kube/…` with an
        ID token (decided by the gateway) and the same path with a service token for kubernetes/kube (Porthole's
        own authentication; the gateway only recognises the token as Porthole's and passes it on)."""
        try:
            import jwt  # PyJWT, with cryptography: make bench installs both into .venv
            from cryptography.hazmat.primitives.asymmetric import ec
        except ImportError as error:
            self.log(f"phase 6 skipped: {error} (run through `make bench`, which installs pyjwt)")
            return
        a, w = self.args, self.work
        self.log("phase 6: gateway identity against service token (fresh controller with --gateway-config)")
        # Both requests end at a static copy of the small document: the gateway's at the path the service sees,
        # the service token's at the /clusters/… path itself (a service token's path goes to the service unchanged).
        gateway_path = f"/clusters/bench/kube{self.GATEWAY_NAMESPACE_PATH}"
        for target in (self.GATEWAY_NAMESPACE_PATH, gateway_path):
            file = self.shm / "docroot" / target.lstrip("/")
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(self.small_body)
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": "bench", "use": "sig", "alg": "ES256"})
        (w / "gateway-jwks.json").write_text(json.dumps({"keys": [jwk]}, indent=1))
        policy = {"roles": {"viewer": ["view"]},
                  "bindings": [{"name": "bench", "users": [self.GATEWAY_USER], "role": "viewer",
                                "clusters": ["bench"], "namespaces": ["bench"]}]}
        (w / "gateway-policy.json").write_text(json.dumps(policy, indent=1))
        config = {"issuers": [{"issuer": self.GATEWAY_ISSUER, "jwksFile": str(w / "gateway-jwks.json"),
                               "audiences": ["porthole-bench"], "algorithms": ["ES256"], "usernameClaim": "email",
                               "groupsClaim": "groups"}],
                  "policyFile": str(w / "gateway-policy.json")}
        (w / "gateway.json").write_text(json.dumps(config, indent=1))
        service = {"type": "kubernetes", "name": "kube", "url": self.backend_url, "credentials": {}}
        if a.backend == "https":
            service["caFile"] = str(w / "backend-ca.crt")
        (w / "services-gateway.json").write_text(json.dumps({"services": [service]}, indent=1))
        now = int(time.time())
        id_token = jwt.encode({"iss": self.GATEWAY_ISSUER, "aud": "porthole-bench", "sub": "bench-user",
                               "email": self.GATEWAY_USER, "groups": ["bench"], "iat": now, "exp": now + 86400},
                              key, algorithm="ES256", headers={"kid": "bench"})
        self.report.command("python3: PyJWT ES256 ID token for bench@example.com (kid bench), 24 h")
        self.stop_porthole()
        self.start_porthole("gateway", ["--gateway-config", str(w / "gateway.json")], "services-gateway.json")
        service_token = self.service_token("kube", "kubernetes")
        self.gateway_tokens = {"gateway identity": id_token, "service token": service_token}
        url = f"{self.urls['porthole']}{gateway_path}"
        # The issuer's keys are read at start: retry the first ID-token request briefly, then insist on 200s.
        deadline = time.monotonic() + 15
        for kind, token in (("gateway identity", id_token), ("service token", service_token)):
            while True:
                result = run(self.report, ["curl", "-sS", "--cacert", str(w / "ca/ca.crt"), "-H",
                                           f"Authorization: Bearer {token}", "-o", "-", "-w", "\n%{http_code}", url],
                             record_output=False)
                body, _, status = result.stdout.rpartition("\n")
                if status == "200" and body.encode() == self.small_body:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"error: {kind} request for {gateway_path} answered {status}: {body[:500]}")
                time.sleep(0.2)
        name, flags = "h2 1×100", ["-c", "1", "-m", "100"]
        for round_number in range(1, a.rounds + 1):
            for kind in ("service token", "gateway identity"):
                log_file = w / f"h2load-gateway-{kind.replace(' ', '-')}.tsv"
                argv = ["h2load", *flags, "-t", "1", "-D", str(a.duration), "--log-file", str(log_file),
                        "-H", f"Authorization: Bearer {self.gateway_tokens[kind]}", url]
                self.report.command([x if not x.startswith("Authorization") else "Authorization: Bearer $TOKEN"
                                     for x in argv], note=kind)
                before = self.cpu_snapshot()
                result = subprocess.run(argv, capture_output=True, text=True, timeout=a.duration * 3 + 60)
                after = self.cpu_snapshot()
                self.report.output(f"h2load gateway phase, {kind} (round {round_number})",
                                   result.stdout + result.stderr)
                parsed = self.parse_h2load(result.stdout)
                latencies = self.read_latencies(log_file)
                parsed["p50"] = percentile(latencies, 0.50) / 1000
                parsed["cpu"] = {k: after[k] - before[k] for k in after}
                self.check_alive(f"h2load gateway {kind}")
                self.results["gateway"].setdefault(kind, []).append(parsed)
                per = 10000 / max(parsed["done"], 1)
                self.log(f"{round_number}  gateway phase  {kind:16} {parsed['rps']:>10,.0f} req/s  controller "
                         f"{parsed['cpu']['controller'] * per:.3f} s/10k  non-2xx/failed {parsed['bad']}")
                log_file.unlink(missing_ok=True)
        self.gateway_config = (name, gateway_path)
        self.stop_porthole()

    def gateway_summary(self) -> dict | None:
        runs = self.results["gateway"]
        if len(runs) < 2:
            return None
        out = {"config": self.gateway_config[0], "path": self.gateway_config[1]}
        for kind, rs in runs.items():
            done = sum(x["done"] for x in rs) or 1
            out[kind] = {"rps": statistics.median(x["rps"] for x in rs), "rps_min": min(x["rps"] for x in rs),
                         "rps_max": max(x["rps"] for x in rs), "p50": statistics.median(x["p50"] for x in rs),
                         "bad": sum(x["bad"] for x in rs),
                         "controller": sum(x["cpu"]["controller"] for x in rs) * 10000 / done,
                         "agent": sum(x["cpu"]["agent"] for x in rs) * 10000 / done}
        base = out["service token"]["controller"]
        out["ratio"] = out["gateway identity"]["controller"] / base if base else float("nan")
        return out

    # ---- phase 4: idle agent tunnels, restart ------------------------------------------------------------------

    def phase_agents(self) -> None:
        a = self.args
        steps = [int(x) for x in a.agents.split(",") if x.strip()]
        self.log("phase 4: fresh controller for the tunnel-memory measurement")
        controller = self.start_controller("agents")
        self.controller = controller
        time.sleep(1)
        rows = [(0, controller.rss(), 0.0)]
        w = self.work
        bench_agents = self.exe["porthole-bench-agents"]
        argv = [str(bench_agents), "--controller", f"127.0.0.1:{self.ports['agent']}",
                "--controller-server-name", "127.0.0.1", "--ca-cert", str(w / "ca" / "ca.crt"),
                "--ca-key", str(w / "ca" / "ca.key"), "--count", str(steps[0])]
        fleet_log = w / "bench-agents.jsonl"
        fleet = self.start("bench-agents", argv, w / "bench-agents.log", stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE)
        events: list[dict] = []
        os.set_blocking(fleet.popen.stdout.fileno(), False)
        buffer = b""

        def read_events() -> list[dict]:
            nonlocal buffer
            fresh = []
            try:
                while chunk := fleet.popen.stdout.read():
                    buffer += chunk
            except (BlockingIOError, TypeError):
                pass
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    event = json.loads(line)
                    event["seen"] = time.time()
                    fresh.append(event)
                    events.append(event)
            return fresh

        def wait_all_up(target: int, timeout: float, since: float = 0) -> tuple[float | None, dict]:
            deadline = time.monotonic() + timeout
            last = {}
            while time.monotonic() < deadline:
                for event in read_events():
                    if event["event"] == "status":
                        last = event
                    if event["event"] == "all-up" and event["up"] == target and event["wall"] > since:
                        return event["wall"], last
                if fleet.popen.poll() is not None:
                    raise SystemExit(f"error: porthole-bench-agents exited; see {fleet.log}")
                time.sleep(0.02)
            return None, last

        for index, count in enumerate(steps):
            if index > 0:
                fleet.popen.stdin.write(f"target {count}\n".encode())
                fleet.popen.stdin.flush()
                self.report.command(f"echo 'target {count}' > porthole-bench-agents's stdin")
            began = time.time()
            done, last = wait_all_up(count, a.agents_timeout)
            up = count if done else last.get("up", 0)
            time.sleep(3)  # pings and allocations settle
            rows.append((up, controller.rss(), (done or time.time()) - began))
            self.log(f"{up}/{count} idle tunnels up in {(done or time.time()) - began:.1f}s; controller RSS "
                     f"{fmt_bytes(rows[-1][1])}")
        target = steps[-1]
        # Restart: SIGTERM (drain), a new process on the same ports, and the clock runs until all are back.
        cpu_fleet_before = fleet.cpu()
        stop_at = time.time()
        self.report.command(f"kill -TERM {controller.pid}", note="controller restart: drain and exit")
        controller.stop()
        exited_at = time.time()
        restarted = self.start_controller("agents-restarted")
        self.controller = restarted
        started_at = restarted.started_at
        done, last = wait_all_up(target, a.agents_timeout, since=stop_at)
        back = done - started_at if done else None
        self.log(f"after a controller restart: {last.get('up', 0) if not done else target}/{target} back "
                 f"{'in %.1fs' % back if back else 'NOT within %ss' % a.agents_timeout} of the new process "
                 f"starting ({(done - stop_at) if done else float('nan'):.1f}s after SIGTERM)")
        time.sleep(3)
        restarted_rss = restarted.rss()
        fleet_cpu = fleet.cpu() - cpu_fleet_before
        fleet.popen.stdin.write(b"quit\n")
        fleet.popen.stdin.flush()
        try:
            fleet.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass
        fleet.stop()
        read_events()
        with open(fleet_log, "w") as f:
            for event in events:
                f.write(json.dumps(event) + "\n")
        summary = [e for e in events if e["event"] in ("start", "credentials", "all-up")]
        statuses = [e for e in events if e["event"] == "status"]
        self.report.output("porthole-bench-agents events (start, credentials, all-up; last status)",
                           "\n".join(json.dumps(e) for e in summary + statuses[-1:]))
        self.results["agents"] = {"rows": rows, "restart": back,
                                  "restart_from_stop": (done - stop_at) if done else None,
                                  "stop_seconds": exited_at - stop_at, "target": target,
                                  "restarted_rss": restarted_rss, "restart_up": target if done else last.get("up", 0),
                                  "restart_failures": last.get("failures", {}), "fleet_cpu": fleet_cpu,
                                  "controller_cpu_restart": restarted.cpu()}
        restarted.stop()
        self.controller = None

    # ---- tables --------------------------------------------------------------------------------------------------

    def summary(self) -> tuple[dict, dict]:
        """Medians over rounds; CPU and counts summed, so per-request CPU is total CPU over total requests."""
        def median(values: list[float]) -> float:
            values = [v for v in values if v == v]
            return statistics.median(values) if values else float("nan")

        requests = {}
        for key, runs in self.results["requests"].items():
            requests[key] = {
                "rps": median([x["rps"] for x in runs]), "rps_min": min(x["rps"] for x in runs),
                "rps_max": max(x["rps"] for x in runs), "p50": median([x["p50"] for x in runs]),
                "p99": median([x["p99"] for x in runs]), "bad": sum(x["bad"] for x in runs),
                "done": sum(x["done"] for x in runs), "rounds": len(runs),
                "cpu": {k: sum(x["cpu"].get(k, 0.0) for x in runs) for k in runs[0]["cpu"]}}
        bulk = {}
        for key, all_runs in self.results["bulk"].items():
            # A transfer that did not deliver the file intact counts as failed, not as a speed.
            runs = [x for x in all_runs if x["sha_ok"]] or all_runs
            ok = [x for x in all_runs if x["sha_ok"]]
            bulk[key] = {
                "mibps": median([x["mibps"] for x in ok]), "mibps_min": min((x["mibps"] for x in ok), default=0),
                "mibps_max": max((x["mibps"] for x in ok), default=0),
                "seconds": median([x["seconds"] for x in runs]), "sha_ok": bool(ok),
                "failed": len(all_runs) - len(ok), "total": len(all_runs), "http": all_runs[0]["http"],
                "rounds": len(ok), "cpu": {k: sum(x["cpu"].get(k, 0.0) for x in ok) for k in all_runs[0]["cpu"]}}
        return requests, bulk

    def tables(self) -> None:
        req, bulk = self.summary()
        r = self.report
        rows = []
        for name in CONFIGS:
            d, h = req.get((name, "direct")), req.get((name, "haproxy"))
            for path in PATHS:
                x = req.get((name, path))
                if not x:
                    continue
                rows.append([name, path, num(x["rps"], 0), f"{x['rps_min']:,.0f}–{x['rps_max']:,.0f}",
                             ratio(x["rps"], d and d["rps"]),
                             ratio(x["rps"], h and h["rps"]), num(x["p50"], 3), ratio(x["p50"], d and d["p50"]),
                             ratio(x["p50"], h and h["p50"]),
                             num(x["p50"] - h["p50"], 3) if h else "–", num(x["p99"], 3),
                             ratio(x["p99"], d and d["p99"]), ratio(x["p99"], h and h["p99"]),
                             str(x["bad"])])
        if rows:
            r.table(f"1. Small document (h2load, {self.args.duration} s per run, median of {self.args.rounds} rounds)",
                    ["config", "path", "req/s", "range", "×direct", "×haproxy", "p50 ms", "p50 ×direct",
                     "p50 ×haproxy",
                     "p50 − haproxy ms", "p99 ms", "p99 ×direct", "p99 ×haproxy", "errors"], rows,
                    "Configs: `h2 1×100` = 1 connection × 100 streams, `h2 16×8` = 16 connections × 8 streams, "
                    "`h1 16` = 16 HTTP/1.1 connections, `h2 1×1` = one request at a time (latency without "
                    "queueing; not one of the rate targets). Latency is per request, from h2load's --log-file.")
        rows = []
        for direction in ("download", "upload"):
            d, h = bulk.get((direction, "direct")), bulk.get((direction, "haproxy"))
            for path in PATHS:
                x = bulk.get((direction, path))
                if not x:
                    continue
                rows.append([direction, path, num(x["mibps"], 0), f"{x['mibps_min']:,.0f}–{x['mibps_max']:,.0f}",
                             ratio(x["mibps"], d and d["mibps"]),
                             ratio(x["mibps"], h and h["mibps"]), num(x["seconds"], 2), f"HTTP/{x['http']}",
                             "ok" if not x["failed"] else f"**{x['failed']} of {x['total']} failed**"])
        if rows:
            r.table(f"2. Bulk, one stream, {fmt_bytes(self.bulk_size)} "
                    f"(curl, median of {self.args.bulk_rounds} rounds)",
                    ["direction", "path", "MiB/s", "range", "×direct", "×haproxy", "seconds", "client protocol",
                     "SHA-256"],
                    rows, "Speeds are medians of the transfers that delivered the file intact; a failed transfer "
                    "(short or different SHA-256, curl's error in the raw outputs) is counted in the last column.",
                    align="llrrrrrll")
        rows = []

        def cpu_row(label: str, path: str, cpu: dict, per: float, digits: int) -> list[str]:
            if path == "porthole":
                a, b, total = cpu["controller"], cpu["agent"], cpu["controller"] + cpu["agent"]
                return [label, path, num(a * per, digits), num(b * per, digits), num(total * per, digits),
                        num(cpu["nginx"] * per, digits)]
            if path == "ssh -R":
                a, b = cpu.get("sshd", 0.0), cpu.get("ssh", 0.0)
                return [label, path, num(a * per, digits), num(b * per, digits), num((a + b) * per, digits),
                        num(cpu["nginx"] * per, digits)]
            return [label, path, "–", "–", num(cpu["haproxy"] * per, digits), num(cpu["nginx"] * per, digits)]

        for name in CONFIGS:
            for path in ("haproxy", "ssh -R", "porthole"):
                x = req.get((name, path))
                if x and x["done"]:
                    rows.append(cpu_row(name, path, x["cpu"], 10000 / x["done"], 3))
        for direction in ("download", "upload"):
            for path in ("haproxy", "ssh -R", "porthole"):
                x = bulk.get((direction, path))
                if x and x["sha_ok"]:
                    rows.append(cpu_row(f"{direction} per GiB", path, x["cpu"],
                                        GIB / (self.bulk_size * x["rounds"]), 2))
        if rows:
            r.table("3. CPU seconds (user+sys, /proc/PID/stat) per 10,000 small requests and per GiB",
                    ["workload", "path", "controller / sshd", "agent / ssh client",
                     "proxy total (controller+agent, sshd+ssh, or haproxy)", "nginx"], rows,
                    "Clock-tick resolution 10 ms. Proxy total compares Porthole's two processes with HAProxy's "
                    "one and with the SSH tunnel's two (sshd with its per-connection processes, and the `ssh` "
                    "client); nginx shows what the backend spent for the same work on that path.")
        ag = self.results["agents"]
        if ag:
            rows = []
            base = ag["rows"][0][1]
            for up, rss, seconds in ag["rows"]:
                rows.append([f"{up:,}", fmt_bytes(rss), fmt_bytes(rss - base) if up else "–",
                             f"{(rss - base) / up / 1024:,.1f} KiB" if up else "–",
                             f"{seconds:.1f}" if up else "–"])
            rows.append([f"{ag['restart_up']:,} (after restart)", fmt_bytes(ag["restarted_rss"]),
                         fmt_bytes(ag["restarted_rss"] - base),
                         f"{(ag['restarted_rss'] - base) / max(ag['restart_up'], 1) / 1024:,.1f} KiB", "–"])
            back = ag["restart"]
            r.table("4. Idle agent tunnels: controller memory, and reconnect after a restart",
                    ["tunnels up", "controller RSS", "Δ vs 0 tunnels", "per tunnel", "seconds to open"], rows,
                    f"Restart: SIGTERM took {ag['stop_seconds']:.1f}s to exit; all {ag['target']:,} tunnels were "
                    f"back **{'%.1f s' % back if back else 'not within the timeout'}** after the new controller "
                    f"process started"
                    + (f" ({ag['restart_from_stop']:.1f}s after SIGTERM)" if ag["restart_from_stop"] else "")
                    + f". Failed dials while reconnecting: {json.dumps(ag['restart_failures'])}. CPU during the "
                    f"restart: new controller {ag['controller_cpu_restart']:.1f}s, porthole-bench-agents "
                    f"{ag['fleet_cpu']:.1f}s (same 2 cores). Per-tunnel bytes are RSS growth over the controller "
                    "with no tunnel, divided by the tunnels up.", left=1)
        st = self.results["streams"]
        if st:
            held = max(st["held"], 1)
            rows = []
            for side in ("controller", "agent"):
                delta = st["peak"][side] - st["base"][side]
                rows.append([side, fmt_bytes(st["base"][side]), fmt_bytes(st["peak"][side]), fmt_bytes(delta),
                             f"{delta / held / 1024:,.1f} KiB"])
            r.table(f"5. Idle long-poll streams over one tunnel ({st['held']:,} held of {st['target']:,})",
                    ["process", "RSS before", "RSS with streams held", "Δ", "per stream"], rows,
                    f"h2load -c {st['clients']} with {st['target'] // st['clients']} streams each; the backend "
                    f"holds every request until released (reached in {st['ramp']:.1f}s); h2load afterwards: "
                    f"{st['h2load'].get('succeeded', 0):,} succeeded, {st['h2load'].get('bad', 0)} failed. Idle "
                    "streams buffer nothing, so all of Δ is per-stream overhead beyond the flow-control window. "
                    "The controller's figure includes the 100 user TLS connections; the agent's includes one "
                    "backend TCP connection per stream (HTTP/1.1).", left=1)
        gw = self.gateway_summary()
        if gw:
            rows = []
            for kind in ("service token", "gateway identity"):
                x = gw[kind]
                rows.append([kind, num(x["rps"], 0), f"{x['rps_min']:,.0f}–{x['rps_max']:,.0f}", num(x["p50"], 3),
                             num(x["controller"], 3), num(x["agent"], 3), str(x["bad"])])
            r.table(f"6. Gateway identity against service token (h2load {gw['config']}, {gw['path']})",
                    ["credential", "req/s", "range", "p50 ms", "controller CPU s per 10k", "agent CPU s per 10k",
                     "errors"], rows,
                    f"Same controller (`--gateway-config`: a JWKS-file issuer, ES256 ID tokens minted with PyJWT, a "
                    f"policy granting `view` to the bench user; no audit log, no external decision), same agent, "
                    f"same Kubernetes service (nginx), same path shape; rounds interleaved, medians of rates, CPU "
                    f"summed over rounds. Controller CPU of a gateway request: **{gw['ratio']:.2f}×** a "
                    f"service-token request's.", left=1)
        self.targets()

    def targets(self) -> None:
        req, bulk = self.summary()
        ag, st = self.results["agents"], self.results["streams"]
        rows = []

        def verdict(ok: bool | None) -> str:
            return "–" if ok is None else ("met" if ok else "**missed**")

        for name in CONFIGS:
            p, h, s = req.get((name, "porthole")), req.get((name, "haproxy")), req.get((name, "ssh -R"))
            if name == "h2 1×1":  # one request at a time measures latency, not capacity
                continue
            if p and s:
                rows.append([f"rate ≥ ssh -R, {name}", f"{p['rps'] / s['rps']:.2f}×", verdict(p["rps"] >= s["rps"])])
            if p and h:
                rows.append([f"rate ≥ 0.6× haproxy, {name}", f"{p['rps'] / h['rps']:.2f}×",
                             verdict(p["rps"] >= 0.6 * h["rps"])])
                rows.append([f"p50 under load within 1 ms of haproxy, {name}", f"{p['p50'] - h['p50']:+.3f} ms",
                             verdict(p["p50"] - h["p50"] <= 1.0)])
            if p and p["done"]:
                per = (p["cpu"]["controller"] + p["cpu"]["agent"]) * 10000 / p["done"]
                rows.append([f"controller + agent CPU ≤ 0.5 s per 10,000 requests, {name}", f"{per:.3f} s",
                             verdict(per <= 0.5)])
        for direction in ("download", "upload"):
            p, h, s = bulk.get((direction, "porthole")), bulk.get((direction, "haproxy")), bulk.get((direction, "ssh -R"))
            if p and s:
                ok = p["sha_ok"] and s["sha_ok"] and p["mibps"] >= s["mibps"]
                rows.append([f"bulk {direction} ≥ ssh -R", ratio(p["mibps"], s["mibps"]), verdict(ok)])
            if p and h:
                ok = p["sha_ok"] and h["sha_ok"] and p["mibps"] >= 0.9 * h["mibps"]
                rows.append([f"bulk {direction} ≥ 0.9× haproxy", ratio(p["mibps"], h["mibps"]), verdict(ok)])
                if p["failed"]:
                    rows.append([f"bulk {direction}: every transfer intact", f"{p['failed']} of {p['total']} failed",
                                 verdict(False)])
        if ag:
            base = ag["rows"][0][1]
            up, rss, _ = ag["rows"][-1]
            if up:
                per = (rss - base) / up
                rows.append([f"≤ 64 KiB controller memory per idle tunnel ({up:,})", f"{per / 1024:.1f} KiB",
                             verdict(per <= 64 * 1024)])
            back = ag["restart"]
            rows.append([f"{ag['target']:,} agents back within 10 s of a restart",
                         f"{back:.1f} s" if back else "not all back", verdict(bool(back) and back <= 10)])
        if st:
            for side in ("controller", "agent"):
                per = (st["peak"][side] - st["base"][side]) / max(st["held"], 1)
                rows.append([f"≤ 16 KiB per idle stream beyond its window ({side})", f"{per / 1024:.1f} KiB",
                             verdict(per <= 16 * 1024 and st["held"] >= st["target"])])
        gw = self.gateway_summary()
        if gw:
            rows.append(["gateway identity request ≤ 1.10× the controller CPU of a service-token request",
                         f"{gw['ratio']:.2f}×", verdict(gw["ratio"] <= 1.10)])
        if rows:
            text = self.report.table("Targets (reported, not enforced)", ["target", "measured", "verdict"], rows,
                                     align="lrl")
            self.report.tables.remove(text)
            self.report.tables.insert(0, text)

    # ---- machine and versions ------------------------------------------------------------------------------------

    def machine(self) -> list[str]:
        def first_line(argv: list[str]) -> str:
            try:
                result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
                return (result.stdout + result.stderr).strip().splitlines()[0]
            except (OSError, IndexError, subprocess.TimeoutExpired):
                return "?"

        cpu = "?"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":")[1].strip()
        load = Path("/proc/loadavg").read_text().split()[:3]
        commit = "?"
        head = ROOT / ".git" / "HEAD"
        described = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
        if described.returncode == 0:  # also in a git worktree, where .git is a file
            commit = described.stdout.strip()
        elif head.exists():
            text = head.read_text().strip()
            if text.startswith("ref: "):
                ref = ROOT / ".git" / text[5:]
                commit = ref.read_text().strip() if ref.exists() else text[5:]
            else:
                commit = text
        return [
            f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}; host {platform.node()}",
            f"- CPU: {cpu}, {os.cpu_count()} cores; memory {memory}; load average at start {' '.join(load)}",
            f"- kernel: {platform.release()}; {first_line(['sh', '-c', '. /etc/os-release; echo $PRETTY_NAME'])}",
            f"- porthole: commit {commit[:12]}, binaries {self.bin}",
            f"- swift: {first_line(['swift', '--version'])}",
            f"- nginx: {first_line(['nginx', '-v'])}",
            f"- haproxy: {first_line(['haproxy', '-v'])}",
            f"- h2load: {first_line(['h2load', '--version'])}",
            f"- curl: {first_line(['curl', '--version'])}",
            f"- openssl: {first_line(['openssl', 'version'])}",
            f"- python: {sys.version.split()[0]}",
            f"- backend protocol, HAProxy and agent alike: HTTP/1.1 over "
            f"{'TLS 1.3 (verified against the backend CA)' if self.args.backend == 'https' else 'plain TCP'} "
            f"to nginx at {self.backend_url}; client side: TLS with ALPN h2/http/1.1 on every path (end to end to nginx through ssh -R)",
            f"- controller/agent log level: {self.args.log_level or 'default (info)'}",
        ]

    def write_report(self) -> Path:
        out_dir = Path(self.args.out).resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{self.stamp}.md"
        r = self.report
        parts = [f"# Porthole bench {self.stamp}", "", *self.machine(),
                 f"- wall time of the run: {time.monotonic() - self.started:.0f}s", "", "## Results", ""]
        parts += [t + "\n" for t in r.tables if t]
        if self.profiles:
            parts += ["## Profiles (perf, --profile)", ""]
            for label, text in self.profiles:
                parts += [f"<details><summary>{label}</summary>", "", "```", text, "```", "", "</details>", ""]
        parts += ["## Configuration", ""]
        for name in ("nginx.conf", "haproxy.cfg", "services.json"):
            file = self.work / name
            if file.exists():
                parts += [f"<details><summary>{name}</summary>", "", "```", file.read_text().rstrip(), "```", "",
                          "</details>", ""]
        parts += ["## Commands, in order", "", "```"] + r.commands + ["```", "", "## Raw outputs", ""]
        for title, text in r.raw:
            parts += [f"<details><summary>{title}</summary>", "", "```", text, "```", "", "</details>", ""]
        text = "\n".join(parts)
        for secret, name in [(getattr(self, "token", None), "$TOKEN"), (getattr(self, "hold_token", None), "$HOLD_TOKEN"),
                             *[(t, f"${k.upper().replace(' ', '_')}") for k, t in
                               getattr(self, "gateway_tokens", {}).items()]]:
            if secret:
                text = text.replace(secret, name)
        path.write_text(text)
        return path

    def cleanup(self) -> None:
        for proc in reversed(self.procs):
            try:
                proc.stop(timeout=15)
            except Exception:  # noqa: BLE001 - cleanup goes on
                pass
        shutil.rmtree(self.shm, ignore_errors=True)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "hold-server":
        parser = argparse.ArgumentParser(prog="run.py hold-server")
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--max-hold", type=float, default=300)
        args = parser.parse_args(sys.argv[2:])
        raise_nofile()
        try:
            asyncio.run(hold_server_main(args.port, args.max_hold))
        except KeyboardInterrupt:
            pass
        return 0

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, help="folder with release builds of porthole-controller, "
                                                     "porthole-agent, make-ca, porthole-bench-agents")
    parser.add_argument("--out", default=str(BENCH / "results"), help="where the Markdown report goes")
    parser.add_argument("--work", help="scratch folder (default scratch/bench/STAMP)")
    parser.add_argument("--phases", default="requests,bulk,gateway,streams,agents",
                        help="comma-separated subset of requests,bulk,gateway,streams,agents")
    parser.add_argument("--backend", choices=("https", "http"), default="https",
                        help="how HAProxy and the agent reach nginx (both the same way)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per h2load run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the h2load runs (medians reported)")
    parser.add_argument("--bulk-mib", type=int, default=1024, help="size of the bulk file")
    parser.add_argument("--bulk-rounds", type=int, default=3, help="rounds of the bulk transfers")
    parser.add_argument("--agents", default="1000,5000", help="idle tunnel counts to measure")
    parser.add_argument("--agents-timeout", type=float, default=120, help="seconds to wait for tunnels")
    parser.add_argument("--streams", type=int, default=10000, help="idle long-poll streams over one tunnel")
    parser.add_argument("--stream-ramp-timeout", type=float, default=90)
    parser.add_argument("--nginx-workers", default="auto")
    parser.add_argument("--log-level", default=None, help="controller and agent --log-level (default: theirs)")
    parser.add_argument("--isolate-names", action="store_true",
                        help="run copies of the binaries named phb-* (shared machines where others pkill porthole-*)")
    parser.add_argument("--profile", action="store_true", help="perf record controller+agent during the "
                                                               "porthole h2 16×8 and bulk runs")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 s, 128 MiB, 200/500 tunnels, "
                                                             "1,000 streams")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.bulk_mib, args.agents, args.streams = 3, 128, "200,500", 1000
        args.rounds = args.bulk_rounds = 1
    for tool in ("nginx", "haproxy", "h2load", "curl", "openssl", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            print(f"error: {tool} is missing (make bench installs nginx haproxy nghttp2-client curl "
                  "openssh-server)",
                  file=sys.stderr)
            return 1
    phases = set(args.phases.split(","))
    # SIGTERM (make interrupted, CI time-out) unwinds like Ctrl-C, so every process started here is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench = Bench(args)
    try:
        bench.setup()
        if "requests" in phases:
            bench.log("phase 1: request rate and latency")
            bench.phase_requests()
        if "bulk" in phases:
            bench.log("phase 2: bulk both ways")
            bench.phase_bulk()
        if "gateway" in phases:
            bench.phase_gateway()
        if "streams" in phases:
            bench.phase_streams()
        if "agents" in phases:
            bench.stop_porthole()
            bench.phase_agents()
    finally:
        bench.tables()
        path = bench.write_report()
        bench.cleanup()
    print()
    for table in bench.report.tables:
        if table:
            print(table + "\n")
    print(f"report: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
