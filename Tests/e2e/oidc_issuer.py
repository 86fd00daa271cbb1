"""TEST FIXTURE — a local OpenID Connect issuer over HTTPS for the gateway end-to-end tests. Not an IdP.

It runs in the test process (stdlib `http.server` + `ssl` in a thread) with its own CA made with `cryptography`, and
serves what a verifier fetches:

    GET /.well-known/openid-configuration     {"issuer": URL, "jwks_uri": URL/jwks, ...}
    GET /jwks                                 the published keys (RSA 2048, EC P-256, Ed25519 at start)

Tests steer it: `add_key` (published or not: a kid the verifier has never seen), `publish`/`unpublish` (rotation),
`down = True` (the JWKS answers 503), and read `jwks_fetches` (a count, with times and User-Agents). Tokens are
minted with PyJWT — an implementation independent of Porthole's — and every minted or crafted token string is
remembered in `MINTED` so a test can grep logs for them.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Every token string minted or crafted in this process (tests grep logs and audit files for them).
MINTED: list[str] = []

ALGORITHM_KTY = {"RS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(value: int, size: int | None = None) -> bytes:
    return value.to_bytes(size or (value.bit_length() + 7) // 8, "big")


@dataclass
class SigningKey:
    kid: str
    algorithm: str  # RS256, ES256 or EdDSA
    private: object

    @property
    def public(self):
        return self.private.public_key()

    def jwk(self) -> dict:
        numbers_key = self.public
        if self.algorithm == "RS256":
            numbers = numbers_key.public_numbers()
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": b64url(_int_bytes(numbers.n)),
                    "e": b64url(_int_bytes(numbers.e))}
        if self.algorithm == "ES256":
            numbers = numbers_key.public_numbers()
            return {"kty": "EC", "kid": self.kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                    "x": b64url(_int_bytes(numbers.x, 32)), "y": b64url(_int_bytes(numbers.y, 32))}
        raw = numbers_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "kid": self.kid, "use": "sig", "alg": "EdDSA", "crv": "Ed25519", "x": b64url(raw)}

    def public_pem(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)


def generate_key(algorithm: str, kid: str | None = None) -> SigningKey:
    if algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"unsupported algorithm {algorithm}")
    return SigningKey(kid or f"{algorithm.lower()}-{secrets.token_hex(4)}", algorithm, private)


def make_tls_files(directory: Path, common_name: str) -> tuple[Path, Path, Path]:
    """Its own CA (ca.crt) and a serving certificate for 127.0.0.1 / localhost (tls.crt, tls.key)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} CA")])
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
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (directory / "ca.crt").write_bytes(ca_cert.public_bytes(pem))
    (directory / "tls.crt").write_bytes(cert.public_bytes(pem))
    (directory / "tls.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    (directory / "tls.key").chmod(0o600)
    return directory / "ca.crt", directory / "tls.crt", directory / "tls.key"


@dataclass
class Fetch:
    time: float
    path: str
    status: int
    user_agent: str


class OIDCIssuer:
    """The issuer `https://127.0.0.1:PORT`, serving discovery and JWKS until `stop()`."""

    def __init__(self, directory: Path, audience: str = "porthole", host: str = "127.0.0.1") -> None:
        """`host` is the issuer URL's host (the server listens on 127.0.0.1; `localhost` resolves to it)."""
        self.ca_cert, cert, key = make_tls_files(directory, "oidc-issuer")
        self.audience = audience
        self.keys: dict[str, SigningKey] = {}
        self.published: list[str] = []
        self.down = False
        self.fetches: list[Fetch] = []
        self._lock = threading.Lock()
        for algorithm in ("RS256", "ES256", "EdDSA"):
            self.add_key(algorithm)
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet: the tests count instead
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                status, body = issuer._answer(path)
                with issuer._lock:
                    issuer.fetches.append(Fetch(time.monotonic(), path, status, self.headers.get("User-Agent", "")))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.url = f"https://{host}:{self.port}"
        self.jwks_url = f"{self.url}/jwks"
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-issuer", daemon=True)
        self._thread.start()

    # -- serving --------------------------------------------------------------------------------------------------

    def _answer(self, path: str) -> tuple[int, object]:
        if path == "/.well-known/openid-configuration":
            return 200, {"issuer": self.url, "jwks_uri": self.jwks_url, "authorization_endpoint": f"{self.url}/auth",
                         "token_endpoint": f"{self.url}/token", "response_types_supported": ["code"],
                         "subject_types_supported": ["public"],
                         "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"]}
        if path == "/jwks":
            if self.down:
                return 503, {"error": "temporarily unavailable"}
            with self._lock:
                return 200, {"keys": [self.keys[kid].jwk() for kid in self.published]}
        return 404, {"error": "not found"}

    def jwks_fetches(self) -> list[Fetch]:
        with self._lock:
            return [fetch for fetch in self.fetches if fetch.path == "/jwks"]

    def jwks_fetch_count(self) -> int:
        return len(self.jwks_fetches())

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # -- keys -----------------------------------------------------------------------------------------------------

    def add_key(self, algorithm: str, publish: bool = True, kid: str | None = None) -> SigningKey:
        key = generate_key(algorithm, kid)
        with self._lock:
            self.keys[key.kid] = key
            if publish:
                self.published.append(key.kid)
        return key

    def publish(self, kid: str) -> None:
        with self._lock:
            if kid not in self.published:
                self.published.append(kid)

    def unpublish(self, kid: str) -> None:
        with self._lock:
            self.published.remove(kid)

    def key_for(self, algorithm: str) -> SigningKey:
        """The first published key of that algorithm."""
        with self._lock:
            return next(self.keys[kid] for kid in self.published if self.keys[kid].algorithm == algorithm)

    # -- tokens ---------------------------------------------------------------------------------------------------

    def claims(self, username: str = "alice@example.com", groups: list[str] | None = None, ttl: int = 600,
               **changes: object) -> dict:
        now = int(time.time())
        subject = hashlib.sha256(username.encode()).hexdigest()[:16]
        claims: dict = {"iss": self.url, "aud": self.audience, "sub": subject,
                        "email": username, "groups": groups if groups is not None else [], "iat": now,
                        "exp": now + ttl, "jti": secrets.token_hex(8)}
        for name, value in changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def mint(self, username: str = "alice@example.com", groups: list[str] | None = None, algorithm: str = "RS256",
             key: SigningKey | None = None, header: dict | None = None, ttl: int = 600, **changes: object) -> str:
        """A token signed by PyJWT with `key` (default: the first published key of `algorithm`)."""
        key = key or self.key_for(algorithm)
        headers = {"kid": key.kid, "typ": "JWT", **(header or {})}
        token = jwt.encode(self.claims(username, groups, ttl, **changes), key.private, algorithm=key.algorithm,
                           headers=headers)
        MINTED.append(token)
        return token

    def craft(self, header: dict, claims: dict, signature: bytes | None = None,
              sign: object | None = None) -> str:
        """A token PyJWT refuses to make: any header, and a signature computed by `sign(signing_input)` or given."""
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        if sign is not None:
            signature = sign(signing_input.encode())
        token = f"{signing_input}.{b64url(signature or b'')}"
        MINTED.append(token)
        return token

    def unsigned(self, username: str = "alice@example.com", groups: list[str] | None = None) -> str:
        """`alg: none` with an empty signature."""
        return self.craft({"alg": "none", "typ": "JWT"}, self.claims(username, groups))

    def hs256_with_public_key(self, username: str = "alice@example.com", groups: list[str] | None = None) -> str:
        """The classic key-confusion attack: HS256 whose HMAC key is the RSA key's public PEM, with its kid."""
        key = self.key_for("RS256")
        secret = key.public_pem()
        return self.craft({"alg": "HS256", "typ": "JWT", "kid": key.kid}, self.claims(username, groups),
                          sign=lambda data: hmac.new(secret, data, hashlib.sha256).digest())

    def rs256_on_ec_key(self, username: str = "alice@example.com", groups: list[str] | None = None) -> str:
        """Header `alg: RS256` with the kid of the published EC key, signed with some RSA key."""
        ec_key = self.key_for("ES256")
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self.craft({"alg": "RS256", "typ": "JWT", "kid": ec_key.kid}, self.claims(username, groups),
                          sign=lambda data: rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256()))

    def signed_by_another_key(self, username: str = "alice@example.com", groups: list[str] | None = None,
                              algorithm: str = "ES256") -> str:
        """The kid of a published key, signed by a key the issuer never published."""
        published = self.key_for(algorithm)
        impostor = SigningKey(published.kid, algorithm, generate_key(algorithm).private)
        return self.mint(username, groups, key=impostor)


if __name__ == "__main__":  # a quick manual check: python3 oidc_issuer.py DIR
    import sys

    issuer = OIDCIssuer(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/oidc-issuer"))
    print(json.dumps({"issuer": issuer.url, "ca": str(issuer.ca_cert), "token": issuer.mint(groups=["dev"])}))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        issuer.stop()
