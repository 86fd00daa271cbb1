"""Byte streams and WebSocket framing for the Kubernetes stand-in and the tests that talk to it (standard library only).

Not Porthole code: these are test-side implementations, checked against real clients (kubectl, the Python
`kubernetes` client, websocket-client) by the end-to-end tests.

- `TLSStream`: TLS over a blocking TCP socket through `ssl.MemoryBIO`, so one thread may block reading while
  others write (an `ssl.SSLSocket` must not be read and written from two threads at once).
- `Buffered`: a read buffer over any stream, for HTTP heads followed by upgraded bytes.
- `WebSocket`: RFC 6455 frames (client or server side), fragmented messages, ping/pong, close handshake.
- `client_handshake` / `server_accept`: the HTTP/1.1 upgrade on either side.
- `K8sChannels`: helpers for the Kubernetes channel protocols (`v4.channel.k8s.io`, `v5.channel.k8s.io`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import threading
from typing import Iterable

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

# Kubernetes remote-command channels (k8s.io/apimachinery/pkg/util/remotecommand).
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE_SIGNAL = 255  # v5.channel.k8s.io: [255, channel] half-closes that channel

# The largest message this side sends: some clients cap what they read per message (coder/websocket: 32 KiB).
MAX_MESSAGE = 16 * 1024

READ_SIZE = 64 * 1024


class StreamClosed(ConnectionError):
    """The peer went away (or the stream was closed here)."""


# -- byte streams -------------------------------------------------------------------------------------------------


class TLSStream:
    """TLS over a blocking socket via memory BIOs: `recv` and `sendall` are safe to call from different threads.

    The SSL object is only touched under `_ssl_lock` and never blocks there (memory BIOs); TCP writes happen in the
    order their bytes left the outgoing BIO because extraction and sending share `_send_lock`.
    """

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_side: bool,
                 server_hostname: str | None = None) -> None:
        self.sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side,
                                     server_hostname=server_hostname)
        self._ssl_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self._closed = False
        self._eof = False
        self._plain = bytearray()  # decrypted by peer_closed(), not yet returned by recv()

    @classmethod
    def connect(cls, address: str | tuple[str, int], context: ssl.SSLContext, server_hostname: str | None = None,
                timeout: float = 10.0) -> "TLSStream":
        if isinstance(address, str):
            host, port = address.rsplit(":", 1)
            address = (host.strip("[]"), int(port))
        sock = socket.create_connection(address, timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = cls(sock, context, server_side=False, server_hostname=server_hostname or address[0])
        stream.handshake(timeout)
        return stream

    # -- handshake ---------------------------------------------------------------------------------------------

    def handshake(self, timeout: float = 10.0) -> None:
        self.sock.settimeout(timeout)
        try:
            while True:
                with self._send_lock:
                    with self._ssl_lock:
                        try:
                            self._ssl.do_handshake()
                            done = True
                        except ssl.SSLWantReadError:
                            done = False
                        pending = self._outgoing.read()
                    if pending:
                        self.sock.sendall(pending)
                if done:
                    break
                data = self.sock.recv(READ_SIZE)
                if not data:
                    raise StreamClosed("peer closed the connection during the TLS handshake")
                with self._ssl_lock:
                    self._incoming.write(data)
        finally:
            if not self._closed:
                self.sock.settimeout(None)

    @property
    def selected_alpn_protocol(self) -> str | None:
        return self._ssl.selected_alpn_protocol()

    def getpeercert(self) -> dict | None:
        return self._ssl.getpeercert()

    # -- I/O ----------------------------------------------------------------------------------------------------

    def _flush_pending(self) -> None:
        """Sends TLS bytes the read path produced (tickets, alerts, key updates), in order."""
        with self._send_lock:
            with self._ssl_lock:
                pending = self._outgoing.read()
            if pending:
                try:
                    self.sock.sendall(pending)
                except OSError:
                    pass

    def recv(self, size: int = READ_SIZE) -> bytes:
        """Up to `size` plaintext bytes; b"" once the peer closed (close_notify or TCP FIN)."""
        with self._recv_lock:
            if self._plain:
                data = bytes(self._plain[:size])
                del self._plain[:size]
                return data
            while True:
                with self._ssl_lock:
                    try:
                        data = self._ssl.read(size)
                        produced = self._outgoing.pending
                    except ssl.SSLWantReadError:
                        data = None
                        produced = self._outgoing.pending
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                        return b""
                    except ssl.SSLError:
                        if self._eof or self._closed:
                            return b""
                        raise
                if produced:
                    self._flush_pending()
                if data:
                    return data
                if data is not None:  # b"": clean TLS close
                    return b""
                if self._eof:
                    return b""
                try:
                    raw = self.sock.recv(READ_SIZE)
                except OSError:
                    if self._closed:
                        return b""
                    raise
                with self._ssl_lock:
                    if raw:
                        self._incoming.write(raw)
                    else:
                        self._eof = True
                        self._incoming.write_eof()

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        with self._send_lock:
            if self._closed:
                raise StreamClosed("stream is closed")
            while len(view):
                piece = view[:256 * 1024]
                with self._ssl_lock:
                    written = self._ssl.write(piece)
                    out = self._outgoing.read()
                view = view[written:]
                try:
                    self.sock.sendall(out)
                except OSError as error:
                    raise StreamClosed(f"send failed: {error}") from error

    def shutdown_write(self) -> None:
        """close_notify: the peer reads EOF; this side may still read."""
        with self._send_lock:
            with self._ssl_lock:
                try:
                    self._ssl.unwrap()
                except (ssl.SSLWantReadError, ssl.SSLError, ValueError):
                    pass
                out = self._outgoing.read()
            if out:
                try:
                    self.sock.sendall(out)
                except OSError:
                    pass

    def peer_closed(self) -> bool:
        """True if the peer has closed the connection (TCP FIN or TLS close_notify), checked without blocking.

        For response streams (watch, logs) where the client sends nothing: bytes that do arrive are decrypted and
        kept for the next `recv`."""
        if self._eof or self._closed:
            return True
        if not self._recv_lock.acquire(blocking=False):
            return False  # someone is reading: they will see the end
        try:
            self.sock.setblocking(False)
            try:
                raw = self.sock.recv(READ_SIZE)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                return False
            except OSError:
                return True
            finally:
                if not self._closed:
                    self.sock.setblocking(True)
            if not raw:
                self._eof = True
                return True
            with self._ssl_lock:
                self._incoming.write(raw)
                try:
                    while True:
                        data = self._ssl.read(READ_SIZE)
                        if not data:
                            return True
                        self._plain += data
                except ssl.SSLWantReadError:
                    return False
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return True
        finally:
            self._recv_lock.release()

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.shutdown_write()
        finally:
            self._closed = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()


class Buffered:
    """A read buffer in front of a stream with `recv`/`sendall`/`close` (a TLSStream or a plain socket)."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self._buffer = bytearray()

    def _fill(self) -> bool:
        data = self.stream.recv(READ_SIZE)
        if not data:
            return False
        self._buffer += data
        return True

    def recv_some(self, size: int = READ_SIZE) -> bytes:
        """Buffered bytes first, else one read from the stream; b"" at EOF."""
        if self._buffer:
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            return data
        return self.stream.recv(size)

    recv = recv_some  # so a Buffered can stand wherever a stream is expected

    def read_exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise StreamClosed(f"EOF after {len(self._buffer)} of {size} bytes")
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _take_through(self, delimiter: bytes, limit: int, too_long: str) -> bytes | None:
        """Buffered bytes up to and including `delimiter`, removed; None at EOF without it."""
        while True:
            index = self._buffer.find(delimiter)
            if index >= 0:
                end = index + len(delimiter)
                taken = bytes(self._buffer[:end])
                del self._buffer[:end]
                return taken
            if len(self._buffer) > limit:
                raise ValueError(too_long)
            if not self._fill():
                return None

    def readline(self, limit: int = 65536) -> bytes:
        """One line including b"\\n"; b"" at EOF before any byte; raises if longer than `limit`."""
        line = self._take_through(b"\n", limit, "line too long")
        if line is None:  # EOF: the unterminated rest is the last line
            line = bytes(self._buffer)
            self._buffer.clear()
        return line

    def read_head(self, limit: int = 65536) -> bytes:
        """Bytes up to and including the blank line that ends an HTTP head; b"" at EOF before any byte."""
        head = self._take_through(b"\r\n\r\n", limit, "header section too large")
        if head is None:
            if self._buffer:
                raise StreamClosed("EOF inside an HTTP head")
            return b""
        return head

    def sendall(self, data: bytes) -> None:
        self.stream.sendall(data)

    def close(self) -> None:
        self.stream.close()


# -- HTTP heads ---------------------------------------------------------------------------------------------------


def parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    """(first line, [(name, value)]) of an HTTP/1.1 head."""
    lines = head.decode("latin-1").split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def header(headers: Iterable[tuple[str, str]], name: str, default: str = "") -> str:
    """All values of `name` joined with ", " (case-insensitive), else `default`."""
    values = [value for key, value in headers if key.lower() == name.lower()]
    return ", ".join(values) if values else default


def tokens(value: str) -> list[str]:
    return [token.strip() for token in value.split(",") if token.strip()]


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


# -- frames -------------------------------------------------------------------------------------------------------


def apply_mask(data: bytes, key: bytes) -> bytes:
    size = len(data)
    if size == 0:
        return b""
    keystream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(keystream, "little")).to_bytes(size, "little")


def encode_frame(opcode: int, payload: bytes, masked: bool, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size < 126:
        head = struct.pack("!BB", first, mask_bit | size)
    elif size < 65536:
        head = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, size)
    if masked:
        key = os.urandom(4)
        return head + key + apply_mask(payload, key)
    return head + payload


class WebSocket:
    """One WebSocket connection over a `Buffered` stream. Reading is for one thread; `send*` is thread-safe.

    `recv_message()` answers pings, skips pongs and returns (opcode, payload) of each data message, or None once the
    peer sent a close frame (answered) or the stream ended. `close_code`/`close_reason` keep what the peer sent.
    """

    def __init__(self, stream: Buffered, client: bool, subprotocol: str = "", max_message: int = MAX_MESSAGE) -> None:
        self.stream = stream
        self.client = client
        self.subprotocol = subprotocol
        self.max_message = max_message
        self._send_lock = threading.Lock()
        self.close_sent = False
        self.close_received = False
        self.close_code: int | None = None
        self.close_reason = ""

    # -- receiving --------------------------------------------------------------------------------------------

    def _read_frame(self) -> tuple[bool, int, bytes]:
        first, second = self.stream.read_exact(2)
        fin = bool(first & 0x80)
        opcode = first & 0x0F
        masked = bool(second & 0x80)
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", self.stream.read_exact(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", self.stream.read_exact(8))[0]
        if masked == self.client:
            raise ValueError("frame masking is wrong for this side (clients mask, servers do not)")
        key = self.stream.read_exact(4) if masked else b""
        payload = self.stream.read_exact(size) if size else b""
        if masked:
            payload = apply_mask(payload, key)
        return fin, opcode, payload

    def recv_message(self) -> tuple[int, bytes] | None:
        message_opcode: int | None = None
        parts: list[bytes] = []
        while True:
            try:
                fin, opcode, payload = self._read_frame()
            except (StreamClosed, OSError):
                return None
            if opcode == OP_PING:
                try:
                    self.send(OP_PONG, payload)
                except (StreamClosed, OSError):
                    return None
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                self.close_received = True
                if len(payload) >= 2:
                    self.close_code = struct.unpack("!H", payload[:2])[0]
                    self.close_reason = payload[2:].decode("utf-8", "replace")
                try:
                    self.close(self.close_code or 1000)
                except (StreamClosed, OSError):
                    pass
                return None
            if opcode == OP_CONTINUATION:
                if message_opcode is None:
                    raise ValueError("continuation frame without a message")
            else:
                if message_opcode is not None:
                    raise ValueError("new message inside a fragmented one")
                message_opcode = opcode
            parts.append(payload)
            if fin:
                return message_opcode, b"".join(parts)

    # -- sending ----------------------------------------------------------------------------------------------

    def send(self, opcode: int, payload: bytes = b"") -> None:
        frame = encode_frame(opcode, payload, masked=self.client)
        with self._send_lock:
            if self.close_sent:
                raise StreamClosed("close frame already sent")
            if opcode == OP_CLOSE:
                self.close_sent = True
            self.stream.sendall(frame)

    def send_binary(self, payload: bytes) -> None:
        self.send(OP_BINARY, payload)

    def send_channel(self, channel: int, data: bytes) -> None:
        """Kubernetes channel data: [channel] + data, split so no message exceeds `max_message`."""
        step = self.max_message - 1
        if not data:
            self.send(OP_BINARY, bytes([channel]))
            return
        for offset in range(0, len(data), step):
            self.send(OP_BINARY, bytes([channel]) + data[offset:offset + step])

    def send_stream_bytes(self, data: bytes) -> None:
        """Raw bytes as binary messages of at most `max_message` (SPDY tunnelled in a WebSocket)."""
        for offset in range(0, len(data), self.max_message):
            self.send(OP_BINARY, data[offset:offset + self.max_message])

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Sends the close frame once (later calls do nothing)."""
        with self._send_lock:
            if self.close_sent:
                return
            self.close_sent = True
            self.stream.sendall(encode_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:120],
                                             masked=self.client))


class WebSocketByteStream:
    """The byte stream carried by a WebSocket's binary messages (SPDY/3.1+portforward.k8s.io), as recv/sendall."""

    def __init__(self, socket_: WebSocket) -> None:
        self.ws = socket_
        self._pending = b""

    def recv(self, size: int = READ_SIZE) -> bytes:
        while not self._pending:
            message = self.ws.recv_message()
            if message is None:
                return b""
            opcode, payload = message
            if opcode != OP_BINARY:
                raise ValueError(f"unexpected WebSocket opcode {opcode} in a byte tunnel")
            self._pending = payload
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def sendall(self, data: bytes) -> None:
        self.ws.send_stream_bytes(bytes(data))

    def close(self) -> None:
        try:
            self.ws.close(1000)
        except (StreamClosed, OSError):
            pass
        self.ws.stream.close()


# -- handshakes ---------------------------------------------------------------------------------------------------


class HandshakeRefused(Exception):
    """The server answered the upgrade with something other than 101."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        super().__init__(f"upgrade refused: {status} {body[:300]!r}")
        self.status = status
        self.headers = headers
        self.body = body


def read_response_body(stream: Buffered, headers: list[tuple[str, str]], limit: int = 1 << 20) -> bytes:
    """The body of a non-101 response: Content-Length, chunked, or until EOF (bounded by `limit`)."""
    if "chunked" in header(headers, "Transfer-Encoding").lower():
        body = bytearray()
        while len(body) < limit:
            size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                stream.readline()
                break
            body += stream.read_exact(size)
            stream.readline()
        return bytes(body)
    length = header(headers, "Content-Length")
    if length:
        return stream.read_exact(min(int(length), limit))
    body = bytearray()
    while len(body) < limit:
        data = stream.recv_some()
        if not data:
            break
        body += data
    return bytes(body)


def client_handshake(stream: Buffered, host: str, target: str, protocols: Iterable[str] = (),
                     headers: Iterable[tuple[str, str]] = ()) -> WebSocket:
    """Sends a WebSocket upgrade request; returns the WebSocket after a valid 101, else raises HandshakeRefused."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Connection: Upgrade", "Upgrade: websocket",
             "Sec-WebSocket-Version: 13", f"Sec-WebSocket-Key: {key}"]
    protocols = list(protocols)
    if protocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(protocols)}")
    lines += [f"{name}: {value}" for name, value in headers]
    stream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    head = stream.read_head()
    if not head:
        raise StreamClosed("connection closed before the upgrade response")
    status_line, response_headers = parse_head(head)
    status = int(status_line.split()[1])
    if status != 101:
        raise HandshakeRefused(status, response_headers, read_response_body(stream, response_headers))
    if header(response_headers, "Sec-WebSocket-Accept") != accept_key(key):
        raise ValueError(f"bad Sec-WebSocket-Accept in {response_headers}")
    if "upgrade" not in [token.lower() for token in tokens(header(response_headers, "Connection"))]:
        raise ValueError(f"101 without Connection: Upgrade: {response_headers}")
    chosen = header(response_headers, "Sec-WebSocket-Protocol")
    if protocols and chosen not in protocols:
        raise ValueError(f"server chose subprotocol {chosen!r}, offered {protocols}")
    return WebSocket(stream, client=True, subprotocol=chosen)


def server_accept(stream: Buffered, request_headers: list[tuple[str, str]], supported: Iterable[str]
                  ) -> WebSocket | None:
    """Answers a WebSocket upgrade request with 101 and the first offered subprotocol that is `supported`
    (in the client's order); returns None (nothing sent) if none is."""
    offered = tokens(header(request_headers, "Sec-WebSocket-Protocol"))
    supported = list(supported)
    chosen = next((protocol for protocol in offered if protocol in supported), None)
    if chosen is None:
        return None
    key = header(request_headers, "Sec-WebSocket-Key")
    response = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept_key(key)}\r\nSec-WebSocket-Protocol: {chosen}\r\n\r\n")
    stream.sendall(response.encode("latin-1"))
    return WebSocket(stream, client=False, subprotocol=chosen)


# -- Kubernetes channel protocol helpers ----------------------------------------------------------------------------


def status_exit_code(status: dict) -> int:
    """The exit code a remote-command error-channel Status carries (0 for Success)."""
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message", "1"))
    return 1


def parse_status(data: bytes) -> dict:
    return json.loads(data.decode()) if data.strip() else {}
