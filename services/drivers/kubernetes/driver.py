"""The ``kubernetes`` cluster driver: deployments on a cluster reached through the kubeconfig.

The local control plane instantiates it as ``KubernetesDriver(spec, data_dir=...)``
and calls it through :class:`~modeldeck.services.drivers.base.ClusterDriver`. What it
makes (see :mod:`.manifests`) carries modeldeck's labels, so state and status are
read back from the cluster with label selectors: two operators see the same
truth, and nothing is lost if the local state is wiped.

Writes are server-side apply under the field manager ``modeldeck`` (with
``force``: modeldeck owns these objects), except the HTTPRoute, which is read,
changed and replaced. What two operators' control planes can both write (the
HTTPRoute, the keys Secret, the Deployment) is written under the resourceVersion
just read, after a field-by-field check against what this control plane last knew
(:mod:`.concurrency`): someone else's change is kept (merged) or, when this write
changes the same field, refused with ``Conflict`` naming the field and who changed
it; never overwritten silently. A 409 is retried against the fresh object.

Beyond the ABC, the engine/CLI can use: :attr:`identity`, :meth:`attach_check`,
:meth:`render_endpoint` / :meth:`render_deployment` (``--dry-run -o yaml``),
:meth:`list_managed`, :meth:`delete_resources` (``detach --delete-resources``),
:meth:`list_state`, :meth:`why_not_ready`, :meth:`events`, :meth:`watch_deployments`
and :attr:`metrics_note`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ...api.domain import (
    ClusterSpec,
    LogLine,
    MetricSample,
)
from ...api.errors import (
    BackendError,
    Conflict,
    ModeldeckError,
    NotFound,
)
from ..base import (
    ChecksAttach,
    ClusterDriver,
    Identified,
    Namespaced,
    NotesMetrics,
    RendersManifests,
    SharedCluster,
)
from . import concurrency as cc
from . import logs as logs_mod
from . import manifests as mf
from . import metrics as metrics_mod
from .client import KubeApi
from .errors import (
    METRICS_SERVER_INSTALL,
    Call,
)
from .kubeconfig import load_context
from .resources import OWNED_KINDS
from .rollout import Rollouts

log = logging.getLogger(__name__)


class KubernetesDriver(
    Rollouts,
    ClusterDriver,
    Namespaced,
    Identified,
    ChecksAttach,
    RendersManifests,
    NotesMetrics,
    SharedCluster,
):
    def __init__(
        self,
        spec: ClusterSpec,
        *,
        data_dir: Path,
        rollout_timeout: float = 900.0,
        poll_interval: float = 1.0,
        crashloop_restarts: int = 2,
        schedule_grace: float = 120.0,
        request_timeout: tuple[float, float] = (5.0, 30.0),
        concurrency: int = 8,
        attempts: int = 5,
        max_backoff: float = 8.0,
    ) -> None:
        super().__init__(spec)
        self.data_dir = data_dir
        self.ctx = load_context(spec.kube_context)
        self.namespace = spec.namespace or self.ctx.namespace
        self.api = KubeApi(
            self.ctx,
            spec.name,
            concurrency=concurrency,
            timeout=request_timeout,
            attempts=attempts,
            max_backoff=max_backoff,
        )
        self.gateway = mf.GatewayRef.from_tags(spec.tags)
        self.rollout_timeout = rollout_timeout
        self.poll_interval = poll_interval
        self.crashloop_restarts = crashloop_restarts
        self.schedule_grace = schedule_grace
        self._gateway_api: bool = False
        self._gateway_url: str | None = None
        self._scrapes: dict[tuple[str, str], tuple[float, metrics_mod.Scrape]] = {}
        #: Set when the metrics server is missing: CPU/memory are unavailable, and why.
        self.metrics_note: str | None = None
        #: (kind, name) -> the fields of the object as this control plane knows them (its
        #: own last write, or what it first listed): the base of the next write's check.
        self._seen: dict[tuple[str, str], dict[str, Any]] = {}

    # ------------------------------------------------------------------ identity

    @property
    def identity(self) -> tuple[str, str]:
        """(API server URL, namespace): the engine refuses a second attachment of the same."""
        return (self.ctx.server, self.namespace)

    # ------------------------------------------------------------------ state from the cluster

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

        ``{"endpoints": {name: {"traffic", "mirror_traffic"[, "auth_mode", "primary_key",
        "secondary_key", "token_secret"]}}, "deployments": [{"endpoint", "name", "model",
        "spec", "image", "ready_replicas", "desired_replicas"}], "resource_versions":
        {kind: rv}}``. With ``secrets`` the endpoints' keys Secrets are read too (an
        endpoint whose route is missing is listed from its Secret): what adoption needs.
        ``spec`` is the DeploymentSpec as applied (a dict, az ml field names), or None
        when the Deployment carries no ``modeldeck.io/spec`` annotation.
        """
        gateway = await self.gateway_api_installed()
        deps_raw, routes_raw, secrets_raw = await asyncio.gather(
            self._list_raw("Deployment", mf.SELECTOR_MANAGED),
            self._list_raw("HTTPRoute", mf.SELECTOR_MANAGED) if gateway else _empty(),
            self._list_raw("Secret", mf.SELECTOR_MANAGED) if secrets else _empty(),
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
            async for raw in self.api.stream_lines(
                self._path(kind),
                self._call("watch", kind),
                query=[
                    ("labelSelector", mf.SELECTOR_MANAGED),
                    ("watch", "true"),
                    ("resourceVersion", rv),
                    ("timeoutSeconds", max(1, int(timeout_s))),
                ],
                read_timeout=timeout_s + 10.0,
            ):
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
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
            async for raw in self.api.stream_lines(
                self._path("Deployment"),
                self._call("watch", "Deployment"),
                query=[
                    ("labelSelector", mf.SELECTOR_MANAGED),
                    ("watch", "true"),
                    ("resourceVersion", rv),
                    ("timeoutSeconds", 300),
                ],
            ):
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if event.get("type") == "ERROR":  # e.g. 410 Gone: too old; list again
                    break
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    yield event["type"], event.get("object") or {}
            await asyncio.sleep(self.poll_interval)

    # ------------------------------------------------------------------ logs

    async def pods(self, endpoint: str | None = None, deployment: str | None = None) -> list[dict]:
        """modeldeck's pods in the namespace (one list call, parsed once), as the API returns them."""
        return await self._list("Pod", mf.selector(endpoint, deployment))

    async def _pod_names(self, endpoint: str, name: str) -> list[str]:
        return [p["metadata"]["name"] for p in await self._list("Pod", mf.selector(endpoint, name))]

    async def read_logs(
        self, endpoint: str, name: str, lines: int, *, since: float | None = None
    ) -> list[LogLine]:
        """The last ``lines`` lines over the deployment's pods; ``since`` (epoch seconds):
        only lines written at or after it (``kubectl logs --since-time``)."""
        listed = await self._list("Pod", mf.selector(endpoint, name))
        pods = [p["metadata"]["name"] for p in listed]
        got = await logs_mod.read(
            self.api, self.namespace, pods, endpoint, name, lines, since=since
        )
        # the environment build's lines (the init container), as a local pool keeps them
        building = [
            p["metadata"]["name"]
            for p in listed
            if any(
                c.get("name") == mf.ENV_CONTAINER
                for c in (p.get("spec") or {}).get("initContainers") or []
            )
        ]
        if not building:
            return got

        async def env_lines(pod: str) -> list[LogLine]:
            for previous in (False, True):
                try:
                    found = await logs_mod.pod_log(
                        self.api,
                        self.namespace,
                        pod,
                        tail=lines,
                        previous=previous,
                        container=mf.ENV_CONTAINER,
                        since=since,
                    )
                except ModeldeckError:
                    continue
                return [LogLine(ts, endpoint, name, pod, "environment", t) for ts, t in found]
            return []

        extra = await asyncio.gather(*(env_lines(p) for p in building))
        merged = sorted([*got, *(line for group in extra for line in group)], key=lambda x: x.ts)
        return merged[-lines:] if lines > 0 else merged

    def follow_logs(
        self, endpoint: str, name: str, lines: int, *, since: float | None = None
    ) -> AsyncIterator[LogLine]:
        return logs_mod.follow(
            self.api,
            self.namespace,
            mf.selector(endpoint, name),
            endpoint,
            name,
            lines,
            retry_delay=min(0.5, self.poll_interval),
            since=since,
        )

    # ------------------------------------------------------------------ metrics

    async def _pod_metrics(self, selector: str) -> dict[str, tuple[float, float]] | None:
        """pod -> (cpu cores, memory bytes) from metrics.k8s.io; None when it is not installed."""
        try:
            data = await self.api.request(
                "GET",
                f"/apis/metrics.k8s.io/v1beta1/namespaces/{self.namespace}/pods",
                Call("list", "pods.metrics.k8s.io", self.namespace),
                query=[("labelSelector", selector)],
            )
        except NotFound:
            self.metrics_note = (
                f"the metrics server is not installed on cluster '{self.spec.name}': CPU and "
                f"memory are unavailable (install it: {METRICS_SERVER_INSTALL})"
            )
            return None
        except BackendError as exc:
            if exc.details.get("status") == 503:
                self.metrics_note = (
                    f"the metrics server of cluster '{self.spec.name}' is not available"
                )
                return None
            raise
        self.metrics_note = None
        out = {}
        for item in data.get("items") or []:
            cores = mem = 0.0
            for c in item.get("containers") or []:
                usage = c.get("usage") or {}
                cores += metrics_mod.cpu_cores(usage.get("cpu", "0"))
                mem += metrics_mod.memory_bytes(usage.get("memory", "0"))
            out[item["metadata"]["name"]] = (cores, mem)
        return out

    async def _scrape(self, pod: str) -> metrics_mod.Scrape | None:
        try:
            text = await self.api.request(
                "GET",
                f"/api/v1/namespaces/{self.namespace}/pods/{pod}:{mf.POD_PORT}/proxy/metrics",
                Call("get", "pods/proxy", self.namespace, pod),
                accept="text/plain",
                raw=True,
                timeout=(self.api.timeout[0], min(10.0, self.api.timeout[1])),
            )
        except (NotFound, BackendError, Conflict):
            return None
        return metrics_mod.parse_prometheus(text.decode("utf-8", "replace"))

    async def metrics(self, endpoint: str | None = None) -> list[MetricSample]:
        sel = mf.selector(endpoint)
        deps, pods, usage = await asyncio.gather(
            self._list("Deployment", sel), self._list("Pod", sel), self._pod_metrics(sel)
        )
        by_dep: dict[tuple[str, str], list[dict]] = {}
        for pod in pods:
            lab = pod["metadata"].get("labels") or {}
            by_dep.setdefault(
                (lab.get(mf.ENDPOINT_LABEL, ""), lab.get(mf.DEPLOYMENT_LABEL, "")), []
            ).append(pod)
        running = [
            p["metadata"]["name"] for p in pods if (p.get("status") or {}).get("phase") == "Running"
        ]
        scrapes = dict(
            zip(running, await asyncio.gather(*(self._scrape(p) for p in running)), strict=True)
        )
        now = time.time()
        out = []
        for d in deps:
            lab = d["metadata"].get("labels") or {}
            key = (lab.get(mf.ENDPOINT_LABEL, ""), lab.get(mf.DEPLOYMENT_LABEL, ""))
            st = d.get("status") or {}
            total = metrics_mod.Scrape()
            cpu = mem = 0.0
            for pod in by_dep.get(key, []):
                pname = pod["metadata"]["name"]
                scraped = scrapes.get(pname)
                if scraped is not None:
                    total.add(scraped)
                if usage and pname in usage:
                    cpu += usage[pname][0]
                    mem += usage[pname][1]
            prev = self._scrapes.get(key)
            self._scrapes[key] = (now, total)
            window = metrics_mod.delta(total, prev[1] if prev else None)
            elapsed = now - prev[0] if prev else 0.0
            requests = window.requests
            errors = sum(n for c, n in window.codes.items() if c.startswith("5"))
            out.append(
                MetricSample(
                    ts=now,
                    endpoint=key[0],
                    deployment=key[1],
                    requests_total=total.requests,
                    requests_per_second=requests / elapsed if elapsed > 0 else 0.0,
                    errors_total=total.errors,
                    error_rate=errors / requests if requests else 0.0,
                    latency_p50_ms=metrics_mod.quantile(window.buckets, 0.5),
                    latency_p95_ms=metrics_mod.quantile(window.buckets, 0.95),
                    latency_p99_ms=metrics_mod.quantile(window.buckets, 0.99),
                    status_codes=dict(total.codes),
                    cpu_percent=cpu * 100.0 if usage is not None else None,
                    memory_mb=mem / 2**20 if usage is not None else None,
                    replicas_ready=int(st.get("readyReplicas") or 0),
                    replicas_desired=int((d.get("spec") or {}).get("replicas", 1)),
                )
            )
        return out

    async def close(self) -> None:
        await self.api.close()


def _changed_by(obj: dict) -> str | None:
    """Who last changed ``obj`` through modeldeck (``user@host``), when it says."""
    who = ((obj.get("metadata") or {}).get("annotations") or {}).get(cc.CHANGED_BY_ANNOTATION)
    return str(who) if who else None


async def _empty() -> dict:
    return {}
