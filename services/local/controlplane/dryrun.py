"""``--dry-run``: the Kubernetes manifests a create or update would apply, after the same
checks as the real command (:class:`.admission.Admission`'s ``endpoint`` and
``deployment``); nothing is applied or recorded, and no key is printed."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...api.domain import DeploymentSpec, DriverKind, EndpointSpec, ModelSpec
from ...api.errors import BackendError, InvalidInput
from ...drivers.base import DeploymentRuntime, RendersManifests

if TYPE_CHECKING:
    from .engine import Engine


def _render_driver(engine: Engine, cluster: str) -> RendersManifests:
    """The driver of a cluster whose manifests ``--dry-run`` prints (Kubernetes only)."""
    row = engine.cluster_row(cluster)
    if row.spec.driver is not DriverKind.KUBERNETES:
        raise InvalidInput(
            "--dry-run",
            True,
            f"prints the Kubernetes manifests that would be applied; cluster '{cluster}' "
            "is a local pool (its replicas are processes on this host, with no manifests)",
            "run without --dry-run, or use an endpoint on an attached Kubernetes cluster",
        )
    driver = engine.driver(cluster)
    if not isinstance(driver, RendersManifests):
        raise BackendError(f"cluster '{cluster}': its driver cannot render manifests")
    return driver


async def render_endpoint(engine: Engine, spec: EndpointSpec) -> list[dict[str, Any]]:
    """``online-endpoint create --dry-run``: the endpoint's manifests (keys redacted)."""
    spec = engine.admission.endpoint(spec)
    if not spec.compute:  # a managed endpoint: replicas on this host, nothing to render
        raise InvalidInput(
            "--dry-run",
            True,
            "prints the Kubernetes manifests that would be applied; an endpoint without "
            "compute runs on the workspace's managed capacity (replica processes on this "
            "host, with no manifests)",
            "run without --dry-run, or name a Kubernetes cluster: --set compute=NAME",
        )
    if engine.store.cluster(spec.compute) is None:
        raise InvalidInput("compute", spec.compute, "is not a cluster of this workspace")
    driver = _render_driver(engine, spec.compute)
    # the route of the record the create would make (description and tags with it, which
    # the Secret keeps for adoption); the printed Secret never holds a key
    route = engine.route(engine.new_endpoint_row(spec, key=lambda: "redacted"))
    return list(driver.render_endpoint(route, []))


async def render_deployment(
    engine: Engine,
    spec: DeploymentSpec,
    *,
    update: bool = False,
    all_traffic: bool = False,
    model: ModelSpec | None = None,
) -> list[dict[str, Any]]:
    """``online-deployment create|update --dry-run``: the manifests the deployment would
    apply (ConfigMap, Deployment, Service, HPA, and the endpoint's HTTPRoute as it would
    be). ``model``: an inline model that the real command would register first."""
    drivers: list[RendersManifests] = []
    admitted = await engine.admission.deployment(
        spec,
        update=update,
        dry_run=True,
        inline_model=model,
        check_cluster=lambda cluster: drivers.append(_render_driver(engine, cluster)),
    )
    driver = drivers[0]
    spec, ep, _, resolved, code = admitted
    # the code as the apply records it: the workspace's copy (named by its content)
    stored = admitted.stored(
        await engine.code.destination(ep.name, spec.name, code), engine.default_probe(ep.cluster)
    )
    environment = await engine.environments.resolve(spec, ep.cluster)
    runtime = DeploymentRuntime(
        spec=stored, model=resolved, code_dir=str(code), environment=environment
    )
    objects = list(await driver.render_deployment(ep.name, runtime))
    deps = sorted(set(engine.live_deployments(ep.name)) | {spec.name})
    traffic = dict(ep.traffic)
    mirror = dict(ep.mirror_traffic)
    if all_traffic:
        traffic = {d: (100 if d == spec.name else 0) for d in deps}
        mirror.pop(spec.name, None)
    elif traffic:
        traffic.setdefault(spec.name, 0)
    route = replace(engine.route(ep), traffic=traffic, mirror_traffic=mirror)
    objects += [o for o in driver.render_endpoint(route, deps) if o["kind"] == "HTTPRoute"]
    return objects
