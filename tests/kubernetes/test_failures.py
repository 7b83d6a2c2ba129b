"""Every failure the driver meets says what happened and what to do, and blocks no other cluster."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.errors import BackendError, InvalidInput, Unauthorized, Unreachable
from modeldeck.services.drivers.kubernetes.driver import KubernetesDriver
from modeldeck.services.drivers.kubernetes.errors import Call

NS = "ml"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def contexts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, k: Any) -> Callable[..., None]:
    def make(**ctx: tuple[str, str]) -> None:
        path = k.write_kubeconfig(tmp_path / "kc-multi", ctx)
        monkeypatch.setenv("KUBECONFIG", str(path))

    return make


async def test_unreachable_cluster_names_the_cluster_and_server(
    contexts: Callable[..., None], make_driver: Callable[..., KubernetesDriver]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    contexts(gone=(url, ""))
    driver = make_driver(name="far-away", context="gone")
    with pytest.raises(Unreachable) as err:
        await driver.capacity()
    assert "far-away" in str(err.value) and url in str(err.value)
    assert "while trying to" in str(err.value)  # what it was doing (list nodes, get version)


async def test_expired_credentials_ask_for_a_refresh(
    fake: Any, contexts: Callable[..., None], make_driver: Callable[..., KubernetesDriver], k: Any
) -> None:
    contexts(stale=(fake.url, "expired-token"))
    with pytest.raises(Unauthorized) as err:
        await make_driver(context="stale").apply_endpoint(k.route())
    assert "401" in str(err.value) and "'stale'" in str(err.value)
    assert "refresh your kubeconfig credentials" in (err.value.fix or "")


async def test_rbac_denial_names_the_verb_and_resource(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await driver.apply_endpoint(k.route())
    fake.deny("patch", "deployments")
    with pytest.raises(Unauthorized) as err:
        await driver.apply_deployment("ep", k.runtime("blue"), k.ProgressLog())
    text = str(err.value)
    assert "denied 'patch' on 'deployments.apps' in namespace 'ml'" in text
    assert 'cannot patch resource "deployments"' in text  # the API server's own words
    assert "Role granting 'patch' on 'deployments.apps'" in (err.value.fix or "")
    assert err.value.details["verb"] == "patch"


async def test_rbac_denial_of_logs_names_the_subresource(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await driver.apply_endpoint(k.route())
    await driver.apply_deployment("ep", k.runtime("blue"), k.ProgressLog())
    fake.deny("get", "pods/log")
    with pytest.raises(Unauthorized) as err:
        await driver.read_logs("ep", "blue", 10)
    assert "'get' on 'pods/log'" in str(err.value)


async def test_missing_gateway_api_says_how_to_install_it_and_changes_nothing(
    fake_factory: Callable[..., Any],
    contexts: Callable[..., None],
    make_driver: Callable[..., KubernetesDriver],
    k: Any,
) -> None:
    bare = fake_factory(gateway_api=False)
    contexts(bare=(bare.url, ""))
    driver = make_driver(context="bare")
    with pytest.raises(BackendError) as err:
        await driver.apply_endpoint(k.route())
    assert "Gateway API" in str(err.value)
    assert "kubectl apply -f https://github.com/kubernetes-sigs/gateway-api/releases/download/" in (
        err.value.fix or ""
    )
    assert "standard-install.yaml" in (err.value.fix or "")
    assert bare.list("secrets", NS) == []  # nothing was half-made
    _, notes = await driver.attach_check()  # attach still works, and says what is missing
    assert any("standard-install.yaml" in n for n in notes)
    assert await driver.list_managed() == []


async def test_conflict_is_retried_on_the_fresh_object(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await driver.apply_endpoint(k.route())
    await driver.apply_deployment("ep", k.runtime("blue"), k.ProgressLog())
    fake.conflict_next_put.add("ep")  # another operator writes the route between our read and write
    before = len(fake.requests)
    await driver.apply_endpoint(k.route(traffic={"blue": 100}))
    puts = [p for m, p, _ in fake.requests[before:] if m == "PUT" and p.endswith("/httproutes/ep")]
    assert len(puts) == 2
    route = fake.get("httproutes", NS, "ep")
    assert route["spec"]["rules"][-1]["backendRefs"][0]["weight"] == 100


@pytest.mark.parametrize(("code", "retry_after"), [(429, 0.2), (503, 0.1), (500, None)])
async def test_throttling_and_server_errors_are_retried(
    driver: KubernetesDriver, fake: Any, k: Any, code: int, retry_after: float | None
) -> None:
    await driver.apply_endpoint(k.route())
    fault = fake.fail(
        r"/deployments/ep-blue$", code, times=2, method="PATCH", retry_after=retry_after
    )
    await driver.apply_deployment("ep", k.runtime("blue"), k.ProgressLog())
    assert fault.hits == 2
    assert (await driver.deployment_status("ep", "blue")).ready_replicas == 1


async def test_persistent_server_errors_give_up_with_the_status(
    driver: KubernetesDriver, fake: Any
) -> None:
    fault = fake.fail(r"/api/v1/nodes$", 503, times=100, retry_after=0)
    with pytest.raises(BackendError) as err:
        await driver.capacity()
    assert "503" in str(err.value)
    assert fault.hits == driver.api.attempts


async def test_invalid_object_is_refused_with_the_field(
    driver: KubernetesDriver, fake: Any
) -> None:
    fake.expect_invalid = True
    bad = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "Not_A_Name", "namespace": NS},
        "data": {},
    }
    with pytest.raises(InvalidInput) as err:
        await driver.api.request(
            "POST",
            f"/api/v1/namespaces/{NS}/configmaps",
            Call("create", "configmaps", NS, "Not_A_Name"),
            body=bad,
        )
    assert err.value.field == "metadata.name"
    assert fake.invalid


async def test_strategic_merge_on_a_route_is_refused_as_by_a_real_server(
    driver: KubernetesDriver, fake: Any, k: Any
) -> None:
    await driver.apply_endpoint(k.route())
    with pytest.raises(BackendError) as err:
        await driver.api.request(
            "PATCH",
            f"/apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes/ep",
            Call("patch", "httproutes.gateway.networking.k8s.io", NS, "ep"),
            body={"spec": {"rules": []}},
            content_type="application/strategic-merge-patch+json",
        )
    assert "415" in str(err.value)


async def test_a_slow_or_failing_cluster_blocks_no_other(
    fake_factory: Callable[..., Any],
    contexts: Callable[..., None],
    make_driver: Callable[..., KubernetesDriver],
    k: Any,
) -> None:
    slow, fast = fake_factory(), fake_factory()
    release = slow.hold(r"/api/v1/nodes")  # until the fast cluster is done, however long
    contexts(
        slow=(slow.url, ""), fast=(fast.url, ""), gone=(f"http://127.0.0.1:{closed_port()}", "")
    )
    a = make_driver(name="slow", context="slow", concurrency=2, request_timeout=(5.0, 120.0))
    b = make_driver(name="fast", context="fast", concurrency=2)
    c = make_driver(name="gone", context="gone")
    slow_task = asyncio.create_task(a.capacity())
    gone_task = asyncio.create_task(c.capacity())
    # while the slow cluster holds its calls, the fast one deploys end to end
    await b.apply_endpoint(k.route())
    await b.apply_deployment("ep", k.runtime("blue"), k.ProgressLog())
    caps = await asyncio.gather(*(b.capacity() for _ in range(6)))
    assert all(cap.nodes == 4 for cap in caps)
    assert not slow_task.done()
    with pytest.raises(Unreachable):
        await gone_task
    release()
    assert (await slow_task).nodes == 4
