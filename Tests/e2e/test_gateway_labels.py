"""Bindings that choose namespaces by label: the controller reads the namespace's labels from the cluster itself
(through the agent's tunnel) when it decides a gateway request."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from porthole import CA, KubeStandin
from test_gateway import (GatewayStack, alice, bob, gwca, gwdir, kube_services_file, pods_path,  # noqa: F401
                          shared_issuer, standin_with_pod, start_stack)

LABELLED = "team-payments-e2e"
UNLABELLED = "team-other-e2e"

POLICY = {
    "roles": {"viewer": ["view"]},
    "bindings": [
        {"name": "payments-by-label", "groups": ["oidc:developers"], "role": "viewer", "clusters": ["edge"],
         "namespaceSelector": {"matchLabels": {"team": "payments"}}},
    ],
}


@pytest.fixture(scope="module")
def labelled(gwca: CA, gwdir: Path, standin_with_pod: KubeStandin, shared_issuer) -> Iterator[GatewayStack]:
    for name, labels in ((LABELLED, {"team": "payments"}), (UNLABELLED, {"team": "other"})):
        status = standin_with_pod.call("POST", "/api/v1/namespaces", body=(
            '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"%s","labels":{"team":"%s"}}}'
            % (name, labels["team"])).encode(), headers={"Content-Type": "application/json"}).status
        assert status in (201, 409), status
    services = kube_services_file(gwdir / "labels-services.json", standin_with_pod)
    stack = start_stack("labels", gwca, shared_issuer, services, gwdir / "labels", POLICY)
    yield stack
    stack.stop()


def test_a_label_selector_binding_is_decided_with_the_clusters_namespace_labels(
        labelled: GatewayStack, standin_with_pod: KubeStandin) -> None:
    token = alice(labelled.issuer)
    allowed = labelled.kube(pods_path(LABELLED), token=token)
    assert allowed.status == 200, allowed.body
    denied = labelled.kube(pods_path(UNLABELLED), token=token)
    assert denied.status == 403, denied.body
    assert "no binding grants view" in denied.json()["message"]
    # Someone outside the binding's groups is denied even in the labelled namespace.
    assert labelled.kube(pods_path(LABELLED), token=bob(labelled.issuer)).status == 403
    # The labels came from the cluster itself, through the tunnel, and are remembered: read once per namespace.
    reads = [r for r in standin_with_pod.requests() if r["method"] == "GET"
             and r["path"] in (f"/api/v1/namespaces/{LABELLED}", f"/api/v1/namespaces/{UNLABELLED}")]
    assert sorted(r["path"] for r in reads) == sorted([f"/api/v1/namespaces/{LABELLED}",
                                                       f"/api/v1/namespaces/{UNLABELLED}"])
