"""Issue 14's acceptance on the local workspace, end to end: a real daemon in a temporary home,
real replicas, real traffic through the gateway with the endpoint's key (tests/support/load.py).

The treatment (green) is tests/support/flaky/score.py: it answers 500 to 3 requests in 10 once
its flag file exists. A failing treatment is rolled back within one interval of the moment it
started failing, with no failed request after the rollback; a healthy one is promoted to 100%
step by step (each step an audited change); a daemon killed with SIGKILL mid-rollout comes back
(the client's auto-start) at the same step and finishes.

Short steps (3 s) and a min_requests the load reaches in one step (tests/support/rollouts.py:
acceptance_spec, with the p95 check loosened).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import psutil
import pytest
from modeldeck.services.api.domain import EndpointPatch
from modeldeck.services.api.rollouts import RolloutSpec, RolloutState
from modeldeck.services.local.client import LocalWorkspace

from tests.support.load import Load
from tests.support.rollouts import (
    CONTROL,
    STEPS,
    TREATMENT,
    acceptance_spec,
    finished,
    flaky_pair,
    rollout_until,
)

pytestmark = pytest.mark.e2e

INTERVAL_S = 3.0
RATE = 50.0  # requests a second: 15 on the treatment at 10% over one step
#: how late the rollback may be recorded after the treatment starts failing, in intervals:
#: the issue's "within one interval", with bench/rollout_analysis.py's target as the margin
#: (the flag here is made at the step's start; the bench makes it anywhere in the step)
ROLLBACK_WITHIN = 1.2


def spec(endpoint: str) -> RolloutSpec:
    return acceptance_spec(endpoint, INTERVAL_S)


async def green_steps(ws: LocalWorkspace, endpoint: str, since: float) -> list[tuple[str, int]]:
    """(action, green's share after it) of each audited change of the endpoint's traffic
    since ``since``."""
    history = await ws.get_history(endpoint)
    return [
        (c.action, c.changed[f"traffic.{TREATMENT}"][1])
        for c in history.changes
        if c.at >= since and c.kind == "endpoint" and f"traffic.{TREATMENT}" in c.changed
    ]


async def test_the_flaky_treatment_fails_3_in_10_once_its_flag_exists(
    workspace, h, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """The tools of the tests below: the load's records and the flag's effect."""
    ws, flag = workspace, tmp_path / "fail-now"
    ep, keys = await flaky_pair(ws, "ro-tools", flag)
    await h.wait(
        await ws.update_endpoint("ro-tools", EndpointPatch(traffic={CONTROL: 50, TREATMENT: 50}))
    )
    async with Load(ep.scoring_uri, keys.primaryKey, rate=RATE, max_requests=200) as load:
        await load.wait_for(40)
        flagged = time.time()
        flag.touch()
        await load.wait_for(200)
    before = [r for r in load.records if r.done_at < flagged]  # answered before the flag
    assert before and not [r for r in before if r.failed]
    after = load.since(flagged + 0.5)  # past the answers in flight at the flag
    green = [r for r in after if r.deployment == TREATMENT]
    blue = [r for r in after if r.deployment == CONTROL]
    assert len(green) + len(blue) == len(after) and len(green) >= 40
    assert not [r for r in blue if r.failed]
    failed = sum(r.status == 500 for r in green)
    assert 0.2 <= failed / len(green) <= 0.4, (failed, len(green))
    with pytest.raises(ValueError, match="loopback"):
        Load("http://192.0.2.1:8080/api/v1/endpoint/x/score", "k")


async def test_a_treatment_failing_at_25_percent_is_rolled_back_within_an_interval(
    workspace, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    ws, flag, name = workspace, tmp_path / "fail-now", "ro-fails"
    ep, keys = await flaky_pair(ws, name, flag)
    async with Load(ep.scoring_uri, keys.primaryKey, rate=RATE) as load:
        await load.wait_for(20)
        await ws.start_rollout(spec(name))
        at_25 = await rollout_until(
            ws, name, lambda r: r.weight >= 25 or finished(r), what="at 25%"
        )
        assert (at_25.state, at_25.weight) == (RolloutState.RUNNING, 25), at_25
        failing_since = time.time()
        flag.touch()
        done = await rollout_until(ws, name, finished, what="finished")
        sent = len(load.records)
        await load.wait_for(sent + int(RATE))  # a second of traffic after the verdict
    assert done.state is RolloutState.FAILED, done
    assert done.weight == 0 and done.finished_at is not None
    check = done.last_check
    assert check is not None and check.verdict == "fail", check
    assert check.treatment_errors > 0
    # the message says why, with the numbers
    for number in (check.treatment_errors, check.treatment_requests):
        assert str(number) in done.message, (number, done.message)
    endpoint = await ws.get_endpoint(name)
    assert endpoint.traffic == {CONTROL: 100, TREATMENT: 0}
    assert not any(endpoint.mirror_traffic.values())
    # the rollback is an audited change of the rollout, after its steps
    moves = await green_steps(ws, name, done.started_at)
    assert moves[-1] == ("rollout", 0) and moves[:2] == [("rollout", 10), ("rollout", 25)]
    # green did fail meanwhile (the flag worked), and the rollback came within an interval
    assert any(r.status == 500 and r.deployment == TREATMENT for r in load.since(failing_since))
    late = (done.finished_at - failing_since) / INTERVAL_S
    assert late <= ROLLBACK_WITHIN, f"rolled back {late:.2f} intervals after failing began"
    # not one failed request among those sent after the rollback was recorded
    after = load.since(done.finished_at)
    assert len(after) >= RATE / 2
    assert [r for r in after if r.failed] == []
    assert {r.deployment for r in after} == {CONTROL}


async def test_a_healthy_treatment_is_promoted_step_by_step(workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ws, name = workspace, "ro-healthy"
    ep, keys = await flaky_pair(ws, name, tmp_path / "never-made")
    async with Load(ep.scoring_uri, keys.primaryKey, rate=RATE) as load:
        await load.wait_for(20)
        started = await ws.start_rollout(spec(name))
        done = await rollout_until(ws, name, finished, what="finished")
        await load.wait_for(len(load.records) + int(RATE))  # about a second more of it
    assert done.state is RolloutState.SUCCEEDED, done
    assert done.weight == 100 and done.id == started.id
    endpoint = await ws.get_endpoint(name)
    assert endpoint.traffic == {CONTROL: 0, TREATMENT: 100}
    # every step is an audited change, in order
    assert await green_steps(ws, name, started.started_at) == [("rollout", step) for step in STEPS]
    # no request failed while the traffic moved
    assert load.records and [r for r in load.records if r.failed] == []
    # every request sent once it was promoted went to green (the last answered may be one
    # sent to blue before, answered last: it failed once so under load)
    after = load.since(done.finished_at)
    assert after and {r.deployment for r in after} == {TREATMENT}, after[:5]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_a_rollout_survives_a_sigkill_of_the_daemon(fresh_home, h, tmp_path) -> None:  # type: ignore[no-untyped-def]
    name = "ro-kill"
    async with LocalWorkspace(poll_interval=0.05) as ws:
        ep, keys = await flaky_pair(ws, name, tmp_path / "never-made")
        async with Load(ep.scoring_uri, keys.primaryKey, rate=RATE, max_seconds=180) as load:
            await load.wait_for(20)
            started = await ws.start_rollout(spec(name))
            at_2 = await rollout_until(ws, name, lambda r: r.step >= 1 or finished(r))
            assert (at_2.state, at_2.step, at_2.weight) == (RolloutState.RUNNING, 1, 25), at_2
            pid = (await ws.status())["pid"]
            replicas = [p.pid for p in psutil.Process(pid).children(recursive=True)]
            os.kill(pid, signal.SIGKILL)
            # waited for as tests/local/test_daemon.py does: the replicas go once the daemon's
            # last thread has closed its sockets (a client connecting before that is dropped)
            assert h.wait_until(lambda: all(_gone(p) for p in [pid, *replicas]))
            killed_at = time.time()

            async with LocalWorkspace(poll_interval=0.05) as again:
                assert (await again.status())["pid"] != pid  # started again by the client
                back = await again.get_rollout(name)
                assert back is not None and back.id == started.id
                assert (back.state, back.step, back.weight) == (RolloutState.RUNNING, 1, 25), back
                assert (await again.get_endpoint(name)).traffic == {CONTROL: 75, TREATMENT: 25}
                done = await rollout_until(again, name, finished, what="finished after restart")
                seen = Counter((r.deployment, r.status) for r in load.since(killed_at))
                assert done.state is RolloutState.SUCCEEDED, (done, seen)
                assert (await again.get_endpoint(name)).traffic == {CONTROL: 0, TREATMENT: 100}
                # resumed where it was: each step once, none taken again
                assert await green_steps(again, name, started.started_at) == [
                    ("rollout", step) for step in STEPS
                ]
        # traffic was served again after the restart (the gateway's port kept)
        assert any(r.status == 200 for r in load.since(killed_at))
