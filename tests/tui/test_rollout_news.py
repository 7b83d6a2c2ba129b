"""The dashboard's rollout toasts (issue 14) from what list_rollouts gives after each wake:
only the transitions seen, none for what already ran when the dashboard opened."""

from __future__ import annotations

from dataclasses import replace

from modeldeck.services.api.rollouts import Rollout, RolloutCheck, RolloutSpec, RolloutState
from modeldeck.tui.rollout_news import RolloutNews

SPEC = RolloutSpec("ep", "green", "blue", (5, 50, 100), 1.0, min_requests=5)
FAIL = RolloutCheck(
    10.0, 1.0, 30, 9, 91, 0, None, None, "fail",
    "green 30.0% errors (9 of 30) against blue 0.0% (0 of 91) over 1s: more than 1 point above",
)  # fmt: skip


def rollout(state: RolloutState = RolloutState.RUNNING, step: int = 0, **kw: object) -> Rollout:
    base = Rollout("r1", SPEC, state, step, SPEC.steps[step], 0.0, 0.0, 0.0, started_by="ann@h")
    return replace(base, **kw)  # type: ignore[arg-type]


def test_the_first_read_says_nothing_of_what_runs_or_ended() -> None:
    news = RolloutNews()
    other = replace(rollout(RolloutState.FAILED), id="r0", spec=replace(SPEC, endpoint="old"))
    assert news.update([rollout(step=1), other]) == []
    assert news.update([rollout(step=1), other]) == []  # nothing changed: nothing said


def test_each_transition_is_said_once() -> None:
    news = RolloutNews()
    news.update([])
    said = [n for r in (
        rollout(),
        rollout(step=1),
        rollout(step=1),
        rollout(RolloutState.PAUSED, 1, message="the traffic was changed by bob@h"),
        rollout(RolloutState.RUNNING, 1),
        rollout(RolloutState.SUCCEEDED, 2),
    ) for n in news.update([r])]  # fmt: skip
    assert [n.title for n in said] == [
        "rollout started",
        "rollout step",
        "rollout paused",
        "rollout resumed",
        "rollout promoted",
    ]
    assert said[0].message == "ep: green from blue, step 1/3 (5%), started by ann@h"
    assert said[1].message == "ep: green at step 2/3 (50%)"
    assert "changed by bob@h" in said[2].message and said[2].severity == "warning"
    assert said[4].message == "ep: green has 100% of the traffic (blue: 0%)"


def test_a_failure_is_an_error_with_its_numbers_even_when_it_started_between_two_reads() -> None:
    news = RolloutNews()
    news.update([])
    failed = rollout(RolloutState.FAILED, 1, weight=0, last_check=FAIL, message="rolled back")
    (said,) = news.update([failed])
    assert said.severity == "error" and said.title == "rollout failed"
    assert said.message.startswith("ep: green failed at step 2/3 (50%): traffic is back on blue")
    assert "30.0% errors (9 of 30)" in said.message and "rolled back" in said.message
    aborted = replace(failed, id="r2", state=RolloutState.ABORTED, message="aborted by ann@h")
    (said,) = news.update([aborted])
    assert (said.title, said.severity) == ("rollout aborted", "warning")


def test_one_endpoint_read_by_its_view_then_the_whole_list_say_a_change_once() -> None:
    news = RolloutNews()
    news.update([rollout()])  # the first whole read
    assert [n.title for n in news.update([rollout(step=1)], complete=False)] == ["rollout step"]
    assert news.update([rollout(step=1)]) == []  # the watch's list: already said
