"""The grammar of ``daemon``: the local control plane's status and stop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..parser import PROG
from . import flags

if TYPE_CHECKING:
    from ..parser import Leaf


def build(leaf: Leaf) -> None:
    p = leaf(
        "status",
        "cmd_daemon:status",
        "Show whether the local control plane runs: pid, socket, gateway, log file",
        [f"{PROG} daemon status", f"{PROG} daemon status --query gateway -o tsv"],
    )
    flags.finish(p)
    p = leaf(
        "stop",
        "cmd_daemon:stop",
        "Stop the local control plane (deployments come back when it starts again)",
        [f"{PROG} daemon stop"],
    )
    flags.finish(p)
