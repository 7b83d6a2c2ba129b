"""Progressive rollouts in the local control plane (issue 14), on a real daemon with real
replicas: bad input is refused with a clear error and changes nothing; an operator pauses,
resumes, promotes and aborts over the API; each traffic step and each event is in the
endpoint's audit history; a manual traffic change pauses the rollout; the record survives a
graceful restart of the daemon and is driven again.

No load is sent: without requests a step's check waits (``min_requests``), so a rollout
holds its first step for as long as a test needs. Rollback with real load, SIGKILL and the
bench are tests/local/test_rollout_acceptance.py's.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import EndpointPatch, ProvisioningState
from modeldeck.services.api.errors import Conflict, InvalidInput, NotFound
from modeldeck.services.api.rollouts import Rollout, RolloutSpec, RolloutState
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.local.controlplane import daemon

from tests.support.load import Load
from tests.support.rollouts import rollout_until, webhook_receiver

WAIT_S = 30.0  # only to avoid hangs


async def _pair(ws: LocalWorkspace, h: Any, name: str) -> None:
    """Endpoint ``name``: blue with all the traffic, green Ready with none."""
    await h.make_endpoint(ws, name)
    await h.wait(await ws.create_deployment(h.deployment("blue", name), all_traffic=True))
    await h.wait(await ws.create_deployment(h.deployment("green", name, code="green")))


def _spec(endpoint: str, **kw: Any) -> RolloutSpec:
    values: dict[str, Any] = {
        "endpoint": endpoint,
        "to": "green",
        "steps": (10, 50, 100),
        "interval_s": 1.0,
        "min_requests": 5,
    }
    return RolloutSpec(**{**values, **kw})


def _holding_first_step(r: Rollout) -> bool:
    return r.state is RolloutState.RUNNING and r.traffic == {"blue": 90, "green": 10}


async def test_bad_input_is_refused_and_changes_nothing(workspace, h, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await _pair(ws, h, "ro-bad")
    # a treatment that is not Ready: its replicas fail to start
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "score.py").write_text(
        "def init():\n    raise RuntimeError('no model')\n\ndef run(raw):\n    return raw\n"
    )
    handle = await ws.create_deployment(h.deployment("red", "ro-bad", code=str(broken)))
    with pytest.raises(Exception):  # noqa: B017  # its init fails: the create fails
        await h.wait(handle)
    red = await ws.get_deployment("ro-bad", "red")
    assert red.provisioning_state is not ProvisioningState.SUCCEEDED
    before = await ws.get_endpoint("ro-bad")
    refused: list[tuple[RolloutSpec, type[Exception], str]] = [
        (_spec("ro-bad", steps=(10, 5, 100)), InvalidInput, "steps must increase"),
        (_spec("ro-bad", steps=(10, 50)), InvalidInput, "the last step must be 100"),
        (_spec("ro-bad", to="purple"), NotFound, "deployment 'purple' not found"),
        (_spec("ro-bad", from_="purple"), NotFound, "deployment 'purple' not found"),
        (_spec("ro-bad", from_="green"), InvalidInput, "must differ from"),
        (_spec("ro-bad", to="blue"), InvalidInput, "already takes all live traffic"),
        (_spec("ro-bad", interval_s=0.1), InvalidInput, "interval"),
        (_spec("no-such-endpoint"), NotFound, "endpoint 'no-such-endpoint' not found"),
    ]
    for spec, error, words in refused:
        with pytest.raises(error) as err:
            await ws.start_rollout(spec)
        assert words in str(err.value), (spec, str(err.value))
    # the same refusals from the control plane itself, the client's own checks passed by
    body = {"to": "green", "steps": [10, 5, 100], "interval_s": 1, "min_requests": 5}
    with pytest.raises(InvalidInput, match="steps must increase"):
        await ws._call("POST", "/v1/endpoints/ro-bad/rollout", json=body)
    with pytest.raises(InvalidInput, match="is not a field of rollout"):
        await ws._call("POST", "/v1/endpoints/ro-bad/rollout", json={"to": "green", "x": 1})
    with pytest.raises(InvalidInput) as err:
        await ws.start_rollout(_spec("ro-bad", to="red", from_="blue"))
    assert "is not Ready" in str(err.value) and err.value.fix

    after = await ws.get_endpoint("ro-bad")
    assert (after.traffic, after.mirror_traffic, after.revision) == (
        before.traffic,
        before.mirror_traffic,
        before.revision,
    )
    assert await ws.get_rollout("ro-bad") is None
    assert all(c.kind != "rollout" for c in (await ws.get_history("ro-bad")).changes)


async def test_operators_pause_resume_and_promote_and_each_step_is_in_the_history(
    workspace, h
) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await _pair(ws, h, "ro-ops")
    started = await ws.start_rollout(_spec("ro-ops"))
    assert started.state is RolloutState.RUNNING and started.control == "blue"
    assert started.driven_by.endswith(":" + str(Path(daemon.socket_path()).parent))
    assert "@" in started.started_by

    # a second rollout while this one runs: Conflict, and nothing changes
    with pytest.raises(Conflict) as err:
        await ws.start_rollout(_spec("ro-ops"))
    assert "already has a rollout of green" in str(err.value)

    held = await rollout_until(ws, "ro-ops", _holding_first_step, WAIT_S, "green 10%")
    assert (await ws.get_endpoint("ro-ops")).traffic == {"blue": 90, "green": 10}
    assert [r.id for r in await ws.list_rollouts() if r.spec.endpoint == "ro-ops"] == [started.id]

    # a stale revision is refused; the current one pauses it, traffic held where it is
    with pytest.raises(Conflict, match="changed since you read it"):
        await ws.control_rollout("ro-ops", "pause", if_revision=started.revision)
    held = await ws.get_rollout("ro-ops")
    assert held is not None
    # another operator's dashboard, waiting on the workspace's revision, is woken by it
    revision = await ws.watch()
    woken = asyncio.ensure_future(ws.watch(revision, timeout=20.0))
    paused = await ws.control_rollout("ro-ops", "pause", if_revision=held.revision)
    assert int(await asyncio.wait_for(woken, WAIT_S) or 0) > int(revision or 0)
    assert paused.state is RolloutState.PAUSED and "paused by" in paused.message
    await asyncio.sleep(1.5)  # more than one interval: a paused rollout moves nothing
    assert (await ws.get_endpoint("ro-ops")).traffic == {"blue": 90, "green": 10}
    assert (await ws.get_rollout("ro-ops")).state is RolloutState.PAUSED  # type: ignore[union-attr]
    with pytest.raises(Conflict):  # a paused one is not paused again... nor started again
        await ws.start_rollout(_spec("ro-ops"))

    resumed = await ws.control_rollout("ro-ops", "resume")
    assert resumed.state is RolloutState.RUNNING and resumed.step == 0
    promoted = await ws.control_rollout("ro-ops", "promote")
    assert promoted.state is RolloutState.SUCCEEDED and promoted.finished_at
    assert (await ws.get_endpoint("ro-ops")).traffic == {"blue": 0, "green": 100}
    with pytest.raises(Conflict, match="Succeeded: nothing to abort"):
        await ws.control_rollout("ro-ops", "abort")
    with pytest.raises(InvalidInput, match="is not a rollout action"):
        await ws.control_rollout("ro-ops", "explode")

    history = (await ws.get_history("ro-ops")).changes
    steps = [c for c in history if c.kind == "endpoint" and c.action == "rollout"]
    # the first step and the promotion (the resume wrote the maps the endpoint had: no change)
    assert [c.changed["traffic.green"][1] for c in steps] == [10, 100]
    assert all(c.actor.startswith(f"rollout {started.id} of ro-ops (started by ") for c in steps)
    assert "promote by " in steps[-1].actor  # who promoted it
    events = [c.changed["event"][1] for c in history if c.kind == "rollout"]
    events = [e for e in events if e != "waiting"]  # no load: a step may say it waits
    assert events == ["started", "step", "paused", "resumed", "promoted"]


async def test_a_manual_traffic_change_pauses_the_rollout_and_abort_puts_the_control_back(
    workspace, h
) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await _pair(ws, h, "ro-man")
    started = await ws.start_rollout(_spec("ro-man"))
    await rollout_until(ws, "ro-man", _holding_first_step, WAIT_S, "green 10%")
    await h.wait(
        await ws.update_endpoint("ro-man", EndpointPatch(traffic={"blue": 80, "green": 20}))
    )
    paused = await rollout_until(
        ws, "ro-man", lambda r: r.state is RolloutState.PAUSED, WAIT_S, "paused by the change"
    )
    assert "traffic changed by hand to blue=80 green=20" in paused.message
    await asyncio.sleep(1.5)  # the operator's map stands: the rollout never writes over it
    assert (await ws.get_endpoint("ro-man")).traffic == {"blue": 80, "green": 20}

    aborted = await ws.control_rollout("ro-man", "abort")
    assert aborted.state is RolloutState.ABORTED and aborted.id == started.id
    assert (await ws.get_endpoint("ro-man")).traffic == {"blue": 100, "green": 0}
    # and once it ended, a new one may start
    again = await ws.start_rollout(_spec("ro-man"))
    assert again.id != started.id
    await ws.control_rollout("ro-man", "abort")


async def test_an_operator_s_revision_holds_while_checks_are_saved_not_across_a_step(
    workspace, h
) -> None:  # type: ignore[no-untyped-def]
    """A running rollout under load saves its check's figures about once a second; a pause
    sent with the revision read before several of them is taken (only the figures moved),
    one with the revision of before the step was taken is refused."""
    ws = workspace
    await _pair(ws, h, "ro-rev")
    ep, keys = await ws.get_endpoint("ro-rev"), await ws.get_keys("ro-rev")
    # one step held for an hour, past min_requests at once: each check's figures differ
    spec = _spec("ro-rev", steps=(50, 100), interval_s=3600.0, min_requests=1)
    started = await ws.start_rollout(replace(spec, max_p95_ratio=50.0, max_error_rate=100.0))
    async with Load(ep.scoring_uri, keys.primaryKey, rate=20.0, max_seconds=WAIT_S):
        held = await rollout_until(
            ws, "ro-rev", lambda r: r.traffic == {"blue": 50, "green": 50}, WAIT_S, "50%"
        )
        checks = {held.last_check}
        while len(checks) < 4:  # three checks saved since the revision was read
            now = await rollout_until(
                ws, "ro-rev", lambda r: r.last_check not in checks, WAIT_S, "a new check"
            )
            assert now.state is RolloutState.RUNNING, now.message
            assert now.revision == held.revision
            checks.add(now.last_check)
        with pytest.raises(Conflict, match="changed since you read it"):  # before the step
            await ws.control_rollout("ro-rev", "pause", if_revision=started.revision)
        paused = await ws.control_rollout("ro-rev", "pause", if_revision=held.revision)
    assert paused.state is RolloutState.PAUSED and paused.revision != held.revision
    await ws.control_rollout("ro-rev", "abort")


async def test_a_rollout_survives_a_graceful_restart_of_the_daemon(
    workspace, h, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await _pair(ws, h, "ro-rst")
    started = await ws.start_rollout(_spec("ro-rst"))
    held = await rollout_until(ws, "ro-rst", _holding_first_step, WAIT_S, "green 10%")
    assert daemon.stop_daemon(timeout=20.0) is True
    # the control plane comes back under another name (getpass reads LOGNAME first; a host
    # renamed alike): the state dir's rollout is still its own to drive
    monkeypatch.setenv("LOGNAME", "renamed")
    daemon.ensure_daemon()

    after = await ws.get_rollout("ro-rst")
    assert after is not None and after.id == started.id
    assert (after.state, after.step, after.traffic) == (held.state, held.step, held.traffic)
    assert after.driven_by.startswith("renamed@") and started.driven_by != after.driven_by
    assert (await ws.get_endpoint("ro-rst")).traffic == {"blue": 90, "green": 10}
    # it is driven again: an operator's action reaches its runner
    paused = await ws.control_rollout("ro-rst", "pause")
    assert paused.state is RolloutState.PAUSED
    await ws.control_rollout("ro-rst", "abort")
    assert (await ws.get_endpoint("ro-rst")).traffic == {"blue": 100, "green": 0}


async def test_a_deleted_endpoint_s_rollout_stops(workspace, h) -> None:  # type: ignore[no-untyped-def]
    ws = workspace
    await _pair(ws, h, "ro-del")
    started = await ws.start_rollout(_spec("ro-del"))
    await rollout_until(ws, "ro-del", _holding_first_step, WAIT_S, "green 10%")
    await h.wait(await ws.delete_endpoint("ro-del"))
    # the record stays (the workspace's list says how it ended)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:
        ended = [r for r in await ws.list_rollouts() if r.id == started.id]
        if ended and ended[0].state is RolloutState.ABORTED:
            break
        assert loop.time() < deadline, ended
        await asyncio.sleep(0.05)
    assert "not found" in ended[0].message


async def test_each_event_is_posted_to_the_webhook_in_order(workspace, h) -> None:  # type: ignore[no-untyped-def]
    """The daemon posts each event of a rollout as JSON to its webhook (a real HTTP server on
    loopback), in the order they happened, without holding the rollout up."""
    ws = workspace
    await _pair(ws, h, "ro-hook")
    async with webhook_receiver() as (url, posts):
        started = await ws.start_rollout(_spec("ro-hook", webhook=url))
        await rollout_until(ws, "ro-hook", _holding_first_step, WAIT_S, "green 10%")
        await ws.control_rollout("ro-hook", "pause")
        await ws.control_rollout("ro-hook", "abort")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while not any(p["event"] == "aborted" for p in posts) and loop.time() < deadline:
            await asyncio.sleep(0.05)
    events = [p["event"] for p in posts if p["event"] != "waiting"]
    assert events == ["started", "step", "paused", "aborted"], events
    assert {p["rollout"]["id"] for p in posts} == {started.id}
    assert posts[-1]["rollout"]["state"] == "Aborted" and posts[-1]["endpoint"] == "ro-hook"
    assert all("secret-token" not in str(p) for p in posts)  # the URL's secret is not echoed
