"""An endpoint's objects on the cluster: its keys Secret and its HTTPRoute (the traffic).

The route is checked before the Secret is written, so a refused traffic change leaves
nothing half-applied; both are written without losing another operator's change
(:meth:`.resources.Resources._apply_guarded`, :mod:`.concurrency`). The route is read,
changed and replaced (never applied): what others put in its metadata is kept.
"""

from __future__ import annotations

import time
from typing import Any

from ...api.errors import Conflict, ModeldeckError
from ...scoring.host import PROXY_AUTH_HEADER
from ..base import EndpointRoute
from . import concurrency as cc
from . import manifests as mf
from .attach import AttachChecks
from .client import JSON
from .errors import GATEWAY_API_GROUP, Call
from .resources import CONFLICT_ATTEMPTS, OWNED_KINDS, conflict_attempts

#: Where an endpoint's scoring URI comes from (``online-endpoint show``: scoring_uri_source).
SOURCE_TAG = "cluster_tag"  # the cluster tag modeldeck.io/gateway-url
SOURCE_GATEWAY = "gateway_status"  # the Gateway's status.addresses
SOURCE_LOAD_BALANCER = "load_balancer"  # the ingress of the Gateway's LoadBalancer Service
SOURCE_NONE = "none"
#: The label Gateway implementations put on what they run for a Gateway (Istio's GatewayLabel).
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"


class EndpointObjects(AttachChecks):
    """Endpoints (a room of :class:`~.driver.KubernetesDriver`; needs the Gateway API)."""

    gateway: mf.GatewayRef
    #: The Gateway's address, once read from its status (a cluster tag may name it instead).
    _gateway_url: str | None
    _gateway_url_source: str
    _gateway_checked: float

    def _secret_from(self, endpoint: str, f: dict[str, Any]) -> dict:
        return mf.endpoint_secret(
            self.namespace,
            endpoint,
            mode=f["auth_mode"],
            primary_key=f["primary_key"],
            secondary_key=f["secondary_key"],
            token_secret=f["token_secret"],
            description=f["description"],
            tags=f["tags"],
        )

    def scoring_uri(self, endpoint: str) -> str:
        base, _ = self.scoring_address()
        return f"{base.rstrip('/')}{mf.path_prefix(endpoint)}/score" if base else ""

    def scoring_address(self) -> tuple[str, str]:
        """(the endpoints' base URL, where it came from): the cluster tag
        ``modeldeck.io/gateway-url`` (the operator's word: a DNS name, https), else the
        Gateway's ``status.addresses``, else the ingress of its LoadBalancer Service
        (:meth:`_discover_gateway_url`); ``("", "none")`` when there is none of them."""
        tag = self.spec.tags.get(mf.GATEWAY_URL_TAG)
        if tag:
            return tag, SOURCE_TAG
        if self._gateway_url:
            return self._gateway_url, self._gateway_url_source
        return "", SOURCE_NONE

    def scoring_uri_note(self, endpoint: str) -> str | None:
        """Why the endpoint has no scoring URI, and the fix; None when it has one."""
        if self.scoring_address()[0]:
            return None
        gw = f"{self.gateway.namespace or self.namespace}/{self.gateway.name}"
        return (
            f"no scoring URI: the Gateway '{gw}' has no address in its status.addresses and "
            f"no LoadBalancer Service of it has an ingress; set the cluster's tag: modeldeck "
            f"cluster update {self.spec.name} --tag {mf.GATEWAY_URL_TAG}=https://HOST, or call "
            f"it through the API server: modeldeck online-endpoint invoke -n {endpoint} --via api"
        )

    async def score_via_api(
        self, endpoint: str, deployment: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> tuple[int, bytes, dict[str, str], str]:
        """POST ``body`` to the deployment's Service through the API server's service proxy
        (``/api/v1/namespaces/NS/services/NAME:PORT/proxy/...``, RBAC: create on
        services/proxy). The API server authenticates the request with the kubeconfig's
        credentials and then drops the ``Authorization`` header (k8s.io/apiserver
        filters.WithAuthentication), so the endpoint's own header travels as
        ``x-modeldeck-authorization``, which the pod server reads when Authorization is
        absent (:data:`~modeldeck.services.scoring.host.PROXY_AUTH_HEADER`)."""
        svc = mf.deployment_name(endpoint, deployment)
        path = (
            f"/api/v1/namespaces/{self.namespace}/services/{svc}:{mf.SERVICE_PORT_NAME}/proxy"
            f"{mf.path_prefix(endpoint)}/score"
        )
        send = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        if auth:
            send[PROXY_AUTH_HEADER] = auth
        status, data, got = await self.api.forward(
            "POST",
            path,
            Call("create", "services/proxy", self.namespace, svc),
            body=body,
            headers=send,
            timeout=(self.api.timeout[0], timeout_s),
        )
        return status, data, got, path

    def render_endpoint(
        self, route: EndpointRoute, deployments: list[str] | None = None
    ) -> list[dict]:
        """The endpoint's manifests (Secret with keys redacted, HTTPRoute), for ``--dry-run``."""
        return [
            mf.endpoint_secret(
                self.namespace,
                route.name,
                mode=route.auth.mode,
                primary_key=route.auth.primary_key,
                secondary_key=route.auth.secondary_key,
                token_secret=route.auth.token_secret,
                redact=True,
                description=route.description,
                tags=route.tags,
            ),
            mf.http_route(
                self.namespace,
                route.name,
                route.traffic,
                route.mirror_traffic,
                deployments or list(route.traffic),
                self.gateway,
            ),
        ]

    def _endpoint_fix(self, endpoint: str) -> str:
        return (
            f"read the endpoint again (modeldeck online-endpoint show -n {endpoint} shows the "
            "other change) and make your change on top of it"
        )

    async def apply_endpoint(self, route: EndpointRoute) -> None:
        await self._require_gateway_api()
        what = f"endpoint '{route.name}'"
        fix = self._endpoint_fix(route.name)
        b = route.base
        route_base = (
            {"traffic": dict(b.traffic), "mirror_traffic": dict(b.mirror_traffic)} if b else None
        )
        # the route is checked before the Secret is written: a refused traffic change
        # leaves nothing half-applied
        rname = mf.route_name(route.name)
        current = await self._get_or_none("HTTPRoute", rname)
        if current is not None:
            now = cc.route_fields(current)
            mine = {"traffic": dict(route.traffic), "mirror_traffic": dict(route.mirror_traffic)}
            known = route_base or self._seen.get(("HTTPRoute", rname))
            self._merge_or_refuse(
                known, now, mine, obj=current, what=what, fix=fix, same=cc.same_weights
            )
        secret = self._secret_from(route.name, _route_secret(route))
        await self._apply_guarded(
            secret,
            cc.secret_fields,
            lambda f: self._secret_from(route.name, f),
            what,
            fix,
            base=cc.secret_fields(self._secret_from(b.name, _route_secret(b))) if b else None,
        )
        await self._update_route(
            route.name, dict(route.traffic), dict(route.mirror_traffic), base=route_base
        )
        await self._discover_gateway_url()

    async def _deployments_of(self, endpoint: str) -> list[str]:
        return sorted(
            {
                (d["metadata"].get("labels") or {}).get(mf.DEPLOYMENT_LABEL, "")
                for d in await self._list("Deployment", mf.selector(endpoint))
            }
            - {""}
        )

    async def _update_route(
        self,
        endpoint: str,
        traffic: dict[str, int] | None,
        mirror: dict[str, int] | None,
        *,
        attempts: int = CONFLICT_ATTEMPTS,
        create: bool = True,
        drop: str | None = None,
        base: dict[str, Any] | None = None,
    ) -> None:
        """Read-modify-replace under the resourceVersion; a 409 is retried on the fresh object.

        ``traffic``/``mirror`` None keep what the route holds (header rules are resynced);
        ``drop`` takes a deployment out of both maps as they are now. A map someone else
        changed since ``base`` (default: since this control plane last knew the route) is
        kept, or, when this call changes it too, refused with Conflict (:mod:`.concurrency`).
        """
        name = mf.route_name(endpoint)
        key = ("HTTPRoute", name)
        mine: dict[str, Any] = {}
        if traffic is not None:
            mine["traffic"] = dict(traffic)
        if mirror is not None:
            mine["mirror_traffic"] = dict(mirror)
        async for last in conflict_attempts(attempts):
            current = await self._get_or_none("HTTPRoute", name)
            if current is None and not create:
                return
            now = cc.route_fields(current or {})
            known = self._seen.get(key) if base is None else base
            merged = self._merge_or_refuse(
                known if current else None,  # a route to create: nobody else's change
                now,
                mine,
                obj=current or {},
                what=f"endpoint '{endpoint}'",
                fix=self._endpoint_fix(endpoint),
                same=cc.same_weights,
            )
            view = {**(self._seen.get(key) or now), **mine}
            if drop:
                for held in (merged, view):
                    held["traffic"] = {k: v for k, v in held["traffic"].items() if k != drop}
                    held["mirror_traffic"] = {
                        k: v for k, v in held["mirror_traffic"].items() if k != drop
                    }
            t, m = merged["traffic"], merged["mirror_traffic"]
            deps = await self._deployments_of(endpoint)
            desired = mf.http_route(self.namespace, endpoint, t, m, deps, self.gateway)
            try:
                if current is None:
                    await self.api.request(
                        "POST",
                        self._path("HTTPRoute"),
                        self._call("create", "HTTPRoute", name),
                        query=[("fieldManager", mf.MANAGER)],
                        body=cc.stamp(desired),
                        content_type=JSON,
                    )
                else:
                    # keep what others put in the metadata (GitOps tools, the Gateway controller)
                    meta, held = desired["metadata"], current["metadata"]
                    meta["labels"] = {**(held.get("labels") or {}), **meta["labels"]}
                    meta["annotations"] = {**(held.get("annotations") or {}), **meta["annotations"]}
                    meta["resourceVersion"] = held["resourceVersion"]
                    if (
                        current.get("spec") == desired["spec"]
                        and (current["metadata"].get("annotations") or {})
                        == desired["metadata"]["annotations"]
                    ):
                        self._seen[key] = view
                        return
                    await self.api.request(
                        "PUT",
                        self._path("HTTPRoute", name),
                        self._call("update", "HTTPRoute", name),
                        query=[("fieldManager", mf.MANAGER)],
                        body=cc.stamp(desired),
                        content_type=JSON,
                    )
                self._seen[key] = view
                return
            except Conflict:  # 409: written meanwhile: check again on the fresh route
                if last:
                    raise

    async def _discover_gateway_url(self, *, every: float = 0.0) -> None:
        """Read the Gateway's address (at most once per ``every`` seconds): its first
        ``status.addresses`` entry, else the ingress of the LoadBalancer Service the Gateway
        implementation made for it (labelled ``gateway.networking.k8s.io/gateway-name``, as
        Istio, NGINX Gateway Fabric and kgateway label it). Errors keep what was known."""
        if self.spec.tags.get(mf.GATEWAY_URL_TAG):
            return
        now = time.monotonic()
        if every and now - self._gateway_checked < every:
            return
        self._gateway_checked = now
        ns = self.gateway.namespace or self.namespace
        try:
            gw = await self.api.request(
                "GET",
                f"/apis/{GATEWAY_API_GROUP}/v1/namespaces/{ns}/gateways/{self.gateway.name}",
                Call("get", f"gateways.{GATEWAY_API_GROUP}", ns, self.gateway.name),
            )
        except ModeldeckError:
            return
        listeners = (gw.get("spec") or {}).get("listeners") or []
        port = int(listeners[0].get("port") or 80) if listeners else 80
        for addr in (gw.get("status") or {}).get("addresses") or []:
            if addr.get("value"):
                self._gateway_url = _http_url(addr["value"], port)
                self._gateway_url_source = SOURCE_GATEWAY
                return
        try:
            services = await self.api.request(
                "GET",
                f"/api/v1/namespaces/{ns}/services",
                Call("list", "services", ns),
                query=[("labelSelector", f"{GATEWAY_NAME_LABEL}={self.gateway.name}")],
            )
        except ModeldeckError:
            return
        for svc in services.get("items") or []:
            if (svc.get("spec") or {}).get("type") != "LoadBalancer":
                continue
            ports = [int(p["port"]) for p in (svc.get("spec") or {}).get("ports") or []]
            # the listener's port where the Service has it (Istio lists its status-port first)
            svc_port = port if port in ports or not ports else ports[0]
            for ing in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
                host = ing.get("hostname") or ing.get("ip")
                if host:
                    self._gateway_url = _http_url(host, svc_port)
                    self._gateway_url_source = SOURCE_LOAD_BALANCER
                    return
        self._gateway_url, self._gateway_url_source = None, SOURCE_NONE

    async def delete_endpoint(self, name: str) -> None:
        """Delete the route first (traffic stops), then everything labelled with the endpoint."""
        await self._delete("HTTPRoute", mf.route_name(name))
        for kind in OWNED_KINDS[1:]:
            gone = await self._delete_selected(kind, mf.selector(name))
            for obj_name in gone:
                self._seen.pop((kind, obj_name), None)
        self._seen.pop(("HTTPRoute", mf.route_name(name)), None)


def _http_url(host: str, port: int) -> str:
    """``http://HOST[:PORT]`` (IPv6 in brackets; port 80 left out)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}" + (f":{port}" if port != 80 else "")


def _route_secret(route: EndpointRoute) -> dict[str, Any]:
    """The fields of the endpoint's keys Secret (see :func:`.concurrency.secret_fields`)."""
    return {
        "auth_mode": route.auth.mode,
        "primary_key": route.auth.primary_key,
        "secondary_key": route.auth.secondary_key,
        "token_secret": route.auth.token_secret,
        "description": route.description,
        "tags": dict(route.tags),
    }
