"""Domain types: plain, frozen, validated once at the edge (see validation.py).

Field names follow Azure ML v2 (``az ml``) so that ``to_dict()`` output reads
as ``az ml ... show`` prints it. ``from_dict()`` is the inverse and is what the
wire protocol (daemon <-> client) uses; it trusts its input (validation is
separate, in :mod:`modeldeck.services.api.validation`).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


class _StrEnum(enum.StrEnum):
    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: Any) -> _StrEnum:
        """Case-insensitive, as ``az ml`` takes enum values (``auth_mode: Key``)."""
        if isinstance(value, cls):
            return value
        text = str(value).strip().lower().replace("-", "_")
        for member in cls:
            if member.value.lower().replace("-", "_") == text:
                return member
        raise ValueError(value)


class DriverKind(_StrEnum):
    """Which driver runs a cluster (the drivers themselves: ``drivers.base.ClusterDriver``)."""

    POOL = "pool"
    KUBERNETES = "kubernetes"
    AZUREML = "azureml"  # a compute target of an Azure ML workspace


class ClusterPurpose(_StrEnum):
    FAST_PROD = "FastProd"
    DEV_TEST = "DevTest"


class AuthMode(_StrEnum):
    KEY = "key"
    AML_TOKEN = "aml_token"
    NONE = "none"


class KeyType(_StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


class ProvisioningState(_StrEnum):
    CREATING = "Creating"
    UPDATING = "Updating"
    SCALING = "Scaling"
    DELETING = "Deleting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"


class DeploymentRole(_StrEnum):
    CONTROL = "control"
    TREATMENT = "treatment"


class OperationStatus(_StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


# --------------------------------------------------------------------------- clusters


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


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: str  # a file or a folder on the caller's machine
    version: int | None = None  # None: next version
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    #: az ml's model types: "custom_model", or "mlflow_model" (a folder with an MLmodel file,
    #: which a deployment with no code_configuration serves through mlflow.pyfunc)
    type: str = "custom_model"


@dataclass(frozen=True)
class Model:
    name: str
    version: int
    path: str  # where the workspace keeps its copy
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    type: str = "custom_model"
    original_path: str | None = None
    created_at: float | None = None
    #: az ml's ``model archive``: hidden from ``list`` and from the latest version, still
    #: usable by its version (``model restore`` brings it back)
    archived: bool = False

    @property
    def ref(self) -> str:
        return f"azureml:{self.name}:{self.version}"


@dataclass(frozen=True)
class Environment:
    """A registered environment (``az ml environment``): an image, a conda file, or both.

    ``key`` names the isolated Python environment the content resolves to (local pools
    build it under ``DATA_DIR/envs/<key>``); ``size_bytes`` is its size once built and
    ``users`` the deployments (``endpoint/deployment``) that run in it."""

    name: str
    version: str = ""  # "": the next version
    image: str | None = None
    conda_file: dict[str, Any] | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    os_type: str = "linux"
    #: where relative paths in the conda file (``-r reqs.txt``) are taken from
    base_dir: str | None = None
    stage: str = "Development"  # "Archived" once archived
    created_at: float | None = None
    key: str | None = None
    size_bytes: int | None = None
    users: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"azureml:{self.name}:{self.version}"


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    #: the cluster's name; "" (none given): a managed online endpoint, as in az ml (the
    #: local workspace's managed capacity; Azure ML's managed compute)
    compute: str
    auth_mode: AuthMode = AuthMode.KEY
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    #: "enabled" | "disabled" (az ml's words); None: the back end's default. Sent by the
    #: back ends with the "endpoint.public_network_access" capability (Azure ML)
    public_network_access: str | None = None
    #: made with az ml's ``--local``: on the local workspace its owner's own requests need no
    #: key (as az ml's local endpoints take none); anyone else's still do
    local: bool = False


@dataclass(frozen=True)
class Identity:
    """A resource's managed identity, in az ml's words (azure-ai-ml ``IdentitySchema``:
    ``type`` in snake case, ``system_assigned``)."""

    type: str = "system_assigned"
    principal_id: str = ""
    tenant_id: str = ""


@dataclass(frozen=True)
class Endpoint:
    name: str
    compute: str
    auth_mode: AuthMode
    scoring_uri: str
    traffic: dict[str, int]
    mirror_traffic: dict[str, int]
    provisioning_state: ProvisioningState
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    kind: str = "K8s"
    control: str | None = None  # the deployment marked as control, if any
    created_at: float | None = None
    error: str | None = None
    # Opaque: the local store's counter, ARM's etag, Kubernetes' resourceVersion. An update
    # that carries it (``if_revision``) is refused with Conflict when it no longer matches.
    revision: str = ""
    # The deployment's OpenAPI spec behind the endpoint's auth (az ml's ``openapi_uri``,
    # ARM's ``swaggerUri``): GET it with the key, ``?version=3`` for OpenAPI 3.
    openapi_uri: str = ""
    # Where scoring_uri comes from on a Kubernetes cluster: cluster_tag (the cluster's
    # modeldeck.io/gateway-url), gateway_status (the Gateway's status.addresses),
    # load_balancer (its LoadBalancer Service), none (then scoring_uri is "" and error
    # says how to get one); "" elsewhere.
    scoring_uri_source: str = ""
    #: as EndpointSpec's, as the back end reports it (None: it has no such setting)
    public_network_access: str | None = None
    #: what Azure ML reports beside (ARM ``identity``, ``properties.properties``,
    #: ``location``); the local workspace has none (the CLI prints its placeholders)
    identity: Identity | None = None
    properties: dict[str, str] = field(default_factory=dict)
    location: str = ""
    #: a managed endpoint (``compute`` "", ``kind`` "Managed") of the local workspace: the
    #: cluster record of the managed capacity its deployments run on (``compute show -n``
    #: it); "" elsewhere (an endpoint on a named cluster, or Azure's managed compute)
    managed_capacity: str = ""
    #: as EndpointSpec's
    local: bool = False

    @property
    def cluster(self) -> str:
        """The cluster record its deployments run on; "" when the back end manages it."""
        return self.compute or self.managed_capacity


@dataclass(frozen=True)
class EndpointPatch:
    """What ``update_endpoint`` changes on an endpoint; a field left None stays as it is.

    ``traffic`` is always a full map (atomic); ``control=""`` clears the control mark.
    The revision the change was computed on travels beside it (``if_revision``): it is a
    precondition of the write, not a change.
    """

    traffic: dict[str, int] | None = None
    mirror_traffic: dict[str, int] | None = None
    description: str | None = None
    tags: dict[str, str] | None = None
    control: str | None = None
    #: as EndpointSpec's; sent by the back ends with that capability only
    public_network_access: str | None = None

    def changes(self) -> dict[str, Any]:
        """The fields given, by name: what a back end sends (the local client's PATCH body)."""
        return {
            f.name: value
            for f in dataclasses.fields(self)
            if (value := getattr(self, f.name)) is not None
        }


def openapi_uri_for(scoring_uri: str) -> str:
    """``.../score`` -> ``.../swagger.json``, as Azure ML lays out an endpoint's URIs."""
    if scoring_uri.endswith("/score"):
        return scoring_uri[: -len("/score")] + "/swagger.json"
    return ""


@dataclass(frozen=True)
class EndpointKeys:
    primaryKey: str
    secondaryKey: str


@dataclass(frozen=True)
class EndpointToken:
    accessToken: str
    expiryTimeUtc: float
    refreshAfterTimeUtc: float
    tokenType: str = "Bearer"


# --------------------------------------------------------------------------- deployments


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


# --------------------------------------------------------------------------- streams


@dataclass(frozen=True)
class LogLine:
    ts: float  # epoch seconds
    endpoint: str
    deployment: str
    replica: str  # e.g. "blue-0"
    stream: str  # "stdout" | "stderr" | "log" | "system"
    text: str


@dataclass(frozen=True)
class MetricSample:
    ts: float
    endpoint: str
    deployment: str
    requests_total: int = 0
    requests_per_second: float = 0.0
    errors_total: int = 0
    error_rate: float = 0.0  # errors / requests over the last interval, 0..1
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    status_codes: dict[str, int] = field(default_factory=dict)
    cpu_percent: float | None = None  # sum over replicas, 100 = one core
    memory_mb: float | None = None
    replicas_ready: int = 0
    replicas_desired: int = 0
    #: where the real p95 lies when ``latency_p95_ms`` is interpolated in a histogram (the
    #: Kubernetes pods' buckets): the bounds of its bucket, the last one's upper bound None
    #: (unbounded); None when the p95 is measured (the local gateway, Azure Monitor)
    latency_p95_bounds_ms: tuple[float, float | None] | None = None


@dataclass(frozen=True)
class MetricsReport:
    """What ``get_metrics`` answers: one sample per deployment, and endpoint -> why some of
    its metrics are missing (e.g. a Kubernetes cluster without the metrics server; ``"*"``
    for all endpoints), both as of that one call."""

    samples: list[MetricSample] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)


#: The history windows ``get_metrics_history`` takes: name -> (seconds, seconds between
#: points), so a plot holds 30-300 points whatever the window (a back end whose finest grain
#: is coarser, as Azure Monitor's one minute, uses its own).
METRICS_WINDOWS: dict[str, tuple[int, int]] = {
    "5m": (300, 10),
    "1h": (3600, 60),
    "24h": (86400, 300),
    "7d": (7 * 86400, 3600),
}


@dataclass(frozen=True)
class MetricsHistory:
    """What ``get_metrics_history`` answers: per deployment, points ``step_s`` seconds apart
    over the last ``window`` (a key of :data:`METRICS_WINDOWS`), oldest first.

    Each point is a :class:`MetricSample` whose ``ts`` is the end of its step;
    ``requests_total``, ``errors_total`` and ``status_codes`` (by class: ``"2xx"``,
    ``"4xx"``, ``"5xx"``) count the requests of that step, ``requests_per_second`` and
    ``error_rate`` are over it; latency p95/p99 are the highest of the step (p50 weighted
    by requests), CPU and memory its average, ``replicas_ready`` its fewest. A step with no
    sample has no point (a gap, not a zero). ``missing``: as in :class:`MetricsReport`."""

    window: str
    step_s: int
    points: list[MetricSample] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The compact wire form: each point a list of :class:`MetricSample`'s fields in
        ``fields`` order (24 h of 100 deployments is 28,800 points: ``to_dict`` and
        ``from_dict`` spent seconds on them)."""
        names = [f.name for f in dataclasses.fields(MetricSample)]
        return {
            "window": self.window,
            "step_s": self.step_s,
            "missing": dict(self.missing),
            "fields": names,
            "points": [[getattr(p, n) for n in names] for p in self.points],
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> MetricsHistory:
        names = data["fields"]
        return cls(
            data["window"],
            int(data["step_s"]),
            [MetricSample(**dict(zip(names, row, strict=True))) for row in data["points"]],
            dict(data.get("missing") or {}),
        )


@dataclass(frozen=True)
class InvokeResult:
    status: int
    body: bytes
    deployment: (
        str | None
    )  # who answered (x-ms-azureml-model-deployment / azureml-model-deployment)
    request_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: How the request went when not to the scoring URI (Kubernetes: the API server's
    #: service proxy, its path, and why); None: the scoring URI.
    via: str | None = None


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Operation:
    """A long operation: create cluster, create/update deployment, delete, ..."""

    id: str
    kind: str  # e.g. "deployment.create"
    target: str  # e.g. "my-endpoint/blue"
    status: OperationStatus
    progress: float = 0.0  # 0..1
    message: str = ""
    error: dict[str, Any] | None = None  # ModeldeckError.to_dict() when Failed
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def done(self) -> bool:
        return self.status is not OperationStatus.RUNNING


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class ChangeRecord:
    """One change of an endpoint, one of its deployments or a cluster, as the audit history
    records it: who (``user@host`` of the client, local; the caller, Azure), when, what
    (``action``: create, update, delete, regenerate-keys, attach, detach, or the ARM
    operation's name) and each field's value before and after (``{path: [before, after]}``,
    None where it did not exist; keys never, only ``set <fingerprint>``)."""

    at: float  # epoch seconds
    actor: str
    kind: str  # "endpoint" | "deployment" | "cluster"
    target: str  # "ep", "ep/blue", or the cluster's name
    action: str
    changed: dict[str, list[Any]] = field(default_factory=dict)
    #: the revision this change made (local workspace): a revert sends it as ``if_revision``
    revision: str | None = None
    status: str = ""  # Azure activity log: Succeeded, Failed, ...


@dataclass(frozen=True)
class ChangeHistory:
    """What ``get_history`` answers: the changes, oldest first, and what this back end
    cannot show (None: nothing missing), in words."""

    changes: list[ChangeRecord] = field(default_factory=list)
    missing: str | None = None


# --------------------------------------------------------------------------- (de)serialisation


def to_dict(obj: Any) -> Any:
    """Plain JSON-able data. A Deployment flattens its spec, as ``az ml`` prints it."""
    if isinstance(obj, Deployment):
        out = to_dict(obj.spec)
        status = {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        del status["spec"]
        out.update(status)
        return out
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return obj


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls)
        _HINTS[cls] = hints
    return hints


def from_dict(cls: type[T], data: Any) -> T:
    """Inverse of :func:`to_dict` for the domain dataclasses. Unknown keys are ignored."""
    if cls is Deployment and isinstance(data, dict) and "spec" not in data:
        spec_names = {f.name for f in dataclasses.fields(DeploymentSpec)}
        data = {
            "spec": {k: v for k, v in data.items() if k in spec_names},
            **{k: v for k, v in data.items() if k not in spec_names},
        }
    return _convert(cls, data)


def _convert(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(args[0], value) if len(args) == 1 else value
    if origin is dict:
        _, vt = typing.get_args(tp)
        return {str(k): _convert(vt, v) for k, v in value.items()}
    if origin in (list, tuple):
        (it, *_) = typing.get_args(tp)
        items = [_convert(it, v) for v in value]
        return tuple(items) if origin is tuple else items  # a rollout's steps stay a tuple
    if tp is Any:
        return value
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            hints = _hints(tp)
            names = {f.name for f in dataclasses.fields(tp)}
            kwargs = {k: _convert(hints[k], v) for k, v in value.items() if k in names}
            return tp(**kwargs)
        if issubclass(tp, _StrEnum):
            return tp.parse(value)
        if tp is float and isinstance(value, int | float):
            return float(value)
    return value


def replace(obj: T, **changes: Any) -> T:
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
