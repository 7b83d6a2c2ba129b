"""``modeldeck compute`` (alias ``cluster``): pools and attached Kubernetes clusters."""

from __future__ import annotations

import argparse
from typing import Any

from ..services.domain import ClusterDriver, ClusterSpec, to_dict
from ..services.workspace import Workspace
from .common import confirm
from .progress import wait


async def create(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services import specs

    spec = ClusterSpec(
        name=args.name,
        driver=ClusterDriver.POOL,
        purpose=specs.parse_purpose(args.purpose),
        agent_count=args.agent_count,
        vm_size=args.vm_size,
        description=args.description or "",
        tags=specs.parse_tags(args.tag),
    )
    from ..services import validation

    validation.cluster_spec(spec)
    op = await wait(
        await ws.create_cluster(spec), f"Creating cluster {spec.name}", no_wait=args.no_wait
    )
    if args.no_wait:
        return to_dict(op)
    return to_dict(await ws.get_cluster(spec.name))


async def list_(args: argparse.Namespace, ws: Workspace) -> Any:
    return to_dict(await ws.list_clusters())


async def show(args: argparse.Namespace, ws: Workspace) -> Any:
    return to_dict(await ws.get_cluster(args.name))


async def scale(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services import validation

    validation.integer(args.agent_count, "agent_count", 1, 100)
    op = await wait(
        await ws.scale_cluster(args.name, args.agent_count),
        f"Scaling cluster {args.name}",
        no_wait=args.no_wait,
    )
    if args.no_wait:
        return to_dict(op)
    return to_dict(await ws.get_cluster(args.name))


async def delete(args: argparse.Namespace, ws: Workspace) -> Any:
    await ws.get_cluster(args.name)  # NotFound before asking
    confirm(args, f"The cluster '{args.name}' will be deleted.")
    op = await wait(
        await ws.delete_cluster(args.name), f"Deleting cluster {args.name}", no_wait=args.no_wait
    )
    return to_dict(op) if args.no_wait else None


async def attach(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services import specs

    spec = ClusterSpec(
        name=args.name,
        driver=ClusterDriver.KUBERNETES,
        purpose=specs.parse_purpose(args.purpose),
        kube_context=args.kube_context,
        namespace=args.namespace,
    )
    from ..services import validation

    validation.cluster_spec(spec)
    op = await wait(
        await ws.attach_cluster(spec), f"Attaching cluster {spec.name}", no_wait=args.no_wait
    )
    if args.no_wait:
        return to_dict(op)
    return to_dict(await ws.get_cluster(spec.name))


async def detach(args: argparse.Namespace, ws: Workspace) -> Any:
    await ws.get_cluster(args.name)
    what = (
        " and what modeldeck created on it"
        if args.delete_resources
        else " (what runs on it keeps running)"
    )
    confirm(args, f"The cluster '{args.name}' will be detached{what}.")
    op = await wait(
        await ws.detach_cluster(args.name, delete_resources=args.delete_resources),
        f"Detaching cluster {args.name}",
        no_wait=args.no_wait,
    )
    return to_dict(op) if args.no_wait else None
