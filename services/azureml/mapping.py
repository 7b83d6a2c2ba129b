"""ARM REST bodies <-> modeldeck domain types. Pure functions: no I/O here.

Field names on the ARM side are those of the Microsoft.MachineLearningServices REST
spec (azure-rest-api-specs, ``stable/2024-10-01/mfe.json`` for online endpoints,
deployments, models and code; ``machineLearningServices.json`` for computes).

Why one file (about 740 lines): it is one translation table, read by section (ids and
paths, durations, quantities, states and times, clusters, models, endpoints, revisions,
deployments, logs), and every section uses the helpers at the top (durations, quantities,
states, tags), so each shape's reader and writer sit side by side below them. Split by
shape, each module would import those helpers back, and ``tests/azureml/test_mapping.py``
reads the table as one module. Azure Monitor's answers are read in ``monitor.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from .. import armids, vmsizes
from ..api.domain import (
    AuthMode,
    Cluster,
    ClusterPurpose,
    CodeConfiguration,
    Deployment,
    DeploymentRole,
    DeploymentSpec,
    DriverKind,
    Endpoint,
    EndpointSpec,
    Identity,
    LogLine,
    Model,
    Probe,
    ProvisioningState,
    RequestSettings,
    Resources,
    ResourceSet,
    ScaleSettings,
    to_dict,
)
from ..api.validation import cpu_quantity, memory_quantity

#: our own tags on ARM resources (kept out of the user's tags when read back)
TAG_CONTROL = "modeldeck.control"
TAG_ROLE = "modeldeck.role"
TAG_SCRIPT_DIR = "modeldeck.code"

CLUSTER_COMPUTE_TYPES = ("AKS", "Kubernetes")


# --------------------------------------------------------------------------- ids and paths


def last_segment(arm_id: str | None) -> str:
    return (arm_id or "").rstrip("/").rsplit("/", 1)[-1]


_MODEL_ID = re.compile(r"/models/([^/]+)/versions/([^/]+)$", re.IGNORECASE)


def model_ref(value: str | None) -> str:
    """``/subscriptions/.../models/NAME/versions/V`` -> ``azureml:NAME:V`` (others unchanged)."""
    if not value:
        return ""
    m = _MODEL_ID.search(value)
    if m:
        return f"azureml:{m.group(1)}:{m.group(2)}"
    return value


# --------------------------------------------------------------------------- durations


_ISO = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def iso_to_seconds(value: str | None, default: float = 0.0) -> float:
    """ISO 8601 duration (``PT5S``, ``PT0.5S``, ``PT1M30S``, ``P1D``) in seconds."""
    if not value:
        return default
    m = _ISO.match(value.strip().upper())
    if not m:
        return default
    parts = {k: float(v) for k, v in m.groupdict().items() if v}
    return (
        parts.get("d", 0) * 86400
        + parts.get("h", 0) * 3600
        + parts.get("m", 0) * 60
        + parts.get("s", 0)
    )


def seconds_to_iso(seconds: float) -> str:
    """Seconds as the shortest ISO 8601 duration ARM accepts (``PT0.5S``, ``PT5S``, ``PT2M``)."""
    if seconds <= 0:
        return "PT0S"
    whole = int(seconds)
    if whole == seconds and whole % 60 == 0:
        return f"PT{whole // 60}M"
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


def ms_to_iso(ms: int) -> str:
    return seconds_to_iso(ms / 1000.0)


def iso_to_ms(value: str | None, default: int) -> int:
    if not value:
        return default
    return round(iso_to_seconds(value, default / 1000.0) * 1000)


# --------------------------------------------------------------------------- quantities


def cpu_text(cores: float) -> str:
    """0.5 -> "0.5", 2 -> "2", 0.25 -> "250m"."""
    if cores == int(cores):
        return str(int(cores))
    milli = cores * 1000
    if milli == int(milli) and (cores * 10) != int(cores * 10):
        return f"{int(milli)}m"
    return f"{cores:g}"


def memory_text(gib: float) -> str:
    """GiB as a Kubernetes quantity: 1 -> "1Gi", 0.5 -> "512Mi"."""
    if gib == int(gib):
        return f"{int(gib)}Gi"
    return f"{round(gib * 1024)}Mi"


def _resource_set(data: dict[str, Any] | None) -> ResourceSet:
    data = data or {}
    cpu = data.get("cpu")
    mem = data.get("memory")
    gpu = data.get("gpu")
    return ResourceSet(
        cpu=cpu_quantity(cpu, "cpu") if cpu not in (None, "") else None,
        memory_gb=memory_quantity(mem, "memory") if mem not in (None, "") else None,
        gpu=int(gpu) if gpu not in (None, "") else 0,
    )


def _resource_body(rs: ResourceSet) -> dict[str, str]:
    out: dict[str, str] = {}
    if rs.cpu is not None:
        out["cpu"] = cpu_text(rs.cpu)
    if rs.memory_gb is not None:
        out["memory"] = memory_text(rs.memory_gb)
    if rs.gpu:
        out["gpu"] = str(rs.gpu)
    return out


# --------------------------------------------------------------------------- states and times


_STATES = {s.value.lower(): s for s in ProvisioningState}


def provisioning_state(value: Any) -> ProvisioningState:
    return _STATES.get(str(value or "").lower(), ProvisioningState.UPDATING)


def _created(res: dict[str, Any]) -> float | None:
    sd = res.get("systemData") or {}
    return armids.parse_time(sd.get("createdAt")) or armids.parse_time(
        (res.get("properties") or {}).get("createdOn")
    )


def _user_tags(tags: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (tags or {}).items() if not str(k).startswith("modeldeck.")}


# --------------------------------------------------------------------------- clusters (computes)


def is_cluster(res: dict[str, Any]) -> bool:
    return (res.get("properties") or {}).get("computeType") in CLUSTER_COMPUTE_TYPES


def provisioning_errors(props: dict[str, Any]) -> str | None:
    errs = props.get("provisioningErrors") or []
    texts = []
    for e in errs:
        err = (e or {}).get("error") if isinstance(e, dict) else None
        if isinstance(err, dict):
            texts.append(f"{err.get('code', 'Error')}: {err.get('message', '')}")
    return "; ".join(texts) or None


def compute_to_cluster(res: dict[str, Any], endpoints: int = 0) -> Cluster:
    props = res.get("properties") or {}
    inner = props.get("properties") or {}
    ctype = props.get("computeType")
    agents: int | None
    purpose: ClusterPurpose | None
    if ctype == "AKS":
        agents = int(inner.get("agentCount") or 0)
        vm = inner.get("agentVmSize")
        purpose_text = inner.get("clusterPurpose") or "FastProd"  # the REST default
        purpose = ClusterPurpose.DEV_TEST if purpose_text == "DevTest" else ClusterPurpose.FAST_PROD
        namespace = None
    else:  # Kubernetes (attached AKS or Arc): ARM's KubernetesProperties have a namespace
        # and instance types, no purpose, node count or VM size: none is made up here
        agents = None
        vm = None
        purpose = None
        namespace = inner.get("namespace") or "default"
    size = vmsizes.lookup(vm) if vm else None
    tags = res.get("tags") or {}
    return Cluster(
        name=str(res.get("name") or last_segment(res.get("id"))),
        driver=DriverKind.AZUREML,
        purpose=purpose,
        provisioning_state=provisioning_state(props.get("provisioningState")),
        agent_count=agents,
        vm_size=vm,
        vcpus_total=float(size.vcpus * agents) if size and agents is not None else None,
        memory_gb_total=float(size.memory_gb * agents) if size and agents is not None else None,
        type=str(ctype or "").lower(),  # az ml's type: "aks", "kubernetes"
        version=None,
        resource_id=props.get("resourceId"),
        namespace=namespace,
        endpoints=endpoints,
        error=provisioning_errors(props),
        description=str(props.get("description") or ""),
        tags=_user_tags(tags),
        created_at=_created(res),
        location=str(res.get("location") or ""),
    )


def aks_create_body(
    *,
    agent_count: int,
    vm_size: str,
    purpose: ClusterPurpose,
    location: str | None,
    description: str = "",
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    return _compute_body(
        {
            "computeType": "AKS",
            "properties": {
                "agentCount": agent_count,
                "agentVmSize": vm_size,
                "clusterPurpose": purpose.value,
            },
        },
        location=location,
        description=description,
        tags=tags,
    )


def kubernetes_attach_body(
    *,
    resource_id: str,
    namespace: str | None,
    location: str | None,
    description: str = "",
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    return _compute_body(
        {
            "computeType": "Kubernetes",
            "resourceId": resource_id,
            "properties": {"namespace": namespace or "default"},
        },
        location=location,
        description=description,
        tags=tags,
    )


def _compute_body(
    props: dict[str, Any],
    *,
    location: str | None,
    description: str,
    tags: dict[str, str] | None,
) -> dict[str, Any]:
    """A compute's PUT body: its ``properties``, with the description, location and tags
    given (each left out when empty)."""
    body: dict[str, Any] = {"properties": props}
    if description:
        body["properties"]["description"] = description
    if location:
        body["location"] = location
    if tags:
        body["tags"] = dict(tags)
    return body


_COMPUTE_READONLY = (
    "provisioningState",
    "provisioningErrors",
    "isAttachedCompute",
    "createdOn",
    "modifiedOn",
)


def aks_scale_body(current: dict[str, Any], agent_count: int) -> dict[str, Any]:
    """The compute as read, with ``agentCount`` changed and read-only fields left out."""
    props = {
        k: v for k, v in (current.get("properties") or {}).items() if k not in _COMPUTE_READONLY
    }
    inner = {k: v for k, v in (props.get("properties") or {}).items() if k != "systemServices"}
    inner["agentCount"] = agent_count
    props["properties"] = inner
    body: dict[str, Any] = {"properties": props}
    for key in ("location", "tags", "identity", "sku"):
        if current.get(key):
            body[key] = current[key]
    return body


# --------------------------------------------------------------------------- models


def model_version_to_model(name: str, res: dict[str, Any]) -> Model:
    props = res.get("properties") or {}
    version = str(res.get("name") or "0")
    return Model(
        name=name,
        version=int(version) if version.isdigit() else 0,
        path=str(props.get("modelUri") or ""),
        description=str(props.get("description") or ""),
        tags={str(k): str(v) for k, v in (props.get("tags") or {}).items()},
        type=str(props.get("modelType") or "custom_model"),
        original_path=(props.get("properties") or {}).get("modeldeck.original_path"),
        created_at=_created(res),
        archived=bool(props.get("isArchived")),
    )


def model_version_body(
    *,
    model_uri: str,
    description: str = "",
    tags: dict[str, str] | None = None,
    original_path: str | None = None,
    model_type: str = "custom_model",
) -> dict[str, Any]:
    props: dict[str, Any] = {
        "modelUri": model_uri,
        "modelType": model_type,
        "description": description,
        "tags": dict(tags or {}),
        "isAnonymous": False,
    }
    if original_path:
        props["properties"] = {"modeldeck.original_path": original_path}
    return {"properties": props}


def code_version_body(code_uri: str) -> dict[str, Any]:
    return {"properties": {"codeUri": code_uri, "isAnonymous": True}}


#: the base image of an environment given as a conda file alone (Azure ML needs one)
CONDA_BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"


def environment_version_body(image: str, conda_file: str | None = None) -> dict[str, Any]:
    """An anonymous environment version: ``image``, and the conda file's text (as
    ``az ml`` sends an inline environment's ``conda_file``)."""
    props: dict[str, Any] = {"image": image, "isAnonymous": True, "osType": "Linux"}
    if conda_file is not None:
        props["condaFile"] = conda_file
    return {"properties": props}


# --------------------------------------------------------------------------- endpoints


_AUTH_TO_ARM = {AuthMode.KEY: "Key", AuthMode.AML_TOKEN: "AMLToken"}
_AUTH_FROM_ARM = {
    "key": AuthMode.KEY,
    "amltoken": AuthMode.AML_TOKEN,
    "aadtoken": AuthMode.AML_TOKEN,
}


def auth_mode_to_arm(mode: AuthMode) -> str | None:
    return _AUTH_TO_ARM.get(mode)


# --------------------------------------------------------------------------- revisions

#: What ARM changes by itself on an online endpoint or deployment (not a write of ours).
_VOLATILE = frozenset({"provisioningState", "scoringUri", "swaggerUri"})
_FIELD_NAMES = {"sku": "instance_count", "environmentId": "environment", "model": "model"}


def revision(res: dict[str, Any]) -> str:
    """An online endpoint's or deployment's revision, derived from what ARM returns.

    ARM has no ``etag`` on these resources and takes no ``If-Match`` for them (REST spec
    2024-10-01: ``OnlineEndpointTrackedResource`` and ``OnlineDeploymentTrackedResource``
    are a TrackedResource without etag, their PUT/PATCH take no If-Match header). So the
    revision is a hash of ``systemData.lastModifiedAt`` and of what a write can change
    (properties but the provisioning state and URIs, tags, sku): it changes with every
    write, and not while ARM only provisions.
    """
    props = {k: v for k, v in (res.get("properties") or {}).items() if k not in _VOLATILE}
    payload = {
        "at": (res.get("systemData") or {}).get("lastModifiedAt"),
        "properties": props,
        "tags": res.get("tags") or {},
        "sku": res.get("sku") or {},
    }
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def visible(kind: str, res: dict[str, Any]) -> dict[str, Any]:
    """What a user sees of an endpoint or a deployment, in modeldeck's field names (the
    paths a Conflict's ``changed`` uses: ``traffic.blue``, ``instance_count``...)."""
    if kind == "endpoint":
        ep = endpoint_to_domain(res)
        return {
            "traffic": dict(ep.traffic),
            "mirror_traffic": {k: v for k, v in ep.mirror_traffic.items() if v},
            "description": ep.description,
            "tags": dict(ep.tags),
            "control": ep.control,
            "auth_mode": ep.auth_mode.value,
        }
    spec = to_dict(deployment_to_domain("", res).spec)
    return {k: v for k, v in spec.items() if k not in ("name", "endpoint_name")}


def endpoint_to_domain(res: dict[str, Any]) -> Endpoint:
    props = res.get("properties") or {}
    tags = res.get("tags") or {}
    return Endpoint(
        name=str(res.get("name") or ""),
        compute=last_segment(props.get("compute")),
        auth_mode=_AUTH_FROM_ARM.get(str(props.get("authMode") or "").lower(), AuthMode.KEY),
        scoring_uri=str(props.get("scoringUri") or ""),
        openapi_uri=str(props.get("swaggerUri") or ""),
        traffic={str(k): int(v) for k, v in (props.get("traffic") or {}).items()},
        mirror_traffic={str(k): int(v) for k, v in (props.get("mirrorTraffic") or {}).items()},
        provisioning_state=provisioning_state(props.get("provisioningState")),
        description=str(props.get("description") or ""),
        tags=_user_tags(tags),
        # ARM's kind: K8s, or Managed for an endpoint without compute
        kind=str(res.get("kind") or ("K8s" if props.get("compute") else "Managed")),
        control=tags.get(TAG_CONTROL) or None,
        created_at=_created(res),
        revision=revision(res),
        public_network_access=str(props.get("publicNetworkAccess") or "Enabled").lower(),
        identity=identity_to_domain(res.get("identity")),
        properties=_str_map(props.get("properties")),
        location=str(res.get("location") or ""),
    )


def identity_to_domain(data: Any) -> Identity | None:
    """ARM's ``identity`` (``SystemAssigned``, ``principalId``) in az ml's words
    (azure-ai-ml ``IdentitySchema`` dumps the type through ``camel_to_snake``)."""
    if not isinstance(data, dict) or not data.get("type"):
        return None
    kind = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", str(data["type"]).replace(" ", "")).lower()
    return Identity(
        type=kind,
        principal_id=str(data.get("principalId") or ""),
        tenant_id=str(data.get("tenantId") or ""),
    )


def _str_map(data: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def public_network_access_to_arm(value: str) -> str:
    """az ml's ``enabled`` / ``disabled`` -> ARM's ``PublicNetworkAccessType`` enum."""
    return value.capitalize()


def endpoint_create_body(
    spec: EndpointSpec, *, compute_id: str | None, location: str | None
) -> dict[str, Any]:
    """``compute_id`` None: a managed online endpoint (no ``compute``, no ``kind``: as
    azure-ai-ml's ``ManagedOnlineEndpoint._to_rest_online_endpoint`` sends it)."""
    auth = auth_mode_to_arm(spec.auth_mode)
    props: dict[str, Any] = {
        "authMode": auth,
        "description": spec.description,
        "traffic": dict(spec.traffic),
    }
    if compute_id:
        props["compute"] = compute_id
    if spec.mirror_traffic:
        props["mirrorTraffic"] = dict(spec.mirror_traffic)
    if spec.public_network_access is not None:
        props["publicNetworkAccess"] = public_network_access_to_arm(spec.public_network_access)
    body: dict[str, Any] = {
        "identity": {"type": "SystemAssigned"},
        "properties": props,
        "tags": dict(spec.tags),
    }
    if compute_id:
        body["kind"] = "K8s"
    if location:
        body["location"] = location
    return body


_ENDPOINT_READONLY = ("provisioningState", "scoringUri", "swaggerUri")


def endpoint_update_body(
    current: dict[str, Any],
    *,
    traffic: dict[str, int],
    mirror_traffic: dict[str, int],
    description: str | None,
    tags: dict[str, str],
    public_network_access: str | None = None,
) -> dict[str, Any]:
    """The endpoint as read, with the FULL traffic and mirror maps (never left out);
    ``public_network_access`` None: as read."""
    props = {
        k: v for k, v in (current.get("properties") or {}).items() if k not in _ENDPOINT_READONLY
    }
    props.pop("keys", None)
    props["traffic"] = dict(traffic)
    props["mirrorTraffic"] = dict(mirror_traffic)
    if description is not None:
        props["description"] = description
    if public_network_access is not None:
        props["publicNetworkAccess"] = public_network_access_to_arm(public_network_access)
    body: dict[str, Any] = {"properties": props, "tags": dict(tags)}
    for key in ("location", "kind", "sku"):
        if current.get(key):
            body[key] = current[key]
    identity = current.get("identity")
    if isinstance(identity, dict) and identity.get("type"):
        ident: dict[str, Any] = {"type": identity["type"]}
        if identity.get("userAssignedIdentities"):
            ident["userAssignedIdentities"] = {k: {} for k in identity["userAssignedIdentities"]}
        body["identity"] = ident
    return body


# --------------------------------------------------------------------------- deployments


def _probe_body(p: Probe) -> dict[str, Any]:
    return {
        "initialDelay": seconds_to_iso(p.initial_delay),
        "period": seconds_to_iso(p.period),
        "timeout": seconds_to_iso(p.timeout),
        "failureThreshold": p.failure_threshold,
        "successThreshold": p.success_threshold,
    }


def _probe(data: dict[str, Any] | None) -> Probe | None:
    """What the service returns (it fills the probes a PUT left out); a field it leaves
    out reads as az ml's default (Probe's)."""
    if not data:
        return None
    d = Probe()
    return Probe(
        initial_delay=int(iso_to_seconds(data.get("initialDelay"), d.initial_delay)),
        period=int(iso_to_seconds(data.get("period"), d.period)),
        timeout=int(iso_to_seconds(data.get("timeout"), d.timeout)),
        failure_threshold=int(data.get("failureThreshold") or d.failure_threshold),
        success_threshold=int(data.get("successThreshold") or d.success_threshold),
    )


def deployment_body(
    spec: DeploymentSpec,
    *,
    model_id: str,
    code_id: str | None,
    environment_id: str | None,
    location: str | None,
    managed: bool = False,
) -> dict[str, Any]:
    """A ``KubernetesOnlineDeployment`` PUT body; ``managed`` (the endpoint has no compute):
    a ``ManagedOnlineDeployment``'s, sized by ``instanceType`` alone (it has no
    ``containerResourceRequirements`` in the ARM spec)."""
    s = spec.scale_settings
    if s.type == "target_utilization":
        scale: dict[str, Any] = {
            "scaleType": "TargetUtilization",
            "minInstances": s.min_instances,
            "maxInstances": s.max_instances,
            "targetUtilizationPercentage": s.target_utilization_percentage,
            "pollingInterval": seconds_to_iso(s.polling_interval),
        }
        capacity = s.min_instances
    else:
        scale = {"scaleType": "Default"}
        capacity = spec.instance_count
    q = spec.request_settings
    requirements: dict[str, Any] = {}
    req = _resource_body(spec.resources.requests)
    lim = _resource_body(spec.resources.limits)
    if req:
        requirements["containerResourceRequests"] = req
    if lim:
        requirements["containerResourceLimits"] = lim
    props: dict[str, Any] = {
        "endpointComputeType": "Managed" if managed else "Kubernetes",
        "description": spec.description,
        "model": model_id,
        "environmentVariables": dict(spec.environment_variables),
        "appInsightsEnabled": spec.app_insights_enabled,
        "scaleSettings": scale,
        "requestSettings": {
            "requestTimeout": ms_to_iso(q.request_timeout_ms),
            "maxConcurrentRequestsPerInstance": q.max_concurrent_requests_per_instance,
            "maxQueueWait": ms_to_iso(q.max_queue_wait_ms),
        },
    }
    if not managed:
        props["containerResourceRequirements"] = requirements
    # a probe not given is not sent: the service's defaults apply, as with az ml
    for key, probe in (
        ("livenessProbe", spec.liveness_probe),
        ("readinessProbe", spec.readiness_probe),
    ):
        if probe is not None:
            props[key] = _probe_body(probe)
    if code_id:
        props["codeConfiguration"] = {
            "codeId": code_id,
            "scoringScript": spec.code_configuration.scoring_script,
        }
    if environment_id:
        props["environmentId"] = environment_id
    if spec.instance_type:  # else the compute's default instance type
        props["instanceType"] = spec.instance_type
    tags = dict(spec.tags)
    tags[TAG_ROLE] = spec.role.value
    body: dict[str, Any] = {
        "kind": "Managed" if managed else "Kubernetes",
        "properties": props,
        "sku": {"name": "Default", "capacity": capacity},
        "tags": tags,
    }
    if location:
        body["location"] = location
    return body


def deployment_to_domain(
    endpoint: str,
    res: dict[str, Any],
    *,
    traffic: dict[str, int] | None = None,
    mirror_traffic: dict[str, int] | None = None,
    error: str | None = None,
) -> Deployment:
    props = res.get("properties") or {}
    name = str(res.get("name") or "")
    sku = res.get("sku") or {}
    tags = res.get("tags") or {}
    scale = props.get("scaleSettings") or {}
    capacity = int(sku.get("capacity") or 1)
    if str(scale.get("scaleType") or "Default") == "TargetUtilization":
        settings = ScaleSettings(
            type="target_utilization",
            min_instances=int(scale.get("minInstances") or 1),
            max_instances=int(scale.get("maxInstances") or 1),
            target_utilization_percentage=int(scale.get("targetUtilizationPercentage") or 70),
            polling_interval=max(1, int(iso_to_seconds(scale.get("pollingInterval"), 1))),
        )
        desired = settings.min_instances
    else:
        settings = ScaleSettings(type="default", min_instances=capacity, max_instances=capacity)
        desired = capacity
    q = props.get("requestSettings") or {}
    reqs = props.get("containerResourceRequirements") or {}
    code = props.get("codeConfiguration") or {}
    role_text = tags.get(TAG_ROLE) or "treatment"
    try:
        role = DeploymentRole.parse(role_text)
    except ValueError:
        role = DeploymentRole.TREATMENT
    spec = DeploymentSpec(
        name=name,
        endpoint_name=endpoint,
        model=model_ref(props.get("model")),
        code_configuration=CodeConfiguration(
            code=str(code.get("codeId") or ""), scoring_script=str(code.get("scoringScript") or "")
        ),
        instance_count=capacity,
        resources=Resources(
            requests=_resource_set(reqs.get("containerResourceRequests")),
            limits=_resource_set(reqs.get("containerResourceLimits")),
        ),
        scale_settings=settings,
        request_settings=RequestSettings(
            request_timeout_ms=iso_to_ms(q.get("requestTimeout"), 5000),
            max_concurrent_requests_per_instance=int(
                q.get("maxConcurrentRequestsPerInstance") or 1
            ),
            max_queue_wait_ms=iso_to_ms(q.get("maxQueueWait"), 500),
        ),
        liveness_probe=_probe(props.get("livenessProbe")),
        readiness_probe=_probe(props.get("readinessProbe")),
        environment_variables={
            str(k): str(v) for k, v in (props.get("environmentVariables") or {}).items()
        },
        environment=props.get("environmentId"),
        instance_type=props.get("instanceType") or None,
        app_insights_enabled=bool(props.get("appInsightsEnabled")),
        role=role,
        description=str(props.get("description") or ""),
        tags=_user_tags(tags),
    )
    state = provisioning_state(props.get("provisioningState"))
    ready = desired if state is ProvisioningState.SUCCEEDED else 0
    return Deployment(
        spec=spec,
        provisioning_state=state,
        ready_replicas=ready,
        desired_replicas=desired,
        traffic=int((traffic or {}).get(name, 0)),
        mirror_traffic=int((mirror_traffic or {}).get(name, 0)),
        error=error,
        created_at=_created(res),
        updated_at=armids.parse_time((res.get("systemData") or {}).get("lastModifiedAt")),
        revision=revision(res),
        properties=_str_map(props.get("properties")),
    )


# --------------------------------------------------------------------------- logs


_LOG_TS = re.compile(
    r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
)


#: az ml's ``--container`` values -> ``DeploymentLogsRequest.containerType`` (azure-ai-ml's
#: ``EndpointDeploymentLogContainerType``)
LOG_CONTAINER_TYPES = {
    "inference-server": "InferenceServer",
    "storage-initializer": "StorageInitializer",
}


def log_text_lines(content: str) -> list[str]:
    r"""``getLogs`` content as its non-empty lines; an escaped ``\n`` (backslash, n) is a
    line break, as ``az ml online-deployment get-logs`` prints the content
    (azure-cli-extensions, ``ml_online_deployment_get_logs``: ``logs.replace("\\n", "\n")``)."""
    return [ln for ln in content.replace("\\n", "\n").splitlines() if ln.strip()]


def log_lines(
    endpoint: str, deployment: str, content: str, *, container: str = "InferenceServer", now: float
) -> list[LogLine]:
    """``getLogs`` content as lines, each its text as the service gave it (``replica``
    empty: the service does not say which instance); a leading timestamp is parsed when the
    line has one."""
    out: list[LogLine] = []
    for raw in log_text_lines(content):
        ts = now
        m = _LOG_TS.match(raw)
        if m:
            ts = armids.parse_time(m.group(1).replace(" ", "T").replace(",", ".")) or now
        out.append(
            LogLine(
                ts=ts,
                endpoint=endpoint,
                deployment=deployment,
                replica="",
                stream="stderr" if container == "StorageInitializer" else "log",
                text=raw,
            )
        )
    return out


def new_tail(previous: list[str], current: list[str]) -> list[str]:
    """The lines of ``current`` after the longest overlap with the end of ``previous``."""
    if not previous:
        return current
    longest = min(len(previous), len(current))
    for k in range(longest, 0, -1):
        if previous[-k:] == current[:k]:
            return current[k:]
    return current


def workspace_to_dict(res: dict[str, Any]) -> dict[str, Any]:
    """ARM's ``Workspace`` as ``az ml workspace show`` prints it (the keys:
    ``services/workspaceview.py``; the resource group is the id's fifth segment, as
    azure-ai-ml's ``Workspace._from_rest_object`` reads it)."""
    from ..workspaceview import shape

    props = res.get("properties") or {}
    arm_id = str(res.get("id") or "")
    parts = arm_id.split("/")
    identity = identity_to_domain(res.get("identity"))
    return shape(
        name=res.get("name"),
        id=arm_id or None,
        location=res.get("location"),
        resource_group=parts[4] if len(parts) > 4 else None,
        display_name=props.get("friendlyName"),
        description=props.get("description"),
        discovery_url=props.get("discoveryUrl"),
        mlflow_tracking_uri=props.get("mlFlowTrackingUri"),
        hbi_workspace=bool(props.get("hbiWorkspace", False)),
        public_network_access=props.get("publicNetworkAccess"),
        enable_data_isolation=bool(props.get("enableDataIsolation", False)),
        tags=dict(res.get("tags") or {}),
        identity=to_dict(identity) if identity is not None else None,
        storage_account=props.get("storageAccount"),
        container_registry=props.get("containerRegistry"),
        key_vault=props.get("keyVault"),
        application_insights=props.get("applicationInsights"),
    )
