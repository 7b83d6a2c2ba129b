"""Two operators on one endpoint's traffic: the second apply is not a silent overwrite.

The dashboard stages a map; meanwhile "another operator" (a second workspace client, logged
in from another SSH address) changes the endpoint. Apply is refused; the screen says who
changed what, shows the new live map, and lets the operator rebase their edits on it or drop
them. Real daemon, real records.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from modeldeck.services.api.domain import EndpointPatch, EndpointSpec
from modeldeck.tui.app import ModeldeckApp
from modeldeck.tui.screens.traffic import TrafficScreen
from modeldeck.tui.widgets.traffic_slider import TrafficSlider
from textual.widgets import Static

pytestmark = pytest.mark.e2e
SIZE = (120, 40)
EP = "ep-two-ops"


async def _endpoint(ws: Any, h: Any, traffic: dict[str, int]) -> None:
    await h.ensure_cluster(ws)
    await h.ensure_model(ws)
    await asyncio.wait_for(
        (await ws.create_endpoint(EndpointSpec(name=EP, compute="pool-a"))).wait(), 60
    )
    for name in traffic:
        spec = h.deployment_spec(name, EP, instance_count=0)
        await asyncio.wait_for((await ws.create_deployment(spec)).wait(), 60)
    await asyncio.wait_for(
        (await ws.update_endpoint(EP, EndpointPatch(traffic=traffic))).wait(), 60
    )


def _text(screen: TrafficScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_apply_after_someone_else_changed_traffic_rebase_or_drop(  # type: ignore[no-untyped-def]
    workspace, other, h
) -> None:
    await _endpoint(workspace, h, {"blue": 80, "green": 20, "shadow": 0})
    app = ModeldeckApp(workspace, poll_scale=0.25)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(TrafficScreen(EP))
        await h.eventually(lambda: len(app.screen.query(TrafficSlider)) == 4, pilot)
        screen = app.screen
        assert isinstance(screen, TrafficScreen)
        assert not screen.check_action("rebase", ())  # no conflict: the keys are not offered

        # stage: blue takes the rest, shadow gets 10%
        await pilot.press("r", "down", "down", "shift+right")
        assert screen.staged == {"blue": 70, "green": 20, "shadow": 10}
        staged_from = screen.base_revision

        # meanwhile, another operator moves traffic
        theirs = await other.get_endpoint(EP)
        assert theirs.revision == staged_from
        await (
            await other.update_endpoint(
                EP,
                EndpointPatch(traffic={"blue": 50, "green": 50, "shadow": 0}),
                if_revision=theirs.revision,
            )
        ).wait()
        # the screen notices on its next poll, before anything is sent
        await h.eventually(
            lambda: "changed since you staged" in _text(screen, "#traffic-summary"), pilot
        )
        assert screen.staged == {"blue": 70, "green": 20, "shadow": 10}  # edits kept

        await pilot.press("enter")
        await h.eventually(lambda: screen.conflict is not None, pilot)
        await h.eventually(lambda: screen.live == {"blue": 50, "green": 50, "shadow": 0}, pilot)
        notice = _text(screen, "#traffic-conflict")
        assert screen.query_one("#traffic-conflict").display
        assert "changed by someone else" in notice and "ssh from 10.9.8.7" in notice
        assert "traffic.blue 80 -> 50" in notice and "traffic.green 20 -> 50" in notice
        assert "live now: blue 50%  green 50%  shadow 0%" in notice
        assert "b rebase" in notice and "x drop" in notice
        assert screen.check_action("rebase", ()) and screen.check_action("drop_edits", ())
        footer = {b.binding.key for b in app.screen.active_bindings.values()}
        assert {"b", "x"} <= footer
        # nothing of ours was written
        assert (await workspace.get_endpoint(EP)).traffic == {"blue": 50, "green": 50, "shadow": 0}

        # rebase: our edit (shadow 10%, taken from the default) on their map
        await pilot.press("b")
        assert screen.conflict is None
        assert screen.staged == {"blue": 40, "green": 50, "shadow": 10}
        assert not screen.query_one("#traffic-conflict").display
        await pilot.press("enter")

        async def applied() -> bool:
            ep = await workspace.get_endpoint(EP)
            return ep.traffic == {"blue": 40, "green": 50, "shadow": 10}

        await h.eventually(applied, pilot)
        await h.eventually(lambda: not screen.dirty and screen.conflict is None, pilot)

        # the other way out: drop our edits, keep theirs
        await pilot.press("shift+right")  # shadow 20, blue 30
        assert screen.staged == {"blue": 30, "green": 50, "shadow": 20}
        theirs = await other.get_endpoint(EP)
        await (
            await other.update_endpoint(
                EP,
                EndpointPatch(traffic={"blue": 60, "green": 40, "shadow": 0}),
                if_revision=theirs.revision,
            )
        ).wait()
        await pilot.press("enter")
        await h.eventually(lambda: screen.conflict is not None, pilot)
        await h.eventually(lambda: screen.live == {"blue": 60, "green": 40, "shadow": 0}, pilot)
        await pilot.press("x")
        assert screen.conflict is None and not screen.dirty
        assert screen.staged == {"blue": 60, "green": 40, "shadow": 0}
        assert not screen.check_action("rebase", ())
    assert (await workspace.get_endpoint(EP)).traffic == {"blue": 60, "green": 40, "shadow": 0}
