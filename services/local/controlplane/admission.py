"""Admission: every check a change must pass before anything changes, under one lock.

Validation and the record change it allows happen under :attr:`Admission.lock`, so two
requests never both pass a check that only one of them may pass. The admission also
knows what is in flight that the records do not show yet: the endpoints being deleted
and the deployment updates running (each holds the capacity of the larger of its two
versions until it ends). :meth:`Admission.deployment` is the one list of checks of a
deployment's create and update, and of their ``--dry-run``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ... import vmsizes
from ...api import validation
from ...api.domain import (
    ClusterSpec,
    CodeConfiguration,
    DeploymentRole,
    DeploymentSpec,
    DriverKind,
    EndpointSpec,
    Model,
    ModelSpec,
    Probe,
    ProvisioningState,
)
from ...api.errors import CapacityExceeded, Conflict, InvalidInput, NotFound
from . import managed
from .store.deployments import DeploymentRow
from .store.endpoints import EndpointRow

if TYPE_CHECKING:
    from .engine import Engine

#: How long a call waits for one cluster (a list: before showing it as unreachable).
DRIVER_TIMEOUT_S = 5.0


def reserved_instances(spec: DeploymentSpec) -> int:
    """How many replicas a deployment may run at most: what the scheduler reserves."""
    if spec.scale_settings.type == "target_utilization":
        return max(spec.scale_settings.max_instances, spec.scale_settings.min_instances)
    return spec.instance_count


def _usage(spec: DeploymentSpec, on_managed: bool = False) -> tuple[float, float]:
    """(vCPU, GiB) a deployment reserves: its requests, or on the managed capacity its
    instance type's size (:func:`.managed.usage`)."""
    n = reserved_instances(spec)
    if on_managed:
        return managed.usage(spec, n)
    req = spec.resources.requests
    return (req.cpu or 0.0) * n, (req.memory_gb or 0.0) * n


class Admitted(NamedTuple):
    """What a deployment's checks found: the spec (tags checked), its endpoint, its record
    (an update), its model and its code folder."""

    spec: DeploymentSpec
    endpoint: EndpointRow
    existing: DeploymentRow | None
    model: Model
    code: Path

    def stored(self, code_dir: str, default_probe: Probe | None = None) -> DeploymentSpec:
        """The spec as it is recorded: the model's full reference, the code's copy, and a
        probe equal to the cluster's default kept as not given (``show`` prints the default
        that applies, so a show -> ``--set`` -> update round trip sends it back: it is not a
        change, and stays out of the revision's changes)."""

        def probe(given: Probe | None) -> Probe | None:
            return None if given == default_probe else given

        return replace(
            self.spec,
            model=self.model.ref,
            code_configuration=CodeConfiguration(
                code=code_dir, scoring_script=self.spec.code_configuration.scoring_script
            ),
            liveness_probe=probe(self.spec.liveness_probe),
            readiness_probe=probe(self.spec.readiness_probe),
        )


class Admission:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store
        self.lock = asyncio.Lock()
        #: endpoints whose deletion is running
        self.deleting: set[str] = set()
        #: deployment updates in flight: (endpoint, deployment) -> the spec being rolled out
        self.pending: dict[tuple[str, str], DeploymentSpec] = {}

    def used(self, cluster: str, *, exclude: tuple[str, str] | None = None) -> tuple[float, float]:
        """(vCPU, GiB) the deployments of ``cluster`` reserve (an update in flight: the more
        of its two versions); ``exclude``: (endpoint, deployment) left out."""
        cpu = mem = 0.0
        on_managed = self.on_managed(cluster)
        for ep in self.store.endpoints(cluster):
            for d in self.store.deployments(ep.name):
                if exclude == (d.endpoint, d.name):
                    continue
                c, m = _usage(d.spec, on_managed)
                pending = self.pending.get((d.endpoint, d.name))
                if pending is not None:  # an update in flight holds what it will need
                    pc, pm = _usage(pending, on_managed)
                    c, m = max(c, pc), max(m, pm)
                cpu += c
                mem += m
        return cpu, mem

    def on_managed(self, cluster: str) -> bool:
        """Whether ``cluster`` is the workspace's managed capacity (:mod:`.managed`)."""
        row = self.store.cluster(cluster)
        return row is not None and managed.is_managed(row.spec)

    async def capacity(self, cluster: str) -> tuple[int, float, float, str | None]:
        """(nodes, vCPU, GiB, version) of ``cluster``: a pool's from its VM size, the managed
        capacity's from this host (its memory less the reserve), else its driver's (bounded
        by DRIVER_TIMEOUT_S)."""
        row = self.engine.cluster_row(cluster)
        spec: ClusterSpec = row.spec
        if managed.is_managed(spec):
            host = managed.host_size()
            return 1, float(host.vcpus), host.usable_gb, self.engine.version or None
        if spec.driver is DriverKind.POOL:
            size = vmsizes.lookup(spec.vm_size)
            if size is not None:
                return (
                    spec.agent_count,
                    float(spec.agent_count * size.vcpus),
                    float(spec.agent_count * size.memory_gb),
                    self.engine.version or None,
                )
        cap = await asyncio.wait_for(self.engine.driver(cluster).capacity(), DRIVER_TIMEOUT_S)
        return cap.nodes, cap.vcpus, cap.memory_gb, cap.version

    def _check_capacity(
        self,
        cluster: str,
        spec: DeploymentSpec,
        total: tuple[float, float],
        *,
        exclude: tuple[str, str] | None,
    ) -> None:
        total_cpu, total_mem = total
        used_cpu, used_mem = self.used(cluster, exclude=exclude)
        need_cpu, need_mem = _usage(spec)
        n = reserved_instances(spec)
        req = spec.resources.requests
        free_cpu = max(0.0, total_cpu - used_cpu)
        free_mem = max(0.0, total_mem - used_mem)
        fix = (
            "lower instance_count or resources.requests, delete a deployment, or add nodes: "
            f"modeldeck cluster scale --name {cluster} --agent-count N"
        )

        def fits(need: float, free: float, total: float, each: float, unit: str, key: str) -> None:
            """One resource: ``unit`` as the message names it (``GiB of memory``), the
            error's details ``needed_<key>``, ``free_<key>`` and ``total_<key>``."""
            if need > free + 1e-9:
                raise CapacityExceeded(
                    f"deployment '{spec.name}' does not fit cluster '{cluster}': it needs "
                    f"{need:g} {unit} ({n} x {each:g}); {free:g} {unit.split()[0]} free of "
                    f"{total:g} total",
                    fix=fix,
                    **{
                        f"needed_{key}": round(need, 3),
                        f"free_{key}": round(free, 3),
                        f"total_{key}": round(total, 3),
                    },
                )

        fits(need_cpu, free_cpu, total_cpu, req.cpu or 0, "vCPU", "vcpus")
        gpus = n * int(req.gpu or 0)
        row = self.store.cluster(cluster)
        size = vmsizes.lookup(row.spec.vm_size) if row is not None else None
        if gpus and row is not None and row.spec.driver is DriverKind.POOL and size:
            total_gpu = row.spec.agent_count * size.gpus
            used_gpu = sum(
                reserved_instances(d.spec) * int(d.spec.resources.requests.gpu or 0)
                for e in self.store.endpoints(cluster)
                for d in self.store.deployments(e.name)
                if exclude != (d.endpoint, d.name)
            )
            free_gpu = max(0, total_gpu - used_gpu)
            if gpus > free_gpu:
                raise CapacityExceeded(
                    f"deployment '{spec.name}' does not fit cluster '{cluster}': it needs "
                    f"{gpus} GPU ({n} x {req.gpu}); {free_gpu} GPU free of {total_gpu} total "
                    f"({row.spec.agent_count} x {size.name})",
                    fix="use a GPU VM size (e.g. Standard_NC6s_v3) for the cluster, or request "
                    "no GPU",
                    needed_gpus=gpus,
                    free_gpus=free_gpu,
                    total_gpus=total_gpu,
                )
        fits(need_mem, free_mem, total_mem, req.memory_gb or 0, "GiB of memory", "memory_gb")

    def endpoint(self, spec: EndpointSpec) -> EndpointSpec:
        """The checks of an endpoint's create (and its dry run) that need no cluster: the
        spec itself, and that its name is free. The spec with its compute's ``azureml:``
        prefix dropped and its tags checked."""
        compute = validation.strip_azureml(spec.compute) if spec.compute else spec.compute
        spec = replace(spec, compute=compute, tags=validation.tags(spec.tags))
        validation.endpoint_spec(spec)
        validation.traffic(spec.traffic, [])
        validation.mirror_traffic(spec.mirror_traffic, {}, [])
        if self.store.endpoint(spec.name) is not None:
            raise Conflict(
                f"endpoint '{spec.name}' already exists",
                fix="choose another name, or change it: modeldeck online-endpoint update",
            )
        return spec

    async def deployment(
        self,
        spec: DeploymentSpec,
        *,
        update: bool,
        dry_run: bool = False,
        inline_model: ModelSpec | None = None,
        check_cluster: Callable[[str], object] | None = None,
        script_check: bool = True,
    ) -> Admitted:
        """Every check a create or update must pass; nothing changes here.

        ``dry_run``: the checks of ``--dry-run``, which leave out those about what runs
        now (an operation in flight on the endpoint or the deployment, the control role,
        the cluster's capacity). ``inline_model``: a model the real command would register
        first (its version: the next one). ``check_cluster``: a check of the endpoint's
        cluster made before the deployment's own (the dry run's: that it renders manifests).
        ``script_check=False`` (--skip-script-validation): the scoring script is not parsed.
        """
        spec = replace(spec, tags=validation.tags(spec.tags))
        validation.deployment_spec(spec)
        ep = self.engine.endpoint_row(spec.endpoint_name)
        if check_cluster is not None:
            check_cluster(ep.cluster)
        if not dry_run and ep.state is ProvisioningState.DELETING:
            raise Conflict(f"endpoint '{ep.name}' is being deleted")
        existing = self.store.deployment(ep.name, spec.name)
        if update and existing is None:
            raise NotFound.deployment(
                spec.name, ep.name, fix="create it first: modeldeck online-deployment create"
            )
        if not update and existing is not None:
            raise Conflict.deployment_exists(spec.name, ep.name)
        if not dry_run:
            self._not_busy(ep, spec, existing)
        validation.deployment_count([d.name for d in self.store.deployments(ep.name)], spec.name)
        if (
            not dry_run
            and spec.role is DeploymentRole.CONTROL
            and ep.control not in (None, spec.name)
        ):
            raise InvalidInput(
                "role",
                "control",
                f"'{ep.control}' is already this endpoint's control; one deployment may be "
                "control, the others are treatments",
                "leave role out, or change the control: modeldeck online-endpoint update "
                "--set control=NAME",
            )
        if inline_model is not None:
            model = self._model(inline_model)
        else:
            model = self.engine.models.resolve(spec.model)
        code = self.engine.code.check(spec, parse=script_check)
        if not dry_run:
            cluster = self.engine.cluster_row(ep.cluster)
            if cluster.state is ProvisioningState.DELETING:
                raise Conflict(f"cluster '{ep.cluster}' is being deleted")
            exclude = (ep.name, spec.name) if update else None
            if self.on_managed(ep.cluster):
                _, used_mem = self.used(ep.cluster, exclude=exclude)
                managed.check(spec, reserved_instances(spec), used_mem)
            else:
                _, total_cpu, total_mem, _ = await self.capacity(ep.cluster)
                self._check_capacity(ep.cluster, spec, (total_cpu, total_mem), exclude=exclude)
        return Admitted(spec, ep, existing, model, code)

    def _not_busy(
        self, ep: EndpointRow, spec: DeploymentSpec, existing: DeploymentRow | None
    ) -> None:
        """Conflict when an operation on the deployment is running."""
        if existing is not None and existing.state in (
            ProvisioningState.DELETING,
            ProvisioningState.CREATING,
            ProvisioningState.UPDATING,
        ):
            last = self.store.changes("deployment", f"{ep.name}/{spec.name}", existing.revision - 1)
            raise Conflict(
                f"deployment '{spec.name}' is {existing.state.value.lower()}; wait until that "
                "operation ends",
                fix=f"watch it with: modeldeck online-deployment show -e {ep.name} -n {spec.name}",
                # what is being rolled out, by whom: a client may wait and retry on top of it
                busy=existing.state.value,
                revision_now=str(existing.revision),
                changed=last[-1].changed if last else None,
                by=last[-1].actor if last else None,
            )

    def _model(self, model: ModelSpec) -> Model:
        """An inline model as the real command would register it (not copied: a dry run)."""
        validation.model_spec(model)
        if not Path(model.path).exists():
            raise InvalidInput("model.path", model.path, "does not exist")
        versions = [m.version for m in self.store.models(model.name)]
        return Model(
            name=model.name,
            version=model.version or (max(versions) + 1 if versions else 1),
            path=model.path,
        )
