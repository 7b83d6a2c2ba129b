"""``modeldeck compute`` (alias ``cluster``): pools and attached Kubernetes clusters."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from ..services.api.domain import ClusterSpec, DriverKind
from ..services.api.workspace import Workspace
from . import shapes
from .common import confirm, warn, warner
from .progress import wait, wait_then_show


async def create(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services.specs.flags import parse_purpose, parse_tags

    _the_name(args)
    _type(args, "pool" if ws.kind == "local" else "aks")
    spec = ClusterSpec(
        name=args.name,
        driver=DriverKind.POOL,
        purpose=parse_purpose(args.purpose),
        agent_count=args.agent_count,
        vm_size=args.vm_size,
        description=args.description or "",
        tags=parse_tags(args.tag),
    )
    from ..services.api import validation

    validation.cluster_spec(spec)
    return await wait_then_show(
        await ws.create_cluster(spec),
        f"Creating cluster {spec.name}",
        args.no_wait,
        _show(ws, spec.name),
        status=f"modeldeck compute show -n {spec.name}",
        warn=warner(args),
    )


def _show(ws: Workspace, name: str) -> Any:
    """A reader of the cluster in az's shape (``cli/shapes.py``)."""

    async def read() -> Any:
        return shapes.compute(await ws.get_cluster(name), ws.arm_scope())

    return read


def _type(args: argparse.Namespace, makes: str) -> None:
    """az ml's ``--type`` on create/attach: only what this command makes here is taken."""
    from ..services.api.errors import InvalidInput

    wanted = getattr(args, "type", None)
    if wanted is not None and wanted.lower() != makes:
        raise InvalidInput(
            "--type",
            wanted,
            f"this command makes a compute of type {makes} here (az ml's AmlCompute, "
            "ComputeInstance and virtual machines are not made by modeldeck)",
            f"pass --type {makes}, or leave --type out",
        )


async def list_(args: argparse.Namespace, ws: Workspace) -> Any:
    scope = ws.arm_scope()
    found = [shapes.compute(c, scope) for c in await ws.list_clusters()]
    wanted = (getattr(args, "type", None) or "").lower()
    return [c for c in found if not wanted or str(c.get("type", "")).lower() == wanted]


async def show(args: argparse.Namespace, ws: Workspace) -> Any:
    _the_name(args)
    return await _show(ws, args.name)()


async def scale(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services.api import validation

    _the_name(args)
    validation.integer(args.agent_count, "agent_count", 1, 100)
    return await wait_then_show(
        await ws.scale_cluster(args.name, args.agent_count),
        f"Scaling cluster {args.name}",
        args.no_wait,
        _show(ws, args.name),
        status=f"modeldeck compute show -n {args.name}",
        warn=warner(args),
    )


async def update(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services.api.errors import InvalidInput
    from ..services.specs.flags import parse_tags

    _the_name(args)
    tags = parse_tags(args.tag)
    if not tags and not args.remove_tag:
        raise InvalidInput(
            "--tag", None, "nothing to change", "pass --tag KEY=VALUE or --remove-tag KEY"
        )
    updated = await ws.update_cluster(args.name, tags=tags, remove_tags=args.remove_tag)
    if getattr(args, "no_wait", False):
        return None  # as az's --no-wait: nothing (a tags change has no long operation)
    return shapes.compute(updated, ws.arm_scope())


async def delete(args: argparse.Namespace, ws: Workspace) -> Any:
    _the_name(args)
    await ws.get_cluster(args.name)  # NotFound before asking
    confirm(args, f"The cluster '{args.name}' will be deleted.")
    await wait(
        await ws.delete_cluster(args.name), f"Deleting cluster {args.name}", no_wait=args.no_wait
    )
    return None  # as az: nothing, --no-wait or not


def _the_name(args: argparse.Namespace) -> str:
    """``--name NAME`` or the first argument (``cluster attach prod``), stored in args.name."""
    from ..services.api.errors import InvalidInput

    first = getattr(args, "name_arg", None)
    if args.name and first and args.name != first:
        raise InvalidInput(
            "--name", args.name, f"differs from the name given first ('{first}')", "give one name"
        )
    args.name = args.name or first
    if not args.name:
        raise InvalidInput("--name", None, "is required", "give the cluster's name: --name NAME")
    return str(args.name)


async def attach(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services.api import validation
    from ..services.specs.flags import parse_purpose, parse_tags
    from .common import resolve_profile

    _the_name(args)
    _type(args, "kubernetes")
    if getattr(args, "print_role", False):
        return _print_role(args)
    resource_id = getattr(args, "resource_id", None)
    spec = ClusterSpec(
        name=args.name,
        driver=DriverKind.KUBERNETES,
        purpose=parse_purpose(args.purpose),
        kube_context=args.kube_context,
        namespace=args.namespace,
        resource_id=resource_id,
        tags=parse_tags(args.tag),
    )
    if resolve_profile(args)[0].provider == "local":
        if resource_id and not args.kube_context:
            from ..services.api.errors import InvalidInput

            raise InvalidInput(
                "--resource-id",
                resource_id,
                "attaches a cluster to an azureml workspace; this is a local workspace, which "
                "reaches a cluster through a kubeconfig context",
                "pass --kube-context NAME (see: kubectl config get-contexts), or -w PROFILE for "
                "an azureml workspace",
            )
        if resource_id:
            warn(args, "--resource-id is used by azureml workspaces; ignored locally")
            spec = replace(spec, resource_id=None)
        validation.cluster_spec(spec)
    else:
        validation.name(spec.name)  # the workspace checks the resource id (its own rules)
    op = await wait(
        await ws.attach_cluster(spec), f"Attaching cluster {spec.name}", no_wait=args.no_wait
    )
    for line in (op.message or "").splitlines()[1:]:  # the attach check's notes
        if line.startswith("note: "):
            warn(args, line.removeprefix("note: "))
    if args.no_wait:
        return None  # as az's --no-wait: nothing
    return await _show(ws, spec.name)()


def _print_role(args: argparse.Namespace) -> Any:
    """``attach --print-role``: the Role and RoleBinding granting what the driver needs in
    the namespace (the context's by default), as YAML, like ``kubectl ... --dry-run -o yaml``."""
    from ..services.drivers.kubernetes.rbac import role_yaml
    from ..services.specs.flags import parse_tags
    from .output import Raw

    tags = parse_tags(getattr(args, "tag", None) or [])  # modeldeck.io/gateway: its namespace
    return Raw(role_yaml(args.namespace, args.kube_context, tags).rstrip("\n"))


async def detach(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services.api.errors import InvalidInput

    cluster = await ws.get_cluster(_the_name(args))
    if cluster.driver is DriverKind.POOL:
        raise InvalidInput(
            "name",
            args.name,
            "is a local pool: pools are deleted, not detached",
            f"modeldeck cluster delete --name {args.name}",
        )
    endpoints = [e.name for e in await ws.list_endpoints() if e.compute == args.name]
    deployments = [
        f"{d.endpoint_name}/{d.name}" for e in endpoints for d in await ws.list_deployments(e)
    ]
    where = f"namespace '{cluster.namespace}' of context '{cluster.kube_context}'"
    held = ", ".join(
        [f"endpoint(s) {', '.join(endpoints)}"] * bool(endpoints)
        + [f"deployment(s) {', '.join(deployments)}"] * bool(deployments)
    )
    if args.delete_resources:
        what = (
            f" Everything modeldeck created in {where} will be DELETED"
            + (f" ({held}), and their records forgotten." if held else ".")
            + " Nothing else on the cluster is touched."
        )
    else:
        what = (
            " modeldeck forgets it"
            + (f" and the records of {held}" if held else "")
            + f"; everything in {where} keeps running (use --delete-resources to remove it)."
        )
    confirm(args, f"The cluster '{args.name}' will be detached.{what}")
    await wait(
        await ws.detach_cluster(args.name, delete_resources=args.delete_resources),
        f"Detaching cluster {args.name}",
        no_wait=args.no_wait,
    )
    return None  # as az: nothing, --no-wait or not
