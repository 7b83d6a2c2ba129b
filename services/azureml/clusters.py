"""Clusters: the workspace's AKS and attached Kubernetes computes."""

from __future__ import annotations

import asyncio
from typing import Any

from .. import vmsizes
from ..api import validation
from ..api.domain import (
    Cluster,
    ClusterSpec,
    DriverKind,
    replace,
)
from ..api.errors import (
    Conflict,
    InvalidInput,
    NotFound,
)
from ..api.workspace import OperationHandle
from . import mapping
from .session import ARM_ID_PREFIX, Session


class ClusterRoom(Session):
    """Computes: list, create (AKS), attach (AKS or Arc Kubernetes), scale, detach, delete."""

    async def _raw_computes(self) -> list[dict[str, Any]]:
        return await self.arm.list_all(f"{self._ws}/computes", kind="cluster")

    async def list_clusters(self) -> list[Cluster]:
        computes, endpoints = await asyncio.gather(self._raw_computes(), self._raw_endpoints())
        counts: dict[str, int] = {}
        for e in endpoints:
            c = mapping.last_segment((e.get("properties") or {}).get("compute"))
            counts[c] = counts.get(c, 0) + 1
        return [
            mapping.compute_to_cluster(c, counts.get(str(c.get("name")), 0))
            for c in computes
            if mapping.is_cluster(c)
        ]

    async def _raw_cluster(self, name: str) -> dict[str, Any]:
        res = await self.arm.get(f"{self._ws}/computes/{name}", kind="cluster", name=name)
        if not mapping.is_cluster(res):
            ctype = (res.get("properties") or {}).get("computeType")
            raise NotFound(
                "cluster",
                name,
                message=f"compute '{name}' is a {ctype} compute, not a Kubernetes or AKS cluster",
            )
        return res

    async def get_cluster(self, name: str) -> Cluster:
        res, endpoints = await asyncio.gather(self._raw_cluster(name), self._raw_endpoints())
        n = sum(
            1
            for e in endpoints
            if mapping.last_segment((e.get("properties") or {}).get("compute")) == name
        )
        return mapping.compute_to_cluster(res, n)

    async def create_cluster(self, spec: ClusterSpec) -> OperationHandle:
        validation.cluster_spec(replace(spec, driver=DriverKind.POOL))
        if await self._get_or_none(f"{self._ws}/computes/{spec.name}", "cluster", spec.name):
            raise Conflict(
                f"a compute named '{spec.name}' already exists in workspace {self.workspace_name}",
                fix="choose another name, or scale the existing one: modeldeck cluster scale",
            )
        size = vmsizes.lookup(spec.vm_size)
        body = mapping.aks_create_body(
            agent_count=spec.agent_count,
            vm_size=size.name if size else spec.vm_size,
            purpose=spec.purpose,
            location=await self.location(),
            description=spec.description,
            tags=spec.tags,
        )
        lro = await self._begin(
            "PUT", f"{self._ws}/computes/{spec.name}", "cluster.create", spec.name, json=body
        )
        return self._track(lro)

    async def attach_cluster(self, spec: ClusterSpec) -> OperationHandle:
        validation.name(spec.name)
        rid = (spec.resource_id or "").strip()
        lowered = rid.lower()
        if not rid.startswith(ARM_ID_PREFIX) or not (
            "microsoft.containerservice/managedclusters/" in lowered
            or "microsoft.kubernetes/connectedclusters/" in lowered
        ):
            raise InvalidInput(
                "resource_id",
                rid or None,
                "must be the ARM resource ID of an AKS cluster or an Arc-enabled Kubernetes cluster",
                "pass --resource-id /subscriptions/SUB/resourceGroups/RG/providers/"
                "Microsoft.ContainerService/managedClusters/NAME (see: az aks show --query id)",
            )
        computes = await self._raw_computes()
        for c in computes:
            if c.get("name") == spec.name:
                raise Conflict(
                    f"a compute named '{spec.name}' already exists", fix="choose another name"
                )
            other = str((c.get("properties") or {}).get("resourceId") or "")
            if other.lower() == lowered:
                raise Conflict(
                    f"this cluster is already attached as '{c.get('name')}'; attaching it twice "
                    "under two names breaks the first attachment",
                    fix=f"use '{c.get('name')}', or detach it first: modeldeck cluster detach -n {c.get('name')}",
                )
        body = mapping.kubernetes_attach_body(
            resource_id=rid,
            namespace=spec.namespace,
            location=await self.location(),
            description=spec.description,
            tags=spec.tags,
        )
        lro = await self._begin(
            "PUT", f"{self._ws}/computes/{spec.name}", "cluster.attach", spec.name, json=body
        )
        return self._track(lro)

    async def detach_cluster(self, name: str, *, delete_resources: bool = False) -> OperationHandle:
        await self._raw_cluster(name)
        action = "Delete" if delete_resources else "Detach"
        lro = await self._begin(
            "DELETE",
            f"{self._ws}/computes/{name}",
            "cluster.detach",
            name,
            params={"underlyingResourceAction": action},
        )
        return self._track(lro)

    async def scale_cluster(self, name: str, agent_count: int) -> OperationHandle:
        validation.integer(agent_count, "agent_count", 1, 100)
        current = await self._raw_cluster(name)
        props = current.get("properties") or {}
        if props.get("computeType") != "AKS":
            raise InvalidInput(
                "cluster",
                name,
                "is an attached Kubernetes compute: its nodes are scaled on the cluster itself",
                "scale the node pool with: az aks nodepool scale (or your Kubernetes provider)",
            )
        inner = props.get("properties") or {}
        size = vmsizes.lookup(str(inner.get("agentVmSize") or ""))
        purpose = mapping.compute_to_cluster(current).purpose
        if size is not None:
            validation.purpose_capacity(
                purpose, agent_count * size.vcpus, f"{agent_count} x {size.name}"
            )
        body = mapping.aks_scale_body(current, agent_count)
        lro = await self._begin(
            "PUT", f"{self._ws}/computes/{name}", "cluster.scale", name, json=body
        )
        return self._track(lro)

    async def delete_cluster(self, name: str) -> OperationHandle:
        await self._raw_cluster(name)
        users = [
            str(e.get("name"))
            for e in await self._raw_endpoints()
            if mapping.last_segment((e.get("properties") or {}).get("compute")) == name
        ]
        if users:
            raise Conflict(
                f"cluster '{name}' has endpoints: {', '.join(sorted(users))}",
                fix="delete them first (modeldeck online-endpoint delete -n NAME), or detach the cluster instead",
            )
        lro = await self._begin(
            "DELETE",
            f"{self._ws}/computes/{name}",
            "cluster.delete",
            name,
            params={"underlyingResourceAction": "Delete"},
        )
        return self._track(lro)
