"""The Kubernetes objects modeldeck makes for an endpoint and its deployments.

Pure functions from domain types to manifest dicts (what ``--dry-run -o yaml``
prints and what the driver applies). Nothing here talks to a cluster or imports
the ``kubernetes`` package, so the CLI can render manifests cheaply.

Per endpoint: a Secret with its keys (mounted into every scoring pod, which
checks ``Authorization`` itself) and a Gateway API ``HTTPRoute`` with weighted
``backendRefs`` (the traffic map), one header-match rule per deployment
(``azureml-model-deployment: NAME``) and a ``RequestMirror`` filter.

Per deployment: an immutable ConfigMap with the pod server, the code and (up to
1 MiB in all) the model; a Deployment running the pod server; a Service; and a
HorizontalPodAutoscaler (autoscaling/v2) when the scale type is
``target_utilization``. Models too large for the ConfigMap come from the
deployment's ``storage_uri`` through an init container (KServe's storage
initializer), as KServe does it.

A deployment whose environment has a conda file (:class:`EnvironmentBuild`, made from the
same :func:`services.environments.resolve` a local pool builds from) gets an init container
``environment`` running the image's ``python`` on ``envbuild.py`` (in the ConfigMap, with
the requirement lines): it builds a venv into an ``emptyDir`` volume, and the scoring
container runs the host with that venv's ``bin/python``. The pip settings of the control
plane reach it as ``PIP_*`` variables; those whose URL carries a user or token come from a
Secret (``<deployment>-pip``), never from the manifest's text.

Everything carries ``app.kubernetes.io/managed-by: modeldeck`` and
``modeldeck.io/endpoint`` (and ``modeldeck.io/deployment``), so the driver lists
exactly what it owns with a label selector.

Why this is one file (about 900 lines): it has one job, the objects modeldeck makes,
rendered from the domain types, and one vocabulary they all share (the names, labels,
annotations and paths below, which the driver's rooms, the scoring pod and adoption read
back). Its sections are that vocabulary, quantities, the files a pod gets (the app's
ConfigMap and the environment build), the endpoint's objects and the deployment's
objects; each section uses the ones before it. The tests address it as one module
(``mf.collect_files``, ``mf.http_route``, ``mf.deployment_objects``... in one test), and
this issue changes tests only in their imports, so a split would have to leave names
behind here as re-exports.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ... import inputs
from ...api.domain import DeploymentSpec, Model, Probe, ResourceSet, ScaleSettings, to_dict
from ...api.errors import InvalidInput
from ...codehash import TreeDigest
from ...scoring import HOST
from . import podsecurity

MANAGED_BY = "app.kubernetes.io/managed-by"
ENDPOINT_LABEL = "modeldeck.io/endpoint"
DEPLOYMENT_LABEL = "modeldeck.io/deployment"
MANAGER = "modeldeck"
SELECTOR_MANAGED = f"{MANAGED_BY}={MANAGER}"
#: Annotations on the Deployment: the model reference and the full DeploymentSpec (JSON),
#: so that another operator (or a wiped workspace) adopts the deployment as it was made.
MODEL_ANNOTATION = "modeldeck.io/model"
SPEC_ANNOTATION = "modeldeck.io/spec"
DESCRIPTION_ANNOTATION = "modeldeck.io/description"
TAGS_ANNOTATION = "modeldeck.io/tags"

#: The image used when a deployment names no ``environment``: Azure ML's minimal
#: CPU inference image (Ubuntu 22.04, Python 3.9), which the Azure ML entry-script
#: contract is written for. The pod server needs only its ``python``.
DEFAULT_IMAGE = "mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest"
#: Fetches ``storage_uri`` (s3://, gs://, https://, Azure blob) into the model volume.
STORAGE_INITIALIZER_IMAGE = "kserve/storage-initializer:v0.14.1"
#: The Gateway the HTTPRoutes attach to unless the cluster's tags name another.
DEFAULT_GATEWAY = "modeldeck-gateway"
GATEWAY_TAG = "modeldeck.io/gateway"  # cluster tag: "NAME" or "NAMESPACE/NAME"
GATEWAY_URL_TAG = "modeldeck.io/gateway-url"  # cluster tag: the Gateway's external URL
DEPLOYMENT_HEADER = "azureml-model-deployment"

CONFIGMAP_LIMIT = 1024 * 1024  # bytes of file content a ConfigMap may hold
POD_PORT = 5001
SERVICE_PORT = 80
SERVICE_PORT_NAME = "http"
APP_DIR = "/var/modeldeck/app"
KEYS_DIR = "/var/modeldeck/keys"
MODEL_VOLUME_DIR = "/var/modeldeck/model"
#: the scoring host, the same file local replicas run (services/scoring/host.py)
PODSERVER = HOST
PODSERVER_NAME = "host.py"
#: the environment build the init container runs (stdlib only, like the host)
ENV_BUILD_SCRIPT = Path(__file__).with_name("envbuild.py")
#: where the init container builds the environment (an emptyDir), and the container's name
ENV_DIR = "/var/modeldeck/env"
ENV_CONTAINER = "environment"
ENV_PYTHON = f"{ENV_DIR}/venv/bin/python"
STARTUP_SECONDS = 600  # how long init() may take before the kubelet restarts the container

_DNS = re.compile(r"[^a-z0-9-]+")


# --------------------------------------------------------------------------- names and labels


def object_name(*parts: str, limit: int = 63) -> str:
    """A DNS-1035 label from endpoint/deployment names (lower case, <= ``limit`` chars).

    Names that would be too long, or that lower-casing changed, get a short hash of
    the original, so ``Blue`` and ``blue`` never share an object.
    """
    raw = "-".join(parts)
    base = _DNS.sub("-", raw.lower()).strip("-") or "x"
    if base == raw and len(base) <= limit:
        return base
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{base[: limit - 9].rstrip('-')}-{digest}"


def secret_name(endpoint: str) -> str:
    return object_name(endpoint, "keys")


def route_name(endpoint: str) -> str:
    return object_name(endpoint)


def deployment_name(endpoint: str, deployment: str) -> str:
    # 47 leaves room for the ReplicaSet and pod suffixes in pod names.
    return object_name(endpoint, deployment, limit=47)


def labels(endpoint: str, deployment: str | None = None) -> dict[str, str]:
    out = {MANAGED_BY: MANAGER, ENDPOINT_LABEL: endpoint}
    if deployment is not None:
        out[DEPLOYMENT_LABEL] = deployment
    return out


def selector(endpoint: str | None = None, deployment: str | None = None) -> str:
    """A label selector string: everything modeldeck made, narrowed by endpoint/deployment."""
    parts = [SELECTOR_MANAGED]
    if endpoint is not None:
        parts.append(f"{ENDPOINT_LABEL}={endpoint}")
    if deployment is not None:
        parts.append(f"{DEPLOYMENT_LABEL}={deployment}")
    return ",".join(parts)


def _meta(
    name: str, namespace: str, lab: Mapping[str, str], annotations: Mapping[str, str] | None = None
) -> dict:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(lab)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


# --------------------------------------------------------------------------- quantities


def cpu(cores: float) -> str:
    return f"{max(1, round(cores * 1000))}m"


def memory(gib: float) -> str:
    return f"{max(1, round(gib * 1024))}Mi"


def _resource_set(rs: ResourceSet) -> dict[str, str]:
    out: dict[str, str] = {}
    if rs.cpu is not None:
        out["cpu"] = cpu(rs.cpu)
    if rs.memory_gb is not None:
        out["memory"] = memory(rs.memory_gb)
    if rs.gpu:
        out["nvidia.com/gpu"] = str(rs.gpu)
    return out


def resources(spec: DeploymentSpec) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    requests = _resource_set(spec.resources.requests)
    limits = _resource_set(spec.resources.limits)
    if limits.get("nvidia.com/gpu") or requests.get("nvidia.com/gpu"):
        gpus = limits.get("nvidia.com/gpu") or requests["nvidia.com/gpu"]
        limits["nvidia.com/gpu"] = requests["nvidia.com/gpu"] = gpus
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class EnvironmentBuild:
    """What the ``environment`` init container builds: made by :func:`environment_build`
    from a resolved environment (the same requirement lines a local pool installs)."""

    key: str
    #: the lines of ``env/requirements.txt`` (options first, ``-r``/``-c`` files shipped)
    lines: tuple[str, ...]
    #: ``python=3.X`` of the conda file (the image's Python is used; a warning if it differs)
    python: str | None = None
    #: files under ``env/`` in the ConfigMap besides the script and its config
    files: dict[str, bytes] = field(default_factory=dict)
    #: ``PIP_*`` variables from the control plane's pip configuration: plain ones, and those
    #: whose URL carries credentials (they go to the ``<deployment>-pip`` Secret)
    env: tuple[tuple[str, str], ...] = ()
    secret: tuple[tuple[str, str], ...] = ()
    #: what of the pip configuration does not reach the pod, for its log
    warnings: tuple[str, ...] = ()

    def config(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "target": ENV_DIR,
            "python": self.python,
            "requirements": list(self.lines),
            "warnings": list(self.warnings),
        }


def _has_credentials(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return True  # unparseable: keep it out of the manifest's text
    return parts.username is not None or parts.password is not None


def _is_url(location: str) -> bool:
    return location.split(":", 1)[0].lower() in ("http", "https")


def environment_build(resolved: Any) -> EnvironmentBuild:
    """The init container's build of ``resolved`` (a
    :class:`services.environments.ResolvedEnvironment`): its requirement and option lines,
    ``-r``/``-c`` files and the pip configuration's constraint files shipped in the
    ConfigMap, the rest of the pip configuration as ``PIP_*`` variables. A requirement that
    is a file on this machine cannot reach a pod: :class:`InvalidInput`."""
    files: dict[str, bytes] = {}
    lines: list[str] = []
    field_ = "environment.conda_file"

    def ship(path: str, flag: str) -> str:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InvalidInput(
                field_, path, f"cannot be read ({exc.strerror or exc})", "make the file readable"
            ) from None
        name = f"env/{'requirements' if flag == '-r' else 'constraints'}-{len(files)}.txt"
        files[name] = data
        return f"{flag} {APP_DIR}/{name}"

    for option in resolved.options:
        flag, _, value = option.partition(" ")
        lines.append(ship(value.strip(), flag) if flag in ("-r", "-c") else option)
    for req in resolved.requirements:
        head = req.split(";", 1)[0].strip()
        if head.startswith(("/", "./", "../", "file:", "-e")) or head.endswith((".whl", ".zip")):
            raise InvalidInput(
                field_,
                req,
                "is a package on this machine; a Kubernetes pod cannot read it",
                "publish it to an index the cluster reaches (PIP_INDEX_URL), or build an image "
                "that has it and give no conda_file",
            )
        lines.append(req)
    cfg = resolved.pip_config
    warnings: list[str] = []
    for c in cfg.constraints:
        lines.append(ship(c, "-c"))
    env: dict[str, str] = {}
    for u in [cfg.index_url or "", *cfg.extra_index_urls]:
        if u and not _is_url(u):
            warnings.append(f"index {u} is on the control plane's machine: not used here")
    if cfg.index_url and _is_url(cfg.index_url):
        env["PIP_INDEX_URL"] = cfg.index_url
    extra = [u for u in cfg.extra_index_urls if _is_url(u)]
    if extra:
        env["PIP_EXTRA_INDEX_URL"] = " ".join(extra)
    links = [u for u in cfg.find_links if _is_url(u)]
    if links:
        env["PIP_FIND_LINKS"] = " ".join(links)
    for u in cfg.find_links:
        if not _is_url(u):
            warnings.append(
                f"find-links {u} is a folder of the control plane's machine: not used here"
            )
    if cfg.trusted_hosts:
        env["PIP_TRUSTED_HOST"] = " ".join(cfg.trusted_hosts)
    if cfg.no_index:
        env["PIP_NO_INDEX"] = "1"
    if cfg.pre:
        env["PIP_PRE"] = "1"
    if cfg.timeout:
        env["PIP_DEFAULT_TIMEOUT"] = str(cfg.timeout)
    if cfg.cert:
        warnings.append(
            f"pip's cert {cfg.cert} is a file of the control plane's machine: not used here "
            "(an image that trusts the index's certificate, or PIP_CERT on a file the image has)"
        )
    plain = tuple((k, v) for k, v in sorted(env.items()) if not _has_credentials(v))
    secret = tuple((k, v) for k, v in sorted(env.items()) if _has_credentials(v))
    return EnvironmentBuild(
        key=resolved.key,
        lines=tuple(lines),
        python=resolved.python_wanted,
        files=files,
        env=plain,
        secret=secret,
        warnings=tuple(warnings),
    )


def _environment_files(build: EnvironmentBuild) -> dict[str, bytes]:
    files = {
        "env/build.py": ENV_BUILD_SCRIPT.read_bytes(),
        "env/build.json": json.dumps(build.config(), indent=1, sort_keys=True).encode(),
        "env/requirements.txt": ("\n".join(build.lines) + "\n").encode(),
    }
    files.update(build.files)
    return files


def pip_secret_name(endpoint: str, deployment: str) -> str:
    return f"{deployment_name(endpoint, deployment)}-pip"


@dataclass(frozen=True)
class AppFiles:
    """What a deployment ships to its pods: paths relative to the app dir -> bytes."""

    files: dict[str, bytes]
    model_dir: str  # AZUREML_MODEL_DIR inside the pod
    entry_script: str  # absolute path inside the pod
    storage_uri: str | None = None  # model fetched by the init container
    model_base: str = ""  # the model's base name under AZUREML_MODEL_DIR
    sizes: dict[str, int] = field(default_factory=dict)
    #: the environment the ``environment`` init container builds (None: the image's python)
    environment: EnvironmentBuild | None = None

    @property
    def digest(self) -> str:
        h = TreeDigest()
        for path in sorted(self.files):
            h.file(path, self.files[path])
        h.update((self.storage_uri or "").encode())
        return h.hexdigest()[:10]


def _read_tree(checked: inputs.Input, prefix: str) -> dict[str, bytes]:
    """The files of a checked input (:func:`inputs.scan`: regular files inside the folder,
    size-capped) under ``prefix``; a single file keeps its name."""
    files = inputs.read_files(checked)
    if not checked.is_dir:
        return {f"{prefix}/{checked.name}": files[""]}
    return {f"{prefix}/{rel}": data for rel, data in sorted(files.items())}


def collect_files(
    spec: DeploymentSpec,
    model: Model,
    code_dir: str,
    environment: EnvironmentBuild | None = None,
) -> AppFiles:
    """Read the scoring host, the code and the model; decide what goes in the ConfigMap.

    Model and code up to 1 MiB in all ride in the ConfigMap; a larger model comes
    from ``storage_uri`` (the code must still fit). Raises :class:`InvalidInput`
    naming what is too large and how to fix it. ``environment``: its build script and
    requirement lines ride along (``env/``).
    """
    files = {PODSERVER_NAME: PODSERVER.read_bytes()}
    if environment is not None:
        files.update(_environment_files(environment))
    # the same input rules as the local store's copies, sizes known before anything is read
    code_in = inputs.scan(code_dir, "code_configuration.code", "code")
    model_in = inputs.scan(model.path, "model.path", "model")
    files.update(_read_tree(code_in, "code"))
    base = Path(model.path).name
    code_size = sum(len(v) for v in files.values())
    model_size = model_in.total_bytes
    script = f"{APP_DIR}/code/{spec.code_configuration.scoring_script}"
    sizes = {"code": code_size, "model": model_size}
    if code_size > CONFIGMAP_LIMIT:
        raise InvalidInput(
            "code_configuration.code",
            code_dir,
            f"the code is {code_size:,} bytes; a Kubernetes deployment ships code in a "
            f"ConfigMap of at most {CONFIGMAP_LIMIT:,} bytes",
            "remove large files from the code folder (data belongs with the model)",
        )
    if code_size + model_size <= CONFIGMAP_LIMIT:
        files.update(_read_tree(model_in, f"model/{base}" if model_in.is_dir else "model"))
        return AppFiles(files, f"{APP_DIR}/model", script, None, base, sizes, environment)
    if not spec.storage_uri:
        raise InvalidInput(
            "storage_uri",
            spec.storage_uri,
            f"model and code are {code_size + model_size:,} bytes, more than a ConfigMap "
            f"holds ({CONFIGMAP_LIMIT:,}); a larger model must come from storage",
            "upload the model folder (s3://, gs://, https:// or Azure blob) and set "
            "storage_uri in the deployment YAML",
        )
    return AppFiles(files, MODEL_VOLUME_DIR, script, spec.storage_uri, base, sizes, environment)


def _configmap_key(index: int, path: str) -> str:
    return f"f{index:03d}-{re.sub(r'[^-._a-zA-Z0-9]', '_', path)}"[:253]


# --------------------------------------------------------------------------- endpoint objects


@dataclass(frozen=True)
class GatewayRef:
    name: str = DEFAULT_GATEWAY
    namespace: str | None = None

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> GatewayRef:
        value = tags.get(GATEWAY_TAG) or tags.get("gateway") or ""
        if not value:
            return cls()
        ns, _, name = value.rpartition("/")
        return cls(name=name, namespace=ns or None)


def endpoint_secret(
    namespace: str,
    endpoint: str,
    *,
    mode: str,
    primary_key: str,
    secondary_key: str,
    token_secret: str,
    redact: bool = False,
    description: str = "",
    tags: Mapping[str, str] | None = None,
) -> dict:
    """The endpoint's keys. ``redact`` replaces the values (for printed manifests).

    The endpoint's description and tags ride along as annotations, so that a workspace
    that adopts the endpoint (another operator's, or a wiped one) gets them back.
    """

    def enc(value: str) -> str:
        text = "REDACTED-set-with-modeldeck" if redact and value and value != mode else value
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(
            secret_name(endpoint),
            namespace,
            labels(endpoint),
            {
                DESCRIPTION_ANNOTATION: description,
                TAGS_ANNOTATION: json.dumps(dict(tags or {}), sort_keys=True),
            },
        ),
        "type": "Opaque",
        "data": {
            "auth-mode": enc(mode),
            "primary-key": enc(primary_key),
            "secondary-key": enc(secondary_key),
            "token-secret": enc(token_secret),
        },
    }


def path_prefix(endpoint: str) -> str:
    return f"/api/v1/endpoint/{endpoint}"


def http_route(
    namespace: str,
    endpoint: str,
    traffic: Mapping[str, int],
    mirror: Mapping[str, int],
    deployments: Iterable[str],
    gateway: GatewayRef | None = None,
) -> dict:
    """The endpoint's HTTPRoute (gateway.networking.k8s.io/v1).

    One rule per deployment matching ``azureml-model-deployment: NAME`` (more
    specific, so it wins over the split, whatever the weights); then the split:
    weighted ``backendRefs``, with a ``RequestMirror`` filter copying ``percent``
    of the requests to the mirror deployment.
    """
    gateway = gateway or GatewayRef()
    prefix = path_prefix(endpoint)
    names = sorted(set(deployments) | set(traffic) | {d for d, p in mirror.items() if p})
    rules: list[dict] = []
    for dep in names:
        rules.append(
            {
                "matches": [
                    {
                        "path": {"type": "PathPrefix", "value": prefix},
                        "headers": [{"type": "Exact", "name": DEPLOYMENT_HEADER, "value": dep}],
                    }
                ],
                "backendRefs": [
                    {"name": deployment_name(endpoint, dep), "port": SERVICE_PORT, "weight": 1}
                ],
            }
        )
    split: dict[str, Any] = {
        "matches": [{"path": {"type": "PathPrefix", "value": prefix}}],
        "backendRefs": [
            {"name": deployment_name(endpoint, dep), "port": SERVICE_PORT, "weight": int(pct)}
            for dep, pct in sorted(traffic.items())
        ],
    }
    filters = [
        {
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {"name": deployment_name(endpoint, dep), "port": SERVICE_PORT},
                "percent": int(pct),
            },
        }
        for dep, pct in sorted(mirror.items())
        if pct
    ]
    if filters:
        split["filters"] = filters
    rules.append(split)
    parent: dict[str, Any] = {"name": gateway.name}
    if gateway.namespace:
        parent["namespace"] = gateway.namespace
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _meta(
            route_name(endpoint),
            namespace,
            labels(endpoint),
            {
                "modeldeck.io/traffic": json.dumps(dict(sorted(traffic.items()))),
                "modeldeck.io/mirror-traffic": json.dumps(dict(sorted(mirror.items()))),
            },
        ),
        "spec": {"parentRefs": [parent], "rules": rules},
    }


def route_state(route: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    """The traffic and mirror maps recorded on an HTTPRoute by :func:`http_route`."""
    ann = (route.get("metadata") or {}).get("annotations") or {}
    try:
        traffic = {
            str(k): int(v) for k, v in json.loads(ann.get("modeldeck.io/traffic", "{}")).items()
        }
        mirror = {
            str(k): int(v)
            for k, v in json.loads(ann.get("modeldeck.io/mirror-traffic", "{}")).items()
        }
    except (ValueError, AttributeError, TypeError):
        return {}, {}
    return traffic, mirror


# --------------------------------------------------------------------------- deployment objects


def app_configmap(namespace: str, endpoint: str, deployment: str, app: AppFiles) -> dict:
    """Immutable ConfigMap named after its content: a rollout never changes old pods' files."""
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for i, path in enumerate(sorted(app.files)):
        key = _configmap_key(i, path)
        content = app.files[path]
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode()
    out: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(
            configmap_name(endpoint, deployment, app), namespace, labels(endpoint, deployment)
        ),
        "immutable": True,
        "data": data,
    }
    if binary:
        out["binaryData"] = binary
    return out


def configmap_name(endpoint: str, deployment: str, app: AppFiles) -> str:
    return f"{deployment_name(endpoint, deployment)}-{app.digest}"


def _probe(given: Probe | None, *, liveness: bool) -> dict:
    """A container probe; not given: az ml's defaults (Probe's: every 10 s after 10 s)."""
    p = given or Probe()
    return {
        "httpGet": {"path": "/", "port": "http"},
        "initialDelaySeconds": p.initial_delay,
        "periodSeconds": max(1, p.period),
        "timeoutSeconds": max(1, p.timeout),
        "failureThreshold": max(1, p.failure_threshold),
        "successThreshold": 1 if liveness else max(1, p.success_threshold),
    }


def autoscaled(scale: ScaleSettings) -> bool:
    return scale.type == "target_utilization"


def deployment(
    namespace: str, endpoint: str, spec: DeploymentSpec, app: AppFiles, model_ref: str
) -> dict:
    name = deployment_name(endpoint, spec.name)
    lab = labels(endpoint, spec.name)
    env = [{"name": k, "value": str(v)} for k, v in sorted(spec.environment_variables.items())]
    env += [
        {"name": "AZUREML_MODEL_DIR", "value": app.model_dir},
        {"name": "AZUREML_ENTRY_SCRIPT", "value": spec.code_configuration.scoring_script},
        {"name": "MODELDECK_ENTRY_SCRIPT", "value": app.entry_script},
        {"name": "MODELDECK_ENDPOINT", "value": endpoint},
        {"name": "MODELDECK_DEPLOYMENT", "value": spec.name},
        {"name": "MODELDECK_KEYS_DIR", "value": KEYS_DIR},
        {"name": "MODELDECK_RUNTIME", "value": spec.runtime},
        {
            "name": "MODELDECK_MAX_CONCURRENCY",
            "value": str(spec.request_settings.max_concurrent_requests_per_instance),
        },
        {
            "name": "MODELDECK_MAX_QUEUE_WAIT_MS",
            "value": str(spec.request_settings.max_queue_wait_ms),
        },
        {"name": "PORT", "value": str(POD_PORT)},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        *podsecurity.home_env(spec.environment_variables),
    ]
    items = [
        {"key": _configmap_key(i, path), "path": path} for i, path in enumerate(sorted(app.files))
    ]
    mounts = [
        {"name": "app", "mountPath": APP_DIR, "readOnly": True},
        {"name": "keys", "mountPath": KEYS_DIR, "readOnly": True},
        podsecurity.tmp_mount(),
    ]
    volumes: list[dict[str, Any]] = [
        {
            "name": "app",
            "configMap": {
                "name": configmap_name(endpoint, spec.name, app),
                "items": items,
                "defaultMode": 0o444,
            },
        },
        # 0440 and the pod's fsGroup: root and the pod's group read the keys, nobody else
        {"name": "keys", "secret": {"secretName": secret_name(endpoint), "defaultMode": 0o440}},
        podsecurity.tmp_volume(),
    ]
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": podsecurity.pod_security_context(),
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 30,
        "containers": [
            {
                "name": "scoring",
                "image": spec.environment or DEFAULT_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "command": [
                    ENV_PYTHON if app.environment is not None else "python",
                    f"{APP_DIR}/{PODSERVER_NAME}",
                ],
                "ports": [{"name": "http", "containerPort": POD_PORT, "protocol": "TCP"}],
                "env": env,
                "resources": resources(spec),
                # init() may take minutes (a large model): liveness and readiness start once
                # the server listens, which it does only after init() (10 min at most).
                "startupProbe": {
                    "httpGet": {"path": "/", "port": "http"},
                    "periodSeconds": 2,
                    "timeoutSeconds": 2,
                    "failureThreshold": STARTUP_SECONDS // 2,
                },
                "livenessProbe": _probe(spec.liveness_probe, liveness=True),
                "readinessProbe": _probe(spec.readiness_probe, liveness=False),
                "volumeMounts": mounts,
                "securityContext": podsecurity.container_security_context(),
            }
        ],
        "volumes": volumes,
    }
    inits: list[dict[str, Any]] = []
    if app.environment is not None:
        volumes.append({"name": "environment", "emptyDir": {}})
        mounts.append({"name": "environment", "mountPath": ENV_DIR, "readOnly": True})
        inits.append(_environment_container(endpoint, spec, app.environment))
    if app.storage_uri:
        volumes.append({"name": "model", "emptyDir": {}})
        mounts.append({"name": "model", "mountPath": MODEL_VOLUME_DIR, "readOnly": True})
        inits.append(
            {
                "name": "storage-initializer",
                "image": STORAGE_INITIALIZER_IMAGE,
                "args": [app.storage_uri, f"{MODEL_VOLUME_DIR}/{app.model_base}"],
                "env": podsecurity.home_env({}),
                "volumeMounts": [
                    {"name": "model", "mountPath": MODEL_VOLUME_DIR},
                    podsecurity.tmp_mount(),
                ],
                "securityContext": podsecurity.container_security_context(),
                "resources": {
                    "requests": {"cpu": "100m", "memory": "100Mi"},
                    "limits": {"cpu": "1", "memory": "1Gi"},
                },
            }
        )
    if inits:
        pod["initContainers"] = inits
    body: dict[str, Any] = {
        "revisionHistoryLimit": 3,
        "progressDeadlineSeconds": 600,
        "selector": {"matchLabels": dict(lab)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {
                "labels": dict(lab),
                "annotations": {
                    "kubectl.kubernetes.io/default-container": "scoring",
                    "modeldeck.io/app-digest": app.digest,
                },
            },
            "spec": pod,
        },
    }
    if not autoscaled(spec.scale_settings):
        body["replicas"] = spec.instance_count
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(
            name,
            namespace,
            lab,
            {MODEL_ANNOTATION: model_ref, SPEC_ANNOTATION: spec_annotation(spec)},
        ),
        "spec": body,
    }


def _environment_container(endpoint: str, spec: DeploymentSpec, build: EnvironmentBuild) -> dict:
    """The init container that builds ``build`` into the ``environment`` volume with the
    deployment's image (its ``python``); the deployment's own variables win over the pip
    configuration's (a cluster-side mirror: ``PIP_INDEX_URL`` in environment_variables)."""
    own = {k: str(v) for k, v in spec.environment_variables.items()}
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in build.env if k not in own]
    env += [
        {
            "name": k,
            "valueFrom": {"secretKeyRef": {"name": pip_secret_name(endpoint, spec.name), "key": k}},
        }
        for k, _ in build.secret
        if k not in own
    ]
    env += [{"name": k, "value": v} for k, v in sorted(own.items())]
    env += [
        {"name": "MODELDECK_ENV_DIR", "value": ENV_DIR},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "PIP_NO_CACHE_DIR", "value": "1"},
        *podsecurity.home_env(own),
    ]
    return {
        "name": ENV_CONTAINER,
        "image": spec.environment or DEFAULT_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", f"{APP_DIR}/env/build.py"],
        "env": env,
        "resources": resources(spec),
        "volumeMounts": [
            {"name": "app", "mountPath": APP_DIR, "readOnly": True},
            {"name": "environment", "mountPath": ENV_DIR},
            podsecurity.tmp_mount(),
        ],
        "securityContext": podsecurity.container_security_context(),
    }


def pip_secret(
    namespace: str, endpoint: str, deployment: str, build: EnvironmentBuild, *, redact: bool
) -> dict:
    """The pip settings whose URLs carry credentials, for the ``environment`` init
    container. ``redact`` replaces the values (for printed manifests)."""
    data = {
        k: base64.b64encode(("REDACTED-set-by-modeldeck" if redact else v).encode()).decode()
        for k, v in build.secret
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(
            pip_secret_name(endpoint, deployment), namespace, labels(endpoint, deployment)
        ),
        "type": "Opaque",
        "data": data,
    }


def spec_annotation(spec: DeploymentSpec) -> str:
    """The DeploymentSpec as compact JSON (az ml field names), for :data:`SPEC_ANNOTATION`."""
    return json.dumps(to_dict(spec), sort_keys=True, separators=(",", ":"))


def service(namespace: str, endpoint: str, dep: str) -> dict:
    lab = labels(endpoint, dep)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(deployment_name(endpoint, dep), namespace, lab),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(lab),
            "ports": [
                {
                    "name": SERVICE_PORT_NAME,
                    "port": SERVICE_PORT,
                    "targetPort": "http",
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            ],
        },
    }


def hpa(namespace: str, endpoint: str, spec: DeploymentSpec) -> dict:
    s = spec.scale_settings
    name = deployment_name(endpoint, spec.name)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(name, namespace, labels(endpoint, spec.name)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": max(1, s.min_instances),
            "maxReplicas": max(1, s.max_instances, s.min_instances),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": s.target_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


def deployment_objects(
    namespace: str,
    endpoint: str,
    spec: DeploymentSpec,
    app: AppFiles,
    model_ref: str,
    *,
    redact: bool = False,
) -> list[dict]:
    """ConfigMap, (pip credentials) Secret, Deployment, Service and (autoscale) HPA, in the
    order they are applied. ``redact``: the Secret's values replaced (printed manifests)."""
    out = [app_configmap(namespace, endpoint, spec.name, app)]
    if app.environment is not None and app.environment.secret:
        out.append(pip_secret(namespace, endpoint, spec.name, app.environment, redact=redact))
    out += [
        deployment(namespace, endpoint, spec, app, model_ref),
        service(namespace, endpoint, spec.name),
    ]
    if autoscaled(spec.scale_settings):
        out.append(hpa(namespace, endpoint, spec))
    return out


def to_yaml(objects: Iterable[Mapping[str, Any]]) -> str:
    """Multi-document YAML, as ``kubectl apply -f`` reads it (for GitOps)."""
    import yaml  # deferred: the CLI's cold start stays small

    return "---\n".join(
        yaml.safe_dump(dict(obj), sort_keys=False, default_flow_style=False) for obj in objects
    )
