"""Revisions on a real control plane: a stale write is refused naming what changed and who.

Two clients of one daemon stand for two operators: the second one's requests carry another
SSH client address (``SSH_CONNECTION``), as two people sharing a jump-box account would.
"""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
import pytest
from modeldeck.services.api import revisions
from modeldeck.services.api.domain import EndpointPatch
from modeldeck.services.api.errors import Conflict
from modeldeck.services.local.client import LocalWorkspace, UnixTransport

pytestmark = pytest.mark.e2e


@pytest.fixture
async def other(workspace, monkeypatch):  # type: ignore[no-untyped-def]
    """A second operator: the same account, logged in from 10.9.8.7."""
    monkeypatch.setenv("SSH_CONNECTION", "10.9.8.7 52100 10.0.0.1 22")
    ws = LocalWorkspace(autostart=False, poll_interval=0.05)
    ws._http()  # the client names itself when it is first used
    monkeypatch.delenv("SSH_CONNECTION")
    try:
        yield ws
    finally:
        await ws.close()


async def test_a_stale_deployment_update_is_refused_naming_the_change_and_who(  # type: ignore[no-untyped-def]
    workspace, other, h
) -> None:
    ws = workspace
    await h.make_endpoint(ws, "rev-ep")
    await h.wait(await ws.create_deployment(h.deployment("blue", "rev-ep", instances=0)))
    mine = await ws.get_deployment("rev-ep", "blue")
    theirs = await other.get_deployment("rev-ep", "blue")
    assert mine.revision == theirs.revision != ""
    assert (await ws.get_deployment("rev-ep", "blue")).revision == mine.revision  # reads: same

    changed = replace(
        theirs.spec, request_settings=replace(theirs.spec.request_settings, request_timeout_ms=7000)
    )
    await h.wait(await other.update_deployment(changed, if_revision=theirs.revision))
    now = await ws.get_deployment("rev-ep", "blue")
    assert int(now.revision) > int(mine.revision)

    with pytest.raises(Conflict) as err:
        await ws.update_deployment(
            replace(mine.spec, description="mine"), if_revision=mine.revision
        )
    msg = err.value.message
    assert msg.startswith(
        f"deployment 'blue' changed since you read it (revision {mine.revision} -> {now.revision} by "
    ), msg
    assert "ssh from 10.9.8.7" in msg
    assert "request_settings.request_timeout_ms 5000 -> 7000" in msg
    assert "provisioning_state" not in msg  # the rollout's own states are not the news
    assert err.value.fix and "online-deployment show -e rev-ep -n blue" in err.value.fix
    details = err.value.details
    assert details["revision_sent"] == mine.revision
    assert details["revision_now"] == now.revision
    assert details["changed"]["request_settings.request_timeout_ms"] == [5000, 7000]
    assert "10.9.8.7" in details["by"]
    # the refused write changed nothing
    after = await ws.get_deployment("rev-ep", "blue")
    assert (after.revision, after.spec.description) == (now.revision, "")
    assert after.spec.request_settings.request_timeout_ms == 7000
    # with the fresh revision, the same change goes through
    await h.wait(
        await ws.update_deployment(
            replace(after.spec, description="mine"), if_revision=after.revision
        )
    )
    final = await ws.get_deployment("rev-ep", "blue")
    assert (final.spec.description, final.spec.request_settings.request_timeout_ms) == (
        "mine",
        7000,
    )


async def test_a_stale_traffic_change_is_refused_and_the_route_stays(  # type: ignore[no-untyped-def]
    workspace, other, h
) -> None:
    ws = workspace
    await h.make_endpoint(ws, "rev-tr")
    for name in ("blue", "green"):
        await h.wait(await ws.create_deployment(h.deployment(name, "rev-tr", instances=0)))
    await h.wait(
        await ws.update_endpoint("rev-tr", EndpointPatch(traffic={"blue": 100, "green": 0}))
    )
    read = await ws.get_endpoint("rev-tr")
    await h.wait(
        await other.update_endpoint(
            "rev-tr", EndpointPatch(traffic={"blue": 50, "green": 50}), if_revision=read.revision
        )
    )
    with pytest.raises(Conflict) as err:
        await ws.update_endpoint(
            "rev-tr", EndpointPatch(traffic={"blue": 90, "green": 10}), if_revision=read.revision
        )
    msg = err.value.message
    assert msg.startswith(f"endpoint 'rev-tr' changed since you read it (revision {read.revision}")
    assert "traffic.blue 100 -> 50" in msg and "traffic.green 0 -> 50" in msg
    assert "ssh from 10.9.8.7" in msg
    assert (await ws.get_endpoint("rev-tr")).traffic == {"blue": 50, "green": 50}
    # a key rotation is a change too, and the history never holds the key itself
    before = await ws.get_endpoint("rev-tr")
    keys = await ws.regenerate_keys("rev-tr", "primary")
    with pytest.raises(Conflict) as err:
        await ws.update_endpoint(
            "rev-tr", EndpointPatch(description="x"), if_revision=before.revision
        )
    assert "primary_key" in err.value.message
    assert keys.primaryKey not in json.dumps(err.value.to_dict())
    # a revision that is not one
    with pytest.raises(Exception) as bad:
        await ws.update_endpoint("rev-tr", EndpointPatch(description="x"), if_revision="seven")
    assert "if_revision" in str(bad.value)


async def test_who_is_checked_against_the_peer_uid(workspace, h, daemon_home) -> None:  # type: ignore[no-untyped-def]
    """A client naming someone else is recorded as the socket's owner, the name a claim."""
    ws = workspace
    await h.make_endpoint(ws, "rev-who")
    read = await ws.get_endpoint("rev-who")
    async with httpx.AsyncClient(
        transport=UnixTransport(str(daemon_home.state / "modeldeck.sock")),
        base_url="http://modeldeck",
    ) as raw:
        resp = await raw.patch(
            "/v1/endpoints/rev-who",
            json={"description": "spoofed"},
            headers={revisions.ACTOR_HEADER: "mallory@elsewhere", "If-Match": read.revision},
        )
        assert resp.status_code == 200, resp.text
        stale = await raw.patch(
            "/v1/endpoints/rev-who",
            json={"description": "again"},
            headers={"If-Match": f'"{read.revision}"'},  # an ETag's quotes are fine
        )
    assert stale.status_code == 409
    error = stale.json()["error"]
    import getpass
    import socket

    # the peer's uid is who it is (SO_PEERCRED); the header's other name only a claim
    by = f"{getpass.getuser()}@{socket.gethostname()} (claimed mallory@elsewhere)"
    assert error["details"]["by"] == by
    assert (await ws.get_endpoint("rev-who")).description == "spoofed"


async def test_local_update_routes_to_its_deployment_only_if_nothing_changed_since(  # type: ignore[no-untyped-def]
    workspace, other, h
) -> None:
    """``online-deployment update --local`` gives the sole deployment the endpoint's traffic
    with the revision it read: another operator who added green and routed to it meanwhile
    keeps that traffic (it was set back to blue: 100 over their change), and is named."""
    from modeldeck.cli import cmd_deployment

    ws = workspace
    await h.make_endpoint(ws, "rev-sole")
    await h.wait(await ws.create_deployment(h.deployment("blue", "rev-sole")))
    assert (await ws.get_endpoint("rev-sole")).traffic.get("blue") != 100

    class Racing:
        """The workspace as the command sees it; the other operator acts right after its
        last read of the endpoint."""

        reads = 0

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(ws, name)

        async def get_endpoint(self, name: str):  # type: ignore[no-untyped-def]
            ep = await ws.get_endpoint(name)
            self.reads += 1
            if self.reads == 1:
                await h.wait(
                    await other.create_deployment(
                        h.deployment("green", "rev-sole"), all_traffic=True
                    )
                )
            return ep

    with pytest.raises(Conflict) as err:
        await cmd_deployment._route_to_sole(Racing(), "rev-sole", "blue")
    assert "traffic" in err.value.message
    assert (await ws.get_endpoint("rev-sole")).traffic == {"blue": 0, "green": 100}
