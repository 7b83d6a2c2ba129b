"""``online-deployment show`` while a newer ReplicaSet crash-loops beside ready replicas
(issue 15, point 5): the old ReplicaSet's replica keeps serving and the Deployment's
``readyReplicas`` equals its ``replicas``, but the rollout is not complete (``kubectl
rollout status``: 1 old replicas are pending termination); show says so, naming the
ReplicaSet that is not ready and why."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from tests.support.fake_apiserver import TOKEN

from .conftest import NS

pytestmark = pytest.mark.e2e


def set_image(fake: Any, deployment: str, image: str) -> None:
    """What ``kubectl set image`` sends: a merge patch of the pod template's container."""
    body = {"spec": {"template": {"spec": {"containers": [{"name": "scoring", "image": image}]}}}}
    req = urllib.request.Request(
        f"{fake.url}/apis/apps/v1/namespaces/{NS}/deployments/{deployment}",
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/merge-patch+json",
        },
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def test_show_flags_a_newer_replicaset_crash_looping_beside_ready_replicas(
    kube_cli: Any,
) -> None:
    cli, fake = kube_cli
    cli("cluster attach prod --kube-context aks-prod --namespace ml")
    cli("model create --name sklearn-demo --path ./model")
    cli("online-endpoint create -f k8s-endpoint.yml")
    cli("online-deployment create -f blue.yml --all-traffic")
    show = "online-deployment show -e my-endpoint -n blue"
    assert cli(show).json()["error"] is None

    set_image(fake, "my-endpoint-blue", "example.com/crash:2")
    deadline = time.monotonic() + 20
    while len(fake.pods_of(NS, "my-endpoint-blue")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    dep = fake.get("deployments", NS, "my-endpoint-blue")
    assert dep["status"]["readyReplicas"] == dep["spec"]["replicas"] == 1  # looks all ready

    blue = cli(show).json()
    assert blue["ready_replicas"] == 1  # the old replica keeps serving
    error = blue["error"] or ""
    assert "rollout not complete: 1 old replicas are pending termination" in error
    assert "ReplicaSet my-endpoint-blue-" in error and "not ready" in error
    assert "CrashLoopBackOff" in error and "last exit code 3" in error
