"""A :class:`~.target.RolloutTarget` over any :class:`~..api.workspace.Workspace`: the
endpoint and its deployments as the workspace reads them, the figures from ``get_metrics``,
a traffic write as ``update_endpoint(EndpointPatch(traffic=..., mirror_traffic=...),
if_revision=...)`` awaited to its end and read back.

Azure ML's rollouts run on it (ARM traffic updates, Azure Monitor's figures), and the tests
drive a rollout through a real local daemon with it. The Workspace ABC has no field for the
change's reason, so ``why`` is logged here; the audit history records the change itself
(who, the maps, the revision).
"""

from __future__ import annotations

import asyncio
import logging

from ..api.domain import Deployment, Endpoint, EndpointPatch, MetricsReport
from ..api.workspace import Workspace

log = logging.getLogger(__name__)


class WorkspaceTarget:
    def __init__(self, ws: Workspace, *, poll_s: float = 5.0, write_timeout_s: float = 600.0):
        self.ws = ws
        self.poll_s = poll_s
        #: how long a traffic write may take to finish (ARM's long-running operation)
        self.write_timeout_s = write_timeout_s

    async def endpoint(self, name: str) -> Endpoint:
        return await self.ws.get_endpoint(name)

    async def deployments(self, endpoint: str) -> list[Deployment]:
        return await self.ws.list_deployments(endpoint)

    async def figures(self, endpoint: str) -> MetricsReport:
        return await self.ws.get_metrics(endpoint)

    async def set_traffic(
        self,
        endpoint: str,
        traffic: dict[str, int],
        mirror_traffic: dict[str, int],
        *,
        if_revision: str,
        why: str,
    ) -> Endpoint:
        log.info("%s: traffic %s, mirror %s", why, traffic, mirror_traffic)
        handle = await self.ws.update_endpoint(
            endpoint,
            EndpointPatch(traffic=dict(traffic), mirror_traffic=dict(mirror_traffic)),
            if_revision=if_revision,
        )
        await asyncio.wait_for(handle.wait(), self.write_timeout_s)
        return await self.ws.get_endpoint(endpoint)
