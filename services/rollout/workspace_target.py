"""A :class:`~.target.RolloutTarget` over any :class:`~..api.workspace.Workspace`: the
endpoint and its deployments as the workspace reads them, the figures from ``get_metrics``,
a traffic write as ``update_endpoint(EndpointPatch(traffic=..., mirror_traffic=...),
if_revision=...)`` awaited to its end and read back.

Azure ML's rollouts run on it (ARM traffic updates, Azure Monitor's figures), and the tests
drive a rollout through a real local daemon with it. The Workspace ABC has no field for the
change's reason, so ``why`` is logged here; the audit history records the change itself
(who, the maps, the revision).

**Counters.** The runner needs cumulative ``requests_total``/``errors_total``. The local
workspace's ``get_metrics`` gives them (the gateway's counters). Azure ML's gives the last
minute's counts instead (Azure Monitor's ``RequestsPerMinute``), so with ``cumulative=False``
the target adds up Azure Monitor's one-minute grains (``get_metrics_history(window="1h")``,
requests split by status class: 5xx are the errors) from the minute of its first read on,
remembering each grain it saw, so a grain that leaves the hour's window still counts and the
sums never go down. Their precision is Azure Monitor's: one minute, as late as its ingestion
(a few minutes), the minute of the first read counted whole; steps of several minutes suit
it. The p95s stay ``get_metrics``' (Azure Monitor's latest minute).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time

from ..api.domain import Deployment, Endpoint, EndpointPatch, MetricsReport
from ..api.workspace import Workspace

log = logging.getLogger(__name__)


class WorkspaceTarget:
    def __init__(
        self,
        ws: Workspace,
        *,
        poll_s: float = 5.0,
        write_timeout_s: float = 600.0,
        cumulative: bool = True,
    ) -> None:
        self.ws = ws
        self.poll_s = poll_s
        #: how long a traffic write may take to finish (ARM's long-running operation)
        self.write_timeout_s = write_timeout_s
        #: False: get_metrics counts the last minute only; add up the history's grains
        self.cumulative = cumulative
        #: (deployment, grain start) -> (requests, errors) as last read, from _origin on
        self._grains: dict[tuple[str, float], tuple[int, int]] = {}
        self._origin: float | None = None

    async def endpoint(self, name: str) -> Endpoint:
        return await self.ws.get_endpoint(name)

    async def deployments(self, endpoint: str) -> list[Deployment]:
        return await self.ws.list_deployments(endpoint)

    async def figures(self, endpoint: str) -> MetricsReport:
        report = await self.ws.get_metrics(endpoint)
        if self.cumulative:
            return report
        history = await self.ws.get_metrics_history(endpoint, window="1h")
        step = history.step_s
        if self._origin is None:  # the first read: from the minute in progress on
            self._origin = math.floor(time.time() / step) * step
        for point in history.points:
            # a point's ts is the end of its grain (now, for the grain in progress)
            start = math.ceil(point.ts / step) * step - step
            if start >= self._origin:
                self._grains[(point.deployment, start)] = (
                    point.requests_total,
                    point.errors_total,
                )
        totals: dict[str, tuple[int, int]] = {}
        for (deployment, _), (requests, errors) in self._grains.items():
            r0, e0 = totals.get(deployment, (0, 0))
            totals[deployment] = (r0 + requests, e0 + errors)
        samples = []
        for s in report.samples:
            requests, errors = totals.get(s.deployment, (0, 0))
            samples.append(dataclasses.replace(s, requests_total=requests, errors_total=errors))
        return dataclasses.replace(report, samples=samples)

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
