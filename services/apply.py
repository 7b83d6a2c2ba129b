"""Apply a spec to a workspace: the use cases the CLI and the TUI share.

:mod:`services.specs` reads YAML into domain specs and never calls a back end; this module
does: it checks where a deployment goes (the warnings and refusals that depend on the
endpoint's cluster), registers an inline model, creates, and updates with a
read-modify-write that is computed again on fresh state after a Conflict that leaves the
user's own fields alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .api import validation
from .api.domain import DeploymentSpec, DriverKind, EndpointPatch, Model, ModelSpec
from .api.errors import Conflict, InvalidInput, ModeldeckError
from .specs.deployment import LoadedDeployment, load_deployment, updated_deployment
from .specs.document import file_revision
from .specs.endpoint import LoadedEndpoint, load_endpoint
from .specs.environment import no_code_environment
from .specs.flags import mirror_from_flag, traffic_from_flags
from .specs.schema import BackendWarnings
from .specs.setargs import Override, as_edit, set_paths, split_key_value

if TYPE_CHECKING:
    from .api.workspace import OperationHandle, Workspace

Warn = Callable[[str], None]


def _emit(warnings: Iterable[str], warn: Warn | None) -> None:
    if warn is not None:
        for w in warnings:
            warn(w)


def unsent(caps: frozenset[str], backend_warnings: BackendWarnings) -> list[str]:
    """The warnings of the keys given that a back end with these capabilities
    (``Workspace.capabilities``) does not send (``Key.sent_by``)."""
    return [warning for cap, warning in backend_warnings if cap not in caps]


def _held(caps: frozenset[str], loaded: LoadedEndpoint | LoadedDeployment) -> list[str]:
    """The load warnings, and those of the keys a back end with ``caps`` does not send."""
    return [*loaded.warnings, *unsent(caps, loaded.backend_warnings)]


def endpoint_warnings(ws: Workspace, loaded: LoadedEndpoint) -> list[str]:
    """The load warnings that hold on this back end."""
    return _held(ws.capabilities(), loaded)


#: ``deployment_warnings(endpoint=UNREAD)``: the endpoint is read there, if it is needed
UNREAD: Any = object()


async def deployment_warnings(
    ws: Workspace, loaded: LoadedDeployment, *, endpoint: Any = UNREAD
) -> list[str]:
    """The load warnings that hold where the deployment goes (``endpoint``: the deployment's
    endpoint as the caller read it, None where it does not exist; by default read here when
    the warnings depend on it): the keys this back end does
    not send (:func:`unsent`) and ``pool_warnings`` only when
    the endpoint's cluster is known to be a local pool (a Kubernetes cluster or Azure ML
    uses the environment; an endpoint or cluster that cannot be looked up gets no guess).

    The first of ``pool_errors`` (what modeldeck's own resolution of the environment
    refuses, such as a conda-only package) is raised where modeldeck builds the
    environment, a local pool or a Kubernetes cluster, before an inline model is
    registered; Azure ML builds it with conda and takes it.

    The local workspace's managed capacity (an endpoint without compute) sizes replicas by
    ``instance_type``: no warning that it is not sent there."""
    caps = ws.capabilities()
    warnings = _held(caps, loaded)
    if not (
        loaded.pool_warnings
        or loaded.kubernetes_warnings
        or loaded.pool_errors
        or unsent(caps, loaded.backend_warnings)
    ):
        return warnings
    try:
        if endpoint is UNREAD:
            endpoint = await ws.get_endpoint(loaded.spec.endpoint_name)
        if endpoint is None or not endpoint.cluster:  # missing, or Azure ML's managed compute
            return warnings
        cluster = await ws.get_cluster(endpoint.cluster)
    except ModeldeckError:
        return warnings
    if cluster.managed:
        warnings = _held(caps | {"deployment.instance_type"}, loaded)
    if loaded.pool_errors and cluster.driver in (DriverKind.POOL, DriverKind.KUBERNETES):
        raise loaded.pool_errors[0]  # refused before anything (an inline model) is registered
    if cluster.driver is DriverKind.POOL:
        pool = loaded.pool_warnings
        if cluster.managed:  # the managed capacity is a pool here, but not one the user made
            pool = [w.replace("on local pools", "on the managed capacity") for w in pool]
        return [*warnings, *pool]
    if cluster.driver is DriverKind.KUBERNETES:
        return [*warnings, *loaded.kubernetes_warnings]
    return warnings


async def create_endpoint_from_file(
    ws: Workspace,
    path: str | Path | None,
    overrides: Iterable[Override] = (),
    *,
    name: str | None = None,
    auth_mode: str | None = None,
    warn: Warn | None = None,
) -> OperationHandle:
    loaded = load_endpoint(path, overrides, name=name, auth_mode=auth_mode)
    _emit(endpoint_warnings(ws, loaded), warn)
    return await ws.create_endpoint(loaded.spec)


async def _existing_deployments(ws: Workspace, endpoint: str) -> list[str]:
    await ws.get_endpoint(endpoint)  # NotFound when it does not exist
    return [d.name for d in await ws.list_deployments(endpoint)]


async def _no_code_registered(ws: Workspace, loaded: LoadedDeployment) -> LoadedDeployment:
    """A deployment with no code_configuration naming a registered model: refused unless the
    model is an ``mlflow_model``; then, where modeldeck builds the environment (a local pool,
    a Kubernetes cluster), the environment from the model's files (the workspace's copy)."""
    ref = loaded.no_code_model
    if ref is None:
        return loaded
    name, version = validation.parse_model_ref(ref)
    model = await ws.get_model(name, validation.integer(version, "model", 1) if version else None)
    if model.type != "mlflow_model":
        raise InvalidInput(
            "code_configuration",
            None,
            f"is required unless the model is an mlflow_model (model {model.ref} is a "
            f"{model.type})",
            "add code_configuration: {code: ./src, scoring_script: score.py}, or register the "
            "model with --type mlflow_model (a folder with an MLmodel file)",
            message=f"the deployment needs code_configuration (code and scoring_script): model "
            f"{model.ref} is a {model.type}, and only an mlflow_model is served without one",
        )
    try:
        endpoint = await ws.get_endpoint(loaded.spec.endpoint_name)
        driver = (await ws.get_cluster(endpoint.cluster)).driver if endpoint.cluster else None
    except ModeldeckError:  # a compute Azure ML knows and modeldeck does not list
        driver = None
    if driver not in (DriverKind.POOL, DriverKind.KUBERNETES):
        return dataclasses.replace(loaded, no_code_model=None)  # Azure ML builds it
    names = {"endpoint_name": loaded.spec.endpoint_name, "name": loaded.spec.name}
    inline, _, errors = no_code_environment(
        Path(model.path), f"model {model.ref} (MLflow no-code)", names, "model"
    )
    if inline is None:
        raise errors[0]
    if errors and driver is DriverKind.POOL:
        raise errors[0]
    spec = dataclasses.replace(loaded.spec, environment_inline=inline)
    return dataclasses.replace(loaded, spec=spec, no_code_model=None)


def refuse_remote(ws: Workspace, values: Iterable[tuple[str, str | None]]) -> None:
    """A model path or code folder (field, value) naming a remote asset (``azureml:NAME:V``,
    ``azureml://datastores/...``, a URL) is refused by a back end that does not declare
    "assets.remote" (the local workspace), naming it and the fix, before anything is sent."""
    if "assets.remote" in ws.capabilities():
        return
    for field, value in values:
        if value and validation.is_remote_asset(value):
            raise validation.remote_refused(field, value, ws.kind)


async def create_model(ws: Workspace, spec: ModelSpec) -> Model:
    """``model create``: a remote path where the back end registers it as given."""
    refuse_remote(ws, [("path", spec.path)])
    return await ws.create_model(spec)


async def _register(ws: Workspace, loaded: LoadedDeployment) -> tuple[DeploymentSpec, Any]:
    """Register an inline model; return the spec pointing at it and the model (or None). A
    registered model with no code_configuration is checked first (``_no_code_registered``);
    remote assets where the back end does not take them before either (``refuse_remote``)."""
    inline = loaded.model_to_register
    refuse_remote(
        ws,
        [
            ("model.path", inline.path if inline is not None else None),
            ("code_configuration.code", loaded.spec.code_configuration.code),
        ],
    )
    loaded = await _no_code_registered(ws, loaded)
    if loaded.model_to_register is None:
        return loaded.spec, None
    model = await ws.create_model(loaded.model_to_register)
    return dataclasses.replace(loaded.spec, model=model.ref), model


async def create_deployment(
    ws: Workspace,
    loaded: LoadedDeployment,
    *,
    all_traffic: bool = False,
    skip_script_validation: bool = False,
    existing: list[str] | None = None,
) -> OperationHandle:
    """Create a loaded deployment: check what can be checked, register an inline model, create.

    Checks before anything is written: the endpoint exists, the deployment does not, and the
    endpoint has room for it (``existing``: its deployments' names, when the caller has just
    read them from the endpoint it found). If the create call itself is refused, an inline
    model registered for it is removed again, so nothing changes.
    """
    spec = loaded.spec
    if existing is None:
        existing = await _existing_deployments(ws, spec.endpoint_name)
    if spec.name in existing:
        raise Conflict.deployment_exists(
            spec.name,
            spec.endpoint_name,
            fix=f"update it with: modeldeck online-deployment update -n {spec.name} "
            f"-e {spec.endpoint_name} -f FILE, or choose another name",
        )
    validation.deployment_count(existing, spec.name)
    spec, model = await _register(ws, loaded)
    try:
        return await ws.create_deployment(
            spec, all_traffic=all_traffic, skip_script_validation=skip_script_validation
        )
    except ModeldeckError:
        if model is not None:
            with contextlib.suppress(ModeldeckError):
                await ws.delete_model(model.name, model.version)
        raise


async def create_deployment_from_file(
    ws: Workspace,
    path: str | Path,
    overrides: Iterable[Override] = (),
    *,
    name: str | None = None,
    endpoint_name: str | None = None,
    all_traffic: bool = False,
    warn: Warn | None = None,
) -> OperationHandle:
    loaded = load_deployment(path, overrides, name=name, endpoint_name=endpoint_name)
    if warn is not None:
        _emit(await deployment_warnings(ws, loaded), warn)
    return await create_deployment(ws, loaded, all_traffic=all_traffic)


#: how many times a read-modify-write is tried again on fresh state after a Conflict that
#: does not touch the user's own change
CONFLICT_RETRIES = 5
#: how long a retry waits for someone else's rollout of the same deployment to end (s)
BUSY_WAIT_S = 300.0


def _pinned(exc: Conflict, show: str, flag: str) -> Conflict:
    """A Conflict on a revision the user named: refused as is, never retried."""
    return Conflict(
        exc.message,
        fix=f"see what changed ({show} -o yaml), then update with its revision ({flag} REV)",
        **exc.details,
    )


def _retryable(exc: Conflict, touched: Iterable[str] | None) -> bool:
    """A Conflict over a change that leaves the user's own fields alone."""
    from .api import revisions

    if exc.details.get("busy") not in (None, "Updating", "Creating"):
        return False  # being deleted
    changed = revisions.conflict_paths(exc)
    return changed is not None and not revisions.overlapping(touched, changed)


def _overlap_error(exc: Conflict, touched: Iterable[str] | None, show: str) -> Conflict:
    """The Conflict as the user sees it when someone else changed what they change too."""
    from .api import revisions

    both = revisions.overlapping(touched, revisions.conflict_paths(exc) or [])
    if not both:
        return exc
    said = exc.message.removesuffix("; this change was not applied")  # said once, below
    return Conflict(
        f"{said}; your change touches {', '.join(both)} too, so it was not applied",
        fix=f"see the new value ({show}) and repeat your command if it still applies",
        **exc.details,
    )


async def _settled(read: Callable[[], Any], deadline: float) -> None:
    """Wait until someone else's operation on the record has ended (bounded)."""
    import asyncio
    import time

    from .api.domain import ProvisioningState

    delay = 0.05
    busy = (ProvisioningState.CREATING, ProvisioningState.UPDATING)
    while (await read()).provisioning_state in busy and time.monotonic() < deadline:
        await asyncio.sleep(delay)
        delay = min(1.0, delay * 2)


async def update_deployment_from(
    ws: Workspace,
    endpoint: str,
    name: str,
    path: str | Path | None = None,
    overrides: Iterable[Override] = (),
    *,
    warn: Warn | None = None,
    if_revision: str | None = None,
    retry_stale: bool = True,
    skip_script_validation: bool = False,
) -> OperationHandle:
    """``update``: from a file (the whole spec), or the current spec with --set applied.

    The full spec is sent either way, with the revision it was computed from. When someone
    else changed the deployment meanwhile (Conflict), it is read again and the ``--set``
    applied on the fresh state, as long as the other change left the fields it sets alone
    (a file sets them all); otherwise the Conflict, naming both, is raised.

    ``if_revision`` is the revision the change was computed from when that was earlier than
    this call (a dashboard prompt opened on it; else the file's ``revision:``): the first
    write carries it. With ``retry_stale=False`` (the user named it: ``--if-revision``) a
    Conflict on it is raised as is, never retried on the fresh state.
    """
    import time

    overrides = list(overrides)
    if path is None and not overrides:
        raise InvalidInput(
            "update",
            None,
            "nothing to change",
            "pass -f FILE or --set KEY=VALUE (e.g. --set instance_count=2)",
        )
    touched = None if path is not None else set_paths(overrides)
    show = f"modeldeck online-deployment show -e {endpoint} -n {name}"
    if if_revision is None and path is not None:
        if_revision = file_revision(path, "deployment")
    deadline = time.monotonic() + BUSY_WAIT_S
    for attempt in range(CONFLICT_RETRIES + 1):
        current = await ws.get_deployment(endpoint, name)
        if path is not None:
            loaded = load_deployment(
                path, overrides, name=name, endpoint_name=endpoint, update=True
            )
        else:
            loaded = updated_deployment(current.spec, overrides)
        if warn is not None and attempt == 0:
            _emit(await deployment_warnings(ws, loaded), warn)
        spec, model = await _register(ws, loaded)
        sent = (if_revision if attempt == 0 else None) or current.revision or None
        try:
            return await ws.update_deployment(
                spec, if_revision=sent, skip_script_validation=skip_script_validation
            )
        except ModeldeckError as exc:
            if model is not None:
                with contextlib.suppress(ModeldeckError):
                    await ws.delete_model(model.name, model.version)
            if not isinstance(exc, Conflict):
                raise
            if if_revision is not None and not retry_stale:
                raise _pinned(exc, show, "--if-revision") from None
            if not _retryable(exc, touched):
                raise _overlap_error(exc, touched, show) from None
            if attempt == CONFLICT_RETRIES or time.monotonic() > deadline:
                raise Conflict(
                    f"{exc.message} (tried {attempt + 1} times; it keeps changing)",
                    fix=f"see it ({show}), then repeat the command",
                    **exc.details,
                ) from None
            if exc.details.get("busy"):
                await _settled(lambda: ws.get_deployment(endpoint, name), deadline)
    raise AssertionError("unreachable")


async def update_endpoint_from(
    ws: Workspace,
    name: str,
    *,
    path: str | Path | None = None,
    overrides: Iterable[Override] = (),
    traffic: str | None = None,
    rest: str | None = None,
    mirror_traffic: str | None = None,
    warn: Warn | None = None,
    if_revision: str | None = None,
    retry_stale: bool = True,
    force: bool = False,
    confirm: str = "--force",
) -> OperationHandle:
    """``online-endpoint update``. Traffic changes only when asked (--traffic/--rest, or a
    ``traffic:`` in the file): an update never resets it.

    A change that gives a deployment that is not ready or failing more traffic (live or
    mirrored) is refused unless ``force`` (``health.traffic_risks_now``; ``confirm`` names how
    the user confirms it, in the refusal's fix).

    Sent with the revision the change was computed from; on a Conflict over other fields
    (someone else's tags while this sets traffic) the change is computed again on the fresh
    state, as :func:`update_deployment_from` does. ``if_revision``/``retry_stale`` (or the
    file's ``revision:``) as there.
    """
    overrides = list(overrides)
    show = f"modeldeck online-endpoint show -n {name}"
    if if_revision is None and path is not None:
        if_revision = file_revision(path, "endpoint")
    for attempt in range(CONFLICT_RETRIES + 1):
        current = await ws.get_endpoint(name)
        deps = await ws.list_deployments(name)
        deployments = [d.name for d in deps]
        changes = _endpoint_changes(
            current,
            deployments,
            path=path,
            overrides=overrides,
            traffic=traffic,
            rest=rest,
            mirror_traffic=mirror_traffic,
            warn=warn if attempt == 0 else None,
            caps=ws.capabilities(),
        )
        if not force:
            from .api.health import traffic_risks_now, unconfirmed_traffic

            risks = await traffic_risks_now(
                ws, current, deps, changes.get("traffic"), changes.get("mirror_traffic")
            )
            if risks:
                raise unconfirmed_traffic(name, risks, confirm)
        touched = _endpoint_touched(current, changes, whole_tags=path is not None)
        sent = (if_revision if attempt == 0 else None) or current.revision or None
        try:
            return await ws.update_endpoint(name, EndpointPatch(**changes), if_revision=sent)
        except Conflict as exc:
            if if_revision is not None and not retry_stale:
                raise _pinned(exc, show, "--if-revision") from None
            if not _retryable(exc, touched):
                raise _overlap_error(exc, touched, show) from None
            if attempt == CONFLICT_RETRIES:
                raise Conflict(
                    f"{exc.message} (tried {attempt + 1} times; it keeps changing)",
                    fix=f"see it ({show}), then repeat the command",
                    **exc.details,
                ) from None
    raise AssertionError("unreachable")


def _endpoint_touched(current: Any, changes: Mapping[str, Any], *, whole_tags: bool) -> list[str]:
    """The paths an endpoint change touches: a traffic map as a whole (its numbers add up
    together), tags one by one when --set changes some of them."""
    out = []
    for key, value in changes.items():
        if key == "tags" and not whole_tags:
            old = dict(current.tags)
            out += [
                f"tags.{k}" for k in sorted(set(old) | set(value)) if old.get(k) != value.get(k)
            ]
        else:
            out.append(key)
    return out


def _endpoint_changes(
    current: Any,
    deployments: list[str],
    *,
    path: str | Path | None,
    overrides: list[Override],
    traffic: str | None,
    rest: str | None,
    mirror_traffic: str | None,
    warn: Warn | None,
    caps: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """What ``online-endpoint update`` changes, computed on the endpoint as read; ``caps``:
    the back end's capabilities (the keys it sends, the others warned about)."""
    name = current.name
    changes: dict[str, Any] = {}
    overrides = list(overrides)
    control = [o for o in overrides if as_edit(o).set_key == "control"]
    if control:  # the control deployment (the others are treatments): --set control=NAME
        overrides = [o for o in overrides if o not in control]
        value = str(split_key_value(as_edit(control[-1]).args[0])[1]).strip()
        if value.lower() in ("", "none", "null"):
            changes["control"] = ""  # no control any more
        elif value not in deployments:
            raise InvalidInput(
                "control",
                value,
                f"there is no deployment '{value}' on this endpoint",
                "existing deployments: " + (", ".join(deployments) or "none yet"),
                message=f"{as_edit(control[-1])}: there is no deployment '{value}' on this endpoint",
            )
        else:
            changes["control"] = value
    if path is not None or overrides:
        base = {
            "name": current.name,
            "compute": current.compute,
            "auth_mode": current.auth_mode.value,
            "description": current.description,
            "tags": dict(current.tags),
        }
        loaded = load_endpoint(path, overrides, name=name, base=None if path else base)
        _emit(_held(caps, loaded), warn)
        spec = loaded.spec
        for key, old, new in (
            ("auth_mode", current.auth_mode, spec.auth_mode),
            ("compute", current.compute, spec.compute),
        ):
            if key in loaded.given and old != new:
                raise InvalidInput(
                    key,
                    str(new),
                    f"cannot be changed by update (the endpoint has {old})",
                    "delete the endpoint and create it again with the new value",
                )
        if "description" in loaded.given:
            changes["description"] = spec.description
        if "tags" in loaded.given:
            changes["tags"] = spec.tags
        if "public_network_access" in loaded.given and "endpoint.public_network_access" in caps:
            changes["public_network_access"] = spec.public_network_access
        if "traffic" in loaded.given and traffic is None and rest is None:
            changes["traffic"] = validation.traffic(
                {**{d: 0 for d in deployments}, **spec.traffic}, deployments
            )
        if "mirror_traffic" in loaded.given and mirror_traffic is None:
            changes["mirror_traffic"] = dict(spec.mirror_traffic)
    full = traffic_from_flags(traffic, rest, deployments)
    if full is not None:
        changes["traffic"] = full
    if mirror_traffic is not None:
        live = changes.get("traffic", current.traffic)
        changes["mirror_traffic"] = mirror_from_flag(mirror_traffic, live, deployments)
    elif "traffic" in changes and current.mirror_traffic:
        # a mirror may not go to a deployment that now takes live traffic: say so now
        try:
            validation.mirror_traffic(current.mirror_traffic, changes["traffic"], deployments)
        except InvalidInput as exc:
            target = next(iter(current.mirror_traffic))
            raise InvalidInput(
                exc.field,
                exc.value,
                exc.rule,
                f'stop the mirror in the same command: --mirror-traffic "{target}=0"',
                message=f"{exc.message} (the endpoint mirrors {current.mirror_traffic[target]}% "
                f"of requests to '{target}')",
            ) from None
    if not changes:
        raise InvalidInput(
            "update",
            None,
            "nothing to change",
            'pass --traffic "blue=90 green=10", --mirror-traffic, -f FILE, --set control=NAME '
            "or --set KEY=VALUE",
        )
    return changes
