"""The audit history on Azure ML: the Azure activity log (issue 13), read through the fake
ARM server's ``Microsoft.Insights/eventtypes/management/values`` (api-version 2015-04-01,
$filter patterns as learn.microsoft.com/rest/api/monitor/activity-logs/list documents
them). Who and which operation, one record per operation; what it cannot show is said."""

from __future__ import annotations

from typing import Any

import pytest
from modeldeck.services.api.domain import EndpointPatch, KeyType

pytestmark = pytest.mark.asyncio


async def test_history_reads_the_activity_log_of_the_endpoint_and_its_deployments(
    ws: Any, seeded: Any
) -> None:
    seeded.users["static-token-1"] = "ana@contoso.com"
    seeded.add_endpoint("other", "myaks", traffic={})
    seeded.endpoints["my-endpoint"]["properties"]["traffic"] = {"blue": 90, "green": 10}
    await (
        await ws.update_endpoint("my-endpoint", EndpointPatch(traffic={"blue": 100, "green": 0}))
    ).wait()
    await ws.regenerate_keys("my-endpoint", KeyType.SECONDARY)
    await (await ws.delete_deployment("my-endpoint", "green")).wait()
    await (await ws.update_endpoint("other", EndpointPatch(description="not mine"))).wait()

    found = await ws.get_history("my-endpoint")
    steps = [(c.target, c.action, c.status) for c in found.changes]
    assert steps[0] == ("my-endpoint", "update", "Succeeded"), steps
    assert ("my-endpoint", "regenerate-keys", "Succeeded") in steps
    assert ("my-endpoint/green", "delete", "Succeeded") in steps
    assert all(c.target.startswith("my-endpoint") for c in found.changes)  # not "other"
    assert len(steps) == len(set(c.at for c in found.changes))  # one per operation
    assert all(c.actor == "ana@contoso.com" for c in found.changes)
    assert all(c.changed == {} for c in found.changes)
    assert "not the values before and after" in (found.missing or "")
    (call,) = [r for r in seeded.requests if r.path.endswith("/eventtypes/management/values")]
    assert call.query["api-version"] == "2015-04-01"
    assert call.query["$filter"].startswith("eventTimestamp ge '")
    assert call.query["$filter"].endswith(f"resourceGroupName eq '{seeded.rg}'")


async def test_the_fake_refuses_a_filter_the_service_does_not_allow(ws: Any, fake: Any) -> None:
    path = f"/subscriptions/{fake.sub}/providers/Microsoft.Insights/eventtypes/management/values"
    for bad in ("resourceGroupName eq 'rg'", "eventTimestamp ge '2000-01-01T00:00:00Z'"):
        resp = await ws.arm.request(
            "GET", path, params={"api-version": "2015-04-01", "$filter": bad}, allow=(400,)
        )
        assert resp.status_code == 400, bad
    fake.schema_errors.clear()


async def test_history_in_the_cli_says_what_azure_does_not_show(  # type: ignore[no-untyped-def]
    ws: Any, seeded: Any, capsys
) -> None:
    import json

    from modeldeck.cli.cmd_endpoint import history

    class Args:
        name = "my-endpoint"
        only_show_errors = False

    await (await ws.update_endpoint("my-endpoint", EndpointPatch(description="x"))).wait()
    rows = await history(Args(), ws)  # type: ignore[arg-type]
    assert [r["action"] for r in rows] == ["update"] and rows[0]["time"].endswith("+00:00")
    assert rows[0]["who"] == "tester@contoso.com" and rows[0]["changes"] == []
    err = capsys.readouterr().err
    assert "WARNING:" in err and "not available on Azure ML" in err
    json.dumps(rows)
