"""The History view (issue 13, audit history): who changed what, before -> after, and a
one-key revert of a traffic change that is itself recorded, and refused when the endpoint
moved on since (no lost writes). Real daemon, real records."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from modeldeck.services.api.domain import EndpointPatch, EndpointSpec
from modeldeck.tui.app import ModeldeckApp
from modeldeck.tui.screens.history import HistoryScreen

pytestmark = pytest.mark.e2e
SIZE = (120, 40)
EP = "ep-history"


async def _endpoint(ws: Any, h: Any) -> None:
    await h.ensure_cluster(ws)
    await h.ensure_model(ws)
    await asyncio.wait_for(
        (await ws.create_endpoint(EndpointSpec(name=EP, compute="pool-a"))).wait(), 60
    )
    for name in ("blue", "green"):
        spec = h.deployment_spec(name, EP, instance_count=0)
        await asyncio.wait_for((await ws.create_deployment(spec)).wait(), 60)
    for traffic in ({"blue": 100, "green": 0}, {"blue": 70, "green": 30}):
        await asyncio.wait_for(
            (await ws.update_endpoint(EP, EndpointPatch(traffic=traffic))).wait(), 60
        )


def _status(app: Any) -> str:
    from textual.widgets import Static

    return str(app.screen.query_one("#status-line", Static).render())


async def test_u_reverts_the_last_traffic_change_and_refuses_a_stale_one(  # type: ignore[no-untyped-def]
    workspace, other, h
) -> None:
    await _endpoint(workspace, h)
    app = ModeldeckApp(workspace, poll_scale=0.25)
    async with app.run_test(size=SIZE) as pilot:
        app.run_command(f":history {EP}")
        await h.eventually(lambda: isinstance(app.screen, HistoryScreen), pilot)
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        await h.eventually(lambda: len(screen.changes) >= 5, pilot)
        newest = screen.changes["000000"]
        assert (newest.target, newest.action) == (EP, "update")
        assert newest.changed == {"traffic.blue": [100, 70], "traffic.green": [0, 30]}
        table = await h.select_row(app, pilot, "000000")
        row = table.cells("000000")
        assert row is not None
        assert "traffic.blue 100 -> 70" in str(row[-1]) and "@" in str(row[1])
        await h.eventually(lambda: "u: revert" in _status(app), pilot)

        await asyncio.sleep(1.1)  # the revert is recorded in a later second than the rest
        await pilot.press("u")  # one key: the map goes back to blue=100 green=0

        async def traffic() -> dict[str, int]:
            return (await workspace.get_endpoint(EP)).traffic

        for _ in range(200):
            if await traffic() == {"blue": 100, "green": 0}:
                break
            await pilot.pause(0.05)
        assert await traffic() == {"blue": 100, "green": 0}
        # the revert is itself in the history, as the newest change, named so
        await h.eventually(
            lambda: (
                screen.changes["000000"].changed
                == {"traffic.blue": [70, 100], "traffic.green": [30, 0]}
            ),
            pilot,
        )
        assert screen.changes["000000"].action == "revert"
        # newest first on screen too: the revert is the top row, times never go up downwards
        await h.eventually(lambda: screen.table.shown_keys[:1] == ["000000"], pilot)
        times = [str(screen.table.cells(k)[0]) for k in screen.table.shown_keys]  # type: ignore[index]
        assert times == sorted(times, reverse=True), times

        # reverting an older change after the endpoint moved on is refused, and says why
        stale = screen.changes["000001"]
        assert stale.changed == {"traffic.blue": [100, 70], "traffic.green": [0, 30]}
        await h.select_row(app, pilot, "000001")
        notices: list[str] = []
        real_notify = app.notify

        def notify(message: str, *args: Any, **kwargs: Any) -> None:
            notices.append(message)
            real_notify(message, *args, **kwargs)

        app.notify = notify  # type: ignore[method-assign]
        await pilot.press("u")
        await h.eventually(lambda: any("not reverted" in n for n in notices), pilot)
        text = next(n for n in notices if "not reverted" in n)
        assert f"revision {stale.revision} is no longer the endpoint's last change" in text
        assert await traffic() == {"blue": 100, "green": 0}  # nothing lost

        # a change that is not a traffic change is not reverted here
        await h.select_row(app, pilot, f"{len(screen.changes) - 1:06d}")  # the create
        await pilot.press("u")
        await h.eventually(lambda: any("only a traffic change" in n for n in notices), pilot)


async def test_h_opens_the_history_from_the_endpoint_list_and_detail(  # type: ignore[no-untyped-def]
    workspace, h
) -> None:
    await h.make_endpoint(workspace, "ep-history-keys", {})
    app = ModeldeckApp(workspace, poll_scale=0.25)
    async with app.run_test(size=(80, 24)) as pilot:
        await h.select_row(app, pilot, "ep-history-keys")
        await pilot.press("h")
        await h.eventually(lambda: isinstance(app.screen, HistoryScreen), pilot)
        assert app.screen.endpoint_name == "ep-history-keys"  # type: ignore[attr-defined]
        await h.eventually(lambda: bool(app.screen.changes), pilot)  # type: ignore[attr-defined]
        (created,) = app.screen.changes.values()  # type: ignore[attr-defined]
        assert (created.target, created.action) == ("ep-history-keys", "create")
        await pilot.press("escape")
        await pilot.press("enter")  # the detail
        await h.eventually(lambda: type(app.screen).__name__ == "EndpointDetailScreen", pilot)
        await pilot.press("h")
        await h.eventually(lambda: isinstance(app.screen, HistoryScreen), pilot)
        assert app.screen.endpoint_name == "ep-history-keys"  # type: ignore[attr-defined]


async def test_u_asks_before_a_revert_gives_traffic_back_to_a_crash_looping_deployment(  # type: ignore[no-untyped-def]
    workspace, h, tmp_path, capsys
) -> None:
    """A revert is a traffic change like Traffic's Apply: one that gives a deployment not
    ready or failing more traffic asks first, naming READY 0/1 and the last error; no
    answer, nothing reverted (as ``update --traffic`` without --force)."""
    from modeldeck.tui.screens.dialogs import ConfirmScreen
    from textual.widgets import Static

    from tests.tui.test_traffic_health import EP as SICK
    from tests.tui.test_traffic_health import LAST_ERROR, _endpoint_with_a_crash_looping_deployment

    await _endpoint_with_a_crash_looping_deployment(workspace, h, tmp_path)
    for traffic in ({"blue": 90, "red": 10}, {"blue": 100, "red": 0}):  # sent there, taken away
        await asyncio.wait_for(
            (await workspace.update_endpoint(SICK, EndpointPatch(traffic=traffic))).wait(), 60
        )

    async def traffic() -> dict[str, int]:
        return (await workspace.get_endpoint(SICK)).traffic

    app = ModeldeckApp(workspace, poll_scale=0.25)
    async with app.run_test(size=(80, 24)) as pilot:
        app.run_command(f":history {SICK}")
        await h.eventually(lambda: isinstance(app.screen, HistoryScreen), pilot)
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        await h.eventually(lambda: "000000" in screen.changes, pilot)
        assert screen.changes["000000"].changed == {
            "traffic.blue": [90, 100],
            "traffic.red": [10, 0],
        }
        await h.select_row(app, pilot, "000000")
        await pilot.press("u")  # would give red its 10% back
        await h.eventually(lambda: isinstance(app.screen, ConfirmScreen), pilot)
        body = " ".join(str(s.render()) for s in app.screen.query(Static))
        assert "red" in body and "READY 0/1" in body and LAST_ERROR in body, body

        await pilot.press("escape")  # no confirmation: nothing reverted
        await h.eventually(lambda: app.screen is screen, pilot)
        await pilot.pause(0.5)
        assert await traffic() == {"blue": 100, "red": 0}
        assert any("not reverted" in str(n.message) for n in app._notifications)

        await pilot.press("u")  # confirmed: reverted, and recorded as a revert
        await h.eventually(lambda: isinstance(app.screen, ConfirmScreen), pilot)
        await pilot.press("y")

        async def reverted() -> bool:
            return await traffic() == {"blue": 90, "red": 10}

        await h.eventually(reverted, pilot)
        await h.eventually(lambda: screen.changes["000000"].action == "revert", pilot)

    # the CLI's history shows the revert: who, when, before -> after
    import getpass
    import json
    import socket

    from modeldeck.cli.main import main

    capsys.readouterr()
    assert (
        await asyncio.to_thread(main, ["online-endpoint", "history", "-n", SICK, "-o", "json"]) == 0
    )
    last = json.loads(capsys.readouterr().out)[-1]
    assert (last["target"], last["action"]) == (SICK, "revert"), last
    assert last["who"] == f"{getpass.getuser()}@{socket.gethostname()}" and last["time"]
    changed = {c["field"]: (c["before"], c["after"]) for c in last["changes"]}
    assert changed == {"traffic.blue": (100, 90), "traffic.red": (0, 10)}, changed


async def test_values_and_names_are_shown_as_recorded_not_as_markup(  # type: ignore[no-untyped-def]
    workspace, h
) -> None:
    """A description or tag is the user's text: ``[/]`` or ``[on black]`` in it is shown as
    written (a record read as markup stopped the view, or drew part of what changed
    invisibly)."""
    await h.ensure_cluster(workspace)
    await asyncio.wait_for(
        (await workspace.create_endpoint(EndpointSpec(name="ep-markup", compute="pool-a"))).wait(),
        60,
    )
    text = "[/] [black on black]hidden[/]"
    await asyncio.wait_for(
        (await workspace.update_endpoint("ep-markup", EndpointPatch(description=text))).wait(), 60
    )
    app = ModeldeckApp(workspace, poll_scale=0.25)
    async with app.run_test(size=SIZE) as pilot:
        app.run_command(":history ep-markup")
        await h.eventually(lambda: isinstance(app.screen, HistoryScreen), pilot)
        screen = app.screen
        await h.eventually(lambda: len(screen.changes) >= 2, pilot)
        table = await h.select_row(app, pilot, "000000")
        row = table.cells("000000")
        assert row is not None
        from rich.text import Text

        shown = row[-1] if isinstance(row[-1], Text) else Text.from_markup(str(row[-1]))
        assert text in shown.plain, shown
        await h.eventually(lambda: text in _status(app), pilot)
