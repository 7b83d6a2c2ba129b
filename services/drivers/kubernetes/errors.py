"""Kubernetes API failures as the service layer's typed errors, each with its fix.

* no answer (connection refused, DNS, TLS, time-out) -> :class:`Unreachable`;
* 401 (expired or revoked credentials) -> :class:`Unauthorized`, "refresh your
  kubeconfig credentials";
* 403 (RBAC) -> :class:`Unauthorized` naming the verb and the resource denied;
* 404 on the discovery of ``gateway.networking.k8s.io`` -> :class:`BackendError`
  with the command that installs the Gateway API CRDs;
* 404 -> :class:`NotFound`; 409 -> :class:`Conflict` (callers retry what is safe
  to retry with a fresh resourceVersion first); 422 -> :class:`InvalidInput`
  with the field the API server named;
* 429 / 5xx -> retried with backoff (honouring ``Retry-After``) by
  :meth:`.client.KubeApi.request`, then :class:`BackendError`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ...api.errors import (
    BackendError,
    Conflict,
    InvalidInput,
    ModeldeckError,
    NotFound,
    Unauthorized,
    Unreachable,
)

GATEWAY_API_GROUP = "gateway.networking.k8s.io"
GATEWAY_API_RELEASE = "v1.3.0"
GATEWAY_API_INSTALL = (
    "kubectl apply -f https://github.com/kubernetes-sigs/gateway-api/releases/download/"
    f"{GATEWAY_API_RELEASE}/standard-install.yaml"
)
METRICS_SERVER_INSTALL = (
    "kubectl apply -f https://github.com/kubernetes-sigs/metrics-server/releases/latest/"
    "download/components.yaml"
)


@dataclass(frozen=True)
class Call:
    """What a request does, in RBAC words, for error messages."""

    verb: str  # get, list, watch, create, patch, update, delete, deletecollection
    resource: str  # e.g. "deployments.apps", "pods/log", "httproutes.gateway.networking.k8s.io"
    namespace: str | None = None
    name: str | None = None

    def describe(self) -> str:
        where = f" in namespace '{self.namespace}'" if self.namespace else " (cluster-wide)"
        what = f" '{self.name}'" if self.name else ""
        return f"{self.verb} {self.resource}{what}{where}"


def status_body(body: bytes | str | None) -> dict[str, Any]:
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return {
            "message": (body.decode("utf-8", "replace") if isinstance(body, bytes) else body)[:500]
        }
    return data if isinstance(data, dict) else {}


def from_status(
    status: int,
    body: bytes | str | None,
    call: Call,
    *,
    cluster: str,
    context: str,
) -> ModeldeckError:
    """The typed error for a non-2xx answer of the API server."""
    st = status_body(body)
    server_msg = str(st.get("message") or "").strip()
    reason = str(st.get("reason") or "")
    if status == 401:
        return Unauthorized(
            f"cluster '{cluster}' refused the credentials of kubeconfig context '{context}' "
            f"(401 Unauthorized) while trying to {call.describe()}",
            fix="refresh your kubeconfig credentials (for AKS: az aks get-credentials "
            "--overwrite-existing; for an exec plugin: log in again), then retry",
            status=401,
            verb=call.verb,
            resource=call.resource,
        )
    if status == 403:
        # the verb the API server checked: a server-side apply (a PATCH) of an object not
        # there yet is authorized as a create
        said = re.search(r"cannot (\w+) resource", server_msg)
        verb = said.group(1) if said else call.verb
        where = f" in namespace '{call.namespace}'" if call.namespace else ""
        print_role = (
            f": modeldeck cluster attach {cluster} --kube-context {context} --namespace "
            f"{call.namespace} --print-role prints the Role modeldeck needs"
            if call.namespace
            else ""
        )
        return Unauthorized(
            f"cluster '{cluster}' (context '{context}') denied '{verb}' on "
            f"'{call.resource}'{where}" + (f": {server_msg}" if server_msg else ""),
            fix=f"ask a cluster admin for a Role granting '{verb}' on '{call.resource}'{where}"
            + print_role,
            status=403,
            verb=verb,
            resource=call.resource,
            namespace=call.namespace,
        )
    if status == 404:
        # A missing object is a Status with reason NotFound; a missing resource type
        # (the CRD is not installed) is the API server's plain "404 page not found".
        if GATEWAY_API_GROUP in call.resource and st.get("kind") != "Status":
            return gateway_api_missing(cluster)
        kind = call.resource.split(".", 1)[0].split("/", 1)[0]
        return NotFound(
            kind,
            call.name or "",
            message=f"{kind} '{call.name}' not found in namespace '{call.namespace}' of "
            f"cluster '{cluster}'"
            if call.name
            else f"{call.resource} not found on cluster '{cluster}': {server_msg}",
            fix=f"list what modeldeck made there with: kubectl -n {call.namespace} get "
            f"{kind} -l app.kubernetes.io/managed-by=modeldeck",
        )
    if status == 409:
        return Conflict(
            f"cluster '{cluster}': {call.describe()} conflicted ({reason or 'Conflict'}): "
            f"{server_msg or 'the object changed meanwhile'}",
            fix="retry; someone else changed the object at the same time",
            status=409,
            reason=reason,
        )
    if status in (400, 422):
        causes = ((st.get("details") or {}).get("causes") or [{}])[0] or {}
        fieldname = str(causes.get("field") or call.resource)
        return InvalidInput(
            fieldname,
            call.name,
            f"the API server of cluster '{cluster}' refused it: {server_msg or reason}",
            "check the deployment's settings (resources, probes, image) against the "
            "message above; modeldeck deployment create --dry-run -o yaml shows what is sent",
        )
    if status == 415:
        return BackendError(
            f"cluster '{cluster}' refused the patch format for {call.resource} (415): {server_msg}",
            status=415,
        )
    return BackendError(
        f"cluster '{cluster}' answered {status} {reason} to {call.describe()}"
        + (f": {server_msg}" if server_msg else ""),
        fix="retry later; if it persists, check the API server's health "
        f"(kubectl --context {context} get --raw /readyz)",
        status=status,
    )


def metrics_server_missing(cluster: str, *, attaching: bool = False) -> str:
    """The note for a cluster without ``metrics.k8s.io`` (``attaching``: said at attach)."""
    return (
        f"the metrics server is not installed on cluster '{cluster}': CPU and memory "
        f"{'will be' if attaching else 'are'} unavailable (install it: {METRICS_SERVER_INSTALL})"
    )


def gateway_api_missing(cluster: str) -> BackendError:
    return BackendError(
        f"cluster '{cluster}' has no Gateway API (the {GATEWAY_API_GROUP}/v1 CRDs are not "
        "installed); modeldeck routes an endpoint's traffic with an HTTPRoute",
        fix=f"install the Gateway API CRDs: {GATEWAY_API_INSTALL} "
        "(and a Gateway implementation, e.g. Envoy Gateway, Istio or NGINX Gateway Fabric)",
        missing="gateway.networking.k8s.io/v1",
    )


def from_transport(exc: BaseException, call: Call, *, cluster: str, server: str) -> Unreachable:
    """The typed error for a request that got no HTTP answer."""
    # urllib3's MaxRetryError repeats the pool and the URL (the call says what was tried);
    # what the user needs is its cause: refused, reset, closed without an answer...
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        exc = reason
    text = str(exc)
    if "timed out" in text.lower() or "timeout" in type(exc).__name__.lower():
        why = "did not answer in time"
    elif "ssl" in text.lower() or "certificate" in text.lower():
        why = f"failed the TLS handshake ({_short(text)})"
    else:
        why = f"does not answer ({_short(text)})"
    return Unreachable(
        f"cluster '{cluster}' ({server}) {why} while trying to {call.describe()}",
        fix="check the network path to the API server (VPN, firewall, private cluster) "
        "and that the cluster is running",
        server=server,
    )


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
