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
* ``credential``: an azure-identity credential object (tests pass a static one).

See docs/azureml.md for the REST mapping.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from .. import inputs, vmsizes
from ..api import revisions, validation
from ..api.domain import (
    Cluster,
    ClusterDriver,
    ClusterSpec,
    Deployment,
    DeploymentSpec,
    Endpoint,
    EndpointKeys,
    EndpointSpec,
    EndpointToken,
    InvokeResult,
    KeyType,
    LogLine,
    MetricSample,
    Model,
    ModelSpec,
    Operation,
    OperationStatus,
    replace,
)
from ..api.errors import (
    BackendError,
    Conflict,
    InvalidInput,
    NotFound,
    Unauthorized,
    error_from_dict,
)
from ..api.workspace import OperationHandle, Workspace
from ..retry import RetryPolicy
from ..scoring import is_mlflow_no_code
from ..transport import refuse_cleartext_credentials
from . import failures, mapping, storage
from .arm import ArmClient, Lro
from .auth import PUBLIC_ARM, TokenProvider, ml_scope_for, scope_for
from .monitor import BATCH_API_VERSION, Metrics, monitor_scope

DEFAULT_ENVIRONMENT = (
    "azureml://registries/azureml/environments/minimal-ubuntu22.04-py39-cpu-inference/labels/latest"
)
_ARM_ID_PREFIX = "/subscriptions/"


def find_config_json(start: Path | None = None) -> Path | None:
    """An Azure ML ``config.json``: in the folder or ``.azureml/``, then each parent."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for candidate in (folder / "config.json", folder / ".azureml" / "config.json"):
            if candidate.is_file():
                try:
                    data = json.loads(candidate.read_text())
                except (OSError, ValueError):
                    continue
                if isinstance(data, dict) and "subscription_id" in data:
                    return candidate
    return None


def resolve_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings with the workspace coordinates filled from config.json where missing."""
    out = dict(settings)
    if "subscription" in out and "subscription_id" not in out:
        out["subscription_id"] = out.pop("subscription")
    if "workspace" in out and "workspace_name" not in out:
        out["workspace_name"] = out.pop("workspace")
    keys = ("subscription_id", "resource_group", "workspace_name")
    if not all(out.get(k) for k in keys):
        path: Path | None = None
        if out.get("config_file"):
            path = Path(str(out["config_file"])).expanduser()
            if not path.is_file():
                raise InvalidInput(
                    "config_file",
                    str(path),
                    "does not exist",
                    "give the path of the config.json downloaded from the Azure ML studio",
                )
        else:
            path = find_config_json()
        if path is not None:
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise InvalidInput(
                    "config_file",
                    str(path),
                    f"is not valid JSON ({exc})",
                    "download config.json again from the Azure ML studio",
                ) from None
            for k in keys:
                if not out.get(k) and data.get(k):
                    out[k] = str(data[k])
            out.setdefault("config_source", str(path))
    for k in keys:
        if not out.get(k):
            flag = "--" + {
                "subscription_id": "subscription",
                "workspace_name": "workspace-name",
            }.get(k, k.replace("_", "-"))
            raise InvalidInput(
                k,
                out.get(k),
                "is required for an Azure ML workspace",
                f"set {k} in the profile, pass {flag}, or put the workspace's config.json "
                "in this folder or .azureml/",
            )
    return out


class AzureMLWorkspace(Workspace):
    kind = "azureml"

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
    ) -> None:
        super().__init__(name)
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.workspace_name = workspace_name
        self.arm_endpoint = arm_endpoint.rstrip("/")
        self._credential = credential
        self.tokens = TokenProvider(
            credential, scope=scope_for(self.arm_endpoint, arm_audience), authority=authority
        )
        #: the Azure ML data-plane scope (aad_token endpoints) of the same cloud
        self.ml_scope = ml_scope_for(self.tokens.scope, ml_audience)
        self.arm = ArmClient(
            self.arm_endpoint,
            self.tokens,
            timeout=timeout,
            retry=RetryPolicy(max_retries=max_retries),
            default_poll_interval=poll_interval,
        )
        self._timeout = timeout
        self._location = location
        self._log_poll = log_poll_interval
        self._default_env = default_environment
        self._ws = mapping.workspace_path(subscription_id, resource_group, workspace_name)
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
        #: endpoint -> why Azure Monitor gave no metrics for it (last get_metrics)
        self.metrics_missing: dict[str, str] = {}
        self._metrics_ttl = metrics_ttl
        self._metrics_endpoint = metrics_endpoint.rstrip("/") if metrics_endpoint else None
        self._monitor: ArmClient | None = None
        self._retry = RetryPolicy(max_retries=max_retries)
        self._metrics_cache: dict[str | None, tuple[float, list[MetricSample]]] = {}
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
        await self.arm.close()
        if self._monitor is not None:
            await self._monitor.close()
        if self._http is not None:
            await self._http.aclose()
        await self.tokens.close()

    def capabilities(self) -> frozenset[str]:
        return frozenset(
            {
                "cluster.create",
                "cluster.attach",
                "cluster.scale",
                "cluster.delete",
                "model.create",
                "endpoint.invoke",
                "deployment.logs.follow",
                "metrics",
            }
        )

    # -- helpers ------------------------------------------------------------------------------
    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            storage.redact_httpx_logs()
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(max(self._timeout, 60.0), connect=10.0)
            )
        return self._http

    async def location(self) -> str | None:
        if self._location is None:
            ws = await self.arm.get(self._ws, kind="workspace", name=self.workspace_name)
            self._location = ws.get("location") or None
        return self._location

    def _track(self, lro: Lro) -> OperationHandle:
        self._ops[lro.id] = lro
        return OperationHandle(lro.to_operation(), self._poll_when_due, interval=0.0)

    async def _poll_when_due(self, op_id: str) -> Operation:
        lro = self._lro(op_id)
        wait = self.arm.seconds_until_due(lro)
        if wait > 0:
            await asyncio.sleep(min(wait, 1.0))
        return (await self.arm.poll(lro)).to_operation()

    def _lro(self, op_id: str) -> Lro:
        lro = self._ops.get(op_id)
        if lro is None:
            raise NotFound(
                "operation", op_id, fix="operations live as long as the process that started them"
            )
        return lro

    async def _wait(self, lro: Lro, limit: float = 600.0) -> Lro:
        deadline = time.monotonic() + limit
        while not lro.done:
            if time.monotonic() > deadline:
                raise BackendError(
                    f"{lro.kind} on {lro.target} did not finish within {limit:.0f}s",
                    fix="check it later with: modeldeck operation show " + lro.id,
                )
            wait = self.arm.seconds_until_due(lro)
            if wait > 0:
                await asyncio.sleep(min(wait, 1.0))
            await self.arm.poll(lro)
        if lro.status is OperationStatus.FAILED:
            raise error_from_dict(lro.error or {"message": lro.message})
        return lro

    async def _get_or_none(self, path: str, kind: str, name: str) -> dict[str, Any] | None:
        resp = await self.arm.request("GET", path, kind=kind, name=name, allow=(404,))
        if resp.status_code == 404:
            return None
        return resp.json()

    # -- clusters -----------------------------------------------------------------------------
    async def _raw_computes(self) -> list[dict[str, Any]]:
        return await self.arm.list_all(f"{self._ws}/computes", kind="cluster")

    async def _raw_endpoints(self) -> list[dict[str, Any]]:
        return await self.arm.list_all(f"{self._ws}/onlineEndpoints", kind="endpoint")

    async def list_clusters(self) -> list[Cluster]:
        computes, endpoints = await asyncio.gather(self._raw_computes(), self._raw_endpoints())
        counts: dict[str, int] = {}
        for e in endpoints:
            c = mapping.last_segment((e.get("properties") or {}).get("compute"))
            counts[c] = counts.get(c, 0) + 1
        return [
            mapping.compute_to_cluster(c, counts.get(str(c.get("name")), 0))
            for c in computes
            if mapping.is_cluster(c)
        ]

    async def _raw_cluster(self, name: str) -> dict[str, Any]:
        res = await self.arm.get(f"{self._ws}/computes/{name}", kind="cluster", name=name)
        if not mapping.is_cluster(res):
            ctype = (res.get("properties") or {}).get("computeType")
            raise NotFound(
                "cluster",
                name,
                message=f"compute '{name}' is a {ctype} compute, not a Kubernetes or AKS cluster",
            )
        return res

    async def get_cluster(self, name: str) -> Cluster:
        res, endpoints = await asyncio.gather(self._raw_cluster(name), self._raw_endpoints())
        n = sum(
            1
            for e in endpoints
            if mapping.last_segment((e.get("properties") or {}).get("compute")) == name
        )
        return mapping.compute_to_cluster(res, n)

    async def create_cluster(self, spec: ClusterSpec) -> OperationHandle:
        validation.cluster_spec(replace(spec, driver=ClusterDriver.POOL))
        if await self._get_or_none(f"{self._ws}/computes/{spec.name}", "cluster", spec.name):
            raise Conflict(
                f"a compute named '{spec.name}' already exists in workspace {self.workspace_name}",
                fix="choose another name, or scale the existing one: modeldeck cluster scale",
            )
        size = vmsizes.lookup(spec.vm_size)
        body = mapping.aks_create_body(
            agent_count=spec.agent_count,
            vm_size=size.name if size else spec.vm_size,
            purpose=spec.purpose,
            location=await self.location(),
            description=spec.description,
            tags=spec.tags,
        )
        lro = await self.arm.begin(
            "PUT",
            f"{self._ws}/computes/{spec.name}",
            json=body,
            kind="cluster.create",
            target=spec.name,
            err_kind="cluster",
            err_name=spec.name,
        )
        return self._track(lro)

    async def attach_cluster(self, spec: ClusterSpec) -> OperationHandle:
        validation.name(spec.name)
        rid = (spec.resource_id or "").strip()
        lowered = rid.lower()
        if not rid.startswith(_ARM_ID_PREFIX) or not (
            "microsoft.containerservice/managedclusters/" in lowered
            or "microsoft.kubernetes/connectedclusters/" in lowered
        ):
            raise InvalidInput(
                "resource_id",
                rid or None,
                "must be the ARM resource ID of an AKS cluster or an Arc-enabled Kubernetes cluster",
                "pass --resource-id /subscriptions/SUB/resourceGroups/RG/providers/"
                "Microsoft.ContainerService/managedClusters/NAME (see: az aks show --query id)",
            )
        computes = await self._raw_computes()
        for c in computes:
            if c.get("name") == spec.name:
                raise Conflict(
                    f"a compute named '{spec.name}' already exists", fix="choose another name"
                )
            other = str((c.get("properties") or {}).get("resourceId") or "")
            if other.lower() == lowered:
                raise Conflict(
                    f"this cluster is already attached as '{c.get('name')}'; attaching it twice "
                    "under two names breaks the first attachment",
                    fix=f"use '{c.get('name')}', or detach it first: modeldeck cluster detach -n {c.get('name')}",
                )
        body = mapping.kubernetes_attach_body(
            resource_id=rid,
            namespace=spec.namespace,
            location=await self.location(),
            description=spec.description,
            tags=spec.tags,
        )
        lro = await self.arm.begin(
            "PUT",
            f"{self._ws}/computes/{spec.name}",
            json=body,
            kind="cluster.attach",
            target=spec.name,
            err_kind="cluster",
            err_name=spec.name,
        )
        return self._track(lro)

    async def detach_cluster(self, name: str, *, delete_resources: bool = False) -> OperationHandle:
        await self._raw_cluster(name)
        action = "Delete" if delete_resources else "Detach"
        lro = await self.arm.begin(
            "DELETE",
            f"{self._ws}/computes/{name}",
            params={"underlyingResourceAction": action},
            kind="cluster.detach",
            target=name,
            err_kind="cluster",
            err_name=name,
        )
        return self._track(lro)

    async def scale_cluster(self, name: str, agent_count: int) -> OperationHandle:
        validation.integer(agent_count, "agent_count", 1, 100)
        current = await self._raw_cluster(name)
        props = current.get("properties") or {}
        if props.get("computeType") != "AKS":
            raise InvalidInput(
                "cluster",
                name,
                "is an attached Kubernetes compute: its nodes are scaled on the cluster itself",
                "scale the node pool with: az aks nodepool scale (or your Kubernetes provider)",
            )
        inner = props.get("properties") or {}
        size = vmsizes.lookup(str(inner.get("agentVmSize") or ""))
        purpose = mapping.compute_to_cluster(current).purpose
        if size is not None:
            validation.purpose_capacity(
                purpose, agent_count * size.vcpus, f"{agent_count} x {size.name}"
            )
        body = mapping.aks_scale_body(current, agent_count)
        lro = await self.arm.begin(
            "PUT",
            f"{self._ws}/computes/{name}",
            json=body,
            kind="cluster.scale",
            target=name,
            err_kind="cluster",
            err_name=name,
        )
        return self._track(lro)

    async def delete_cluster(self, name: str) -> OperationHandle:
        await self._raw_cluster(name)
        users = [
            str(e.get("name"))
            for e in await self._raw_endpoints()
            if mapping.last_segment((e.get("properties") or {}).get("compute")) == name
        ]
        if users:
            raise Conflict(
                f"cluster '{name}' has endpoints: {', '.join(sorted(users))}",
                fix="delete them first (modeldeck online-endpoint delete -n NAME), or detach the cluster instead",
            )
        lro = await self.arm.begin(
            "DELETE",
            f"{self._ws}/computes/{name}",
            params={"underlyingResourceAction": "Delete"},
            kind="cluster.delete",
            target=name,
            err_kind="cluster",
            err_name=name,
        )
        return self._track(lro)

    # -- models -------------------------------------------------------------------------------
    async def _model_versions(self, name: str) -> list[Model]:
        items = await self.arm.list_all(
            f"{self._ws}/models/{name}/versions", kind="model", name=name
        )
        return sorted(
            (mapping.model_version_to_model(name, v) for v in items), key=lambda m: m.version
        )

    async def list_models(self, name: str | None = None) -> list[Model]:
        if name is not None:
            return await self._model_versions(name)
        containers = await self.arm.list_all(f"{self._ws}/models", kind="model")
        sem = asyncio.Semaphore(8)

        async def one(c: dict[str, Any]) -> list[Model]:
            async with sem:
                try:
                    return await self._model_versions(str(c.get("name")))
                except NotFound:
                    return []

        groups = await asyncio.gather(*(one(c) for c in containers))
        return [m for g in groups for m in g]

    async def _latest_version(self, name: str) -> str:
        container = await self.arm.get(f"{self._ws}/models/{name}", kind="model", name=name)
        latest = (container.get("properties") or {}).get("latestVersion")
        if latest:
            return str(latest)
        versions = await self._model_versions(name)
        if not versions:
            raise NotFound("model", name)
        return str(versions[-1].version)

    async def get_model(self, name: str, version: int | None = None) -> Model:
        v = str(version) if version is not None else await self._latest_version(name)
        res = await self.arm.get(
            f"{self._ws}/models/{name}/versions/{v}", kind="model", name=f"{name}:{v}"
        )
        return mapping.model_version_to_model(name, res)

    async def create_model(self, spec: ModelSpec) -> Model:
        remote = spec.path.startswith(("azureml:", "https://", "http://", "wasbs://", "abfss://"))
        if remote:
            validation.name(spec.name)
            if spec.version is not None:
                validation.integer(spec.version, "version", 1)
            validation.tags(spec.tags)
        else:
            validation.model_spec(spec)
        container = await self._get_or_none(f"{self._ws}/models/{spec.name}", "model", spec.name)
        if spec.version is not None:
            version = str(spec.version)
            if await self._get_or_none(
                f"{self._ws}/models/{spec.name}/versions/{version}", "model", spec.name
            ):
                raise Conflict(
                    f"model {spec.name} version {version} already exists",
                    fix="leave out --version to register the next one",
                )
        elif container is None:
            version = "1"
        else:
            props = container.get("properties") or {}
            version = str(props.get("nextVersion") or int(props.get("latestVersion") or 0) + 1)
        if spec.path.startswith("azureml:") and not spec.path.startswith("azureml://"):
            src_name, src_version = mapping.parse_model_ref(spec.path)
            src = await self.get_model(src_name, int(src_version) if src_version else None)
            uri, original = src.path, spec.path
        elif remote:
            uri, original = spec.path, spec.path
        else:
            local = Path(spec.path).resolve()
            # the same input rules as the local store's (regular files, no link out, capped)
            checked = await asyncio.to_thread(inputs.scan, spec.path, "path", "model")
            upload = await storage.start_upload(
                self.arm, f"{self._ws}/models/{spec.name}/versions/{version}"
            )
            uri = await storage.upload_path(
                self._client(), self._retry, upload, checked, under=local.name
            )
            original = str(local)
        body = mapping.model_version_body(
            model_uri=uri,
            description=spec.description,
            tags=spec.tags,
            original_path=original,
            model_type=spec.type,
        )
        res = await self.arm.request(
            "PUT",
            f"{self._ws}/models/{spec.name}/versions/{version}",
            json=body,
            kind="model",
            name=f"{spec.name}:{version}",
        )
        return mapping.model_version_to_model(spec.name, res.json())

    async def delete_model(self, name: str, version: int) -> None:
        await self.get_model(name, version)
        ref = f"azureml:{name}:{version}"
        users = [
            f"{d.endpoint_name}/{d.name}"
            for d in await self.list_deployments()
            if d.spec.model == ref
        ]
        if users:
            raise Conflict(
                f"model {name} version {version} is used by: {', '.join(users)}",
                fix="delete or update those deployments first",
            )
        await self.arm.request(
            "DELETE",
            f"{self._ws}/models/{name}/versions/{version}",
            kind="model",
            name=f"{name}:{version}",
        )

    async def _code_id(self, spec: DeploymentSpec) -> str | None:
        code = spec.code_configuration.code
        if not code or is_mlflow_no_code(code):  # no-code MLflow: Azure brings its own
            return None
        if code.startswith(_ARM_ID_PREFIX):
            return code
        if code.startswith("azureml:") and not code.startswith("azureml://"):
            n, v = mapping.parse_model_ref(code)
            return f"{self._ws}/codes/{n}/versions/{v or '1'}"
        folder = Path(code).expanduser().resolve()
        if not folder.is_dir():
            raise InvalidInput(
                "code_configuration.code",
                code,
                "is not a folder",
                "point code_configuration.code at the folder that holds the scoring script",
            )
        # the script inside the folder, the folder's files regular and inside it, capped
        inputs.check_code(str(folder), spec.code_configuration.scoring_script)
        checked = await asyncio.to_thread(
            inputs.scan, str(folder), "code_configuration.code", "code"
        )
        contents = await asyncio.to_thread(inputs.read_files, checked)
        digest = hashlib.sha256()
        for rel, data in sorted(contents.items()):
            digest.update(rel.encode() + b"\0" + data)
        name = f"modeldeck-{digest.hexdigest()[:24]}"
        path = f"{self._ws}/codes/{name}/versions/1"
        if await self._get_or_none(path, "code", name) is None:
            upload = await storage.start_upload(self.arm, path)
            uri = await storage.upload_path(self._client(), self._retry, upload, checked, under="")
            await self.arm.request(
                "PUT", path, json=mapping.code_version_body(uri), kind="code", name=name
            )
        return path

    async def _environment_id(self, spec: DeploymentSpec) -> str | None:
        if is_mlflow_no_code(spec.code_configuration.code):
            return None  # Azure builds it from the MLflow model, as modeldeck does locally
        env = spec.environment
        conda = (spec.environment_inline or {}).get("conda_file")
        if not env and conda is None:
            return self._default_env
        if env and env.startswith((_ARM_ID_PREFIX, "azureml:")):
            return env
        image = env or mapping.CONDA_BASE_IMAGE
        material = image
        conda_text: str | None = None
        if conda is not None:  # JSON is YAML: the conda file as Azure reads it
            conda_text = json.dumps(conda, indent=2, sort_keys=True)
            material = f"{image}\n{conda_text}"
        name = f"modeldeck-{hashlib.sha256(material.encode()).hexdigest()[:24]}"
        path = f"{self._ws}/environments/{name}/versions/1"
        if await self._get_or_none(path, "environment", name) is None:
            await self.arm.request(
                "PUT",
                path,
                json=mapping.environment_version_body(image, conda_text),
                kind="environment",
                name=name,
            )
        return path

    async def _model_id(self, ref: str) -> str:
        if ref.startswith(_ARM_ID_PREFIX) or ref.startswith("azureml://"):
            return ref
        name, version = mapping.parse_model_ref(ref)
        v = version or await self._latest_version(name)
        await self.arm.get(
            f"{self._ws}/models/{name}/versions/{v}", kind="model", name=f"{name}:{v}"
        )
        return f"{self._ws}/models/{name}/versions/{v}"

    # -- endpoints ----------------------------------------------------------------------------
    def _ep(self, name: str) -> str:
        return f"{self._ws}/onlineEndpoints/{name}"

    async def _raw_endpoint(self, name: str) -> dict[str, Any]:
        return await self.arm.get(self._ep(name), kind="endpoint", name=name)

    async def list_endpoints(self) -> list[Endpoint]:
        return [self._read("endpoint", e) for e in await self._raw_endpoints()]

    async def get_endpoint(self, name: str) -> Endpoint:
        return self._read("endpoint", await self._raw_endpoint(name))

    def _read(self, kind: str, res: dict[str, Any]) -> Endpoint:
        self._remember(kind, str(res.get("name") or ""), res)
        return mapping.endpoint_to_domain(res)

    def _remember(self, kind: str, name: str, res: dict[str, Any]) -> None:
        key = (kind, name, mapping.revision(res))
        self._reads[key] = res
        self._reads.move_to_end(key)
        while len(self._reads) > 512:
            self._reads.popitem(last=False)

    def _check_revision(
        self, kind: str, name: str, current: dict[str, Any], if_revision: str | None
    ) -> None:
        """Refuse (Conflict) a write based on ``if_revision`` when the resource as read just
        now has another revision.

        ARM gives online endpoints and deployments no etag and honours no If-Match for them
        (see :func:`mapping.revision`), so this check runs on a GET made just before the
        PUT: it narrows the race to that one round trip but cannot close it on ARM's side.
        (Azure ML does refuse a second write while the first one's operation is running:
        that 409 comes back as Conflict too.)
        """
        if not if_revision:
            return
        now = mapping.revision(current)
        if now == if_revision:
            return
        before = self._reads.get((kind, name, if_revision))
        # what changed, as {path: [before, after]} (services/api/revisions.py): the CLI retries
        # on the fresh state when its own change touches none of it; unknown (this process
        # did not read that revision): no "changed", so nothing is retried blindly
        changed = (
            revisions.diff(mapping.visible(kind, before), mapping.visible(kind, current))
            if before is not None
            else None
        )
        fields = sorted({p.split(".")[0] for p in changed or {}})
        sd = current.get("systemData") or {}
        by, at = sd.get("lastModifiedBy"), sd.get("lastModifiedAt")
        shown: dict[str, Any] = {}
        if kind == "endpoint":  # the live maps, for a dashboard that shows what won
            live = mapping.visible(kind, current)
            shown = {"traffic": live["traffic"], "mirror_traffic": live["mirror_traffic"]}
            what, show = f"endpoint '{name}'", f"modeldeck online-endpoint show -n {name}"
        else:
            e, d = name.split("/", 1)
            what = f"deployment '{d}' of endpoint '{e}'"
            show = f"modeldeck online-deployment show -e {e} -n {d}"
        described = revisions.describe(changed) if changed else ""
        raise Conflict(
            f"{what} changed since you read it (revision {if_revision} -> {now}"
            + (f" by {by}" if by else "")
            + (f" at {at}" if at else "")
            + (f": {described}" if described else "")
            + ")"
            + (f"; traffic is now {json.dumps(shown['traffic'], sort_keys=True)}" if shown else "")
            + "; this change was not applied",
            fix=f"read it again ({show} shows the other change) and make your change on top of it",
            revision_sent=if_revision,
            revision_now=now,
            changed=changed,
            by=by or "someone",
            fields=fields or None,
            changed_by=by,
            changed_at=at,
            current=shown or None,
        )

    async def create_endpoint(self, spec: EndpointSpec) -> OperationHandle:
        validation.endpoint_spec(spec)
        if mapping.auth_mode_to_arm(spec.auth_mode) is None:
            raise InvalidInput(
                "auth_mode",
                spec.auth_mode.value,
                "Azure ML online endpoints take key or aml_token",
                "set auth_mode: key (or aml_token)",
            )
        if spec.traffic or spec.mirror_traffic:
            raise InvalidInput(
                "traffic",
                dict(spec.traffic),
                "a new endpoint has no deployments to send traffic to",
                "create the endpoint, then its deployments, then set traffic",
            )
        if await self._get_or_none(self._ep(spec.name), "endpoint", spec.name):
            raise Conflict(
                f"endpoint '{spec.name}' already exists",
                fix="choose another name, or change it with: modeldeck online-endpoint update",
            )
        await self._raw_cluster(spec.compute)
        body = mapping.endpoint_create_body(
            spec, compute_id=f"{self._ws}/computes/{spec.compute}", location=await self.location()
        )
        lro = await self.arm.begin(
            "PUT",
            self._ep(spec.name),
            json=body,
            kind="endpoint.create",
            target=spec.name,
            err_kind="endpoint",
            err_name=spec.name,
        )
        return self._track(lro)

    async def _deployment_names(self, endpoint: str) -> list[str]:
        items = await self.arm.list_all(
            f"{self._ep(endpoint)}/deployments", kind="endpoint", name=endpoint
        )
        return [str(d.get("name")) for d in items]

    async def _put_endpoint(
        self,
        name: str,
        *,
        traffic: dict[str, int] | None = None,
        mirror_traffic: dict[str, int] | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        control: str | None = None,
        kind: str = "endpoint.update",
        if_revision: str | None = None,
    ) -> Lro:
        """Read the endpoint and its deployments, validate, PUT with the FULL maps.

        With ``if_revision``, refused with Conflict when the endpoint read just now has
        another revision (see :meth:`_check_revision`).
        """
        current, deps = await asyncio.gather(self._raw_endpoint(name), self._deployment_names(name))
        self._check_revision("endpoint", name, current, if_revision)
        props = current.get("properties") or {}
        live_now = {str(k): int(v) for k, v in (props.get("traffic") or {}).items()}
        mirror_now = {str(k): int(v) for k, v in (props.get("mirrorTraffic") or {}).items() if v}
        if traffic is not None:
            given = validation.traffic(traffic, deps)
            new_traffic = {d: 0 for d in deps}
            new_traffic.update(given)
        else:  # keep every deployment's weight as read just now
            new_traffic = {d: live_now.get(d, 0) for d in deps}
        if mirror_traffic is not None:
            new_mirror = validation.mirror_traffic(mirror_traffic, new_traffic, deps)
        else:
            new_mirror = {d: p for d, p in mirror_now.items() if d in deps}
            validation.mirror_traffic(new_mirror, new_traffic, deps)
        if description is not None:
            validation.description(description)
        all_tags = {str(k): str(v) for k, v in (current.get("tags") or {}).items()}
        if tags is not None:
            user = validation.tags(tags)
            all_tags = {k: v for k, v in all_tags.items() if k.startswith("modeldeck.")}
            all_tags.update(user)
        if control is not None:
            if control and control not in deps:
                raise InvalidInput(
                    "control",
                    control,
                    f"there is no deployment '{control}' on this endpoint",
                    "existing deployments: " + (", ".join(sorted(deps)) or "none yet"),
                )
            if control:
                all_tags[mapping.TAG_CONTROL] = control
            else:
                all_tags.pop(mapping.TAG_CONTROL, None)
        body = mapping.endpoint_update_body(
            current,
            traffic=new_traffic,
            mirror_traffic=new_mirror,
            description=description,
            tags=all_tags,
        )
        return await self.arm.begin(
            "PUT",
            self._ep(name),
            json=body,
            kind=kind,
            target=name,
            err_kind="endpoint",
            err_name=name,
        )

    async def update_endpoint(
        self,
        name: str,
        *,
        traffic: dict[str, int] | None = None,
        mirror_traffic: dict[str, int] | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        control: str | None = None,
        if_revision: str | None = None,
    ) -> OperationHandle:
        lro = await self._put_endpoint(
            name,
            traffic=traffic,
            mirror_traffic=mirror_traffic,
            description=description,
            tags=tags,
            control=control,
            if_revision=if_revision,
        )
        return self._track(lro)

    async def delete_endpoint(self, name: str) -> OperationHandle:
        await self._raw_endpoint(name)
        lro = await self.arm.begin(
            "DELETE",
            self._ep(name),
            kind="endpoint.delete",
            target=name,
            err_kind="endpoint",
            err_name=name,
        )
        self._invoke_cache.pop(name, None)
        self._token_cache.pop(name, None)
        return self._track(lro)

    async def get_keys(self, name: str) -> EndpointKeys:
        resp = await self.arm.request(
            "POST", f"{self._ep(name)}/listKeys", kind="endpoint", name=name, retry_unsafe=True
        )
        data = resp.json()
        return EndpointKeys(
            primaryKey=str(data.get("primaryKey") or ""),
            secondaryKey=str(data.get("secondaryKey") or ""),
        )

    async def regenerate_keys(self, name: str, key_type: KeyType) -> EndpointKeys:
        kt = KeyType.parse(key_type)
        lro = await self.arm.begin(
            "POST",
            f"{self._ep(name)}/regenerateKeys",
            json={"keyType": "Primary" if kt is KeyType.PRIMARY else "Secondary"},
            kind="endpoint.regenerate_keys",
            target=name,
            err_kind="endpoint",
            err_name=name,
        )
        self._ops[lro.id] = lro
        self._invoke_cache.pop(name, None)
        await self._wait(lro)
        return await self.get_keys(name)

    async def get_token(self, name: str) -> EndpointToken:
        cached = self._token_cache.get(name)
        if cached is not None and time.time() < cached.refreshAfterTimeUtc:
            return cached
        resp = await self.arm.request(
            "POST", f"{self._ep(name)}/token", kind="endpoint", name=name, retry_unsafe=True
        )
        data = resp.json()
        expiry = float(data.get("expiryTimeUtc") or 0)
        refresh = float(data.get("refreshAfterTimeUtc") or 0) or expiry - 300
        token = EndpointToken(
            accessToken=str(data.get("accessToken") or ""),
            expiryTimeUtc=expiry,
            refreshAfterTimeUtc=refresh,
            tokenType=str(data.get("tokenType") or "Bearer"),
        )
        self._token_cache[name] = token
        return token

    async def _scoring_auth(self, name: str, *, fresh: bool = False) -> tuple[str, str]:
        """(scoring URI, bearer secret), cached for a minute (tokens: until refresh-by)."""
        cached = self._invoke_cache.get(name)
        if cached is not None and not fresh and time.time() < cached[2]:
            return cached[0], cached[1]
        ep = await self._raw_endpoint(name)
        props = ep.get("properties") or {}
        uri = str(props.get("scoringUri") or "")
        if not uri:
            raise Conflict(
                f"endpoint '{name}' has no scoring URI yet (state {props.get('provisioningState')})",
                fix="wait until it is Succeeded: modeldeck online-endpoint show -n " + name,
            )
        mode = str(props.get("authMode") or "Key").lower()
        until = time.time() + 60
        if mode == "key":
            secret = (await self.get_keys(name)).primaryKey
        elif mode == "amltoken":
            if fresh:
                self._token_cache.pop(name, None)
            tok = await self.get_token(name)
            secret, until = tok.accessToken, min(until, tok.refreshAfterTimeUtc)
        else:  # AADToken: a Microsoft Entra token for Azure ML
            if self._ml_tokens is None:
                self._ml_tokens = self.tokens.for_scope(self.ml_scope)
            secret = await self._ml_tokens.token()
        self._invoke_cache[name] = (uri, secret, until)
        return uri, secret

    async def invoke(
        self,
        name: str,
        body: bytes,
        *,
        deployment: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> InvokeResult:
        for attempt in range(2):
            uri, secret = await self._scoring_auth(name, fresh=attempt > 0)
            refuse_cleartext_credentials(
                uri,
                what=f"the key or token of endpoint '{name}'",
                field="scoring_uri",
                fix="give the endpoint's compute TLS (for a Kubernetes compute: the inference "
                "router's sslConfiguration): Azure ML then gives it an https scoring URI",
            )
            h = {"Content-Type": "application/json", **(headers or {})}
            h["Authorization"] = f"Bearer {secret}"
            if deployment:
                h["azureml-model-deployment"] = deployment
            try:
                resp = await self._client().post(uri, content=body, headers=h)
            except httpx.TimeoutException:
                raise BackendError(
                    f"the scoring URI of '{name}' did not answer in time",
                    fix="raise request_settings.request_timeout_ms, or check the deployment's logs",
                ) from None
            except httpx.TransportError as exc:
                raise BackendError(f"cannot reach the scoring URI of '{name}': {exc}") from None
            if resp.status_code == 401 and attempt == 0:
                continue  # keys rotated or token expired: fetch again once
            if resp.status_code == 401:
                raise Unauthorized(
                    f"the scoring URI of '{name}' refused the key/token",
                    fix="check the endpoint's auth mode; if keys were just regenerated, try again",
                )
            hdrs = {k.lower(): v for k, v in resp.headers.items()}
            return InvokeResult(
                status=resp.status_code,
                body=resp.content,
                deployment=hdrs.get("azureml-model-deployment")
                or hdrs.get("x-ms-azureml-model-deployment"),
                request_id=hdrs.get("x-request-id") or hdrs.get("x-ms-request-id"),
                headers=hdrs,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    # -- deployments --------------------------------------------------------------------------
    def _dep(self, endpoint: str, name: str) -> str:
        return f"{self._ep(endpoint)}/deployments/{name}"

    def _to_deployment(
        self, endpoint: str, res: dict[str, Any], ep: dict[str, Any] | None
    ) -> Deployment:
        props = (ep or {}).get("properties") or {}
        name = str(res.get("name") or "")
        state = mapping.provisioning_state((res.get("properties") or {}).get("provisioningState"))
        error = None
        if state.value == "Failed":
            error = self._last_errors.get((endpoint, name)) or self._failure_of(endpoint, name)
        self._remember("deployment", f"{endpoint}/{name}", res)
        dep = mapping.deployment_to_domain(
            endpoint,
            res,
            traffic=props.get("traffic"),
            mirror_traffic=props.get("mirrorTraffic"),
            error=error,
        )
        res_set = dep.spec.resources
        mem = res_set.limits.memory_gb or res_set.requests.memory_gb
        if mem:
            self._memory_gib[(endpoint, name)] = float(mem)
        return dep

    async def list_deployments(self, endpoint: str | None = None) -> list[Deployment]:
        self._failures = None  # read again: another process may have recorded one
        if endpoint is not None:
            ep, items = await asyncio.gather(
                self._raw_endpoint(endpoint),
                self.arm.list_all(
                    f"{self._ep(endpoint)}/deployments", kind="endpoint", name=endpoint
                ),
            )
            return [self._to_deployment(endpoint, d, ep) for d in items]
        endpoints = await self._raw_endpoints()
        sem = asyncio.Semaphore(16)

        async def one(ep: dict[str, Any]) -> list[Deployment]:
            name = str(ep.get("name"))
            async with sem:
                try:
                    items = await self.arm.list_all(
                        f"{self._ep(name)}/deployments", kind="endpoint", name=name
                    )
                except NotFound:  # deleted meanwhile
                    return []
            return [self._to_deployment(name, d, ep) for d in items]

        results = await asyncio.gather(*(one(e) for e in endpoints), return_exceptions=True)
        out: list[Deployment] = []
        errors: list[BaseException] = []
        for r in results:
            if isinstance(r, BaseException):
                errors.append(r)
            else:
                out.extend(r)
        if (
            errors and not out
        ):  # one endpoint failing never hides the others; all failing is an error
            raise errors[0]
        return out

    async def get_deployment(self, endpoint: str, name: str) -> Deployment:
        self._failures = None
        ep, res = await asyncio.gather(
            self._raw_endpoint(endpoint),
            self.arm.get(self._dep(endpoint, name), kind="deployment", name=f"{endpoint}/{name}"),
        )
        return self._to_deployment(endpoint, res, ep)

    async def _deployment_body(self, spec: DeploymentSpec) -> dict[str, Any]:
        model_id, code_id, env_id, location = await asyncio.gather(
            self._model_id(spec.model),
            self._code_id(spec),
            self._environment_id(spec),
            self.location(),
        )
        return mapping.deployment_body(
            spec, model_id=model_id, code_id=code_id, environment_id=env_id, location=location
        )

    def _failure_of(self, endpoint: str, name: str) -> str:
        """Why it failed, as another process recorded it; else where to look."""
        if self._failures is None:
            self._failures = failures.load()
        known = failures.lookup(self._failures, self._dep(endpoint, name))
        if known:
            return known
        return (
            "provisioning Failed (ARM keeps the reason in the operation that failed, which "
            "this machine did not follow); see why the container did not start: "
            f"modeldeck online-deployment get-logs -e {endpoint} -n {name}"
        )

    def _remember_failure(self, endpoint: str, name: str) -> Callable[[Lro], None]:
        dep_id = self._dep(endpoint, name)

        def done(lro: Lro) -> None:
            if lro.status is OperationStatus.FAILED:
                self._last_errors[(endpoint, name)] = lro.message
                failures.record(dep_id, lro.message)
            else:
                self._last_errors.pop((endpoint, name), None)
                failures.record(dep_id, None)
            self._failures = None

        return done

    async def create_deployment(
        self, spec: DeploymentSpec, *, all_traffic: bool = False
    ) -> OperationHandle:
        validation.deployment_spec(spec)
        deps = await self._deployment_names(spec.endpoint_name)
        if spec.name in deps:
            raise Conflict(
                f"deployment '{spec.name}' already exists on endpoint '{spec.endpoint_name}'",
                fix="change it with: modeldeck online-deployment update",
            )
        validation.deployment_count(deps, spec.name)
        body = await self._deployment_body(spec)
        target = f"{spec.endpoint_name}/{spec.name}"
        lro = await self.arm.begin(
            "PUT",
            self._dep(spec.endpoint_name, spec.name),
            json=body,
            kind="deployment.create",
            target=target,
            err_kind="deployment",
            err_name=target,
        )
        lro.on_done = self._remember_failure(spec.endpoint_name, spec.name)
        if all_traffic:

            async def send_all() -> Lro:
                names = await self._deployment_names(spec.endpoint_name)
                full = {d: 0 for d in names}
                full[spec.name] = 100
                return await self._put_endpoint(
                    spec.endpoint_name,
                    traffic=full,
                    kind="endpoint.traffic",
                )

            lro.then = send_all
        return self._track(lro)

    async def update_deployment(
        self, spec: DeploymentSpec, *, if_revision: str | None = None
    ) -> OperationHandle:
        validation.deployment_spec(spec)
        target = f"{spec.endpoint_name}/{spec.name}"
        path = self._dep(spec.endpoint_name, spec.name)
        current = await self.arm.get(path, kind="deployment", name=target)
        self._check_revision("deployment", target, current, if_revision)  # before any upload
        body = await self._deployment_body(spec)
        if if_revision:  # and again just before the PUT: the upload may have taken a while
            current = await self.arm.get(path, kind="deployment", name=target)
            self._check_revision("deployment", target, current, if_revision)
        lro = await self.arm.begin(
            "PUT",
            self._dep(spec.endpoint_name, spec.name),
            json=body,
            kind="deployment.update",
            target=target,
            err_kind="deployment",
            err_name=target,
        )
        lro.on_done = self._remember_failure(spec.endpoint_name, spec.name)
        return self._track(lro)

    async def delete_deployment(self, endpoint: str, name: str) -> OperationHandle:
        target = f"{endpoint}/{name}"
        ep, _ = await asyncio.gather(
            self._raw_endpoint(endpoint),
            self.arm.get(self._dep(endpoint, name), kind="deployment", name=target),
        )
        props = ep.get("properties") or {}
        live = int((props.get("traffic") or {}).get(name) or 0)
        mirror = int((props.get("mirrorTraffic") or {}).get(name) or 0)
        if live or mirror:
            what = f"{live}% of live traffic" if live else f"{mirror}% of mirrored traffic"
            raise Conflict(
                f"deployment '{name}' takes {what} on endpoint '{endpoint}'",
                fix=f'move its traffic first: modeldeck online-endpoint update -n {endpoint} --traffic "..."',
            )
        lro = await self.arm.begin(
            "DELETE",
            self._dep(endpoint, name),
            kind="deployment.delete",
            target=target,
            err_kind="deployment",
            err_name=target,
        )
        dep_id = self._dep(endpoint, name)

        def gone(done: Lro) -> None:
            if done.status is OperationStatus.SUCCEEDED:
                self._last_errors.pop((endpoint, name), None)
                failures.record(dep_id, None)
                self._failures = None

        if lro.done:
            gone(lro)
        else:
            lro.on_done = gone
        return self._track(lro)

    async def _log_text(self, endpoint: str, name: str, tail: int, container: str) -> str:
        resp = await self.arm.request(
            "POST",
            f"{self._dep(endpoint, name)}/getLogs",
            json={"containerType": container, "tail": tail},
            kind="deployment",
            name=f"{endpoint}/{name}",
            retry_unsafe=True,
        )
        return str((resp.json() or {}).get("content") or "")

    async def get_logs(
        self, endpoint: str, name: str, *, lines: int = 100, since: float | None = None
    ) -> list[LogLine]:
        """``getLogs`` has only ``tail``: ``since`` filters the last ``lines`` lines here by
        the timestamp a line starts with; a line without one is kept (its time is unknown)."""
        validation.integer(lines, "lines", 1, 10000)
        text = await self._log_text(endpoint, name, lines, "InferenceServer")
        container = "InferenceServer"
        if not text.strip():  # the server never started: the model download's log says why
            text = await self._log_text(endpoint, name, lines, "StorageInitializer")
            container = "StorageInitializer"
        out = mapping.log_lines(endpoint, name, text, container=container, now=time.time())
        return [ln for ln in out if since is None or ln.ts >= since][-lines:]

    async def stream_logs(
        self,
        endpoint: str,
        name: str,
        *,
        lines: int = 100,
        follow: bool = True,
        since: float | None = None,
    ) -> AsyncIterator[LogLine]:
        """``since``: as in ``get_logs`` (filtered here by the lines' own timestamps)."""
        text = await self._log_text(endpoint, name, lines, "InferenceServer")
        seen = [ln for ln in text.splitlines() if ln.strip()]
        for line in mapping.log_lines(endpoint, name, text, now=time.time())[-lines:]:
            if since is None or line.ts >= since:
                yield line
        window = max(lines, 200)
        while follow:
            await asyncio.sleep(self._log_poll)
            text = await self._log_text(endpoint, name, window, "InferenceServer")
            current = [ln for ln in text.splitlines() if ln.strip()]
            fresh = mapping.new_tail(seen, current)
            seen = current
            if fresh:
                for line in mapping.log_lines(endpoint, name, "\n".join(fresh), now=time.time()):
                    if since is None or line.ts >= since:
                        yield line

    # -- metrics ------------------------------------------------------------------------------
    async def get_metrics(self, endpoint: str | None = None) -> list[MetricSample]:
        """Azure Monitor metrics of each endpoint, split by deployment (see ``monitor.py``).

        With the metrics batch API: 1 call per 50 endpoints + 1 per 50 deployments; else one
        ARM call per endpoint. What Azure Monitor does not have stays None/0 in the samples;
        ``self.metrics_missing`` says why when a call failed.
        Azure Monitor's grain is one minute, so answers are reused for ``metrics_ttl``
        seconds (30 by default): a dashboard polling every second does not spend ARM's
        read budget (throttled per subscription) on figures that cannot have changed.
        """
        cached = self._metrics_cache.get(endpoint)
        if cached is not None and time.monotonic() - cached[0] < self._metrics_ttl:
            return list(cached[1])
        samples = await self._fetch_metrics(endpoint)
        self._metrics_cache[endpoint] = (time.monotonic(), samples)
        return samples

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

    async def _fetch_metrics(self, endpoint: str | None) -> list[MetricSample]:
        eps = [await self._raw_endpoint(endpoint)] if endpoint else await self._raw_endpoints()
        self.metrics_missing = {}
        metrics = Metrics(
            self.arm, await self._batch_client(), self.subscription_id, self._memory_gib
        )
        return await metrics.samples(eps, self.metrics_missing)

    # -- operations ---------------------------------------------------------------------------
    async def get_operation(self, op_id: str) -> Operation:
        return (await self.arm.poll(self._lro(op_id))).to_operation()

    async def list_operations(self) -> list[Operation]:
        return [lro.to_operation() for lro in self._ops.values()]
