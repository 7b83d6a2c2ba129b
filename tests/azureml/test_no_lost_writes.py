"""Two operators on one Azure ML workspace: an update based on a stale read is refused.

ARM gives online endpoints and deployments no etag and takes no If-Match for them, so
the revision is derived from what ARM returns (``systemData.lastModifiedAt`` and the
written properties) and checked on a GET just before the PUT. Each operator here is its
own AzureMLWorkspace with its own token (its own principal in ``systemData``).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from modeldeck.services.api.domain import EndpointPatch
from modeldeck.services.api.errors import Conflict
from modeldeck.services.azureml.workspace import AzureMLWorkspace

EP = "my-endpoint"
ROUNDS = 50


@pytest.fixture
async def two(fake: Any, token_credential: Any, arm_settings: Any, seeded: Any) -> Any:
    fake.valid_tokens |= {"token-ana", "token-bo"}
    fake.users.update({"token-ana": "ana@contoso.com", "token-bo": "bo@contoso.com"})
    a = AzureMLWorkspace.from_settings("a", arm_settings(fake, token_credential("token-ana")))
    b = AzureMLWorkspace.from_settings("b", arm_settings(fake, token_credential("token-bo")))
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()
        assert fake.schema_errors == []


def puts_by(fake: Any, token: str, suffix: str) -> int:
    return sum(1 for r in fake.calls("PUT", suffix=suffix) if r.token == token)


async def test_revision_changes_with_a_write_and_not_while_arm_provisions(
    ws: Any, seeded: Any
) -> None:
    first = (await ws.get_endpoint(EP)).revision
    assert first and first == (await ws.get_endpoint(EP)).revision
    handle = await ws.update_endpoint(EP, EndpointPatch(description="new words"))
    during = (await ws.get_endpoint(EP)).revision  # Updating
    await handle.wait()
    after = (await ws.get_endpoint(EP)).revision  # Succeeded
    assert during == after != first
    dep = await ws.get_deployment(EP, "blue")
    assert dep.revision and dep.revision != after


async def test_a_stale_traffic_update_is_refused_and_names_who_and_what(
    two: Any, fake: Any
) -> None:
    a, b = two
    seen_by_a = await a.get_endpoint(EP)
    await (await b.update_endpoint(EP, EndpointPatch(traffic={"blue": 50, "green": 50}))).wait()
    with pytest.raises(Conflict) as info:
        await a.update_endpoint(
            EP, EndpointPatch(traffic={"blue": 90, "green": 10}), if_revision=seen_by_a.revision
        )
    err = info.value
    assert err.details["fields"] == ["traffic"]
    assert err.details["changed"] == {"traffic.blue": [100, 50], "traffic.green": [0, 50]}
    assert err.details["changed_by"] == err.details["by"] == "bo@contoso.com"
    assert err.details["current"]["traffic"] == {"blue": 50, "green": 50}
    assert "bo@contoso.com" in err.message and "traffic" in err.message
    assert f"online-endpoint show -n {EP}" in (err.fix or "")
    assert puts_by(fake, "token-ana", f"/onlineEndpoints/{EP}") == 0  # nothing was sent
    assert (await a.get_endpoint(EP)).traffic == {"blue": 50, "green": 50}
    # read again, the same change goes through
    fresh = await a.get_endpoint(EP)
    await (
        await a.update_endpoint(
            EP, EndpointPatch(traffic={"blue": 90, "green": 10}), if_revision=fresh.revision
        )
    ).wait()
    assert (await b.get_endpoint(EP)).traffic == {"blue": 90, "green": 10}


async def test_a_stale_deployment_update_is_refused_before_anything_is_uploaded(
    two: Any, fake: Any
) -> None:
    a, b = two
    first = await b.get_deployment(EP, "blue")  # written once by modeldeck: all its fields
    await (await b.update_deployment(first.spec, if_revision=first.revision)).wait()
    seen_by_a = await a.get_deployment(EP, "blue")
    current = await b.get_deployment(EP, "blue")
    await (
        await b.update_deployment(
            replace(current.spec, instance_count=2), if_revision=current.revision
        )
    ).wait()
    before = len(fake.requests)
    with pytest.raises(Conflict) as info:
        await a.update_deployment(
            replace(seen_by_a.spec, environment_variables={"MODE": "a"}),
            if_revision=seen_by_a.revision,
        )
    changed = info.value.details["changed"]  # {path: [before, after]}, as the CLI reads it
    assert changed["instance_count"] == [1, 2] and "environment_variables" not in changed
    assert info.value.details["changed_by"] == "bo@contoso.com"
    assert "deployment 'blue' of endpoint 'my-endpoint'" in info.value.message
    assert [r.method for r in fake.requests[before:]] == ["GET"]  # no upload, no PUT
    assert (await a.get_deployment(EP, "blue")).spec.instance_count == 2


async def test_no_lost_updates_in_50_concurrent_rounds(two: Any, fake: Any) -> None:
    """Each round both operators read the endpoint, change one field each and write with
    the revision they read: at once (even rounds), or the second after the first's
    operation finished (odd rounds: the race operators run at human speed). Lost:
    reported done, missing after the round."""
    a, b = two
    lost = by_revision = by_arm = both_landed = 0
    for r in range(ROUNDS):
        seen_a, seen_b = await asyncio.gather(a.get_endpoint(EP), b.get_endpoint(EP))
        traffic = {"blue": 99 - r % 90, "green": 1 + r % 90}
        other: dict[str, Any] = (
            {"traffic": {"blue": 1 + r % 90, "green": 99 - r % 90}}
            if r % 4 >= 2
            else {"description": f"round {r}"}
        )

        async def write(ws: AzureMLWorkspace, rev: str, **change: Any) -> None:
            await (await ws.update_endpoint(EP, EndpointPatch(**change), if_revision=rev)).wait()

        first = write(a, seen_a.revision, traffic=traffic)
        second = write(b, seen_b.revision, **other)
        if r % 2 == 0:
            results = await asyncio.gather(first, second, return_exceptions=True)
        else:
            results = [*await asyncio.gather(first, return_exceptions=True)]
            results += await asyncio.gather(second, return_exceptions=True)
        for res in results:
            if res is not None and not isinstance(res, Conflict):
                raise res
        now = await a.get_endpoint(EP)
        wanted = [("traffic", traffic), next(iter(other.items()))]
        landed = 0
        for (fieldname, value), res in zip(wanted, results, strict=True):
            if res is None:
                landed += 1
                lost += getattr(now, fieldname) != value
            elif "another operation is in progress" in res.message:
                by_arm += 1
            else:
                by_revision += 1
        both_landed += landed == 2
        assert landed >= 1, f"round {r}: both refused: {results}"
    print(
        f"azureml: lost updates in {ROUNDS} concurrent rounds: {lost} (losers refused with "
        f"Conflict: {by_revision + by_arm}: {by_revision} by the revision check, {by_arm} by "
        f"ARM's 409 operation in progress; rounds where both landed: {both_landed})"
    )
    assert lost == 0
    assert by_revision + by_arm == ROUNDS - both_landed
    assert by_revision >= ROUNDS // 2  # every stale second write
