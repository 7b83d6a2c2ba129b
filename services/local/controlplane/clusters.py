"""The clusters of the local workspace: local pools made here, Kubernetes clusters attached.

Each cluster has a driver (:mod:`modeldeck.services.drivers`) made from its record; a pool
is created, scaled and deleted here, a Kubernetes cluster is attached (once per API
server and namespace; what modeldeck already runs there is adopted) and detached.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ... import vmsizes
from ...api import validation
from ...api.domain import Cluster, ClusterSpec, DriverKind, Operation, ProvisioningState
from ...api.errors import (
    BackendError,
    CapacityExceeded,
    Conflict,
    InvalidInput,
    Unreachable,
)
from ...drivers.base import (
    ChecksAttach,
    ClusterDriver,
    Identified,
    Namespaced,
    Progress,
    SharedCluster,
)
from . import adopt, managed
from .admission import DRIVER_TIMEOUT_S
from .operations import message_of

if TYPE_CHECKING:
    from .engine import Engine


class Clusters:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store

    def make_driver(self, spec: ClusterSpec) -> ClusterDriver:
        if spec.driver is DriverKind.POOL:
            from ...drivers.pool import PoolDriver

            return PoolDriver(spec, gateway=self.engine.gateway, data_dir=self.engine.data_dir)
        if spec.driver is DriverKind.KUBERNETES:
            try:
                from ...drivers.kubernetes.driver import KubernetesDriver
            except ImportError as exc:
                raise BackendError(
                    f"Kubernetes support not installed ({exc})",
                    fix="pip install 'modeldeck[kubernetes]'",
                ) from None
            try:
                return KubernetesDriver(spec, data_dir=self.engine.data_dir)
            except ImportError as exc:  # the official client is imported when first used
                raise BackendError(
                    f"Kubernetes support not installed ({exc})",
                    fix="pip install 'modeldeck[kubernetes]'",
                ) from None
        raise InvalidInput(
            "driver",
            spec.driver.value,
            "a local workspace runs pool and kubernetes clusters",
            "use --driver pool (cluster create) or kubernetes (cluster attach)",
        )

    async def _cluster(self, row: Any) -> Cluster:
        spec: ClusterSpec = row.spec
        error = row.error or self.engine.driver_errors.get(spec.name)
        nodes, vcpus, mem, version = spec.agent_count, 0.0, 0.0, None
        if error is None:
            try:
                nodes, vcpus, mem, version = await self.engine.admission.capacity(spec.name)
            except TimeoutError:
                error = f"cluster did not answer within {DRIVER_TIMEOUT_S:g} s"
            except Exception as exc:
                error = message_of(exc)
            if error is None:
                self.engine.cluster_health.pop(spec.name, None)
            else:
                self.engine.cluster_health[spec.name] = error
        used_cpu, used_mem = self.engine.admission.used(spec.name)
        is_managed = managed.is_managed(spec)
        return Cluster(
            name=spec.name,
            driver=spec.driver,
            purpose=None if is_managed else spec.purpose,
            provisioning_state=row.state,
            agent_count=nodes,
            vm_size=spec.vm_size if spec.driver is DriverKind.POOL and not is_managed else None,
            vcpus_total=vcpus,
            memory_gb_total=mem,
            vcpus_used=round(used_cpu, 3),
            memory_gb_used=round(used_mem, 3),
            version=version,
            kube_context=spec.kube_context,
            namespace=spec.namespace,
            endpoints=len(self.store.endpoints(spec.name)),
            error=error,
            description=spec.description,
            tags=dict(spec.tags),
            created_at=row.created_at,
            managed=is_managed,
        )

    async def update(self, name: str, *, tags: dict[str, str], remove_tags: list[str]) -> Cluster:
        """Merge ``tags`` into the cluster's, drop ``remove_tags``; the driver takes them at
        once (a Kubernetes cluster: the Gateway its routes attach to, the scoring URI). When
        the Gateway changed, every endpoint's route is written again under it."""
        async with self.engine.admission.lock:
            row = self.engine.cluster_row(name)
            merged = {**row.spec.tags, **validation.tags(tags)}
            for key in remove_tags:
                merged.pop(key, None)
            spec = replace(row.spec, tags=validation.tags(merged))
            driver = self.engine.drivers.get(name)
            if driver is not None and driver.retag(spec.tags):
                for ep in self.store.endpoints(name):
                    route = self.engine.route(ep)
                    await self.engine.apply_route(name, replace(route, base=route))
            self.store.update_cluster(name, spec=spec)
        return await self.get(name)

    async def list_all(self) -> list[Cluster]:
        rows = self.store.clusters()
        return list(await asyncio.gather(*(self._cluster(r) for r in rows)))

    async def get(self, name: str) -> Cluster:
        return await self._cluster(self.engine.cluster_row(name))

    async def create(self, spec: ClusterSpec) -> Operation:
        if spec.driver is not DriverKind.POOL:
            raise InvalidInput(
                "driver",
                spec.driver.value,
                "cluster create makes local pools; Kubernetes clusters are attached",
                "use: modeldeck cluster attach --name NAME --kube-context CONTEXT",
            )
        spec = managed.reserved(replace(spec, tags=validation.tags(spec.tags)))
        validation.cluster_spec(spec)
        async with self.engine.admission.lock:
            if self.store.cluster(spec.name) is not None:
                raise Conflict(
                    f"cluster '{spec.name}' already exists",
                    fix="choose another name, or scale it: modeldeck cluster scale",
                )
            self.store.insert_cluster(spec, ProvisioningState.CREATING)

        async def work(progress: Progress) -> None:
            progress(0.2, f"starting pool {spec.name}")
            try:
                driver = self.make_driver(spec)
                await driver.capacity()
            except Exception as exc:
                self.store.update_cluster(
                    spec.name, state=ProvisioningState.FAILED, error=message_of(exc)
                )
                raise
            self.engine.drivers[spec.name] = driver
            self.engine.driver_errors.pop(spec.name, None)
            self.store.update_cluster(spec.name, state=ProvisioningState.SUCCEEDED, error=None)

        return self.engine.operations.start("cluster.create", spec.name, work)

    async def attach(self, spec: ClusterSpec) -> Operation:
        spec = replace(spec, driver=DriverKind.KUBERNETES, tags=validation.tags(spec.tags))
        spec = managed.reserved(spec)
        validation.cluster_spec(spec)
        if self.store.cluster(spec.name) is not None:
            raise Conflict(f"cluster '{spec.name}' already exists", fix="choose another name")
        driver = self.make_driver(spec)  # reads the kubeconfig: InvalidInput for a bad context
        try:
            # the driver resolves the namespace (the context's when none is given) and the
            # API server: the same (server, namespace) under two names is refused
            if isinstance(driver, Namespaced):
                spec = replace(spec, namespace=driver.namespace or spec.namespace)
            self._check_attached_once(spec, driver)
            notes: list[str] = []
            try:
                if isinstance(driver, ChecksAttach):
                    _, notes = await asyncio.wait_for(driver.attach_check(), DRIVER_TIMEOUT_S * 2)
                else:
                    cap = await asyncio.wait_for(driver.capacity(), DRIVER_TIMEOUT_S * 2)
                    validation.purpose_capacity(
                        spec.purpose, cap.vcpus, f"context '{spec.kube_context}'"
                    )
            except TimeoutError:
                raise Unreachable(
                    f"context '{spec.kube_context}' did not answer within "
                    f"{DRIVER_TIMEOUT_S * 2:g} s",
                    fix=f"check the cluster with: kubectl --context {spec.kube_context} get nodes",
                ) from None
            async with (
                self.engine.admission.lock
            ):  # the checks again: another attach may have run meanwhile
                if self.store.cluster(spec.name) is not None:
                    raise Conflict(
                        f"cluster '{spec.name}' already exists", fix="choose another name"
                    )
                self._check_attached_once(spec, driver)
                self.store.insert_cluster(spec, ProvisioningState.SUCCEEDED)
                self.engine.drivers[spec.name] = driver
                self.engine.driver_errors.pop(spec.name, None)
        except BaseException:
            if self.engine.drivers.get(spec.name) is not driver:
                await _close_quietly(driver)
            raise

        # what modeldeck already runs there becomes ours (and is followed)
        notes += await adopt.on_attach(self.engine, spec.name)
        message = f"attached {spec.kube_context}/{spec.namespace}"
        # one line per note after the first: the CLI prints them as warnings
        message += "".join(f"\nnote: {n}" for n in notes)
        return self.engine.operations.done("cluster.attach", spec.name, message)

    def _check_attached_once(self, spec: ClusterSpec, driver: ClusterDriver) -> None:
        """Conflict when the API server and namespace of ``driver`` are attached already."""
        identity = driver.identity if isinstance(driver, Identified) else None
        for row in self.store.clusters():
            other: ClusterSpec = row.spec
            if other.driver is not DriverKind.KUBERNETES or other.name == spec.name:
                continue
            other_driver = self.engine.drivers.get(other.name)
            same = (
                identity is not None
                and isinstance(other_driver, Identified)
                and other_driver.identity == identity
                if other_driver is not None
                else other.kube_context == spec.kube_context and other.namespace == spec.namespace
            )
            if same:
                where = (
                    f"API server {identity[0]} namespace '{identity[1]}'"
                    if identity is not None
                    else f"context '{spec.kube_context}' namespace '{spec.namespace}'"
                )
                raise Conflict(
                    f"{where} is already attached as cluster '{other.name}'; attaching it twice "
                    "would let two records fight over the same objects (Azure ML silently "
                    "breaks the first attachment)",
                    fix=f"use cluster '{other.name}', or attach another namespace",
                )

    async def detach(self, name: str, *, delete_resources: bool = False) -> Operation:
        row = self.engine.cluster_row(name)
        managed.refuse(row.spec, "detached")
        if row.spec.driver is not DriverKind.KUBERNETES:
            raise InvalidInput(
                "name",
                name,
                "is a local pool: pools are deleted, not detached",
                f"modeldeck cluster delete --name {name}",
            )
        async with self.engine.admission.lock:
            row = self.engine.cluster_row(name)
            if row.state is ProvisioningState.DELETING:
                raise Conflict(f"cluster '{name}' is already being detached")
            endpoints = self.store.endpoints(name)
            busy = [
                f"{d.endpoint}/{d.name} ({d.state.value.lower()})"
                for ep in endpoints
                for d in self.store.deployments(ep.name)
                if d.state
                in (
                    ProvisioningState.CREATING,
                    ProvisioningState.UPDATING,
                    ProvisioningState.DELETING,
                )
            ] + [
                f"{ep.name} (deleting)"
                for ep in endpoints
                if ep.name in self.engine.admission.deleting
            ]
            if busy:
                raise Conflict(
                    f"cluster '{name}' has operations in flight: " + ", ".join(busy),
                    fix="wait until they end (modeldeck online-deployment list), then detach",
                )
            if delete_resources:
                self.engine.driver(name)  # Unreachable now, before anything changes
            previous = row.state
            self.store.update_cluster(name, state=ProvisioningState.DELETING)

        async def work(progress: Progress) -> None:
            if delete_resources:
                progress(0.1, f"deleting what modeldeck made on cluster {name}")
                try:
                    driver = self.engine.driver(name)
                    if not isinstance(driver, SharedCluster):  # only Kubernetes is detached
                        raise BackendError(f"cluster '{name}': its driver cannot delete resources")
                    deleted = await driver.delete_resources()
                except BaseException:
                    self.store.update_cluster(name, state=previous)
                    raise
                progress(0.8, f"deleted {len(deleted)} object(s)")
            # forget: the records of the cluster's endpoints and deployments go; what runs on
            # the cluster is left alone (unless delete_resources removed it above)
            async with self.engine.admission.lock:
                with self.store.tx():
                    for ep in self.store.endpoints(name):
                        self.store.delete_endpoint(ep.name)
                    self.store.delete_cluster(name)
            for ep in endpoints:
                self.engine.code.remove(ep.name)

            adopt.stop_following(self.engine, name)
            driver = self.engine.drivers.pop(name, None)
            if driver is not None:
                await _close_quietly(driver)
            self.engine.driver_errors.pop(name, None)
            self.engine.cluster_health.pop(name, None)

        return self.engine.operations.start("cluster.detach", name, work)

    async def scale(self, name: str, agent_count: int) -> Operation:
        row = self.engine.cluster_row(name)
        spec: ClusterSpec = row.spec
        managed.refuse(spec, "scaled")
        if spec.driver is not DriverKind.POOL:
            raise InvalidInput(
                "name",
                name,
                "is an attached Kubernetes cluster: its nodes are scaled where it runs",
                "scale the node pool with your cloud's tools",
            )
        agent_count = validation.integer(agent_count, "agent_count", 1, 100)
        new = replace(spec, agent_count=agent_count)
        validation.cluster_spec(new)
        size = vmsizes.lookup(spec.vm_size)
        assert size is not None  # validated above
        async with self.engine.admission.lock:
            used_cpu, used_mem = self.engine.admission.used(name)
            total_cpu = agent_count * size.vcpus
            total_mem = agent_count * size.memory_gb
            if used_cpu > total_cpu + 1e-9 or used_mem > total_mem + 1e-9:
                raise CapacityExceeded(
                    f"cluster '{name}' runs deployments that request {used_cpu:g} vCPU and "
                    f"{used_mem:g} GiB; {agent_count} x {size.name} has only {total_cpu:g} vCPU "
                    f"and {total_mem:g} GiB",
                    fix="scale down or delete deployments first, or keep more nodes",
                    needed_vcpus=used_cpu,
                    total_vcpus=total_cpu,
                )
            driver = self.engine.drivers.get(name)
            if driver is not None:
                driver.spec = new
            self.store.update_cluster(name, spec=new, state=ProvisioningState.SUCCEEDED)
        return self.engine.operations.done("cluster.scale", name, f"{agent_count} x {size.name}")

    async def delete(self, name: str) -> Operation:
        async with self.engine.admission.lock:
            row = self.engine.cluster_row(name)
            managed.refuse(row.spec, "deleted")
            endpoints = self.store.endpoints(name)
            if endpoints:
                raise Conflict(
                    f"cluster '{name}' still has endpoints: "
                    + ", ".join(e.name for e in endpoints),
                    fix="delete them first: modeldeck online-endpoint delete --name NAME",
                )
            if row.spec.driver is DriverKind.KUBERNETES:
                raise InvalidInput(
                    "name",
                    name,
                    "is an attached Kubernetes cluster: it is detached, not deleted",
                    f"modeldeck cluster detach --name {name}",
                )
            self.store.update_cluster(name, state=ProvisioningState.DELETING)

        async def work(progress: Progress) -> None:
            progress(0.5, f"stopping pool {name}")
            driver = self.engine.drivers.pop(name, None)
            if driver is not None:
                await driver.close()
            self.engine.driver_errors.pop(name, None)
            self.engine.cluster_health.pop(name, None)
            self.store.delete_cluster(name)

        return self.engine.operations.start("cluster.delete", name, work)


async def _close_quietly(driver: ClusterDriver) -> None:
    with contextlib.suppress(Exception):
        await driver.close()
