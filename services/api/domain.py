"""Domain types: plain, frozen, validated once at the edge (see validation.py).

Field names follow Azure ML v2 (``az ml``) so that ``to_dict()`` output reads
as ``az ml ... show`` prints it. ``from_dict()`` is the inverse and is what the
wire protocol (daemon <-> client) uses; it trusts its input (validation is
separate, in :mod:`modeldeck.services.api.validation`).

The enums and the endpoint types are defined here; the others in a module of their group
(``clusters``, ``assets``, ``deployments``, ``streams``, ``operations``: :data:`_GROUPS`),
imported on first use through this module (``from .domain import Deployment`` works as
before). Each frozen dataclass costs its generated methods' compilation at import, about
1 ms: a command that lists endpoints defines only what it reads (cold start,
``bench/cli.py``; ``tests/cli/test_cold_path.py``).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import sys
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


# --------------------------------------------------------------------------- the other groups

#: module (beside this one) -> the domain types it defines
_GROUPS = {
    "clusters": ("ClusterSpec", "Cluster"),
    "assets": ("ModelSpec", "Model", "Environment"),
    "deployments": (
        "ResourceSet",
        "Resources",
        "ScaleSettings",
        "RequestSettings",
        "Probe",
        "CodeConfiguration",
        "DeploymentSpec",
        "Deployment",
    ),
    "streams": (
        "LogLine",
        "MetricSample",
        "MetricsReport",
        "METRICS_WINDOWS",
        "MetricsHistory",
        "InvokeResult",
    ),
    "operations": ("Operation", "ChangeRecord", "ChangeHistory"),
}
_GROUP_OF = {name: group for group, names in _GROUPS.items() for name in names}


def __getattr__(name: str) -> Any:
    """A type of another group, imported on first use (then kept here)."""
    group = _GROUP_OF.get(name)
    if group is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{group}", __package__), name)
    globals()[name] = value
    return value


def _deployment_types() -> Any:
    """The deployments group if imported (no Deployment exists before), else None."""
    return sys.modules.get(f"{__package__}.deployments")


# --------------------------------------------------------------------------- (de)serialisation


def to_dict(obj: Any) -> Any:
    """Plain JSON-able data. A Deployment flattens its spec, as ``az ml`` prints it."""
    deployments = _deployment_types()
    if deployments is not None and isinstance(obj, deployments.Deployment):
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
    deployments = _deployment_types()
    if (
        deployments is not None
        and cls is deployments.Deployment
        and isinstance(data, dict)
        and "spec" not in data
    ):
        spec_names = {f.name for f in dataclasses.fields(deployments.DeploymentSpec)}
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
