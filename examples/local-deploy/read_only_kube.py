#!/usr/bin/env python3
"""The demo's read-only gate to your cluster (used by run.sh; not part of Porthole).

`make run` makes the current context of your kubeconfig reachable through Porthole. Unless you ask for writes
(`make run DEMO_KUBE=write`, where the agent reads the kubeconfig itself), the agent forwards kubernetes/default to
this gate on loopback instead, and the gate passes on only reads to the API server, with the kubeconfig's
credentials (loaded by the `kubernetes` client, so exec plugins work too):

- GET, HEAD and OPTIONS are forwarded, watches and `logs -f` streamed as they arrive;
- everything else is refused with a Kubernetes Status (403, reason Forbidden) that says why: other methods
  (create, apply, patch, delete), upgrades (exec, attach, port-forward, which kubectl starts with a GET), and the
  `proxy` subresource (a GET there reaches a pod's or service's own HTTP server, whose GETs may change things).

    python3 read_only_kube.py --kubeconfig FILE [--context NAME] [--listen 127.0.0.1:0]

Prints {"listening": "127.0.0.1:PORT"} on stdout once it accepts connections; one line per refusal on stderr.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import ssl
import sys
import threading
from urllib.parse import urlsplit

READ_METHODS = {"GET", "HEAD", "OPTIONS"}
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
              "host", "authorization", "content-length"}
STREAMING_SUBRESOURCES = ("exec", "attach", "portforward")


def refusal(method: str, path: str) -> str | None:
    """Why this request is not a read, or None if it may pass."""
    route = urlsplit(path).path.rstrip("/")
    if method not in READ_METHODS:
        return f"{method} is a write"
    if route.rsplit("/", 1)[-1] in STREAMING_SUBRESOURCES:
        return f"{route.rsplit('/', 1)[-1]} runs something in a pod"
    if "/proxy/" in f"{route}/":
        return "the proxy subresource reaches a workload's own HTTP server"
    return None


class Upstream:
    """The API server of one kubeconfig context: where it is, how to verify it, how to authenticate."""

    def __init__(self, kubeconfig: str, context: str | None) -> None:
        from kubernetes import client, config  # the run dependencies install it

        self.configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=self.configuration,
                                persist_config=False)
        server = urlsplit(self.configuration.host)
        if server.scheme != "https":
            raise SystemExit(f"error: {kubeconfig}: server {self.configuration.host} is not https")
        self.host = server.hostname or "localhost"
        self.port = server.port or 443
        self.base_path = server.path.rstrip("/")
        self.tls = ssl.create_default_context(cafile=self.configuration.ssl_ca_cert)
        if not self.configuration.verify_ssl:
            self.tls.check_hostname = False
            self.tls.verify_mode = ssl.CERT_NONE
        if self.configuration.cert_file:
            self.tls.load_cert_chain(self.configuration.cert_file, self.configuration.key_file)
        self.lock = threading.Lock()

    def authorization(self) -> str | None:
        with self.lock:
            if self.configuration.refresh_api_key_hook is not None:
                self.configuration.refresh_api_key_hook(self.configuration)
            # auth_settings() knows where each client version keeps the token ("BearerToken", "authorization").
            for setting in self.configuration.auth_settings().values():
                if setting.get("in") == "header" and setting.get("key", "").lower() == "authorization":
                    return setting.get("value")
            return None

    def connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.tls, timeout=3600)


class Gate(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: Upstream

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.handle_any()

    do_HEAD = do_OPTIONS = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def refuse(self, reason: str) -> None:
        message = (f"the Porthole demo serves your cluster read-only: {self.command} {self.path} refused "
                   f"({reason}); `make run DEMO_KUBE=write` allows writes")
        sys.stderr.write(f"read-only gate: refused {self.command} {self.path}: {reason}\n")
        sys.stderr.flush()
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": message, "reason": "Forbidden", "code": 403}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        reason = refusal(self.command, self.path)
        if reason is None and self.headers.get("Upgrade"):
            reason = f"an upgrade to {self.headers['Upgrade']} (exec, attach, port-forward)"
        if reason is not None:
            return self.refuse(reason)
        upstream = self.upstream
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
        authorization = upstream.authorization()
        if authorization:
            headers["Authorization"] = authorization
        connection = upstream.connect()
        try:
            connection.request(self.command, upstream.base_path + self.path, headers=headers)
            response = connection.getresponse()
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            if self.command == "HEAD":
                self.send_header("Content-Length", response.getheader("Content-Length") or "0")
                self.end_headers()
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while chunk := response.read1(64 * 1024):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError as error:
            sys.stderr.write(f"read-only gate: {self.command} {self.path}: {error}\n")
            self.close_connection = True
        finally:
            connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="Read-only gate from the Porthole demo to a kubeconfig's cluster.")
    parser.add_argument("--kubeconfig", required=True, help="the kubeconfig file")
    parser.add_argument("--context", help="the context (default: its current-context)")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT to listen on (port 0: any free port)")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    Gate.upstream = Upstream(args.kubeconfig, args.context)
    server = http.server.ThreadingHTTPServer((host, int(port)), Gate)
    server.daemon_threads = True
    address = f"{server.server_address[0]}:{server.server_address[1]}"
    sys.stderr.write(f"read-only gate: {args.kubeconfig} context {args.context or '(current)'} at "
                     f"{Gate.upstream.host}:{Gate.upstream.port}; reads only\n")
    print(json.dumps({"listening": address}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
