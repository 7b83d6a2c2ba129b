"""What the deployments' pods say: their logs (the environment build's lines included)
and their metrics (request counts and latencies scraped from each pod server, CPU and
memory from the metrics server when it is installed)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from ...api.domain import LogLine, MetricSample
from ...api.errors import BackendError, Conflict, InvalidInput, NotFound
from . import logs as logs_mod
from . import manifests as mf
from . import metrics as metrics_mod
from .errors import Call, metrics_server_missing
from .resources import Resources


class PodTelemetry(Resources):
    """Logs and metrics (a room of :class:`~.driver.KubernetesDriver`)."""

    poll_interval: float
    #: Set when the metrics server is missing: CPU/memory are unavailable, and why.
    metrics_note: str | None
    #: (endpoint, deployment) -> its pods' counters as read in about the last minute: rates
    #: and quantiles are over that window, whoever reads them how often
    _scrapes: dict[tuple[str, str], metrics_mod.Recent]

    async def pods(self, endpoint: str | None = None, deployment: str | None = None) -> list[dict]:
        """modeldeck's pods in the namespace (one list call, parsed once), as the API returns them."""
        return await self._list("Pod", mf.selector(endpoint, deployment))

    async def read_logs(
        self,
        endpoint: str,
        name: str,
        lines: int,
        *,
        since: float | None = None,
        container: str | None = None,
    ) -> list[LogLine]:
        """The last ``lines`` lines over the deployment's pods; ``since`` (epoch seconds):
        only lines written at or after it (``kubectl logs --since-time``). ``container``:
        ``inference-server`` the scoring container only; ``storage-initializer`` the pods'
        init containers (the model download, the environment build: what runs before the
        server), each line's stream the init container's name."""
        listed = await self._list("Pod", mf.selector(endpoint, name))
        pods = [p["metadata"]["name"] for p in listed]
        got: list[LogLine] = []
        if container != "storage-initializer":
            got = await logs_mod.read(
                self.api, self.namespace, pods, endpoint, name, lines, since=since
            )
            if container == "inference-server":
                return got
        # the init containers' lines (the environment build's, as a local pool keeps them)
        inits = [
            (p["metadata"]["name"], c["name"])
            for p in listed
            for c in (p.get("spec") or {}).get("initContainers") or []
            if container == "storage-initializer" or c.get("name") == mf.ENV_CONTAINER
        ]
        if not inits:
            return got

        async def init_lines(pod: str, init: str) -> list[LogLine]:
            found = await logs_mod.last_run_log(
                self.api, self.namespace, pod, init, tail=lines, since=since
            )
            return [LogLine(ts, endpoint, name, pod, init, t) for ts, t in found or []]

        extra = await asyncio.gather(*(init_lines(p, c) for p, c in inits))
        merged = sorted([*got, *(line for group in extra for line in group)], key=lambda x: x.ts)
        return merged[-lines:] if lines > 0 else merged

    def follow_logs(
        self,
        endpoint: str,
        name: str,
        lines: int,
        *,
        since: float | None = None,
        container: str | None = None,
    ) -> AsyncIterator[LogLine]:
        """The scoring container's lines (``inference-server``); the init containers end
        before the server starts: their log is read, not followed."""
        if container == "storage-initializer":
            raise InvalidInput(
                "container",
                container,
                "cannot be followed on Kubernetes: the init containers (model download, "
                "environment build) have ended when the server starts",
                "read their log without following it",
            )
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
            self.metrics_note = metrics_server_missing(self.spec.name)
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
            recent = self._scrapes.setdefault(key, metrics_mod.Recent())
            window, elapsed = recent.add(now, total)
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
                    latency_p95_bounds_ms=metrics_mod.quantile_bucket(window.buckets, 0.95),
                    status_codes=dict(total.codes),
                    cpu_percent=cpu * 100.0 if usage is not None else None,
                    memory_mb=mem / 2**20 if usage is not None else None,
                    replicas_ready=int(st.get("readyReplicas") or 0),
                    replicas_desired=int((d.get("spec") or {}).get("replicas", 1)),
                )
            )
        return out
