"""``modeldeck serve``, ``modeldeck daemon status|stop`` and ``modeldeck ui``.

These run without opening a workspace (``standalone``): the control plane's own helpers
(services/local/controlplane/daemon.py) and the dashboard are called directly.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse


def _standalone(func: Any) -> Any:
    func.standalone = True
    return func


@_standalone
def serve(args: argparse.Namespace) -> int:
    from ..services.local.controlplane.daemon import serve as run_daemon

    if args.host:
        os.environ["MODELDECK_GATEWAY_HOST"] = args.host
    if args.port is not None:
        os.environ["MODELDECK_GATEWAY_PORT"] = str(args.port)
    return run_daemon(foreground=True)


@_standalone
def status(args: argparse.Namespace) -> Any:
    from ..services.local.controlplane.daemon import daemon_status

    return daemon_status()


@_standalone
def stop(args: argparse.Namespace) -> Any:
    from ..services.local.controlplane.daemon import stop_daemon

    stopped = stop_daemon()
    sys.stderr.write(
        "stopped the control plane\n" if stopped else "the control plane was not running\n"
    )
    return None


@_standalone
def ui(args: argparse.Namespace) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        sys.stderr.write(
            "ERROR: the dashboard needs a terminal, and this is not one.\n"
            "  fix: run modeldeck in a terminal, or use the commands (modeldeck --help)\n"
        )
        return 2
    try:
        from ..tui.app import run_app
    except ImportError as exc:
        sys.stderr.write(
            f"ERROR: the dashboard is not available in this installation ({exc}).\n"
            "  fix: use the commands (modeldeck --help), or reinstall modeldeck with its "
            "dependencies (pip install modeldeck)\n"
        )
        return 1
    run_app(args.workspace, readonly=args.readonly)
    return 0
