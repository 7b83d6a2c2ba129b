"""End to end: the installed ``modeldeck`` in a real terminal (tmux), keys typed, screen read.

``modeldeck`` with no arguments opens the dashboard on the default (local) workspace and
starts the control plane on its first call. Quitting, or a hang-up (SSH drop), ends the
dashboard cleanly; the control plane and its deployments keep running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.daemon import home_env, stop_daemon

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]
WAIT_S = 60.0  # only to avoid hangs


def _modeldeck() -> str:
    exe = Path(sys.executable).with_name("modeldeck")
    return str(exe) if exe.exists() else "modeldeck"


class Tmux:
    def __init__(self, home: Path) -> None:
        self.socket = f"mdt-{uuid.uuid4().hex[:8]}"
        self.home = home
        self.rc_file = home / "rc"

    def run(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=20
        ).stdout

    def start(self, command: str, width: int = 100, height: int = 30, **extra: str) -> None:
        env = {"MODELDECK_HOME": str(self.home), "TERM": "xterm-256color", **extra}
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        shell = f"env {exports} {command}; echo $? > {self.rc_file}; sleep 30"
        subprocess.run(
            [
                "tmux",
                "-L",
                self.socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                str(width),
                "-y",
                str(height),
                shell,
            ],
            check=True,
            timeout=20,
            env={**os.environ, "TERM": "xterm-256color"},
        )

    def screen(self) -> str:
        return self.run("capture-pane", "-p")

    def wait_for(self, text: str, timeout: float = WAIT_S) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} did not appear; screen:\n{self.screen()}")

    def wait_gone(self, text: str, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text not in self.screen():
                return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} did not go away; screen:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", *keys)

    def type(self, text: str) -> None:
        self.run("send-keys", "-l", text)

    def app_pid(self) -> int | None:
        pane = int(self.run("display-message", "-p", "#{pane_pid}").strip() or 0)
        if not pane:
            return None
        for child in psutil.Process(pane).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any("modeldeck" in part for part in child.cmdline()[:2]):
                    return child.pid
        return None

    def exit_code(self, timeout: float = WAIT_S) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.rc_file.exists() and self.rc_file.read_text().strip():
                return int(self.rc_file.read_text().strip())
            time.sleep(0.1)
        raise AssertionError(f"modeldeck did not exit; screen:\n{self.screen()}")

    def kill(self) -> None:
        self.run("kill-server")
        with contextlib.suppress(OSError):  # the server's socket file stays behind otherwise
            Path(f"/tmp/tmux-{os.getuid()}/{self.socket}").unlink()


@pytest.fixture
def term(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tmux]:
    home = tmp_path_factory.mktemp("mdx")
    tmux = Tmux(home)
    try:
        yield tmux
    finally:
        tmux.kill()
        with home_env(home):
            stop_daemon(home)


def _daemon_running(home: Path) -> bool:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELDECK_HOME", str(home))
        from modeldeck.services.local.controlplane import daemon

        return bool(daemon.daemon_status().get("running"))


def test_dashboard_in_a_real_terminal(term: Tmux) -> None:
    term.start(_modeldeck())
    term.wait_for("Endpoints")
    term.wait_for("no endpoints")  # the control plane was started and answered
    term.type(":")
    term.type("clusters")
    term.keys("Enter")
    term.wait_for("no clusters")
    term.type("c")
    term.wait_for("Create a pool cluster")
    term.type("pool-t")
    term.keys("C-s")
    screen = term.wait_for("Ready")
    assert "pool-t" in screen and "FastProd" in screen
    term.type("?")
    screen = term.wait_for("Everywhere")
    assert "Create pool" in screen and "Attach" in screen
    term.keys("Escape")
    term.wait_gone("Everywhere")  # (a key right after Escape would read as alt+key)
    term.type("q")
    assert term.exit_code() == 0
    assert _daemon_running(term.home)  # what runs lives in the control plane, not in the UI


def test_hangup_exits_cleanly_and_the_control_plane_keeps_running(term: Tmux) -> None:
    term.start(_modeldeck())
    term.wait_for("no endpoints")
    pid = term.app_pid()
    assert pid is not None
    os.kill(pid, signal.SIGHUP)  # what an SSH drop sends
    assert term.exit_code() == 0
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert _daemon_running(term.home)


def test_linux_console_without_colour_at_80x24(term: Tmux) -> None:
    term.start(_modeldeck(), width=80, height=24, TERM="linux", NO_COLOR="1")
    screen = term.wait_for("no endpoints")
    assert "Endpoints" in screen and "Filter" in screen  # the footer fits
    term.type("q")
    assert term.exit_code() == 0
