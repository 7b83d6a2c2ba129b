"""The audit history on Kubernetes (issue 13): each change recorded by the control plane is
the ``modeldeck.io/last-change`` annotation of the changed object (HTTPRoute, Deployment)
and a core/v1 Event in the namespace, as ``kubectl get events`` lists them; the fake API
server checks an Event as the real one does (pkg/apis/core/validation/events.go)."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import (
    ChangeRecord,
    ClusterSpec,
    CodeConfiguration,
    DeploymentSpec,
    DriverKind,
    EndpointPatch,
    EndpointSpec,
    ModelSpec,
    Resources,
    ResourceSet,
)
from modeldeck.services.drivers.kubernetes import rbac
from modeldeck.services.drivers.kubernetes.changes import LAST_CHANGE_ANNOTATION
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.local.controlplane import daemon

from tests.support.daemon import home_env
from tests.support.fake_apiserver import write_kubeconfig

from .conftest import NS

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _events(fake: Any) -> list[dict]:
    """What ``kubectl get events -n ml`` reads: GET /api/v1/namespaces/ml/events."""
    req = urllib.request.Request(f"{fake.url}/api/v1/namespaces/{NS}/events")
    req.add_header("Authorization", f"Bearer {fake.token}")
    with urllib.request.urlopen(req) as resp:
        items = json.loads(resp.read())["items"]
    return [e for e in items if e.get("reportingComponent") == "modeldeck.io/control-plane"]


def _annotation(fake: Any, plural: str, name: str) -> dict | None:
    obj = fake.store.get((plural, NS, name))
    raw = ((obj or {}).get("metadata") or {}).get("annotations", {}).get(LAST_CHANGE_ANNOTATION)
    return json.loads(raw) if raw else None


async def test_record_change_annotates_the_object_and_posts_an_event(  # type: ignore[no-untyped-def]
    driver, fake, k
) -> None:
    await driver.apply_endpoint(k.route(traffic={}))
    await driver.apply_deployment("ep", k.runtime("blue"), k.ProgressLog())
    template = fake.store[("deployments", NS, "ep-blue")]["spec"]["template"]
    change = ChangeRecord(
        at=1_800_000_000.25,
        actor="alice@jump1 (ssh from 10.0.0.5)",
        kind="endpoint",
        target="ep",
        action="update",
        changed={"traffic.blue": [None, 100]},
        revision="12",
    )
    await driver.record_change("ep", None, change)
    note = _annotation(fake, "httproutes", "ep")
    assert note == {
        "who": "alice@jump1 (ssh from 10.0.0.5)",
        "when": "2027-01-15T08:00:00Z",
        "action": "update",
        "what": "traffic.blue (none) -> 100",
        "revision": "12",
    }
    (event,) = _events(fake)
    route = fake.store[("httproutes", NS, "ep")]
    assert event["involvedObject"] == {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "name": "ep",
        "namespace": NS,
        "uid": route["metadata"]["uid"],
    }
    assert (event["reason"], event["action"], event["type"]) == (
        "TrafficChanged",
        "Update",
        "Normal",
    )
    assert event["message"] == "alice@jump1 (ssh from 10.0.0.5): traffic.blue (none) -> 100"
    assert event["eventTime"] == "2027-01-15T08:00:00.250000Z"
    assert event["reportingInstance"] == socket.gethostname()

    scaled = ChangeRecord(
        at=1_800_000_100.0,
        actor="bob@jump2",
        kind="deployment",
        target="ep/blue",
        action="update",
        changed={"instance_count": [1, 3]},
        revision="13",
    )
    await driver.record_change("ep", "blue", scaled)
    assert _annotation(fake, "deployments", "ep-blue")["what"] == "instance_count 1 -> 3"  # type: ignore[index]
    dep = fake.store[("deployments", NS, "ep-blue")]
    assert dep["spec"]["template"] == template  # the pods are not restarted
    # the next apply (server-side, field manager modeldeck) keeps the annotation
    await driver.apply_deployment("ep", k.runtime("blue", instance_count=2), k.ProgressLog())
    assert _annotation(fake, "deployments", "ep-blue")["revision"] == "13"  # type: ignore[index]
    events = _events(fake)
    assert [(e["involvedObject"]["kind"], e["reason"]) for e in events] == [
        ("HTTPRoute", "TrafficChanged"),
        ("Deployment", "Updated"),
    ]
    assert events[1]["metadata"]["labels"] == {
        "modeldeck.io/endpoint": "ep",
        "modeldeck.io/deployment": "blue",
    }

    # a deleted object: the Event only
    gone = ChangeRecord(
        at=1_800_000_200.0, actor="bob@jump2", kind="deployment", target="ep/green",
        action="delete", changed={"instance_count": [1, None]}, revision="14",
    )  # fmt: skip
    await driver.record_change("ep", "green", gone)
    last = _events(fake)[-1]
    assert (last["reason"], last["involvedObject"]["name"]) == ("Deleted", "ep-green")
    assert "uid" not in last["involvedObject"]
    assert fake.invalid == []


def test_the_driver_needs_to_create_events() -> None:
    needs = {(n.group, n.resource, v) for n in rbac.NEEDS for v in n.verbs}
    assert ("", "events", "create") in needs
    (need,) = [n for n in rbac.NEEDS if n.resource == "events" and "create" in n.verbs]
    assert need.optional  # attach is not refused without it: Events are a view of the history
    role = rbac.role_manifests("ml")[0] if hasattr(rbac, "role_manifests") else None
    if role is not None:
        rules = [r for r in role["rules"] if "events" in r["resources"]]
        assert any("create" in r["verbs"] for r in rules)


def test_the_fake_refuses_an_event_the_api_server_would(fake, k) -> None:  # type: ignore[no-untyped-def]
    def post(event: dict) -> int:
        req = urllib.request.Request(
            f"{fake.url}/api/v1/namespaces/{NS}/events",
            data=json.dumps(event).encode(),
            method="POST",
        )
        req.add_header("Authorization", f"Bearer {fake.token}")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status
        except urllib.error.HTTPError as err:
            return err.code

    good = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "ep.1", "namespace": NS},
        "involvedObject": {"kind": "HTTPRoute", "name": "ep", "namespace": NS},
        "reason": "Updated",
        "action": "Update",
        "eventTime": "2027-01-15T08:00:00.000000Z",
        "reportingComponent": "modeldeck.io/control-plane",
        "reportingInstance": "host",
        "type": "Normal",
    }
    assert post(good) == 201
    other_ns = {
        **good,
        "metadata": {"name": "ep.2"},
        "involvedObject": {"kind": "X", "name": "a", "namespace": "elsewhere"},
    }
    assert post(other_ns) == 422
    no_action = {k_: v for k_, v in good.items() if k_ != "action"} | {"metadata": {"name": "ep.3"}}
    assert post(no_action) == 422
    assert any("action: Required value" in why for why in fake.invalid)
    fake.invalid.clear()


# ----------------------------------------------------------------------- through the daemon


@contextlib.contextmanager
def _operator(home: Path, kubeconfig: Path) -> Iterator[None]:
    with home_env(home, KUBECONFIG=str(kubeconfig)):
        yield


async def test_changes_made_through_the_daemon_reach_the_cluster(  # type: ignore[no-untyped-def]
    fake, tmp_path_factory
) -> None:
    home = tmp_path_factory.mktemp("mdaud")
    config = write_kubeconfig(home / "kubeconfig", {"fake": (fake.url, "")}, current="fake")
    with _operator(home, config):
        daemon.ensure_daemon()
        try:
            async with LocalWorkspace(autostart=False, poll_interval=0.05) as ws:
                spec = ClusterSpec(
                    name="aks", driver=DriverKind.KUBERNETES, kube_context="fake", namespace=NS
                )
                await asyncio.wait_for((await ws.attach_cluster(spec)).wait(), 60)
                await ws.create_model(ModelSpec(name="demo", path=str(EXAMPLES / "model")))
                await asyncio.wait_for(
                    (await ws.create_endpoint(EndpointSpec(name="aud", compute="aks"))).wait(), 60
                )
                dep = DeploymentSpec(
                    name="blue",
                    endpoint_name="aud",
                    model="azureml:demo:1",
                    code_configuration=CodeConfiguration(
                        code=str(EXAMPLES / "blue"), scoring_script="score.py"
                    ),
                    instance_count=1,
                    resources=Resources(requests=ResourceSet(cpu=0.5, memory_gb=0.5)),
                )
                await asyncio.wait_for((await ws.create_deployment(dep)).wait(), 90)
                await asyncio.wait_for(
                    (await ws.update_endpoint("aud", EndpointPatch(traffic={"blue": 100}))).wait(),
                    60,
                )
                me = f"{getpass.getuser()}@{socket.gethostname()}"
                for _ in range(200):
                    note = _annotation(fake, "httproutes", "aud")
                    if note and note["what"] == "traffic.blue (none) -> 100":
                        break
                    await asyncio.sleep(0.05)
                assert note is not None and note["who"] == me, note
                assert note["what"] == "traffic.blue (none) -> 100"
                history = await ws.get_history("aud")
                assert note["revision"] == history.changes[-1].revision
                reasons = [(e["involvedObject"]["kind"], e["reason"]) for e in _events(fake)]
                assert ("HTTPRoute", "TrafficChanged") in reasons, reasons
                assert ("Deployment", "Created") in reasons, reasons
                assert all(e["message"].startswith(me) for e in _events(fake))
        finally:
            daemon.stop_daemon(timeout=20.0)


def test_a_rollout_s_steps_and_events_have_reasons_of_their_own() -> None:
    """Issue 14: `kubectl get events` tells a rollout's traffic step and its events apart
    from an operator's change (RolloutStep, RolloutStarted, RolloutFailed, ...)."""
    from modeldeck.services.drivers.kubernetes.changes import reason_of

    def change(kind: str, changed: dict[str, Any]) -> ChangeRecord:
        return ChangeRecord(
            at=1.0, actor="rollout r1 of ep", kind=kind, target="ep", action="rollout",
            changed=changed,
        )  # fmt: skip

    step = change("endpoint", {"traffic.blue": [100, 90], "traffic.green": [0, 10]})
    assert reason_of(step) == ("RolloutStep", "Rollout")
    for event, reason in (("started", "RolloutStarted"), ("failed", "RolloutFailed")):
        assert reason_of(change("rollout", {"event": [None, event]})) == (reason, "Rollout")
