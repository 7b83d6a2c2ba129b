"""Widget-level tests: the widgets need no workspace."""

from __future__ import annotations

import json
from pathlib import Path

from modeldeck.services.api.domain import LogLine
from modeldeck.services.api.errors import Conflict, InvalidInput
from modeldeck.tui.format import RowFilter, capacity_bar, colour_for, describe_error, traffic_bar
from modeldeck.tui.widgets.log_view import LogView
from modeldeck.tui.widgets.resource_table import ResourceTable
from modeldeck.tui.widgets.secret import MASK, SecretField
from modeldeck.tui.widgets.traffic_slider import TrafficSlider
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import Input


class Host(App[None]):
    def __init__(self, *widgets: object) -> None:
        super().__init__()
        self.widgets = widgets

    def compose(self) -> ComposeResult:
        yield from self.widgets  # type: ignore[misc]


def line(text: str, replica: str = "blue-0", stream: str = "stdout", ts: float = 0.0) -> LogLine:
    return LogLine(
        ts=ts, endpoint="ep", deployment="blue", replica=replica, stream=stream, text=text
    )


# --------------------------------------------------------------------------- slider


async def test_slider_keys_move_1_and_10_percent_and_stay_in_bounds() -> None:
    slider = TrafficSlider("blue", 50, live=50)
    changes: list[int] = []

    class A(Host):
        def on_traffic_slider_changed(self, event: TrafficSlider.Changed) -> None:
            changes.append(event.value)

    async with A(slider).run_test(size=(80, 5)) as pilot:
        slider.focus()
        await pilot.press("right", "right", "shift+right")
        assert slider.value == 62
        await pilot.press("shift+left", "left")
        assert slider.value == 51
        await pilot.press("end", "right")
        assert slider.value == 100
        await pilot.press("home", "left")
        assert slider.value == 0
        assert changes == [51, 52, 62, 52, 51, 100, 0]
        assert "-50" in slider.render().plain  # the diff against the live value


async def test_mirror_slider_is_capped_at_50() -> None:
    slider = TrafficSlider("green", 0, maximum=50)
    async with Host(slider).run_test(size=(80, 5)) as pilot:
        slider.focus()
        for _ in range(8):
            await pilot.press("shift+right")
        assert slider.value == 50


async def test_slider_follows_the_mouse() -> None:
    slider = TrafficSlider("blue", 0)
    async with Host(slider).run_test(size=(80, 5)) as pilot:
        start, width = slider._bar_span()
        await pilot.click(TrafficSlider, offset=(start + width // 2, 0))
        assert 45 <= slider.value <= 55
        await pilot.click(TrafficSlider, offset=(start + width, 0))
        assert slider.value == 100
        await pilot.click(TrafficSlider, offset=(start, 0))
        assert slider.value == 0


async def test_locked_slider_does_not_move() -> None:
    slider = TrafficSlider("blue", 40)
    slider.locked = True
    async with Host(slider).run_test(size=(80, 5)) as pilot:
        slider.focus()
        await pilot.press("right", "shift+right")
        assert slider.value == 40


# --------------------------------------------------------------------------- log view


async def test_log_view_keeps_a_bounded_number_of_lines() -> None:
    view = LogView(max_lines=1000)
    async with Host(view).run_test(size=(80, 20)) as pilot:
        for start in range(0, 10_000, 500):
            view.append_lines(line(f"line {i}") for i in range(start, start + 500))
        await pilot.pause()
        assert view.line_count == 1000
        assert view.row_count == 1000
        assert view.lines()[0].text == "line 9000"
        assert view.lines()[-1].text == "line 9999"
        assert view.scroll_offset.y == view.max_scroll_y  # following: at the end


async def test_log_rows_show_the_replica_and_the_text_as_written() -> None:
    """Rows are drawn from segments made directly (not a Text per row): the replica in its
    colour, stderr in red, control codes removed, a wrapped line's next rows blank under
    the replica; a theme change draws the rows kept again in the new colours."""
    view = LogView()
    async with Host(view).run_test(size=(40, 10)) as pilot:
        view.append_lines(
            [line("ok\r\x07 plain"), line("boom", stream="stderr"), line("y" * 70, "g-1")]
        )
        view.set_option("wrap", True)
        await pilot.pause()
        rows = [view.render_line(y) for y in range(4)]
        texts = [strip.text.rstrip() for strip in rows]
        assert texts[0] == "blue-0 ok plain"
        assert texts[1] == "blue-0 boom"
        assert texts[2].startswith("g-1 yyy") and texts[3].startswith("    yyy")
        prefix = next(seg for seg in rows[0] if seg.text == "blue-0 ")
        assert prefix.style is not None and prefix.style.color is not None
        assert prefix.style == view.rich_style + Style.parse(colour_for("blue-0"))
        boom = next(seg for seg in rows[1] if seg.text == "boom")
        assert boom.style is not None and boom.style.color is not None
        assert boom.style.color.name == "red"
        before = next(iter(rows[0])).style.bgcolor  # type: ignore[union-attr]
        view.app.theme = "textual-light"
        await pilot.pause()
        first = next(iter(view.render_lines(view.size.region)[0]))
        after = first.style.bgcolor  # type: ignore[union-attr]
        assert after != before


async def test_logs_screen_draws_every_line_of_a_burst_in_order() -> None:
    """Lines queued one at a time are drawn in batches: all of them, in order, following
    (the last line on the screen), the status counting them."""
    from modeldeck.services.local.client import LocalWorkspace
    from modeldeck.tui.app import ModeldeckApp
    from modeldeck.tui.screens.logs import LogsScreen

    app = ModeldeckApp(LocalWorkspace("local", autostart=False), autoload=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = LogsScreen("ep", "blue")
        await app.push_screen(screen)
        for i in range(4000):
            screen.feed(line(f"one {i}"))
        screen.feed_many([line(f"many {i}") for i in range(1000)])
        for _ in range(100):
            await pilot.pause(0.05)
            if screen.view.line_count == 5000 and not screen._pending:
                break
        expected = [f"one {i}" for i in range(4000)] + [f"many {i}" for i in range(1000)]
        assert [ln.text for ln in screen.view.lines()] == expected
        await pilot.pause(0.3)
        view = screen.view
        assert view.scroll_offset.y == view.max_scroll_y
        shown = [strip.text for strip in view.render_lines(view.size.region)]
        assert "many 999" in shown[-1] and "many 998" in shown[-2]
        status = str(screen.query_one("#status-line").render())
        assert "following" in status and "5000 lines" in status


async def test_logs_status_counts_each_batch_as_its_rows_are_drawn() -> None:
    """The status's line count goes with the rows: two batches a tenth of a second apart,
    each counted as it is drawn (not the first count left until a later quarter second)."""
    from modeldeck.services.local.client import LocalWorkspace
    from modeldeck.tui.app import ModeldeckApp
    from modeldeck.tui.screens.logs import LogsScreen

    app = ModeldeckApp(LocalWorkspace("local", autostart=False), autoload=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = LogsScreen("ep", "blue")
        await app.push_screen(screen)
        for total in (10, 20, 30):
            screen.feed_many([line(f"line {i}") for i in range(total - 10, total)])
            for _ in range(100):  # bounded: 5 s
                await pilot.pause(0.05)
                if screen.view.line_count == total:
                    break
            status = str(screen.query_one("#status-line").render())
            assert f"{total} lines" in status, status


async def test_paused_log_view_draws_what_it_shows_as_lines_arrive() -> None:
    """Paused, the rows on screen stay as lines arrive below them; lines arriving in the
    empty part of the view are drawn; when the oldest are dropped the rows under the view
    move up and are drawn so; following again shows the last line."""
    view = LogView(max_lines=60)
    async with Host(view).run_test(size=(80, 12)) as pilot:
        height = view.size.height

        def drawn() -> list[str]:
            return [s.text.strip() for s in view.render_lines(view.size.region)]

        def expected() -> list[str]:
            y = int(view.scroll_offset.y)
            texts = [f"blue-0 {ln.text}" for ln in view.lines()][y : y + height]
            return texts + [""] * (height - len(texts))

        view.append_lines([line(f"line {i}") for i in range(3)])
        view.set_option("follow", False)
        await pilot.pause()
        view.append_lines([line(f"line {i}") for i in range(3, 5)])  # into the empty rows
        await pilot.pause()
        assert drawn() == expected() and "blue-0 line 4" in drawn()
        view.append_lines([line(f"line {i}") for i in range(5, 50)])  # below the view
        await pilot.pause()
        assert drawn() == expected() and drawn()[0] == "blue-0 line 0"
        view.append_lines([line(f"line {i}") for i in range(50, 70)])  # 10 dropped
        await pilot.pause()
        assert drawn() == expected() and drawn()[0] == "blue-0 line 10"
        view.set_option("follow", True)
        await pilot.pause()
        assert drawn()[-1] == "blue-0 line 69"


async def test_log_filter_is_a_case_insensitive_regex_and_bang_inverts() -> None:
    view = LogView()
    async with Host(view).run_test(size=(80, 20)) as pilot:
        view.append_lines([line("GET /score 200"), line("POST /score 500"), line("init done")])
        view.set_filter("score \\d00")
        assert [ln.text for ln in view.lines()] == ["GET /score 200", "POST /score 500"]
        view.set_filter("!SCORE")
        assert [ln.text for ln in view.lines()] == ["init done"]
        view.set_filter("[unclosed")  # not a regex: matched literally, no error
        assert view.filter.valid is False and view.lines() == []
        view.set_filter("")
        assert view.row_count == 3
        view.set_filter("post")
        await pilot.pause()
        strip = view.render_line(0)
        styles = [seg.style for seg in strip if seg.text == "POST"]
        assert styles and styles[0] is not None and styles[0].reverse  # the match is highlighted
        # new lines that match the filter are added as they arrive; others are kept but hidden
        view.append_lines([line("POST again"), line("GET again")])
        assert view.row_count == 2 and view.line_count == 5


async def test_log_wrap_timestamps_and_json_pretty_print() -> None:
    view = LogView()
    async with Host(view).run_test(size=(40, 20)) as pilot:
        view.append_lines([line("x" * 100), line(json.dumps({"a": 1, "b": [1, 2]}))])
        await pilot.pause()
        assert view.row_count == 2
        view.set_option("wrap", True)
        assert view.row_count > 3  # the long line takes several rows
        view.set_option("wrap", False)
        view.set_option("pretty_json", True)
        assert view.row_count == 1 + len(json.dumps({"a": 1, "b": [1, 2]}, indent=2).splitlines())
        view.set_option("timestamps", True)
        assert view.plain_text().splitlines()[0].count(":") >= 2  # HH:MM:SS.mmm prefix


async def test_jump_to_the_last_init_traceback() -> None:
    view = LogView()
    tb = [
        "Traceback (most recent call last):",
        '  File "score.py", line 12, in init',
        "FileNotFoundError: model.json",
    ]
    other = [
        "Traceback (most recent call last):",
        '  File "score.py", line 30, in run',
        "KeyError: data",
    ]
    async with Host(view).run_test(size=(80, 10)) as pilot:
        view.append_lines([line(f"noise {i}") for i in range(50)])
        view.append_lines([line(t, stream="stderr") for t in tb])
        view.append_lines([line(f"more {i}") for i in range(50)])
        view.append_lines([line(t, stream="stderr") for t in other])
        view.append_lines([line(f"tail {i}") for i in range(50)])
        await pilot.pause()
        assert view.jump_to_init_traceback()
        assert view.follow is False
        top = int(view.scroll_offset.y)
        shown = [view._rows[i][0].line.text for i in range(top, top + 4)]
        assert "Traceback (most recent call last):" in shown
        assert any("in init" in t for t in shown)


# --------------------------------------------------------------------------- secrets


async def test_secret_is_masked_revealed_for_a_while_and_copied() -> None:
    field = SecretField("primary", "s3cr3t-key-value", reveal_seconds=0.2)
    host = Host(field)
    async with host.run_test(size=(80, 5)) as pilot:
        assert "s3cr3t" not in field.render().plain and MASK in field.render().plain
        field.reveal()
        assert "s3cr3t-key-value" in field.render().plain
        await pilot.pause(0.6)
        assert "s3cr3t" not in field.render().plain  # hidden again by itself
        assert field.copy()  # OSC 52 to the terminal; the app keeps what it copied
        assert host.clipboard == "s3cr3t-key-value"


# --------------------------------------------------------------------------- table


def _table_lines(table: ResourceTable) -> list[str]:
    return [table.render_line(y).text.rstrip() for y in range(table.size.height)]


async def test_table_updates_rows_by_key_and_keeps_the_cursor() -> None:
    table = ResourceTable([("name", "NAME"), ("state", "STATE")])
    async with Host(table).run_test(size=(80, 20)) as pilot:
        table.sync({"b": ("b", "Creating"), "a": ("a", "Ready"), "c": ("c", "Ready")})
        await pilot.pause()
        assert table.shown_keys == ["a", "b", "c"]
        assert _table_lines(table)[:4] == [
            " NAME  STATE",
            " a     Ready",
            " b     Creating",
            " c     Ready",
        ]
        table.move_cursor(row=1)
        assert table.selected_key() == "b"
        table.sync({"b": ("b", "Ready"), "a": ("a", "Ready"), "c": ("c", "Ready")})
        await pilot.pause()
        assert table.get_cell("b", "state") == "Ready"
        assert _table_lines(table)[2] == " b     Ready"
        assert table.selected_key() == "b"  # the cursor stays on its row
        table.sync({"a": ("a", "Ready"), "c": ("c", "Ready"), "d": ("d", "New")})
        assert table.shown_keys == ["a", "c", "d"]
        table.set_filter("!^a")
        assert table.shown_keys == ["c", "d"]
        await pilot.pause()
        assert _table_lines(table)[1:4] == [" c     Ready", " d     New", ""]
        table.set_filter("")
        assert table.shown_keys == ["a", "c", "d"]


async def test_table_cells_keep_colons_as_typed() -> None:
    """A cell's markup is drawn; a ``:name:`` in it stays as typed, not an emoji (Rich's
    markup turns ``:ok:`` into one unless told not to)."""
    table = ResourceTable([("name", "NAME"), ("state", "STATE")])
    async with Host(table).run_test(size=(60, 6)) as pilot:
        table.sync({"a": ("a", "[b]Failed[/] :ok: :warning:")})
        await pilot.pause()
        assert _table_lines(table)[1] == " a     Failed :ok: :warning:"


async def test_table_rows_are_drawn_again_in_a_new_theme() -> None:
    table = ResourceTable([("name", "NAME"), ("state", "STATE")])
    async with Host(table).run_test(size=(60, 10)) as pilot:
        table.sync({"a": ("a", "Ready"), "b": ("b", "Failed")})
        await pilot.pause()
        before = next(iter(table.render_lines(table.size.region)[2])).style
        table.app.theme = "textual-light"
        await pilot.pause()
        after = next(iter(table.render_lines(table.size.region)[2])).style
        assert before is not None and after is not None and after.bgcolor != before.bgcolor


async def test_table_of_thousands_filters_scrolls_and_selects() -> None:
    table = ResourceTable([("name", "NAME"), ("endpoint", "ENDPOINT")])
    selected: list[str | None] = []

    class Catch(Host):
        def on_resource_table_row_selected(self, event: ResourceTable.RowSelected) -> None:
            selected.append(event.key)

    rows = {
        f"{c}-{i}": (f"{c}-{i}", f"ep-{i // 6}") for i in range(1000) for c in ("blue", "green")
    }
    async with Catch(table).run_test(size=(80, 12)) as pilot:
        table.sync(rows)
        table.focus()
        await pilot.pause()
        assert table.row_count == 2000
        table.set_filter("green-99")
        await pilot.pause()
        assert table.shown_keys == [
            "green-99",
            "green-990",
            "green-991",
            "green-992",
            "green-993",
            "green-994",
            "green-995",
            "green-996",
            "green-997",
            "green-998",
            "green-999",
        ]
        await pilot.press("end")
        await pilot.pause()
        assert table.selected_key() == "green-999"
        assert any(line.startswith(" green-999 ") for line in _table_lines(table))  # scrolled to it
        await pilot.press("enter")
        await pilot.pause()
        assert selected == ["green-999"]
        table.set_filter("")  # the cursor stays on its row when the others come back
        await pilot.pause()
        assert table.selected_key() == "green-999" and table.row_count == 2000
        assert any(line.startswith(" green-999 ") for line in _table_lines(table))


async def test_deployments_filter_over_ten_thousand_rows_finds_the_right_rows() -> None:
    """``/`` typed key by key over 10,000 deployments: after each key, the rows shown are
    those whose cells the case-insensitive regex finds (plain text, a regex, ``!``), and
    the status line counts them; the table is drawn with the rows found."""
    import re

    from modeldeck.services.local.client import LocalWorkspace
    from modeldeck.tui.app import ModeldeckApp
    from modeldeck.tui.screens.deployments import DeploymentsScreen, deployment_cells

    from tests.support.rows import many_deployments

    deployments = many_deployments(10_000, ("Blue", "green"))
    app = ModeldeckApp(
        LocalWorkspace("local", autostart=False), autoload=False, initial_view="deployments"
    )
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, DeploymentsScreen)
        screen.show_data(deployments)
        await pilot.pause()
        texts = {
            f"{d.endpoint_name}/{d.name}": " ".join(
                c.plain if hasattr(c, "plain") else str(c) for c in deployment_cells(d)
            )
            for d in deployments
        }

        def expected(pattern: str) -> set[str]:
            invert, body = pattern.startswith("!"), pattern.lstrip("!")
            regex = re.compile(body, re.IGNORECASE)
            return {k for k, t in texts.items() if (regex.search(t) is not None) != invert}

        for pattern in ("blue-1", "EP-99 b", r"green-4[0-9]99\b", "!blue"):
            await pilot.press("slash", *pattern)
            await pilot.pause()
            table = screen.table
            assert set(table.shown_keys) == expected(pattern), pattern
            status = str(screen.query_one("#status-line").render())
            assert f"/{pattern}: {len(expected(pattern))} of 10000" in status
            drawn = [table.render_line(y).text.split() for y in range(1, table.size.height)]
            names = {k.split("/")[1] for k in expected(pattern)}
            assert all(row[1] in names for row in drawn if row), (pattern, drawn)
            await pilot.press("escape")
            await pilot.pause()
            assert screen.table.row_count == 10000


async def test_footer_hides_the_prompt_keys_while_it_is_open_as_composing_would() -> None:
    """``/`` opens the prompt: the footer no longer lists ``:`` and ``/`` (hidden in place,
    its other keys kept), and reads as a footer composed anew would; Esc brings them back."""
    from modeldeck.services.local.client import LocalWorkspace
    from modeldeck.tui.app import ModeldeckApp
    from modeldeck.tui.widgets.footer import FittingFooter
    from textual.widgets._footer import FooterKey

    from tests.support.polling import eventually

    app = ModeldeckApp(
        LocalWorkspace("local", autostart=False), autoload=False, initial_view="deployments"
    )
    async with app.run_test(size=(160, 30)) as pilot:
        app.screen.show_data([])  # type: ignore[attr-defined]
        footer = app.screen.query_one(FittingFooter)

        def line() -> str:
            y = footer.region.y
            return "".join(seg.text for seg in app.screen._compositor.render_strips()[y])

        def shown() -> set[str]:
            return {k.key for k in app.screen.query(FooterKey) if k.display}

        await eventually(lambda: {"colon", "slash", "question_mark"} <= shown(), pilot)
        await pilot.pause(0.2)
        before, keys_before = line(), list(app.screen.query(FooterKey))
        await pilot.press("slash")
        await eventually(lambda: not {"colon", "slash"} & shown(), pilot)
        await pilot.pause(0.2)
        assert list(app.screen.query(FooterKey)) == keys_before  # the same widgets
        in_place = line()
        assert ": Cmd" not in in_place and "/ Filter" not in in_place
        await footer.recompose()
        await pilot.pause(0.2)
        assert line() == in_place  # as a footer composed with the prompt open reads
        await pilot.press("escape")
        await eventually(lambda: {"colon", "slash"} <= shown(), pilot)
        await pilot.pause(0.2)
        assert line() == before


async def test_table_click_moves_the_cursor_and_a_second_click_opens_the_row() -> None:
    table = ResourceTable([("name", "NAME"), ("state", "STATE")])
    selected: list[str | None] = []

    class Catch(Host):
        def on_resource_table_row_selected(self, event: ResourceTable.RowSelected) -> None:
            selected.append(event.key)

    async with Catch(table).run_test(size=(80, 12)) as pilot:
        table.sync({k: (k, "Ready") for k in ("a", "b", "c")})
        await pilot.pause()
        await pilot.click(ResourceTable, offset=(2, 3))  # the header, then a, b, c
        assert table.selected_key() == "c" and selected == []
        await pilot.click(ResourceTable, offset=(2, 3))
        assert selected == ["c"]
        await pilot.click(ResourceTable, offset=(2, 0))  # the header selects nothing
        assert table.selected_key() == "c" and selected == ["c"]


# --------------------------------------------------------------------------- formatting


def test_errors_show_message_and_fix_never_a_traceback() -> None:
    err = Conflict("deployment 'blue' still takes 100% of traffic", fix="move its traffic first")
    assert (
        describe_error(err)
        == "deployment 'blue' still takes 100% of traffic\nfix: move its traffic first"
    )
    bad = InvalidInput("traffic", "blue=90", "must add up to 100", "adjust the numbers")
    assert "fix: adjust the numbers" in describe_error(bad)
    assert "Traceback" not in describe_error(RuntimeError("boom"))


def test_bars_and_filters() -> None:
    bar = traffic_bar({"blue": 90, "green": 10}, width=20)
    assert bar.plain.startswith("█" * 20) and "blue=90 green=10" in bar.plain
    assert "no traffic" in traffic_bar({"blue": 0}).plain
    assert capacity_bar(6, 12, 8).plain == "████░░░░ 6/12"
    assert colour_for("blue") == colour_for("blue")
    assert RowFilter("!x").matches("abc") and not RowFilter("!a").matches("ABC")
    assert isinstance(bar, Text)
    # a table's rows, lower-cased once, are found as the regex finds them in the cells
    texts = ["ep-1 Blue-10 Ready", "ep-2 green-1 Failed", "a.b (x) 1+1", "Ünï ÇODE"]
    for pattern in ("Blue-1", "!blue", "READY", "a.b", "(x)", "1+1", "e-1\\b", "ünï", "!"):
        f = RowFilter(pattern)
        assert [f.matches_lower(t.lower()) for t in texts] == [f.matches(t) for t in texts]
    assert RowFilter("Blue-1").needle == "blue-1" and RowFilter("a.b").needle is None


async def test_logs_screen_filters_and_saves_what_it_shows(tmp_path: Path) -> None:
    from modeldeck.services.local.client import LocalWorkspace
    from modeldeck.tui.app import ModeldeckApp
    from modeldeck.tui.screens.dialogs import PromptScreen
    from modeldeck.tui.screens.logs import LogsScreen

    app = ModeldeckApp(LocalWorkspace("local", autostart=False), autoload=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = LogsScreen("ep", "blue")
        await app.push_screen(screen)
        screen.feed_many(
            [line("GET /score 200"), line("POST /score 500", stream="stderr"), line("init done")]
        )
        await pilot.pause(0.3)
        await pilot.press("slash", *"500", "enter")
        assert [ln.text for ln in screen.view.lines()] == ["POST /score 500"]
        await pilot.press("s")
        assert isinstance(app.screen, PromptScreen)
        target = tmp_path / "saved.log"
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        assert target.read_text() == "blue-0 POST /score 500\n"
        await pilot.press("escape")  # clears the filter first
        assert len(screen.view.lines()) == 3 and isinstance(app.screen, LogsScreen)


async def test_command_palette_runs_the_screen_actions() -> None:
    from modeldeck.services.local.client import LocalWorkspace
    from modeldeck.tui.app import ModeldeckApp
    from modeldeck.tui.screens.forms import FormScreen

    app = ModeldeckApp(
        LocalWorkspace("local", autostart=False), autoload=False, initial_view="clusters"
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"create pool")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, FormScreen)

    ro = ModeldeckApp(
        LocalWorkspace("local", autostart=False),
        readonly=True,
        autoload=False,
        initial_view="clusters",
    )
    async with ro.run_test(size=(100, 30)) as pilot:
        titles = [t for t, _, _ in ro.screen.actions_for_palette()]
        assert "Clusters: Create pool" not in titles and titles  # read-only: not offered


async def test_colon_command_jumps_and_unknown_commands_say_so() -> None:
    from modeldeck.services.local.client import LocalWorkspace
    from modeldeck.tui.app import ModeldeckApp

    app = ModeldeckApp(LocalWorkspace("local", autostart=False), autoload=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("colon", *"models", "enter")
        await pilot.pause()
        assert app.screen.VIEW_NAME == "Models"  # type: ignore[attr-defined]
        await pilot.press("colon", *"bogus", "enter")
        await pilot.pause()
        assert any("unknown command ':bogus'" in str(n.message) for n in app._notifications)
        from textual.content import Content

        (hint,) = [n for n in app._notifications if "':bogus'" in str(n.message)]
        assert ":history [EP]" in Content.from_markup(hint.message).plain  # as drawn
        await pilot.press("question_mark")  # and the help's global keys name it
        await pilot.pause()
        shown = " ".join(str(w.render()) for w in app.screen.query("Static"))
        assert ":history [EP]" in shown, shown
