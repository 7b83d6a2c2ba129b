"""A progressive rollout's state on the cluster (issue 14): the annotation
``modeldeck.io/rollout`` on the endpoint's HTTPRoute, written by the control plane that
drives the rollout and read by every other operator's (``kubectl get httproute -o yaml``
shows it too)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import pytest
from modeldeck.services import audit
from modeldeck.services.api.domain import EndpointPatch, EndpointSpec, ModelSpec
from modeldeck.services.api.errors import Conflict
from modeldeck.services.api.rollouts import RolloutSpec, RolloutState
from modeldeck.services.drivers.base import RecordsRollouts
from modeldeck.services.drivers.kubernetes.progressive import ROLLOUT_ANNOTATION
from modeldeck.services.local.controlplane.rollouts import driven_by

from tests.support.daemon import home_env
from tests.support.fake_apiserver import write_kubeconfig
from tests.support.rollouts import rollout_until

from .conftest import NS
from .test_adopt import (
    EXAMPLES,
    attach,
    deployment,
    eventually,
    opened,
    start_operator,
    stop_operator,
    wait,
)


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
    "started_at": 1_800_000_000.0,
    "step_started_at": 1_800_000_060.0,
    "updated_at": 1_800_000_061.0,
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

    # another control plane never writes over a rollout in progress it does not drive (two
    # starting at once: the second's write gets 409, reads the first's and is refused)
    bob = {**STATE, "id": "r2", "driven_by": "bob@jump2:/home/bob/.modeldeck"}
    with pytest.raises(Conflict) as refused:
        await other.publish_rollout("ep", bob)
    assert "already has a rollout of green" in refused.value.message
    assert "driven by alice@jump1:/home/alice/.modeldeck" in refused.value.message
    assert _on_route(fake)["id"] == "r1"  # type: ignore[index]
    # once it has ended, the next rollout (anyone's) takes its place
    await driver.publish_rollout("ep", {**STATE, "state": "Succeeded"})
    await other.publish_rollout("ep", bob)
    assert _on_route(fake)["driven_by"] == "bob@jump2:/home/bob/.modeldeck"  # type: ignore[index]

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


# ----------------------------------------------------------------------- two operators


def _route_weights(fake: Any, endpoint: str) -> dict[str, int]:
    """The HTTPRoute's backendRefs weights as the fake API server holds them (the route's
    last rule: the weighted split; those before it pin a deployment by header)."""
    route = fake.store.get(("httproutes", NS, endpoint))
    if route is None:
        return {}
    refs = (route["spec"].get("rules") or [{}])[-1].get("backendRefs") or []
    return {r["name"].removeprefix(f"{endpoint}-"): int(r.get("weight", 1)) for r in refs}


@pytest.mark.e2e
async def test_the_weights_follow_the_steps_and_another_operator_sees_the_rollout(
    fake: Any, tmp_path: Any, tmp_path_factory: Any
) -> None:
    """Issue 14's acceptance on the fake API server: workspace A starts a rollout; the
    HTTPRoute's weights follow its steps; workspace B (its own home and daemon, attached to
    the same cluster) sees it, driven by A, and cannot start another.

    The requests the analysis needs go through the data plane the fake has: B's ``invoke
    --via api`` draws a deployment by the endpoint's weights, as the Gateway splits, and the
    API server's service proxy takes it to that deployment's pod, whose ``/metrics`` (read
    by A through the pods' proxy) counts it. (The fake has no Gateway that splits by the
    route itself.)"""
    config = write_kubeconfig(tmp_path / "kubeconfig", {"fake": (fake.url, "")}, current="fake")
    home_a, home_b = tmp_path_factory.mktemp("roa"), tmp_path_factory.mktemp("rob")
    seen: list[dict[str, int]] = []  # each distinct weight map the route had, in order
    stop = asyncio.Event()
    try:
        a = start_operator(home_a, config)
        await wait(await a.attach_cluster(attach("aks")))
        await a.create_model(ModelSpec(name="demo", path=str(EXAMPLES / "model")))
        await wait(await a.create_endpoint(EndpointSpec(name="shared", compute="aks")))
        await wait(await a.create_deployment(deployment("blue", "shared"), all_traffic=True))
        await wait(await a.create_deployment(deployment("green", "shared", code="green")))
        b = start_operator(home_b, config)
        await wait(await b.attach_cluster(attach("prod")))
        assert (await b.get_endpoint("shared")).traffic.get("blue") == 100

        async def watch_route() -> None:
            while not stop.is_set():
                now = _route_weights(fake, "shared")
                if now and (not seen or seen[-1] != now):
                    seen.append(now)
                await asyncio.sleep(0.01)

        async def load() -> None:  # the users: through B's data plane path, by the weights
            while not stop.is_set():
                await asyncio.gather(*(b.invoke("shared", b"[1]", via="api") for _ in range(4)))

        tasks = [asyncio.create_task(watch_route()), asyncio.create_task(load())]
        started = await a.start_rollout(
            RolloutSpec(endpoint="shared", to="green", steps=(20, 50, 100), interval_s=1.0,
                        min_requests=5)
        )  # fmt: skip
        with home_env(home_a):
            a_is = driven_by()
        assert started.driven_by == a_is

        # B sees A's rollout (from the route's annotation), and cannot start another
        theirs = await rollout_until(b, "shared", lambda r: r.state.active, 30, "seen by B")
        assert (theirs.id, theirs.driven_by, theirs.spec.to) == (started.id, a_is, "green")
        with pytest.raises(Conflict) as refused:
            await b.start_rollout(RolloutSpec(endpoint="shared", to="green", steps=(50, 100)))
        assert "already has a rollout of green" in refused.value.message
        assert a_is in refused.value.message

        done = await rollout_until(a, "shared", lambda r: not r.state.active, 90, "finished")
        assert done.state is RolloutState.SUCCEEDED, done.message
        # judged on the pods' own counts (their /metrics through the API server's pod proxy)
        check = done.last_check
        assert check is not None and check.verdict == "pass", check
        assert check.treatment_requests >= 5 and check.control_requests > 0, check
        stop.set()
        await asyncio.gather(*tasks)
        # the route's weights went through every step, in order, and nothing else
        greens = [w.get("green", 0) for w in seen]
        assert greens == [0, 20, 50, 100], seen
        assert all(w.get("blue", 0) + w.get("green", 0) == 100 for w in seen), seen
        # B sees how it ended, still A's
        ended = await rollout_until(b, "shared", lambda r: not r.state.active, 30, "ended for B")
        assert (ended.id, ended.state, ended.driven_by) == (
            started.id,
            RolloutState.SUCCEEDED,
            a_is,
        )

        # B's history has A's rollout, by it and driven by A, up to its verdict
        theirs_rows = [
            c for c in (await b.get_history("shared")).changes
            if c.kind == "rollout" and started.id in c.actor
        ]  # fmt: skip
        assert theirs_rows and all(
            c.actor.endswith(f"driven by {a_is} on cluster 'prod'") for c in theirs_rows
        ), theirs_rows
        assert theirs_rows[-1].changed["state"][1] == "Succeeded", theirs_rows[-1]
        # each row names its event as A's own rows do (not a pause or the verdict as a step)
        events = [c.changed["event"][1] for c in theirs_rows]
        assert events[0] == "started" and events[-1] == "promoted", events
        assert set(events) <= {"started", "step", "promoted"}, events
        assert audit.what(theirs_rows[-1]).startswith("promoted: green has 100%"), theirs_rows

        # both operators start a rollout back to blue at the same moment (their reads of the
        # route held until both have asked: each sees none in progress): one of them does,
        # the other is refused, and both see the same one
        back = RolloutSpec(endpoint="shared", to="blue", steps=(50, 100), interval_s=60.0)
        route_path = f"/namespaces/{NS}/httproutes/shared"

        def route_reads() -> int:
            return sum(
                1 for m, p, _ in list(fake.requests) if m == "GET" and p.endswith(route_path)
            )

        before = route_reads()
        release = fake.hold(route_path + "$")
        starts = asyncio.gather(
            a.start_rollout(back), b.start_rollout(back), return_exceptions=True
        )
        for _ in range(1000):  # bounded: only against a hang
            if route_reads() >= before + 2:
                break
            await asyncio.sleep(0.01)
        release()
        results = await starts
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, BaseException)]
        assert len(won) == 1 and len(lost) == 1, results
        assert isinstance(lost[0], Conflict), lost
        assert "already has a rollout of blue" in lost[0].message
        winner = won[0]
        for ws in (a, b):
            seen_by = await rollout_until(ws, "shared", lambda r: r.state.active, 30, "the winner")
            assert (seen_by.id, seen_by.driven_by) == (winner.id, winner.driven_by)
        driver_ws, other_ws = (a, b) if winner.driven_by == a_is else (b, a)

        # the other operator moves the traffic by hand (once its records have the step): the
        # driving control plane pauses the rollout, never writes over it, and both see that
        async def has_step() -> bool:
            return (await other_ws.get_endpoint("shared")).traffic.get("blue") == 50

        assert await eventually(has_step), (await other_ws.get_endpoint("shared")).traffic
        # a pause changes no traffic: the other workspace's dashboards are woken all the same
        # (its follower records the rollout's new state in its history) and see it paused
        await rollout_until(other_ws, "shared", lambda r: r.weight == 50, 30, "at 50% for both")
        rev = await other_ws.watch(None)
        await driver_ws.control_rollout("shared", "pause")

        async def pause_recorded() -> bool:
            rows = [
                c for c in (await other_ws.get_history("shared")).changes if c.kind == "rollout"
            ]
            return bool(rows) and rows[-1].changed.get("state") == ["Running", "Paused"]

        for _ in range(5):  # each turn waits for the next change (bounded: against a hang)
            woke = await asyncio.wait_for(other_ws.watch(rev, timeout=20.0), 30)
            assert woke is not None and int(woke) > int(rev or 0), "no change recorded"
            rev = woke
            if await pause_recorded():
                break
        assert await pause_recorded()
        assert (await other_ws.get_rollout("shared")).state is RolloutState.PAUSED  # type: ignore[union-attr]
        await driver_ws.control_rollout("shared", "resume")
        await rollout_until(other_ws, "shared", lambda r: r.state is RolloutState.RUNNING, 30)
        await wait(
            await other_ws.update_endpoint(
                "shared", EndpointPatch(traffic={"blue": 30, "green": 70})
            )
        )
        for ws in (driver_ws, other_ws):
            paused = await rollout_until(
                ws, "shared", lambda r: r.state is RolloutState.PAUSED, 30, "paused"
            )
            assert "changed by hand" in paused.message, paused.message
            assert "blue=30 green=70" in paused.message, paused.message
        assert _route_weights(fake, "shared") == {"blue": 30, "green": 70}
        # only its driver acts on it
        with pytest.raises(Conflict):
            await other_ws.control_rollout("shared", "abort")
        aborted = await driver_ws.control_rollout("shared", "abort")
        assert aborted.state is RolloutState.ABORTED
        # the cluster's Events have each pause once (the explicit one, the one for the change
        # by hand): the other workspace's rows came from there and are not written back
        paused_events = [
            e for (plural, _, _), e in list(fake.store.items())
            if plural == "events" and e.get("reason") == "RolloutPaused"
        ]  # fmt: skip
        assert len(paused_events) == 2, [e["message"] for e in paused_events]
    finally:
        stop.set()
        for ws in opened:
            with contextlib.suppress(Exception):
                await ws.close()
        stop_operator(home_a, config)
        stop_operator(home_b, config)


@pytest.mark.e2e
async def test_a_treatment_failing_on_the_cluster_is_rolled_back_on_the_route(
    fake: Any, tmp_path: Any, tmp_path_factory: Any
) -> None:
    """The treatment's pods start answering 500 at the first step: the next check fails it
    (its error rate from the pods' own /metrics) and the HTTPRoute's weights go back to the
    control at once, long before the step's interval ends."""
    config = write_kubeconfig(tmp_path / "kubeconfig", {"fake": (fake.url, "")}, current="fake")
    home = tmp_path_factory.mktemp("rof")
    seen: list[dict[str, int]] = []
    stop = asyncio.Event()
    try:
        a = start_operator(home, config)
        await wait(await a.attach_cluster(attach("aks")))
        await a.create_model(ModelSpec(name="demo", path=str(EXAMPLES / "model")))
        await wait(await a.create_endpoint(EndpointSpec(name="canary", compute="aks")))
        await wait(await a.create_deployment(deployment("blue", "canary"), all_traffic=True))
        await wait(await a.create_deployment(deployment("green", "canary", code="green")))
        (green_pod,) = (p["metadata"]["name"] for p in fake.pods_of(NS, "canary-green"))

        async def watch_route() -> None:
            while not stop.is_set():
                now = _route_weights(fake, "canary")
                if now and (not seen or seen[-1] != now):
                    seen.append(now)
                await asyncio.sleep(0.01)

        async def load() -> None:
            while not stop.is_set():
                await asyncio.gather(*(a.invoke("canary", b"[1]", via="api") for _ in range(4)))

        tasks = [asyncio.create_task(watch_route()), asyncio.create_task(load())]
        await a.start_rollout(
            RolloutSpec(
                endpoint="canary", to="green", steps=(50, 100), interval_s=300.0, min_requests=5
            )
        )
        await rollout_until(a, "canary", lambda r: r.weight == 50, 30, "at 50%")

        async def green_fails() -> None:  # from now on, as fast as its good answers (1 ms)
            while not stop.is_set():
                fake.record_requests(NS, green_pod, 500, 2, 0.001)
                await asyncio.sleep(0.05)

        tasks.append(asyncio.create_task(green_fails()))
        failed = await rollout_until(a, "canary", lambda r: not r.state.active, 60, "ended")
        stop.set()
        await asyncio.gather(*tasks)
        assert failed.state is RolloutState.FAILED, failed.message
        check = failed.last_check
        assert check is not None and check.verdict == "fail" and check.treatment_errors > 0
        assert "green" in failed.message and "%" in failed.message, failed.message
        assert [w.get("green", 0) for w in seen] == [0, 50, 0], seen
        assert _route_weights(fake, "canary") == {"blue": 100, "green": 0}
    finally:
        stop.set()
        for ws in opened:
            with contextlib.suppress(Exception):
                await ws.close()
        stop_operator(home, config)


def test_a_record_of_another_version_in_progress_is_not_written_over_either() -> None:
    from modeldeck.services.drivers.kubernetes.progressive import refuse_another

    held = {"state": "Paused", "driven_by": "carol@ci:/srv/md", "future_field": {"x": 1}}
    with pytest.raises(Conflict) as refused:
        refuse_another(held, {"driven_by": "me@here:/h", "spec": {"endpoint": "ep"}})
    assert refused.value.message == (
        "endpoint 'ep' already has a rollout paused, driven by carol@ci:/srv/md"
    )
    refuse_another({**held, "state": "Failed"}, {"driven_by": "me@here:/h"})  # ended: no error
    refuse_another(held, {"driven_by": "carol@ci:/srv/md"})  # its own driver: no error
