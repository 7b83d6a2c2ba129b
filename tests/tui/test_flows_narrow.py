"""Issue 13's dashboard fixes that need a real local workspace (real daemon), at 80x24:
read-only keys, a Keys screen whose endpoint is deleted elsewhere."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from modeldeck.tui.app import ModeldeckApp
from modeldeck.tui.widgets.secret import SecretField

from tests.support.daemon import fresh_home
from tests.tui.narrow import screen_text

__all__ = ["fresh_home"]  # a fixture: a home of its own (its daemon is stopped here)

pytestmark = pytest.mark.e2e
SMALL = (80, 24)


async def _open_keys(app: ModeldeckApp, pilot: Any, endpoint: str) -> None:
    app.open_keys(endpoint)
    await pilot.pause()


# ---------------------------------------------------------------- 8: read-only, keys


async def test_readonly_keys_are_not_read_revealed_or_copied(workspace: Any, h: Any) -> None:
    await h.make_endpoint(workspace, "ep-ro-keys", {})
    keys = await workspace.get_keys("ep-ro-keys")
    app = ModeldeckApp(workspace, readonly=True, poll_scale=0.05)
    async with app.run_test(size=SMALL) as pilot:
        await _open_keys(app, pilot, "ep-ro-keys")
        await h.eventually(lambda: "auth mode" in screen_text(app), pilot)
        await pilot.press("v", "y", "Y")
        await pilot.pause()
        app.screen.action_reveal()  # as from the palette: refused too
        app.screen.action_copy("primary")
        await pilot.pause()
        shown = screen_text(app)
        assert "read-only" in shown
        assert keys.primaryKey not in shown and keys.secondaryKey not in shown
        assert app.clipboard == ""
        assert all(f.secret == "" for f in app.screen.query(SecretField))  # never read


async def test_keys_of_an_endpoint_deleted_elsewhere_are_forgotten(workspace: Any, h: Any) -> None:
    await h.make_endpoint(workspace, "ep-gone", {})
    keys = await workspace.get_keys("ep-gone")
    app = ModeldeckApp(workspace, poll_scale=0.02)  # Keys polls every 30 s: 0.6 s here
    async with app.run_test(size=SMALL) as pilot:
        await _open_keys(app, pilot, "ep-gone")
        primary = app.screen.query_one("#key-primary", SecretField)
        await h.eventually(lambda: primary.secret == keys.primaryKey, pilot)
        await (await workspace.delete_endpoint("ep-gone")).wait()  # another operator
        await h.eventually(lambda: primary.secret == "", pilot)
        await pilot.press("v")
        await pilot.pause()
        shown = screen_text(app)
        assert keys.primaryKey not in shown and keys.secondaryKey not in shown
        assert "NotFound" in shown  # the banner says why
        await pilot.press("y")
        assert app.clipboard == ""


# ---------------------------------------------------------------- 10: deleting what serves


async def test_deleting_an_endpoint_that_serves_asks_for_its_name_typed(
    workspace: Any, h: Any
) -> None:
    import httpx
    from modeldeck.tui.screens.dialogs import ConfirmScreen, TypedConfirmScreen

    await h.make_endpoint(workspace, "ep-serving", {"blue": 100})
    await h.make_endpoint(workspace, "ep-idle", {})
    endpoint = await workspace.get_endpoint("ep-serving")
    key = (await workspace.get_keys("ep-serving")).primaryKey
    body = (h.EXAMPLES / "sample-request.json").read_bytes()
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(5):
            await client.post(
                endpoint.scoring_uri, content=body, headers={"Authorization": f"Bearer {key}"}
            )
    app = ModeldeckApp(workspace, poll_scale=0.25)
    async with app.run_test(size=SMALL) as pilot:
        await h.select_row(app, pilot, "ep-idle")
        await pilot.press("ctrl+d")
        await h.eventually(lambda: isinstance(app.screen, ConfirmScreen), pilot)
        await pilot.press("escape")  # idle: one y would do; not this time
        await pilot.pause()

        await h.select_row(app, pilot, "ep-serving")
        await pilot.press("ctrl+d")
        await h.eventually(lambda: isinstance(app.screen, TypedConfirmScreen), pilot)
        shown = screen_text(app)
        assert "It is serving" in shown and "req/s" in shown and "blue=100" in shown
        await pilot.press("y", "enter")  # one y is not enough
        await pilot.pause(0.3)
        assert isinstance(app.screen, TypedConfirmScreen)
        assert (await workspace.get_endpoint("ep-serving")).name == "ep-serving"
        app.screen.query_one("#typed-name").value = ""
        await pilot.press(*"ep-serving".replace("-", " ").split(" ")[0], "minus", *"serving")
        await pilot.press("enter")

        async def gone() -> bool:
            return "ep-serving" not in {e.name for e in await workspace.list_endpoints()}

        await h.eventually(gone, pilot)


# ---------------------------------------------------------------- 5: daemon stop sticks


async def test_daemon_stop_sticks_while_the_dashboard_is_open(fresh_home: Any, h: Any) -> None:
    from modeldeck.services.local.client import LocalWorkspace
    from modeldeck.services.local.controlplane import daemon

    ws = LocalWorkspace()  # autostart, as ``modeldeck`` opens it
    app = ModeldeckApp(ws, poll_scale=0.1)  # polls every 0.2 s
    async with app.run_test(size=SMALL) as pilot:
        await h.eventually(lambda: "no endpoints" in screen_text(app), pilot)
        assert daemon.daemon_status()["running"]
        await asyncio.to_thread(daemon.stop_daemon)  # modeldeck daemon stop, from a shell
        await h.eventually(lambda: "control plane stopped" in screen_text(app), pilot)
        await pilot.pause(2.0)  # ten polls later: still stopped, still said
        assert not daemon.daemon_status()["running"]
        assert "control plane stopped" in screen_text(app)
        await pilot.press("S")  # the operator starts it
        await h.eventually(lambda: daemon.daemon_status()["running"], pilot)
        await h.eventually(lambda: "control plane stopped" not in screen_text(app), pilot)
        assert "no endpoints" in screen_text(app)


# ---------------------------------------------------------------- propagation: push, not poll


async def test_another_operators_change_shows_without_waiting_for_a_poll(
    workspace: Any, h: Any
) -> None:
    from modeldeck.services.api.domain import EndpointSpec
    from modeldeck.services.local.client import LocalWorkspace

    await h.ensure_cluster(workspace)
    b = LocalWorkspace(autostart=False)  # operator B's dashboard: its own connection
    app = ModeldeckApp(b, poll_scale=100)  # a poll every 200 s: only the watch can show it
    async with app.run_test(size=SMALL) as pilot:
        await h.eventually(lambda: app.screen.loaded and app._watching, pilot)
        await pilot.pause(0.3)
        await (await workspace.create_endpoint(EndpointSpec("ep-pushed", "pool-a"))).wait()
        shown = asyncio.get_running_loop().time()
        await h.eventually(lambda: "ep-pushed" in screen_text(app), pilot)
        assert asyncio.get_running_loop().time() - shown < 2.0
