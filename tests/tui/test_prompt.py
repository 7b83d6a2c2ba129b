"""The k9s prompt under a fast typist (or a paste over SSH): keys that arrive in one burst
right after ``/`` or ``:`` land in the prompt, not in the table behind it."""

from __future__ import annotations

from typing import Any

from modeldeck.services.api.domain import (
    CodeConfiguration,
    Deployment,
    DeploymentSpec,
    ProvisioningState,
)
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.tui.app import ModeldeckApp
from textual import events


def _deployments(n: int) -> list[Deployment]:
    return [
        Deployment(
            DeploymentSpec(
                f"{c}-{i}", f"ep-{i // 6}", "azureml:m:1", CodeConfiguration("/c", "score.py")
            ),
            ProvisioningState.SUCCEEDED,
            1,
            1,
            100 if c == "blue" else 0,
        )
        for i in range(n // 2)
        for c in ("blue", "green")
    ]


def _burst(app: ModeldeckApp, text: str) -> None:
    """Every key queued at once, as a terminal delivers a burst (no wait between keys)."""
    names = {"/": "slash", ":": "colon", "-": "minus", " ": "space"}
    for ch in text:
        app.post_message(events.Key(names.get(ch, ch), ch))


def _app() -> ModeldeckApp:
    return ModeldeckApp(
        LocalWorkspace("local", autostart=False), autoload=False, initial_view="deployments"
    )


async def test_a_filter_typed_in_one_burst_lands_in_the_prompt() -> None:
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen: Any = app.screen
        screen.show_data(_deployments(200))
        await pilot.pause()
        _burst(app, "/green-9")
        await pilot.pause()
        assert screen.current_filter() == "green-9"
        assert screen.table.shown_keys[:2] == ["ep-1/green-9", "ep-15/green-90"]
        assert "filter /green-9: 11 of 200" in str(screen.query_one("#status-line").render())


async def test_a_slash_inside_the_command_prompt_is_text_not_the_filter() -> None:
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen: Any = app.screen
        screen.show_data(_deployments(20))
        await pilot.pause()
        _burst(app, ":logs ep-1/blue-9")
        await pilot.pause()
        prompt = screen.query_one("#command-line")
        assert prompt.value == "logs ep-1/blue-9" and prompt.mode == ":"
        assert screen.current_filter() == ""
