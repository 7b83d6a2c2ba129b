"""What modeldeck has on the cluster, read back: the objects it made, the endpoints and
deployments as the cluster has them (what adoption and a second operator's control plane
read), and watches that wake the caller at the next change."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ...api.errors import BackendError, NotFound
from . import concurrency as cc
from . import manifests as mf
from .attach import AttachChecks
from .progressive import rollout_of
from .resources import OWNED_KINDS

#: How often reading the cluster's state (every show and list) reads the Gateway's address.
GATEWAY_RECHECK_S = 30.0


class ClusterState(AttachChecks):
    """State reads (a room of :class:`~.driver.KubernetesDriver`)."""

    poll_interval: float

    if TYPE_CHECKING:  # the endpoints room's (:mod:`.endpoints`)

        async def _discover_gateway_url(self, *, every: float = 0.0) -> None: ...

    async def list_managed(self) -> list[dict[str, str]]:
        """Everything modeldeck made in the namespace: ``{"kind", "name", "endpoint", "deployment"}``."""
        out: list[dict[str, str]] = []

        async def one(kind: str) -> list[dict[str, str]]:
            try:
                items = await self._list(kind, mf.SELECTOR_MANAGED)
            except (NotFound, BackendError) as exc:
                if kind == "HTTPRoute" and (
                    isinstance(exc, NotFound) or exc.details.get("missing")
                ):
                    return []
                raise
            return [
                {
                    "kind": kind,
                    "name": o["metadata"]["name"],
                    "endpoint": (o["metadata"].get("labels") or {}).get(mf.ENDPOINT_LABEL, ""),
                    "deployment": (o["metadata"].get("labels") or {}).get(mf.DEPLOYMENT_LABEL, ""),
                }
                for o in items
            ]

        for group in await asyncio.gather(*(one(k) for k in OWNED_KINDS)):
            out.extend(group)
        return out

    async def delete_resources(self) -> list[dict[str, str]]:
        """``detach --delete-resources``: delete everything modeldeck made in the namespace
        (routes first). Returns what was deleted. Nothing else is touched."""
        managed = await self.list_managed()
        for kind in OWNED_KINDS:
            names = [m["name"] for m in managed if m["kind"] == kind]
            await asyncio.gather(*(self._delete(kind, n) for n in names))
        return managed

    async def list_state(self, *, secrets: bool = False) -> dict[str, Any]:
        """Endpoints (traffic from the routes) and deployments as the cluster has them.

        ``{"endpoints": {name: {"traffic", "mirror_traffic"[, "rollout"][, "auth_mode",
        "primary_key", "secondary_key", "token_secret"]}}, "deployments": [{"endpoint", "name", "model",
        "spec", "image", "ready_replicas", "desired_replicas"}], "resource_versions":
        {kind: rv}}``. With ``secrets`` the endpoints' keys Secrets are read too (an
        endpoint whose route is missing is listed from its Secret): what adoption needs.
        ``spec`` is the DeploymentSpec as applied (a dict, az ml field names), or None
        when the Deployment carries no ``modeldeck.io/spec`` annotation. ``rollout``: the
        route's progressive rollout (:mod:`.progressive`), when it has one.
        """
        gateway = await self.gateway_api_installed()
        deps_raw, routes_raw, secrets_raw, _ = await asyncio.gather(
            self._list_raw("Deployment", mf.SELECTOR_MANAGED),
            self._list_raw("HTTPRoute", mf.SELECTOR_MANAGED) if gateway else _empty(),
            self._list_raw("Secret", mf.SELECTOR_MANAGED) if secrets else _empty(),
            # the scoring URI follows the Gateway's address (it may come or change later)
            self._discover_gateway_url(every=GATEWAY_RECHECK_S) if gateway else _empty(),
        )
        rvs = {
            kind: (raw.get("metadata") or {}).get("resourceVersion")
            for kind, raw in (
                ("Deployment", deps_raw),
                ("HTTPRoute", routes_raw),
                ("Secret", secrets_raw),
            )
            if (raw.get("metadata") or {}).get("resourceVersion")
        }
        # what this control plane now knows: the base of its next writes' checks (objects it
        # wrote itself keep what it wrote: its records may not have taken the cluster's yet)
        for kind, raw, fields_of in (
            ("Deployment", deps_raw, cc.deployment_fields),
            ("HTTPRoute", routes_raw, cc.route_fields),
            ("Secret", secrets_raw, cc.secret_fields),
        ):
            for item in raw.get("items") or []:
                self._seen.setdefault((kind, item["metadata"]["name"]), fields_of(item))
        endpoints: dict[str, dict[str, Any]] = {}
        for r in routes_raw.get("items") or []:
            ep = (r["metadata"].get("labels") or {}).get(mf.ENDPOINT_LABEL, "")
            traffic, mirror = mf.route_state(r)
            endpoints[ep] = {
                "traffic": traffic,
                "mirror_traffic": mirror,
                "route_changed_by": _changed_by(r),
            }
            rollout = rollout_of(r)  # the endpoint's progressive rollout (its annotation)
            if rollout is not None:
                endpoints[ep]["rollout"] = rollout
        for sec in secrets_raw.get("items") or []:
            lab = sec["metadata"].get("labels") or {}
            ep = lab.get(mf.ENDPOINT_LABEL, "")
            if (
                not ep
                or lab.get(mf.DEPLOYMENT_LABEL)
                or sec["metadata"]["name"] != mf.secret_name(ep)
            ):
                continue
            data = sec.get("data") or {}

            def dec(key: str, data: dict = data) -> str:
                try:
                    return base64.b64decode(data.get(key) or "").decode()
                except (ValueError, UnicodeDecodeError):
                    return ""

            entry = endpoints.setdefault(ep, {"traffic": {}, "mirror_traffic": {}})
            ann = sec["metadata"].get("annotations") or {}
            try:
                tags = json.loads(ann.get(mf.TAGS_ANNOTATION) or "{}")
            except ValueError:
                tags = {}
            entry.update(
                # False: written by a modeldeck that kept no description/tags on the cluster
                described=mf.DESCRIPTION_ANNOTATION in ann,
                secret_changed_by=_changed_by(sec),
                description=str(ann.get(mf.DESCRIPTION_ANNOTATION) or ""),
                tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {},
                auth_mode=dec("auth-mode") or "key",
                primary_key=dec("primary-key"),
                secondary_key=dec("secondary-key"),
                token_secret=dec("token-secret"),
            )
        deployments = []
        for d in deps_raw.get("items") or []:
            lab = d["metadata"].get("labels") or {}
            ann = d["metadata"].get("annotations") or {}
            st = d.get("status") or {}
            containers = d["spec"]["template"]["spec"].get("containers") or [{}]
            try:
                spec = json.loads(ann[mf.SPEC_ANNOTATION]) if mf.SPEC_ANNOTATION in ann else None
            except ValueError:
                spec = None
            deployments.append(
                {
                    "endpoint": lab.get(mf.ENDPOINT_LABEL, ""),
                    "name": lab.get(mf.DEPLOYMENT_LABEL, ""),
                    "model": ann.get(mf.MODEL_ANNOTATION),
                    "spec": spec if isinstance(spec, dict) else None,
                    "changed_by": _changed_by(d),
                    "image": containers[0].get("image"),
                    "container": containers[0],
                    "ready_replicas": int(st.get("readyReplicas") or 0),
                    "desired_replicas": int(d["spec"].get("replicas", 1)),
                }
            )
        return {"endpoints": endpoints, "deployments": deployments, "resource_versions": rvs}

    async def wait_for_change(
        self, resource_versions: dict[str, str], timeout_s: float = 60.0
    ) -> bool:
        """Watch (``watch=true``) modeldeck's Deployments, HTTPRoutes and Secrets from the
        resourceVersions :meth:`list_state` returned; True at the first change, False when
        ``timeout_s`` passed without one (or the server ended the watches)."""

        async def one(kind: str, rv: str) -> bool:
            async for event in self._watch(
                kind,
                mf.SELECTOR_MANAGED,
                rv,
                max(1, int(timeout_s)),
                read_timeout=timeout_s + 10.0,
            ):
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED", "ERROR"):
                    return True  # ERROR (410 Gone): too old, the caller lists again
            return False

        tasks = [asyncio.ensure_future(one(k, rv)) for k, rv in resource_versions.items()]
        if not tasks:
            await asyncio.sleep(timeout_s)
            return False
        try:
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(
                    pending, timeout=timeout_s + 15.0, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    return False
                for t in done:
                    if t.result():
                        return True
            return False
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def watch_deployments(self) -> AsyncIterator[tuple[str, dict]]:
        """(event type, Deployment) for every change of modeldeck's Deployments (``watch=true``),
        re-listing when the server ends the watch."""
        while True:
            listed = await self._list_raw("Deployment", mf.SELECTOR_MANAGED)
            for item in listed.get("items") or []:
                yield "ADDED", item
            rv = (listed.get("metadata") or {}).get("resourceVersion")
            async for event in self._watch("Deployment", mf.SELECTOR_MANAGED, rv, 300):
                if event.get("type") == "ERROR":  # e.g. 410 Gone: too old; list again
                    break
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    yield event["type"], event.get("object") or {}
            await asyncio.sleep(self.poll_interval)


def _changed_by(obj: dict) -> str | None:
    """Who last changed ``obj`` through modeldeck (``user@host``), when it says."""
    who = ((obj.get("metadata") or {}).get("annotations") or {}).get(cc.CHANGED_BY_ANNOTATION)
    return str(who) if who else None


async def _empty() -> dict:
    return {}
