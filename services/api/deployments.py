"""Domain types: a deployment and its settings (see domain.py: re-exported there, loaded on
first use)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .domain import DeploymentRole, ProvisioningState


@dataclass(frozen=True)
class ResourceSet:
    cpu: float | None = None  # cores
    memory_gb: float | None = None  # GiB
    gpu: int = 0


@dataclass(frozen=True)
class Resources:
    requests: ResourceSet = field(default_factory=lambda: ResourceSet(cpu=0.1, memory_gb=0.5))
    limits: ResourceSet = field(default_factory=ResourceSet)


@dataclass(frozen=True)
class ScaleSettings:
    """``type`` is ``default`` (fixed ``instance_count``) or ``target_utilization``."""

    type: str = "default"
    min_instances: int = 1
    max_instances: int = 1
    target_utilization_percentage: int = 70
    polling_interval: int = 1  # seconds


@dataclass(frozen=True)
class RequestSettings:
    request_timeout_ms: int = 5000
    max_concurrent_requests_per_instance: int = 1
    max_queue_wait_ms: int = 500


@dataclass(frozen=True)
class Probe:
    """A liveness or readiness probe (``GET /``), in seconds. The defaults are az ml's
    (``azure.ai.ml.entities.ProbeSettings``: initial_delay 10, period 10, timeout 2,
    failure_threshold 30, success_threshold 1; REST ``ProbeSettings`` the same): a block
    given in part is completed with them. A deployment that gives no probe at all has
    ``None``, and each back end applies its own default (Azure ML: the service's, by sending
    nothing; Kubernetes: these; a local pool: ``supervisor.LOCAL_PROBE``)."""

    initial_delay: int = 10
    period: int = 10
    timeout: int = 2
    failure_threshold: int = 30
    success_threshold: int = 1


@dataclass(frozen=True)
class CodeConfiguration:
    code: str  # folder
    scoring_script: str  # file inside the folder


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    endpoint_name: str
    model: str  # "azureml:NAME:VERSION" or "NAME:VERSION"
    code_configuration: CodeConfiguration
    instance_count: int = 1
    resources: Resources = field(default_factory=Resources)
    scale_settings: ScaleSettings = field(default_factory=ScaleSettings)
    request_settings: RequestSettings = field(default_factory=RequestSettings)
    #: None: not given, the back end's default applies (:class:`Probe`)
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    environment_variables: dict[str, str] = field(default_factory=dict)
    #: an image (Kubernetes), a registered environment (``azureml:NAME:VERSION``,
    #: ``azureml:NAME@latest``) or a curated one (``azureml://registries/azureml/...``)
    environment: str | None = None
    #: an inline environment's content (local pools build it): ``conda_file`` (the parsed
    #: conda document), ``base_dir`` (where its relative paths are), ``name``, ``image``
    environment_inline: dict[str, Any] | None = None
    runtime: str = "default"  # "default" | "azmlinfsrv"
    role: DeploymentRole = DeploymentRole.TREATMENT
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    storage_uri: str | None = None  # Kubernetes: model/code larger than 1 MiB
    #: sent by the back ends with the "deployment.instance_type" / "...app_insights_enabled"
    #: capabilities (Azure ML: ``instanceType``, ``appInsightsEnabled``); warned about elsewhere
    instance_type: str | None = None
    app_insights_enabled: bool = False


@dataclass(frozen=True)
class Deployment:
    spec: DeploymentSpec
    provisioning_state: ProvisioningState
    ready_replicas: int = 0
    desired_replicas: int = 0
    traffic: int = 0  # this deployment's share of its endpoint's traffic
    mirror_traffic: int = 0
    error: str | None = None  # why it is not ready (init() failed, FailedScheduling, ...)
    created_at: float | None = None
    updated_at: float | None = None
    revision: str = ""  # as Endpoint.revision
    properties: dict[str, str] = field(default_factory=dict)  # ARM's properties.properties

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def endpoint_name(self) -> str:
        return self.spec.endpoint_name
