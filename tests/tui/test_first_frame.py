"""The dashboard's start, as a user runs it (``modeldeck``, no arguments, in a real
pseudo-terminal, on a workspace whose control plane runs): what it does before its first
frame, the top bar, is written (bench/tui_cold_start.py times it against a bare Textual
app); then the data comes. Asserts what is loaded, parsed and collected, never a time.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import running_home

pytestmark = pytest.mark.e2e
WAIT_S = 60.0  # only to avoid hangs, never asserted on

#: Runs ``modeldeck`` (cli main, no arguments) and watches it through two Textual functions,
#: wrapped as Textual imports them (nothing is imported before main): the terminal driver's
#: write (the first frame: the top bar's text written) and the CSS parser (which sources it
#: parses). The report is written at the first frame, and again at the next write.
PROBE = r"""
import gc, importlib.abc, importlib.util, json, sys

report_path = sys.argv[1]
report = {"css": []}
collections = lambda: sum(s["collections"] for s in gc.get_stats())


def driver(module):
    write = module.LinuxDriver.write

    def observed(self, data):
        result = write(self, data)
        if "frame" not in report and "workspace" in data:
            from textual._context import active_app

            report["frame"] = {
                "collections": collections() - report["start"],
                "modules": sorted(sys.modules),
                "prompt": len(active_app.get().screen.query("CommandLine")),
                # what the app waits on for the frame to be written (Textual's internals)
                "writer_queue": type(active_app.get()._writer_queue()).__name__,
            }
            json.dump(report, open(report_path, "w"))
        elif "frame" in report and "after" not in report:
            report["after"] = {"gc_enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
            json.dump(report, open(report_path, "w"))
        return result

    module.LinuxDriver.write = observed


def stylesheet(module):
    parse = module.parse

    def observed(scope, css, read_from, *args, **kwargs):
        report["css"].append(str(read_from[0]))
        return parse(scope, css, read_from, *args, **kwargs)

    module.parse = observed


WATCH = {"textual.drivers.linux_driver": driver, "textual.css.stylesheet": stylesheet}


class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in WATCH:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            WATCH[name](module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, Watch())
from modeldeck.cli.main import main

report["start"] = collections()
raise SystemExit(main([]))
"""

ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][A-Za-z0-9]|\x1b[=>]")


def _run_until(argv: list[str], text: bytes) -> bytes:
    """``argv`` in a pseudo-terminal until ``text`` is on the screen; then ended."""
    master, slave = os.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + WAIT_S
        while text not in ANSI.sub(b"", seen) and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
            elif proc.poll() is not None:
                break
        return ANSI.sub(b"", seen)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        os.close(master)


def test_first_frame_comes_before_the_workspace_and_the_data_after(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    with running_home(tmp_path / "home"):
        md = [sys.executable, "-m", "modeldeck.cli.main"]
        subprocess.run([*md, "endpoint", "create", "-n", "ep1", "-o", "none"], check=True)
        screen = _run_until([sys.executable, "-c", PROBE, str(report)], b"ep1")
    assert b"ep1" in screen, screen[-2000:]  # the endpoint listed: the data came
    seen = json.loads(report.read_text())
    frame = seen["frame"]
    loaded = set(frame["modules"])
    # the workspace is opened, and its HTTP client imported, after the first frame; what
    # the first view does not draw is not loaded (Rich's emoji table: the table's header)
    for module in (
        "argparse",  # no arguments: no parser built
        "modeldeck.services.backends",
        "modeldeck.services.local.client",
        "modeldeck.tui.screens.dialogs",
        "modeldeck.tui.widgets.command_line",
        "rich._emoji_codes",
    ):
        assert module not in loaded, module
    assert frame["prompt"] == 0  # mounted after the first frame, as the first fetch
    # the frame is let out through Textual's writer thread's queue: gone (Textual changed),
    # the wait would do nothing, silently
    assert frame["writer_queue"] == "Queue", frame["writer_queue"]
    # no garbage collection from the command's start to the first frame; the collector
    # runs after it, tuned, start-up's objects frozen out of its passes
    assert frame["collections"] == 0
    assert seen["after"]["gc_enabled"] and seen["after"]["frozen"] > 0
    # each stylesheet parsed once (Textual refreshed the whole CSS for the first view)
    app_css = [p for p in seen["css"] if p.endswith("app.tcss")]
    assert len(app_css) == 1, seen["css"]


async def test_a_frame_drawn_runs_what_waits_for_the_first_frame(workspace: Any, h: Any) -> None:
    """What waits for the first frame (the prompt mounted, so that ``:`` then typing loses
    no key; the first fetch) runs on the first frame drawn: ModeldeckApp._display, Textual's
    (8.2) own method for a frame. With its fallback put out of reach, the prompt still comes
    (if Textual renamed or stopped calling _display, only the fallback would run it)."""
    from modeldeck.services.local.client import LocalWorkspace
    from modeldeck.tui.app import ModeldeckApp

    app = ModeldeckApp(LocalWorkspace(autostart=False))
    app.FIRST_FRAME_LATEST_S = 3600.0
    async with app.run_test(size=(120, 40)) as pilot:
        await h.eventually(lambda: app.screen.query("CommandLine"), pilot, timeout=10)
        await h.eventually(lambda: app.screen.loaded, pilot)  # type: ignore[attr-defined]


async def test_a_theme_set_after_the_start_styles_every_view(workspace: Any, h: Any) -> None:
    """The first views are styled as the stylesheet was built (no CSS refresh for them, as
    Textual does for a mode's first screen); a theme set later restyles them all: the
    view opened before it, the one shown, and one opened after it."""
    from modeldeck.services.local.client import LocalWorkspace
    from modeldeck.tui.app import ModeldeckApp

    app = ModeldeckApp(LocalWorkspace(autostart=False), autoload=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")  # Deployments: opened while the CSS is as built
        await pilot.press("1")
        assert app.screen.styles.background.brightness < 0.5  # dark
        await pilot.press("ctrl+t")  # light
        for key in ("1", "2", "3"):  # shown, opened before, opened after
            await pilot.press(key)
            await pilot.pause()
            assert app.screen.styles.background.brightness > 0.5, (key, app.screen)
