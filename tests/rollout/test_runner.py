"""The rollout runner end to end on the REAL local workspace: a daemon in a temporary home,
two real deployments (blue: the control, green: the treatment, tests/support/flaky/score.py
for both), real requests through the gateway with the endpoint's key (tests/support/load.py),
the runner driving the endpoint through WorkspaceTarget (the client's update_endpoint with
the revision it read; the gateway's counters through get_metrics). The book is a small one
here: records in a dict, events in a list (the control plane's is the store; see H2's).

Short steps (1-2 s), min_requests 20; the p95 rule is loosened (max_p95_ratio 5): two
replicas of one script on a shared 2-core host differ in p95 by chance, and these tests are
about the error rate and the state machine (tests/rollout/test_analysis.py checks the p95
rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from modeldeck.services.api.domain import EndpointPatch
from modeldeck.services.api.errors import Conflict
from modeldeck.services.api.rollouts import (
    Rollout,
    RolloutCheck,
    RolloutSpec,
    RolloutState,
    check_start,
)
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.rollout.runner import RolloutRunner
from modeldeck.services.rollout.workspace_target import WorkspaceTarget

from tests.local.conftest import wait
from tests.support.load import Load
from tests.support.rollouts import CONTROL, TREATMENT, flaky_pair

pytestmark = pytest.mark.e2e

RATE = 60.0  # requests a second through the gateway: 12 on green at 20%
BOUND_S = 60.0  # only against a hang


class Book:
    """A RolloutBook keeping records in a dict and every event in a list."""

    def __init__(self, on_event: Callable[[Rollout, str], None] | None = None) -> None:
        self.records: dict[str, Rollout] = {}
        self.saved: list[Rollout] = []
        self.events: list[tuple[str, Rollout, RolloutCheck | None]] = []
        self.on_event = on_event
        self._n = 0

    def save(self, rollout: Rollout) -> Rollout:
        """Compare-and-set on the revision, as the control plane's store does."""
        stored = self.records.get(rollout.spec.endpoint)
        if stored is not None and stored.id == rollout.id and stored.revision != rollout.revision:
            raise Conflict(f"revision {rollout.revision} -> {stored.revision}")
        self._n += 1
        saved = dataclasses.replace(rollout, revision=str(self._n))
        self.records[rollout.spec.endpoint] = saved
        self.saved.append(saved)
        return saved

    def load(self, endpoint: str) -> Rollout | None:
        return self.records.get(endpoint)

    async def notify(self, rollout: Rollout, event: str, check: RolloutCheck | None) -> None:
        self.events.append((event, rollout, check))
        if self.on_event is not None:
            self.on_event(rollout, event)

    def names(self) -> list[str]:
        return [e for e, _, _ in self.events]


async def start(
    ws: LocalWorkspace, book: Book, endpoint: str, **spec: object
) -> tuple[RolloutRunner, asyncio.Task[Rollout]]:
    """A rollout record as a host makes it (check_start on the endpoint as it is), its runner
    and the task running it."""
    rollout_spec = check_start(
        RolloutSpec(
            endpoint=endpoint,
            to=TREATMENT,
            min_requests=20,
            max_p95_ratio=5.0,
            **spec,  # type: ignore[arg-type]
        ),
        await ws.get_endpoint(endpoint),
        await ws.list_deployments(endpoint),
    )
    now = time.time()
    record = book.save(
        Rollout(
            id=f"r-{endpoint}-{len(book.saved)}",
            spec=rollout_spec,
            state=RolloutState.RUNNING,
            step=-1 if rollout_spec.mirror_first_s else 0,
            weight=0,
            started_at=now,
            step_started_at=now,
            updated_at=now,
        )
    )
    runner = RolloutRunner(record, WorkspaceTarget(ws, poll_s=0.1), book)
    return runner, asyncio.create_task(runner.run())


async def until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {BOUND_S:g} s")
        await asyncio.sleep(0.02)


async def by_hand(ws: LocalWorkspace, endpoint: str, blue: int, green: int) -> None:
    """An operator's traffic change, on the revision read."""
    ep = await ws.get_endpoint(endpoint)
    patch = EndpointPatch(traffic={CONTROL: blue, TREATMENT: green})
    await wait(await ws.update_endpoint(endpoint, patch, if_revision=ep.revision))


def _holds(book: Book, endpoint: str, step: int, traffic: dict[str, int]) -> bool:
    record = book.load(endpoint)
    return record is not None and (record.step, record.traffic) == (step, traffic)


async def traffic(ws: LocalWorkspace, endpoint: str) -> dict[str, int]:
    return {k: v for k, v in (await ws.get_endpoint(endpoint)).traffic.items() if v}


async def test_a_healthy_treatment_is_promoted_step_by_step_and_resumes_after_a_restart(
    workspace: LocalWorkspace, tmp_path: Path
) -> None:
    ws = workspace
    ep, keys = await flaky_pair(ws, "roll-ok", tmp_path / "never")
    book = Book()
    async with Load(ep.scoring_uri, keys.primaryKey, rate=RATE, max_seconds=BOUND_S) as load:
        _, task = await start(ws, book, "roll-ok", steps=(20, 50, 100), interval_s=1.0)
        await until(lambda: "step" in book.names(), "at its first step")
        assert await traffic(ws, "roll-ok") == {CONTROL: 80, TREATMENT: 20}
        # the daemon's task is cancelled (a restart): the record stays as it was
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        kept = book.load("roll-ok")
        assert kept is not None and (kept.state, kept.step) == (RolloutState.RUNNING, 0)
        # a new runner on the record goes on at the same step (its window started again)
        resumed = RolloutRunner(kept, WorkspaceTarget(ws, poll_s=0.1), book)
        done = await asyncio.wait_for(resumed.run(), BOUND_S)
        t_done = time.time()
        await asyncio.sleep(0.3)
    assert done.state is RolloutState.SUCCEEDED, done.message
    assert done.weight == 100 and done.message.startswith("promoted: green has 100%")
    assert await traffic(ws, "roll-ok") == {TREATMENT: 100}
    # (a step may also say it waits for its requests: 12 a second reach green at 20%)
    assert [e for e in book.names() if e != "waiting"] == ["step", "step", "promoted"]
    assert [r.weight for r in book.saved if r.traffic] == sorted(
        r.weight for r in book.saved if r.traffic
    )
    assert {r.weight for r in book.saved} >= {20, 50, 100}
    # each verdict saw at least min_requests of green's, and no request failed
    passed = [c for _, _, c in book.events if c is not None and c.verdict == "pass"]
    assert len(passed) == 2 and all(c.treatment_requests >= 20 for c in passed)
    assert [a for a in load.records if a.failed] == []
    assert {a.deployment for a in load.since(t_done)} == {TREATMENT}


async def test_a_failing_treatment_is_rolled_back_at_once_with_the_numbers(
    workspace: LocalWorkspace, tmp_path: Path
) -> None:
    ws = workspace
    flag = tmp_path / "fail"
    ep, keys = await flaky_pair(ws, "roll-bad", flag)

    def at_50(rollout: Rollout, event: str) -> None:
        if event == "step" and rollout.weight == 50:
            flag.touch()  # green starts failing 3 requests in 10 as it gets 50%

    book = Book(on_event=at_50)
    async with Load(ep.scoring_uri, keys.primaryKey, rate=RATE, max_seconds=BOUND_S) as load:
        _, task = await start(ws, book, "roll-bad", steps=(20, 50, 100), interval_s=2.0)
        done = await asyncio.wait_for(task, BOUND_S)
        failed_at = done.finished_at or 0.0
        await asyncio.sleep(1.0)
    assert done.state is RolloutState.FAILED
    assert book.names() == ["step", "step", "failed"]
    check = done.last_check
    assert check is not None and check.verdict == "fail"
    assert check.treatment_requests >= 20 and check.treatment_errors > 0
    assert check.treatment_error_rate is not None and check.treatment_error_rate > 10
    # the message is the check's numbers: "green 30.0% errors (6 of 20) against blue 0.0% ..."
    assert done.message == check.reason
    assert done.message.startswith(f"{TREATMENT} ") and f"against {CONTROL} 0.0% (0 of " in (
        done.message
    )
    assert done.message.endswith("more than 1 point above")
    # within the step: failed fast, not after the interval
    assert check.window_s < 2.0
    # all traffic back on the control, no mirror; nothing fails after the rollback
    endpoint = await ws.get_endpoint("roll-bad")
    assert {k: v for k, v in endpoint.traffic.items() if v} == {CONTROL: 100}
    assert endpoint.mirror_traffic in ({}, {TREATMENT: 0})
    after = load.since(failed_at)
    assert after and [a for a in after if a.failed] == []
    assert {a.deployment for a in after} == {CONTROL}


async def test_a_manual_traffic_change_pauses_it_and_the_operator_actions_win(
    workspace: LocalWorkspace, tmp_path: Path
) -> None:
    ws = workspace
    await flaky_pair(ws, "roll-hand", tmp_path / "never")
    book = Book()
    # no load: the step never has its requests, so only the operator moves it
    runner, task = await start(ws, book, "roll-hand", steps=(20, 50, 100), interval_s=1.0)
    await until(lambda: "step" in book.names(), "at its first step")
    await by_hand(ws, "roll-hand", 60, 40)
    await until(lambda: "paused" in book.names(), "paused")
    paused = book.load("roll-hand")
    assert paused is not None and paused.state is RolloutState.PAUSED
    assert paused.message == (
        "traffic changed by hand to blue=60 green=40; paused: resume, promote or abort"
    )
    await asyncio.sleep(0.5)  # several ticks: it never writes over the operator's map
    assert await traffic(ws, "roll-hand") == {CONTROL: 60, TREATMENT: 40}
    assert not task.done()

    resumed = await runner.resume()
    assert resumed.state is RolloutState.RUNNING and resumed.step == 0
    assert await traffic(ws, "roll-hand") == {CONTROL: 80, TREATMENT: 20}
    await asyncio.sleep(1.3)  # past the interval, without requests: it waits
    waiting = book.load("roll-hand")
    assert waiting is not None and waiting.state is RolloutState.RUNNING
    assert waiting.message == "waiting for 20 requests (0 so far)"
    assert "waiting" in book.names()

    # another process pauses it (its record in the book): the runner stops acting on it
    current = book.load("roll-hand")
    assert current is not None
    book.save(dataclasses.replace(current, state=RolloutState.PAUSED, message="elsewhere"))
    await until(lambda: runner.rollout.state is RolloutState.PAUSED, "paused elsewhere")
    await by_hand(ws, "roll-hand", 70, 30)
    await asyncio.sleep(0.5)
    assert book.load("roll-hand").message == "elsewhere"  # type: ignore[union-attr]
    assert await traffic(ws, "roll-hand") == {CONTROL: 70, TREATMENT: 30}
    resumed = await runner.resume()
    assert resumed.state is RolloutState.RUNNING
    assert await traffic(ws, "roll-hand") == {CONTROL: 80, TREATMENT: 20}

    held = await runner.pause("held by the operator")
    assert held.state is RolloutState.PAUSED
    assert held.message == "held by the operator; paused: resume, promote or abort"
    aborted = await runner.abort()
    assert aborted.state is RolloutState.ABORTED and aborted.weight == 0
    assert await traffic(ws, "roll-hand") == {CONTROL: 100}
    assert (await asyncio.wait_for(task, BOUND_S)).state is RolloutState.ABORTED
    assert book.names()[-1] == "aborted"

    # a second rollout, promoted at once by the operator
    runner, task = await start(ws, book, "roll-hand", steps=(20, 50, 100), interval_s=30.0)
    await until(lambda: book.names().count("step") == 2, "at its first step")
    promoted = await runner.promote()
    assert promoted.state is RolloutState.SUCCEEDED and promoted.weight == 100
    assert await traffic(ws, "roll-hand") == {TREATMENT: 100}
    assert (await asyncio.wait_for(task, BOUND_S)).state is RolloutState.SUCCEEDED


async def test_the_mirror_phase_judges_the_mirrored_copies_before_any_user_sees_green(
    workspace: LocalWorkspace, tmp_path: Path
) -> None:
    ws = workspace
    ep, keys = await flaky_pair(ws, "roll-mirror", tmp_path / "never")
    seen: list[tuple[dict[str, int], dict[str, int]]] = []

    def maps(rollout: Rollout, event: str) -> None:
        seen.append((dict(rollout.traffic), dict(rollout.mirror_traffic)))

    book = Book(on_event=maps)
    async with Load(ep.scoring_uri, keys.primaryKey, rate=RATE, max_seconds=BOUND_S) as load:
        _, task = await start(
            ws, book, "roll-mirror", steps=(50, 100), interval_s=1.0, mirror_first_s=1.0
        )
        await until(lambda: "mirror" in book.names(), "mirroring")
        mirroring = await ws.get_endpoint("roll-mirror")
        assert mirroring.mirror_traffic == {TREATMENT: 50}
        assert {k: v for k, v in mirroring.traffic.items() if v} == {CONTROL: 100}
        done = await asyncio.wait_for(task, BOUND_S)
    assert done.state is RolloutState.SUCCEEDED, done.message
    assert [e for e in book.names() if e != "waiting"] == ["mirror", "step", "promoted"]
    assert seen[0] == ({CONTROL: 100}, {TREATMENT: 50})
    # the mirror phase's verdict counted green's mirrored copies (the gateway records them)
    mirror_pass = next(c for e, r, c in book.events if e == "step")
    assert mirror_pass is not None and mirror_pass.verdict == "pass"
    assert mirror_pass.treatment_requests >= 20
    # while mirroring, every user's answer came from blue
    first_step = next(r for e, r, _ in book.events if e == "step").step_started_at
    assert {a.deployment for a in load.records if a.done_at < first_step} == {CONTROL}


async def test_a_restarted_runner_adopts_the_step_it_wrote_and_pauses_on_another_map(
    workspace: LocalWorkspace, tmp_path: Path
) -> None:
    """The daemon died after writing step 2's traffic but before recording it: the new
    runner takes step 2 (no second write, no pause); a map it never wrote pauses it."""
    ws = workspace
    await flaky_pair(ws, "roll-back", tmp_path / "never")
    book = Book()
    _, task = await start(ws, book, "roll-back", steps=(20, 50, 100), interval_s=30.0)
    # the record holding step 1 with the map written (not its "step" event: a start met by a
    # back end's error after the write, as under load, takes the step at the next tick
    # without one)
    await until(lambda: _holds(book, "roll-back", 0, {CONTROL: 80, TREATMENT: 20}), "at step 1")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    at_step_1 = book.load("roll-back")
    assert at_step_1 is not None and at_step_1.traffic == {CONTROL: 80, TREATMENT: 20}

    await by_hand(ws, "roll-back", 50, 50)  # step 2's map, as the dead daemon wrote it
    runner = RolloutRunner(at_step_1, WorkspaceTarget(ws, poll_s=0.1), book)
    task = asyncio.create_task(runner.run())
    await until(lambda: runner.rollout.step == 1, "at step 2")
    assert runner.rollout.state is RolloutState.RUNNING
    assert runner.rollout.traffic == {CONTROL: 50, TREATMENT: 50}
    assert "paused" not in book.names()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    await by_hand(ws, "roll-back", 65, 35)  # a map no step has: an operator's
    runner = RolloutRunner(runner.rollout, WorkspaceTarget(ws, poll_s=0.1), book)
    task = asyncio.create_task(runner.run())
    await until(lambda: runner.rollout.state is RolloutState.PAUSED, "paused")
    assert runner.rollout.message == (
        "traffic changed by hand to blue=65 green=35; paused: resume, promote or abort"
    )
    assert await traffic(ws, "roll-back") == {CONTROL: 65, TREATMENT: 35}
    await runner.abort()
    assert (await asyncio.wait_for(task, BOUND_S)).state is RolloutState.ABORTED


class LosesTheCancel(Book):
    """A book whose notify meets Python 3.11's lost cancellation: the runner's task is
    cancelled while ``asyncio.wait_for`` awaits something that completes in the same loop
    iteration, and wait_for returns its result instead of raising (the local client's reads
    use wait_for; fixed in 3.12)."""

    async def notify(self, rollout: Rollout, event: str, check: RolloutCheck | None) -> None:
        await super().notify(rollout, event, check)
        if event == "step":
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            await asyncio.wait_for(done, 1.0)  # returns on 3.11: the CancelledError is lost


async def test_a_cancelled_runner_stops_even_when_wait_for_lost_the_cancellation(
    workspace: LocalWorkspace, tmp_path: Path
) -> None:
    ws = workspace
    await flaky_pair(ws, "roll-stop", tmp_path / "never")
    book = LosesTheCancel()
    _, task = await start(ws, book, "roll-stop", steps=(20, 50, 100), interval_s=30.0)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), BOUND_S)
    assert task.cancelled()
    kept = book.load("roll-stop")  # the record as it was: a restarted daemon resumes it
    assert kept is not None and (kept.state, kept.step) == (RolloutState.RUNNING, 0)
