#!/usr/bin/env python3
"""A small HTTP/1.1 backend for Porthole's end-to-end tests and demos.

It is deliberately not Porthole code: the Python standard library only, so the tests
exercise the tunnel against an independent HTTP implementation.

    python3 backend.py --listen 127.0.0.1:0 [--tls-cert F --tls-key F] [--expect-token T]

Once it accepts connections it prints one JSON line, {"listening": "127.0.0.1:PORT"}, to stdout.

Endpoints (every one answers 401 unless `Authorization: Bearer T` when --expect-token T is given):

    GET  /                      {"hello": "porthole demo backend"}
    GET  /headers               the method, target, path, query and headers this request arrived with
    GET  /base/headers          the same, for services whose URL has the base path /base
    POST /echo                  the request body back, same Content-Type (Content-Length or chunked bodies)
    POST /sha256                {"sha256": hex, "bytes": N} of the body, streamed, never held in memory
    GET  /bytes?n=N&seed=S[&id=X]  N deterministic bytes (see `deterministic_chunks`), 64 KiB writes;
                                with id, progress is visible at GET /progress?id=X -> {"written": N, "done": bool}
    GET  /pieces?count=C&delay=D  chunked "piece i\\n" lines, flushed, D seconds apart
    GET  /hold?id=X             a chunk every 0.1 s until the client goes away; GET /closed?id=X ->
                                {"started": bool, "closed": bool} says whether that was noticed
    GET  /slow?delay=D          waits D seconds, then {"slept": D}
    GET  /upgrade-echo          with `Connection: Upgrade` and `Upgrade: x-echo`: 101, then echoes raw bytes until EOF
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

PIECE_SIZE = 64 * 1024
HOLD_INTERVAL = 0.1
HOLD_LIMIT = 600.0  # seconds; a held response ends by itself eventually so a broken tunnel cannot leak threads forever


def deterministic_block(seed: str) -> bytes:
    """The 64 KiB block that /bytes repeats for a given seed."""
    return hashlib.shake_256(b"porthole-e2e:" + seed.encode()).digest(PIECE_SIZE)


def deterministic_chunks(n: int, seed: str) -> Iterator[bytes]:
    """The N bytes /bytes?n=N&seed=S sends, in 64 KiB pieces: the seed's block repeated, the last piece cut short."""
    block = deterministic_block(seed)
    remaining = n
    while remaining > 0:
        piece = block if remaining >= PIECE_SIZE else block[:remaining]
        remaining -= len(piece)
        yield piece


class Registry:
    """Thread-safe state that tests read back over HTTP: held responses and /bytes progress."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holds: dict[str, dict[str, object]] = {}
        self._progress: dict[str, dict[str, object]] = {}

    def hold_started(self, hold_id: str) -> None:
        with self._lock:
            self._holds[hold_id] = {"started": True, "closed": False, "closedAt": None}

    def hold_closed(self, hold_id: str) -> None:
        with self._lock:
            self._holds[hold_id].update(closed=True, closedAt=time.time())

    def hold_state(self, hold_id: str) -> dict[str, object]:
        with self._lock:
            return dict(self._holds.get(hold_id, {"started": False, "closed": False, "closedAt": None}))

    def progress(self, progress_id: str, written: int, done: bool = False) -> None:
        with self._lock:
            self._progress[progress_id] = {"written": written, "done": done}

    def progress_state(self, progress_id: str) -> dict[str, object]:
        with self._lock:
            return dict(self._progress.get(progress_id, {"written": 0, "done": False, "known": False}))


class BackendServer(ThreadingHTTPServer):
    """A threading HTTP/1.1 server that carries the expected token and the registry."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], expected_token: str | None, tls: ssl.SSLContext | None) -> None:
        super().__init__(address, Handler)
        self.expected_token = expected_token
        self.tls = tls
        self.registry = Registry()

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        if self.tls is not None:
            # The handshake runs in the handler thread (on first read), not in the accept loop.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address


class Handler(BaseHTTPRequestHandler):
    """Routes one request; HTTP/1.1 with keep-alive."""

    protocol_version = "HTTP/1.1"
    server_version = "porthole-e2e-backend/1"
    server: BackendServer

    # -- plumbing ---------------------------------------------------------------------------------------------

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature from the base class
        sys.stderr.write("backend: %s %s\n" % (self.address_string(), format % args))

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, TimeoutError):
            self.close_connection = True

    @property
    def query(self) -> dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(urlsplit(self.path).query).items()}

    def send_json(self, status: int, value: object, extra_headers: dict[str, str] | None = None) -> None:
        body = json.dumps(value).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, content in (extra_headers or {}).items():
            self.send_header(name, content)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body_chunks(self) -> Iterator[bytes]:
        """The request body in pieces of at most 64 KiB, from Content-Length or chunked framing."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    raise ConnectionError("eof in chunked body")
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                while size > 0:
                    piece = self.rfile.read(min(size, PIECE_SIZE))
                    if not piece:
                        raise ConnectionError("eof in chunk")
                    size -= len(piece)
                    yield piece
                self.rfile.readline(8)  # the CRLF after each chunk
        else:
            remaining = int(self.headers.get("Content-Length", "0") or 0)
            while remaining > 0:
                piece = self.rfile.read(min(remaining, PIECE_SIZE))
                if not piece:
                    raise ConnectionError("eof in body")
                remaining -= len(piece)
                yield piece

    def discard_body(self) -> None:
        for _ in self.body_chunks():
            pass

    def start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- dispatch ---------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self.dispatch()

    def do_POST(self) -> None:
        self.dispatch()

    def do_PUT(self) -> None:
        self.dispatch()

    def do_DELETE(self) -> None:
        self.dispatch()

    def do_PATCH(self) -> None:
        self.dispatch()

    def do_HEAD(self) -> None:
        self.dispatch()

    def dispatch(self) -> None:
        expected = self.server.expected_token
        if expected is not None and self.headers.get("Authorization") != f"Bearer {expected}":
            self.discard_body()
            self.send_json(401, {"error": "backend: bad token"})
            return
        path = urlsplit(self.path).path
        routes = {
            ("GET", "/"): self.root,
            ("HEAD", "/"): self.root,
            ("GET", "/headers"): self.echo_headers,
            ("POST", "/headers"): self.echo_headers,
            ("GET", "/base/headers"): self.echo_headers,
            ("POST", "/echo"): self.echo,
            ("PUT", "/echo"): self.echo,
            ("POST", "/sha256"): self.sha256,
            ("PUT", "/sha256"): self.sha256,
            ("GET", "/bytes"): self.bytes,
            ("GET", "/progress"): self.progress,
            ("GET", "/pieces"): self.pieces,
            ("GET", "/hold"): self.hold,
            ("GET", "/closed"): self.closed,
            ("GET", "/slow"): self.slow,
            ("GET", "/connection"): self.which_connection,
            ("GET", "/upgrade-echo"): self.upgrade_echo,
        }
        route = routes.get((self.command, path))
        if route is None:
            self.discard_body()
            self.send_json(404, {"error": f"backend: no route for {self.command} {path}"})
            return
        route()

    # -- endpoints --------------------------------------------------------------------------------------------

    def root(self) -> None:
        self.send_json(200, {"hello": "porthole demo backend"})

    def echo_headers(self) -> None:
        self.discard_body()
        parts = urlsplit(self.path)
        header_list = [[name, value] for name, value in self.headers.items()]
        merged: dict[str, str] = {}
        for name, value in header_list:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        self.send_json(200, {
            "method": self.command,
            "target": self.path,
            "path": parts.path,
            "query": parts.query,
            "headers": merged,
            "headerList": header_list,
        })

    def echo(self) -> None:
        body = b"".join(self.body_chunks())
        self.send_response(200)
        self.send_header("Content-Type", self.headers.get("Content-Type", "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def sha256(self) -> None:
        digest = hashlib.sha256()
        count = 0
        for piece in self.body_chunks():
            digest.update(piece)
            count += len(piece)
        self.send_json(200, {"sha256": digest.hexdigest(), "bytes": count})

    def bytes(self) -> None:
        n = int(self.query.get("n", "0"))
        seed = self.query.get("seed", "0")
        progress_id = self.query.get("id")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        written = 0
        if progress_id:
            self.server.registry.progress(progress_id, 0)
        try:
            for piece in deterministic_chunks(n, seed):
                self.wfile.write(piece)
                written += len(piece)
                if progress_id:
                    self.server.registry.progress(progress_id, written)
        finally:
            if progress_id:
                self.server.registry.progress(progress_id, written, done=True)

    def progress(self) -> None:
        self.send_json(200, self.server.registry.progress_state(self.query.get("id", "")))

    def pieces(self) -> None:
        count = int(self.query.get("count", "5"))
        delay = float(self.query.get("delay", "0.5"))
        self.start_chunked("text/plain")
        for index in range(count):
            if index > 0:
                time.sleep(delay)
            self.write_chunk(b"piece %d\n" % index)
        self.end_chunked()

    def hold(self) -> None:
        hold_id = self.query.get("id", "")
        registry = self.server.registry
        registry.hold_started(hold_id)
        self.close_connection = True
        try:
            self.start_chunked("text/plain")
            self.write_chunk(b"held %s\n" % hold_id.encode())
            deadline = time.monotonic() + HOLD_LIMIT
            while time.monotonic() < deadline:
                time.sleep(HOLD_INTERVAL)
                self.write_chunk(b".\n")
            self.end_chunked()
        except (ConnectionError, ssl.SSLError, OSError):
            registry.hold_closed(hold_id)

    def closed(self) -> None:
        self.send_json(200, self.server.registry.hold_state(self.query.get("id", "")))

    def slow(self) -> None:
        delay = float(self.query.get("delay", "1"))
        self.discard_body()
        time.sleep(delay)
        self.send_json(200, {"slept": delay})

    def which_connection(self) -> None:
        """Which backend connection carried this request (the peer's port) and how many it has carried; with
        `delay`, answers after that many seconds so concurrent requests really overlap."""
        time.sleep(float(self.query.get("delay", "0")))
        self.requests_on_connection = getattr(self, "requests_on_connection", 0) + 1
        self.send_json(200, {"port": self.client_address[1], "requests": self.requests_on_connection})

    def upgrade_echo(self) -> None:
        connection_tokens = {token.strip().lower() for token in self.headers.get("Connection", "").split(",")}
        if "upgrade" not in connection_tokens or self.headers.get("Upgrade", "").lower() != "x-echo":
            self.discard_body()
            self.send_json(400, {"error": "backend: expected Connection: Upgrade and Upgrade: x-echo"})
            return
        self.close_connection = True
        self.send_response(101)
        self.send_header("Connection", "Upgrade")
        self.send_header("Upgrade", "x-echo")
        self.end_headers()
        self.wfile.flush()
        try:
            while True:
                data = self.rfile.read1(PIECE_SIZE)  # bytes already buffered after the head come first
                if not data:
                    break
                self.wfile.write(data)
            if not isinstance(self.connection, ssl.SSLSocket):
                self.connection.shutdown(socket.SHUT_WR)
        except (ConnectionError, ssl.SSLError, OSError):
            pass


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Porthole end-to-end test backend (HTTP/1.1, stdlib only).")
    parser.add_argument("--listen", type=parse_address, default=("127.0.0.1", 0), help="HOST:PORT, port 0 = ephemeral")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="private key for --tls-cert (PEM)")
    parser.add_argument("--expect-token", help="answer 401 unless Authorization is exactly 'Bearer TOKEN'")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")

    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
        tls.set_alpn_protocols(["http/1.1"])

    server = BackendServer(args.listen, args.expect_token, tls)
    host, port = server.server_address[:2]
    print(json.dumps({"listening": f"{host}:{port}"}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
