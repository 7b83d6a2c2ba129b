"""A real control plane daemon in a temporary MODELDECK_HOME, for the tests that drive one.

The daemon is started through the real auto-start path (``ensure_daemon``, which spawns
``python -m modeldeck.services.local.controlplane.daemon`` detached) and stopped after.
A conftest re-exports the fixtures it wants (``from tests.support.daemon import ...``).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.local.controlplane import daemon

#: variables of the developer's shell that would reach into a test's home: left out
ISOLATED = (
    "MODELDECK_GATEWAY_PORT",
    "MODELDECK_GATEWAY_HOST",
    "MODELDECK_GATEWAY_MAX_BODY_MB",
    "MODELDECK_TOKEN_TTL_S",
    "MODELDECK_WORKSPACE",
    "NO_COLOR",
)


@dataclass
class Home:
    path: Path

    @property
    def state(self) -> Path:
        return self.path / "state"

    @property
    def data(self) -> Path:
        return self.path / "data"


@contextlib.contextmanager
def home_env(path: Path, **env: str) -> Iterator[None]:
    """MODELDECK_HOME=path (plus env, without the ISOLATED variables) for the duration."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELDECK_HOME", str(path))
        for key in ISOLATED:
            mp.delenv(key, raising=False)
        for key, value in env.items():
            mp.setenv(key, value)
        yield


def stop_daemon(home: Path) -> None:
    """Stop the daemon of ``home`` (gracefully; SIGKILL as a last resort)."""
    with contextlib.suppress(Exception):
        daemon.stop_daemon(timeout=20.0)
    pid_file = home / "state" / daemon.PID_NAME
    with contextlib.suppress(Exception):
        pid = int(pid_file.read_text().strip() or 0)
        if pid and _is_our_daemon(pid, home):  # a stale pid may belong to someone else now
            os.kill(pid, signal.SIGKILL)


def _is_our_daemon(pid: int, home: Path) -> bool:
    import psutil

    try:
        proc = psutil.Process(pid)
        cmdline = " ".join(proc.cmdline())
        env = proc.environ()
    except (psutil.Error, OSError):
        return False
    return "modeldeck.services.local.controlplane.daemon" in cmdline and env.get(
        "MODELDECK_HOME"
    ) == str(home)


@contextlib.contextmanager
def running_home(path: Path, **env: str) -> Iterator[Home]:
    """MODELDECK_HOME=path (plus env) for the duration; the daemon is stopped after."""
    with home_env(path, **env):
        try:
            yield Home(path)
        finally:
            stop_daemon(path)


@pytest.fixture(scope="module")
def daemon_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """One real daemon for the tests of a module (each test uses its own names)."""
    with running_home(tmp_path_factory.mktemp("mdl")) as home:
        daemon.ensure_daemon()
        yield home


@pytest.fixture
def fresh_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """A home of its own, no daemon yet (the test starts it)."""
    with running_home(tmp_path_factory.mktemp("mdf")) as home:
        yield home


@pytest.fixture
async def workspace(daemon_home: Home) -> AsyncIterator[LocalWorkspace]:
    """A client of the module's daemon."""
    ws = LocalWorkspace(autostart=False, poll_interval=0.05)
    try:
        yield ws
    finally:
        await ws.close()
