"""The dashboard's Rollout view (issue 14) with Pilot at 80x24, against a real local daemon
with real replicas: the control plane drives each rollout; the dashboard starts it from its
form, shows it advance, pauses, resumes, promotes and aborts it from keys, toasts what
happens to any endpoint's rollout, and says on Traffic that a manual apply pauses it.

The treatment is tests/support/flaky (it fails 3 requests in 10 once its flag file exists);
traffic is real, through the gateway with the endpoint's key (tests/support/load.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from modeldeck.services import audit
from modeldeck.services.api.rollouts import RolloutSpec, RolloutState
from modeldeck.tui.app import ModeldeckApp
from modeldeck.tui.screens.dialogs import ConfirmScreen
from modeldeck.tui.screens.forms import FormScreen
from modeldeck.tui.screens.history import HistoryScreen
from modeldeck.tui.screens.rollout import RolloutScreen
from modeldeck.tui.screens.traffic import TrafficScreen
from textual.widgets import Button, Input, Static

from tests.support.load import Load
from tests.support.rollouts import CONTROL, TREATMENT, flaky_pair, rollout_until
from tests.tui.narrow import screen_text

pytestmark = pytest.mark.e2e
SIZE = (80, 24)
RATE = 40.0  # requests a second through the gateway
#: two replicas of one script on a shared 2-core host differ in p95 by chance: these tests
#: are about the view, the keys and the error rate, not a p95 verdict
P95 = 5.0


class Toasts:
    """Every notification the app showed while a test waited (they expire: read often)."""

    def __init__(self, app: ModeldeckApp) -> None:
        self.app = app
        self.seen: dict[tuple[str, str], str] = {}

    def read(self) -> list[tuple[str, str, str]]:
        for n in list(self.app._notifications):
            self.seen[(n.title, n.message)] = n.severity
        return [(t, m, s) for (t, m), s in self.seen.items()]

    def titled(self, title: str) -> list[tuple[str, str, str]]:
        return [x for x in self.read() if x[0] == title]


async def _wait_for(h: Any, pilot: Any, toasts: Toasts, predicate: Any, timeout: float) -> None:
    """``predicate()`` once it holds, reading the toasts as it waits (bounded)."""

    def check() -> bool:
        toasts.read()
        return bool(predicate())

    await h.eventually(check, pilot, timeout=timeout)


def _rollout_of(app: ModeldeckApp) -> Any:
    screen = app.screen
    return screen.rollout if isinstance(screen, RolloutScreen) else None


async def test_a_rollout_started_from_the_form_is_promoted_and_toasted(  # type: ignore[no-untyped-def]
    workspace, h, tmp_path
) -> None:
    ws, name = workspace, "ro-form"
    endpoint, keys = await flaky_pair(ws, name, tmp_path / "never-made")
    app = ModeldeckApp(ws, poll_scale=0.25)
    async with (
        Load(endpoint.scoring_uri, keys.primaryKey, rate=RATE) as load,
        app.run_test(size=SIZE) as pilot,
    ):
        toasts = Toasts(app)
        await load.wait_for(10)
        await h.select_row(app, pilot, name)
        await pilot.press("R")
        await h.eventually(
            lambda: isinstance(app.screen, RolloutScreen) and app.screen.loaded, pilot
        )
        assert f"no rollout on {name} yet: n starts one" in screen_text(app)

        await pilot.press("n")
        await h.eventually(lambda: isinstance(app.screen, FormScreen), pilot)
        form = app.screen
        assert form.query_one("#f-to").value == TREATMENT  # the deployment without traffic
        for field, value in (
            ("steps", "50,100"),
            ("interval", "1s"),
            ("min_requests", "5"),
            ("max_p95_ratio", str(P95)),
        ):
            form.query_one(f"#f-{field}", Input).value = value
        await pilot.pause()
        assert not form.query_one("#submit", Button).disabled
        await pilot.press("ctrl+s")

        await _wait_for(
            h,
            pilot,
            toasts,
            lambda: (r := _rollout_of(app)) is not None and r.state is RolloutState.SUCCEEDED,
            timeout=60,
        )
        text = screen_text(app)
        assert "state Succeeded   promoted (100%)" in text, text
        assert "50% ✓ → 100% ✓" in text, text
        assert f"traffic now {TREATMENT} 100%" in text, text
        assert "last check" in text and f"{TREATMENT} (treatment)" in text, text
        await _wait_for(h, pilot, toasts, lambda: toasts.titled("rollout promoted"), timeout=10)

        # History: each step an audited change by the rollout, its events in words; u on
        # the promoting step reverts it like any traffic change
        app.run_command(f":history {name}")
        await h.eventually(lambda: isinstance(app.screen, HistoryScreen), pilot)
        history = app.screen
        await h.eventually(lambda: history.changes.get("000000", None) is not None, pilot)
        await h.eventually(lambda: history.changes["000000"].kind == "rollout", pilot)
        newest = {k: c for k, c in history.changes.items() if c.actor.startswith("rollout ")}
        by = f"rollout {app.screen.changes['000000'].actor.split()[1]} of {name} (started by "
        assert all(c.actor.startswith(by) for c in newest.values()), newest
        words = [audit.what(c) for c in newest.values()]
        assert words[0].startswith(f"promoted: {TREATMENT} has 100%"), words
        assert words[-1].startswith("started at step 1/2 (50%)"), words
        shown = (await h.select_row(app, pilot, "000000")).cells("000000")  # the verdict's row
        assert f"promoted: {TREATMENT} has 100%" in str(shown[-1]), shown
        promote = next(k for k, c in newest.items() if c.kind == "endpoint")  # the newest step
        assert history.changes[promote].changed == {
            f"traffic.{CONTROL}": [50, 0],
            f"traffic.{TREATMENT}": [50, 100],
        }
        row = (await h.select_row(app, pilot, promote)).cells(promote)
        assert "rollout" in str(row[3]) and f"traffic.{TREATMENT} 50 -> 100" in str(row[-1])
        await pilot.press("u")
        await h.eventually(  # the revert, by the operator, is the newest change
            lambda: not history.changes["000000"].actor.startswith("rollout "), pilot, timeout=15
        )
        reverted = history.changes["000000"]
        assert reverted.action == "revert", reverted
        assert reverted.changed == {
            f"traffic.{CONTROL}": [0, 50],
            f"traffic.{TREATMENT}": [100, 50],
        }
    assert (await ws.get_endpoint(name)).traffic == {CONTROL: 50, TREATMENT: 50}
    started = toasts.titled("rollout started") + toasts.titled(
        f"rollout of {TREATMENT} on {name}: succeeded"
    )
    assert started, toasts.read()
    (promoted,) = toasts.titled("rollout promoted")
    assert promoted[1] == f"{name}: {TREATMENT} has 100% of the traffic ({CONTROL}: 0%)"


async def test_bad_input_in_the_form_names_the_field_and_sends_nothing(  # type: ignore[no-untyped-def]
    workspace, h, tmp_path
) -> None:
    ws, name = workspace, "ro-badform"
    await flaky_pair(ws, name, tmp_path / "never-made")
    before = await ws.get_endpoint(name)
    app = ModeldeckApp(ws, poll_scale=0.25)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon", "r", "o", "tab", *name, "enter")  # Tab completes :rollout
        await h.eventually(
            lambda: isinstance(app.screen, RolloutScreen) and app.screen.loaded, pilot
        )
        await pilot.press("n")
        await h.eventually(lambda: isinstance(app.screen, FormScreen), pilot)
        form = app.screen
        error = form.query_one("#form-error", Static)
        for field, value, words in (
            ("steps", "10,5,100", "steps must increase: 5 comes after 10"),
            ("steps", "10,50", "the last step must be 100"),
            ("interval", "0.1s", "interval"),
            ("interval", "soon", "interval"),
            ("max_error_rate", "lots", "max_error_rate"),
            ("max_p95_ratio", "0.5", "max_p95_ratio"),
            ("min_requests", "2.5", "min_requests"),
            ("webhook", "ftp://hooks.example.com/x", "webhook"),
            ("from", TREATMENT, "from"),  # the control must differ from the treatment
        ):
            good = form.query_one(f"#f-{field}").value
            form.query_one(f"#f-{field}").value = value
            await pilot.pause()
            shown = str(error.render())
            assert words in shown, (field, value, shown)
            assert form.query_one("#submit", Button).disabled, (field, value)
            await pilot.press("ctrl+s")  # refused: the form stays, nothing is sent
            assert app.screen is form
            form.query_one(f"#f-{field}").value = good
            await pilot.pause()
        await pilot.press("escape")
        await h.eventually(lambda: isinstance(app.screen, RolloutScreen), pilot)
    assert await ws.get_rollout(name) is None
    assert (await ws.get_endpoint(name)).revision == before.revision


async def test_pause_resume_and_abort_from_keys_and_a_manual_apply_on_traffic_pauses(  # type: ignore[no-untyped-def]
    workspace, h, tmp_path
) -> None:
    """No load: a step's check waits for min_requests, so the rollout holds its first step."""
    ws, name = workspace, "ro-keys"
    await flaky_pair(ws, name, tmp_path / "never-made")
    spec = RolloutSpec(name, TREATMENT, steps=(10, 50, 100), interval_s=1.0, min_requests=50)
    await ws.start_rollout(spec)
    app = ModeldeckApp(ws, poll_scale=0.25)
    async with app.run_test(size=SIZE) as pilot:
        toasts = Toasts(app)
        await pilot.press("colon", *f"rollout {name}", "enter")
        await h.eventually(
            lambda: isinstance(app.screen, RolloutScreen) and app.screen.loaded, pilot
        )
        screen = app.screen
        assert "state Running" in screen_text(app) and "▸10%" in screen_text(app)

        def state() -> Any:
            return screen.rollout.state if screen.rollout else None

        await pilot.press("p")
        await _wait_for(h, pilot, toasts, lambda: state() is RolloutState.PAUSED, 15)
        assert "state Paused" in screen_text(app)
        await pilot.press("r")
        await _wait_for(h, pilot, toasts, lambda: state() is RolloutState.RUNNING, 15)
        await pilot.press("a")
        await h.eventually(lambda: isinstance(app.screen, ConfirmScreen), pilot)
        body = " ".join(str(s.render()) for s in app.screen.query(Static))
        assert f"goes back to {CONTROL}" in body, body
        await pilot.press("y")
        await _wait_for(h, pilot, toasts, lambda: state() is RolloutState.ABORTED, 15)
        assert (await ws.get_endpoint(name)).traffic == {CONTROL: 100, TREATMENT: 0}
        await _wait_for(h, pilot, toasts, lambda: toasts.titled("rollout aborted"), 10)

        # again, and this time the operator moves traffic by hand on the Traffic screen
        await ws.start_rollout(spec)
        await rollout_until(ws, name, lambda r: r.weight == 10, what="at 10%")
        await pilot.press("escape")  # back to the Endpoints list
        await pilot.press("colon", *f"traffic {name}", "enter")
        await h.eventually(
            lambda: isinstance(app.screen, TrafficScreen) and app.screen.loaded, pilot
        )
        traffic = app.screen
        notice = traffic.query_one("#traffic-rollout", Static)
        await h.eventually(lambda: notice.display, pilot)
        assert f"rollout of {TREATMENT} running, step 1/3 (10%): applying pauses it" in str(
            notice.render()
        )
        await pilot.press("r", "down", "shift+right")  # green 10 -> 20, blue takes the rest
        assert traffic.staged == {CONTROL: 80, TREATMENT: 20}
        await pilot.press("enter")
        await h.eventually(lambda: isinstance(app.screen, ConfirmScreen), pilot)
        body = " ".join(str(s.render()) for s in app.screen.query(Static))
        assert "Applying this change pauses it" in body, body
        await pilot.press("y")
        paused = await rollout_until(
            ws, name, lambda r: r.state is RolloutState.PAUSED, what="paused by the manual change"
        )
        await _wait_for(h, pilot, toasts, lambda: toasts.titled("rollout paused"), 10)
        await h.eventually(
            lambda: "paused, step 1/3 (10%): it holds" in str(notice.render()), pilot
        )
    assert (await ws.get_endpoint(name)).traffic == {CONTROL: 80, TREATMENT: 20}
    assert paused.message, paused


async def test_a_failed_rollout_is_an_error_toast_with_its_numbers_on_any_screen(  # type: ignore[no-untyped-def]
    workspace, h, tmp_path
) -> None:
    ws, name, flag = workspace, "ro-fails", tmp_path / "fail-now"
    endpoint, keys = await flaky_pair(ws, name, flag)
    app = ModeldeckApp(ws, poll_scale=0.25)
    async with (
        Load(endpoint.scoring_uri, keys.primaryKey, rate=RATE) as load,
        app.run_test(size=SIZE) as pilot,
    ):
        toasts = Toasts(app)
        await h.select_row(app, pilot, name)  # the Endpoints list: no Rollout view open
        await load.wait_for(10)
        flag.touch()  # green fails 3 in 10 from now on
        spec = RolloutSpec(
            name, TREATMENT, steps=(25, 100), interval_s=2.0, min_requests=10, max_p95_ratio=P95
        )
        await ws.start_rollout(spec)
        await _wait_for(h, pilot, toasts, lambda: toasts.titled("rollout failed"), 60)
    ((_, message, severity),) = toasts.titled("rollout failed")
    assert severity == "error"
    assert message.startswith(
        f"{name}: {TREATMENT} failed at step 1/2 (25%): traffic is back on {CONTROL}"
    )
    done = await ws.get_rollout(name)
    assert done is not None and done.last_check is not None
    assert (
        f"({done.last_check.treatment_errors} of {done.last_check.treatment_requests})" in message
    )


async def test_promote_from_keys_while_its_figures_come_in(  # type: ignore[no-untyped-def]
    workspace, h, tmp_path
) -> None:
    """Under load a running rollout's figures come in about once a second: the promotion,
    confirmed after new ones were saved, is still sent with the drawn revision (a save of
    its figures takes no revision of the rollout: it was refused as 'changed since you
    read it' when it did)."""
    ws, name = workspace, "ro-promote"
    endpoint, keys = await flaky_pair(ws, name, tmp_path / "never-made")
    spec = RolloutSpec(
        name, TREATMENT, steps=(10, 100), interval_s=3600.0, min_requests=5, max_p95_ratio=P95
    )
    app = ModeldeckApp(ws, poll_scale=0.25)
    async with (
        Load(endpoint.scoring_uri, keys.primaryKey, rate=RATE) as load,
        app.run_test(size=SIZE) as pilot,
    ):
        await load.wait_for(10)
        await ws.start_rollout(spec)
        await pilot.press("colon", *f"rollout {name}", "enter")
        await h.eventually(
            lambda: isinstance(app.screen, RolloutScreen) and app.screen.loaded, pilot
        )
        screen = app.screen
        await h.eventually(lambda: screen.rollout.last_check is not None, pilot)
        drawn = screen.rollout
        assert drawn.state is RolloutState.RUNNING, drawn
        await pilot.press("P")
        await h.eventually(lambda: isinstance(app.screen, ConfirmScreen), pilot)
        now = await rollout_until(  # the operator reads the dialog; the figures come in
            ws, name, lambda r: r.last_check != drawn.last_check, what="new figures"
        )
        assert now.revision == drawn.revision and now.state is RolloutState.RUNNING
        await pilot.press("y")
        await h.eventually(
            lambda: screen.rollout.state is RolloutState.SUCCEEDED, pilot, timeout=15
        )
        assert "state Succeeded   promoted (100%)" in screen_text(app)
    assert (await ws.get_endpoint(name)).traffic == {CONTROL: 0, TREATMENT: 100}
