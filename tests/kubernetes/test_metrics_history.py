"""Metrics history on Kubernetes (issue 13, point 4): the control plane scrapes the pods'
``/metrics`` (through the API server's pod proxy) and ``metrics.k8s.io`` every 10 s
whether or not anyone watches, and keeps what each step added; a restarted pod (its
counters back to zero) does not make a spike."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

NS = "ml"


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def _history(cli: Any) -> list[dict[str, Any]]:
    return cli("online-deployment metrics -e my-endpoint -n blue --window 5m").json()["points"]


def test_the_daemon_samples_the_pods_into_history(kube_cli: Any) -> None:
    cli, fake = kube_cli
    cli("cluster attach prod --kube-context aks-prod --namespace ml -o none")
    cli("model create --name sklearn-demo --path ./model -o none")
    cli("endpoint create -f k8s-endpoint.yml -o none")
    cli("online-deployment create -f blue.yml --all-traffic -o none")
    (pod,) = (p["metadata"]["name"] for p in fake.pods_of(NS, "my-endpoint-blue"))
    fake.set_usage(NS, pod, "500m", "200Mi")
    # no dashboard, no CLI call: the requests of each 10 s step are found in the history
    deadline = time.monotonic() + 90
    while True:
        fake.record_requests(NS, pod, 200, 30, 0.02)
        fake.record_requests(NS, pod, 503, 1, 0.5)
        last_record = time.time()
        time.sleep(5)
        points = [p for p in _history(cli) if p["requests"]]
        if len(points) >= 2:
            break
        assert time.monotonic() < deadline, "no history of the pods after 90 s"
    p = points[-1]
    assert p["requests"] % 31 == 0 and p["status_classes"]["5xx"] * 30 == p["status_classes"]["2xx"]
    assert p["cpu_percent"] == pytest.approx(50.0) and p["memory_mb"] == pytest.approx(200.0, 0.01)
    assert p["latency_p95_ms"] is not None and (p["replicas_ready"], p["replicas_desired"]) == (
        1,
        1,
    )
    # the container restarts: its counters start from zero again; the steps after it count
    # the new requests (from zero), not a negative step nor the old total again
    time.sleep(max(0.0, last_record + 11 - time.time()))  # those requests' step has ended
    restarted = time.time()
    fake.restart_pod(NS, pod)
    fake.record_requests(NS, pod, 200, 7, 0.02)
    deadline = time.monotonic() + 60
    while True:
        time.sleep(3)
        later = [q for q in _history(cli) if _epoch(q["time"]) > restarted]
        if any(q["requests"] for q in later):
            break
        assert time.monotonic() < deadline, "no step after the restart"
    assert [q["requests"] for q in later if q["requests"]] == [7]
