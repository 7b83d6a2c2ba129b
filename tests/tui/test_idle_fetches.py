"""Issue 17: the dashboard fetches what is shown, when it may have changed. A view hidden
under another fetches nothing; the History (every row a recorded change) is fetched on
the workspace's watch, not on a timer, while the watch is live, and on its timer when
there is none; wakes that come together are one fetch. Requests are counted as the
client sends them on the control socket (httpx's request hook). Real daemon."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from modeldeck.services.api.domain import EndpointPatch
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.tui.app import ModeldeckApp
from modeldeck.tui.screens.history import HistoryScreen

from tests.support.daemon import fresh_home

__all__ = ["fresh_home"]  # a fixture: a home of its own (its daemon is stopped here)
pytestmark = pytest.mark.e2e
SIZE = (120, 40)
EP = "ep-idle"
QUIET_S = 1.5  # a window with nothing changing: 6+ timer polls of the views below


def counted(ws: LocalWorkspace) -> collections.Counter[str]:
    """Requests ``ws`` sends from now on, by path."""
    seen: collections.Counter[str] = collections.Counter()

    async def note(request: Any) -> None:
        seen[request.url.path] += 1

    ws._http().event_hooks = {"request": [note], "response": []}
    return seen


async def _endpoint(ws: Any, h: Any) -> None:
    if EP not in {e.name for e in await ws.list_endpoints()}:
        await h.make_endpoint(ws, EP, {"blue": 100})


async def _describe(ws: Any, text: str) -> None:
    await asyncio.wait_for(
        (await ws.update_endpoint(EP, EndpointPatch(description=text))).wait(), 60
    )


async def _history(app: ModeldeckApp, pilot: Any, h: Any) -> HistoryScreen:
    app.run_command(f":history {EP}")
    await h.eventually(lambda: isinstance(app.screen, HistoryScreen), pilot)
    screen = app.screen
    assert isinstance(screen, HistoryScreen)
    await h.eventually(lambda: screen.loaded and app.watch_live, pilot)
    return screen


@contextlib.asynccontextmanager
async def _metrics_followed(h: Any) -> AsyncIterator[tuple[LocalWorkspace, Any, Any]]:
    """The Metrics view, a fetch each 0.1 s, loaded and the watch live."""
    ws = LocalWorkspace(autostart=False)
    app = ModeldeckApp(ws, poll_scale=0.1, initial_view="metrics")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await h.eventually(lambda: screen.loaded and app.watch_live, pilot)
        await pilot.pause(0.3)
        yield ws, pilot, screen


def _described(screen: HistoryScreen, text: str) -> bool:
    return any(
        c.changed.get("description", [None, None])[1] == text for c in screen.changes.values()
    )


async def test_history_follows_the_watch_and_the_views_under_it_fetch_nothing(
    workspace: Any, h: Any
) -> None:
    await _endpoint(workspace, h)
    ws = LocalWorkspace(autostart=False)
    app = ModeldeckApp(ws, poll_scale=0.05)  # timers: Endpoints 0.1 s, History 0.25 s
    async with app.run_test(size=SIZE) as pilot:
        await h.select_row(app, pilot, EP)
        screen = await _history(app, pilot, h)
        await pilot.pause(0.3)  # what the Endpoints and History had started, done
        seen = counted(ws)
        await pilot.pause(QUIET_S)
        # nothing changed: no History fetch, and the Endpoints under it fetch nothing
        assert not {"/v1/history", "/v1/endpoints", "/v1/metrics"} & set(seen), seen

        await _describe(workspace, "changed by another client")  # recorded: the watch wakes
        await h.eventually(lambda: _described(screen, "changed by another client"), pilot)
        assert seen["/v1/history"] >= 1
        assert "/v1/endpoints" not in seen  # still hidden

        await pilot.press("escape")  # the Endpoints back on top: fetched again at once
        await h.eventually(lambda: seen["/v1/endpoints"] >= 1, pilot)


async def test_metrics_under_the_logs_fetch_nothing_and_again_on_return(
    workspace: Any, h: Any
) -> None:
    await _endpoint(workspace, h)
    ws = LocalWorkspace(autostart=False)
    app = ModeldeckApp(ws, poll_scale=0.1, initial_view="metrics")  # a fetch each 0.1 s
    async with app.run_test(size=SIZE) as pilot:
        metrics = app.screen
        await h.eventually(lambda: metrics.loaded, pilot)
        app.open_logs(EP, "blue")
        await h.eventually(lambda: app.screen is not metrics, pilot)
        await pilot.pause(0.3)
        seen = counted(ws)
        await pilot.pause(QUIET_S)
        assert "/v1/metrics" not in seen, seen
        await pilot.press("escape")
        await h.eventually(lambda: app.screen is metrics, pilot)
        await h.eventually(lambda: seen["/v1/metrics"] >= 2, pilot)  # its cadence again
        # what it did not read while hidden comes from the history, read again at once
        # (not in up to a minute: the plot would draw a straight line across the gap)
        assert seen["/v1/metrics/history"] >= 1, seen


async def test_wakes_that_come_together_are_one_fetch(workspace: Any, h: Any) -> None:
    await _endpoint(workspace, h)
    ws = LocalWorkspace(autostart=False)
    app = ModeldeckApp(ws, poll_scale=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await h.select_row(app, pilot, EP)
        screen = await _history(app, pilot, h)
        await pilot.pause(0.3)
        seen = counted(ws)
        for _ in range(5):  # five changes told within one frame
            screen.refresh_soon()
        await h.eventually(lambda: seen["/v1/history"] >= 1, pilot)
        await pilot.pause(0.5)
        assert seen["/v1/history"] == 1, seen


async def test_without_a_watch_the_history_is_polled(
    workspace: Any, h: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A back end that cannot tell (Azure ML; here the watch turned off, as the
    propagation benchmark's baseline does) is fetched on the History's timer."""
    monkeypatch.setenv("MODELDECK_WATCH", "0")
    await _endpoint(workspace, h)
    ws = LocalWorkspace(autostart=False)
    app = ModeldeckApp(ws, poll_scale=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await h.select_row(app, pilot, EP)
        app.run_command(f":history {EP}")
        await h.eventually(lambda: isinstance(app.screen, HistoryScreen), pilot)
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        await h.eventually(lambda: screen.loaded, pilot)
        assert not app.watch_live
        seen = counted(ws)
        await h.eventually(lambda: seen["/v1/history"] >= 2, pilot)  # its timer
        await _describe(workspace, "changed with no watch")
        await h.eventually(lambda: _described(screen, "changed with no watch"), pilot)


async def test_metrics_read_the_control_marks_on_the_watch_not_each_second(
    workspace: Any, h: Any
) -> None:
    """The live figures keep their cadence; which deployment is the control is a record,
    read again when the watch tells of a change (another client marks it here)."""
    await _endpoint(workspace, h)
    async with _metrics_followed(h) as (ws, pilot, screen):
        seen = counted(ws)
        await h.eventually(lambda: seen["/v1/metrics"] >= 5, pilot)
        assert "/v1/endpoints" not in seen, seen
        try:
            await asyncio.wait_for(
                (await workspace.update_endpoint(EP, EndpointPatch(control="blue"))).wait(), 60
            )
            await h.eventually(lambda: f"{EP}/blue" in screen.controls, pilot)  # type: ignore[attr-defined]
        finally:
            await asyncio.wait_for(
                (await workspace.update_endpoint(EP, EndpointPatch(control=""))).wait(), 60
            )


async def test_history_says_the_control_plane_stopped_and_follows_again_once_started(
    fresh_home: Any, h: Any
) -> None:
    """With no timer of its own (the watch live), the History still says at once that the
    control plane stopped (the watch fails: the views poll again), and once S starts it,
    a change recorded by another client shows again."""
    from modeldeck.services.local.controlplane import daemon

    from tests.tui.narrow import screen_text

    ws = LocalWorkspace()  # autostart, as ``modeldeck`` opens it
    app = ModeldeckApp(ws, poll_scale=100)  # History's timer: 500 s
    async with app.run_test(size=SIZE) as pilot:
        await h.ensure_cluster(ws)
        app.run_command(":history")
        await h.eventually(lambda: isinstance(app.screen, HistoryScreen), pilot)
        await h.eventually(lambda: app.watch_live and "pool-a" in screen_text(app), pilot)
        await asyncio.to_thread(daemon.stop_daemon)  # modeldeck daemon stop, from a shell
        await h.eventually(lambda: "control plane stopped" in screen_text(app), pilot)
        await pilot.press("S")
        await h.eventually(lambda: "control plane stopped" not in screen_text(app), pilot)
        await h.eventually(lambda: app.watch_live, pilot)
        other = LocalWorkspace(autostart=False)
        try:
            await h.ensure_cluster(other, "pool-b")
        finally:
            await other.close()
        await h.eventually(lambda: "pool-b" in screen_text(app), pilot)


async def test_history_whose_fetch_failed_tries_again_on_its_timer(workspace: Any, h: Any) -> None:
    """A History fetch that fails while the watch is live (here its answer is lost on the
    way: the connection dropped) is tried again on the History's timer: the error banner
    does not stay, and the change it missed shows, without waiting for another change."""
    import httpx

    await _endpoint(workspace, h)
    ws = LocalWorkspace(autostart=False)
    app = ModeldeckApp(ws, poll_scale=0.05)  # History's timer: 0.25 s
    async with app.run_test(size=SIZE) as pilot:
        await h.select_row(app, pilot, EP)
        screen = await _history(app, pilot, h)
        await pilot.pause(0.3)
        lost: list[str] = []

        async def lose_one(response: httpx.Response) -> None:
            if response.url.path == "/v1/history" and not lost:
                lost.append(response.url.path)
                raise httpx.ReadError("connection dropped", request=response.request)

        ws._http().event_hooks = {"request": [], "response": [lose_one]}
        await _describe(workspace, "changed, its first read lost")  # the watch wakes it
        await h.eventually(lambda: lost and screen.last_error is not None, pilot)
        assert app.watch_live  # only that read failed
        await h.eventually(
            lambda: _described(screen, "changed, its first read lost"), pilot, timeout=15
        )
        assert not screen.query_one("#error-banner").has_class("-shown")  # said no more


async def test_metrics_a_control_marked_while_the_marks_are_read_shows(
    workspace: Any, h: Any
) -> None:
    """Another client marks the control while the Metrics view is reading the marks (its
    answer already on the way, from before the mark): the watch's wake for that mark
    reads them again, and the mark shows."""
    import httpx

    await _endpoint(workspace, h)
    async with _metrics_followed(h) as (ws, pilot, screen):
        marked: list[str] = []

        async def mark_meanwhile(response: httpx.Response) -> None:
            if response.url.path != "/v1/endpoints" or marked:
                return
            marked.append("blue")
            update = await workspace.update_endpoint(EP, EndpointPatch(control="blue"))
            await asyncio.wait_for(update.wait(), 60)
            # the dashboard's watch tells the screen of the mark while this read runs
            await h.eventually(lambda: screen._again, timeout=10)

        ws._http().event_hooks = {"request": [], "response": [mark_meanwhile]}
        try:
            await _describe(workspace, "a change: the marks read again")  # the watch wakes
            await h.eventually(lambda: marked, pilot)
            await h.eventually(
                lambda: f"{EP}/blue" in screen.controls,  # type: ignore[attr-defined]
                pilot,
                timeout=10,
            )
        finally:
            ws._http().event_hooks = {"request": [], "response": []}
            await asyncio.wait_for(
                (await workspace.update_endpoint(EP, EndpointPatch(control=""))).wait(), 60
            )


async def test_azure_ml_views_are_fetched_on_their_cadence(md_home: Any, h: Any) -> None:
    """Azure ML cannot tell its changes (its watch answers None at once): the view shown is
    fetched on its timer, and an answered fetch does not start the watch again to wake the
    views at once (ARM read back to back, as fast as it answers: its read quota spent)."""
    from tests.support.fake_arm import FakeArm, StaticTokenCredential, open_cloud_workspace

    arm = await FakeArm(valid_tokens={"static-token-1"}).start()
    try:
        arm.add_compute("myaks")
        arm.add_endpoint("my-endpoint", "myaks", traffic={})
        ws = open_cloud_workspace(arm, StaticTokenCredential("static-token-1"), md_home)
        app = ModeldeckApp(ws)  # the Endpoints: each 2 s
        async with app.run_test(size=SIZE) as pilot:
            await h.eventually(lambda: app.screen.loaded, pilot)  # type: ignore[attr-defined]
            await pilot.pause(0.3)
            listed = len(arm.calls("GET", suffix="/onlineEndpoints"))
            await pilot.pause(1.2)  # within the Endpoints' 2 s: one fetch at most
            assert len(arm.calls("GET", suffix="/onlineEndpoints")) - listed <= 1
            assert not app.watch_live
        await ws.close()
        assert arm.schema_errors == []
    finally:
        await arm.stop()
