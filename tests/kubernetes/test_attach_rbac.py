"""``cluster attach`` checks every permission the driver needs (issue 15, point 8).

The fake API server authorizes by Roles here (``roles=True``): in the namespace the user
may do only what the Roles bound to them grant, as RBAC does, and it answers
SelfSubjectRulesReview / SelfSubjectAccessReview from the same rules. An administrator's
token (``ADMIN_TOKEN``) writes the Roles, as ``kubectl apply -f`` would."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
import yaml
from modeldeck.services.api.errors import Unauthorized
from modeldeck.services.drivers.kubernetes import rbac
from modeldeck.services.drivers.kubernetes.driver import KubernetesDriver

from tests.support.fake_apiserver import ADMIN_TOKEN, USER

NS = "ml"


def kubectl_apply(fake: Any, text: str) -> None:
    """What ``kubectl apply -f`` does with the Role and RoleBinding, as the admin."""
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        plural = {"Role": "roles", "RoleBinding": "rolebindings"}[doc["kind"]]
        ns = doc["metadata"]["namespace"]
        req = urllib.request.Request(
            f"{fake.url}/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{plural}",
            data=json.dumps(doc).encode(),
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 201


def role_without(fake: Any, *dropped: tuple[str, str], name: str = "partial") -> None:
    """A Role bound to the user granting the table but ``dropped`` (resource, verb) pairs."""
    needs = [(n, v) for n, v in rbac.pairs() if (n.resource, v) not in dropped]
    role, binding = rbac.role_manifests(NS, USER)
    role["metadata"]["name"] = binding["metadata"]["name"] = name
    binding["roleRef"]["name"] = name
    role["rules"] = rbac.role_rules(needs)
    kubectl_apply(fake, yaml.safe_dump_all([role, binding]))


SECRETS = [("secrets", v) for v in ("get", "list", "watch", "create", "patch", "delete")]


def test_role_without_secrets_refuses_attach_then_the_printed_role_lets_it_attach(
    kube_cli: Any,
) -> None:
    cli, fake = kube_cli
    fake.roles = True
    role_without(fake, *SECRETS)
    attach = "cluster attach prod --kube-context aks-prod --namespace ml"
    r = cli(attach, ok=False)
    assert r.code == 5, r  # Unauthorized
    assert (
        "the user of context 'aks-prod' lacks permissions modeldeck needs in namespace 'ml': "
        "secrets (get, list, create, patch, delete); and, optional: secrets (watch)"
    ) in r.err
    assert "configmaps" not in r.err and "deployments" not in r.err  # exactly what is missing
    assert "--namespace ml --print-role" in r.err  # the fix: the Role that grants it
    assert cli("cluster list").json() == [] or all(
        c["name"] != "prod" for c in cli("cluster list").json()
    )
    assert not any(p == "secrets" for p, _, _ in fake.store)  # nothing was written

    printed = cli(f"{attach} --print-role").out
    assert "kind: Role" in printed and "kind: RoleBinding" in printed
    assert f"name: {rbac.USER_PLACEHOLDER}" in printed
    # the administrator sets the user (kubectl auth whoami) and applies it
    kubectl_apply(fake, printed.replace(f"name: {rbac.USER_PLACEHOLDER}", f"name: {USER}"))
    assert fake.invalid == []  # Role and RoleBinding pass the API server's schema
    assert cli(attach).json()["name"] == "prod"


async def test_the_printed_role_is_all_the_driver_needs(
    kubeconfig: Any, fake: Any, make_driver: Any, k: Any
) -> None:
    """Derived from the driver's calls: with only the Role it prints, every operation works
    (an endpoint, a rollout, status, logs, metrics, invoke through the service proxy,
    adoption's listing, deletion)."""
    fake.roles = True
    kubectl_apply(
        fake,
        yaml.safe_dump_all(rbac.role_manifests(NS, USER)),
    )
    driver: KubernetesDriver = make_driver()
    _, notes = await driver.attach_check()
    assert not any("RBAC" in n or "no " in n for n in notes), notes
    await driver.apply_endpoint(k.route())
    await driver.apply_deployment("ep", k.runtime("blue"), k.ProgressLog())
    await driver.apply_deployment("ep", k.runtime("blue", instance_count=2), k.ProgressLog())
    assert (await driver.deployment_status("ep", "blue")).ready_replicas == 2
    await driver.apply_endpoint(k.route(traffic={"blue": 100}))
    assert await driver.read_logs("ep", "blue", 10) is not None
    assert await driver.metrics("ep") is not None
    auth = {"Authorization": f"Bearer {k.KEY1}", "Content-Type": "application/json"}
    status, *_ = await driver.score_via_api("ep", "blue", b'{"data": [[1]]}', auth, 10.0)
    assert status == 200  # invoke --via api: create on services/proxy
    assert (await driver.list_state())["endpoints"]
    await driver.delete_deployment("ep", "blue")
    await driver.delete_endpoint("ep")
    assert fake.forbidden == []  # not one request was refused
    assert any("/pods/" in p and p.endswith("/proxy/metrics") for _, p, _ in fake.requests)


async def test_each_missing_verb_is_named(kubeconfig: Any, fake: Any, make_driver: Any) -> None:
    fake.roles = True
    role_without(fake, ("pods/log", "get"), ("deployments", "patch"), ("deployments", "create"))
    with pytest.raises(Unauthorized) as err:
        await make_driver().attach_check()
    assert "pods/log (get)" in err.value.message
    assert "deployments.apps (create, patch)" in err.value.message
    assert err.value.details["missing"] == [
        {"apiGroup": "", "resource": "pods/log", "verbs": ["get"]},
        {"apiGroup": "apps", "resource": "deployments", "verbs": ["create", "patch"]},
    ]


async def test_without_watch_attach_goes_on_and_says_what_polling_costs(
    kubeconfig: Any, fake: Any, make_driver: Any
) -> None:
    fake.roles = True
    role_without(fake, *[(r, "watch") for r in ("secrets", "pods", "deployments", "httproutes")])
    _, notes = await make_driver().attach_check()
    watch = [n for n in notes if n.startswith("no watch")]
    assert len(watch) == 4 and all("polling" in n for n in watch), notes
    assert "no watch on 'deployments.apps' in namespace 'ml'" in " ".join(watch)


async def test_incomplete_rules_are_completed_by_access_reviews(
    kubeconfig: Any, fake: Any, make_driver: Any
) -> None:
    """A webhook authorizer lists no rules (``incomplete: true``): each verb the rules do not
    show is asked with a SelfSubjectAccessReview, so a user the webhook allows attaches and a
    missing verb is still named."""
    fake.rules_incomplete = True
    _, notes = await make_driver().attach_check()  # everything allowed (no Roles mode)
    assert not [n for n in notes if "RBAC" in n or n.startswith("no ")], notes
    kinds = [kind for kind, _ in fake.reviews]
    assert kinds[0] == "SelfSubjectRulesReview" and kinds.count("SelfSubjectAccessReview") == len(
        rbac.pairs()
    )
    attrs = [s.get("resourceAttributes", {}) for _, s in fake.reviews]
    logs = next(a for a in attrs if a.get("subresource") == "log")
    assert logs == {
        "namespace": NS,
        "verb": "get",
        "group": "",
        "resource": "pods",
        "subresource": "log",
    }
    fake.deny("get", "secrets")
    with pytest.raises(Unauthorized) as err:
        await make_driver(name="prod2").attach_check()
    assert err.value.details["missing"] == [
        {"apiGroup": "", "resource": "secrets", "verbs": ["get"]}
    ]


async def test_rules_review_answers_as_the_api_server_does(
    kubeconfig: Any, fake: Any, make_driver: Any
) -> None:
    """The fake's reviews keep the real wire shapes (authorization.k8s.io/v1): the spec back,
    a status with resourceRules, nonResourceRules and incomplete, 201 Created."""
    driver = make_driver()
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": NS},
    }
    from modeldeck.services.drivers.kubernetes.errors import Call

    out = await driver.api.request(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        Call("create", "selfsubjectrulesreviews"),
        body=body,
    )
    assert out["kind"] == "SelfSubjectRulesReview" and out["spec"] == {"namespace": NS}
    assert set(out["status"]) >= {"resourceRules", "nonResourceRules", "incomplete"}
    assert out["status"]["resourceRules"] == [
        {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
    ]
    fake.deny("watch", "pods")
    out = await driver.api.request(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        Call("create", "selfsubjectrulesreviews"),
        body=body,
    )
    pods = next(
        r
        for r in out["status"]["resourceRules"]
        if r["resources"] == ["pods"] and r["apiGroups"] == [""]
    )
    assert "watch" not in pods["verbs"] and "get" in pods["verbs"]
    assert rbac.allows(out["status"]["resourceRules"], "", "pods/log", "get")


async def test_a_denial_after_attach_names_the_verb_the_api_server_checked(
    kubeconfig: Any, fake: Any, make_driver: Any, k: Any
) -> None:
    """A Role changed after the attach: the first server-side apply of the keys Secret is a
    PATCH that the API server authorizes as a create; the error says 'create', and the fix
    names the command printing the Role."""
    fake.roles = True
    role_without(fake, ("secrets", "create"))
    with pytest.raises(Unauthorized) as err:
        await make_driver().apply_endpoint(k.route())
    assert "denied 'create' on 'secrets' in namespace 'ml'" in err.value.message
    assert 'cannot create resource "secrets"' in err.value.message  # the API server's words
    assert "Role granting 'create' on 'secrets'" in (err.value.fix or "")
    assert "--namespace ml --print-role" in (err.value.fix or "")


async def test_a_gateway_in_another_namespace_is_checked_there(
    kubeconfig: Any, fake: Any, make_driver: Any
) -> None:
    """The Gateway (``modeldeck.io/gateway=NS/NAME``) and its LoadBalancer Service are read in
    their own namespace: that is where they are checked, and --print-role grants them there."""
    fake.roles = True
    tags = {"modeldeck.io/gateway": "default/public"}
    kubectl_apply(fake, yaml.safe_dump_all(rbac.role_manifests(NS, USER)))
    _, notes = await make_driver(tags=tags).attach_check()
    assert (
        "no get on 'gateways.gateway.networking.k8s.io' in namespace 'default' (the scoring URI "
        "from the Gateway's address): the scoring URI comes from the cluster's "
        "modeldeck.io/gateway-url tag only"
    ) in notes
    assert any(n.startswith("no list on 'services' in namespace 'default'") for n in notes)
    rules_reviews = {s["namespace"] for kind, s in fake.reviews if kind == "SelfSubjectRulesReview"}
    assert rules_reviews == {"ml", "default"}  # one per namespace
    role, binding = rbac.role_manifests(NS, USER, gateway_namespace="default")[2:]
    assert role["metadata"]["namespace"] == "default" and role["rules"] == [
        {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["gateways"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["services"], "verbs": ["list"]},
    ]
    kubectl_apply(fake, yaml.safe_dump_all([role, binding]))
    _, notes = await make_driver(name="prod2", tags=tags).attach_check()
    assert not [n for n in notes if n.startswith("no ")], notes
