"""The service and control listeners refuse what they must, with the status and JSON error the contract names.

Certificates make-ca cannot produce (expired, foreign CA, arbitrary identities) are minted here with `cryptography`;
`test_minted_certificate_is_accepted` proves the minting itself is sound, so a refusal means what it says.
"""

from __future__ import annotations

import datetime
import http.client
import ssl
import time
from pathlib import Path

import pytest

import porthole
from porthole import AGENT_NAME, TRUST_DOMAIN, Response, Stack, client_context, https_request

KUBERNETES_DEFAULT = f"spiffe://{TRUST_DOMAIN}/kubernetes/{AGENT_NAME}/default"

# What a TLS-level refusal looks like to a client: with TLS 1.3 the server's verdict on the client certificate
# arrives as an alert on the first read, or the connection is simply closed.
TLS_REFUSALS = (ssl.SSLError, ConnectionError, http.client.BadStatusLine, EOFError)


def attempt(address: str, context: ssl.SSLContext, path: str = "/", token: str | None = None) -> Response | Exception:
    """One request; a TLS-level refusal is returned, not raised."""
    try:
        return https_request(address, context, "GET", path, token=token, timeout=10)
    except TLS_REFUSALS as error:
        return error


def describe(outcome: Response | Exception) -> str:
    if isinstance(outcome, Response):
        return f"HTTP {outcome.status} {outcome.body[:300]!r}"
    return repr(outcome)


def mint(stack: Stack, tmp_path: Path, uri: str, name: str, **validity: datetime.datetime) -> ssl.SSLContext:
    cert, key = porthole.mint_certificate(stack.ca.cert, stack.ca.key, uri, "e2e-minted", tmp_path, name, **validity)
    return client_context(stack.ca, cert, key)


def service_call(stack: Stack, context: ssl.SSLContext | None = None, token: str | None = None,
                 path: str = "/") -> Response:
    return https_request(stack.service_address, context or client_context(stack.ca), "GET", path, token=token,
                         timeout=10)


# -- bearer tokens ------------------------------------------------------------------------------------------------


def test_no_credentials_is_401_with_json_error(stack: Stack) -> None:
    response = service_call(stack)
    assert response.status == 401, response.body
    response.error()


def test_malformed_bearer_token_is_401(stack: Stack) -> None:
    response = service_call(stack, token="not-a-jwt")
    assert response.status == 401, response.body
    response.error()


def test_token_signed_by_another_key_is_401(stack: Stack) -> None:
    forged = porthole.resign_jwt_with_foreign_key(stack.token)
    response = service_call(stack, token=forged)
    assert response.status == 401, response.body
    response.error()


def test_tampered_token_is_401(stack: Stack) -> None:
    _, claims = porthole.jwt_parts(stack.token)
    later = int(claims.get("exp", time.time())) + 365 * 24 * 3600
    tampered = porthole.with_original_signature(stack.token, {"exp": later, "sub": "someone-else"})
    response = service_call(stack, token=tampered)
    assert response.status == 401, response.body
    response.error()


def test_expired_token_is_401(stack: Stack) -> None:
    ttl = 2
    issued = stack.control.service_token(ttl=ttl)
    assert service_call(stack, token=issued["token"]).status == 200, "a fresh short-lived token should work"
    expired = porthole.wait_until(lambda: (r := service_call(stack, token=issued["token"])).status == 401 and r,
                                  ttl + 15, "the token to expire", interval=0.25)
    expired.error()


def test_token_for_a_service_the_agent_lacks_is_404_naming_it(stack: Stack) -> None:
    token = stack.control.service_token(service="other")["token"]
    response = service_call(stack, token=token)
    assert response.status == 404, response.body
    assert "other" in response.error()


def test_token_for_an_agent_that_is_not_connected_is_503_naming_it(stack: Stack) -> None:
    token = stack.control.service_token(agent="nobody")["token"]
    response = service_call(stack, token=token)
    assert response.status == 503, response.body
    assert "nobody" in response.error()


# -- client certificates on the service listener ------------------------------------------------------------------


def test_minted_certificate_is_accepted(stack: Stack, tmp_path: Path) -> None:
    response = service_call(stack, mint(stack, tmp_path, KUBERNETES_DEFAULT, "valid"), path="/headers")
    assert response.status == 200, response.body
    assert response.json()["headers"]["authorization"] == f"Bearer {stack.backend.token}"


def test_certificate_for_an_agent_that_is_not_connected_is_503(stack: Stack, tmp_path: Path) -> None:
    context = mint(stack, tmp_path, f"spiffe://{TRUST_DOMAIN}/kubernetes/nobody/default", "nobody")
    response = service_call(stack, context)
    assert response.status == 503, response.body
    assert "nobody" in response.error()


def test_certificate_for_a_service_the_agent_lacks_is_404(stack: Stack, tmp_path: Path) -> None:
    context = mint(stack, tmp_path, f"spiffe://{TRUST_DOMAIN}/kubernetes/{AGENT_NAME}/other", "other")
    response = service_call(stack, context)
    assert response.status == 404, response.body
    assert "other" in response.error()


def test_expired_certificate_is_refused(stack: Stack, tmp_path: Path) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    context = mint(stack, tmp_path, KUBERNETES_DEFAULT, "expired",
                   not_before=now - datetime.timedelta(days=2), not_after=now - datetime.timedelta(days=1))
    outcome = attempt(stack.service_address, context)
    if isinstance(outcome, Response):
        assert outcome.status == 401, describe(outcome)
        outcome.error()


def test_certificate_from_another_ca_fails_the_handshake(stack: Stack, tmp_path: Path) -> None:
    other_cert, other_key = porthole.mint_self_signed_ca(tmp_path)
    cert, key = porthole.mint_certificate(other_cert, other_key, KUBERNETES_DEFAULT, "intruder", tmp_path, "foreign")
    outcome = attempt(stack.service_address, client_context(stack.ca, cert, key))
    assert isinstance(outcome, Exception), f"a foreign CA's certificate was not refused in TLS: {describe(outcome)}"


@pytest.mark.parametrize("holder", ["agent", "control"])
def test_certificate_for_another_endpoint_type_is_refused_on_service_listener(stack: Stack, holder: str) -> None:
    cert, key = ((stack.ca.agent_cert(), stack.ca.agent_key()) if holder == "agent"
                 else (stack.ca.control_cert, stack.ca.control_key))
    outcome = attempt(stack.service_address, client_context(stack.ca, cert, key))
    if isinstance(outcome, Response):
        assert outcome.status == 403, describe(outcome)
        outcome.error()


# -- the control listener -----------------------------------------------------------------------------------------


def test_control_listener_refuses_service_certificate(stack: Stack) -> None:
    context = client_context(stack.ca, stack.kubeconfig.cert, stack.kubeconfig.key)
    outcome = attempt(stack.controller.addresses["control"], context, "/api/v1/agents")
    if isinstance(outcome, Response):
        assert outcome.status in (401, 403), describe(outcome)
        outcome.error()


def test_control_listener_refuses_no_certificate(stack: Stack) -> None:
    outcome = attempt(stack.controller.addresses["control"], client_context(stack.ca), "/api/v1/agents")
    if isinstance(outcome, Response):
        assert outcome.status in (401, 403), describe(outcome)
        outcome.error()


def test_control_api_lists_the_connected_agent(stack: Stack) -> None:
    """The positive control for the two refusals above."""
    agents = {entry["name"]: entry for entry in stack.control.agents()}
    assert AGENT_NAME in agents, agents
    assert len(agents[AGENT_NAME]["sessions"]) == 1
    assert {"type": "kubernetes", "name": "default"}.items() <= agents[AGENT_NAME]["services"][0].items()
