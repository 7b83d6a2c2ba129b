"""More flows against a real local workspace: the aml_token countdown, the progress bar of
a long operation, and clearing the control mark from the traffic screen."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import AuthMode, EndpointPatch, Probe
from modeldeck.tui.app import ModeldeckApp
from modeldeck.tui.screens.dialogs import PromptScreen
from modeldeck.tui.widgets.operations import OperationBar
from modeldeck.tui.widgets.traffic_slider import TrafficSlider
from textual.widgets import Input, ProgressBar, Static

pytestmark = pytest.mark.e2e
SIZE = (120, 40)
COUNTDOWN = re.compile(
    r"expires in (?:(\d+)h)?(\d+)m(\d+)s\s+refresh by: in (?:(\d+)h)?(\d+)m(\d+)s"
)


def notes(app: ModeldeckApp) -> list[str]:
    return [f"{n.title or ''} {n.message}" for n in app._notifications]


async def command(pilot: Any, text: str) -> None:
    await pilot.press("colon", *[{" ": "space", "-": "minus"}.get(c, c) for c in text], "enter")


def _seconds(h: str | None, m: str, s: str) -> int:
    return int(h or 0) * 3600 + int(m) * 60 + int(s)


def countdowns(app: ModeldeckApp) -> tuple[int, int] | None:
    text = str(app.screen.query_one("#token-times", Static).render())
    found = COUNTDOWN.search(text)
    if not found:
        return None
    g = found.groups()
    return _seconds(*g[:3]), _seconds(*g[3:])


async def test_token_auth_shows_expiry_and_refresh_by_as_a_countdown(
    workspace: Any, h: Any
) -> None:
    await h.make_endpoint(workspace, "ep-token", {"blue": 100}, auth_mode=AuthMode.AML_TOKEN)
    app = ModeldeckApp(workspace, poll_scale=0.25)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "keys ep-token")
        await h.eventually(lambda: app.screen.query("#token-times") and countdowns(app), pilot)
        token = await workspace.get_token("ep-token")
        expires, refresh = countdowns(app)  # type: ignore[misc]
        # the times shown are the token's own (a few seconds of slack for the fetch)
        assert abs(expires - (token.expiryTimeUtc - time.time())) <= 5
        assert abs(refresh - (token.refreshAfterTimeUtc - time.time())) <= 5
        assert refresh < expires
        # the token is masked, and the key fields are not shown for token auth
        shown = " ".join(str(w.render()) for w in app.screen.query("SecretField") if w.display)
        assert token.accessToken not in shown and "token" in shown
        assert not app.screen.query_one("#key-primary").display
        # it counts down while the screen is open
        await h.eventually(lambda: (countdowns(app) or (expires, 0))[0] < expires, pilot)


async def test_long_operation_shows_a_progress_bar_then_a_notification(
    workspace: Any, h: Any
) -> None:
    await h.make_endpoint(workspace, "ep-scale", {})
    # each new replica is ready no sooner than 2 s after it starts, so the scale lasts long
    # enough for the bar to be seen on a loaded machine (a replica alone starts in ~0.2 s)
    slow = h.deployment_spec("blue", "ep-scale", readiness_probe=Probe(initial_delay=2, period=1))
    await (await workspace.create_deployment(slow, all_traffic=True)).wait()
    app = ModeldeckApp(workspace, poll_scale=0.25, initial_view="deployments")
    seen: list[tuple[str, float]] = []
    async with app.run_test(size=SIZE) as pilot:
        await h.select_row(app, pilot, "ep-scale/blue")
        await pilot.press("s")
        assert isinstance(app.screen, PromptScreen)
        app.screen.query_one(Input).value = "2"
        await pilot.press("enter")

        def watch() -> bool:
            bar = app.screen.query_one(OperationBar)
            if bar.has_class("-busy") and bar.display:
                label = str(bar.query_one("#op-label", Static).render())
                progress = [p.progress for p in bar.query(ProgressBar)]
                seen.append((label, progress[0] if progress else -1.0))
            return any("succeeded" in n for n in notes(app))

        await h.eventually(watch, pilot)
        assert seen, "the progress bar never showed while the scale ran"
        assert all(label.startswith("scale ep-scale/blue to 2: ") for label, _ in seen)
        assert all(0 <= value <= 100 for _, value in seen)
        assert any(value > 0 for _, value in seen)  # it moves, not just a spinner
        await pilot.pause()
        assert not app.screen.query_one(OperationBar).has_class("-busy")  # gone when done
        assert "scale ep-scale/blue to 2: succeeded" in " ".join(notes(app))
    assert (await workspace.get_deployment("ep-scale", "blue")).spec.instance_count == 2


async def test_clearing_the_control_mark_from_the_traffic_screen(workspace: Any, h: Any) -> None:
    await h.make_endpoint(workspace, "ep-ctl", {"blue": 90, "green": 10})
    await (await workspace.update_endpoint("ep-ctl", EndpointPatch(control="blue"))).wait()
    assert (await workspace.get_endpoint("ep-ctl")).control == "blue"
    app = ModeldeckApp(workspace, poll_scale=0.25)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "traffic ep-ctl")
        await h.eventually(lambda: bool(app.screen.query(TrafficSlider)), pilot)
        screen = app.screen
        await h.eventually(lambda: screen.live_control == "blue", pilot)
        assert isinstance(screen.focused, TrafficSlider) and screen.focused.deployment == "blue"
        await pilot.press("c")  # blue is the control: c clears the mark
        assert screen.control is None and screen.dirty
        assert "control blue→–" in str(screen.query_one("#traffic-summary").render())
        await pilot.press("enter")

        async def cleared() -> bool:
            return (await workspace.get_endpoint("ep-ctl")).control is None

        await h.eventually(cleared, pilot)
    ep = await workspace.get_endpoint("ep-ctl")
    assert ep.traffic == {"blue": 90, "green": 10}  # the traffic is untouched


async def test_scale_a_pool_from_the_clusters_screen_and_bad_input_changes_nothing(
    workspace: Any, h: Any
) -> None:
    await h.ensure_cluster(workspace, "pool-scale")
    before = next(c for c in await workspace.list_clusters() if c.name == "pool-scale")
    app = ModeldeckApp(workspace, poll_scale=0.25, initial_view="clusters")
    async with app.run_test(size=SIZE) as pilot:
        await h.select_row(app, pilot, "pool-scale")
        await pilot.press("s")
        assert isinstance(app.screen, PromptScreen)
        app.screen.query_one(Input).value = "0"
        await pilot.press("enter")
        await h.eventually(lambda: any("agent_count" in n for n in notes(app)), pilot)
        assert any("fix:" in n for n in notes(app))  # message and fix, not a traceback
        same = next(c for c in await workspace.list_clusters() if c.name == "pool-scale")
        assert same.agent_count == before.agent_count
        await pilot.press("s")
        app.screen.query_one(Input).value = str(before.agent_count + 1)
        await pilot.press("enter")
        await h.eventually(
            lambda: any(
                f"scale cluster pool-scale to {before.agent_count + 1}: succeeded" in n
                for n in notes(app)
            ),
            pilot,
        )
    after = next(c for c in await workspace.list_clusters() if c.name == "pool-scale")
    assert after.agent_count == before.agent_count + 1


async def test_create_a_deployment_with_the_form_and_its_model_picker(
    workspace: Any, h: Any
) -> None:
    from modeldeck.tui.screens.forms import FormScreen
    from textual.widgets import Select

    await h.make_endpoint(workspace, "ep-form", {"blue": 100})
    app = ModeldeckApp(workspace, poll_scale=0.25, initial_view="deployments")
    async with app.run_test(size=SIZE) as pilot:
        grid = await h.select_row(app, pilot, "ep-form/blue")
        await pilot.press("N")
        await h.eventually(lambda: isinstance(app.screen, FormScreen), pilot)
        form = app.screen
        picker = form.query_one("#f-model", Select)
        assert picker.value == "azureml:sklearn-demo:1"  # the registered model, picked
        form.query_one("#f-name", Input).value = "green"
        form.query_one("#f-code", Input).value = str(h.EXAMPLES / "green")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await h.eventually(
            lambda: any("create deployment ep-form/green: succeeded" in n for n in notes(app)),
            pilot,
        )
        await h.eventually(lambda: "ep-form/green" in grid.shown_keys, pilot)
    green = await workspace.get_deployment("ep-form", "green")
    assert green.spec.model == "azureml:sklearn-demo:1"
    code = Path(green.spec.code_configuration.code) / "score.py"  # the service keeps a copy
    assert code.read_text() == (h.EXAMPLES / "green" / "score.py").read_text()


async def test_change_the_model_of_a_deployment_and_an_unknown_model_is_refused(
    workspace: Any, h: Any
) -> None:
    from modeldeck.services.api.domain import ModelSpec

    await h.make_endpoint(workspace, "ep-model", {"blue": 100})
    if not await workspace.list_models("other-model"):
        await workspace.create_model(ModelSpec(name="other-model", path=str(h.EXAMPLES / "model")))
    app = ModeldeckApp(workspace, poll_scale=0.25, initial_view="deployments")
    async with app.run_test(size=SIZE) as pilot:
        await h.select_row(app, pilot, "ep-model/blue")
        await pilot.press("u")
        assert isinstance(app.screen, PromptScreen)
        app.screen.query_one(Input).value = "azureml:no-such-model:7"
        await pilot.press("enter")
        await h.eventually(lambda: any("failed" in n for n in notes(app)), pilot)
        assert "Traceback" not in " ".join(notes(app))
        blue = await workspace.get_deployment("ep-model", "blue")
        assert blue.spec.model == "azureml:sklearn-demo:1"  # nothing changed
        await pilot.press("u")
        app.screen.query_one(Input).value = "azureml:other-model:1"
        await pilot.press("enter")
        await h.eventually(
            lambda: any("update ep-model/blue" in n and "succeeded" in n for n in notes(app)),
            pilot,
        )
    blue = await workspace.get_deployment("ep-model", "blue")
    assert blue.spec.model == "azureml:other-model:1"
