"""SPDY/3.1 framing and sessions, as Kubernetes uses them (moby/spdystream): standard library only.

Not Porthole code: the Kubernetes stand-in serves port-forward (and exec) with it, and tests use the client side.

Frames (draft 3): control frames carry a version (3), a type, flags and a 24-bit length; data frames a 31-bit
stream id, flags (FIN) and a 24-bit length. Name/value header blocks are zlib-compressed with the SPDY/3
dictionary, one compression context per direction for the whole connection (each block ends in a sync flush).
spdystream does no flow control (it never sends WINDOW_UPDATE and ignores those it gets), so neither does this.
"""

from __future__ import annotations

import queue
import struct
import threading
import zlib
from typing import Callable

VERSION = 3

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

RST_PROTOCOL_ERROR = 1
RST_INVALID_STREAM = 2
RST_REFUSED_STREAM = 3
RST_CANCEL = 5
RST_INTERNAL_ERROR = 6

MAX_DATA = 16 * 1024  # what this side puts in one DATA frame


def _dictionary() -> bytes:
    """The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1): length-prefixed words, then a tail."""
    words = [
        "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
        "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
        "content-base", "content-encoding", "content-language", "content-length", "content-location", "content-md5",
        "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host", "if-match",
        "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
        "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after",
        "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
        "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public",
        "set-cookie", "keep-alive", "origin",
    ]
    tail = (
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
        "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
        "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
        "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
        "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
        "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
    )
    return b"".join(struct.pack("!I", len(word)) + word.encode() for word in words) + tail.encode()


DICTIONARY = _dictionary()


class ProtocolError(Exception):
    pass


class HeaderCodec:
    """One direction's zlib context for name/value blocks (a connection has one per direction)."""

    def __init__(self) -> None:
        self._compressor = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, zdict=DICTIONARY)
        self._decompressor = zlib.decompressobj(15, zdict=DICTIONARY)

    def encode(self, headers: dict[str, str | list[str]]) -> bytes:
        block = bytearray(struct.pack("!I", len(headers)))
        for name, value in headers.items():
            values = value if isinstance(value, list) else [value]
            encoded_name = name.lower().encode()
            encoded_value = "\x00".join(values).encode()
            block += struct.pack("!I", len(encoded_name)) + encoded_name
            block += struct.pack("!I", len(encoded_value)) + encoded_value
        return self._compressor.compress(bytes(block)) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def decode(self, compressed: bytes) -> dict[str, list[str]]:
        block = self._decompressor.decompress(compressed)
        if len(block) < 4:
            raise ProtocolError("short header block")
        count = struct.unpack_from("!I", block, 0)[0]
        offset = 4
        headers: dict[str, list[str]] = {}
        for _ in range(count):
            name_length = struct.unpack_from("!I", block, offset)[0]
            offset += 4
            name = block[offset:offset + name_length].decode()
            offset += name_length
            value_length = struct.unpack_from("!I", block, offset)[0]
            offset += 4
            value = block[offset:offset + value_length].decode()
            offset += value_length
            headers.setdefault(name, []).extend(value.split("\x00"))
        return headers


# -- frames -------------------------------------------------------------------------------------------------------


def control_frame(frame_type: int, flags: int, payload: bytes) -> bytes:
    return struct.pack("!HHI", 0x8000 | VERSION, frame_type, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, flags: int, payload: bytes) -> bytes:
    return struct.pack("!II", stream_id & 0x7FFFFFFF, (flags << 24) | len(payload)) + payload


class Frame:
    """A parsed frame: `control` frames have `type`; data frames have `type` None. `stream_id` where one applies."""

    __slots__ = ("control", "type", "flags", "stream_id", "payload", "headers", "value", "associated", "priority")

    def __init__(self, control: bool, frame_type: int | None, flags: int, payload: bytes) -> None:
        self.control = control
        self.type = frame_type
        self.flags = flags
        self.payload = payload
        self.stream_id = 0
        self.headers: dict[str, list[str]] = {}
        self.value = 0
        self.associated = 0
        self.priority = 0

    def __repr__(self) -> str:
        kind = {None: "DATA", SYN_STREAM: "SYN_STREAM", SYN_REPLY: "SYN_REPLY", RST_STREAM: "RST_STREAM",
                SETTINGS: "SETTINGS", PING: "PING", GOAWAY: "GOAWAY", HEADERS: "HEADERS",
                WINDOW_UPDATE: "WINDOW_UPDATE"}.get(self.type, f"type{self.type}")
        return f"<{kind} stream={self.stream_id} flags={self.flags} len={len(self.payload)}>"


def read_frame(read_exact: Callable[[int], bytes], codec: HeaderCodec) -> Frame:
    head = read_exact(8)
    first, second = struct.unpack("!II", head)
    flags = second >> 24
    length = second & 0xFFFFFF
    payload = read_exact(length) if length else b""
    if first & 0x80000000:
        version = (first >> 16) & 0x7FFF
        frame_type = first & 0xFFFF
        if version != VERSION:
            raise ProtocolError(f"SPDY version {version}, expected {VERSION}")
        frame = Frame(True, frame_type, flags, payload)
        if frame_type == SYN_STREAM:
            frame.stream_id, frame.associated = struct.unpack_from("!II", payload, 0)
            frame.stream_id &= 0x7FFFFFFF
            frame.associated &= 0x7FFFFFFF
            frame.priority = payload[8] >> 5
            frame.headers = codec.decode(payload[10:])
        elif frame_type in (SYN_REPLY, HEADERS):
            frame.stream_id = struct.unpack_from("!I", payload, 0)[0] & 0x7FFFFFFF
            frame.headers = codec.decode(payload[4:])
        elif frame_type in (RST_STREAM, WINDOW_UPDATE):
            frame.stream_id, frame.value = struct.unpack_from("!II", payload, 0)
            frame.stream_id &= 0x7FFFFFFF
        elif frame_type == PING:
            frame.value = struct.unpack_from("!I", payload, 0)[0]
        elif frame_type == GOAWAY:
            frame.stream_id, frame.value = struct.unpack_from("!II", payload, 0)
            frame.stream_id &= 0x7FFFFFFF
        return frame
    frame = Frame(False, None, flags, payload)
    frame.stream_id = first & 0x7FFFFFFF
    return frame


# -- sessions -----------------------------------------------------------------------------------------------------


class Stream:
    """One SPDY stream. Incoming data goes to `on_data` if set, else to a queue read with `recv()`."""

    def __init__(self, session: "Session", stream_id: int, headers: dict[str, list[str]]) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self.reply_headers: dict[str, list[str]] | None = None
        self.replied = threading.Event()
        self.remote_closed = False  # FIN received
        self.local_closed = False  # FIN sent
        self.reset = False
        self.on_data: Callable[[bytes], None] | None = None
        self.on_remote_close: Callable[[], None] | None = None
        self.on_reset: Callable[[], None] | None = None
        self._queue: "queue.Queue[bytes]" = queue.Queue()

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    def send(self, data: bytes) -> None:
        for offset in range(0, len(data), MAX_DATA):
            self.session.send_frame(data_frame(self.id, 0, data[offset:offset + MAX_DATA]))

    def close(self) -> None:
        """Half-close: an empty DATA frame with FIN (once)."""
        if self.local_closed or self.reset:
            return
        self.local_closed = True
        self.session.send_frame(data_frame(self.id, FLAG_FIN, b""))
        self.session._maybe_forget(self)

    def send_reset(self, status: int = RST_CANCEL) -> None:
        if self.reset:
            return
        self.reset = True
        self.session.send_frame(control_frame(RST_STREAM, 0, struct.pack("!II", self.id, status)))
        self.session._forget(self)

    def recv(self, timeout: float | None = None) -> bytes:
        """Next data (b"" once the peer half-closed or reset the stream)."""
        return self._queue.get(timeout=timeout)

    def read_all(self, timeout: float) -> bytes:
        parts = []
        while True:
            piece = self.recv(timeout)
            if not piece:
                return b"".join(parts)
            parts.append(piece)

    # called by the session's reader
    def _deliver(self, data: bytes) -> None:
        if self.on_data is not None:
            self.on_data(data)
        else:
            self._queue.put(data)

    def _finish_remote(self) -> None:
        if self.remote_closed:
            return
        self.remote_closed = True
        if self.on_remote_close is not None:
            self.on_remote_close()
        self._queue.put(b"")


class Session:
    """A SPDY/3.1 connection over a stream with `recv`/`sendall`/`close`.

    `serve()` runs the read loop in the calling thread until the connection ends; `on_stream(stream)` is called (in
    that thread) for each SYN_STREAM the peer opens, after this side has sent SYN_REPLY unless `auto_reply` is off.
    Sending is thread-safe. PINGs from the peer are echoed; GOAWAY ends the loop once streams are gone.
    """

    def __init__(self, transport, server: bool, on_stream: Callable[[Stream], None] | None = None,
                 auto_reply: bool = True) -> None:
        self.transport = transport
        self.server = server
        self.on_stream = on_stream
        self.auto_reply = auto_reply
        self._send_codec = HeaderCodec()
        self._recv_codec = HeaderCodec()
        self._send_lock = threading.Lock()
        self._streams_lock = threading.Lock()
        self.streams: dict[int, Stream] = {}
        self._next_id = 2 if server else 1
        self._next_ping = 2 if server else 1
        self._pings: dict[int, threading.Event] = {}
        self._buffer = bytearray()
        self.closed = threading.Event()
        self.goaway_received = False
        self.frames_received: list[str] = []  # kinds, for tests and debugging (bounded)

    # -- sending ----------------------------------------------------------------------------------------------

    def send_frame(self, frame: bytes) -> None:
        with self._send_lock:
            self.transport.sendall(frame)

    def _send_headers_frame(self, frame_type: int, flags: int, prefix: bytes, headers: dict) -> None:
        # The compression context is shared by every header block in this direction: compress and send in order.
        with self._send_lock:
            block = self._send_codec.encode(headers)
            self.transport.sendall(control_frame(frame_type, flags, prefix + block))

    def reply(self, stream: Stream, headers: dict | None = None, fin: bool = False) -> None:
        self._send_headers_frame(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack("!I", stream.id), headers or {})
        if fin:
            stream.local_closed = True

    def open_stream(self, headers: dict, fin: bool = False, wait_reply: float | None = 10.0) -> Stream:
        with self._streams_lock:
            stream_id = self._next_id
            self._next_id += 2
            stream = Stream(self, stream_id, {k.lower(): (v if isinstance(v, list) else [v])
                                              for k, v in headers.items()})
            self.streams[stream_id] = stream
        prefix = struct.pack("!IIBB", stream_id, 0, 0, 0)
        self._send_headers_frame(SYN_STREAM, FLAG_FIN if fin else 0, prefix, headers)
        if fin:
            stream.local_closed = True
        if wait_reply is not None and not stream.replied.wait(wait_reply):
            raise TimeoutError(f"no SYN_REPLY for stream {stream_id} within {wait_reply}s")
        if stream.reset:
            raise ConnectionResetError(f"stream {stream_id} was reset by the peer")
        return stream

    def ping(self, timeout: float = 10.0) -> bool:
        with self._streams_lock:
            ping_id = self._next_ping
            self._next_ping += 2
            event = self._pings[ping_id] = threading.Event()
        self.send_frame(control_frame(PING, 0, struct.pack("!I", ping_id)))
        answered = event.wait(timeout)
        self._pings.pop(ping_id, None)
        return answered

    def goaway(self) -> None:
        try:
            self.send_frame(control_frame(GOAWAY, 0, struct.pack("!II", 0, 0)))
        except OSError:
            pass

    def close(self) -> None:
        self.closed.set()
        try:
            self.transport.close()
        except OSError:
            pass

    # -- receiving --------------------------------------------------------------------------------------------

    def _read_exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            data = self.transport.recv(64 * 1024)
            if not data:
                raise EOFError
            self._buffer += data
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _forget(self, stream: Stream) -> None:
        with self._streams_lock:
            self.streams.pop(stream.id, None)

    def _maybe_forget(self, stream: Stream) -> None:
        if stream.local_closed and stream.remote_closed:
            self._forget(stream)

    def serve(self) -> None:
        try:
            while True:
                try:
                    frame = read_frame(self._read_exact, self._recv_codec)
                except (EOFError, OSError):
                    break
                if len(self.frames_received) < 1000:
                    self.frames_received.append(repr(frame))
                if not self._handle(frame):
                    break
        finally:
            self.closed.set()
            with self._streams_lock:
                streams = list(self.streams.values())
                self.streams.clear()
            for stream in streams:
                stream.reset = True
                stream.replied.set()
                if stream.on_reset is not None:
                    stream.on_reset()
                stream._finish_remote()
            for event in self._pings.values():
                event.set()

    def _handle(self, frame: Frame) -> bool:
        if not frame.control:
            with self._streams_lock:
                stream = self.streams.get(frame.stream_id)
            if stream is None:
                return True
            if frame.payload:
                stream._deliver(frame.payload)
            if frame.flags & FLAG_FIN:
                stream._finish_remote()
                self._maybe_forget(stream)
            return True
        if frame.type == SYN_STREAM:
            stream = Stream(self, frame.stream_id, frame.headers)
            with self._streams_lock:
                self.streams[frame.stream_id] = stream
            if frame.flags & FLAG_UNIDIRECTIONAL:
                stream.local_closed = True
            if self.auto_reply:
                self.reply(stream)
            if frame.flags & FLAG_FIN:
                stream._finish_remote()
            if self.on_stream is not None:
                self.on_stream(stream)
            if frame.flags & FLAG_FIN:
                self._maybe_forget(stream)
            return True
        if frame.type == SYN_REPLY:
            with self._streams_lock:
                stream = self.streams.get(frame.stream_id)
            if stream is not None:
                stream.reply_headers = frame.headers
                stream.replied.set()
                if frame.flags & FLAG_FIN:
                    stream._finish_remote()
                    self._maybe_forget(stream)
            return True
        if frame.type == RST_STREAM:
            with self._streams_lock:
                stream = self.streams.pop(frame.stream_id, None)
            if stream is not None:
                stream.reset = True
                stream.replied.set()
                if stream.on_reset is not None:
                    stream.on_reset()
                stream._finish_remote()
            return True
        if frame.type == PING:
            if (frame.value & 1) == (self._next_ping & 1):
                event = self._pings.get(frame.value)
                if event is not None:
                    event.set()
            else:
                self.send_frame(control_frame(PING, 0, struct.pack("!I", frame.value)))
            return True
        if frame.type == GOAWAY:
            self.goaway_received = True
            with self._streams_lock:
                return bool(self.streams)
        if frame.type == HEADERS:
            return True
        # SETTINGS, WINDOW_UPDATE and anything unknown: nothing to do (no flow control, see the module docstring).
        return True
