"""The running control plane, wired: the store, the gateway, the engine and the management
API on the Unix socket, both listeners behind their connection guards; restore, serve until
stopped, then close in order (copies, control socket, engine and replicas, gateway, store).

:func:`~.daemon.serve` (the process: pid lock, logging, descriptor limit) runs :func:`run`;
the settings it reads are :mod:`.daemon`'s.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from pathlib import Path
from typing import Any

from ... import paths
from ...api.errors import BackendError, ModeldeckError, Unreachable
from ...transport import is_loopback_host
from .daemon import (
    connection_limits,
    gateway_address,
    log_path,
    max_body_bytes,
    metrics_token,
    metrics_token_path,
    socket_path,
)

_MAX_SOCKET_PATH = 104


async def run() -> int:
    """Serve until stopped (SIGTERM/SIGINT, ``POST /v1/shutdown``, or the socket gone); 0."""
    import asyncio
    import logging

    from aiohttp import web

    from ..connguard import ConnectionGuard
    from ..dataplane.gateway import Gateway
    from .engine import Engine
    from .store.db import Store

    log = logging.getLogger("modeldeck.daemon")
    started = time.time()
    version = _version()
    sock = socket_path()
    if len(str(sock).encode()) > _MAX_SOCKET_PATH:
        raise BackendError(
            f"the socket path {sock} is longer than a Unix socket allows",
            fix="set MODELDECK_HOME to a shorter path",
        )
    data_dir = paths.data_dir()
    store = Store(data_dir / "workspace.db")
    host, port, remember = gateway_address(store)
    if not is_loopback_host(host):
        log.warning(
            "the gateway listens on %s, not on loopback: scoring endpoints are reachable "
            "from other machines (auth still applies)",
            host,
        )
    gateway_limits, control_limits = connection_limits()
    gateway = Gateway(
        host,
        port,
        max_body_bytes=max_body_bytes(),
        metrics_token=metrics_token(),
        limits=gateway_limits,
    )
    try:
        await gateway.start()
    except (OSError, ModeldeckError) as exc:
        store.close()
        in_use = getattr(exc, "errno", None) == errno.EADDRINUSE or "in use" in str(exc)
        if in_use:
            raise Unreachable(
                f"the gateway cannot listen on {host}:{port}: the port is in use",
                fix="stop what uses it, or set MODELDECK_GATEWAY_PORT to a free port "
                "(scoring URIs change with it)",
                port=port,
            ) from None
        raise Unreachable(
            f"the gateway cannot listen on {host}:{port}: {exc}",
            fix="check MODELDECK_GATEWAY_HOST / MODELDECK_GATEWAY_PORT",
        ) from None
    if remember or store.get_setting("gateway_port") != str(gateway.port):
        # the next start (an auto-start without MODELDECK_GATEWAY_PORT) keeps the same URIs
        store.set_setting("gateway_port", str(gateway.port))
    gateway_url = str(getattr(gateway, "base_url", f"http://{host}:{gateway.port}"))
    ttl = float(os.environ.get("MODELDECK_TOKEN_TTL_S") or 3600)
    engine = Engine(
        store, data_dir, gateway=gateway, token_ttl_s=ttl, version=f"modeldeck {version}"
    )
    stop = asyncio.Event()
    from .api import build_app

    app = build_app(
        engine,
        stop=stop,
        status=lambda: {
            "pid": os.getpid(),
            "version": version,
            "gateway": gateway_url,
            "gateway_url": gateway_url,
            "uptime_s": round(time.time() - started, 3),
            "started_at": started,
            "socket": str(sock),
            "log": str(log_path()),
            "data_dir": str(data_dir),
            "metrics_token_file": str(metrics_token_path()),
        },
    )
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    control = ConnectionGuard(
        control_limits,
        "control socket",
        log,
        fix="close idle connections to the control socket; the operator can raise "
        "MODELDECK_CONTROL_MAX_CONNECTIONS(_PER_CLIENT)",
    )
    try:
        await engine.restore()
        engine.rollouts.resume()  # every Running or Paused rollout, where it was
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()  # stale: we hold the lock, so nobody else serves it
        old_umask = os.umask(0o177)
        try:
            await control.serve_unix(runner, str(sock))
        finally:
            os.umask(old_umask)
        os.chmod(sock, 0o600)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info(
            "control plane %s ready: pid %d, socket %s, gateway %s",
            version,
            os.getpid(),
            sock,
            gateway_url,
        )
        watchdog = asyncio.ensure_future(_watch_socket(sock, stop))
        await stop.wait()
        watchdog.cancel()
        log.info("stopping")
    finally:
        engine.cancel_copies()  # a model copy in progress must not hold the stop up
        await engine.rollouts.close()  # stopped, not ended: the next start resumes them
        await control.close()
        await runner.cleanup()
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        await engine.close()
        with contextlib.suppress(Exception):
            await (getattr(gateway, "stop", None) or gateway.close)()
        store.close()
        log.info("stopped")
    return 0


async def _watch_socket(sock: Path, stop: Any, interval: float = 2.0) -> None:
    """Stop when our socket is gone or is no longer ours (state dir removed, or taken over):
    nobody can reach this control plane any more, so it must not keep replicas running."""
    import asyncio
    import logging

    try:
        ours = os.stat(sock).st_ino
    except OSError:
        return
    while not stop.is_set():
        await asyncio.sleep(interval)
        try:
            current = os.stat(sock).st_ino
        except OSError:
            current = None
        if current != ours:
            logging.getLogger("modeldeck.daemon").warning(
                "the socket %s was removed or replaced: stopping", sock
            )
            stop.set()
            return


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("modeldeck")
    except Exception:
        return "0.0.0"
