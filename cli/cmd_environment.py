"""``modeldeck environment``: register, list, show, archive and prune environments (az ml's
``environment`` group). A deployment names one as ``environment: azureml:NAME:VERSION``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..services.api.domain import Environment
from ..services.api.errors import InvalidInput
from ..services.api.workspace import Workspace
from . import shapes
from .common import check_one_version, check_show_label, confirm, warner


def _overridden(data: dict[str, Any], overrides: Any, source: str, base: Path | None) -> Any:
    """The environment's YAML with ``--set`` applied, before the flags (they win, as in az
    ml's create); a path it gives is relative to the file's folder (or the cwd)."""
    from ..services.specs.document import Doc
    from ..services.specs.setargs import apply_overrides

    doc = Doc(dict(data), source, base)
    apply_overrides(doc, overrides or ())
    return doc.data


def _tagged(data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``--tags`` merged over the YAML's tags (the flags win, as in az ml's create)."""
    from ..services.specs.flags import parse_tags

    given = parse_tags(getattr(args, "tag", None) or [], "--tags")
    if not given:
        return data
    tags = data.get("tags") if isinstance(data.get("tags"), dict) else {}
    return {**data, "tags": {**tags, **given}}


def _load(args: argparse.Namespace) -> tuple[Environment, list[str]]:
    """The environment the flags and the YAML describe, and the warnings resolving it gave
    (a conda file modeldeck cannot build is refused here, before anything is sent)."""
    from ..services import environments as envs

    if args.file:
        from ..services.specs import yamlload

        path = Path(args.file)
        text = yamlload.read_text(path, field="file")
        data = yamlload.safe_load(text, str(path), field="file")
        if isinstance(data, dict):
            data = _overridden(data, args.set, str(path), path.resolve().parent)
            data = {**data, **({"image": args.image} if args.image else {})}
            data = _tagged(data, args)
            if args.os_type:  # the flags win over the YAML, as in az ml's create
                data["os_type"] = args.os_type
            if args.conda_file:  # a flag's path is relative to where the command runs
                data["conda_file"] = str(Path(args.conda_file).resolve())
        spec = envs.environment_from_dict(
            data, base_dir=path.resolve().parent, source=str(path), default_name=args.name
        )
    else:
        data: dict[str, Any] = _overridden({}, args.set, "the flags", None)
        data["name"] = args.name or data.get("name") or ""
        if args.image:
            data["image"] = args.image
        if args.conda_file:
            data["conda_file"] = args.conda_file
        if args.os_type:
            data["os_type"] = args.os_type
        data = _tagged(data, args)
        if not data["name"]:
            raise InvalidInput(
                "name", None, "is required", "pass --name, or -f env.yml with name: in it"
            )
        spec = envs.environment_from_dict(data, base_dir=Path.cwd(), source="the flags")
    warnings: list[str] = []
    if spec.conda_file is not None:
        warnings = list(envs.resolve(spec).warnings)
    env = Environment(
        name=args.name or spec.name,
        version=str(args.version) if args.version is not None else (spec.version or ""),
        image=spec.image,
        conda_file=spec.conda_file,
        description=args.description if args.description is not None else spec.description or "",
        tags=spec.tags,
        os_type=spec.os_type,
        base_dir=str(spec.base_dir) if spec.base_dir else None,
    )
    return env, warnings


async def create(args: argparse.Namespace, ws: Workspace) -> Any:
    env, warnings = _load(args)
    for w in warnings:
        warner(args)(w)
    return shapes.environment(await ws.create_environment(env), ws.arm_scope())


async def list_(args: argparse.Namespace, ws: Workspace) -> Any:
    scope = ws.arm_scope()
    return [shapes.environment(e, scope) for e in await ws.list_environments(args.name)]


async def show(args: argparse.Namespace, ws: Workspace) -> Any:
    check_show_label(args)
    return shapes.environment(await ws.get_environment(args.name, args.version), ws.arm_scope())


async def archive(args: argparse.Namespace, ws: Workspace) -> Any:
    check_one_version(args, "give the version to archive, or --label latest")
    version = args.version
    if args.label is not None:  # az ml: --label latest, the newest version not archived
        version = (await ws.get_environment(args.name, None)).version
    await ws.archive_environment(args.name, str(version))
    return None  # az ml prints nothing (azure-ai-ml's environments.archive returns None)


async def prune(args: argparse.Namespace, ws: Workspace) -> Any:
    confirm(
        args,
        "The built Python environments that no deployment uses will be deleted (they are "
        "built again when a deployment needs them).",
    )
    scope = ws.arm_scope()
    return [shapes.environment(e, scope) for e in await ws.prune_environments()]
