#!/usr/bin/env python3
"""Writes the hand-made seed inputs of every fuzz target into Tests/Fuzz/corpus/TARGET/seed-NAME.

Each target's first bytes are control bytes its harness reads (see the FuzzHarness folders of Tests/TunnelTests,
Tests/AgentTests and Tests/ControllerTests); the seeds set
them. Re-run after changing a harness's input layout; `fuzz.sh run` merges what the fuzzer finds next to them.
"""
import base64
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent
REPO = ROOT.parent.parent


def write(target, name, data):
    folder = ROOT / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"seed-{name}").write_bytes(data if isinstance(data, bytes) else data.encode())


# http1: control (bit 0 response, bit 1 finish, bits 2-3 limits), piece size, four 2-bit methods; then the wire.
REQUESTS = {
    "get": "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "watch": "GET /api/v1/pods?watch=1&rv=10 HTTP/1.1\r\nHost: k8s\r\nAccept: application/json\r\n"
    "Authorization: Bearer abc.def.ghi\r\n\r\n",
    "post-length": "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world",
    "chunked": "PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n"
    "0\r\nTrailer: v\r\n\r\n",
    "pipelined": "GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\nGET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "upgrade": "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    "Sec-WebSocket-Key: x==\r\n\r\n\x81\x00",
    "spdy": "POST /api/v1/namespaces/d/pods/p/exec HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n",
    "connect": "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
    "list-length": "PATCH /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\nX-Obs: caf\xe9\r\n\r\nabc",
    "leading-crlf": "\r\nDELETE /thing HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
}
RESPONSES = {
    "length": ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0),
    "chunked": ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                "0\r\nX-Trailer: 1\r\n\r\n", 0),
    "no-content": ("HTTP/1.1 204 No Content\r\nDate: today\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n"
                   "Content-Length: 99\r\n\r\n", 0),
    "head": ("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 0b01),
    "continue": ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", 0),
    "switching": ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\nConnection: Upgrade\r\n\r\n\x80\x03", 0),
    "connect": ("HTTP/1.1 200 Connection established\r\n\r\ntunnel bytes", 0b10),
    "until-close": ("HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil the end", 0),
    "gzip-close": ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw", 0),
}
for name, text in REQUESTS.items():
    write("http1", f"request-{name}", bytes([0b10, 0, 0]) + text.encode("latin-1"))
for name, (text, methods) in RESPONSES.items():
    write("http1", f"response-{name}", bytes([0b11, 3, methods]) + text.encode("latin-1"))

# kubeconfig: the file's bytes.
KUBECONFIG = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
    server: https://127.0.0.1:40123
  name: kind-dev
- cluster:
    certificate-authority: certs/ca.crt
    extensions:
    - extension:
        last-update: Mon, 01 Jan 2024 10:00:00 UTC
        provider: minikube.sigs.k8s.io
      name: cluster_info
    server: https://192.168.49.2:8443
  name: minikube
- cluster:
    insecure-skip-tls-verify: true
    server: "https://[2001:db8::1]:6443"
  name: lab
contexts:
- context:
    cluster: kind-dev
    user: kind-dev
    namespace: 'team-a'
  name: kind-dev
- context: {cluster: lab, user: lab}
  name: lab
current-context: kind-dev
kind: Config
preferences: {}
users:
- name: kind-dev
  user:
    client-certificate-data: LS0tLS1CRUdJTg==
    client-key-data: LS0tLS1CRUdJTg==
- name: lab
  user:
    token: abc.def#ghi   # a comment
- name: exec
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args:
      - eks
      - get-token
- name: basic
  user:
    username: "ad\\"min\\u00e9"
    password: folded plain
      scalar over lines
    auth-provider:
      name: oidc
"""
write("kubeconfig", "kubectl-yaml", KUBECONFIG)
write("kubeconfig", "kubectl-json", json.dumps({
    "kind": "Config", "apiVersion": "v1", "preferences": {},
    "clusters": [{"name": "lab", "cluster": {"server": "https://[2001:db8::1]:6443", "insecure-skip-tls-verify": True}}],
    "users": [{"name": "lab", "user": {"token": "abc\u00e9\ud83d\ude00", "tokenFile": None}}],
    "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab", "namespace": "x"}}],
    "current-context": "lab", "numbers": [0, -1.5e3, 10],
}, indent=4))
write("kubeconfig", "document-marker", "---\n# comment\nkey: ~\nlist:\n- - a\n  - b\n- 'it''s'\nempty: []\n")
for path in sorted((REPO / "examples" / "kubernetes").rglob("*.yaml"))[:6]:
    write("kubeconfig", "example-" + path.stem, path.read_text())

# service-token: control (bit 0 sign the text as `header JSON \n claims JSON`), then the text.
CLAIMS = {"agent": "edge-1", "aud": "porthole-service", "exp": 1800000600, "iat": 1800000000, "iss": "https://p.example",
          "jti": "4f1c", "service": "ci", "sub": "alice", "type": "jenkins"}
HEADER = '{"alg":"ES256","typ":"JWT"}'
write("service-token", "signed", b"\x01" + (HEADER + "\n" + json.dumps(CLAIMS, separators=(",", ":"))).encode())
write("service-token", "signed-expired", b"\x01" + (HEADER + "\n" + json.dumps(dict(CLAIMS, exp=1))).encode())
write("service-token", "signed-alg-none", b"\x01" + ('{"alg":"none"}\n' + json.dumps(CLAIMS)).encode())


def b64(data):
    return base64.urlsafe_b64encode(data.encode() if isinstance(data, str) else data).rstrip(b"=").decode()


write("service-token", "text", b"\x00" + f"{b64(HEADER)}.{b64(json.dumps(CLAIMS))}.{b64(bytes(range(64)))}".encode())
HS256 = '{"alg":"HS256"}'
write("service-token", "text-hs256", b"\x00" + f"{b64(HS256)}.{b64(json.dumps(CLAIMS))}.c2ln".encode())

# jose: a compact JWS or a JWK Set, as an OIDC provider would send them.
ED_HEADER = '{"alg":"EdDSA","kid":"ed","typ":"JWT"}'
OIDC_CLAIMS = {"iss": "https://issuer.example", "aud": ["porthole"], "azp": "porthole", "sub": "u1", "exp": 1800000600,
               "iat": 1800000000, "nbf": 1799999990, "realm_access": {"roles": ["admin", "dev"]}, "email": "a@b.c"}
write("jose", "jws-eddsa", f"{b64(ED_HEADER)}.{b64(json.dumps(OIDC_CLAIMS))}.{b64(bytes(64))}")
write("jose", "jws-es256", f"{b64(HEADER)}.{b64(json.dumps(OIDC_CLAIMS))}.{b64(bytes(range(64)))}")
write("jose", "jwks", json.dumps({"keys": [
    {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
    {"kty": "EC", "crv": "P-256", "kid": "ec", "use": "sig", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
     "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
    {"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}]}))

# config (AgentTests): control (bit 0 clear services file, set agent configuration), then the JSON.
for index, name in enumerate(["services", "agent"]):
    write("config", name, bytes([index]) + (REPO / "examples" / "config" / f"{name}.json").read_bytes())
write("config", "services-basic", b"\x00" + json.dumps({"services": [{
    "type": "jenkins", "name": "ci", "url": "http://127.0.0.1:8080/base",
    "credentials": {"basicAuth": {"username": "u", "password": "p"}}, "maxIdleConnections": 0}]}).encode())

# controller-config (ControllerTests): the controller's --config JSON, no control byte.
write("controller-config", "controller", (REPO / "examples" / "config" / "controller.json").read_bytes())
write("controller-config", "controller-minimal", json.dumps({
    "caCertFile": "ca.crt", "caKeyFile": "ca.key", "serverCertFile": "s.crt", "serverKeyFile": "s.key",
    "serviceListen": "[::1]:0", "pingIntervalSeconds": 0.5}).encode())

# HTTP/2: control (see HTTP2FuzzHarness), then frames. HPACK: indexed static entries and literals, no Huffman.
def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    return b"\x00" + bytes([len(name)]) + name.encode() + bytes([len(value)]) + value.encode()


DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WINDOW, CONTINUATION = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED = 1, 1, 4, 8
settings = frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 65535) + struct.pack(">HI", 3, 100))
settings_ack = frame(SETTINGS, ACK, 0)
get = b"\x82\x84\x87" + literal(":authority", "a")
post = b"\x83\x84\x87" + literal(":authority", "a") + literal("content-length", "5")
server_streams = {
    "get": settings + settings_ack + frame(HEADERS, END_HEADERS | END_STREAM, 1, get),
    "post": settings + frame(HEADERS, END_HEADERS, 1, post) + frame(DATA, 0, 1, b"hel")
    + frame(DATA, END_STREAM, 1, b"lo") + frame(WINDOW, 0, 0, struct.pack(">I", 1000)),
    "continuation-reset": settings + frame(HEADERS, 0, 3, get[:2]) + frame(CONTINUATION, END_HEADERS, 3, get[2:])
    + frame(RST, 0, 3, struct.pack(">I", 8)) + frame(PING, 0, 0, b"12345678")
    + frame(GOAWAY, 0, 0, struct.pack(">II", 3, 0)),
    "padded-priority-trailers": settings + frame(PRIORITY, 0, 1, struct.pack(">IB", 0, 15))
    + frame(HEADERS, END_HEADERS | PADDED, 1, b"\x02" + post + b"\x00\x00")
    + frame(DATA, PADDED, 1, b"\x01hello\x00") + frame(HEADERS, END_HEADERS | END_STREAM, 1, literal("x-t", "1")),
}
for name, frames in server_streams.items():
    write("http2-server", name, b"\x00" + frames)
write("http2-server", "bytewise-get", b"\x01" + server_streams["get"])
response = b"\x88" + literal("content-type", "text/plain")
client_streams = {
    "responses": settings + settings_ack + frame(HEADERS, END_HEADERS, 1, response) + frame(DATA, 0, 1, b"body")
    + frame(DATA, END_STREAM, 1, b"!") + frame(HEADERS, END_HEADERS | END_STREAM, 3, b"\x8d"),
    "interim-trailers": settings + frame(HEADERS, END_HEADERS, 1, literal(":status", "100"))
    + frame(HEADERS, END_HEADERS, 1, response) + frame(HEADERS, END_HEADERS | END_STREAM, 1, literal("grpc-status", "0")),
    "reset-goaway": settings + frame(RST, 0, 3, struct.pack(">I", 7)) + frame(PING, ACK, 0, struct.pack(">Q", 42))
    + frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0) + b"bye"),
    "push": settings + frame(PUSH, END_HEADERS, 1, struct.pack(">I", 2) + get)
    + frame(HEADERS, END_HEADERS | END_STREAM, 2, b"\x88"),
}
for name, frames in client_streams.items():
    write("http2-client", name, b"\x00" + frames)


# websocket: the bytes as WebSocketFuzzEntry.parseUntrusted reads them; the first byte also picks the split point.
def ws(opcode, payload, fin=True, mask=None):
    head = bytes([(0x80 if fin else 0) | opcode])
    length = len(payload)
    masked = 0x80 if mask else 0
    if length < 126:
        head += bytes([masked | length])
    elif length < 65536:
        head += bytes([masked | 126]) + struct.pack(">H", length)
    else:
        head += bytes([masked | 127]) + struct.pack(">Q", length)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


KEY = b"\x01\x02\x03\x04"
write("websocket", "client-text", ws(1, b"hello", mask=KEY))
write("websocket", "client-fragments-ping", ws(1, "h\u00e9".encode(), fin=False, mask=KEY) + ws(9, b"p", mask=KEY)
      + ws(0, "llo \u20ac".encode(), mask=KEY))
write("websocket", "client-binary-126", ws(2, bytes([1]) * 130, fin=False, mask=KEY) + ws(0, b"\x02", mask=KEY))
write("websocket", "client-close", ws(8, struct.pack(">H", 1000) + b"bye", mask=KEY))
write("websocket", "server-channel-pong-close", ws(2, b"\x01hi") + ws(10, b"") + ws(8, struct.pack(">H", 1001)))
write("websocket", "server-long-text", ws(1, b"a" * 250))
write("websocket", "handshake-request", "Upgrade: websocket\nConnection: Upgrade\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n"
      "Sec-WebSocket-Protocol: v4.channel.k8s.io\n")
write("websocket", "handshake-response", "Upgrade: websocket\nConnection: Upgrade\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\n")
write("websocket", "exit-status", '{"status":"Failure","reason":"NonZeroExitCode",'
      '"details":{"causes":[{"reason":"ExitCode","message":"1"}]}}')
