"""What several benchmarks share: a temporary MODELDECK_HOME for a real daemon; a
replica of a scoring script behind the gateway, and another bench file's helpers.

Imported as ``from _common import ...`` (the bench folder on ``sys.path``, as the
dashboard benches import ``_tui_pty``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import shutil
import statistics
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any


@contextlib.contextmanager
def daemon_home(prefix: str) -> Iterator[Path]:
    """MODELDECK_HOME is a new temporary folder for the duration (a short path: a Unix
    socket path is bounded); after, its daemon is stopped, the variable put back as it
    was and the folder removed."""
    from modeldeck.services.local.controlplane import daemon

    home = Path(tempfile.mkdtemp(prefix=prefix))
    saved = os.environ.get("MODELDECK_HOME")
    os.environ["MODELDECK_HOME"] = str(home)
    try:
        yield home
    finally:
        daemon.stop_daemon()
        if saved is None:
            os.environ.pop("MODELDECK_HOME", None)
        else:
            os.environ["MODELDECK_HOME"] = saved
        shutil.rmtree(home, ignore_errors=True)


#: the key the data-plane benches' endpoints take (``Authorization: Bearer KEY``)
KEY = "bench-key-0123456789abcdefghijklmnopqrstuvwxyz"
#: a scoring script that does nothing: what is measured is the way to it
NOOP = """
def init():
    pass
def run(raw_data):
    return '{"ok": true}'
"""


async def timed(fn: Any, rounds: int) -> tuple[float, Any]:
    """The median time of ``rounds`` calls of ``fn`` (awaited when it returns an awaitable),
    in seconds, and what the last call returned."""
    times, last = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        last = fn()
        if inspect.isawaitable(last):
            last = await last
        times.append(time.perf_counter() - t0)
    return statistics.median(times), last


def sibling(name: str) -> ModuleType:
    """Another bench file as a module (``sibling("gateway").run_load``: its load generator)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def serve_script(
    sup: Any, gw: Any, root: Path, endpoint: str, source: str, concurrency: int, settings: Any
) -> Any:
    """One real replica (deployment ``d``, at most ``concurrency`` requests at once) of a
    scoring script ``source``, started by ``sup`` and ready, and ``endpoint`` routing all
    its traffic to it through the gateway ``gw`` with key auth (:data:`KEY`)."""
    from modeldeck.services.drivers.base import EndpointAuth, EndpointRoute
    from modeldeck.services.local.dataplane.supervisor import ReplicaConfig

    code = root / endpoint
    code.mkdir()
    (code / "score.py").write_text(textwrap.dedent(source))
    (root / "model").mkdir(exist_ok=True)
    replica = sup.create(
        ReplicaConfig(
            endpoint=endpoint,
            deployment="d",
            name="d-0",
            code_dir=str(code),
            scoring_script="score.py",
            model_dir=str(root / "model"),
            max_concurrency=concurrency,
        )
    )
    replica.start()
    while not replica.ready:
        if replica.failures:
            raise SystemExit(f"replica failed: {replica.error}")
        await replica.wait_change(1.0)
    assert replica.address is not None
    gw.set_backends(endpoint, "d", [replica.address], settings)
    gw.set_endpoint(EndpointRoute(endpoint, EndpointAuth("key", KEY, KEY + "2", "s"), {"d": 100}))
    return replica


@contextlib.asynccontextmanager
async def data_plane(prefix: str) -> AsyncIterator[tuple[Path, Any, Any]]:
    """(a temporary folder, a replica Supervisor, the real Gateway started on a free
    loopback port); all closed and removed after."""
    from modeldeck.services.local.dataplane.gateway import Gateway
    from modeldeck.services.local.dataplane.logstore import LogStore
    from modeldeck.services.local.dataplane.supervisor import Supervisor

    root = Path(tempfile.mkdtemp(prefix=prefix))
    sup = Supervisor(LogStore(root / "logs"), socket_dir=root / "sock")
    gw = Gateway("127.0.0.1", 0)
    try:
        await gw.start()
        yield root, sup, gw
    finally:
        await gw.close()
        await sup.close()
        sup.logstore.close()
        shutil.rmtree(root, ignore_errors=True)
