r"""The walkthrough against a real cluster: attach, deploy blue and green, split, logs, metrics, clean up.

Runs when ``KUBECONFIG`` is set (or ``MODELDECK_REAL_KUBECONFIG``, which wins: a way to point
the test elsewhere than your everyday kubeconfig), ``:``-separated files merged as kubectl
does. It only ever works in its own namespace, which must already exist: a kubeconfig that
reaches a cluster without it (a production cluster, say) skips the test and says so.

    KUBECONFIG=~/.kube/config \
    MODELDECK_REAL_CONTEXT=kind-kind \          # default: the current context
    MODELDECK_REAL_NAMESPACE=modeldeck-smoke \  # must exist; default modeldeck-smoke
    MODELDECK_REAL_GATEWAY=infra/public \       # optional: the Gateway the routes attach to
    MODELDECK_REAL_GATEWAY_URL=http://1.2.3.4 \ # optional: score through the Gateway too
    python -m pytest tests/real_cluster -q -rs

The cluster needs the Gateway API CRDs (docs/kubernetes.md) and pull access to the
default image. Everything the test made is deleted at the end (``delete_resources``).
Without a kubeconfig the test is skipped and says why (``-ra`` is in the pytest options).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from modeldeck.services.api.domain import (
    ClusterPurpose,
    ClusterSpec,
    CodeConfiguration,
    DeploymentSpec,
    DriverKind,
    Model,
)
from modeldeck.services.api.errors import InvalidInput
from modeldeck.services.drivers.base import DeploymentRuntime, EndpointAuth, EndpointRoute

REAL = os.environ.get("MODELDECK_REAL_KUBECONFIG") or os.environ.get("KUBECONFIG")
REASON = (
    "no real cluster: KUBECONFIG is not set (set it, or MODELDECK_REAL_KUBECONFIG, and "
    "optionally MODELDECK_REAL_CONTEXT and MODELDECK_REAL_NAMESPACE, to run the walkthrough "
    "against a cluster)"
)


@pytest.mark.skipif(not REAL, reason=REASON)
async def test_walkthrough_on_a_real_cluster(
    examples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import secrets

    import httpx
    from modeldeck.services.drivers.kubernetes.driver import KubernetesDriver

    assert REAL
    monkeypatch.setenv("KUBECONFIG", REAL)
    tags = {}
    if os.environ.get("MODELDECK_REAL_GATEWAY"):
        tags["modeldeck.io/gateway"] = os.environ["MODELDECK_REAL_GATEWAY"]
    if os.environ.get("MODELDECK_REAL_GATEWAY_URL"):
        tags["modeldeck.io/gateway-url"] = os.environ["MODELDECK_REAL_GATEWAY_URL"]
    spec = ClusterSpec(
        name="smoke",
        driver=DriverKind.KUBERNETES,
        purpose=ClusterPurpose.DEV_TEST,
        kube_context=os.environ.get("MODELDECK_REAL_CONTEXT") or None,
        namespace=os.environ.get("MODELDECK_REAL_NAMESPACE", "modeldeck-smoke"),
        tags=tags,
    )
    driver = KubernetesDriver(spec, data_dir=tmp_path, rollout_timeout=600, poll_interval=2)
    key = secrets.token_urlsafe(32)
    auth = EndpointAuth("key", key, secrets.token_urlsafe(32), secrets.token_urlsafe(32))
    steps: list[str] = []
    try:
        cap, notes = await driver.attach_check()
    except InvalidInput as exc:
        await driver.close()
        if exc.field != "namespace":
            raise
        pytest.skip(f"the smoke test's namespace is not there: {exc.message} ({exc.fix})")
    try:
        print(f"attached: {cap} {notes}")
        await driver.apply_endpoint(EndpointRoute("smoke-ep", auth, {}))
        for name in ("blue", "green"):
            ds = DeploymentSpec(
                name=name,
                endpoint_name="smoke-ep",
                model="azureml:demo:1",
                code_configuration=CodeConfiguration(str(examples / name), "score.py"),
            )
            rt = DeploymentRuntime(
                ds, Model("demo", 1, str(examples / "model")), str(examples / name)
            )
            await driver.apply_deployment("smoke-ep", rt, lambda f, m: steps.append(f"{f:.2f} {m}"))
        await driver.apply_endpoint(EndpointRoute("smoke-ep", auth, {"blue": 90, "green": 10}))
        state = await driver.list_state()
        assert state["endpoints"]["smoke-ep"]["traffic"] == {"blue": 90, "green": 10}
        assert (await driver.deployment_status("smoke-ep", "blue")).ready_replicas >= 1
        lines = await driver.read_logs("smoke-ep", "blue", 20)
        assert any("listening" in line.text for line in lines)
        print(await driver.metrics("smoke-ep"), driver.metrics_note)
        if os.environ.get("MODELDECK_REAL_GATEWAY_URL"):
            body = (examples / "sample-request.json").read_bytes()
            async with httpx.AsyncClient(timeout=30) as http:
                r = await http.post(
                    driver.scoring_uri("smoke-ep"),
                    content=body,
                    headers={"Authorization": f"Bearer {key}", "azureml-model-deployment": "green"},
                )
                assert r.status_code == 200 and r.json()["version"] == "green"
                assert (
                    await http.post(driver.scoring_uri("smoke-ep"), content=body)
                ).status_code == 401
    finally:
        deleted = await driver.delete_resources()
        print(f"cleaned up {len(deleted)} objects; progress seen: {steps[-3:]}")
        await driver.close()
