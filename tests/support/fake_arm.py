"""A fake of the ARM endpoints modeldeck uses, on loopback (aiohttp), speaking ARM's wire protocol,
and the static token credential the tests give the client instead of Entra ID.

What it does as ARM does (REST spec ``2024-10-01``):

* checks ``Authorization: Bearer`` (401 ``InvalidAuthenticationToken`` otherwise) and
  ``api-version`` (400 ``InvalidApiVersionParameter``) on every call;
* validates every request body against the spec's JSON Schemas (tests/azureml/schemas),
  answering 400 with the violations, and records them in ``schema_errors`` so a test
  fails when the client sent something the spec does not allow;
* answers PUT of computes, endpoints and deployments with 201 + ``Azure-AsyncOperation``,
  DELETE and ``regenerateKeys`` with 202 + ``Azure-AsyncOperation`` + ``Location`` +
  ``Retry-After``; operations go InProgress -> Succeeded (or Failed with an ARM error);
* 404 ``ResourceNotFound``, 409 for conflicting operations, 429 / 503 on demand;
* an endpoint PUT without ``traffic`` resets it to 0 for every deployment, as Azure does;
* ``systemData`` on endpoints and deployments (created/lastModified By/ByType/At, the
  caller's principal from ``users``), set on every PUT; no ``etag`` and no ``If-Match``:
  the spec gives online endpoints and deployments neither (an If-Match header is
  ignored, as by the service); a second PUT while an endpoint or a deployment is still
  provisioning is 409 ``Conflict`` ("another operation is in progress");
* serves a blob-like PUT for uploads (SAS checked) and each endpoint's scoring URI;
* the activity log (``Microsoft.Insights/eventtypes/management/values``, api-version
  2015-04-01): each accepted write of an endpoint or a deployment (PUT, DELETE,
  ``regenerateKeys``) makes a ``BeginRequest`` (Started) and an ``EndRequest``
  (Succeeded) event with the caller's principal; ``$filter`` is checked against the
  patterns the service allows (400 ``BadRequest`` otherwise, and for a start more than
  90 days back).

Why this is one file: it is one server; its routes and long-running operations share
one state, which the tests seed and read (``add_endpoint``, ``schema_errors``) directly.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from azure.core.credentials import AccessToken

from . import arm_spec as spec_mod

JSON_BODY = web.RequestKey("json", object)

API = "2024-10-01"
METRICS_API = "2023-10-01"
ACTIVITY_API = "2015-04-01"
ACTIVITY_PATH = "/providers/Microsoft.Insights/eventtypes/management/values"
BATCH_API = "2024-02-01"
WS_PREFIX = (
    "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices"
    "/workspaces/{ws}"
)


@dataclass
class Op:
    id: str
    steps: int  # polls answered InProgress before the end
    on_success: Callable[[], None]
    error: dict[str, Any] | None = None
    on_failure: Callable[[], None] | None = None
    polls: int = 0
    status: str = "InProgress"


#: what the service fills in a deployment's probes when a PUT leaves them (or a field of
#: them) out: REST ``ProbeSettings`` defaults (period PT10S, timeout PT2S, failureThreshold
#: 30, successThreshold 1); initialDelay has none in the spec, 10 s as az ml documents it
PROBES = ("livenessProbe", "readinessProbe")
PROBE_DEFAULTS = {
    "initialDelay": "PT10S",
    "period": "PT10S",
    "timeout": "PT2S",
    "failureThreshold": 30,
    "successThreshold": 1,
}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    token: str | None


@dataclass
class FakeArm:
    sub: str = "00000000-1111-2222-3333-444444444444"
    rg: str = "rg-demo"
    ws: str = "ws-demo"
    location: str = "westeurope"
    lro_steps: int = 2
    retry_after: str = "0"
    #: False: long operations answer with Location only (no Azure-AsyncOperation)
    async_header: bool = True
    #: False: an endpoint PUT answers with no operation header at all; the endpoint's own
    #: provisioningState moves on with each GET of it (ARM allows either)
    put_headers: bool = True
    _pending: dict[str, str] = field(default_factory=dict)
    #: tokens that sign in but have no role on the workspace (writes get 403)
    readonly_tokens: set[str] = field(default_factory=set)
    valid_tokens: set[str] = field(default_factory=set)
    #: token -> the principal ARM records in systemData (default: tester@contoso.com)
    users: dict[str, str] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    schema_errors: list[str] = field(default_factory=list)
    #: the activity log's events, oldest first (see the module doc)
    activity: list[dict[str, Any]] = field(default_factory=list)
    computes: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    keys: dict[str, dict[str, str]] = field(default_factory=dict)
    aml_tokens: dict[str, str] = field(default_factory=dict)
    #: Microsoft Entra tokens the scoring URIs of ``AADToken`` endpoints accept (Azure ML
    #: checks their audience; a test hands out one token per scope and lists the right one)
    aad_tokens: set[str] = field(default_factory=set)
    #: seconds from issue to an AML token's refreshAfterTimeUtc (Azure: half its life)
    aml_token_refresh_in: int = 1800
    logs: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    #: endpoint -> the minutes Azure Monitor holds of it: (epoch of the minute, deployment,
    #: status code class or "", {metric: the minute's value}); with any, the ARM metrics
    #: call answers the time series of its ``timespan`` at its ``interval``
    metric_minutes: dict[str, list[tuple[float, str, str, dict[str, float]]]] = field(
        default_factory=dict
    )
    #: (endpoint, deployment) -> {metric: value} of the deployment resource (batch API)
    deployment_metrics: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    ops: dict[str, Op] = field(default_factory=dict)
    #: (endpoint, deployment) -> ARM error the deployment's provisioning ends with
    fail_deployments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _faults: list[tuple[int, str | None, dict[str, Any]]] = field(default_factory=list)
    #: (status, Retry-After) answered to the next blob PUTs, one each
    _blob_faults: list[tuple[int, str | None]] = field(default_factory=list)
    #: path suffix -> status answered for every request to it (a broken resource)
    broken: dict[str, int] = field(default_factory=dict)
    #: serve HTTPS with this server context (tests/support/tls.py), as ARM does
    tls: Any = None
    sas_sig: str = field(default_factory=lambda: secrets.token_hex(8))
    base_url: str = ""
    _runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ control (tests)
    @property
    def ws_path(self) -> str:
        return WS_PREFIX.format(sub=self.sub, rg=self.rg, ws=self.ws)

    def throttle(self, count: int, retry_after: str | None = "1") -> None:
        """The next ``count`` ARM requests get 429 with this Retry-After."""
        body = {
            "error": {
                "code": "TooManyRequests",
                "message": "The request is being throttled as the limit has been reached for operation type - Read_ObservationWindow_00:05:00.",
            }
        }
        self._faults += [(429, retry_after, body)] * count

    def fail_transient(self, count: int, status: int = 503) -> None:
        body = {
            "error": {
                "code": "ServiceUnavailable",
                "message": "The service is temporarily unavailable.",
            }
        }
        self._faults += [(status, "0", body)] * count

    def throttle_blobs(self, count: int, retry_after: str | None = "1", status: int = 503) -> None:
        """The next ``count`` blob PUTs get ``status`` (storage's ServerBusy) with this Retry-After."""
        self._blob_faults += [(status, retry_after)] * count

    def calls(
        self, method: str | None = None, contains: str = "", *, suffix: str = ""
    ) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method)
            and contains in r.path
            and r.path.endswith(suffix)
        ]

    def arm_calls(self) -> int:
        return sum(1 for r in self.requests if not r.path.startswith(("/blob/", "/score/")))

    # ------------------------------------------------------------------ seeding
    def add_compute(
        self,
        name: str,
        *,
        kind: str = "AKS",
        agents: int = 3,
        vm: str = "Standard_D3_v2",
        purpose: str = "FastProd",
        resource_id: str | None = None,
    ) -> None:
        inner: dict[str, Any]
        if kind == "AKS":
            inner = {
                "agentCount": agents,
                "agentVmSize": vm,
                "clusterPurpose": purpose,
                "clusterFqdn": f"{name}.hcp.westeurope.azmk8s.io",
            }
        elif kind == "Kubernetes":
            inner = {"namespace": "default", "defaultInstanceType": "defaultinstancetype"}
        else:
            inner = {"vmSize": vm}
        self.computes[name] = {
            "id": f"{self.ws_path}/computes/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/computes",
            "location": self.location,
            "properties": {
                "computeType": kind,
                "provisioningState": "Succeeded",
                "resourceId": resource_id,
                "isAttachedCompute": resource_id is not None,
                "createdOn": "2026-11-01T10:00:00.0000000Z",
                "properties": inner,
            },
        }

    def add_model(self, name: str, version: str = "1") -> None:
        self.models.setdefault(name, {})[version] = self._model_res(
            name,
            version,
            {
                "modelUri": f"azureml://datastores/workspaceblobstore/paths/{name}/",
                "modelType": "custom_model",
            },
        )

    def add_code(self, name: str, version: str = "1", *, uri: str | None = None) -> None:
        """A registered code asset (``azureml:NAME:VERSION`` in a deployment's code)."""
        uri = uri or f"azureml://datastores/workspaceblobstore/paths/{name}/"
        self.codes[f"{name}/{version}"] = self._asset_res("codes", name, version, {"codeUri": uri})

    def add_endpoint(
        self, name: str, compute: str, *, auth: str = "Key", traffic: dict[str, int] | None = None
    ) -> None:
        self.endpoints[name] = {
            "id": f"{self.ws_path}/onlineEndpoints/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "location": self.location,
            "kind": "K8s",
            "identity": {
                "type": "SystemAssigned",
                "principalId": str(uuid.uuid4()),
                "tenantId": str(uuid.uuid4()),
            },
            "tags": {},
            "systemData": self._system_data(None, None),
            "properties": {
                "authMode": auth,
                "compute": f"{self.ws_path}/computes/{compute}",
                "description": "",
                "traffic": dict(traffic or {}),
                "mirrorTraffic": {},
                "provisioningState": "Succeeded",
                "scoringUri": f"{self.base_url}/score/{name}",
                "swaggerUri": f"{self.base_url}/score/{name}/swagger.json",
            },
        }
        self._service_properties(self.endpoints[name], None)
        self.deployments.setdefault(name, {})
        self.keys[name] = {
            "primaryKey": secrets.token_hex(16),
            "secondaryKey": secrets.token_hex(16),
        }

    def add_deployment(
        self,
        endpoint: str,
        name: str,
        *,
        model: str = "m",
        version: str = "1",
        state: str = "Succeeded",
        capacity: int = 1,
    ) -> None:
        if "c/1" not in self.codes:  # the code version it names (a PUT naming a missing one: 404)
            self.add_code("c")
        self.deployments.setdefault(endpoint, {})[name] = {
            "id": f"{self.ws_path}/onlineEndpoints/{endpoint}/deployments/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
            "location": self.location,
            "kind": "Kubernetes",
            "sku": {"name": "Default", "capacity": capacity},
            "tags": {},
            "systemData": self._system_data(None, None),
            "properties": {
                "endpointComputeType": "Kubernetes",
                "model": f"{self.ws_path}/models/{model}/versions/{version}",
                "codeConfiguration": {
                    "codeId": f"{self.ws_path}/codes/c/versions/1",
                    "scoringScript": "score.py",
                },
                "environmentId": "azureml:env:1",
                "scaleSettings": {"scaleType": "Default"},
                "requestSettings": {
                    "requestTimeout": "PT5S",
                    "maxConcurrentRequestsPerInstance": 1,
                    "maxQueueWait": "PT0.5S",
                },
                "livenessProbe": dict(PROBE_DEFAULTS),
                "readinessProbe": dict(PROBE_DEFAULTS),
                "containerResourceRequirements": {
                    "containerResourceRequests": {"cpu": "0.5", "memory": "512Mi"}
                },
                "provisioningState": state,
            },
        }

    def _system_data(
        self, request: web.Request | None, previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        """systemData as ARM sets it on a write: created* kept, lastModified* now."""
        token = ""
        if request is not None:
            auth = request.headers.get("Authorization", "")
            token = auth[7:] if auth.startswith("Bearer ") else ""
        who = self.users.get(token, "tester@contoso.com")
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e7):07d}Z"
        before = (previous or {}).get("systemData") or {}
        return {
            "createdBy": before.get("createdBy", who),
            "createdByType": before.get("createdByType", "User"),
            "createdAt": before.get("createdAt", stamp),
            "lastModifiedBy": who,
            "lastModifiedByType": "User",
            "lastModifiedAt": stamp,
        }

    def _service_properties(self, res: dict[str, Any], previous: dict[str, Any] | None) -> None:
        """The string properties the service adds to an online endpoint's own (``properties.
        properties``), as az ml shows them: ``azureml.onlineendpointid`` (the id in lower
        case), ``AzureAsyncOperationUri``, ``createdAt``/``lastModifiedAt`` (``+0000``),
        ``createdBy``; a user's own properties are kept."""
        sd = res["systemData"]
        stamp = sd["lastModifiedAt"].rstrip("Z")[:26] + "+0000"
        old = ((previous or {}).get("properties") or {}).get("properties") or {}
        res["properties"]["properties"] = {
            **(res["properties"].get("properties") or {}),
            "AzureAsyncOperationUri": (
                f"{self.base_url}/subscriptions/{self.sub}/providers/Microsoft."
                f"MachineLearningServices/locations/{self.location}/mfeOperationsStatus/"
                f"oe:{uuid.uuid4()}?api-version=2022-02-01-preview"
            ),
            "azureml.onlineendpointid": res["id"].lower(),
            "createdAt": old.get("createdAt", stamp),
            "createdBy": sd["createdBy"],
            "lastModifiedAt": stamp,
        }

    # ------------------------------------------------------------------ server
    async def start(self) -> FakeArm:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 2**20)
        p = WS_PREFIX
        r = app.router
        r.add_get(p, self.get_workspace)
        r.add_get(p.rsplit("/", 1)[0], self.list_workspaces)
        r.add_get(p + "/computes", self.list_computes)
        r.add_route("*", p + "/computes/{name}", self.compute)
        r.add_get(p + "/models", self.list_model_containers)
        r.add_get(p + "/models/{name}", self.get_model_container)
        r.add_get(p + "/models/{name}/versions", self.list_model_versions)
        r.add_route("*", p + "/models/{name}/versions/{version}", self.model_version)
        r.add_post(
            p + "/{asset:models|codes}/{name}/versions/{version}/startPendingUpload",
            self.start_upload,
        )
        r.add_route("*", p + "/codes/{name}/versions/{version}", self.code_version)
        r.add_route("*", p + "/environments/{name}/versions/{version}", self.environment_version)
        r.add_get(p + "/onlineEndpoints", self.list_endpoints)
        r.add_route("*", p + "/onlineEndpoints/{e}", self.endpoint)
        r.add_post(p + "/onlineEndpoints/{e}/listKeys", self.list_keys)
        r.add_post(p + "/onlineEndpoints/{e}/regenerateKeys", self.regenerate_keys)
        r.add_post(p + "/onlineEndpoints/{e}/token", self.endpoint_token)
        r.add_get(p + "/onlineEndpoints/{e}/providers/Microsoft.Insights/metrics", self.get_metrics)
        r.add_get(p + "/onlineEndpoints/{e}/deployments", self.list_deployments)
        r.add_route("*", p + "/onlineEndpoints/{e}/deployments/{d}", self.deployment)
        r.add_post(p + "/onlineEndpoints/{e}/deployments/{d}/getLogs", self.get_logs)
        r.add_get(
            "/providers/Microsoft.MachineLearningServices/locations/{loc}/mfeOperationsStatus/{op}",
            self.op_status,
        )
        r.add_get(
            "/providers/Microsoft.MachineLearningServices/locations/{loc}/mfeOperationResults/{op}",
            self.op_result,
        )
        r.add_post("/subscriptions/{sub}/metrics:getBatch", self.metrics_batch)
        r.add_get("/subscriptions/{sub}" + ACTIVITY_PATH, self.activity_log)
        r.add_put("/blob/{path:.*}", self.put_blob)
        r.add_post("/score/{e}", self.score)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ middleware
    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[..., Any]
    ) -> web.StreamResponse:
        path = request.path
        raw = await request.read()
        body: Any = None
        if raw and request.content_type == "application/json":
            try:
                body = json.loads(raw)
            except ValueError:
                return _error(
                    400, "InvalidRequestContent", "The request content is not valid JSON."
                )
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        self.requests.append(Recorded(request.method, path, dict(request.query), body, token))
        if path.startswith(("/blob/", "/score/")):
            return await handler(request)
        if token is None or token not in self.valid_tokens:
            return _error(
                401,
                "InvalidAuthenticationToken",
                "The access token is invalid."
                if token
                else "The request did not have a subscription or a valid tenant level resource provider.",
            )
        if token in self.readonly_tokens and request.method in ("PUT", "DELETE", "PATCH"):
            return _error(
                403,
                "AuthorizationFailed",
                f"The client 'ana@contoso.com' with object id '{uuid.UUID(int=7)}' does not have "
                f"authorization to perform action 'Microsoft.MachineLearningServices/workspaces/write' "
                f"over scope '{path}' or the scope is invalid.",
            )
        want = METRICS_API if path.endswith("/providers/Microsoft.Insights/metrics") else API
        if path.endswith("/metrics:getBatch"):
            want = BATCH_API
        if path.endswith(ACTIVITY_PATH):
            want = ACTIVITY_API
        if request.query.get("api-version") != want:
            self.schema_errors.append(
                f"{request.method} {path}: api-version {request.query.get('api-version')!r}"
            )
            return _error(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{request.query.get('api-version')}' is invalid. The supported versions are '{want}'.",
            )
        missing = self._missing_parent(request.match_info)
        if missing is not None:
            return missing
        for suffix, status in self.broken.items():
            if path.endswith(suffix):
                return _error(
                    status, "BadRequest", f"Metrics are not available for this resource ({status})."
                )
        if self._faults:
            status, retry_after, err = self._faults.pop(0)
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return web.json_response(err, status=status, headers=headers)
        request[JSON_BODY] = body
        resp = await handler(request)
        if resp.status < 400 and "/onlineEndpoints/" in path:
            self._log_activity(request.method, path, token)
        return resp

    def _log_activity(self, method: str, path: str, token: str) -> None:
        """The activity log's two events of an accepted write (none for a read)."""
        if method == "POST" and path.endswith("/regenerateKeys"):
            resource, action = path.rsplit("/", 1)[0], "regenerateKeys/action"
        elif method in ("PUT", "DELETE") and not path.endswith(("/listKeys", "/token")):
            resource, action = path, "write" if method == "PUT" else "delete"
        else:
            return
        rtype = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints" + (
            "/deployments" if "/deployments/" in resource else ""
        )
        operation = f"{rtype}/{action}"
        op_id, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        for event, state in (("BeginRequest", "Started"), ("EndRequest", "Succeeded")):
            ns = time.time_ns()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9))
            stamp += f".{ns % 10**9 // 100:07d}Z"
            data_id = str(uuid.uuid4())
            self.activity.append(
                {
                    "authorization": {"action": operation, "scope": resource},
                    "caller": self.users.get(token, "tester@contoso.com"),
                    "channels": "Operation",
                    "correlationId": correlation,
                    "eventDataId": data_id,
                    "eventName": {"value": event, "localizedValue": event},
                    "category": {"value": "Administrative", "localizedValue": "Administrative"},
                    "eventTimestamp": stamp,
                    "id": f"{resource}/events/{data_id}/ticks/{time.time_ns() // 100}",
                    "level": "Informational",
                    "operationId": op_id,
                    "operationName": {"value": operation, "localizedValue": operation},
                    "resourceGroupName": self.rg,
                    "resourceProviderName": {
                        "value": "Microsoft.MachineLearningServices",
                        "localizedValue": "Microsoft.MachineLearningServices",
                    },
                    "resourceType": {"value": rtype, "localizedValue": rtype},
                    "resourceId": resource,
                    "status": {"value": state, "localizedValue": state},
                    "subStatus": {"value": "", "localizedValue": ""},
                    "submissionTimestamp": stamp,
                    "subscriptionId": self.sub,
                    "httpRequest": {"clientRequestId": str(uuid.uuid4()), "method": method},
                }
            )

    async def activity_log(self, request: web.Request) -> web.Response:
        """``$filter``: ``eventTimestamp ge 'T1' [and eventTimestamp le 'T2'] [and
        resourceGroupName eq 'RG' | and resourceUri eq 'ID' | and resourceProvider eq 'P' |
        and correlationId eq 'C']``, as the service documents it; anything else is 400."""
        import re
        from datetime import datetime

        raw = request.query.get("$filter", "")
        m = re.fullmatch(
            r"eventTimestamp ge '([^']+)'(?: and eventTimestamp le '([^']+)')?"
            r"(?: and (resourceGroupName|resourceUri|resourceProvider|correlationId) eq '([^']+)')?",
            raw.strip(),
        )
        if m is None:
            return _error(400, "BadRequest", f"The $filter '{raw}' is not supported: it needs "
                          "eventTimestamp ge, and allows only the documented patterns.")  # fmt: skip

        def when(value: str) -> float:  # ARM's times: Z, up to 7 fractional digits
            base, _, frac = value.rstrip("Z").partition(".")
            return datetime.fromisoformat(base + "+00:00").timestamp() + float(f"0.{frac or 0}")

        start = when(m.group(1))
        end = when(m.group(2)) if m.group(2) else time.time()
        if start < time.time() - 90 * 86400:
            return _error(400, "BadRequest", "The start time of the query cannot be more than "
                          "90 days in the past.")  # fmt: skip
        field_, value = m.group(3), (m.group(4) or "").lower()
        out = []
        for ev in self.activity:
            at = when(ev["eventTimestamp"])
            if not start <= at <= end + 1:
                continue
            if field_ == "resourceGroupName" and ev["resourceGroupName"].lower() != value:
                continue
            if field_ == "resourceUri" and ev["resourceId"].lower() != value:
                continue
            if field_ == "correlationId" and ev["correlationId"].lower() != value:
                continue
            out.append(ev)
        return web.json_response({"value": list(reversed(out))})  # newest first, as Azure

    def _missing_parent(self, match: Any) -> web.Response | None:
        """ARM's 404 for a subscription, resource group or workspace this fake does not have
        (names compared case-insensitively, as ARM does): ``SubscriptionNotFound``,
        ``ResourceGroupNotFound``, else ``ResourceNotFound`` naming the workspace, for the
        workspace and for anything under it."""
        sub, rg, ws = match.get("sub"), match.get("rg"), match.get("ws")
        if sub is not None and sub.lower() != self.sub.lower():
            return _error(
                404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found."
            )
        if rg is not None and rg.lower() != self.rg.lower():
            return _error(
                404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found."
            )
        if ws is not None and ws.lower() != self.ws.lower():
            return _error(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.MachineLearningServices/workspaces/{ws}' under resource "
                f"group '{rg}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )
        return None

    def _check(self, file: str, definition: str, body: Any, what: str) -> web.Response | None:
        errs = spec_mod.errors(file, definition, body)
        if not errs:
            return None
        self.schema_errors += [f"{what}: {e}" for e in errs]
        return web.json_response(
            {
                "error": {
                    "code": "UserError",
                    "message": "The request is invalid.",
                    "details": [{"code": "InvalidRequestContent", "message": e} for e in errs],
                }
            },
            status=400,
        )

    # ------------------------------------------------------------------ long operations
    def _start_op(
        self,
        on_success: Callable[[], None],
        *,
        error: dict[str, Any] | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> tuple[str, dict[str, str]]:
        op = Op(
            id=uuid.uuid4().hex,
            steps=self.lro_steps,
            on_success=on_success,
            error=error,
            on_failure=on_failure,
        )
        self.ops[op.id] = op
        base = (
            f"{self.base_url}/providers/Microsoft.MachineLearningServices/locations/{self.location}"
        )
        headers = {
            "Azure-AsyncOperation": f"{base}/mfeOperationsStatus/{op.id}?api-version={API}",
            "Location": f"{base}/mfeOperationResults/{op.id}?api-version={API}",
            "Retry-After": self.retry_after,
        }
        if not self.async_header:
            del headers["Azure-AsyncOperation"]
        return op.id, headers

    def _advance(self, op: Op) -> None:
        if op.status != "InProgress":
            return
        op.polls += 1
        if op.polls > op.steps:
            if op.error is not None:
                op.status = "Failed"
                if op.on_failure:
                    op.on_failure()
            else:
                op.status = "Succeeded"
                op.on_success()

    async def op_status(self, request: web.Request) -> web.Response:
        op = self.ops.get(request.match_info["op"])
        if op is None:
            return _error(404, "ResourceNotFound", "The operation was not found.")
        self._advance(op)
        body: dict[str, Any] = {"id": op.id, "name": op.id, "status": op.status}
        if op.status == "InProgress":
            body["percentComplete"] = round(100 * op.polls / (op.steps + 1), 1)
        if op.status == "Failed":
            body["error"] = op.error
        return web.json_response(body, headers={"Retry-After": self.retry_after})

    async def op_result(self, request: web.Request) -> web.Response:
        op = self.ops.get(request.match_info["op"])
        if op is None:
            return _error(404, "ResourceNotFound", "The operation was not found.")
        self._advance(op)
        if op.status == "InProgress":
            return web.Response(status=202, headers={"Retry-After": self.retry_after})
        if op.status == "Failed":
            return web.json_response({"error": op.error}, status=400)
        return web.Response(status=200)

    # ------------------------------------------------------------------ workspace, computes
    def workspace_resource(self) -> dict[str, Any]:
        """The workspace as ARM's Workspaces_Get answers it (2024-10-01 ``Workspace``: the
        dependent resources' ARM ids, ``discoveryUrl``, ``mlFlowTrackingUri``, a
        system-assigned identity, ``sku`` and ``kind``)."""
        group = f"/subscriptions/{self.sub}/resourceGroups/{self.rg}/providers"
        short = self.ws.replace("-", "")[:16]
        return {
            "id": self.ws_path,
            "name": self.ws,
            "type": "Microsoft.MachineLearningServices/workspaces",
            "location": self.location,
            "tags": {"team": "ml"},
            "kind": "Default",
            "sku": {"name": "Basic", "tier": "Basic"},
            "identity": {
                "type": "SystemAssigned",
                "principalId": str(uuid.UUID(int=11)),
                "tenantId": str(uuid.UUID(int=12)),
            },
            "properties": {
                "friendlyName": self.ws,
                "description": "the tests' workspace",
                "storageAccount": f"{group}/Microsoft.Storage/storageAccounts/{short}st",
                "keyVault": f"{group}/Microsoft.Keyvault/vaults/{short}kv",
                "applicationInsights": f"{group}/Microsoft.insights/components/{short}ai",
                "containerRegistry": f"{group}/Microsoft.ContainerRegistry/registries/{short}cr",
                "discoveryUrl": f"https://{self.location}.api.azureml.ms/discovery",
                "mlFlowTrackingUri": (
                    f"azureml://{self.location}.api.azureml.ms/mlflow/v1.0{self.ws_path}"
                ),
                "hbiWorkspace": False,
                "publicNetworkAccess": "Enabled",
                "enableDataIsolation": False,
                "provisioningState": "Succeeded",
                "workspaceId": str(uuid.UUID(int=13)),
            },
        }

    async def get_workspace(self, request: web.Request) -> web.Response:
        return web.json_response(self.workspace_resource())

    async def list_workspaces(self, request: web.Request) -> web.Response:
        """Workspaces_ListByResourceGroup: this fake's one workspace."""
        return web.json_response({"value": [self.workspace_resource()]})

    async def list_computes(self, request: web.Request) -> web.Response:
        return web.json_response({"value": list(self.computes.values())})

    async def compute(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        res = self.computes.get(name)
        if request.method == "GET":
            if res is None:
                return _not_found("computes", name)
            return web.json_response(res)
        if request.method == "DELETE":
            action = request.query.get("underlyingResourceAction")
            if action not in ("Delete", "Detach"):
                self.schema_errors.append(f"DELETE compute: underlyingResourceAction {action!r}")
                return _error(
                    400, "BadArgument", "underlyingResourceAction must be Delete or Detach."
                )
            if res is None:
                return web.Response(status=204)
            res["properties"]["provisioningState"] = "Deleting"
            _, headers = self._start_op(lambda: self.computes.pop(name, None))
            return web.Response(status=202, headers=headers)
        if request.method != "PUT":
            return web.Response(status=405)
        body = request[JSON_BODY]
        bad = self._check("rp", "ComputeResource", body, "PUT compute")
        if bad:
            return bad
        props = body["properties"]
        if props.get("computeType") == "AKS" and not props.get("resourceId"):
            inner = props.get("properties") or {}
            if "agentCount" not in inner or "agentVmSize" not in inner:
                return _error(
                    400,
                    "BadArgument",
                    "agentCount and agentVmSize are required to create an AKS compute.",
                )
        if props.get("computeType") == "Kubernetes" and not props.get("resourceId"):
            return _error(
                400, "BadArgument", "resourceId is required to attach a Kubernetes compute."
            )
        new = {
            "id": f"{self.ws_path}/computes/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/computes",
            "location": body.get("location", self.location),
            "tags": body.get("tags") or {},
            "properties": {
                **props,
                "provisioningState": "Creating" if res is None else "Updating",
                "isAttachedCompute": bool(props.get("resourceId")),
                "createdOn": "2026-11-26T10:00:00.0000000Z",
            },
        }
        self.computes[name] = new

        def done() -> None:
            new["properties"]["provisioningState"] = "Succeeded"

        _, headers = self._start_op(done)
        return web.json_response(new, status=201 if res is None else 200, headers=headers)

    # ------------------------------------------------------------------ models, code, environments
    def _model_res(self, name: str, version: str, props: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"{self.ws_path}/models/{name}/versions/{version}",
            "name": version,
            "type": "Microsoft.MachineLearningServices/workspaces/models/versions",
            "systemData": {
                "createdAt": "2026-11-26T10:00:00.1234567Z",
                "createdBy": "tester",
                "createdByType": "User",
            },
            "properties": {
                "description": "",
                "tags": {},
                "properties": {},
                "isAnonymous": False,
                "isArchived": False,
                "provisioningState": "Succeeded",
                **props,
            },
        }

    def _container(self, name: str) -> dict[str, Any]:
        versions = sorted(int(v) for v in self.models[name])
        return {
            "id": f"{self.ws_path}/models/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/models",
            "properties": {
                "latestVersion": str(versions[-1]),
                "nextVersion": str(versions[-1] + 1),
                "isArchived": False,
                "provisioningState": "Succeeded",
            },
        }

    async def list_model_containers(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"value": [self._container(n) for n in self.models if self.models[n]]}
        )

    async def get_model_container(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not self.models.get(name):
            return _not_found("models", name)
        return web.json_response(self._container(name))

    async def list_model_versions(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not self.models.get(name):
            return web.json_response({"value": []})
        # ModelVersions_List's listViewType: ActiveOnly (the default), ArchivedOnly, All
        view = request.query.get("listViewType", "ActiveOnly")
        keep = {"ActiveOnly": (False,), "ArchivedOnly": (True,), "All": (False, True)}.get(view)
        if keep is None:
            return _error(400, "BadRequest", f"listViewType '{view}' is not valid.")
        found = [
            v for v in self.models[name].values() if bool(v["properties"]["isArchived"]) in keep
        ]
        return web.json_response({"value": found})

    async def model_version(self, request: web.Request) -> web.Response:
        name, version = request.match_info["name"], request.match_info["version"]
        versions = self.models.get(name, {})
        if request.method == "GET":
            if version not in versions:
                return _not_found("models", f"{name}/versions/{version}")
            return web.json_response(versions[version])
        if request.method == "DELETE":
            if version not in versions:
                return web.Response(status=204)
            del versions[version]
            return web.Response(status=200)
        body = request[JSON_BODY]
        bad = self._check("mfe", "ModelVersionResource", body, "PUT model version")
        if bad:
            return bad
        existed = version in versions
        res = self._model_res(name, version, body["properties"])
        self.models.setdefault(name, {})[version] = res
        return web.json_response(res, status=200 if existed else 201)

    async def start_upload(self, request: web.Request) -> web.Response:
        body = request[JSON_BODY] or {}
        bad = self._check("mfe", "PendingUploadRequestDto", body, "startPendingUpload")
        if bad:
            return bad
        upload_id = body.get("pendingUploadId") or uuid.uuid4().hex
        blob = f"{self.base_url}/blob/azureml-blobstore/LocalUpload/{upload_id}"
        return web.json_response(
            {
                "blobReferenceForConsumption": {
                    "blobUri": blob,
                    "credential": {
                        "credentialType": "SAS",
                        "sasUri": f"{blob}?sv=2023-11-03&sr=c&sp=rcwl&sig={self.sas_sig}",
                    },
                    "storageAccountArmId": f"/subscriptions/{self.sub}/resourceGroups/{self.rg}/providers/Microsoft.Storage/storageAccounts/wsstore",
                },
                "pendingUploadId": upload_id,
                "pendingUploadType": "TemporaryBlobReference",
            }
        )

    async def put_blob(self, request: web.Request) -> web.Response:
        if request.query.get("sig") != self.sas_sig:
            return web.Response(status=403, text="<Error><Code>AuthenticationFailed</Code></Error>")
        if self._blob_faults:
            status, retry_after = self._blob_faults.pop(0)
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return web.Response(
                status=status, headers=headers, text="<Error><Code>ServerBusy</Code></Error>"
            )
        if request.headers.get("x-ms-blob-type") != "BlockBlob":
            return web.Response(
                status=400, text="<Error><Code>MissingRequiredHeader</Code></Error>"
            )
        self.blobs[request.match_info["path"]] = await request.read()
        return web.Response(status=201)

    async def code_version(self, request: web.Request) -> web.Response:
        return self._asset_version(request, self.codes, "codes", "CodeVersionResource")

    async def environment_version(self, request: web.Request) -> web.Response:
        return self._asset_version(
            request, self.environments, "environments", "EnvironmentVersionResource"
        )

    def _asset_version(
        self, request: web.Request, store: dict[str, Any], kind: str, schema: str
    ) -> web.Response:
        """GET or PUT of one version of an asset (``kind``: codes, environments) in ``store``,
        answered as ARM answers it: a ProxyResource (id, name = the version, type,
        systemData) whose properties are the PUT's with the service's own filled in
        (provisioningState; isAnonymous / isArchived false; an environment's
        environmentType UserCreated, osType Linux, autoRebuild Disabled: the spec's defaults)."""
        name, version = request.match_info["name"], request.match_info["version"]
        key = f"{name}/{version}"
        if request.method == "GET":
            if key not in store:
                return _not_found(kind, key)
            return web.json_response(store[key])
        body = request[JSON_BODY]
        bad = self._check("mfe", schema, body, f"PUT {kind[:-1]} version")
        if bad:
            return bad
        existed = key in store
        store[key] = self._asset_res(kind, name, version, body["properties"], request)
        return web.json_response(store[key], status=200 if existed else 201)

    def _asset_res(
        self,
        kind: str,
        name: str,
        version: str,
        props: dict[str, Any],
        request: web.Request | None = None,
    ) -> dict[str, Any]:
        served = {"isAnonymous": False, "isArchived": False}
        if kind == "environments":
            served.update(environmentType="UserCreated", osType="Linux", autoRebuild="Disabled")
        store = self.codes if kind == "codes" else self.environments
        return {
            "id": f"{self.ws_path}/{kind}/{name}/versions/{version}",
            "name": version,
            "type": f"Microsoft.MachineLearningServices/workspaces/{kind}/versions",
            "systemData": self._system_data(request, store.get(f"{name}/{version}")),
            "properties": {**served, **props, "provisioningState": "Succeeded"},
        }

    # ------------------------------------------------------------------ endpoints
    def _deleting(self, res: dict[str, Any], gone: Callable[[], None]) -> web.Response:
        """A DELETE as ARM answers it: Deleting now, 202, ``gone`` when the operation ends."""
        res["properties"]["provisioningState"] = "Deleting"
        _, headers = self._start_op(gone)
        return web.Response(status=202, headers=headers)

    def _refused_put(
        self, kind: str, name: str, res: dict[str, Any] | None, schema: str, body: Any
    ) -> web.Response | None:
        """A PUT's refusal: a body the spec does not allow (400), or the resource is still
        provisioning (409, as ARM answers a second operation); None when it may proceed."""
        bad = self._check("mfe", schema, body, f"PUT {kind.lower()}")
        if bad:
            return bad
        if res is not None and res["properties"]["provisioningState"] not in (
            "Succeeded",
            "Failed",
        ):
            return _error(
                409,
                "Conflict",
                f"{kind} {name} is in {res['properties']['provisioningState']} state; another "
                "operation is in progress.",
            )
        return None

    async def list_endpoints(self, request: web.Request) -> web.Response:
        return web.json_response({"value": list(self.endpoints.values())})

    async def endpoint(self, request: web.Request) -> web.Response:
        name = request.match_info["e"]
        res = self.endpoints.get(name)
        if request.method == "GET":
            if res is None:
                return _not_found("onlineEndpoints", name)
            pending = self._pending.get(name)
            if pending in self.ops:
                self._advance(self.ops[pending])
            return web.json_response(res)
        if request.method == "DELETE":
            if res is None:
                return web.Response(status=204)

            def gone() -> None:
                self.endpoints.pop(name, None)
                self.deployments.pop(name, None)

            return self._deleting(res, gone)
        body = request[JSON_BODY]
        refused = self._refused_put("Endpoint", name, res, "OnlineEndpointTrackedResource", body)
        if refused:
            return refused
        props = body["properties"]
        deps = self.deployments.get(name, {})
        # as Azure does: traffic left out of an update is reset to 0
        traffic = {d: 0 for d in deps}
        traffic.update(props.get("traffic") or {})
        for d in traffic:
            if d not in deps:
                return _error(
                    400,
                    "BadArgument",
                    f"Traffic for deployment {d} was specified but the deployment does not exist.",
                )
        if sum(traffic.values()) not in (0, 100):
            return _error(400, "BadArgument", "Traffic values need to sum to 100.")
        mirror = dict(props.get("mirrorTraffic") or {})
        new = {
            "id": f"{self.ws_path}/onlineEndpoints/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "location": body["location"],
            # what the service reports: K8s on a compute, Managed without one
            "kind": body.get("kind") or ("K8s" if props.get("compute") else "Managed"),
            "identity": {
                **(body.get("identity") or {"type": "SystemAssigned"}),
                "principalId": str(uuid.uuid4()),
                "tenantId": str(uuid.uuid4()),
            },
            "tags": body.get("tags") or {},
            "systemData": self._system_data(request, res),
            "properties": {
                # ARM fills what a PUT leaves out with the spec's default (mfe.json 2024-10-01,
                # OnlineEndpoint.publicNetworkAccess: "Enabled")
                "publicNetworkAccess": "Enabled",
                **{k: v for k, v in props.items() if k not in ("traffic", "mirrorTraffic")},
                "traffic": traffic,
                "mirrorTraffic": mirror,
                "provisioningState": "Creating" if res is None else "Updating",
                "scoringUri": f"{self.base_url}/score/{name}",
                "swaggerUri": f"{self.base_url}/score/{name}/swagger.json",
            },
        }
        self._service_properties(new, res)
        self.endpoints[name] = new
        self.deployments.setdefault(name, {})
        if name not in self.keys:
            self.keys[name] = {
                "primaryKey": secrets.token_hex(16),
                "secondaryKey": secrets.token_hex(16),
            }

        def done() -> None:
            new["properties"]["provisioningState"] = "Succeeded"

        op_id, headers = self._start_op(done)
        if not self.put_headers:
            self._pending[name] = op_id
            headers = {}
        return _put_answer(new, res, headers)

    async def list_keys(self, request: web.Request) -> web.Response:
        name = request.match_info["e"]
        if name not in self.endpoints:
            return _not_found("onlineEndpoints", name)
        if self.endpoints[name]["properties"]["authMode"] != "Key":
            return _error(
                400, "BadArgument", "Keys are only available for endpoints with authMode Key."
            )
        return web.json_response(self.keys[name])

    async def regenerate_keys(self, request: web.Request) -> web.Response:
        name = request.match_info["e"]
        if name not in self.endpoints:
            return _not_found("onlineEndpoints", name)
        body = request[JSON_BODY]
        bad = self._check("mfe", "RegenerateEndpointKeysRequest", body, "regenerateKeys")
        if bad:
            return bad
        field_name = "primaryKey" if body["keyType"] == "Primary" else "secondaryKey"

        def done() -> None:
            self.keys[name][field_name] = body.get("keyValue") or secrets.token_hex(16)

        _, headers = self._start_op(done)
        return web.Response(status=202, headers=headers)

    async def endpoint_token(self, request: web.Request) -> web.Response:
        name = request.match_info["e"]
        if name not in self.endpoints:
            return _not_found("onlineEndpoints", name)
        if self.endpoints[name]["properties"]["authMode"] != "AMLToken":
            return _error(
                400, "BadArgument", "Token is only available for endpoints with authMode AMLToken."
            )
        now = int(time.time())
        tok = "aml." + secrets.token_hex(12)
        self.aml_tokens[name] = tok
        return web.json_response(
            {
                "accessToken": tok,
                "expiryTimeUtc": now + 3600,
                "refreshAfterTimeUtc": now + self.aml_token_refresh_in,
                "tokenType": "Bearer",
            }
        )

    async def get_metrics(self, request: web.Request) -> web.Response:
        name = request.match_info["e"]
        if name not in self.endpoints:
            return _not_found("onlineEndpoints", name)
        names = request.query.get("metricnames", "").split(",")
        if name in self.metric_minutes:
            return self._metric_series(request, name, names)
        if request.query.get("$filter") != "deployment eq '*'" or not request.query.get("timespan"):
            return _error(400, "BadRequest", "Expected $filter=deployment eq '*' and a timespan.")
        data = self.metrics.get(name, {})
        value = []
        for metric in names:
            series = []
            for dep, values in data.items():
                if metric in values:
                    agg = "average" if metric.startswith("RequestLatency") else "total"
                    series.append(
                        {
                            "metadatavalues": [
                                {
                                    "name": {"value": "deployment", "localizedValue": "deployment"},
                                    "value": dep,
                                }
                            ],
                            "data": [{"timeStamp": "2026-11-26T10:00:00Z", agg: values[metric]}],
                        }
                    )
            value.append(self._metric_value(name, metric, series))
        return self._metrics_answer(request.query["timespan"], "PT1M", value)

    def _metric_value(
        self, endpoint: str, metric: str, series: list[dict[str, Any]], **extra: str
    ) -> dict[str, Any]:
        """One metric of an endpoint's answer (ARM's ``Metric``), its series given."""
        return {
            "id": f"{self.ws_path}/onlineEndpoints/{endpoint}/providers/Microsoft.Insights/metrics/{metric}",
            "type": "Microsoft.Insights/metrics",
            "name": {"value": metric, "localizedValue": metric},
            "unit": "Milliseconds" if metric.startswith("RequestLatency") else "Count",
            "timeseries": series,
            **extra,
        }

    def _metrics_answer(self, timespan: str, interval: str, value: list[Any]) -> web.Response:
        """ARM's ``Response`` of the metrics call on an online endpoint."""
        return web.json_response(
            {
                "cost": 0,
                "timespan": timespan,
                "interval": interval,
                "value": value,
                "namespace": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
                "resourceregion": self.location,
            }
        )

    def _metric_series(self, request: web.Request, name: str, names: list[str]) -> web.Response:
        """Azure Monitor's answer over a timespan: one series per value of the dimensions
        the ``$filter`` splits by (``dim eq '*'``), a point per grain of ``interval`` (every
        grain listed, a value only where there is data: ``total`` sums the minutes,
        ``average`` averages them); a dimension the metric does not have is refused."""
        q = request.query
        interval = q.get("interval", "PT1M")
        if interval not in METRIC_GRAINS:
            return _error(400, "BadRequest", f"Invalid interval '{interval}'.")
        try:
            start, end = (_epoch(t) for t in q.get("timespan", "").split("/"))
        except ValueError:
            return _error(400, "BadRequest", "Invalid timespan: expected START/END (ISO 8601).")
        clauses = [c.strip() for c in q.get("$filter", "").split(" and ") if c.strip()]
        split = [c.split(" eq ")[0].strip() for c in clauses if c.endswith("'*'")]
        for metric in names:
            have = METRIC_DIMENSIONS.get(metric, set())
            if not {d.lower() for d in split} <= have:
                return _error(
                    400,
                    "BadRequest",
                    f"Metric: {metric} does not support requested dimension combination: "
                    f"{','.join(split)}, supported ones are: {','.join(sorted(have))}",
                )
        grain = METRIC_GRAINS[interval]
        stamps = range(int(start // grain * grain), int(end), grain)
        value = []
        for metric in names:
            agg = "total" if metric == "RequestsPerMinute" else "average"
            groups: dict[tuple[tuple[str, str], ...], dict[int, list[float]]] = {}
            for minute, dep, klass, values in self.metric_minutes[name]:
                if metric not in values or not start <= minute < end:
                    continue
                dims = {"deployment": dep, "statuscodeclass": klass}
                key = tuple((d, dims.get(d.lower(), "")) for d in split)
                at = int(minute // grain * grain)
                groups.setdefault(key, {}).setdefault(at, []).append(values[metric])
            series = []
            for key, by in sorted(groups.items()):
                data = []
                for at in stamps:
                    point: dict[str, Any] = {
                        "timeStamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
                    }
                    got = by.get(at)
                    if got:
                        point[agg] = sum(got) if agg == "total" else sum(got) / len(got)
                    data.append(point)
                series.append(
                    {
                        "metadatavalues": [
                            {"name": {"value": d.lower(), "localizedValue": d}, "value": v}
                            for d, v in key
                        ],
                        "data": data,
                    }
                )
            value.append(self._metric_value(name, metric, series, errorCode="Success"))
        return self._metrics_answer(q["timespan"], interval, value)

    def _metric_items(
        self, names: list[str], resource: str, values: dict[str, dict[str, float]]
    ) -> list[dict[str, Any]]:
        """Azure Monitor ``value`` items; ``values`` maps a deployment (or "") to its metrics."""
        items = []
        for metric in names:
            series = []
            for dep, vals in values.items():
                if metric not in vals:
                    continue
                agg = "total" if metric == "RequestsPerMinute" else "average"
                dims = (
                    [
                        {
                            "name": {"value": "deployment", "localizedValue": "deployment"},
                            "value": dep,
                        }
                    ]
                    if dep
                    else []
                )
                series.append(
                    {
                        "metadatavalues": dims,
                        "data": [
                            {"timeStamp": "2026-11-26T09:59:00Z"},  # a minute with no data
                            {"timeStamp": "2026-11-26T10:00:00Z", agg: vals[metric]},
                        ],
                    }
                )
            items.append(
                {
                    "id": f"{resource}/providers/Microsoft.Insights/metrics/{metric}",
                    "type": "Microsoft.Insights/metrics",
                    "name": {"value": metric, "localizedValue": metric},
                    "unit": "Count",
                    "timeseries": series,
                    "errorCode": "Success",
                }
            )
        return items

    async def metrics_batch(self, request: web.Request) -> web.Response:
        q = request.query
        body = request[JSON_BODY] or {}
        ids = body.get("resourceids")
        problems = []
        for key in ("starttime", "endtime", "metricnamespace", "metricnames"):
            if not q.get(key):
                problems.append(f"query {key} is required")
        if not isinstance(ids, list) or not ids or len(ids) > 50:
            problems.append("resourceids must list 1 to 50 resource ids")
        elif any(
            not str(i).startswith(f"/subscriptions/{request.match_info['sub']}/") for i in ids
        ):
            problems.append("every resource id must be in the subscription of the URL")
        if set(body) - {"resourceids"}:
            problems.append(f"unknown body fields {sorted(set(body) - {'resourceids'})}")
        if problems:
            self.schema_errors += [f"metrics:getBatch: {p}" for p in problems]
            return _error(400, "BadRequest", "; ".join(problems))
        names = q["metricnames"].split(",")
        ns = q["metricnamespace"]
        values = []
        for rid in ids:
            parts = str(rid).split("/")
            if ns.endswith("/onlineEndpoints"):
                data = self.metrics.get(parts[-1], {})
            elif ns.endswith("/deployments"):
                data = {"": self.deployment_metrics.get((parts[-3], parts[-1]), {})}
            else:
                return _error(400, "BadRequest", f"unknown metricnamespace {ns}")
            values.append(
                {
                    "starttime": q["starttime"],
                    "endtime": q["endtime"],
                    "interval": q.get("interval", "PT1M"),
                    "value": self._metric_items(names, str(rid), data),
                    "namespace": ns.lower(),
                    "resourceregion": self.location,
                    "resourceid": rid,
                }
            )
        return web.json_response({"values": values})

    # ------------------------------------------------------------------ deployments
    async def list_deployments(self, request: web.Request) -> web.Response:
        name = request.match_info["e"]
        if name not in self.endpoints:
            return _not_found("onlineEndpoints", name)
        return web.json_response({"value": list(self.deployments.get(name, {}).values())})

    async def deployment(self, request: web.Request) -> web.Response:
        e, d = request.match_info["e"], request.match_info["d"]
        if e not in self.endpoints:
            return _not_found("onlineEndpoints", e)
        deps = self.deployments.setdefault(e, {})
        res = deps.get(d)
        if request.method == "GET":
            if res is None:
                return _not_found("deployments", d)
            return web.json_response(res)
        if request.method == "DELETE":
            if res is None:
                return web.Response(status=204)
            if self.endpoints[e]["properties"]["traffic"].get(d, 0) > 0:
                return _error(
                    400,
                    "BadArgument",
                    f"Deployment {d} has traffic; set its traffic to 0 before deleting it.",
                )

            def gone() -> None:
                deps.pop(d, None)
                self.endpoints[e]["properties"]["traffic"].pop(d, None)

            return self._deleting(res, gone)
        body = request[JSON_BODY]
        refused = self._refused_put("Deployment", d, res, "OnlineDeploymentTrackedResource", body)
        if refused:
            return refused
        props = body["properties"]
        # the endpoint decides: a Kubernetes deployment on a compute, else a managed one
        if self.endpoints[e]["properties"].get("compute"):
            if props.get("endpointComputeType") != "Kubernetes":
                return _error(
                    400,
                    "BadArgument",
                    "This endpoint runs on a Kubernetes compute: endpointComputeType must be "
                    "Kubernetes.",
                )
        elif props.get("endpointComputeType") != "Managed":
            return _error(
                400,
                "BadArgument",
                "This is a managed online endpoint: endpointComputeType must be Managed.",
            )
        else:  # ARM fills the spec's default (mfe.json 2024-10-01, OnlineDeployment)
            props = {"instanceType": "Standard_F4s_v2", **props}
        model = props.get("model") or ""
        parts = model.split("/")
        if "models" in parts:
            mname, mver = parts[parts.index("models") + 1], parts[-1]
            if mver not in self.models.get(mname, {}):
                return _error(404, "ResourceNotFound", f"Model {mname}:{mver} was not found.")
        code_id = (props.get("codeConfiguration") or {}).get("codeId") or ""
        cparts = code_id.split("/")
        if "codes" in cparts:  # as for the model: a code version that is not there is a 404
            cname, cver = cparts[cparts.index("codes") + 1], cparts[-1]
            if f"{cname}/{cver}" not in self.codes:
                return _error(404, "ResourceNotFound", f"Code {cname}:{cver} was not found.")
        new = {
            "id": f"{self.ws_path}/onlineEndpoints/{e}/deployments/{d}",
            "name": d,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
            "location": body["location"],
            "kind": body.get("kind", "Kubernetes"),
            "sku": body.get("sku") or {"name": "Default", "capacity": 1},
            "tags": body.get("tags") or {},
            "systemData": self._system_data(request, res),
            "properties": {
                **props,
                **{k: {**PROBE_DEFAULTS, **(props.get(k) or {})} for k in PROBES},
                "provisioningState": "Creating" if res is None else "Updating",
            },
        }
        deps[d] = new
        error = self.fail_deployments.get((e, d))

        def done() -> None:
            new["properties"]["provisioningState"] = "Succeeded"
            self.endpoints[e]["properties"]["traffic"].setdefault(d, 0)

        def failed() -> None:
            new["properties"]["provisioningState"] = "Failed"

        _, headers = self._start_op(done, error=error, on_failure=failed)
        return _put_answer(new, res, headers)

    async def get_logs(self, request: web.Request) -> web.Response:
        e, d = request.match_info["e"], request.match_info["d"]
        if d not in self.deployments.get(e, {}):
            return _not_found("deployments", d)
        body = request[JSON_BODY] or {}
        bad = self._check("mfe", "DeploymentLogsRequest", body, "getLogs")
        if bad:
            return bad
        lines = self.logs.get((e, d, body.get("containerType") or "InferenceServer"), [])
        tail = body.get("tail")  # the spec: "the maximum number of lines to tail"
        if tail is not None:
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        return web.json_response({"content": "\n".join(lines)})

    # ------------------------------------------------------------------ scoring
    async def score(self, request: web.Request) -> web.Response:
        name = request.match_info["e"]
        ep = self.endpoints.get(name)
        if ep is None:
            return web.Response(status=404)
        auth = request.headers.get("Authorization", "")
        given = auth[7:] if auth.startswith("Bearer ") else ""
        mode = ep["properties"]["authMode"]
        if mode == "Key":
            allowed = set(self.keys.get(name, {}).values())
        elif mode == "AADToken":
            allowed = set(self.aad_tokens)
        else:
            allowed = {self.aml_tokens.get(name, "")}
        if not given or given not in allowed - {""}:
            return web.Response(status=401, text="Unauthorized")
        wanted = request.headers.get("azureml-model-deployment")
        traffic = ep["properties"]["traffic"]
        dep = wanted or max(traffic, key=lambda k: traffic[k], default=None)
        if dep is None or dep not in self.deployments.get(name, {}):
            return web.Response(status=404, text="no deployment")
        payload = await request.read()
        return web.json_response(
            {"deployment": dep, "received": json.loads(payload or b"null")},
            headers={"azureml-model-deployment": dep, "x-request-id": uuid.uuid4().hex},
        )


def _put_answer(new: dict[str, Any], res: Any, headers: dict[str, str]) -> web.Response:
    """201 for a new resource, 200 for an update; the operation's headers but Location."""
    return web.json_response(
        new,
        status=201 if res is None else 200,
        headers={k: v for k, v in headers.items() if k != "Location"},
    )


#: Azure Monitor's time grains (the metrics call's ``interval``), in seconds
METRIC_GRAINS = {
    "PT1M": 60,
    "PT5M": 300,
    "PT15M": 900,
    "PT30M": 1800,
    "PT1H": 3600,
    "PT6H": 21600,
    "PT12H": 43200,
    "P1D": 86400,
}
#: the dimensions of the online endpoints' metrics, lower case (Azure Monitor's supported
#: metrics of Microsoft.MachineLearningServices/workspaces/onlineEndpoints)
METRIC_DIMENSIONS = {
    "RequestsPerMinute": {"deployment", "statuscode", "statuscodeclass", "modelstatuscode"},
    "RequestLatency": {"deployment"},
    "RequestLatency_P50": {"deployment"},
    "RequestLatency_P90": {"deployment"},
    "RequestLatency_P95": {"deployment"},
    "RequestLatency_P99": {"deployment"},
}


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _not_found(kind: str, name: str) -> web.Response:
    return _error(
        404,
        "ResourceNotFound",
        f"The Resource 'Microsoft.MachineLearningServices/workspaces/{kind}/{name}' was not found.",
    )


class StaticTokenCredential:
    """Hands out the given tokens in turn, each valid for ``lifetime`` seconds."""

    def __init__(self, *tokens: str, lifetime: float = 3600.0) -> None:
        self.tokens = list(tokens) or ["static-token-1"]
        self.lifetime = lifetime
        self.issued: list[str] = []
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        token = self.tokens[min(len(self.issued), len(self.tokens) - 1)]
        self.issued.append(token)
        return AccessToken(token, int(time.time() + self.lifetime))


def open_cloud_workspace(fake: FakeArm, credential: Any, home: Path, **options: Any) -> Any:
    """The workspace ``cloud`` opened through the profile path: its config.toml in ``home``
    names the fake's workspace; the fake's URLs and ``credential`` are the overrides."""
    from modeldeck.services.backends import open_workspace

    cfg = home / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text(
        '[workspaces.cloud]\nprovider = "azureml"\n'
        f'subscription_id = "{fake.sub}"\nresource_group = "{fake.rg}"\n'
        f'workspace_name = "{fake.ws}"\n'
    )
    return open_workspace(
        "cloud",
        arm_endpoint=fake.base_url,
        metrics_endpoint=fake.base_url,
        credential=credential,
        poll_interval=0.01,
        **options,
    )
