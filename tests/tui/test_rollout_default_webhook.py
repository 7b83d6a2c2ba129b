"""The dashboard's Rollout form starts a rollout with the profile's ``rollout_webhook`` when
it names no webhook, as ``online-endpoint rollout`` does (services/usecases/rollouts.py);
its own module: the profile is this module's daemon home's config.toml."""

from __future__ import annotations

from typing import Any

import pytest
from modeldeck.services.api.rollouts import RolloutState
from modeldeck.tui.app import ModeldeckApp
from modeldeck.tui.screens.forms import FormScreen
from modeldeck.tui.screens.rollout import RolloutScreen
from textual.widgets import Input

from tests.support.daemon import Home
from tests.support.rollouts import TREATMENT, flaky_pair, rollout_until

pytestmark = pytest.mark.e2e
DEFAULT = "http://127.0.0.1:9/T000/B000/profile-secret"  # the discard port: nothing leaves


async def test_the_form_uses_the_profiles_default_webhook(  # type: ignore[no-untyped-def]
    workspace, h, tmp_path, daemon_home: Home
) -> None:
    config = daemon_home.path / "config"
    config.mkdir(mode=0o700, exist_ok=True)
    (config / "config.toml").write_text(
        f'[workspaces.local]\nprovider = "local"\nrollout_webhook = "{DEFAULT}"\n'
    )
    (config / "config.toml").chmod(0o600)
    ws, name = workspace, "ro-default-hook"
    await flaky_pair(ws, name, tmp_path / "never-made")
    app = ModeldeckApp(ws, poll_scale=0.25)
    async with app.run_test(size=(80, 24)) as pilot:
        await h.select_row(app, pilot, name)
        await pilot.press("R")
        await h.eventually(
            lambda: isinstance(app.screen, RolloutScreen) and app.screen.loaded, pilot
        )
        await pilot.press("n")
        await h.eventually(lambda: isinstance(app.screen, FormScreen), pilot)
        form: Any = app.screen
        assert form.query_one("#f-to").value == TREATMENT
        form.query_one("#f-interval", Input).value = "1h"  # it stays at its first step
        await pilot.pause()
        await pilot.press("ctrl+s")
        started = await rollout_until(ws, name, lambda r: r.state.active, what="started")
    assert started.spec.webhook == DEFAULT  # kept whole in the record, shown redacted
    await ws.control_rollout(name, "abort")
    assert (await ws.get_rollout(name)).state is RolloutState.ABORTED  # type: ignore[union-attr]
