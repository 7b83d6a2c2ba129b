"""The fake API server answers the official client's typed calls as a real API server does.

These pin the behaviours the driver relies on (and CRAFT.md's notes on client 37), so a
change in the fake that would make the driver's tests pass for the wrong reason fails here.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from modeldeck.services.drivers.kubernetes.kubeconfig import client_configuration, load_context

NS = "ml"


@pytest.fixture
def api(kubeconfig: Path) -> Any:
    return client.ApiClient(client_configuration(load_context("fake")))


def cm(name: str, labels: dict[str, str] | None = None, **data: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data,
    }


def test_create_conflict_stale_update_and_not_found(api: Any, fake: Any) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map(NS, cm("a", x="1"))
    assert created.metadata.uid and created.metadata.resource_version
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(NS, cm("a", x="1"))
    assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "AlreadyExists"
    stale = created.to_dict()
    core.patch_namespaced_config_map("a", NS, {"data": {"x": "2"}})  # strategic merge: built-in OK
    body = cm("a", x="3")
    body["metadata"]["resourceVersion"] = stale["metadata"]["resource_version"]
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("a", NS, body)
    assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "Conflict"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("nope", NS)
    assert err.value.status == 404


def test_label_selector_and_invalid_objects(api: Any, fake: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(NS, cm("one", {"team": "a"}))
    core.create_namespaced_config_map(NS, cm("two", {"team": "b"}))
    names = [
        c.metadata.name for c in core.list_namespaced_config_map(NS, label_selector="team=a").items
    ]
    assert names == ["one"]
    fake.expect_invalid = True
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(NS, cm("Bad_Name"))
    assert err.value.status == 422


def test_server_side_apply_field_managers(api: Any, fake: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(NS, cm("owned", x="1"), field_manager="kubectl")
    body = cm("owned", x="2")
    with pytest.raises(
        ApiException
    ) as err:  # another manager made it: apply without force conflicts
        core.patch_namespaced_config_map(
            "owned",
            NS,
            body,
            field_manager="modeldeck",
            _content_type="application/apply-patch+yaml",
        )
    assert err.value.status == 409
    out = core.patch_namespaced_config_map(
        "owned",
        NS,
        body,
        field_manager="modeldeck",
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    assert out.data == {"x": "2"}


def test_custom_resources_refuse_strategic_merge(api: Any, fake: Any) -> None:
    custom = client.CustomObjectsApi(api)
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": []},
    }
    custom.create_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", NS, "httproutes", route
    )
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(
            "gateway.networking.k8s.io",
            "v1",
            NS,
            "httproutes",
            "r",
            {"spec": {"rules": []}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert err.value.status == 415
    custom.patch_namespaced_custom_object(
        "gateway.networking.k8s.io",
        "v1",
        NS,
        "httproutes",
        "r",
        {"spec": {"hostnames": ["ml.example.com"]}},
        _content_type="application/merge-patch+json",
    )
    got = custom.get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", NS, "httproutes", "r"
    )
    assert got["spec"]["hostnames"] == ["ml.example.com"]


def test_watch_streams_changes(api: Any, fake: Any) -> None:
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    seen: list[tuple[str, str]] = []

    def run() -> None:
        for event in watch.Watch().stream(
            core.list_namespaced_config_map, NS, resource_version=rv, timeout_seconds=5
        ):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 2:
                return

    thread = threading.Thread(target=run)
    thread.start()
    core.create_namespaced_config_map(NS, cm("w"))
    core.delete_namespaced_config_map("w", NS)
    thread.join(10)
    assert seen == [("ADDED", "w"), ("DELETED", "w")]


def test_discovery_without_gateway_api(
    fake_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, k: Any
) -> None:
    bare = fake_factory(gateway_api=False)
    monkeypatch.setenv(
        "KUBECONFIG", str(k.write_kubeconfig(tmp_path / "kc", {"bare": (bare.url, "")}))
    )
    api = client.ApiClient(client_configuration(load_context("bare")))
    groups = [g.name for g in client.ApisApi(api).get_api_versions().groups]
    assert "apps" in groups and "gateway.networking.k8s.io" not in groups
