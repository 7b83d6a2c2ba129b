"""An Azure ML workspace behind the Workspace API, through the ARM REST API.

Profile settings (``[workspaces.NAME]`` with ``provider = "azureml"``, or CLI flags):

* ``subscription_id`` (or ``subscription``), ``resource_group``, ``workspace_name``
  (or ``workspace``) — when missing, read from an Azure ML ``config.json`` in the
  current folder (or a parent), or its ``.azureml/`` folder, or ``config_file``;
* ``arm_endpoint`` (default ``https://management.azure.com``; a sovereign cloud's own),
  ``authority`` (e.g. ``login.microsoftonline.us``); ``arm_audience`` / ``ml_audience``
  when the token audiences are not derived from the endpoint (Azure Stack Hub, a proxy);
* optional: ``location``, ``timeout`` (s, default 30), ``poll_interval`` (s, default 5,
  used when ARM gives no Retry-After), ``max_retries`` (default 4),
  ``log_poll_interval`` (s, default 2), ``metrics_ttl`` (s, default 30),
  ``default_environment``;
* progressive rollouts (driven by the local daemon: ``rollouts.py``): ``rollout_poll`` (s,
  default 30: how often the daemon reads the endpoint and Azure Monitor),
  ``rollout_min_interval`` (s, default 300: the shortest ``--interval`` taken);
* ``credential``: an azure-identity credential object (tests pass a static one).

See docs/azureml.md for the REST mapping.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from typing import Any

import httpx

from ..api import validation
from ..api.domain import (
    ChangeHistory,
    EndpointPatch,
    EndpointToken,
    MetricsHistory,
    MetricsReport,
    Operation,
)
from ..api.errors import (
    InvalidInput,
)
from ..api.workspace import OperationHandle, Workspace
from ..armids import Scope, workspace_id
from ..retry import RetryPolicy
from .arm import ArmClient, Lro
from .assets import AssetRoom
from .auth import PUBLIC_ARM, TokenProvider, ml_scope_for, scope_for
from .clusters import ClusterRoom
from .deployments import DeploymentRoom
from .endpoints import EndpointRoom
from .monitor import BATCH_API_VERSION, Metrics, monitor_scope
from .rollouts import RolloutRoom
from .settings import resolve_settings

DEFAULT_ENVIRONMENT = (
    "azureml://registries/azureml/environments/minimal-ubuntu22.04-py39-cpu-inference/labels/latest"
)


class AzureMLWorkspace(
    RolloutRoom, ClusterRoom, AssetRoom, EndpointRoom, DeploymentRoom, Workspace
):
    """The ``Workspace`` API on one Azure ML workspace, through ARM.

    Written in rooms, one module each (see ``session.py``): :class:`ClusterRoom`,
    :class:`AssetRoom`, :class:`EndpointRoom`, :class:`DeploymentRoom`. This class holds
    the configuration (``__init__`` sets the state the rooms share, ``from_settings``), the
    lifecycle, ``update_endpoint``, metrics and operations.

    Mixins rather than delegation: the rooms share one state (the ARM client, the
    workspace's path, the operations in flight, the caches) and call one another (an
    endpoint needs its cluster, a deployment its model, code and environment and its
    endpoint's traffic). Delegation would add a forwarding method for each of the
    ``Workspace`` methods and wire the rooms to each other, with no state of their own
    to keep apart.
    """

    kind = "azureml"

    def arm_scope(self) -> Scope:
        """The profile's coordinates; ``location`` when the profile names it (an endpoint
        and a compute carry their own)."""
        return Scope(
            self.subscription_id, self.resource_group, self.workspace_name, self._location or ""
        )

    def __init__(
        self,
        name: str,
        *,
        subscription_id: str,
        resource_group: str,
        workspace_name: str,
        arm_endpoint: str = PUBLIC_ARM,
        authority: str | None = None,
        credential: Any = None,
        location: str | None = None,
        timeout: float = 30.0,
        poll_interval: float = 5.0,
        max_retries: int = 4,
        log_poll_interval: float = 2.0,
        default_environment: str = DEFAULT_ENVIRONMENT,
        metrics_ttl: float = 30.0,
        metrics_endpoint: str | None = None,
        arm_audience: str | None = None,
        ml_audience: str | None = None,
        rollout_poll: float = 30.0,
        rollout_min_interval: float = 300.0,
    ) -> None:
        super().__init__(name)
        #: what the daemon needs to open this workspace and drive its rollouts (no credential)
        self.coordinates: dict[str, Any] = {
            k: v
            for k, v in {
                "subscription_id": subscription_id,
                "resource_group": resource_group,
                "workspace_name": workspace_name,
                "arm_endpoint": arm_endpoint,
                "metrics_endpoint": metrics_endpoint,
                "authority": authority,
                "arm_audience": arm_audience,
                "ml_audience": ml_audience,
                "location": location,
                "timeout": timeout,
                "poll_interval": poll_interval,
                "max_retries": max_retries,
                "metrics_ttl": metrics_ttl,
                "rollout_poll": rollout_poll,
                "rollout_min_interval": rollout_min_interval,
            }.items()
            if v is not None
        }
        self.rollout_poll = rollout_poll
        self.rollout_min_interval = rollout_min_interval
        self._rollouts_client: Any = None
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.workspace_name = workspace_name
        self.arm_endpoint = arm_endpoint.rstrip("/")
        self._credential = credential
        #: one policy for ARM, Azure Monitor and the blob uploads (services/retry.py)
        self._retry = RetryPolicy(max_retries=max_retries)
        self.tokens = TokenProvider(
            credential, scope=scope_for(self.arm_endpoint, arm_audience), authority=authority
        )
        #: the Azure ML data-plane scope (aad_token endpoints) of the same cloud
        self.ml_scope = ml_scope_for(self.tokens.scope, ml_audience)
        self.arm = ArmClient(
            self.arm_endpoint,
            self.tokens,
            timeout=timeout,
            retry=self._retry,
            default_poll_interval=poll_interval,
        )
        self._timeout = timeout
        self._location = location
        self._log_poll = log_poll_interval
        self._default_env = default_environment
        self._ws = workspace_id(subscription_id, resource_group, workspace_name)
        self._ops: dict[str, Lro] = {}
        self._last_errors: dict[tuple[str, str], str] = {}
        #: (endpoint, deployment) -> GiB per instance (limit, else request), for metrics
        self._memory_gib: dict[tuple[str, str], float] = {}
        #: failures recorded by other processes (failures.py), read once per listing
        self._failures: dict[str, str] | None = None
        self._token_cache: dict[str, EndpointToken] = {}
        self._invoke_cache: dict[str, tuple[str, str, float]] = {}
        self._http: httpx.AsyncClient | None = None  # scoring and blob uploads (no ARM token)
        self._ml_tokens: TokenProvider | None = None
        self._metrics_ttl = metrics_ttl
        self._metrics_endpoint = metrics_endpoint.rstrip("/") if metrics_endpoint else None
        self._monitor: ArmClient | None = None
        self._metrics_cache: dict[str | None, tuple[float, MetricsReport]] = {}
        #: (kind, name, revision) -> the resource as read: what a refused update's
        #: Conflict compares with to name the fields someone else changed (bounded)
        self._reads: OrderedDict[tuple[str, str, str], dict[str, Any]] = OrderedDict()

    @classmethod
    def from_settings(cls, name: str, settings: dict[str, Any]) -> AzureMLWorkspace:
        s = resolve_settings(settings)
        if s.get("arm_endpoint") is None and os.environ.get("MODELDECK_ARM_ENDPOINT"):
            # a sovereign cloud for every workspace of this user, profile or not
            s = {**s, "arm_endpoint": os.environ["MODELDECK_ARM_ENDPOINT"]}
        kwargs: dict[str, Any] = {}
        for key, conv in (
            ("arm_endpoint", str),
            ("authority", str),
            ("location", str),
            ("timeout", float),
            ("poll_interval", float),
            ("max_retries", int),
            ("log_poll_interval", float),
            ("default_environment", str),
            ("metrics_ttl", float),
            ("metrics_endpoint", str),
            ("arm_audience", str),
            ("ml_audience", str),
            ("rollout_poll", float),
            ("rollout_min_interval", float),
        ):
            if s.get(key) is not None:
                try:
                    kwargs[key] = conv(s[key])
                except (TypeError, ValueError):
                    raise InvalidInput(key, s[key], f"must be a {conv.__name__}") from None
        return cls(
            name,
            subscription_id=str(s["subscription_id"]),
            resource_group=str(s["resource_group"]),
            workspace_name=str(s["workspace_name"]),
            credential=s.get("credential"),
            **kwargs,
        )

    @property
    def workspace_id(self) -> str:
        """The workspace's ARM resource id."""
        return self._ws

    def __repr__(self) -> str:
        return f"AzureMLWorkspace({self.name!r}, workspace={self.workspace_name!r})"

    async def close(self) -> None:
        if self._rollouts_client is not None:
            await self._rollouts_client.close()
        await self.arm.close()
        if self._monitor is not None:
            await self._monitor.close()
        if self._http is not None:
            await self._http.aclose()
        await self.tokens.close()

    def capabilities(self) -> frozenset[str]:
        """All of :meth:`Workspace.capabilities` but ``operations.detached``; remote assets,
        and the YAML keys ARM has (``publicNetworkAccess``, ``instanceType``,
        ``appInsightsEnabled``: mfe.json 2024-10-01 ``OnlineEndpoint``, ``OnlineDeployment``)."""
        return (Workspace.capabilities(self) - {"operations.detached"}) | {
            "assets.remote",
            "endpoint.public_network_access",
            "deployment.instance_type",
            "deployment.app_insights_enabled",
        }

    # -- endpoints ----------------------------------------------------------------------------
    async def update_endpoint(
        self, name: str, patch: EndpointPatch, *, if_revision: str | None = None
    ) -> OperationHandle:
        return self._track(await self._put_endpoint(name, patch, if_revision=if_revision))

    # -- metrics ------------------------------------------------------------------------------
    async def get_metrics(self, endpoint: str | None = None) -> MetricsReport:
        """Azure Monitor metrics of each endpoint, split by deployment (see ``monitor.py``).

        With the metrics batch API: 1 call per 50 endpoints + 1 per 50 deployments; else one
        ARM call per endpoint. What Azure Monitor does not have stays None/0 in the samples;
        the report's ``missing`` says why when a call failed.
        Azure Monitor's grain is one minute, so answers are reused for ``metrics_ttl``
        seconds (30 by default): a dashboard polling every second does not spend ARM's
        read budget (throttled per subscription) on figures that cannot have changed.
        """
        cached = self._metrics_cache.get(endpoint)
        if cached is not None and time.monotonic() - cached[0] < self._metrics_ttl:
            return MetricsReport(list(cached[1].samples), dict(cached[1].missing))
        report = await self._fetch_metrics(endpoint)
        self._metrics_cache[endpoint] = (time.monotonic(), report)
        return MetricsReport(list(report.samples), dict(report.missing))

    async def _batch_client(self) -> ArmClient | None:
        """The Azure Monitor batch endpoint: ``metrics_endpoint``, else the region's (public cloud)."""
        if self._monitor is None:
            endpoint = self._metrics_endpoint
            if endpoint is None and self.arm_endpoint == PUBLIC_ARM:
                location = await self.location()
                endpoint = f"https://{location}.metrics.monitor.azure.com" if location else None
            if endpoint is None:
                return None
            self._monitor = ArmClient(
                endpoint,
                self.tokens.for_scope(monitor_scope(endpoint)),
                api_version=BATCH_API_VERSION,
                timeout=self._timeout,
                retry=self._retry,
            )
        return self._monitor

    async def _fetch_metrics(self, endpoint: str | None) -> MetricsReport:
        eps = [await self._raw_endpoint(endpoint)] if endpoint else await self._raw_endpoints()
        missing: dict[str, str] = {}
        metrics = Metrics(
            self.arm, await self._batch_client(), self.subscription_id, self._memory_gib
        )
        return MetricsReport(await metrics.samples(eps, missing), missing)

    async def get_metrics_history(
        self, endpoint: str | None = None, deployment: str | None = None, *, window: str = "1h"
    ) -> MetricsHistory:
        """Azure Monitor's own history for the window (``monitor.Metrics.history``): one
        ARM call per endpoint for the requests by status class, one for the latencies."""
        name = validation.metrics_window(window)[0]
        eps = [await self._raw_endpoint(endpoint)] if endpoint else await self._raw_endpoints()
        if endpoint and deployment:
            await self.get_deployment(endpoint, deployment)  # NotFound as az ml says it
        missing: dict[str, str] = {}
        metrics = Metrics(self.arm, None, self.subscription_id)
        step, points = await metrics.history(eps, deployment, name, missing)
        return MetricsHistory(name, step, points, missing)

    # -- history ------------------------------------------------------------------------------
    async def get_history(self, endpoint: str | None = None) -> ChangeHistory:
        """The Azure activity log of the endpoint and its deployments (``activity.py``): who
        and which operation; the values before and after are not available, and it says so."""
        from . import activity

        where = self._ep(endpoint) if endpoint is not None else self._ws
        return await activity.history(self.arm, self.subscription_id, self.resource_group, where)

    # -- operations ---------------------------------------------------------------------------
    async def get_operation(self, op_id: str) -> Operation:
        return (await self.arm.poll(self._lro(op_id))).to_operation()

    async def list_operations(self) -> list[Operation]:
        return [lro.to_operation() for lro in self._ops.values()]
