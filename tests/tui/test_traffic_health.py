"""Health where traffic is decided (issue 13, point 1), with Pilot against a real local
workspace: a deployment whose init() raises (a real replica process) sits at READY 0/1,
Failed. The Traffic screen says so on its slider; applying traffic to it asks first, naming
READY 0/1 and the last traceback line, and without the confirmation nothing is applied;
confirmed, the endpoint is Degraded, in words with the reason, on Traffic and in the
Endpoints list, at 80x24."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import CodeConfiguration, replace
from modeldeck.services.api.errors import BackendError
from modeldeck.tui.app import ModeldeckApp
from modeldeck.tui.screens.dialogs import ConfirmScreen
from modeldeck.tui.screens.traffic import TrafficScreen
from modeldeck.tui.widgets.resource_table import ResourceTable
from modeldeck.tui.widgets.traffic_slider import TrafficSlider
from textual.widgets import Static

pytestmark = pytest.mark.e2e
SIZE = (80, 24)
EP = "sick-ep"
LAST_ERROR = "RuntimeError: model file is corrupt"


def text_of(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def _endpoint_with_a_crash_looping_deployment(ws: Any, h: Any, tmp: Path) -> None:
    await h.make_endpoint(ws, EP, {"blue": 100})
    code = tmp / "red"
    code.mkdir()
    (code / "score.py").write_text(
        "def init():\n    raise RuntimeError('model file is corrupt')\n\n"
        "def run(raw_data):\n    return raw_data\n"
    )
    spec = replace(
        h.deployment_spec("red", EP),
        code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
    )
    with pytest.raises(BackendError):
        await asyncio.wait_for((await ws.create_deployment(spec)).wait(), 60)
    red = await ws.get_deployment(EP, "red")
    assert (red.ready_replicas, red.desired_replicas) == (0, 1)


async def test_traffic_to_a_crash_looping_deployment_asks_and_the_endpoint_reads_degraded(  # type: ignore[no-untyped-def]
    workspace, h, tmp_path
) -> None:
    await _endpoint_with_a_crash_looping_deployment(workspace, h, tmp_path)
    app = ModeldeckApp(workspace, poll_scale=0.25)
    async with app.run_test(size=SIZE) as pilot:
        grid = await h.select_row(app, pilot, EP)
        cells = grid.cells(EP) or ()
        assert "Degraded" not in " ".join(getattr(c, "plain", str(c)) for c in cells)

        await pilot.press("t")
        await h.eventually(lambda: len(app.screen.query(TrafficSlider)) == 3, pilot)
        screen = app.screen
        assert isinstance(screen, TrafficScreen)
        # its slider says what is wrong, in words; the others' figures now (none yet: –)
        red = screen.query_one("#slider-red", TrafficSlider)
        await h.eventually(lambda: red.problem == "READY 0/1, Failed", pilot)
        assert " ".join(str(red.render()).split()).endswith("0% READY 0/1, Failed")
        blue = " ".join(str(screen.query_one("#slider-blue", TrafficSlider).render()).split())
        assert blue.endswith("100% READY 1/1 err – p95 –"), blue
        assert not screen.query_one("#traffic-health").display  # red takes no traffic yet

        # stage red 10% (blue, the default, takes the rest) and apply: asked first
        await pilot.press("r", "down", "shift+right")
        assert screen.staged == {"blue": 90, "red": 10}
        await pilot.press("enter")
        await h.eventually(lambda: isinstance(app.screen, ConfirmScreen), pilot)
        body = " ".join(str(s.render()) for s in app.screen.query(Static))
        assert "red" in body and "READY 0/1" in body and LAST_ERROR in body, body

        # no confirmation: nothing is applied
        await pilot.press("escape")
        await h.eventually(lambda: app.screen is screen, pilot)
        await pilot.pause(0.5)
        assert (await workspace.get_endpoint(EP)).traffic == {"blue": 100, "red": 0}
        assert any("not applied" in (n.title or "") for n in app._notifications)
        assert screen.staged == {"blue": 90, "red": 10}  # still staged, to think again

        # confirmed: applied; the Traffic screen says Degraded, and why
        await pilot.press("enter")
        await h.eventually(lambda: isinstance(app.screen, ConfirmScreen), pilot)
        await pilot.press("y")

        async def applied() -> bool:
            return (await workspace.get_endpoint(EP)).traffic == {"blue": 90, "red": 10}

        await h.eventually(applied, pilot)
        await h.eventually(lambda: "Degraded" in text_of(screen, "#traffic-health"), pilot)
        degraded = text_of(screen, "#traffic-health")
        assert "red: READY 0/1, Failed, 10% of traffic" in degraded
        assert f"last error: {LAST_ERROR}" in degraded

        # the Endpoints list: Degraded in the STATE column, the reason on the status line
        await pilot.press("escape")
        grid = app.screen.query_one("#table", ResourceTable)

        def state() -> str:
            return " ".join(getattr(c, "plain", str(c)) for c in grid.cells(EP) or ())

        await h.eventually(lambda: "Degraded" in state(), pilot)
        await h.eventually(lambda: "Degraded" in text_of(app.screen, "#status-line"), pilot)
        assert "red: READY 0/1" in text_of(app.screen, "#status-line")

        # taking the traffic away asks nothing
        await pilot.press("t")
        await h.eventually(lambda: len(app.screen.query(TrafficSlider)) == 3, pilot)
        await pilot.press("r", "down", "home", "enter")

        async def moved_away() -> bool:
            return (await workspace.get_endpoint(EP)).traffic == {"blue": 100, "red": 0}

        await h.eventually(moved_away, pilot)
        assert not isinstance(app.screen, ConfirmScreen)
