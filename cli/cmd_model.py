"""``modeldeck model``: register, list, show and delete model versions."""

from __future__ import annotations

import argparse
from typing import Any

from ..services.api import validation
from ..services.api.domain import to_dict
from ..services.api.workspace import Workspace
from .common import confirm


async def create(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services import apply
    from ..services.specs.flags import parse_tags
    from ..services.specs.model import load_model

    spec = load_model(
        args.file,
        args.set,
        name=args.name,
        model_path=args.path,
        version=args.version,
        description=args.description,
        tags=parse_tags(args.tag),
        model_type=args.type,
    )
    return to_dict(await apply.create_model(ws, spec))


async def list_(args: argparse.Namespace, ws: Workspace) -> Any:
    return to_dict(await ws.list_models(args.name))


async def show(args: argparse.Namespace, ws: Workspace) -> Any:
    version = None
    if args.version is not None and args.version != "latest":
        version = validation.integer(args.version, "version", 1)
    return to_dict(await ws.get_model(args.name, version))


async def delete(args: argparse.Namespace, ws: Workspace) -> Any:
    version = validation.integer(args.version, "version", 1)
    await ws.get_model(args.name, version)
    confirm(args, f"Version {version} of the model '{args.name}' will be deleted.")
    await ws.delete_model(args.name, version)
    return None
