"""How the local control plane runs deployments on one cluster.

The control plane (``services/local/controlplane/engine.py``) owns the records (SQLite) and
the rules; a :class:`ClusterDriver` makes a cluster match them:

* ``pool``: :class:`modeldeck.services.drivers.pool.PoolDriver`, real scoring
  processes on this host behind the control plane's gateway;
* ``kubernetes``: :class:`modeldeck.services.drivers.kubernetes.driver.KubernetesDriver`,
  Deployments, Services, HPA, Secret and HTTPRoute through the kubeconfig.

The engine validates everything before it calls a driver; a driver trusts its
input. A driver raises the typed errors of :mod:`modeldeck.services.api.errors`.

Beyond the contract every driver keeps (:class:`ClusterDriver`), a driver may have
optional capabilities, each a :class:`typing.Protocol` below that the engine asks for
with ``isinstance`` (what the driver can do, not which driver it is). They are Protocols
rather than ABC methods with defaults because a default would be a lie for most of them
(a pool has no namespace, no manifests and no state shared with other operators); a
driver names the ones it has in its base list, so a type checker holds it to them.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..api.domain import (
    ChangeRecord,
    ClusterSpec,
    DeploymentSpec,
    LogLine,
    MetricSample,
    Model,
    Probe,
)

if TYPE_CHECKING:
    from ..local.dataplane.logstore import LogStore

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
    #: An az ml ``--local`` endpoint's owner: a request with no ``Authorization`` header on a
    #: loopback connection from a socket of this uid is let in (az ml's local endpoints take
    #: requests with no key); anyone else's still needs the key. None: the key always.
    #: The local gateway honours it; a cluster's data plane does not (the key always).
    owner_uid: int | None = None


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
    #: the probe a deployment that gives none gets (az ml's defaults unless the driver says)
    default_probe: Probe = Probe()

    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec

    def retag(self, tags: dict[str, str]) -> bool:
        """Take the cluster's new tags (``cluster update --tag``); True when the endpoints'
        routes must be written again (a Kubernetes cluster's Gateway changed)."""
        self.spec = replace(self.spec, tags=dict(tags))
        return False

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
        self,
        endpoint: str,
        name: str,
        lines: int,
        *,
        since: float | None = None,
        container: str | None = None,
    ) -> list[LogLine]:
        """The last ``lines`` lines, oldest first; ``since`` (epoch seconds): only lines
        written at or after it; ``container`` (``validation.LOG_CONTAINERS``): only that
        container's lines, refused (InvalidInput) by a driver that has no such container."""

    @abc.abstractmethod
    def follow_logs(
        self,
        endpoint: str,
        name: str,
        lines: int,
        *,
        since: float | None = None,
        container: str | None = None,
    ) -> AsyncIterator[LogLine]:
        """``read_logs``, then new lines as they are written (none before ``since``)."""

    @abc.abstractmethod
    async def metrics(self, endpoint: str | None = None) -> list[MetricSample]: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Stop what the driver runs in this process (not what runs on the cluster)."""


# ---------------------------------------------------------------------------- capabilities


@runtime_checkable
class Namespaced(Protocol):
    """Runs in one namespace of a shared cluster (resolved from the kubeconfig's context
    when the cluster's spec names none)."""

    namespace: str


@runtime_checkable
class Identified(Protocol):
    """Knows where it points: the engine refuses to attach the same place twice."""

    @property
    def identity(self) -> tuple[str, str]:
        """(API server URL, namespace)."""
        ...


@runtime_checkable
class ChecksAttach(Protocol):
    """Has its own ``cluster attach`` check (else the engine asks for its capacity)."""

    async def attach_check(self) -> tuple[Capacity, list[str]]:
        """The cluster answers and may be used: its capacity, and notes for the user."""
        ...


@runtime_checkable
class KeepsLogs(Protocol):
    """Writes its deployments' logs on this host (where an environment build writes too)."""

    logstore: LogStore


@runtime_checkable
class RendersManifests(Protocol):
    """Can print what it would apply (``--dry-run``), without applying it."""

    def render_endpoint(
        self, route: EndpointRoute, deployments: list[str] | None = None
    ) -> list[dict]: ...

    async def render_deployment(self, endpoint: str, runtime: DeploymentRuntime) -> list[dict]: ...


@runtime_checkable
class ScoresThroughApi(Protocol):
    """Knows where its scoring URI comes from, and can score through its API server (a
    jump box that reaches the API server but not the cluster's load balancer)."""

    def scoring_address(self) -> tuple[str, str]:
        """(base URL or "", its source: cluster_tag, gateway_status, load_balancer, none)."""
        ...

    def scoring_uri_note(self, endpoint: str) -> str | None:
        """Why there is no scoring URI, and the fix (None when there is one)."""
        ...

    async def score_via_api(
        self, endpoint: str, deployment: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> tuple[int, bytes, dict[str, str], str]:
        """POST to the deployment's Service through the API server's service proxy:
        (status, body, lower-cased headers, the path used)."""
        ...


@runtime_checkable
class NotesMetrics(Protocol):
    """Says why some metrics are missing (None: none are)."""

    metrics_note: str | None


@runtime_checkable
class SharedCluster(Protocol):
    """A cluster other operators' workspaces may write too: its state is read (adoption),
    followed, and what modeldeck made there can be deleted (``detach --delete-resources``)."""

    async def list_state(self, *, secrets: bool = False) -> dict[str, Any]: ...

    async def wait_for_change(
        self, resource_versions: dict[str, str], timeout_s: float = 60.0
    ) -> bool: ...

    async def delete_resources(self) -> list[dict[str, str]]: ...


@runtime_checkable
class RecordsChanges(Protocol):
    """Shows the control plane's audit history on the cluster's own objects, where its
    users look (Kubernetes: an annotation on the changed object and an Event)."""

    async def record_change(
        self, endpoint: str, deployment: str | None, change: ChangeRecord
    ) -> None: ...


@runtime_checkable
class RecordsRollouts(Protocol):
    """Keeps a progressive rollout's state on the cluster, where every operator's control
    plane attached to it reads it (Kubernetes: the annotation ``modeldeck.io/rollout`` on the
    endpoint's HTTPRoute): the control plane that drives a rollout publishes it at each
    step and heartbeat; another one sees it there and starts no second rollout."""

    async def publish_rollout(self, endpoint: str, data: dict | None) -> None:
        """Write the rollout's state (``data``: JSON-able; None removes it)."""
        ...

    async def read_rollout(self, endpoint: str) -> dict | None:
        """The state last published for the endpoint (None: none, or no route)."""
        ...
