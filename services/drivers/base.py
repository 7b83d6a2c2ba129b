"""How the local control plane runs deployments on one cluster.

The control plane (``services/local/controlplane/engine.py``) owns the records (SQLite) and
the rules; a :class:`ClusterDriver` makes a cluster match them:

* ``pool``: :class:`modeldeck.services.drivers.pool.PoolDriver`, real scoring
  processes on this host behind the control plane's gateway;
* ``kubernetes``: :class:`modeldeck.services.drivers.kubernetes.driver.KubernetesDriver`,
  Deployments, Services, HPA, Secret and HTTPRoute through the kubeconfig.

The engine validates everything before it calls a driver; a driver trusts its
input. A driver raises the typed errors of :mod:`modeldeck.services.api.errors`.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from ..api.domain import ClusterSpec, DeploymentSpec, LogLine, MetricSample, Model

#: progress(fraction 0..1, message)
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Capacity:
    nodes: int
    vcpus: float
    memory_gb: float
    version: str | None = None


@dataclass(frozen=True)
class EndpointAuth:
    """What a data plane needs to check a request's ``Authorization`` header."""

    mode: str  # "key" | "aml_token" | "none"
    primary_key: str
    secondary_key: str
    token_secret: str  # HMAC key that signs aml_token tokens


@dataclass(frozen=True)
class EndpointRoute:
    """An endpoint as its data plane sees it."""

    name: str
    auth: EndpointAuth
    traffic: dict[str, int]
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    # kept with the endpoint on the cluster, so another operator's workspace adopts them
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    #: The endpoint as the caller's records had it before this change (None: a new one, or
    #: unknown). A driver whose data plane two control planes write (kubernetes) keeps what
    #: someone else changed since and refuses with Conflict a change to the same field.
    base: EndpointRoute | None = None


@dataclass(frozen=True)
class DeploymentRuntime:
    """A deployment with everything resolved: where the model and code are on disk."""

    spec: DeploymentSpec
    model: Model  # model.path: the workspace's copy (file or folder)
    code_dir: str  # the workspace's copy of code_configuration.code
    #: The spec as the caller's records had it before this change (as EndpointRoute.base).
    base: DeploymentSpec | None = None
    #: the deployment's built environment's interpreter (local pools); None = modeldeck's own
    python: str | None = None
    #: the deployment's resolved environment (a ``services.environments.ResolvedEnvironment``)
    #: that a Kubernetes pod builds in its init container; None = the image's own python
    environment: Any = None


@dataclass(frozen=True)
class DeploymentStatus:
    ready_replicas: int
    desired_replicas: int
    error: str | None = None  # why it is not ready


class ClusterDriver(abc.ABC):
    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec

    @abc.abstractmethod
    async def capacity(self) -> Capacity:
        """Total allocatable capacity; raises Unreachable when the cluster does not answer."""

    @abc.abstractmethod
    def scoring_uri(self, endpoint: str) -> str: ...

    @abc.abstractmethod
    async def apply_endpoint(self, route: EndpointRoute) -> None:
        """Create or update the endpoint's route, auth and traffic split (atomically)."""

    @abc.abstractmethod
    async def delete_endpoint(self, name: str) -> None: ...

    @abc.abstractmethod
    async def apply_deployment(
        self, endpoint: str, runtime: DeploymentRuntime, progress: Progress
    ) -> None:
        """Create, or update without downtime: new replicas ready before old ones stop.

        Returns when the deployment is ready; raises (and leaves the previous
        replicas serving) when it cannot become ready.
        """

    @abc.abstractmethod
    async def delete_deployment(self, endpoint: str, name: str) -> None: ...

    @abc.abstractmethod
    async def deployment_status(self, endpoint: str, name: str) -> DeploymentStatus: ...

    @abc.abstractmethod
    async def read_logs(
        self, endpoint: str, name: str, lines: int, *, since: float | None = None
    ) -> list[LogLine]:
        """The last ``lines`` lines, oldest first; ``since`` (epoch seconds): only lines
        written at or after it."""

    @abc.abstractmethod
    def follow_logs(
        self, endpoint: str, name: str, lines: int, *, since: float | None = None
    ) -> AsyncIterator[LogLine]:
        """``read_logs``, then new lines as they are written (none before ``since``)."""

    @abc.abstractmethod
    async def metrics(self, endpoint: str | None = None) -> list[MetricSample]: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Stop what the driver runs in this process (not what runs on the cluster)."""
