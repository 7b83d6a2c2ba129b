"""Endpoints on the fake ARM: create, traffic (always the full map), mirror, keys, token, invoke."""

from __future__ import annotations

from typing import Any

import pytest
from modeldeck.services.api.domain import (
    AuthMode,
    EndpointPatch,
    EndpointSpec,
    KeyType,
    OperationStatus,
)
from modeldeck.services.api.errors import Conflict, InvalidInput, NotFound


async def test_create_endpoint_runs_the_long_operation_to_succeeded(ws: Any, fake: Any) -> None:
    fake.add_compute("myaks")
    handle = await ws.create_endpoint(
        EndpointSpec(
            name="new-ep", compute="myaks", description="walkthrough", tags={"team": "demo"}
        )
    )
    seen = [op async for op in handle.watch()]
    assert seen[-1].status is OperationStatus.SUCCEEDED
    assert any(op.status is OperationStatus.RUNNING for op in seen[:-1])  # InProgress shown first
    put = fake.calls("PUT", "/onlineEndpoints/new-ep")[0]
    assert put.body["properties"]["authMode"] == "Key"
    assert put.body["properties"]["compute"].endswith("/computes/myaks")
    assert put.body["location"] == fake.location
    ep = await ws.get_endpoint("new-ep")
    assert ep.compute == "myaks" and ep.auth_mode is AuthMode.KEY
    assert ep.tags == {"team": "demo"} and ep.scoring_uri.endswith("/score/new-ep")
    assert ep.openapi_uri == ep.scoring_uri + "/swagger.json"  # ARM's swaggerUri


async def test_create_endpoint_twice_is_a_conflict_and_sends_no_put(ws: Any, seeded: Any) -> None:
    with pytest.raises(Conflict):
        await ws.create_endpoint(EndpointSpec(name="my-endpoint", compute="myaks"))
    assert seeded.calls("PUT") == []


async def test_create_endpoint_on_a_missing_cluster_names_it(ws: Any, fake: Any) -> None:
    with pytest.raises(NotFound) as info:
        await ws.create_endpoint(EndpointSpec(name="new-ep", compute="nope"))
    assert "nope" in str(info.value)
    assert fake.calls("PUT") == []


async def test_list_and_show_endpoints(ws: Any, seeded: Any) -> None:
    eps = await ws.list_endpoints()
    assert [e.name for e in eps] == ["my-endpoint"]
    assert eps[0].traffic == {"blue": 100, "green": 0}


async def test_traffic_update_sends_the_full_map_read_just_before(ws: Any, seeded: Any) -> None:
    seeded.add_deployment("my-endpoint", "red")
    seeded.endpoints["my-endpoint"]["properties"]["traffic"] = {"blue": 70, "green": 0, "red": 30}
    handle = await ws.update_endpoint(
        "my-endpoint", EndpointPatch(traffic={"blue": 60, "green": 10, "red": 30})
    )
    await handle.wait()
    put = seeded.calls("PUT", suffix="/onlineEndpoints/my-endpoint")[-1]
    assert put.body["properties"]["traffic"] == {"blue": 60, "green": 10, "red": 30}
    assert (await ws.get_endpoint("my-endpoint")).traffic == {"blue": 60, "green": 10, "red": 30}


async def test_description_update_keeps_every_deployments_weight(ws: Any, seeded: Any) -> None:
    seeded.add_deployment("my-endpoint", "red")
    seeded.endpoints["my-endpoint"]["properties"]["traffic"] = {"blue": 70, "green": 0, "red": 30}
    await (await ws.update_endpoint("my-endpoint", EndpointPatch(description="new words"))).wait()
    put = seeded.calls("PUT", suffix="/onlineEndpoints/my-endpoint")[-1]
    # Azure resets traffic left out of an update to 0: we always send it
    assert put.body["properties"]["traffic"] == {"blue": 70, "green": 0, "red": 30}
    ep = await ws.get_endpoint("my-endpoint")
    assert ep.traffic == {"blue": 70, "green": 0, "red": 30}
    assert ep.description == "new words"


async def test_bad_traffic_is_refused_before_anything_is_sent(ws: Any, seeded: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        await ws.update_endpoint("my-endpoint", EndpointPatch(traffic={"blue": 60, "green": 30}))
    assert info.value.field == "traffic" and "90" in info.value.rule
    with pytest.raises(InvalidInput) as info:
        await ws.update_endpoint("my-endpoint", EndpointPatch(traffic={"blue": 50, "purple": 50}))
    assert info.value.field == "traffic.purple"
    assert seeded.calls("PUT") == []
    assert seeded.endpoints["my-endpoint"]["properties"]["traffic"] == {"blue": 100, "green": 0}


async def test_mirror_traffic_is_validated_and_sent_with_the_live_map(ws: Any, seeded: Any) -> None:
    with pytest.raises(InvalidInput):  # blue takes live traffic: it cannot be a mirror
        await ws.update_endpoint("my-endpoint", EndpointPatch(mirror_traffic={"blue": 10}))
    await (
        await ws.update_endpoint("my-endpoint", EndpointPatch(mirror_traffic={"green": 20}))
    ).wait()
    put = seeded.calls("PUT", suffix="/onlineEndpoints/my-endpoint")[-1]
    assert put.body["properties"]["mirrorTraffic"] == {"green": 20}
    assert put.body["properties"]["traffic"] == {"blue": 100, "green": 0}
    ep = await ws.get_endpoint("my-endpoint")
    assert ep.mirror_traffic == {"green": 20} and ep.traffic == {"blue": 100, "green": 0}


async def test_control_and_tags_ride_on_the_endpoint(ws: Any, seeded: Any) -> None:
    await (
        await ws.update_endpoint(
            "my-endpoint", EndpointPatch(control="blue", tags={"owner": "ana"})
        )
    ).wait()
    ep = await ws.get_endpoint("my-endpoint")
    assert ep.control == "blue" and ep.tags == {"owner": "ana"}


async def test_delete_endpoint(ws: Any, seeded: Any) -> None:
    await (await ws.delete_endpoint("my-endpoint")).wait()
    assert "my-endpoint" not in seeded.endpoints
    with pytest.raises(NotFound):
        await ws.get_endpoint("my-endpoint")


async def test_keys_list_and_regenerate_one_at_a_time(ws: Any, seeded: Any) -> None:
    before = await ws.get_keys("my-endpoint")
    assert before.primaryKey == seeded.keys["my-endpoint"]["primaryKey"]
    after = await ws.regenerate_keys("my-endpoint", KeyType.SECONDARY)
    assert after.primaryKey == before.primaryKey
    assert after.secondaryKey != before.secondaryKey
    body = seeded.calls("POST", "/regenerateKeys")[0].body
    assert body == {"keyType": "Secondary"}


async def test_token_for_an_aml_token_endpoint(ws: Any, seeded: Any) -> None:
    seeded.add_endpoint("tok-ep", "myaks", auth="AMLToken")
    tok = await ws.get_token("tok-ep")
    assert tok.accessToken == seeded.aml_tokens["tok-ep"]
    assert tok.expiryTimeUtc > tok.refreshAfterTimeUtc
    again = await ws.get_token("tok-ep")
    assert again == tok  # cached until refresh-by
    assert len(seeded.calls("POST", "/token")) == 1


async def test_token_of_a_key_endpoint_shows_arms_words(ws: Any, seeded: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        await ws.get_token("my-endpoint")
    assert "Token is only available for endpoints with authMode AMLToken." in str(info.value)


async def test_invoke_calls_the_scoring_uri_with_the_key(ws: Any, seeded: Any) -> None:
    res = await ws.invoke("my-endpoint", b'{"data": [[1, 2]]}')
    assert res.status == 200 and res.deployment == "blue"
    score = seeded.calls("POST", "/score/my-endpoint")[-1]
    assert score.token == seeded.keys["my-endpoint"]["primaryKey"]
    res = await ws.invoke("my-endpoint", b"{}", deployment="green")
    assert res.deployment == "green"


async def test_invoke_after_key_rotation_fetches_the_new_key(ws: Any, seeded: Any) -> None:
    assert (await ws.invoke("my-endpoint", b"{}")).status == 200
    seeded.keys["my-endpoint"]["primaryKey"] = "rotated-elsewhere"
    assert (await ws.invoke("my-endpoint", b"{}")).status == 200
    assert seeded.calls("POST", "/score/my-endpoint")[-1].token == "rotated-elsewhere"


async def test_invoke_with_an_aml_token(ws: Any, seeded: Any) -> None:
    seeded.add_endpoint("tok-ep", "myaks", auth="AMLToken", traffic={"blue": 100})
    seeded.add_deployment("tok-ep", "blue")
    res = await ws.invoke("tok-ep", b"{}")
    assert res.status == 200
    assert seeded.calls("POST", "/score/tok-ep")[-1].token == seeded.aml_tokens["tok-ep"]


async def test_delete_followed_through_location_alone(ws: Any, seeded: Any) -> None:
    seeded.async_header = False  # ARM may answer 202 with Location only
    op = await (await ws.delete_endpoint("my-endpoint")).wait()
    assert op.status is OperationStatus.SUCCEEDED
    polls = seeded.calls("GET", "/mfeOperationResults/")
    assert len(polls) == seeded.lro_steps + 1  # 202 while running, then 200
    assert seeded.calls("GET", "/mfeOperationsStatus/") == []
    assert "my-endpoint" not in seeded.endpoints


async def test_identical_concurrent_reads_share_one_request(ws: Any, seeded: Any) -> None:
    import asyncio

    results = await asyncio.gather(*(ws.list_endpoints() for _ in range(3)))
    assert all([e.name for e in r] == ["my-endpoint"] for r in results)
    assert len(seeded.calls("GET", suffix="/onlineEndpoints")) == 1


async def test_an_update_while_another_runs_is_a_conflict_in_arms_words(
    ws: Any, seeded: Any
) -> None:
    first = await ws.update_endpoint("my-endpoint", EndpointPatch(description="one"))
    with pytest.raises(Conflict) as info:
        await ws.update_endpoint("my-endpoint", EndpointPatch(description="two"))
    assert "another operation is in progress" in str(info.value)
    assert "wait for it" in (info.value.fix or "")
    await first.wait()
    assert (await ws.get_endpoint("my-endpoint")).description == "one"


async def test_a_503_on_regenerate_keys_is_not_repeated(ws: Any, seeded: Any) -> None:
    from modeldeck.services.api.errors import ModeldeckError

    before = dict(seeded.keys["my-endpoint"])
    seeded.fail_transient(1, status=503)
    with pytest.raises(ModeldeckError) as info:
        await ws.regenerate_keys("my-endpoint", KeyType.PRIMARY)
    assert "ServiceUnavailable" in str(info.value)
    assert len(seeded.calls("POST", "/regenerateKeys")) == 1  # not safe to send twice
    assert seeded.keys["my-endpoint"] == before


async def test_an_update_followed_through_the_resource_itself(ws: Any, seeded: Any) -> None:
    seeded.put_headers = False  # 200 with provisioningState Updating, no operation URL
    handle = await ws.update_endpoint("my-endpoint", EndpointPatch(description="polled"))
    states = [op.message async for op in handle.watch()]
    assert states[0] == "Updating" and states[-1] == "Succeeded"
    assert seeded.calls("GET", "/mfeOperationsStatus/") == []
    assert (await ws.get_endpoint("my-endpoint")).description == "polled"


async def test_403_names_the_missing_role(ws: Any, seeded: Any) -> None:
    from modeldeck.services.api.errors import Unauthorized

    seeded.readonly_tokens.add("static-token-1")
    with pytest.raises(Unauthorized) as info:
        await ws.update_endpoint("my-endpoint", EndpointPatch(description="x"))
    assert "AuthorizationFailed: The client 'ana@contoso.com'" in str(info.value)
    assert "AzureML Data Scientist" in (info.value.fix or "")


async def test_operations_can_be_shown_and_listed_by_id(ws: Any, seeded: Any) -> None:
    handle = await ws.update_endpoint("my-endpoint", EndpointPatch(description="x"))
    assert [op.id for op in await ws.list_operations()] == [handle.id]
    first = await ws.get_operation(handle.id)
    assert first.kind == "endpoint.update" and first.target == "my-endpoint"
    await handle.wait()
    done = await ws.get_operation(handle.id)
    assert done.status is OperationStatus.SUCCEEDED and done.progress == 1.0
    with pytest.raises(NotFound):
        await ws.get_operation("arm-nope")


async def test_all_traffic_keeps_a_mirror_on_another_deployment(ws: Any, seeded: Any) -> None:
    from pathlib import Path

    from modeldeck.services.api.domain import CodeConfiguration, DeploymentSpec

    seeded.endpoints["my-endpoint"]["properties"]["mirrorTraffic"] = {"green": 10}
    examples = Path(__file__).resolve().parents[2] / "examples"
    spec = DeploymentSpec(
        name="purple",
        endpoint_name="my-endpoint",
        model="azureml:sklearn-demo:1",
        code_configuration=CodeConfiguration(
            code=str(examples / "blue"), scoring_script="score.py"
        ),
    )
    await (await ws.create_deployment(spec, all_traffic=True)).wait()
    ep = await ws.get_endpoint("my-endpoint")
    assert ep.traffic == {"blue": 0, "green": 0, "purple": 100}
    assert ep.mirror_traffic == {"green": 10}


async def test_aml_tokens_are_fetched_again_once_refresh_by_has_passed(
    ws: Any, seeded: Any
) -> None:
    seeded.add_endpoint("tok-ep", "myaks", auth="AMLToken", traffic={"blue": 100})
    seeded.add_deployment("tok-ep", "blue")
    seeded.aml_token_refresh_in = -1  # refresh-by already behind us when it arrives
    first = await ws.get_token("tok-ep")
    second = await ws.get_token("tok-ep")
    assert first.accessToken != second.accessToken
    assert len(seeded.calls("POST", "/token")) == 2
    # invoke uses the token issued last (the scoring URI accepts only that one)
    assert (await ws.invoke("tok-ep", b"{}")).status == 200
    assert seeded.calls("POST", "/score/tok-ep")[-1].token == seeded.aml_tokens["tok-ep"]
