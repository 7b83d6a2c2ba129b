"""``modeldeck online-deployment`` (alias ``deployment``)."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from typing import Any

from ..services.api.domain import LogLine
from ..services.api.errors import InvalidInput
from ..services.api.workspace import Workspace
from . import shapes
from .common import confirm, warner
from .output import Raw
from .progress import wait, wait_then_show


async def create(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services import apply
    from ..services.specs.deployment import load_deployment

    loaded = load_deployment(args.file, args.set, name=args.name, endpoint_name=args.endpoint_name)
    spec = loaded.spec
    local = getattr(args, "local", False)
    # --local: the endpoint read once, for the warnings and for creating it if missing
    endpoint = await _endpoint_or_none(ws, spec.endpoint_name) if local else apply.UNREAD
    for w in await apply.deployment_warnings(ws, loaded, endpoint=endpoint):
        warner(args)(w)
    if getattr(args, "dry_run", False):
        objects = await ws.render_manifests(
            spec, all_traffic=args.all_traffic, model=loaded.model_to_register
        )
        return dry_run_output(args, objects)
    all_traffic = args.all_traffic
    existing = None  # the endpoint's deployments, when read here (the create checks them)
    if local:
        existing = await _local_endpoint(args, ws, spec.endpoint_name, endpoint is not None)
        all_traffic = all(n == spec.name for n in existing) or all_traffic
    if args.no_wait and args.all_traffic and "operations.detached" not in ws.capabilities():
        warner(args)(
            "--all-traffic moves traffic once the deployment has succeeded, and --no-wait "
            "returns before that on this workspace: run `modeldeck online-endpoint update "
            f'-n {spec.endpoint_name} --traffic "{spec.name}=100"` when it is ready'
        )
    handle = await apply.create_deployment(
        ws,
        loaded,
        all_traffic=all_traffic,
        skip_script_validation=args.skip_script_validation,
        existing=existing,
    )
    return await wait_then_show(
        handle,
        f"Creating deployment {spec.endpoint_name}/{spec.name}",
        args.no_wait,
        _show(ws, spec.endpoint_name, spec.name),
        status=_status(spec.endpoint_name, spec.name),
        warn=warner(args),
    )


def _status(endpoint: str, name: str) -> str:
    return f"modeldeck online-deployment show -e {endpoint} -n {name}"


def _show(ws: Workspace, endpoint: str, name: str) -> Any:
    """A reader of the deployment in az's shape (``type`` from its endpoint's kind)."""

    async def read() -> Any:
        kind = (await ws.get_endpoint(endpoint)).kind
        return shapes.deployment(await ws.get_deployment(endpoint, name), ws.arm_scope(), kind)

    return read


async def _endpoint_or_none(ws: Workspace, endpoint: str) -> Any:
    """The endpoint, or None where it does not exist."""
    from ..services.api.errors import NotFound

    try:
        return await ws.get_endpoint(endpoint)
    except NotFound:
        return None


async def _local_endpoint(
    args: argparse.Namespace, ws: Workspace, endpoint: str, exists: bool
) -> list[str]:
    """``--local`` as az ml has it on ``online-deployment create``: the endpoint is created
    first if it does not exist; the names of its deployments, read once (the create checks
    them too). A deployment that is (or will be) the only one takes its traffic (az ml's
    local endpoint routes to its only deployment: azext_mlv2 _online_deployment_params,
    "Only one deployment per endpoint")."""
    if not exists:
        from ..services.apply import endpoint_warnings
        from ..services.specs.endpoint import load_endpoint

        loaded = load_endpoint(None, [], name=endpoint)
        for w in endpoint_warnings(ws, loaded):
            warner(args)(w)
        spec = replace(loaded.spec, local=True)  # its owner's requests need no key
        await wait(await ws.create_endpoint(spec), f"Creating endpoint {endpoint}")
        return []
    return [d.name for d in await ws.list_deployments(endpoint)]


async def _route_to_sole(ws: Workspace, endpoint: str, name: str) -> None:
    """After ``update --local``: the endpoint's only deployment takes all its traffic (as
    :func:`_local_endpoint` decides it; the endpoint exists, its deployment was just updated)."""
    from ..services.api.domain import EndpointPatch

    if any(d.name != name for d in await ws.list_deployments(endpoint)):
        return
    ep = await ws.get_endpoint(endpoint)
    if ep.traffic.get(name) != 100:  # sent with the revision read: a change since is kept
        await wait(
            await ws.update_endpoint(
                endpoint, EndpointPatch(traffic={name: 100}), if_revision=ep.revision or None
            ),
            f"Routing endpoint {endpoint} to {name}",
        )


async def show(args: argparse.Namespace, ws: Workspace) -> Any:
    return await _show(ws, args.endpoint_name, args.name)()


async def list_(args: argparse.Namespace, ws: Workspace) -> Any:
    if args.endpoint_name:
        kinds = {args.endpoint_name: (await ws.get_endpoint(args.endpoint_name)).kind}
    else:
        kinds = {e.name: e.kind for e in await ws.list_endpoints()}
    scope = ws.arm_scope()
    return [
        shapes.deployment(d, scope, kinds.get(d.endpoint_name, "K8s"))
        for d in await ws.list_deployments(args.endpoint_name)
    ]


def dry_run_output(args: argparse.Namespace, objects: list[dict]) -> Any:
    """``--dry-run``: the manifests, as ``kubectl apply -f`` reads them (multi-document YAML
    with -o yaml; a v1 List otherwise)."""
    if args.output in ("yaml", "yamlc") and not args.query:
        from ..services.drivers.kubernetes.manifests import to_yaml

        return Raw(to_yaml(objects).rstrip("\n"))
    return {"apiVersion": "v1", "kind": "List", "items": objects}


async def _dry_run_update(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services import apply
    from ..services.specs.deployment import load_deployment, updated_deployment

    current = await ws.get_deployment(args.endpoint_name, args.name)
    if args.file is not None:
        loaded = load_deployment(
            args.file, args.set, name=args.name, endpoint_name=args.endpoint_name, update=True
        )
    else:
        if not list(args.set or ()):
            raise InvalidInput(
                "update",
                None,
                "nothing to change",
                "pass -f FILE or --set KEY=VALUE (e.g. --set instance_count=2)",
            )
        loaded = updated_deployment(current.spec, args.set)
    for w in await apply.deployment_warnings(ws, loaded):
        warner(args)(w)
    objects = await ws.render_manifests(loaded.spec, update=True, model=loaded.model_to_register)
    return dry_run_output(args, objects)


async def update(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services.specs.document import one_read_per_file

    with one_read_per_file():  # the names, revision and spec of one version of -f
        return await _update(args, ws)


async def _update(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services import apply
    from ..services.specs.deployment import deployment_names

    # -n/-e, else (with -f) the file's names as --set leaves them, as az ml reads them
    args.endpoint_name, args.name = deployment_names(
        args.file, args.set, name=args.name, endpoint_name=args.endpoint_name
    )
    if getattr(args, "dry_run", False):
        return await _dry_run_update(args, ws)
    handle = await apply.update_deployment_from(
        ws,
        args.endpoint_name,
        args.name,
        args.file,
        args.set,
        warn=warner(args),
        if_revision=args.if_revision or None,
        retry_stale=False,
        skip_script_validation=args.skip_script_validation,
    )
    label = f"Updating deployment {args.endpoint_name}/{args.name}"
    if getattr(args, "local", False):  # never with --no-wait (common.local_profile)
        endpoint, _, name = (await wait(handle, label)).target.partition("/")
        await _route_to_sole(ws, endpoint, name)
        return await _show(ws, endpoint, name)()
    return await wait_then_show(
        handle,
        label,
        args.no_wait,
        _show(ws, args.endpoint_name, args.name),
        status=_status(args.endpoint_name, args.name),
        warn=warner(args),
    )


async def delete(args: argparse.Namespace, ws: Workspace) -> Any:
    await ws.get_deployment(args.endpoint_name, args.name)
    confirm(
        args, f"The deployment '{args.name}' of endpoint '{args.endpoint_name}' will be deleted."
    )
    await wait(
        await ws.delete_deployment(args.endpoint_name, args.name),
        f"Deleting deployment {args.endpoint_name}/{args.name}",
        no_wait=args.no_wait,
    )
    return None  # as az: nothing, --no-wait or not


def format_log_line(line: LogLine) -> str:
    """``<time>Z <replica> | <text>``; a line without a replica (Azure ML's) is printed as
    the service gave it, as az ml prints it: its text carries its own time already."""
    if not line.replica:
        return line.text
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(line.ts))
    return f"{stamp}Z {line.replica} | {line.text}"


async def get_logs(args: argparse.Namespace, ws: Workspace) -> Any:
    if args.lines < 0:
        raise InvalidInput("lines", args.lines, "must be 0 or more", "pass --lines 50")
    since = None
    if getattr(args, "since", None) is not None:
        from .since import parse_since

        since = parse_since(args.since, time.time())
    from ..services.api import validation

    container = validation.log_container(args.container)
    await ws.get_deployment(args.endpoint_name, args.name)
    if not args.follow:
        lines = await ws.get_logs(
            args.endpoint_name, args.name, lines=args.lines, since=since, container=container
        )
        return Raw("\n".join(format_log_line(x) for x in lines)) if lines else None
    stream = ws.stream_logs(
        args.endpoint_name,
        args.name,
        lines=args.lines,
        follow=True,
        since=since,
        container=container,
    )
    async for line in stream:
        sys.stdout.write(format_log_line(line) + "\n")
        sys.stdout.flush()
    return None
