"""The dashboard's flows, driven with Pilot against a real local workspace (real daemon,
real scoring processes, real gateway)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from modeldeck.tui.app import ModeldeckApp
from modeldeck.tui.screens.dialogs import ConfirmScreen
from modeldeck.tui.screens.forms import FormScreen
from modeldeck.tui.widgets.log_view import LogView
from modeldeck.tui.widgets.resource_table import ResourceTable
from modeldeck.tui.widgets.traffic_slider import TrafficSlider
from textual.widgets import Input

pytestmark = pytest.mark.e2e
SIZE = (120, 40)


def notes(app: ModeldeckApp) -> list[str]:
    return [f"{n.title or ''} {n.message}" for n in app._notifications]


def table(app: ModeldeckApp, selector: str = "#table") -> ResourceTable:
    return app.screen.query_one(selector, ResourceTable)


def row_text(app: ModeldeckApp, key: str, selector: str = "#table") -> str:
    cells = table(app, selector).cells(key) or ()
    return " ".join(getattr(c, "plain", str(c)) for c in cells)


async def type_text(pilot: Any, text: str) -> None:
    await pilot.press(
        *[
            {
                " ": "space",
                "/": "slash",
                ".": "full_stop",
                "-": "minus",
                "_": "underscore",
                ":": "colon",
            }.get(ch, ch)
            for ch in text
        ]
    )


async def command(pilot: Any, text: str) -> None:
    await pilot.press("colon")
    await type_text(pilot, text)
    await pilot.press("enter")


async def test_create_cluster_register_model_create_endpoint_and_deployment(
    workspace: Any, h: Any
) -> None:
    app = ModeldeckApp(workspace, poll_scale=0.25, initial_view="clusters")
    async with app.run_test(size=SIZE) as pilot:
        # a pool, validated as it is typed: 1 x D3_v2 is too small for FastProd
        await pilot.press("c")
        assert isinstance(app.screen, FormScreen)
        await type_text(pilot, "pool-ui")
        app.screen.query_one("#f-agent_count", Input).value = "1"
        await pilot.pause()
        assert "needs at least 12 vCPU" in str(app.screen.query_one("#form-error").render())
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, FormScreen)  # refused: still open
        app.screen.query_one("#f-agent_count", Input).value = "3"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await h.eventually(lambda: "Ready" in row_text(app, "pool-ui"), pilot)
        assert "create cluster pool-ui: succeeded" in " ".join(notes(app))

        # a model, registered from a path
        await pilot.press("4")
        await pilot.press("c")
        await type_text(pilot, "ui-model")
        app.screen.query_one("#f-path", Input).value = str(h.EXAMPLES / "model")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await h.eventually(lambda: row_text(app, "ui-model:000001").startswith("ui-model 1"), pilot)

        # an endpoint on that cluster
        await pilot.press("1")
        await pilot.press("c")
        await h.eventually(lambda: isinstance(app.screen, FormScreen), pilot)
        await type_text(pilot, "ep-ui")
        await pilot.press("ctrl+s")
        await h.eventually(lambda: "Ready" in row_text(app, "ep-ui"), pilot)

        # a deployment from an Azure ML YAML file (its model is registered as sklearn-demo:1)
        await h.ensure_model(workspace)
        table(app).move_cursor(row=table(app).get_row_index("ep-ui"))
        await pilot.press("enter")
        await h.eventually(lambda: app.screen.title_text() == "Endpoint ep-ui", pilot)
        await pilot.press("n")
        app.screen.query_one("#f-path", Input).value = str(h.EXAMPLES / "blue.yml")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await h.eventually(lambda: "Ready 1/1" in row_text(app, "ep-ui/blue"), pilot)
    deps = await workspace.list_deployments("ep-ui")
    assert [d.name for d in deps] == ["blue"]


async def test_sliders_stage_and_apply_the_full_map(workspace: Any, h: Any) -> None:
    await h.make_endpoint(workspace, "ep-traffic", {"blue": 100, "green": 0})
    app = ModeldeckApp(workspace, poll_scale=0.25)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "traffic ep-traffic")
        await h.eventually(lambda: bool(app.screen.query(TrafficSlider)), pilot)
        screen = app.screen
        await pilot.press("down")  # green
        assert isinstance(screen.focused, TrafficSlider) and screen.focused.deployment == "green"
        await pilot.press("shift+right")
        assert screen.staged == {"blue": 100, "green": 10}
        assert "110%" in str(screen.query_one("#traffic-summary").render())
        await pilot.press("enter")  # refused before anything is sent: total 110
        await pilot.pause()
        assert "not applied" in " ".join(notes(app))
        assert (await workspace.get_endpoint("ep-traffic")).traffic == {"blue": 100, "green": 0}

        await pilot.press("r")  # default (blue, the largest) takes the rest
        assert screen.staged == {"blue": 90, "green": 10}
        await pilot.press("shift+right", "right", "right")
        assert screen.staged == {"blue": 78, "green": 22}
        summary = str(screen.query_one("#traffic-summary").render())
        assert "100%" in summary and "blue 100→78" in summary and "green 0→22" in summary
        await pilot.press("enter")

        async def applied() -> bool:
            return (await workspace.get_endpoint("ep-traffic")).traffic == {"blue": 78, "green": 22}

        await h.eventually(applied, pilot)
        await h.eventually(
            lambda: not screen.dirty and screen.live == {"blue": 78, "green": 22}, pilot
        )

        # Escape discards what is staged: nothing is sent
        await pilot.press("shift+left")
        assert screen.dirty
        await pilot.press("escape")
        assert not isinstance(app.screen, type(screen))
    assert (await workspace.get_endpoint("ep-traffic")).traffic == {"blue": 78, "green": 22}


async def test_regenerate_key_old_one_refused_by_the_gateway(workspace: Any, h: Any) -> None:
    await h.make_endpoint(workspace, "ep-keys", {"blue": 100})
    old = await workspace.get_keys("ep-keys")
    uri = (await workspace.get_endpoint("ep-keys")).scoring_uri
    body = (h.EXAMPLES / "sample-request.json").read_bytes()
    app = ModeldeckApp(workspace, poll_scale=0.25)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "keys ep-keys")
        await h.eventually(
            lambda: (
                app.screen.query("#key-primary")
                and app.screen.query_one("#key-primary").secret == old.primaryKey
            ),
            pilot,
        )
        text = " ".join(str(w.render()) for w in app.screen.query("SecretField"))
        assert old.primaryKey not in text  # masked by default
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmScreen)
        assert "secondary key keeps working" in app.screen.message.replace("[b]", "").replace(
            "[/]", ""
        )
        await pilot.press("y")

        async def rotated() -> bool:
            return (await workspace.get_keys("ep-keys")).primaryKey != old.primaryKey

        await h.eventually(rotated, pilot)
    new = await workspace.get_keys("ep-keys")
    assert new.secondaryKey == old.secondaryKey
    async with httpx.AsyncClient(timeout=30) as client:
        refused = await client.post(
            uri, content=body, headers={"Authorization": f"Bearer {old.primaryKey}"}
        )
        accepted = await client.post(
            uri, content=body, headers={"Authorization": f"Bearer {new.primaryKey}"}
        )
        secondary = await client.post(
            uri, content=body, headers={"Authorization": f"Bearer {old.secondaryKey}"}
        )
    assert refused.status_code == 401
    assert accepted.status_code == 200
    assert secondary.status_code == 200


async def test_logs_follow_and_metrics_update_after_requests(workspace: Any, h: Any) -> None:
    await h.make_endpoint(workspace, "ep-live", {"blue": 100})
    body = (h.EXAMPLES / "sample-request.json").read_bytes()
    app = ModeldeckApp(workspace, poll_scale=0.25)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "logs ep-live/blue")
        await h.eventually(lambda: app.screen.__class__.__name__ == "LogsScreen", pilot)
        view = app.screen.query_one(LogView)
        # the line the scoring script logs from init() appears
        await h.eventually(lambda: any("model loaded" in ln.text for ln in view.lines()), pilot)
        await pilot.press("slash")
        await type_text(pilot, "model loaded")
        await pilot.press("enter")
        assert view.row_count >= 1 and all("model loaded" in ln.text for ln in view.lines())
        await pilot.press("escape")  # back to the previous view

        await command(pilot, "metrics ep-live")
        await h.eventually(lambda: app.screen.__class__.__name__ == "MetricsScreen", pilot)
        for _ in range(5):
            result = await workspace.invoke("ep-live", body)
            assert result.status == 200

        def counted() -> bool:
            cells = table(app, "#metric-table").cells("ep-live/blue")
            return cells is not None and int(cells[3]) >= 5

        await h.eventually(counted, pilot)


async def test_delete_refused_while_deployment_has_traffic(workspace: Any, h: Any) -> None:
    await h.make_endpoint(workspace, "ep-del", {"blue": 100})
    app = ModeldeckApp(workspace, poll_scale=0.25)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "endpoint ep-del")
        await h.eventually(lambda: "Ready" in row_text(app, "ep-del/blue"), pilot)
        await pilot.press("ctrl+d")
        assert isinstance(app.screen, ConfirmScreen)
        assert "100%" in app.screen.message  # the dialog warns before it is sent
        await pilot.press("y")
        await h.eventually(lambda: any("failed" in n for n in notes(app)), pilot)
        message = " ".join(notes(app))
        assert "traffic" in message and "fix:" in message and "Traceback" not in message
    assert [d.name for d in await workspace.list_deployments("ep-del")] == ["blue"]


async def test_readonly_hides_and_refuses_mutations(workspace: Any, h: Any) -> None:
    await h.make_endpoint(workspace, "ep-ro", {"blue": 100, "green": 0})
    app = ModeldeckApp(workspace, readonly=True, poll_scale=0.25, initial_view="clusters")
    async with app.run_test(size=SIZE) as pilot:
        await h.eventually(lambda: "pool-a" in table(app).all_keys, pilot)
        footer_keys = {
            b.binding.action for b in app.screen.active_bindings.values() if b.binding.show
        }
        assert footer_keys.isdisjoint({"create", "attach", "detach", "scale"})
        await pilot.press("c")
        assert not isinstance(app.screen, FormScreen)
        app.screen.action_create()  # the action itself refuses too (as from the palette)
        await pilot.pause()
        assert "read-only mode" in " ".join(notes(app))
        assert not isinstance(app.screen, FormScreen)
        assert "READ-ONLY" in str(app.screen.query_one("#topbar").render())

        await command(pilot, "traffic ep-ro")
        await h.eventually(lambda: bool(app.screen.query(TrafficSlider)), pilot)
        await pilot.press("shift+left", "down", "shift+right", "enter")
        assert app.screen.staged == {"blue": 100, "green": 0}
        await pilot.pause(0.3)
    assert (await workspace.get_endpoint("ep-ro")).traffic == {"blue": 100, "green": 0}


async def test_workspace_switcher(workspace: Any, tui_home: Any, h: Any) -> None:
    """With more than one workspace configured, the palette offers them and ``:workspace``
    switches every view to the other one."""
    await h.ensure_cluster(workspace)
    config = tui_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        'default = "local"\n[workspaces.local]\nprovider = "local"\n[workspaces.second]\nprovider = "local"\n'
    )
    try:
        app = ModeldeckApp(workspace, poll_scale=0.25, initial_view="clusters")
        async with app.run_test(size=SIZE) as pilot:
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert "Switch workspace: second" in titles
            await command(pilot, "workspace second")
            await h.eventually(
                lambda: "workspace second" in str(app.screen.query_one("#topbar").render()), pilot
            )
            assert app.workspace is not workspace and app.workspace.name == "second"
            await h.eventually(
                lambda: "pool-a" in table(app).all_keys, pilot
            )  # the same home: same data
            await command(pilot, "workspace nowhere")
            await h.eventually(lambda: any("nowhere" in n for n in notes(app)), pilot)
            assert app.workspace.name == "second"
    finally:
        config.unlink()
