"""What a rollout drives: the one interface the runner (``runner.py``) needs of a back end,
and where it records the rollout's state.

The local control plane implements :class:`RolloutTarget` over its engine (the records, the
cluster's driver, the gateway's counters); Azure ML's over an ``AzureMLWorkspace`` (ARM traffic
updates, Azure Monitor figures), both driven by the daemon.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from ..api.domain import Deployment, Endpoint, MetricsReport
from ..api.rollouts import Rollout, RolloutCheck


class RolloutTarget(Protocol):
    #: seconds between two reads of the endpoint and its figures (the loopback control plane
    #: reads cheaply; ARM less often)
    poll_s: float

    async def endpoint(self, name: str) -> Endpoint:
        """The endpoint as it is now (its traffic maps and revision)."""
        ...

    async def deployments(self, endpoint: str) -> list[Deployment]: ...

    async def figures(self, endpoint: str) -> MetricsReport:
        """One sample per deployment as of now: ``requests_total`` and ``errors_total``
        cumulative (the runner takes differences over its window; a counter that went down
        was reset: the window starts again), ``latency_p95_ms`` the back end's current p95."""
        ...

    async def set_traffic(
        self,
        endpoint: str,
        traffic: dict[str, int],
        mirror_traffic: dict[str, int],
        *,
        if_revision: str,
        why: str,
    ) -> Endpoint:
        """Write both maps as one audited change, on the condition that the endpoint is still
        at ``if_revision`` (Conflict otherwise: an operator changed it). ``why`` says which
        step of which rollout it is (the audit history's action text). The endpoint as
        written (its new revision)."""
        ...


class RolloutBook(Protocol):
    """Where a rollout's state is kept (the control plane's store; on a shared Kubernetes
    cluster also the HTTPRoute's annotation) and who hears of its events."""

    def save(self, rollout: Rollout) -> Rollout:
        """Record the new state; the record as saved (its new revision)."""
        ...

    def load(self, endpoint: str) -> Rollout | None:
        """The endpoint's current record (an operator's pause/abort lands here)."""
        ...

    def notify(self, rollout: Rollout, event: str, check: RolloutCheck | None) -> Awaitable[None]:
        """``event``: started | step | mirror | paused | resumed | promoted | failed |
        aborted | waiting. The webhook, the audit history, the dashboards' toasts."""
        ...
