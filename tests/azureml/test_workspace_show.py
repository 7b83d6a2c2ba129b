"""``workspace show`` / ``list`` on Azure ML: ARM's Workspaces_Get and
Workspaces_ListByResourceGroup, in az ml's shape (azure-ai-ml WorkspaceSchema's keys)."""

from __future__ import annotations

from typing import Any


async def test_show_workspace_reads_arm(ws: Any, fake: Any) -> None:
    shown = await ws.show_workspace()
    res = fake.workspace_resource()
    assert shown["id"] == fake.ws_path and shown["name"] == fake.ws
    assert shown["resource_group"] == fake.rg and shown["location"] == fake.location
    assert shown["container_registry"] == res["properties"]["containerRegistry"]
    assert shown["container_registry"].split("/")[8:] == [
        res["properties"]["containerRegistry"].rsplit("/", 1)[1]
    ]
    assert shown["mlflow_tracking_uri"] == res["properties"]["mlFlowTrackingUri"]
    assert shown["discovery_url"] == f"https://{fake.location}.api.azureml.ms/discovery"
    assert shown["display_name"] == fake.ws and shown["tags"] == {"team": "ml"}
    assert shown["identity"]["type"] == "system_assigned"
    assert shown["public_network_access"] == "Enabled" and shown["hbi_workspace"] is False
    listed = await ws.list_workspaces()
    assert [w["name"] for w in listed] == [fake.ws]
    got = [r.path for r in fake.requests if r.method == "GET"]
    assert fake.ws_path.rsplit("/", 1)[0] in got
