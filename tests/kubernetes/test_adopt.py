"""Two operators, one cluster: the cluster is the truth (issue 5, "State and status").

Each operator has a MODELDECK_HOME of its own and its own control plane daemon (started
through the real auto-start path); both reach the fake API server through the same
KUBECONFIG. What one makes, the other adopts on ``cluster attach``, and a workspace whose
state was wiped gets everything back by attaching again.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import (
    ClusterSpec,
    CodeConfiguration,
    DeploymentRole,
    DeploymentSpec,
    DriverKind,
    EndpointPatch,
    EndpointSpec,
    KeyType,
    ModelSpec,
    RequestSettings,
    Resources,
    ResourceSet,
)
from modeldeck.services.api.errors import Conflict
from modeldeck.services.drivers.kubernetes.concurrency import who
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.local.controlplane import daemon

from tests.support.daemon import home_env
from tests.support.fake_apiserver import write_kubeconfig

from .conftest import NS

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WAIT_S = 90.0  # only to avoid hangs


@contextlib.contextmanager
def as_home(home: Path, kubeconfig: Path) -> Iterator[None]:
    """MODELDECK_HOME (and KUBECONFIG) of one operator, for the duration."""
    with home_env(home, KUBECONFIG=str(kubeconfig)):
        yield


opened: list[LocalWorkspace] = []


def start_operator(home: Path, kubeconfig: Path) -> LocalWorkspace:
    """Start the operator's daemon and a workspace bound to its socket."""
    with as_home(home, kubeconfig):
        daemon.ensure_daemon()
        ws = LocalWorkspace(autostart=False, poll_interval=0.05)
        assert str(home) in str(ws.socket_path)  # resolved (and kept) while this home is set
    opened.append(ws)
    return ws


def stop_operator(home: Path, kubeconfig: Path) -> None:
    with as_home(home, kubeconfig), contextlib.suppress(Exception):
        daemon.stop_daemon(timeout=20.0)


async def wait(handle: Any) -> Any:
    return await asyncio.wait_for(handle.wait(), WAIT_S)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> bool:
    """Poll ``check`` (generous timeout: only to avoid a hang)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return await check()


def deployment(name: str, endpoint: str, code: str = "blue") -> DeploymentSpec:
    return DeploymentSpec(
        name=name,
        endpoint_name=endpoint,
        model="azureml:demo:1",
        code_configuration=CodeConfiguration(code=str(EXAMPLES / code), scoring_script="score.py"),
        instance_count=1,
        resources=Resources(requests=ResourceSet(cpu=0.5, memory_gb=0.5)),
        request_settings=RequestSettings(max_concurrent_requests_per_instance=4),
        environment_variables={"COLOR": code},
    )


def attach(name: str) -> ClusterSpec:
    return ClusterSpec(name=name, driver=DriverKind.KUBERNETES, kube_context="fake", namespace=NS)


async def shown(ws: LocalWorkspace, endpoint: str) -> dict[str, tuple[int, int, str]]:
    """deployment -> (traffic, ready replicas, state), as ``online-deployment list`` shows it."""
    return {
        d.name: (d.traffic, d.ready_replicas, d.provisioning_state.value)
        for d in await ws.list_deployments(endpoint)
    }


async def test_two_operators_see_the_same_cluster_and_a_wiped_home_gets_it_back(
    fake: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config = write_kubeconfig(tmp_path / "kubeconfig", {"fake": (fake.url, "")}, current="fake")
    # short homes: the daemon's socket path must fit a Unix socket's 107 bytes, and tmp_path
    # carries the test's name
    home_a, home_b = tmp_path_factory.mktemp("opa"), tmp_path_factory.mktemp("opb")
    ok = (1, "Succeeded")
    try:
        # ---- operator A makes an endpoint with two deployments, 90/10
        a = start_operator(home_a, config)
        await wait(await a.attach_cluster(attach("aks")))
        await a.create_model(ModelSpec(name="demo", path=str(EXAMPLES / "model")))
        await wait(
            await a.create_endpoint(
                EndpointSpec(
                    name="shared", compute="aks", description="fraud model", tags={"team": "risk"}
                )
            )
        )
        blue = replace(deployment("blue", "shared"), role=DeploymentRole.CONTROL)
        await wait(await a.create_deployment(blue, all_traffic=True))
        await wait(await a.create_deployment(deployment("green", "shared", code="green")))
        await wait(
            await a.update_endpoint("shared", EndpointPatch(traffic={"blue": 90, "green": 10}))
        )
        await wait(await a.create_endpoint(EndpointSpec(name="taken", compute="aks")))
        await wait(await a.create_endpoint(EndpointSpec(name="doomed", compute="aks")))
        keys = await a.get_keys("shared")

        # ---- operator B: its own home and daemon; "taken" already exists there, on a pool
        b = start_operator(home_b, config)
        await wait(await b.create_cluster(ClusterSpec(name="pool")))
        await wait(await b.create_endpoint(EndpointSpec(name="taken", compute="pool")))
        op = await wait(await b.attach_cluster(attach("prod")))
        notes = op.message.splitlines()[1:]
        assert any("'taken'" in n and "not adopted" in n and "'pool'" in n for n in notes), notes
        assert any("adopted endpoint(s)" in n and "shared" in n for n in notes), notes
        assert (await b.get_endpoint("taken")).compute == "pool"  # not overwritten

        ep = await b.get_endpoint("shared")
        assert (ep.compute, ep.traffic, ep.auth_mode.value) == (
            "prod",
            {"blue": 90, "green": 10},
            "key",
        )
        # description and tags come with it (annotations on the endpoint's Secret)
        assert ep.description == "fraud model" and ep.tags.get("team") == "risk"
        assert await shown(b, "shared") == {"blue": (90, *ok), "green": (10, *ok)}
        roles = {d.name: d.spec.role for d in await b.list_deployments("shared")}
        assert roles == {"blue": DeploymentRole.CONTROL, "green": DeploymentRole.TREATMENT}
        assert await b.get_keys("shared") == keys  # the same keys: the endpoint's Secret
        green = await b.get_deployment("shared", "green")
        # the spec as A applied it, from the Deployment's modeldeck.io/spec annotation
        assert green.spec.environment_variables == {"COLOR": "green"}
        assert green.spec.resources.requests.cpu == 0.5
        assert green.spec.model == "azureml:demo:1"
        # B has no model "demo": the deployment keeps running and says what an update needs
        assert green.error and "not registered" in green.error and "model create" in green.error

        # ---- B deploys "red" of its own (B registers the model first)
        await b.create_model(ModelSpec(name="demo", path=str(EXAMPLES / "model")))
        await wait(await b.create_deployment(deployment("red", "shared")))

        # ---- B changes the traffic: A's next show has it (read from the HTTPRoute)
        read_by_a = await a.get_endpoint("shared")
        await wait(
            await b.update_endpoint("shared", EndpointPatch(traffic={"blue": 50, "green": 50}))
        )
        assert await shown(a, "shared") == {
            "blue": (50, *ok),
            "green": (50, *ok),
            "red": (0, *ok),  # adopted by A's show
        }
        assert (await a.get_endpoint("shared")).traffic == {"blue": 50, "green": 50, "red": 0}
        # a change A computed before it saw B's is refused, and says it came from the cluster,
        # by whom (the route's changed-by annotation: here both operators are this user)
        with pytest.raises(Conflict) as err:
            await a.update_endpoint(
                "shared",
                EndpointPatch(traffic={"blue": 100, "green": 0}),
                if_revision=read_by_a.revision,
            )
        assert f"by {who()} on cluster 'aks'" in err.value.message
        assert "traffic.blue 90 -> 50" in err.value.message

        # ---- and without any list: A's daemon follows the cluster (watch) by itself
        await wait(
            await b.update_endpoint("shared", EndpointPatch(traffic={"blue": 70, "green": 30}))
        )
        new_keys = await b.regenerate_keys("shared", KeyType.PRIMARY)

        async def a_caught_up() -> bool:
            ep = await a.get_endpoint("shared")
            return (
                ep.traffic == {"blue": 70, "green": 30, "red": 0}
                and await a.get_keys("shared") == new_keys
            )

        assert await eventually(a_caught_up), (await a.get_endpoint("shared")).traffic

        # ---- A loses its state entirely, then attaches the cluster again
        await a.close()
        stop_operator(home_a, config)
        shutil.rmtree(home_a)
        a = start_operator(home_a, config)
        assert await a.list_endpoints() == []
        op = await wait(await a.attach_cluster(attach("aks")))
        assert "adopted deployment(s)" in op.message
        assert {e.name: e.compute for e in await a.list_endpoints()} == {
            "shared": "aks",
            "taken": "aks",
            "doomed": "aks",
        }
        assert (await a.get_endpoint("shared")).traffic == {"blue": 70, "green": 30, "red": 0}
        assert await shown(a, "shared") == {"blue": (70, *ok), "green": (30, *ok), "red": (0, *ok)}
        assert await a.get_keys("shared") == new_keys

        # ---- a restart of A's daemon leaves the adopted deployments running as they are
        generations = {
            n: o["metadata"]["generation"]
            for (p, ns, n), o in list(fake.store.items())
            if p == "deployments" and ns == NS
        }
        await a.close()
        stop_operator(home_a, config)
        a = start_operator(home_a, config)

        async def restored() -> bool:
            return await shown(a, "shared") == {
                "blue": (70, *ok),
                "green": (30, *ok),
                "red": (0, *ok),
            }

        assert await eventually(restored), await shown(a, "shared")
        assert {
            n: o["metadata"]["generation"]
            for (p, ns, n), o in list(fake.store.items())
            if p == "deployments" and ns == NS
        } == generations

        # ---- while B's daemon is down, A updates green (once the model is registered here,
        # the adopted deployment can be updated) and deletes "doomed"
        await b.close()
        stop_operator(home_b, config)
        await a.create_model(ModelSpec(name="demo", path=str(EXAMPLES / "model"), version=1))
        spec = deployment("green", "shared", code="green")
        await wait(
            await a.update_deployment(replace(spec, environment_variables={"COLOR": "teal"}))
        )
        green = await a.get_deployment("shared", "green")
        assert green.error is None and green.spec.environment_variables == {"COLOR": "teal"}
        await wait(
            await a.update_deployment(
                replace(deployment("red", "shared"), environment_variables={"COLOR": "crimson"})
            )
        )
        await wait(await a.delete_endpoint("doomed"))
        generations = {
            n: o["metadata"]["generation"]
            for (p, ns, n), o in list(fake.store.items())
            if p == "deployments" and ns == NS
        }

        # ---- B's daemon starts again: its records take the cluster's truth instead of
        # re-applying what they held (no rollback of A's update, no revived endpoint)
        b = start_operator(home_b, config)

        async def b_restored() -> bool:
            return await shown(b, "shared") == {
                "blue": (70, *ok),
                "green": (30, *ok),
                "red": (0, *ok),
            }

        assert await eventually(b_restored), await shown(b, "shared")
        green = await b.get_deployment("shared", "green")
        assert green.spec.environment_variables == {"COLOR": "teal"}
        red = await b.get_deployment("shared", "red")  # B made it, A changed it
        assert red.spec.environment_variables == {"COLOR": "crimson"}
        doomed = await b.get_endpoint("doomed")
        assert doomed.error and "no longer on cluster 'prod'" in doomed.error
        # its Events stay (the audit history's, as Kubernetes keeps Events after a delete)
        assert not [k for k in fake.store if k[2].startswith("doomed") and k[0] != "events"]
        assert {
            n: o["metadata"]["generation"]
            for (p, ns, n), o in list(fake.store.items())
            if p == "deployments" and ns == NS
        } == generations
    finally:
        for ws in opened:
            with contextlib.suppress(Exception):
                await ws.close()
        stop_operator(home_a, config)
        stop_operator(home_b, config)


async def test_adopting_objects_without_the_spec_annotation_and_an_unanswering_cluster(
    fake: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config = write_kubeconfig(tmp_path / "kubeconfig", {"fake": (fake.url, "")}, current="fake")
    home = tmp_path_factory.mktemp("op")  # short: the daemon's socket path must fit
    try:
        ws = start_operator(home, config)
        await wait(await ws.attach_cluster(attach("aks")))
        await ws.create_model(ModelSpec(name="demo", path=str(EXAMPLES / "model")))
        await wait(
            await ws.create_endpoint(EndpointSpec(name="tok", compute="aks", auth_mode="aml_token"))
        )
        two = replace(deployment("blue", "tok"), instance_count=2)
        await wait(await ws.create_deployment(two, all_traffic=True))
        await wait(await ws.detach_cluster("aks"))  # forgets; everything keeps running
        assert await ws.list_endpoints() == []

        def strip() -> None:  # as an older modeldeck made it: no modeldeck.io/spec
            obj = fake.store[("deployments", NS, "tok-blue")]
            obj["metadata"]["annotations"].pop("modeldeck.io/spec")
            fake._put_raw("deployments", NS, obj, "MODIFIED")

        fake._sync(strip)
        await wait(await ws.attach_cluster(attach("again")))
        ep = await ws.get_endpoint("tok")
        assert (ep.compute, ep.auth_mode.value, ep.traffic) == ("again", "aml_token", {"blue": 100})
        assert ep.tags.get("modeldeck.io/adopted") == "true"
        assert (await ws.get_token("tok")).accessToken  # the token secret came back too
        blue = await ws.get_deployment("tok", "blue")
        # rebuilt from the Deployment object itself
        assert blue.spec.environment_variables == {"COLOR": "blue"}
        assert blue.spec.instance_count == 2 and blue.ready_replicas == 2
        assert blue.spec.resources.requests.cpu == 0.5
        assert blue.spec.model == "azureml:demo:1"  # the model annotation
        assert blue.spec.code_configuration.scoring_script == "score.py"
        assert blue.error is None  # the model is registered here

        # the cluster stops answering: list/show fall back to the records, saying why
        fake.stop()
        deps = await ws.list_deployments("tok")
        assert [(d.name, d.traffic) for d in deps] == [("blue", 100)]
        assert deps[0].error
        ep = await ws.get_endpoint("tok")
        assert ep.traffic == {"blue": 100} and ep.error and "again" in ep.error
    finally:
        for w in opened:
            with contextlib.suppress(Exception):
                await w.close()
        stop_operator(home, config)


async def test_driver_state_for_adoption_and_the_watch_that_follows_it(driver: Any, k: Any) -> None:
    await driver.apply_endpoint(k.route(mode="aml_token"))
    runtime = k.runtime("blue", environment_variables={"COLOR": "blue"}, instance_count=2)
    await driver.apply_deployment("ep", runtime, k.ProgressLog())
    await driver.apply_endpoint(k.route(traffic={"blue": 100}, mode="aml_token"))

    state = await driver.list_state(secrets=True)
    ep = state["endpoints"]["ep"]
    assert (ep["auth_mode"], ep["primary_key"], ep["secondary_key"]) == (
        "aml_token",
        k.KEY1,
        k.KEY2,
    )
    assert ep["traffic"] == {"blue": 100} and ep["token_secret"] == "s" * 32
    (blue,) = state["deployments"]
    assert blue["spec"]["environment_variables"] == {"COLOR": "blue"}
    assert blue["spec"]["instance_count"] == 2 and blue["ready_replicas"] == 2
    assert blue["model"] == "azureml:demo:1"
    assert "primary_key" not in (await driver.list_state())["endpoints"]["ep"]  # opt-in only

    # nothing changes: the watch ends without a change; a traffic change wakes it
    rvs = state["resource_versions"]
    assert set(rvs) == {"Deployment", "HTTPRoute", "Secret"}
    assert await driver.wait_for_change(rvs, 1.0) is False
    waiter = asyncio.ensure_future(driver.wait_for_change(rvs, 30.0))
    await asyncio.sleep(0.2)
    await driver.apply_endpoint(k.route(traffic={"blue": 100}, mirror={"blue": 0}, mode="key"))
    assert await asyncio.wait_for(waiter, WAIT_S) is True
