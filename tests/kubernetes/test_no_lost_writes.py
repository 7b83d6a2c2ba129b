"""Two control planes (two operators' modeldeck) writing one cluster: no write is lost.

Each driver stands for one operator's workspace. Before a change, an operator's records
are what its workspace last read from the cluster (``list_state``); the change is made
on them and handed to the driver with the records as they were (``base``), as the
engine does. Whatever the interleaving, a change either lands (merged with the other
operator's change to other fields) or is refused with Conflict: never reported done
and then missing from the cluster.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from modeldeck.services.api.domain import DeploymentSpec, from_dict
from modeldeck.services.api.errors import Conflict
from modeldeck.services.drivers.base import DeploymentRuntime, EndpointAuth, EndpointRoute
from modeldeck.services.drivers.kubernetes import concurrency as cc
from modeldeck.services.drivers.kubernetes.driver import KubernetesDriver

NS = "ml"
ROUNDS = 50


async def records(driver: KubernetesDriver, endpoint: str = "ep") -> EndpointRoute:
    """The endpoint as this operator's workspace has it after reading the cluster."""
    info = (await driver.list_state(secrets=True))["endpoints"][endpoint]
    return EndpointRoute(
        name=endpoint,
        auth=EndpointAuth(
            mode=info["auth_mode"],
            primary_key=info["primary_key"],
            secondary_key=info["secondary_key"],
            token_secret=info["token_secret"],
        ),
        traffic=info["traffic"],
        mirror_traffic=info["mirror_traffic"],
        description=info["description"],
        tags=info["tags"],
    )


async def spec_records(driver: KubernetesDriver, name: str) -> DeploymentSpec:
    state = await driver.list_state()
    found = next(d for d in state["deployments"] if d["name"] == name)
    return from_dict(DeploymentSpec, found["spec"])


def change(rec: EndpointRoute, **fields: Any) -> EndpointRoute:
    return replace(rec, base=rec, **fields)


async def two_operators(make_driver: Any, k: Any) -> tuple[KubernetesDriver, KubernetesDriver]:
    a, b = make_driver(), make_driver()
    await a.apply_endpoint(k.route())
    for name in ("blue", "green"):
        await a.apply_deployment("ep", k.runtime(name), k.ProgressLog())
    await a.apply_endpoint(k.route(traffic={"blue": 100}))
    return a, b


def live(fake: Any) -> dict[str, Any]:
    """What the cluster holds now (read from the API server's store): the endpoint's
    fields over those of its deployment 'blue' (both have a description and tags)."""
    route = cc.route_fields(fake.get("httproutes", NS, "ep"))
    secret = cc.secret_fields(fake.get("secrets", NS, "ep-keys"))
    dep = cc.deployment_fields(fake.get("deployments", NS, "ep-blue"))
    return {**dep, **route, **secret}


async def test_concurrent_traffic_updates_one_wins_the_other_is_refused(
    kubeconfig: Any, fake: Any, make_driver: Any, k: Any
) -> None:
    a, b = await two_operators(make_driver, k)
    rec_a, rec_b = await records(a), await records(b)
    wanted = {"a": {"blue": 90, "green": 10}, "b": {"blue": 50, "green": 50}}
    results = await asyncio.gather(
        a.apply_endpoint(change(rec_a, traffic=wanted["a"])),
        b.apply_endpoint(change(rec_b, traffic=wanted["b"])),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(refused) == 1 and results.count(None) == 1, results
    winner = "a" if results[0] is None else "b"
    assert live(fake)["traffic"] == wanted[winner]
    err = refused[0]
    # names what changed, who changed it, and the new live map (for the dashboard)
    assert err.details["fields"] == ["traffic"]
    assert err.details["changed"]["traffic.blue"] == [100, wanted[winner]["blue"]]
    assert err.details["changed_by"] == err.details["by"] == cc.who()
    assert err.details["current"] == {"traffic": wanted[winner]}
    assert err.details["object"] == "HTTPRoute/ep"
    assert "traffic" in err.message and cc.who() in err.message
    assert "online-endpoint show -n ep" in (err.fix or "")


async def test_a_stale_key_regeneration_is_refused_and_keys_never_shown(
    kubeconfig: Any, fake: Any, make_driver: Any, k: Any
) -> None:
    a, b = await two_operators(make_driver, k)
    rec_a, rec_b = await records(a), await records(b)
    await a.apply_endpoint(change(rec_a, auth=replace(rec_a.auth, primary_key="new-" + "c" * 40)))
    try:
        await b.apply_endpoint(
            change(rec_b, auth=replace(rec_b.auth, primary_key="other-" + "d" * 40))
        )
    except Conflict as exc:
        assert exc.details["fields"] == ["primary_key"]
        assert exc.details["changed"] == {"primary_key": ["(hidden)", "(hidden, changed)"]}
        assert "c" * 40 not in str(exc.to_dict()) and "d" * 40 not in str(exc.to_dict())
    else:
        raise AssertionError("the stale key regeneration was applied")
    assert live(fake)["primary_key"] == "new-" + "c" * 40


async def test_without_a_base_the_driver_checks_against_what_it_last_knew(
    kubeconfig: Any, fake: Any, make_driver: Any, k: Any
) -> None:
    """An engine that passes no ``base``: the driver's own view is the base."""
    a, b = await two_operators(make_driver, k)
    rec_b = await records(b)  # b's workspace read the cluster
    rec_a = await records(a)
    await a.apply_endpoint(replace(rec_a, traffic={"blue": 70, "green": 30}))
    try:
        await b.apply_endpoint(replace(rec_b, traffic={"blue": 20, "green": 80}))
    except Conflict as exc:
        assert exc.details["fields"] == ["traffic"]
    else:
        raise AssertionError("a stale traffic map overwrote the live one")
    # b's unchanged (stale) traffic map next to a description change: the live map stays
    await b.apply_endpoint(replace(rec_b, description="owned by team b"))
    assert live(fake)["traffic"] == {"blue": 70, "green": 30}
    assert live(fake)["description"] == "owned by team b"


async def test_deployment_fields_merge_and_the_same_field_is_refused(
    kubeconfig: Any, fake: Any, make_driver: Any, k: Any, examples: Any
) -> None:
    a, b = await two_operators(make_driver, k)
    spec_a, spec_b = await spec_records(a, "blue"), await spec_records(b, "blue")
    model = k.runtime("blue").model
    code = k.runtime("blue").code_dir

    def rt(spec: DeploymentSpec, base: DeploymentSpec) -> DeploymentRuntime:
        return DeploymentRuntime(spec=spec, model=model, code_dir=code, base=base)

    await a.apply_deployment("ep", rt(replace(spec_a, instance_count=2), spec_a), k.ProgressLog())
    env = {"MODE": "b"}
    await b.apply_deployment(
        "ep", rt(replace(spec_b, environment_variables=env), spec_b), k.ProgressLog()
    )
    now = live(fake)
    assert (now["instance_count"], now["environment_variables"]) == (2, env)
    assert fake.get("deployments", NS, "ep-blue")["spec"]["replicas"] == 2
    try:  # b's records still say 1 instance: b asking for 3 is refused
        await b.apply_deployment(
            "ep", rt(replace(spec_b, instance_count=3), spec_b), k.ProgressLog()
        )
    except Conflict as exc:
        assert exc.details["fields"] == ["instance_count"]
        assert exc.details["object"] == "Deployment/ep-blue"
    else:
        raise AssertionError("a stale instance_count was applied")
    assert live(fake)["instance_count"] == 2


async def test_no_lost_updates_in_50_concurrent_rounds(
    kubeconfig: Any, fake: Any, make_driver: Any, k: Any
) -> None:
    """Each round both operators read, change one field each and write at once. Rounds
    whose fields differ must both land (merged); rounds on the same field (traffic) must
    land one and refuse the other with Conflict. Lost: reported done, missing after."""
    a, b = await two_operators(make_driver, k)
    model, code = k.runtime("blue").model, k.runtime("blue").code_dir
    lost = refused = merged_rounds = 0
    for r in range(ROUNDS):
        kind = r % 5
        rec_a, rec_b = await records(a), await records(b)
        traffic_a = {"blue": 99 - r % 90, "green": 1 + r % 90}
        traffic_b = {"blue": 1 + r % 90, "green": 99 - r % 90}
        expect: list[tuple[str, str, Any]] = []  # (who, field, value)
        if kind == 4:  # one Deployment, two fields
            spec_a, spec_b = await spec_records(a, "blue"), await spec_records(b, "blue")
            count, env = 1 + r % 2, {"ROUND": str(r)}
            ops = [
                a.apply_deployment(
                    "ep",
                    DeploymentRuntime(
                        spec=replace(spec_a, instance_count=count),
                        model=model,
                        code_dir=code,
                        base=spec_a,
                    ),
                    k.ProgressLog(),
                ),
                b.apply_deployment(
                    "ep",
                    DeploymentRuntime(
                        spec=replace(spec_b, environment_variables=env),
                        model=model,
                        code_dir=code,
                        base=spec_b,
                    ),
                    k.ProgressLog(),
                ),
            ]
            expect = [("a", "instance_count", count), ("b", "environment_variables", env)]
        else:
            a_change: dict[str, Any]
            b_change: dict[str, Any]
            if kind == 0:  # one HTTPRoute, two fields
                a_change = {"traffic": traffic_a}
                b_change = {"mirror_traffic": {"green": 1 + r % 40}}
            elif kind == 1:  # HTTPRoute and Secret
                a_change = {"traffic": traffic_a}
                b_change = {"description": f"round {r}"}
            elif kind == 2:  # one Secret, two fields
                a_change = {"tags": {"round": str(r)}}
                b_change = {"description": f"round {r}"}
            else:  # the same field: one must be refused
                a_change, b_change = {"traffic": traffic_a}, {"traffic": traffic_b}
            ops = [
                a.apply_endpoint(change(rec_a, **a_change)),
                b.apply_endpoint(change(rec_b, **b_change)),
            ]
            expect = [("a", *next(iter(a_change.items()))), ("b", *next(iter(b_change.items())))]
        results = await asyncio.gather(*ops, return_exceptions=True)
        for res in results:
            if res is not None and not isinstance(res, Conflict):
                raise res
        now = live(fake)
        landed = 0
        for (_, fieldname, value), res in zip(expect, results, strict=True):
            if res is None:
                landed += 1
                # traffic of a same-field round: the winner's value is the one kept
                if now[fieldname] != value:
                    lost += 1
            else:
                refused += 1
        if kind == 3:
            assert landed == 1, f"round {r}: {results}"
        else:
            assert landed == 2, f"round {r}: a change to another field was refused: {results}"
            merged_rounds += 1
    print(
        f"kubernetes: lost updates in {ROUNDS} concurrent rounds: {lost} "
        f"(losers refused with Conflict: {refused}; rounds merged: {merged_rounds})"
    )
    assert lost == 0
    assert refused == ROUNDS // 5  # exactly the same-field rounds
