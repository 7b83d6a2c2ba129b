"""The ``kubernetes`` cluster driver: deployments on a cluster reached through the kubeconfig.

The local control plane instantiates it as ``KubernetesDriver(spec, data_dir=...)``
and calls it through :class:`~modeldeck.services.drivers.base.ClusterDriver`. What it
makes (see :mod:`.manifests`) carries modeldeck's labels, so state and status are
read back from the cluster with label selectors: two operators see the same
truth, and nothing is lost if the local state is wiped.

Writes are server-side apply under the field manager ``modeldeck`` (with
``force``: modeldeck owns these objects), except the HTTPRoute, which is read,
changed and replaced. What two operators' control planes can both write (the
HTTPRoute, the keys Secret, the Deployment) is written under the resourceVersion
just read, after a field-by-field check against what this control plane last knew
(:mod:`.concurrency`): someone else's change is kept (merged) or, when this write
changes the same field, refused with ``Conflict`` naming the field and who changed
it; never overwritten silently. A 409 is retried against the fresh object.

The class is composed of rooms, one job each, in modules beside this one:
:mod:`.resources` (REST verbs on namespaced objects, the guarded write, the 409 retry),
:mod:`.attach` (capacity, API discovery, the attach checks), :mod:`.endpoints` (keys
Secret and HTTPRoute), :mod:`.diagnosis` (status, why pods are not ready, events),
:mod:`.rollout` (a deployment's objects, the rollout wait, roll back), :mod:`.state`
(what the cluster holds, read back for adoption, and its watches) and
:mod:`.telemetry` (logs and metrics), :mod:`.changes` (the audit history as an annotation
and Events), :mod:`.progressive` (a progressive rollout's state as an annotation on the
route, for the other operators). This module holds the settings and the state
they share.

Beyond the ABC, the engine/CLI can use: :attr:`identity`, :meth:`attach_check`,
:meth:`render_endpoint` / :meth:`render_deployment` (``--dry-run -o yaml``),
:meth:`list_managed`, :meth:`delete_resources` (``detach --delete-resources``),
:meth:`list_state`, :meth:`why_not_ready`, :meth:`events`, :meth:`watch_deployments`
and :attr:`metrics_note`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...api.domain import ClusterSpec
from ..base import (
    ChecksAttach,
    ClusterDriver,
    Identified,
    Namespaced,
    NotesMetrics,
    RecordsChanges,
    RecordsRollouts,
    RendersManifests,
    SharedCluster,
)
from . import manifests as mf
from . import metrics as metrics_mod
from .changes import ChangeEvents
from .client import KubeApi
from .kubeconfig import load_context
from .progressive import RolloutRecords
from .rollout import Rollouts
from .state import ClusterState
from .telemetry import PodTelemetry


class KubernetesDriver(
    Rollouts,
    ClusterState,
    PodTelemetry,
    ChangeEvents,
    RolloutRecords,
    ClusterDriver,
    Namespaced,
    Identified,
    ChecksAttach,
    RendersManifests,
    NotesMetrics,
    SharedCluster,
    RecordsChanges,
    RecordsRollouts,
):
    """One cluster's settings and the state the rooms share. The rooms come in through
    three bases: :class:`~.rollout.Rollouts` builds on :class:`~.endpoints.EndpointObjects`
    and :class:`~.diagnosis.PodDiagnosis`, :class:`~.state.ClusterState` and the endpoints on
    :class:`~.attach.AttachChecks`, and every room on :class:`~.resources.Resources`."""

    def __init__(
        self,
        spec: ClusterSpec,
        *,
        data_dir: Path,
        rollout_timeout: float = 900.0,
        poll_interval: float = 1.0,
        crashloop_restarts: int = 2,
        schedule_grace: float = 120.0,
        request_timeout: tuple[float, float] = (5.0, 30.0),
        concurrency: int = 8,
        attempts: int = 5,
        max_backoff: float = 8.0,
    ) -> None:
        super().__init__(spec)
        self.data_dir = data_dir
        self.ctx = load_context(spec.kube_context)
        self.namespace = spec.namespace or self.ctx.namespace
        self.api = KubeApi(
            self.ctx,
            spec.name,
            concurrency=concurrency,
            timeout=request_timeout,
            attempts=attempts,
            max_backoff=max_backoff,
        )
        self.gateway = mf.GatewayRef.from_tags(spec.tags)
        self.rollout_timeout = rollout_timeout
        self.poll_interval = poll_interval
        self.crashloop_restarts = crashloop_restarts
        self.schedule_grace = schedule_grace
        self._gateway_api: bool = False
        self._gateway_url: str | None = None
        self._gateway_url_source = "none"
        self._gateway_checked = 0.0  # time.monotonic() of the last look at the Gateway
        self._scrapes: dict[tuple[str, str], metrics_mod.Recent] = {}
        #: Set when the metrics server is missing: CPU/memory are unavailable, and why.
        self.metrics_note: str | None = None
        #: (kind, name) -> the fields of the object as this control plane knows them (its
        #: own last write, or what it first listed): the base of the next write's check.
        self._seen: dict[tuple[str, str], dict[str, Any]] = {}

    def retag(self, tags: dict[str, str]) -> bool:
        """New cluster tags: the Gateway (``modeldeck.io/gateway``) and the scoring address
        (``modeldeck.io/gateway-url``, else read from the Gateway again at the next look)."""
        before = self.gateway
        super().retag(tags)
        self.gateway = mf.GatewayRef.from_tags(self.spec.tags)
        self._gateway_url, self._gateway_url_source, self._gateway_checked = None, "none", 0.0
        return self.gateway != before

    # ------------------------------------------------------------------ identity

    @property
    def identity(self) -> tuple[str, str]:
        """(API server URL, namespace): the engine refuses a second attachment of the same."""
        return (self.ctx.server, self.namespace)

    async def close(self) -> None:
        await self.api.close()
