"""Domain types: clusters (see domain.py: re-exported there, loaded on first use)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .domain import ClusterPurpose, DriverKind, ProvisioningState


@dataclass(frozen=True)
class ClusterSpec:
    """What ``cluster create`` asks for (a pool) or ``cluster attach`` (Kubernetes)."""

    name: str
    driver: DriverKind = DriverKind.POOL
    purpose: ClusterPurpose = ClusterPurpose.FAST_PROD
    agent_count: int = 3
    vm_size: str = "Standard_D3_v2"
    kube_context: str | None = None
    namespace: str | None = None
    resource_id: str | None = None  # Azure ML attach: the AKS/Arc cluster's ARM resource id
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    #: the local workspace's managed capacity (the built-in record endpoints without
    #: ``compute`` run on); never set by a user's create or attach
    managed: bool = False


@dataclass(frozen=True)
class Cluster:
    """A cluster. Where the back end does not know a figure it is None, never a guess: an
    Azure ML Kubernetes compute has no purpose, node count or size in ARM (``type``
    ``kubernetes``), so it has none here either."""

    name: str
    driver: DriverKind
    purpose: ClusterPurpose | None
    provisioning_state: ProvisioningState
    agent_count: int | None  # nodes
    vm_size: str | None
    vcpus_total: float | None
    memory_gb_total: float | None
    vcpus_used: float = 0.0
    memory_gb_used: float = 0.0
    version: str | None = None  # Kubernetes version, or the local control plane's
    kube_context: str | None = None
    namespace: str | None = None
    resource_id: str | None = None
    endpoints: int = 0
    error: str | None = None  # set when the cluster cannot be reached; the row shows it
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    created_at: float | None = None
    #: the compute's type as az ml names it (Azure ML: ``aks``, ``kubernetes``); "" for
    #: modeldeck's own clusters, whose ``driver`` says it
    type: str = ""
    location: str = ""  # Azure ML: the compute's region; "" elsewhere
    #: the local workspace's managed capacity (this host, where endpoints without
    #: ``compute`` run): made on demand, not created, scaled, detached or deleted by users
    managed: bool = False

    @property
    def vcpus_free(self) -> float:
        return max(0.0, (self.vcpus_total or 0.0) - self.vcpus_used)
