"""Snapshots at 80x24 of the Rollout view (issue 14), as test_snapshots_narrow.py: the app
runs with ``autoload=False`` and the view is given a fixed rollout, endpoint and deployments
through ``show_data`` (what a successful fetch draws): no clock or daemon reaches the picture.
Update with ``pytest tests/tui/test_rollout_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from modeldeck.services.api.domain import AuthMode, Endpoint, ProvisioningState
from modeldeck.services.api.rollouts import Rollout, RolloutCheck, RolloutSpec, RolloutState
from modeldeck.tui import glyphs

from tests.tui.narrow import screen_text
from tests.tui.test_snapshots import URI, _dep, app_for, feeding

SMALL = (80, 24)
T0 = 1_796_000_000.0  # fixed times: the view shows them as UTC clock times, never "ago"
SPEC = RolloutSpec(
    "my-endpoint", "green", "blue", (5, 10, 25, 50, 100), 120.0, 1.0, 1.3, 200, 600.0,
    "https://hooks.example.com/services/T000/B000/secret",
)  # fmt: skip
FAILED_CHECK = RolloutCheck(
    T0 + 700, 120.0, 300, 93, 912, 0, 61.0, 38.0, "fail",
    "green 31.0% errors (93 of 300) against blue 0.0% (0 of 912) over 2m: more than 1 point above",
)  # fmt: skip
PASSED_CHECK = RolloutCheck(T0 + 580, 120.0, 240, 0, 2210, 1, 41.0, 38.0, "pass", "")


def _rollout(state: RolloutState, weight: int, check: RolloutCheck, message: str = "") -> Rollout:
    return Rollout(
        "ro-1", SPEC, state, 2, weight, T0, T0 + 600, T0 + 700,
        T0 + 700 if not state.active else None, "alice@build-7",
        "alice@build-7:/home/alice/.modeldeck", message, check,
        {"blue": 100 - weight, "green": weight},
    )  # fmt: skip


def _data(rollout: Rollout) -> tuple[Any, ...]:
    traffic = dict(rollout.traffic)
    endpoint = Endpoint(
        "my-endpoint", "myaks", AuthMode.KEY, URI, traffic, {}, ProvisioningState.SUCCEEDED
    )
    return rollout, endpoint, [_dep(n, endpoint.name, v) for n, v in traffic.items()]


def _push() -> Any:
    from modeldeck.tui.screens.rollout import RolloutScreen

    return RolloutScreen("my-endpoint")


def test_rollout_running_at_step_3_of_5(snap_compare: Any) -> None:
    """State, phase, the ladder with step 3 marked, traffic, the last check with both sides'
    numbers, the thresholds (the webhook redacted), who; the keys of a running rollout."""
    data = _data(_rollout(RolloutState.RUNNING, 25, PASSED_CHECK))
    assert snap_compare(app_for(), terminal_size=SMALL, run_before=feeding(data, push=_push))


def test_rollout_failed_says_why_with_the_numbers(snap_compare: Any) -> None:
    why = "green 31.0% errors (93 of 300) against blue 0.0% (0 of 912): traffic back on blue"
    data = _data(_rollout(RolloutState.FAILED, 0, FAILED_CHECK, why))
    assert snap_compare(app_for(), terminal_size=SMALL, run_before=feeding(data, push=_push))


# -- the same view in a C locale and read-only (Pilot, the same fixed data) ----------------
@pytest.fixture
def _glyphs_back() -> Iterator[None]:
    """The app sets the glyphs for the process: later tests draw anew."""
    yield
    glyphs.configure(glyphs.choose())


async def _open(app: Any, rollout: Rollout) -> Any:
    await app.push_screen(_push())
    app.screen.show_data(_data(rollout))
    return app.screen


@pytest.mark.usefixtures("_glyphs_back")
async def test_rollout_in_a_c_locale_is_all_ascii(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LC_ALL", "LC_CTYPE", "MODELDECK_ASCII"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "C")
    why = "green 31.0% errors (93 of 300) against blue 0.0% (0 of 912): traffic back on blue"
    for rollout in (
        _rollout(RolloutState.RUNNING, 25, PASSED_CHECK),
        _rollout(RolloutState.FAILED, 0, FAILED_CHECK, why),
    ):
        app = app_for()
        async with app.run_test(size=SMALL) as pilot:
            await _open(app, rollout)
            await pilot.pause()
            text = screen_text(app)
            assert [ln for ln in text.splitlines() if not ln.isascii()] == [], text
            if rollout.state is RolloutState.RUNNING:
                assert "mirror ok -> 5% ok -> 10% ok -> >25% -> 50% -> 100%" in text, text
                assert "https://hooks.example.com/~" in text, text  # redacted
            else:
                assert "state ! Failed" in text and "25% x -> 50%" in text, text


async def test_read_only_shows_the_rollout_and_offers_no_action() -> None:
    app = app_for(readonly=True)
    async with app.run_test(size=SMALL) as pilot:
        screen = await _open(app, _rollout(RolloutState.RUNNING, 25, PASSED_CHECK))
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert "Back" in footer, footer
        for word in ("Start", "Pause", "Resume", "Promote", "Abort"):
            assert word not in footer, footer
        await pilot.press("p", "P", "a", "n")
        await pilot.pause()
        assert app.screen is screen  # no dialog, no form
        assert screen.rollout.state is RolloutState.RUNNING


async def test_r_opens_it_from_detail_and_traffic_and_help_and_palette_list_it() -> None:
    from modeldeck.tui.commands import ModeldeckCommands
    from modeldeck.tui.screens.endpoint_detail import EndpointDetailScreen
    from modeldeck.tui.screens.rollout import RolloutScreen
    from modeldeck.tui.screens.traffic import TrafficScreen

    rollout, endpoint, _ = _data(_rollout(RolloutState.RUNNING, 25, PASSED_CHECK))
    app = app_for()
    async with app.run_test(size=SMALL) as pilot:
        for screen in (EndpointDetailScreen(endpoint.name), TrafficScreen(endpoint.name)):
            await app.push_screen(screen)
            await pilot.press("R")
            await pilot.pause()
            assert isinstance(app.screen, RolloutScreen), screen
            assert app.screen.endpoint_name == endpoint.name
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is screen
            await pilot.press("escape")
            await pilot.pause()
        await _open(app, rollout)
        await pilot.press("question_mark")
        await pilot.pause()
        shown = screen_text(app)
        for line in ("P            Promote", "a            Abort", ":rollout [EP]"):
            assert line in shown, shown
        await pilot.press("escape")
        titles = [t for t, *_ in ModeldeckCommands(app.screen)._commands()]
        for title in ("Rollout: Start", "Rollout: Pause", "Endpoints: Rollout"):
            assert title in titles, titles
