"""The traffic screen with the most deployments an endpoint may have (6), at 80x24:
one slider each, all on screen, each reachable with ↓ and moved with →."""

from __future__ import annotations

from typing import Any

from modeldeck.services.api.domain import (
    AuthMode,
    CodeConfiguration,
    Deployment,
    DeploymentSpec,
    Endpoint,
    ProvisioningState,
)
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.tui.app import ModeldeckApp
from modeldeck.tui.widgets.traffic_slider import TrafficSlider

NAMES = ["blue", "green", "red", "cyan", "pink", "gold"]
OK = ProvisioningState.SUCCEEDED


async def test_six_sliders_fit_at_80x24_and_each_one_moves() -> None:
    from modeldeck.tui.screens.traffic import TrafficScreen

    traffic = {"blue": 50, "green": 10, "red": 10, "cyan": 10, "pink": 10, "gold": 10}
    endpoint = Endpoint("six", "pool-a", AuthMode.KEY, "http://127.0.0.1:1/score", traffic, {}, OK)
    deployments = [
        Deployment(
            DeploymentSpec(n, "six", "azureml:m:1", CodeConfiguration("/c", "score.py")),
            OK,
            1,
            1,
            traffic[n],
        )
        for n in NAMES
    ]
    app = ModeldeckApp(LocalWorkspace("local", autostart=False), autoload=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(TrafficScreen("six"))
        screen: Any = app.screen
        screen.show_data((endpoint, deployments))
        await pilot.pause()
        sliders = [s for s in screen.query(TrafficSlider) if s.deployment in NAMES]
        assert sorted(s.deployment for s in sliders) == sorted(NAMES)
        for slider in sliders:  # every slider is inside the 24 rows
            assert slider.region.y >= 0 and slider.region.bottom <= 23  # above the footer
        order = [s.deployment for s in sliders]  # as shown, top to bottom
        assert screen.focused.deployment == order[0] == "blue"
        await pilot.press("r")  # the default (blue) takes the rest: the total stays 100
        for name in order[1:]:
            await pilot.press("down", "right")
            assert screen.focused.deployment == name
        assert screen.staged == {
            "blue": 45,
            "green": 11,
            "red": 11,
            "cyan": 11,
            "pink": 11,
            "gold": 11,
        }
        assert sum(screen.staged.values()) == 100
