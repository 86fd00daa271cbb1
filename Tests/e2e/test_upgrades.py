"""Protocol upgrades through the tunnel: HTTP/1.1 `Upgrade` and HTTP/2 extended CONNECT (RFC 8441), carried byte
for byte and full duplex to a backend that speaks HTTP/1.1, with half-close and the backend's refusals intact."""

from __future__ import annotations

import os
import socket
import ssl
import threading

import h2.config
import h2.connection
import h2.events
import h2.settings

from porthole import Stack, client_context, receive_exactly
from ws import TLSStream


def open_tls(stack: Stack, alpn: str) -> ssl.SSLSocket:
    host, port = stack.service_address.rsplit(":", 1)
    context = client_context(stack.ca, alpn=(alpn,))
    sock = context.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host)
    assert sock.selected_alpn_protocol() == alpn
    return sock


def read_head(sock: ssl.SSLSocket | TLSStream) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the response head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def test_http1_upgrade_is_carried_byte_for_byte_both_ways(stack: Stack) -> None:
    # One thread writes while another reads: Python's SSLSocket is not safe for that, ws.TLSStream is.
    context = client_context(stack.ca, alpn=("http/1.1",))
    sock = TLSStream.connect(stack.service_address, context, server_hostname="127.0.0.1")
    try:
        payload = os.urandom(1 << 20)
        sock.sendall(f"GET /upgrade-echo HTTP/1.1\r\nHost: {stack.service_address}\r\nConnection: Upgrade\r\n"
                     f"Upgrade: x-echo\r\nAuthorization: Bearer {stack.token}\r\n\r\n".encode() + payload[:1000])
        head, echoed_start = read_head(sock)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"upgrade: x-echo" in head.lower()
        # Write the rest while reading: full duplex, no buffering of the whole.
        writer = threading.Thread(target=lambda: sock.sendall(payload[1000:]))
        writer.start()
        echoed = receive_exactly(sock, len(payload), echoed_start)
        writer.join(10)
        assert echoed == payload
    finally:
        sock.close()


def test_upgrade_refused_by_the_backend_reaches_the_user_unchanged(stack: Stack) -> None:
    sock = open_tls(stack, "http/1.1")
    try:
        sock.sendall(f"GET /upgrade-echo HTTP/1.1\r\nHost: {stack.service_address}\r\nConnection: Upgrade\r\n"
                     f"Upgrade: x-other\r\nAuthorization: Bearer {stack.token}\r\n\r\n".encode())
        head, body = read_head(sock)
        assert head.startswith(b"HTTP/1.1 400"), head
        # The connection closes after the refusal, so reading to EOF collects the whole body.
        while chunk := sock.recv(65536):
            body += chunk
        assert b"expected Connection: Upgrade and Upgrade: x-echo" in body
    finally:
        sock.close()


def test_http2_extended_connect_carries_a_full_duplex_stream_with_half_close(stack: Stack) -> None:
    sock = open_tls(stack, "h2")
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    connection.initiate_connection()
    sock.sendall(connection.data_to_send())
    settings: dict = {}
    while h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL not in settings:
        for event in connection.receive_data(sock.recv(65536)):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                settings.update({code: change.new_value for code, change in event.changed_settings.items()})
        sock.sendall(connection.data_to_send())
    assert settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 1

    stream = connection.get_next_available_stream_id()
    connection.send_headers(stream, [(":method", "CONNECT"), (":protocol", "x-echo"), (":scheme", "https"),
                                     (":path", "/upgrade-echo"), (":authority", stack.service_address),
                                     ("authorization", f"Bearer {stack.token}")])
    payload = os.urandom(200_000)
    status, echoed, ended = None, bytearray(), False
    sent = 0
    sock.sendall(connection.data_to_send())
    while not ended:
        # Send as the window allows; END_STREAM (a half-close) once everything is out.
        if status == "200" and sent < len(payload):
            room = min(connection.local_flow_control_window(stream), connection.max_outbound_frame_size,
                       len(payload) - sent)
            if room > 0:
                connection.send_data(stream, payload[sent:sent + room], end_stream=sent + room == len(payload))
                sent += room
        sock.sendall(connection.data_to_send())
        data = sock.recv(65536)
        assert data, "connection closed"
        for event in connection.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers)[":status"]
                assert status == "200", event.headers
                assert "sec-websocket-accept" not in dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                echoed += event.data
                connection.acknowledge_received_data(event.flow_controlled_length, stream)
            elif isinstance(event, h2.events.StreamEnded):
                ended = True
            elif isinstance(event, h2.events.StreamReset):
                raise AssertionError(f"stream reset: {event.error_code}")
        sock.sendall(connection.data_to_send())
    # The backend echoes until our half-close reaches it, then closes its side: every byte came back first.
    assert bytes(echoed) == payload
    sock.close()
