"""A progressive rollout's state on the cluster (issue 14): the annotation
``modeldeck.io/rollout`` on the endpoint's HTTPRoute, written by the control plane that
drives the rollout and read by every other operator's (``kubectl get httproute -o yaml``
shows it too)."""

from __future__ import annotations

import json
import time
from typing import Any

from modeldeck.services.drivers.base import RecordsRollouts
from modeldeck.services.drivers.kubernetes.progressive import ROLLOUT_ANNOTATION

from .conftest import NS


def _on_route(fake: Any, name: str = "ep") -> dict | None:
    route = fake.store[("httproutes", NS, name)]
    raw = (route["metadata"].get("annotations") or {}).get(ROLLOUT_ANNOTATION)
    return None if raw is None else json.loads(raw)


STATE = {
    "id": "r1",
    "spec": {
        "endpoint": "ep",
        "to": "green",
        "from_": "blue",
        "steps": [10, 50, 100],
        "webhook": "https://hooks.example.com/services/T000/B000/SECRETTOKEN?x=1",
    },
    "state": "Running",
    "step": 1,
    "weight": 50,
    "driven_by": "alice@jump1:/home/alice/.modeldeck",
    "traffic": {"blue": 50, "green": 50},
}


async def test_the_rollout_is_kept_on_the_route_where_another_operator_reads_it(
    driver: Any, make_driver: Any, fake: Any, k: Any
) -> None:
    assert isinstance(driver, RecordsRollouts)
    await driver.apply_endpoint(k.route(traffic={}))
    assert await driver.read_rollout("ep") is None

    before = time.time()
    await driver.publish_rollout("ep", STATE)
    on_cluster = _on_route(fake)
    assert on_cluster is not None
    # who drives it, where it is, the weights; the time it was written (a heartbeat)
    assert (on_cluster["driven_by"], on_cluster["state"], on_cluster["step"]) == (
        "alice@jump1:/home/alice/.modeldeck",
        "Running",
        1,
    )
    assert on_cluster["traffic"] == {"blue": 50, "green": 50}
    assert before <= on_cluster["heartbeat_at"] <= time.time()
    # the webhook's secret path never reaches the cluster, where anyone who reads routes sees it
    assert on_cluster["spec"]["webhook"] == "https://hooks.example.com/…"
    assert "SECRETTOKEN" not in json.dumps(fake.store[("httproutes", NS, "ep")])

    # another operator's control plane (its own driver on the same cluster) reads it back,
    # directly and in the state adoption follows
    other = make_driver()
    assert await other.read_rollout("ep") == on_cluster
    state = await other.list_state()
    assert state["endpoints"]["ep"]["rollout"] == on_cluster

    # a traffic change keeps the annotation, and the annotation's writes do not count as
    # someone else's traffic change (no Conflict for the driving control plane)
    await driver.apply_endpoint(k.route(traffic={}, mirror={}))
    assert _on_route(fake) == on_cluster

    # a write meanwhile (409 on the replace) is retried on the fresh route
    fault = fake.fail(r"/httproutes/ep$", 409, method="PUT", message="the object has been modified")
    await driver.publish_rollout("ep", {**STATE, "step": 2, "weight": 100})
    assert fault.hits == 1
    assert _on_route(fake)["weight"] == 100  # type: ignore[index]

    # None removes it; a route that is not there has none
    await driver.publish_rollout("ep", None)
    assert _on_route(fake) is None
    assert await other.read_rollout("ep") is None
    assert await driver.read_rollout("nope") is None
    await driver.publish_rollout("nope", STATE)  # nothing to annotate: no error, nothing made
    assert ("httproutes", NS, "nope") not in fake.store


async def test_without_the_gateway_api_there_is_no_rollout_to_read(
    fake_factory: Any, make_driver: Any, tmp_path: Any, monkeypatch: Any, k: Any
) -> None:
    fake = fake_factory(gateway_api=False)
    path = k.write_kubeconfig(tmp_path / "kc", {"fake": (fake.url, "")}, current="fake")
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert await make_driver().read_rollout("ep") is None
