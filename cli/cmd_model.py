"""``modeldeck model``: register, list, show and delete model versions."""

from __future__ import annotations

import argparse
from typing import Any

from ..services.api import validation
from ..services.api.workspace import Workspace
from . import shapes
from .common import check_one_version, check_show_label, confirm


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
    return shapes.model(await apply.create_model(ws, spec), ws.arm_scope())


async def list_(args: argparse.Namespace, ws: Workspace) -> Any:
    """As az ml's list: active versions; --include-archived adds the archived ones,
    --archived-only lists only them."""
    scope = ws.arm_scope()
    keep = (True,) if args.archived_only else (False, True) if args.include_archived else (False,)
    found = await ws.list_models(args.name)
    return [shapes.model(m, scope) for m in found if m.archived in keep]


async def _archived(args: argparse.Namespace, ws: Workspace, archived: bool) -> Any:
    """``model archive`` / ``restore``: one version, by -v or --label latest (az ml's).
    Nothing is printed, as az ml prints nothing: its ml_model_archive returns azure-ai-ml's
    ``models.archive``, which returns None."""
    check_one_version(args, "give the version, or --label latest")
    if args.label is not None:
        version = (await ws.get_model(args.name, None)).version
    else:
        version = validation.integer(args.version, "version", 1)
    await ws.archive_model(args.name, version, archived=archived)
    return None


async def archive(args: argparse.Namespace, ws: Workspace) -> Any:
    return await _archived(args, ws, True)


async def restore(args: argparse.Namespace, ws: Workspace) -> Any:
    return await _archived(args, ws, False)


async def show(args: argparse.Namespace, ws: Workspace) -> Any:
    check_show_label(args)
    version = None
    if args.version is not None and args.version != "latest":
        version = validation.integer(args.version, "version", 1)
    return shapes.model(await ws.get_model(args.name, version), ws.arm_scope())


async def delete(args: argparse.Namespace, ws: Workspace) -> Any:
    version = validation.integer(args.version, "version", 1)
    await ws.get_model(args.name, version)
    confirm(args, f"Version {version} of the model '{args.name}' will be deleted.")
    await ws.delete_model(args.name, version)
    return None
