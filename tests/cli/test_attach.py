"""``compute attach`` takes az's ``--resource-id`` to an azureml workspace, a kubeconfig
context to a local one: the real handler, against the fake ARM server of tests/azureml."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from modeldeck.cli import cmd_compute
from modeldeck.cli.parser import build_parser
from modeldeck.services.api.errors import InvalidInput

from tests.support.fake_arm import FakeArm, StaticTokenCredential, open_cloud_workspace

AKS_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
    "Microsoft.ContainerService/managedClusters/prod-aks"
)


def _args(line: list[str]) -> Any:
    return build_parser(line).parse_args(line)


def test_resource_id_is_parsed_and_kube_context_is_optional() -> None:
    args = _args(
        ["compute", "attach", "-n", "prod-aks", "--type", "Kubernetes", "--resource-id", AKS_ID]
    )
    assert (args.resource_id, args.kube_context) == (AKS_ID, None)


async def test_a_resource_id_alone_on_a_local_workspace_says_what_to_pass(md_home: Path) -> None:
    args = _args(["compute", "attach", "-n", "prod-aks", "--resource-id", AKS_ID])
    with pytest.raises(InvalidInput) as err:
        await cmd_compute.attach(args, None)  # refused before the workspace is used
    assert err.value.field == "--resource-id" and "--kube-context" in (err.value.fix or "")
    args = _args(["compute", "attach", "-n", "prod-aks"])
    with pytest.raises(InvalidInput) as err:
        await cmd_compute.attach(args, None)
    assert err.value.field == "kube_context"


@pytest.fixture
async def cloud(md_home: Path) -> AsyncIterator[tuple[Any, Any]]:
    fake = await FakeArm(valid_tokens={"static-token-1"}).start()
    ws = open_cloud_workspace(fake, StaticTokenCredential("static-token-1"), md_home)
    try:
        yield fake, ws
    finally:
        await ws.close()
        await fake.stop()


async def test_resource_id_reaches_azure_ml(cloud: tuple[Any, Any]) -> None:
    fake, ws = cloud
    line = ["compute", "attach", "-w", "cloud", "-n", "prod-aks", "--type", "Kubernetes"]
    args = _args([*line, "--resource-id", AKS_ID, "--namespace", "models"])
    shown = await cmd_compute.attach(args, ws)
    assert shown["name"] == "prod-aks" and shown["resource_id"] == AKS_ID
    body = fake.calls("PUT", "/computes/prod-aks")[0].body
    assert body["properties"]["computeType"] == "Kubernetes"
    assert body["properties"]["resourceId"] == AKS_ID
    # without a resource id, the workspace says how to find it; nothing is sent
    with pytest.raises(InvalidInput) as err:
        await cmd_compute.attach(_args([*line[:-2], "-n", "other-aks"]), ws)
    assert "az aks show --query id" in (err.value.fix or "")
    assert fake.calls("PUT", "/computes/other-aks") == []
    assert fake.schema_errors == []
