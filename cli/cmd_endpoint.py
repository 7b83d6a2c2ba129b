"""``modeldeck online-endpoint`` (alias ``endpoint``)."""

from __future__ import annotations

import argparse
import json
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..services.api.domain import AuthMode, KeyType, to_dict
from ..services.api.errors import BackendError, InvalidInput, Unauthorized
from ..services.api.workspace import Workspace
from . import shapes
from .common import confirm, warn, warner
from .output import Raw
from .progress import wait, wait_then_show


async def list_(args: argparse.Namespace, ws: Workspace) -> Any:
    scope = ws.arm_scope()
    return [shapes.endpoint(e, scope) for e in await ws.list_endpoints()]


def _show(ws: Workspace, name: str) -> Any:
    """A reader of the endpoint in az's shape (what create and update print)."""

    async def read() -> Any:
        return shapes.endpoint(await ws.get_endpoint(name), ws.arm_scope())

    return read


async def show(args: argparse.Namespace, ws: Workspace) -> Any:
    """The endpoint as az ml shows it, and ``health``: each deployment's READY x/y, error
    rate and p95 now, and whether the endpoint is Degraded (``services.api.health``); and
    ``modeldeck.rollout``: its current or last rollout (``cmd_rollout.rollout_dict``). Each
    not read when a --query does not ask for it."""
    endpoint = await ws.get_endpoint(args.name)
    out = shapes.endpoint(endpoint, ws.arm_scope())
    if not args.query or "health" in args.query:
        from ..services.api.health import endpoint_health_now, health_dict

        out["health"] = health_dict(await endpoint_health_now(ws, endpoint))
    if not args.query or "modeldeck" in args.query:  # modeldeck's own, beside az's keys
        from .cmd_rollout import show_key

        out["modeldeck"] = await show_key(ws, args.name)
    return out


async def create(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services.apply import endpoint_warnings
    from ..services.specs.endpoint import load_endpoint

    loaded = load_endpoint(args.file, args.set, name=args.name, auth_mode=args.auth_mode)
    for w in endpoint_warnings(ws, loaded):
        warner(args)(w)
    if getattr(args, "local", False):
        loaded = replace(loaded, spec=replace(loaded.spec, local=True))
    name = loaded.spec.name
    if getattr(args, "dry_run", False):
        from .cmd_deployment import dry_run_output

        return dry_run_output(args, await ws.render_manifests(loaded.spec))
    out = await wait_then_show(
        await ws.create_endpoint(loaded.spec),
        f"Creating endpoint {name}",
        args.no_wait,
        _show(ws, name),
        status=f"modeldeck online-endpoint show -n {name}",
        warn=warner(args),
    )
    await _declared_rollout(args, ws, loaded.rollout)
    return out


async def _declared_rollout(args: argparse.Namespace, ws: Workspace, spec: Any) -> None:
    """The file's ``modeldeck.rollout`` block, once the endpoint is applied: started unless
    there is nothing to start (``usecases.rollouts.start_declared`` says why on stderr)."""
    if spec is None:
        return
    if args.no_wait:
        warn(
            args,
            "the modeldeck.rollout block is not started with --no-wait: start it once the "
            f"endpoint is applied: modeldeck online-endpoint rollout -n {spec.endpoint} "
            f"-f {args.file}",
        )
        return
    from ..services.usecases.rollouts import start_declared

    await start_declared(ws, spec, args.file, warner(args))


async def update(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services.specs.document import one_read_per_file

    with one_read_per_file():  # the names, revision, spec and rollout of one version of -f
        return await _update(args, ws)


async def _update(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services import apply
    from ..services.specs.setargs import update_names

    # -n, else (with -f) the file's name: as --set leaves it, as az ml reads it
    args.name = update_names(args.file, "endpoint", args.set, {"name": ("-n/--name", args.name)})[
        "name"
    ]
    from ..services.specs.rollout import declared_rollout

    # the file's (or --set's) modeldeck.rollout: checked before anything is sent
    declared = declared_rollout(args.file, args.set, name=args.name)
    try:
        handle = await apply.update_endpoint_from(
            ws,
            args.name,
            path=args.file,
            overrides=args.set,
            traffic=args.traffic,
            rest=args.rest,
            mirror_traffic=args.mirror_traffic,
            warn=warner(args),
            if_revision=args.if_revision or None,
            retry_stale=False,
            force=args.force,
        )
    except InvalidInput as exc:
        if declared is None or exc.field != "update":
            raise
        handle = None  # the file changes nothing of the endpoint but declares a rollout
    out = (
        await wait_then_show(
            handle,
            f"Updating endpoint {args.name}",
            args.no_wait,
            _show(ws, args.name),
            status=f"modeldeck online-endpoint show -n {args.name}",
            warn=warner(args),
        )
        if handle is not None
        else await _show(ws, args.name)()
    )
    await _declared_rollout(args, ws, declared)
    return out


async def delete(args: argparse.Namespace, ws: Workspace) -> Any:
    await ws.get_endpoint(args.name)  # NotFound before asking
    deps = [d.name for d in await ws.list_deployments(args.name)]
    also = f" with its deployments ({', '.join(deps)})" if deps else ""
    confirm(args, f"The endpoint '{args.name}'{also} will be deleted.")
    await wait(
        await ws.delete_endpoint(args.name), f"Deleting endpoint {args.name}", no_wait=args.no_wait
    )
    return None  # as az: nothing, --no-wait or not


def _error_detail(text: str) -> tuple[str, str | None]:
    """The message (and fix) of an error answer: the gateway's ``{"error": {...}}`` read
    out, anything else (a scoring script's own answer) as it is, cut to 500 characters."""
    try:
        err = json.loads(text).get("error")
    except (ValueError, AttributeError):
        err = None
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        fix = err.get("fix")
        return err["message"], fix if isinstance(fix, str) and fix else None
    return text.strip()[:500], None


def read_request_file(raw: str) -> bytes:
    """The request body: a regular file (a device or FIFO would never end, or hang) no
    bigger than the gateway's body limit, read at most to that limit."""
    from ..services.inputs import _human, _kind_of
    from ..services.local.controlplane.daemon import max_body_bytes

    field, fix = "--request-file", "give the path of a regular file holding the request body"
    limit = max_body_bytes()
    try:  # O_NONBLOCK: opening a FIFO with no writer does not wait
        fd = os.open(Path(raw).expanduser(), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidInput(field, raw, f"cannot be read ({exc.strerror or exc})", fix) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else _kind_of(st.st_mode)
            raise InvalidInput(field, raw, f"is {kind}, not a regular file", fix)
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, min(1 << 20, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if (n := max(st.st_size, size)) > limit:  # refused before reading when its size says so
        raise InvalidInput(
            field,
            raw,
            f"is {_human(n)} ({n:,} bytes), over the gateway's request body limit of "
            f"{_human(limit)} ({limit:,} bytes)",
            "send a smaller batch, or raise the limit: MODELDECK_GATEWAY_MAX_BODY_MB=20 (or "
            "gateway_max_body_mb under [daemon] in config.toml), then restart the control "
            "plane (modeldeck daemon stop)",
        )
    return b"".join(chunks)


async def invoke(args: argparse.Namespace, ws: Workspace) -> Any:
    body = read_request_file(args.request_file)
    result = await ws.invoke(
        args.name, body, deployment=args.deployment_name, via=getattr(args, "via", None)
    )
    if result.via:  # not the scoring URI: say which path and why
        warn(args, f"invoked through {result.via}")
    text = result.body.decode("utf-8", "replace")
    if result.status >= 400:
        detail, gateway_fix = _error_detail(text)
        who = f" (deployment {result.deployment})" if result.deployment else ""
        if result.status == 401:
            raise Unauthorized(
                f"the endpoint refused the request: HTTP 401{who}: {detail}",
                fix=gateway_fix
                or f"check the endpoint's auth mode and key: modeldeck online-endpoint get-credentials -n {args.name}",
            )
        raise BackendError(
            f"the endpoint answered HTTP {result.status}{who}: {detail}",
            # the gateway's own fix when it refused the request itself (no traffic, 413, 429)
            fix=gateway_fix
            or f"see the deployment's log: modeldeck online-deployment get-logs -n {result.deployment or 'NAME'} -e {args.name}",
        )
    try:
        return json.loads(text)
    except ValueError:
        return Raw(text.rstrip("\n"))


async def get_credentials(args: argparse.Namespace, ws: Workspace) -> Any:
    endpoint = await ws.get_endpoint(args.name)
    if endpoint.auth_mode is AuthMode.KEY:
        return to_dict(await ws.get_keys(args.name))
    if endpoint.auth_mode is AuthMode.AML_TOKEN:
        return shapes.token(await ws.get_token(args.name))
    raise InvalidInput(
        "auth_mode",
        endpoint.auth_mode.value,
        f"the endpoint '{args.name}' has no credentials (auth_mode none)",
        "requests need no Authorization header; create an endpoint with auth_mode key to use keys",
    )


async def regenerate_keys(args: argparse.Namespace, ws: Workspace) -> Any:
    try:
        key_type = KeyType.parse(args.key_type)
    except ValueError:
        raise InvalidInput(
            "key_type", args.key_type, "must be primary or secondary", "pass --key-type primary"
        ) from None
    endpoint = await ws.get_endpoint(args.name)
    if endpoint.auth_mode is not AuthMode.KEY:
        raise InvalidInput(
            "auth_mode",
            endpoint.auth_mode.value,
            f"the endpoint '{args.name}' does not use keys",
            "keys exist only for auth_mode key; aml_token endpoints use get-credentials for a token",
        )
    await ws.regenerate_keys(args.name, key_type)  # type: ignore[arg-type]
    return None


async def history(args: argparse.Namespace, ws: Workspace) -> Any:
    """``online-endpoint history`` (not in az ml): the rows of ``services.audit``; what the
    back end cannot show is said on stderr."""
    from ..services import audit

    found = await ws.get_history(args.name)
    if found.missing:
        warn(args, found.missing)
    return audit.rows(found)
