"""``modeldeck workspace``: the workspace itself, in az ml's shape."""

from __future__ import annotations

import argparse
from typing import Any

from ..services.api.errors import InvalidInput
from ..services.api.workspace import Workspace


async def show(args: argparse.Namespace, ws: Workspace) -> Any:
    return await ws.show_workspace()


async def list_(args: argparse.Namespace, ws: Workspace) -> Any:
    if args.filtered_kinds is not None:
        raise InvalidInput(
            "--filtered-kinds",
            args.filtered_kinds,
            "hub and project workspaces (Azure AI Foundry) are not listed by modeldeck: "
            "every workspace it lists is of kind default",
            "leave out --filtered-kinds",
        )
    if args.max_results is not None and args.max_results < 1:
        raise InvalidInput("--max-results", args.max_results, "must be 1 or more", "pass -r 10")
    found = await ws.list_workspaces()
    return found[: args.max_results] if args.max_results else found
