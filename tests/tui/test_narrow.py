"""The dashboard at 80x24 (issue 13): what an operator on a small terminal must still see.

Each test drives the app at 80x24 (``run_test``) with fixed domain objects fed to the
screen (``show_data``, as the snapshot tests do) and asserts on the text on screen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.tui import glyphs
from modeldeck.tui.app import ModeldeckApp
from modeldeck.tui.widgets.traffic_slider import TrafficSlider

from tests.support.polling import eventually
from tests.tui.narrow import LONG, contrast_of, long_endpoint, screen_text
from tests.tui.test_snapshots import DEPLOYMENTS, ENDPOINTS, RPS, _samples

SMALL = (80, 24)


@pytest.fixture(autouse=True)
def _glyphs_back() -> Iterator[None]:
    """The app sets the glyphs for the process (NO_COLOR's shapes): later tests draw anew."""
    yield
    glyphs.configure(glyphs.choose())


def _app(view: str = "endpoints", **kwargs: object) -> ModeldeckApp:
    ws = LocalWorkspace("local", autostart=False)
    return ModeldeckApp(ws, initial_view=view, autoload=False, theme="dark", **kwargs)  # type: ignore[arg-type]


async def _open_traffic(app: ModeldeckApp, pilot: Any) -> Any:
    """The Traffic screen of the endpoint with four long-named deployments, drawn."""
    from modeldeck.tui.screens.traffic import TrafficScreen

    endpoint, deployments = long_endpoint()
    await app.push_screen(TrafficScreen(endpoint.name))
    app.screen.show_data((endpoint, deployments))  # type: ignore[attr-defined]
    await pilot.pause()
    return app.screen


def _shares(line: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"(\S+)=(\d+)", line)}


# ---------------------------------------------------------------- 2: the whole split


async def test_the_traffic_screen_at_80_shows_every_share_and_cuts_names_with_an_ellipsis() -> None:

    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        await _open_traffic(app, pilot)
        text = screen_text(app)
        bar_line = next(ln for ln in text.splitlines() if "blue=85" in ln)
        shares = _shares(bar_line)
        assert sorted(shares.values()) == [5, 10, 85]  # none dropped (0% has no segment)
        for shown, (name, pct) in zip(
            sorted(shares), sorted((n, p) for n, p in LONG.items() if p), strict=True
        ):
            assert shown == name or "…" in shown, (shown, name)
            assert shares[shown] == pct
        for slider in app.screen.query(TrafficSlider):
            if slider.id == "mirror-slider":
                continue
            label = slider.render().plain[1:].split("  ")[0].strip()
            assert label == slider.deployment or ("…" in label and len(label) > 12)


async def test_slider_names_use_the_width_at_120_columns() -> None:

    app = _app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_traffic(app, pilot)
        text = screen_text(app)
        for name in LONG:  # 26 characters, written out whole: not cut at 12
            assert f"{name} " in text


async def test_the_endpoints_list_at_80_shows_every_share_of_a_long_split() -> None:
    endpoint, _ = long_endpoint()
    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        app.screen.show_data(([endpoint, *ENDPOINTS], RPS))  # type: ignore[attr-defined]
        await pilot.pause(0.3)
        row = next(ln for ln in screen_text(app).splitlines() if "fraud" in ln)
        assert sorted(_shares(row).values()) == [5, 10, 85]


async def test_deployments_at_80_keep_model_and_traffic_on_screen_beside_long_names() -> None:
    _, deployments = long_endpoint()
    app = _app("deployments")
    async with app.run_test(size=SMALL) as pilot:
        app.screen.show_data([*deployments, *DEPLOYMENTS])  # type: ignore[attr-defined]
        await pilot.pause(0.3)
        lines = screen_text(app).splitlines()
        header = next(ln for ln in lines if "ENDPOINT" in ln)
        assert "MODEL" in header and "TRAFFIC" in header and "ROLE" in header
        hotfix = [ln for ln in lines if "fix-a" in ln or "fix-b" in ln]
        assert len(hotfix) == 2  # cut in the middle: the ends that tell them apart stay
        assert all("85%" not in ln for ln in hotfix) and any("5%" in ln for ln in hotfix)


# ---------------------------------------------------------------- 3: a failure, readable


async def test_a_failed_deployment_says_failed_at_80_and_its_cause_is_on_screen() -> None:
    app = _app("deployments")
    async with app.run_test(size=SMALL) as pilot:
        app.screen.show_data(DEPLOYMENTS)  # type: ignore[attr-defined]
        await pilot.pause(0.3)
        lines = screen_text(app).splitlines()
        crashy = next(ln for ln in lines if "crashy" in ln and "Failed" in ln)
        assert "⚠ Failed" in crashy
        # the cursor is on another row: the cause is said all the same, above the footer
        assert any(
            "token-ep/crashy: init() failed: FileNotFoundError: model.json" in ln
            for ln in lines[:-1]
        )


@pytest.mark.parametrize("cursor_on_it", [False, True])
async def test_a_failed_state_is_readable_under_no_color(
    cursor_on_it: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = _app("deployments")
    async with app.run_test(size=SMALL) as pilot:
        app.screen.show_data(DEPLOYMENTS)  # type: ignore[attr-defined]
        await pilot.pause(0.3)
        if cursor_on_it:
            await pilot.press("end")
            await pilot.pause()
        ratios = contrast_of(app.export_screenshot(), "Failed")
    assert ratios and min(ratios) >= 4.5, ratios  # was 1.2: grey 59 on grey 39


# ---------------------------------------------------------------- 7: q with a staged change


async def test_q_on_traffic_with_a_staged_change_asks_before_quitting() -> None:
    from modeldeck.tui.screens.dialogs import QuitConfirm

    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        traffic = await _open_traffic(app, pilot)
        await pilot.press("q")  # nothing staged: quits at once
        await pilot.pause()
        assert app.return_code == 0

    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        traffic = await _open_traffic(app, pilot)
        await pilot.press("left")  # blue 85 -> 84: staged, not applied
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, QuitConfirm) and app.return_code is None
        assert "not applied" in screen_text(app)
        await pilot.press("escape")  # no: back to the staged change
        await pilot.pause()
        assert app.screen is traffic and traffic.staged["blue"] == 84  # type: ignore[attr-defined]
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert app.return_code == 0 and not app.is_running


# ---------------------------------------------------------------- 8: read-only traffic


async def test_readonly_traffic_offers_no_key_to_stage_or_apply() -> None:

    app = _app(readonly=True)
    async with app.run_test(size=SMALL) as pilot:
        await _open_traffic(app, pilot)
        shown = screen_text(app)
        assert "read-only" in shown
        for offer in ("Enter apply", "←/→", "Apply", "Default takes rest", "mirror target"):
            assert offer not in shown, offer


# ---------------------------------------------------------------- 6: navigation, keys


async def test_1_and_colon_endpoints_return_to_the_list_not_the_last_screen() -> None:
    from modeldeck.tui.screens.endpoints import EndpointsScreen
    from modeldeck.tui.screens.keys import KeysScreen
    from modeldeck.tui.screens.traffic import TrafficScreen

    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        app.screen.show_data((ENDPOINTS, RPS))  # type: ignore[attr-defined]
        await app.push_screen(KeysScreen("my-endpoint"))
        await pilot.press("2")
        await pilot.pause()
        await pilot.press("1")
        await pilot.pause()
        assert isinstance(app.screen, EndpointsScreen)
        await app.push_screen(KeysScreen("my-endpoint"))
        await pilot.press("colon", *"endpoints", "enter")
        await pilot.pause()
        assert isinstance(app.screen, EndpointsScreen)

        await _open_traffic(app, pilot)  # a staged change is not dropped on the way
        await pilot.press("left", "1")
        await pilot.pause()
        assert isinstance(app.screen, TrafficScreen) and app.screen.dirty


async def test_colon_prefixes_and_tab_completes_in_the_prompt() -> None:
    from modeldeck.tui.widgets.command_line import CommandLine

    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("colon", *"dep", "enter")
        await pilot.pause()
        assert app.screen.VIEW_NAME == "Deployments"  # type: ignore[attr-defined]
        await pilot.press("colon", *"cl", "tab")
        await pilot.pause()
        line = app.screen.query_one(CommandLine)
        assert line.value == "clusters" and line.has_class("-active") and line.has_focus
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.VIEW_NAME == "Clusters"  # type: ignore[attr-defined]
        await pilot.press("colon", *"m", "enter")  # models or metrics: says so
        await pilot.pause()
        assert any(":metrics" in str(n.message) for n in app._notifications)


async def test_the_palette_lists_the_actions_of_every_view() -> None:
    from modeldeck.tui.screens.forms import FormScreen

    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"create pool")
        await pilot.pause(0.5)
        assert "Clusters: Create pool" in screen_text(app)  # from Endpoints
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert isinstance(app.screen, FormScreen)
        assert app.current_mode == "clusters"


async def test_c_creates_on_the_deployments_screen_as_everywhere() -> None:
    from textual.screen import ModalScreen

    app = _app("deployments")
    async with app.run_test(size=SMALL) as pilot:
        app.screen.show_data(DEPLOYMENTS)  # type: ignore[attr-defined]
        await pilot.pause(0.3)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ModalScreen)


# ---------------------------------------------------------------- 9: 80x24, terminals


async def test_footers_at_80_show_whole_keys_only() -> None:
    from textual.widgets._footer import FooterKey

    def laid_out() -> bool:
        """The footer composed and laid out. It is composed again, after a refresh, when the
        keys or its size change (three times as a screen opens and shows its data): while it
        is, it has no keys, then keys not yet placed (a fixed pause met that under load)."""
        shown = [k for k in app.screen.query(FooterKey) if k.display]
        palette = any(k.has_class("-command-palette") for k in shown)
        return palette and all(k.region.width > 0 for k in shown)

    for view, data in (("deployments", DEPLOYMENTS), ("endpoints", (ENDPOINTS, RPS))):
        app = _app(view)
        async with app.run_test(size=SMALL) as pilot:
            app.screen.show_data(data)  # type: ignore[attr-defined]
            await eventually(laid_out, pilot, what=f"the footer of {view} laid out")
            keys = list(app.screen.query(FooterKey))
            palette = next(k for k in keys if k.has_class("-command-palette"))
            shown = [k for k in keys if k is not palette and k.display]
            assert shown and all(k.region.right <= palette.region.x for k in shown), view
            assert "Scal▏" not in screen_text(app)


async def test_notifications_at_80x24_do_not_cover_the_table() -> None:
    from modeldeck.services.api.errors import Conflict
    from modeldeck.tui.widgets.resource_table import ResourceTable
    from textual.widgets._toast import Toast

    app = _app("deployments")
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        app.screen.show_data(DEPLOYMENTS)  # type: ignore[attr-defined]
        await pilot.pause(0.3)
        app.show_error(Conflict("deployment 'blue' still takes 90% of traffic", fix="move it"))
        await pilot.pause(0.3)
        assert not [t for t in app.screen.query(Toast) if t.display and t.region.area]
        notice = app.screen.query_one("#notice")
        table = app.screen.query_one(ResourceTable)
        assert "still takes 90% of traffic" in screen_text(app)
        assert table.region.bottom <= notice.region.y  # the table gave way
        rows = [ln for ln in screen_text(app).splitlines() if "my-endpoint" in ln]
        assert len(rows) == 3  # every row still on screen


async def test_the_new_deployment_form_shows_its_buttons_at_80x24() -> None:
    from modeldeck.tui.screens.forms import deployment_form
    from textual.widgets import Button

    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        await app.push_screen(deployment_form("my-endpoint", ["azureml:m:1"], []))
        await pilot.pause(0.3)
        for button in app.screen.query(Button):
            assert button.region.y >= 0 and button.region.bottom <= SMALL[1], button.id
        assert "Create (ctrl+s)" in screen_text(app) and "Cancel (esc)" in screen_text(app)


@pytest.mark.parametrize(
    "env",
    [{"LANG": "C"}, {"LANG": "en_US.UTF-8", "TERM": "linux"}],
    ids=["LANG=C", "TERM=linux"],
)
async def test_terminals_that_cannot_draw_get_stand_ins(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("LC_ALL", "LC_CTYPE", "LANG", "TERM", "MODELDECK_ASCII"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    endpoint, _ = long_endpoint()
    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        app.screen.show_data(([endpoint, *ENDPOINTS], RPS))  # type: ignore[attr-defined]
        await pilot.pause(0.3)
        ours = [ln for ln in screen_text(app).splitlines()[:-1] if ln.strip()]  # not the footer
        text = "\n".join(ours)
        assert "⚠" not in text and "…" not in text and "▸" not in text
        assert "! Failed" in text and "~" in text  # the stand-ins
        if env.get("LANG") == "C":
            assert all(ln.isascii() for ln in ours), [ln for ln in ours if not ln.isascii()]
        fraud = next(ln for ln in ours if "fraud" in ln)
        assert sorted(_shares(fraud).values()) == [5, 10, 85]


async def test_without_colour_segments_and_focus_differ_by_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    monkeypatch.setenv("NO_COLOR", "1")
    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        await _open_traffic(app, pilot)
        lines = screen_text(app).splitlines()
        bar = next(ln for ln in lines if "=85" in ln)
        fills = {ch for ch in bar.split("=")[0] if ch in "█▓▒▚▞▙"}
        assert len(fills) == 3  # one fill per deployment with a share
        focused = [ln for ln in lines if ln.lstrip().startswith("▸")]
        assert len(focused) == 1 and "blue" in focused[0]
        await pilot.press("down")
        await pilot.pause()
        focused = [ln for ln in screen_text(app).splitlines() if ln.lstrip().startswith("▸")]
        assert len(focused) == 1 and "canary" in focused[0]


# ---------------------------------------------------------------- 11: keys in one burst


async def test_keys_read_in_one_burst_are_applied_in_order() -> None:
    """``Left`` then ``8`` on "5", posted together as the driver posts what one read of the
    terminal holds: "85" (Textual 8.2.8's Input alone gives "58")."""
    from modeldeck.tui.screens.dialogs import PromptScreen
    from textual import events
    from textual.widgets import Input

    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        await app.push_screen(PromptScreen("Scale my-endpoint/blue", "Instance count:", "5"))
        await pilot.pause()
        field = app.screen.query_one(Input)
        field.cursor_position = 1
        app.post_message(events.Key("left", None))
        app.post_message(events.Key("8", "8"))
        await pilot.pause()
        assert field.value == "85"
        app.post_message(events.Key("end", None))
        app.post_message(events.Key("backspace", None))
        app.post_message(events.Key("0", "0"))
        await pilot.pause()
        assert field.value == "80"


@pytest.fixture
def c_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    """The terminal's locale is C (no UTF-8): the dashboard draws ASCII."""
    for var in ("LC_ALL", "LC_CTYPE", "MODELDECK_ASCII"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "C")


@pytest.mark.usefixtures("c_locale")
async def test_traffic_in_a_c_locale_draws_in_ascii() -> None:
    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        await _open_traffic(app, pilot)
        text = screen_text(app)
        for glyph in ("←", "→", "↑", "✓", "█", "░", "▸", "…", "⏎"):
            assert glyph not in text, glyph
        assert "left/right 1%" in text and "total 100%  ok" in text and "->(none: o)" in text
        assert "enter Apply" in text and ">blue" in text


@pytest.mark.usefixtures("c_locale")
async def test_keys_in_a_c_locale_are_masked_in_ascii() -> None:
    from modeldeck.services.api.domain import EndpointKeys
    from modeldeck.tui.screens.keys import KeysScreen

    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        await app.push_screen(KeysScreen("my-endpoint"))
        keys = EndpointKeys("primary-key-never-shown", "secondary-key-never-shown")
        app.screen.show_data((ENDPOINTS[0], keys, None))  # type: ignore[attr-defined]
        await pilot.pause()
        text = screen_text(app)
        assert "*" * 24 in text and "•" not in text and "primary-key" not in text


@pytest.mark.usefixtures("c_locale")
async def test_health_figures_and_the_metrics_notice_in_a_c_locale_are_ascii() -> None:
    """The sliders' ``READY 1/1  err -  p95 -``, the detail's ERR/P95 and control, and the
    Metrics screen's notice of what is missing are drawn with the terminal's glyphs (the
    figures were ``err –`` from services, the notice ``⚠``)."""
    from modeldeck.tui.screens.endpoint_detail import EndpointDetailScreen
    from modeldeck.tui.screens.metrics import MetricsScreen

    def not_ascii(app: ModeldeckApp) -> list[str]:  # the footer too (its palette key's ▏)
        return [ln for ln in screen_text(app).splitlines() if not ln.isascii()]

    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        await _open_traffic(app, pilot)
        assert "READY 1/1  err -  p95 -" in screen_text(app)
        assert not_ascii(app) == []

        ep = ENDPOINTS[0]
        await app.push_screen(EndpointDetailScreen(ep.name))
        mine = [d for d in DEPLOYMENTS if d.endpoint_name == ep.name]
        app.screen.show_data((replace(ep, control=None), mine, None))  # type: ignore[attr-defined]
        await pilot.pause()
        assert "control -" in screen_text(app)
        assert not_ascii(app) == []

        await app.push_screen(MetricsScreen(ep.name))
        screen = app.screen
        screen.missing = {ep.name: "no CPU or memory figures"}  # type: ignore[attr-defined]
        screen.show_data((_samples(1000.0, 1), [ep]))  # type: ignore[attr-defined]
        await pilot.pause()
        assert "! my-endpoint: no CPU or memory figures" in screen_text(app)
        assert not_ascii(app) == []


async def test_the_endpoint_detail_names_where_a_managed_endpoint_runs() -> None:
    """The detail's header (and the list's CLUSTER) showed ``endpoint.compute``: blank for a
    managed endpoint."""
    from modeldeck.tui.screens.endpoint_detail import EndpointDetailScreen

    ep = replace(ENDPOINTS[0], name="managed-ep", compute="", kind="Managed")
    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        app.screen.show_data(([ep], {}))  # type: ignore[attr-defined]
        await pilot.pause()
        row = next(ln for ln in screen_text(app).splitlines() if "managed-ep" in ln)
        assert row.split()[1] == "managed", row  # the list's CLUSTER column, likewise
        await app.push_screen(EndpointDetailScreen(ep.name))
        app.screen.show_data((ep, [], None))  # type: ignore[attr-defined]
        await pilot.pause()
        assert "managed-ep  cluster managed  auth key" in screen_text(app)  # Azure ML's
        local = replace(ep, managed_capacity="local-managed")  # the local workspace's record
        app.screen.show_data((local, [], None))  # type: ignore[attr-defined]
        await pilot.pause()
        assert "managed-ep  cluster local-managed  auth key" in screen_text(app)


async def test_the_endpoint_detail_says_degraded_in_words_at_80x24() -> None:
    """Issue 13, point 1: the endpoint detail, like Traffic and the list, says Degraded while
    traffic goes to a deployment that is not ready, naming READY 0/1 and the last error."""
    from modeldeck.services.api.domain import ProvisioningState
    from modeldeck.tui.screens.endpoint_detail import EndpointDetailScreen

    from tests.tui.test_snapshots import _dep

    ep = replace(ENDPOINTS[0], traffic={"blue": 90, "red": 10}, control=None)
    error = "Traceback (most recent call last):\nRuntimeError: model file is corrupt"
    deps = [
        _dep("blue", ep.name, 90),
        _dep("red", ep.name, 10, ready=0, state=ProvisioningState.FAILED, error=error),
    ]
    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        await app.push_screen(EndpointDetailScreen(ep.name))
        app.screen.show_data((ep, deps, None))  # type: ignore[attr-defined]
        await pilot.pause()
        text = " ".join(screen_text(app).split())
        assert "Degraded: red: READY 0/1, Failed, 10% of traffic" in text, text
        assert "RuntimeError: model file is corrupt" in text
