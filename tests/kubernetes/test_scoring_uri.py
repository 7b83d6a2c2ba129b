"""Issue 15, points 1 and 2: cluster tags from ``attach``/``update``, where a Kubernetes
endpoint's scoring URI comes from (the cluster tag, the Gateway's ``status.addresses``, its
LoadBalancer Service, or none, said so), and ``invoke`` through the API server's service
proxy (``/api/v1/namespaces/NS/services/NAME:PORT/proxy/...``) from a jump box that
reaches only the API server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from modeldeck.services.api.errors import Unauthorized
from modeldeck.services.drivers.kubernetes.driver import KubernetesDriver

from .conftest import NS
from .test_driver import deploy

URL_TAG = "modeldeck.io/gateway-url"


# --------------------------------------------------------------------------- the scoring URI


async def test_the_scoring_uri_comes_from_the_gateway_status_addresses(
    fake: Any, driver: KubernetesDriver
) -> None:
    fake.add_gateway(NS, addresses=["203.0.113.7"], load_balancer="198.51.100.9")
    await driver.list_state()  # what every show and list reads first
    assert driver.scoring_uri("ep") == "http://203.0.113.7/api/v1/endpoint/ep/score"
    assert driver.scoring_address()[1] == "gateway_status"
    assert driver.scoring_uri_note("ep") is None


async def test_else_from_the_gateways_load_balancer_service(
    fake: Any, driver: KubernetesDriver
) -> None:
    fake.add_gateway(NS, load_balancer="198.51.100.9", port=8080)
    await driver.list_state()
    assert driver.scoring_uri("ep") == "http://198.51.100.9:8080/api/v1/endpoint/ep/score"
    assert driver.scoring_address()[1] == "load_balancer"


async def test_the_load_balancer_port_is_the_listeners_not_istios_status_port(
    fake: Any, driver: KubernetesDriver
) -> None:
    fake.add_gateway(NS, load_balancer="198.51.100.9", port=8080, status_port=True)
    await driver.list_state()
    assert driver.scoring_uri("ep") == "http://198.51.100.9:8080/api/v1/endpoint/ep/score"


async def test_the_cluster_tag_names_the_url_and_another_gateway(
    fake: Any, kubeconfig: Any, make_driver: Callable[..., KubernetesDriver]
) -> None:
    fake.add_gateway("infra", "public", addresses=["203.0.113.8"])
    d = make_driver(tags={"modeldeck.io/gateway": "infra/public"})
    await d.list_state()
    assert d.scoring_uri("ep") == "http://203.0.113.8/api/v1/endpoint/ep/score"
    # the operator's DNS name (https) wins over the Gateway's bare address
    d = make_driver(
        tags={"modeldeck.io/gateway": "infra/public", URL_TAG: "https://ml.example.com"}
    )
    await d.list_state()
    assert d.scoring_uri("ep") == "https://ml.example.com/api/v1/endpoint/ep/score"
    assert d.scoring_address()[1] == "cluster_tag"


async def test_no_address_means_no_made_up_uri_and_the_fix(
    fake: Any, driver: KubernetesDriver
) -> None:
    await driver.list_state()
    assert driver.scoring_uri("ep") == ""  # was http://modeldeck-gateway.ml/..., nowhere
    assert driver.scoring_address() == ("", "none")
    note = driver.scoring_uri_note("ep") or ""
    assert "'ml/modeldeck-gateway' has no address" in note
    assert f"--tag {URL_TAG}=" in note and "invoke -n ep --via api" in note
    # a Gateway that gets its address later is seen at the next look
    fake.add_gateway(NS, addresses=["203.0.113.9"])
    driver._gateway_checked = 0.0  # past the re-check interval
    await driver.list_state()
    assert driver.scoring_uri("ep").startswith("http://203.0.113.9/")


# --------------------------------------------------------------------------- the service proxy


async def test_score_through_the_api_servers_service_proxy(
    fake: Any, driver: KubernetesDriver, k: Any
) -> None:
    await deploy(driver, k, "blue", traffic={"blue": 100})
    body = b'{"data": [[1, 2, 3, 4]]}'
    auth = {"Authorization": f"Bearer {k.KEY1}", "Content-Type": "application/json"}
    status, data, headers, path = await driver.score_via_api("ep", "blue", body, auth, 10.0)
    assert path == f"/api/v1/namespaces/{NS}/services/ep-blue:http/proxy/api/v1/endpoint/ep/score"
    assert (status, headers["azureml-model-deployment"]) == (200, "blue")
    assert json.loads(data)["input"] == {"data": [[1, 2, 3, 4]]}
    assert ("POST", path, "application/json") in fake.requests
    # the pod still checks the endpoint's key (the API server dropped Authorization)
    wrong = {"Authorization": "Bearer not-the-key"}
    status, data, _, _ = await driver.score_via_api("ep", "blue", body, wrong, 10.0)
    assert (status, json.loads(data)) == (401, {"error": "invalid key"})
    status, data, _, _ = await driver.score_via_api("ep", "blue", body, {}, 10.0)
    assert json.loads(data) == {"error": "missing Authorization: Bearer header"}


async def test_service_proxy_denied_by_rbac_names_the_verb(
    fake: Any, driver: KubernetesDriver, k: Any
) -> None:
    await deploy(driver, k, "blue", traffic={"blue": 100})
    fake.deny("create", "services/proxy")
    with pytest.raises(Unauthorized) as info:
        await driver.score_via_api("ep", "blue", b"{}", {"Authorization": "Bearer x"}, 10.0)
    assert "denied 'create' on 'services/proxy'" in info.value.message


def test_the_pod_server_takes_the_key_the_proxy_lets_through() -> None:
    """The scoring host itself (what pods run) reads x-modeldeck-authorization when the
    request has no Authorization, with the same check."""
    from modeldeck.services.scoring import host

    headers = [("X-Modeldeck-Authorization", "Bearer k")]
    assert host._credential(headers) == "Bearer k"
    assert host._credential([("Authorization", "Bearer a"), *headers]) == "Bearer a"
    assert host._credential([]) == ""


# --------------------------------------------------------------------------- the CLI


@pytest.mark.e2e
def test_attach_tag_update_show_and_invoke_from_a_jump_box(kube_cli: Any) -> None:
    cli, fake = kube_cli
    cli("cluster attach prod --kube-context aks-prod --namespace ml --tag team=ml")
    assert cli("cluster show prod").json()["tags"] == {"team": "ml"}
    cli("model create --name sklearn-demo --path ./model")
    cli("endpoint create -f k8s-endpoint.yml")
    cli("online-deployment create -f blue.yml --all-traffic")

    # no Gateway address: no scoring URI, and show says how to get one
    ep = cli("online-endpoint show -n my-endpoint").json()
    assert (ep["scoring_uri"], ep["scoring_uri_source"]) == ("", "none")
    assert "modeldeck.io/gateway-url" in ep["error"] and "--via api" in ep["error"]

    # invoke goes through the API server instead, and says so
    r = cli("online-endpoint invoke -n my-endpoint --request-file sample-request.json")
    assert r.json()["deployment"] == "blue" and r.json()["input"]["data"][0] == [1, 2, 3, 4]
    assert "WARNING: invoked through the API server's service proxy" in r.err
    assert "services/my-endpoint-blue:http/proxy" in r.err and "no scoring URI" in r.err

    # the tag names a URL this host cannot reach: refused connection, then the API server
    r = cli("cluster update prod --tag modeldeck.io/gateway-url=http://127.0.0.1:9")
    assert r.json()["tags"] == {"team": "ml", "modeldeck.io/gateway-url": "http://127.0.0.1:9"}
    ep = cli("online-endpoint show -n my-endpoint").json()
    assert ep["scoring_uri"] == "http://127.0.0.1:9/api/v1/endpoint/my-endpoint/score"
    assert ep["scoring_uri_source"] == "cluster_tag" and ep["error"] is None
    r = cli("online-endpoint invoke -n my-endpoint -r sample-request.json")
    assert r.json()["deployment"] == "blue"
    assert "did not take the connection" in r.err and "service proxy" in r.err
    r = cli("online-endpoint invoke -n my-endpoint -r sample-request.json --via uri", ok=False)
    assert "127.0.0.1:9" in r.err and "--via api" in r.err
    r = cli("online-endpoint invoke -n my-endpoint -r sample-request.json --via api")
    assert r.json()["deployment"] == "blue" and "as asked (--via api)" in r.err

    # a Gateway named by tag: the route is written again under it at once
    fake.add_gateway("infra", "public", addresses=["203.0.113.7"])
    cli(
        "cluster update prod --tag modeldeck.io/gateway=infra/public --remove-tag "
        "modeldeck.io/gateway-url"
    )
    parents = fake.get("httproutes", NS, "my-endpoint")["spec"]["parentRefs"]
    assert [(p["namespace"], p["name"]) for p in parents] == [("infra", "public")]
    ep = cli("online-endpoint show -n my-endpoint").json()
    assert ep["scoring_uri"] == "http://203.0.113.7/api/v1/endpoint/my-endpoint/score"
    assert ep["scoring_uri_source"] == "gateway_status"
    r = cli("cluster update prod", ok=False)
    assert "--tag KEY=VALUE" in r.err
