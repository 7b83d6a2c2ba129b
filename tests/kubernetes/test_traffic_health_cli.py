"""``online-endpoint update --traffic`` to a crash-looping deployment on a Kubernetes cluster
(issue 13, point 1): the fake API server's controller runs its pods into CrashLoopBackOff
(an image with ``crash`` in its name, the previous container's log ending in the init()
error); the update is refused without ``--force``, naming the deployment, READY 0/1 and
that error, and nothing reaches the HTTPRoute; with ``--force`` it is applied."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import NS

pytestmark = pytest.mark.e2e


def weights(fake: Any) -> dict[str, int]:
    route = fake.get("httproutes", NS, "my-endpoint")
    refs = route["spec"]["rules"][-1]["backendRefs"]  # header rules first, the split last
    return {r["name"]: r["weight"] for r in refs if r["weight"]}


def test_traffic_to_a_crash_looping_deployment_needs_force(kube_cli: Any) -> None:
    cli, fake = kube_cli
    cli("cluster attach prod --kube-context aks-prod --namespace ml")
    cli("model create --name sklearn-demo --path ./model")
    cli("online-endpoint create -f k8s-endpoint.yml")
    cli("online-deployment create -f blue.yml --all-traffic")
    cli("online-deployment create -f green.yml")
    cli(
        "online-deployment create -f blue.yml --name red --set environment.image=example.com/crash:2",
        ok=False,
    )
    # healthy deployments: no --force
    cli('online-endpoint update -n my-endpoint --traffic "blue=90 green=10"')

    r = cli('online-endpoint update -n my-endpoint --traffic "blue=80 green=10 red=10"', ok=False)
    assert r.code == 2, r
    assert "deployment 'red'" in r.err and "READY 0/1" in r.err, r.err
    assert "FileNotFoundError: [Errno 2] No such file or directory: 'model.pkl'" in r.err, r.err
    assert "--force" in r.err
    assert weights(fake) == {"my-endpoint-blue": 90, "my-endpoint-green": 10}

    shown = cli("online-endpoint show -n my-endpoint").json()
    red = next(d for d in shown["health"]["deployments"] if d["name"] == "red")
    assert red["ready"] == "0/1" and shown["health"]["status"] == "Healthy"

    cli('online-endpoint update -n my-endpoint --traffic "blue=80 green=10 red=10" --force')
    assert weights(fake) == {"my-endpoint-blue": 80, "my-endpoint-green": 10, "my-endpoint-red": 10}
    health = cli("online-endpoint show -n my-endpoint").json()["health"]
    assert health["status"] == "Degraded"
    assert health["reasons"][0].startswith("red: READY 0/1"), health
    # away from it: no --force
    cli('online-endpoint update -n my-endpoint --traffic "blue=100"')
    assert weights(fake) == {"my-endpoint-blue": 100}
