"""Azure Monitor metrics of online endpoints and deployments.

Two ways in, best first:

* the metrics **batch** API (``POST {region}.metrics.monitor.azure.com/subscriptions/S/
  metrics:getBatch``, api-version 2024-02-01): up to 50 resources of one namespace per
  call, so 50 endpoints cost 1 call and their 150 deployments 3;
* else (no batch endpoint known, as in a sovereign cloud without ``metrics_endpoint``,
  or the batch call failed) one ARM ``providers/Microsoft.Insights/metrics`` call per
  endpoint, split by its ``deployment`` dimension; deployment-level figures are then
  left out (they would be one call per deployment).

Either answer becomes one ``MetricSample`` per deployment here (:func:`metrics_to_samples`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

from ..api.domain import MetricSample
from ..api.errors import ModeldeckError
from ..armids import parse_time
from .arm import METRICS_API_VERSION, ArmClient

BATCH_API_VERSION = "2024-02-01"
BATCH_LIMIT = 50
ENDPOINT_NS = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
DEPLOYMENT_NS = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"
ENDPOINT_METRICS = (
    "RequestsPerMinute",
    "RequestLatency_P50",
    "RequestLatency_P95",
    "RequestLatency_P99",
)
DEPLOYMENT_METRICS = (
    "CpuUtilizationPercentage",
    "CpuMemoryUtilizationPercentage",
    "DeploymentCapacity",
)


#: Azure Monitor's time grains (``interval``), finest first: a history's step is the first
#: at least as long as the window's (learn.microsoft.com/rest/api/monitor/metrics/list:
#: ``interval``; the online endpoints' metrics are kept per minute, PT1M)
GRAINS = (
    (60, "PT1M"),
    (300, "PT5M"),
    (900, "PT15M"),
    (1800, "PT30M"),
    (3600, "PT1H"),
    (21600, "PT6H"),
    (43200, "PT12H"),
    (86400, "P1D"),
)


def _timeseries(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, str], dict[str, Any]]]:
    """(metric name, {dimension, lower case: value}, series) of each series of an answer."""
    for metric in body.get("value") or []:
        mname = ((metric.get("name") or {}).get("value")) or ""
        for series in metric.get("timeseries") or []:
            dims = {
                str((m.get("name") or {}).get("value", "")).lower(): str(m.get("value", ""))
                for m in series.get("metadatavalues") or []
            }
            yield mname, dims, series


def history_points(
    endpoint: str,
    deployments: list[str],
    requests: dict[str, Any],
    latency: dict[str, Any],
    step: int,
    now: float,
) -> list[MetricSample]:
    """Azure Monitor's series as history points (a grain with no value: no point). A
    point's ``ts`` is the end of its grain (Azure stamps the start), at most ``now``."""
    counts: dict[tuple[str, float], dict[str, int]] = {}
    lat: dict[tuple[str, float], dict[str, float]] = {}
    for body, into in ((requests, None), (latency, lat)):
        for mname, dims, series in _timeseries(body):
            dep = dims.get("deployment")
            if dep not in deployments:
                continue
            for p in series.get("data") or []:
                at = parse_time(p.get("timeStamp"))
                value = p.get("total", p.get("average")) if into is None else p.get("average")
                if at is None or value is None:
                    continue
                if into is None:
                    klass = dims.get("statuscodeclass", "")
                    acc = counts.setdefault((dep, at), {})
                    acc[klass] = acc.get(klass, 0) + int(value)
                else:
                    into.setdefault((dep, at), {})[mname] = float(value)
    out = []
    for dep, at in sorted(set(counts) | set(lat), key=lambda k: (k[0], k[1])):
        codes = counts.get((dep, at), {})
        m = lat.get((dep, at), {})
        total = sum(codes.values())
        errors = sum(v for k, v in codes.items() if k[:1] == "5")
        end = min(at + step, now)
        out.append(
            MetricSample(
                ts=end,
                endpoint=endpoint,
                deployment=dep,
                requests_total=total,
                requests_per_second=total / max(end - at, 1.0),
                errors_total=errors,
                error_rate=errors / total if total else 0.0,
                latency_p50_ms=m.get("RequestLatency_P50"),
                latency_p95_ms=m.get("RequestLatency_P95"),
                latency_p99_ms=m.get("RequestLatency_P99"),
                status_codes={k: v for k, v in sorted(codes.items()) if k in ("2xx", "4xx", "5xx")},
            )
        )
    return out


def monitor_scope(metrics_endpoint: str) -> str:
    """``https://westeurope.metrics.monitor.azure.com`` -> ``https://metrics.monitor.azure.com/.default``."""
    host = metrics_endpoint.split("://", 1)[-1].split("/", 1)[0]
    if "metrics.monitor." in host:
        return "https://metrics.monitor." + host.split("metrics.monitor.", 1)[1] + "/.default"
    return "https://metrics.monitor.azure.com/.default"


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _deployments_of(ep: dict[str, Any]) -> list[str]:
    props = ep.get("properties") or {}
    return sorted(set(props.get("traffic") or {}) | set(props.get("mirrorTraffic") or {}))


def _last_values(body: dict[str, Any]) -> dict[str, float]:
    """{metric: last value} of a resource's answer (average, else total)."""
    out: dict[str, float] = {}
    for metric in body.get("value") or []:
        name = (metric.get("name") or {}).get("value") or ""
        values = []
        for series in metric.get("timeseries") or []:
            points = [p for p in series.get("data") or [] if "average" in p or "total" in p]
            if points:
                values.append(float(points[-1].get("average", points[-1].get("total", 0.0))))
        if values:
            out[name] = sum(values) / len(values)
    return out


def metrics_to_samples(
    endpoint: str,
    deployments: list[str],
    body: dict[str, Any],
    *,
    now: float,
    replicas: dict[str, tuple[int, int]] | None = None,
) -> list[MetricSample]:
    """Azure Monitor ``metrics`` (split by the ``deployment`` dimension) as one sample each."""
    per: dict[str, dict[str, float]] = {d: {} for d in deployments}
    codes: dict[str, dict[str, int]] = {d: {} for d in deployments}
    for mname, dims, series in _timeseries(body):
        dep = dims.get("deployment")
        if dep not in per:
            continue
        points = [
            p
            for p in series.get("data") or []
            if any(k in p for k in ("average", "total", "maximum"))
        ]
        if not points:
            continue
        last = points[-1]
        if mname.startswith("RequestLatency"):
            value = last.get("average", last.get("maximum"))
        else:
            value = last.get("total", last.get("average"))
        if value is None:
            continue
        if mname == "RequestsPerMinute" and "statuscode" in dims:
            codes[dep][dims["statuscode"]] = codes[dep].get(dims["statuscode"], 0) + int(value)
        per[dep][mname] = per[dep].get(mname, 0.0) + float(value)
    out = []
    for dep in deployments:
        m = per[dep]
        rpm = m.get("RequestsPerMinute", 0.0)
        errors = sum(v for k, v in codes[dep].items() if k[:1] == "5")
        ready, desired = (replicas or {}).get(dep, (0, 0))
        out.append(
            MetricSample(
                ts=now,
                endpoint=endpoint,
                deployment=dep,
                requests_total=int(rpm),
                requests_per_second=rpm / 60.0,
                errors_total=int(errors),
                error_rate=(errors / rpm) if rpm else 0.0,
                latency_p50_ms=m.get("RequestLatency_P50"),
                latency_p95_ms=m.get("RequestLatency_P95"),
                latency_p99_ms=m.get("RequestLatency_P99"),
                status_codes=codes[dep],
                replicas_ready=ready,
                replicas_desired=desired,
            )
        )
    return out


class Metrics:
    def __init__(
        self,
        arm: ArmClient,
        batch: ArmClient | None,
        subscription: str,
        memory_gib: dict[tuple[str, str], float] | None = None,
    ) -> None:
        self.arm = arm
        self.batch = batch
        self.subscription = subscription
        #: (endpoint, deployment) -> GiB one instance may use (limit, else request), from
        #: the last deployments listing: turns Azure's memory percentage into MB
        self.memory_gib = memory_gib or {}

    def _window(self, now: float) -> tuple[str, str]:
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        return time.strftime(fmt, time.gmtime(now - 300)), time.strftime(fmt, time.gmtime(now))

    async def samples(
        self, endpoints: list[dict[str, Any]], missing: dict[str, str]
    ) -> list[MetricSample]:
        now = time.time()
        if self.batch is not None:
            try:
                return await self._batched(endpoints, now)
            except ModeldeckError as exc:
                missing["*"] = (
                    f"the metrics batch API failed ({exc.message.splitlines()[0]}); "
                    "used one ARM call per endpoint, without deployment CPU and capacity"
                )
        return await self._per_endpoint(endpoints, now, missing)

    # -- batch ------------------------------------------------------------------------------
    async def _get_batch(
        self, namespace: str, names: tuple[str, ...], ids: list[str], now: float, **extra: str
    ) -> dict[str, dict[str, Any]]:
        assert self.batch is not None
        start, end = self._window(now)
        params = {
            "api-version": BATCH_API_VERSION,
            "starttime": start,
            "endtime": end,
            "interval": "PT1M",
            "metricnamespace": namespace,
            "metricnames": ",".join(names),
            "aggregation": "average,total",
            **extra,
        }
        out: dict[str, dict[str, Any]] = {}

        async def one(chunk: list[str]) -> None:
            assert self.batch is not None
            resp = await self.batch.request(
                "POST",
                f"/subscriptions/{self.subscription}/metrics:getBatch",
                params=params,
                json={"resourceids": chunk},
                kind="metrics",
                retry_unsafe=True,  # a read
            )
            for item in (resp.json() or {}).get("values") or []:
                out[str(item.get("resourceid", "")).lower()] = item

        await asyncio.gather(*(one(c) for c in _chunks(ids, BATCH_LIMIT)))
        return out

    async def _batched(self, endpoints: list[dict[str, Any]], now: float) -> list[MetricSample]:
        ep_ids = [str(e.get("id")) for e in endpoints if e.get("id")]
        dep_ids = [f"{e.get('id')}/deployments/{d}" for e in endpoints for d in _deployments_of(e)]
        ep_bodies, dep_bodies = await asyncio.gather(
            self._get_batch(ENDPOINT_NS, ENDPOINT_METRICS, ep_ids, now, filter="deployment eq '*'"),
            self._get_batch(DEPLOYMENT_NS, DEPLOYMENT_METRICS, dep_ids, now)
            if dep_ids
            else asyncio.sleep(0, {}),
        )
        out: list[MetricSample] = []
        for ep in endpoints:
            body = ep_bodies.get(str(ep.get("id", "")).lower(), {})
            name = str(ep.get("name"))
            for s in metrics_to_samples(name, _deployments_of(ep), body, now=now):
                values = _last_values(
                    dep_bodies.get(f"{ep.get('id')}/deployments/{s.deployment}".lower(), {})
                )
                capacity = values.get("DeploymentCapacity")
                cpu = values.get("CpuUtilizationPercentage")
                mem_pct = values.get("CpuMemoryUtilizationPercentage")
                mem_gib = self.memory_gib.get((name, s.deployment))
                instances = round(capacity) if capacity is not None else 0
                memory_mb = None
                if mem_pct is not None and mem_gib:
                    # Azure reports the average % of one instance's memory: x instances
                    memory_mb = mem_pct / 100.0 * mem_gib * 1024.0 * max(instances, 1)
                out.append(
                    dataclasses.replace(
                        s,
                        # Azure reports the average % of one instance's CPU: x instances
                        cpu_percent=(cpu * max(instances, 1)) if cpu is not None else None,
                        memory_mb=memory_mb,
                        replicas_ready=instances,
                        replicas_desired=instances,
                    )
                )
        return out

    # -- one ARM call per endpoint ----------------------------------------------------------
    async def _per_endpoint(
        self, endpoints: list[dict[str, Any]], now: float, missing: dict[str, str]
    ) -> list[MetricSample]:
        start, end = self._window(now)
        sem = asyncio.Semaphore(16)

        async def one(ep: dict[str, Any]) -> list[MetricSample]:
            body = await self._endpoint_metrics(
                ep, ENDPOINT_METRICS, f"{start}/{end}", "PT1M", "deployment eq '*'", sem, missing
            )
            return metrics_to_samples(str(ep.get("name")), _deployments_of(ep), body, now=now)

        groups = await asyncio.gather(*(one(e) for e in endpoints))
        return [s for g in groups for s in g]

    async def _endpoint_metrics(
        self,
        ep: dict[str, Any],
        names: tuple[str, ...],
        timespan: str,
        interval: str,
        split: str,
        sem: asyncio.Semaphore,
        missing: dict[str, str],
    ) -> dict[str, Any]:
        """ARM's ``Microsoft.Insights/metrics`` of one endpoint ({} and a note in ``missing``
        when it fails): ``split`` is the ``$filter`` (``deployment eq '*'``: a series each)."""
        params = {
            "api-version": METRICS_API_VERSION,
            "metricnames": ",".join(names),
            "timespan": timespan,
            "interval": interval,
            "aggregation": "average,total",
            "$filter": split,
        }
        name = str(ep.get("name"))
        async with sem:
            try:
                resp = await self.arm.request(
                    "GET",
                    f"{ep.get('id')}/providers/Microsoft.Insights/metrics",
                    params=params,
                    kind="endpoint",
                    name=name,
                )
                return resp.json() or {}
            except ModeldeckError as exc:
                missing[name] = exc.message
                return {}

    # -- history: Azure Monitor keeps it; one ARM call per endpoint and kind ------------------
    async def history(
        self,
        endpoints: list[dict[str, Any]],
        deployment: str | None,
        window: str,
        missing: dict[str, str],
    ) -> tuple[int, list[MetricSample]]:
        """(step, points) of the last ``window`` (see ``MetricsHistory``): requests split
        by deployment and status class, and latencies split by deployment, at the Azure
        Monitor time grain nearest the window's step (one minute at least). Azure Monitor
        has no history of the replicas here, and the deployments' CPU and memory are not
        read for it: said in ``missing``."""
        from ..api.validation import metrics_window

        _, seconds, wanted = metrics_window(window)
        step, grain = next((s, g) for s, g in GRAINS if s >= wanted)
        now = time.time()
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        start = (now - seconds) // step * step  # whole grains
        span = f"{time.strftime(fmt, time.gmtime(start))}/{time.strftime(fmt, time.gmtime(now))}"
        sem = asyncio.Semaphore(16)

        bodies = await asyncio.gather(
            *(
                self._endpoint_metrics(ep, names, span, grain, split, sem, missing)
                for ep in endpoints
                for names, split in (
                    (("RequestsPerMinute",), "deployment eq '*' and statusCodeClass eq '*'"),
                    (ENDPOINT_METRICS[1:], "deployment eq '*'"),
                )
            )
        )
        out: list[MetricSample] = []
        for k, ep in enumerate(endpoints):
            name = str(ep.get("name"))
            deps = [d for d in _deployments_of(ep) if deployment in (None, d)]
            out += history_points(name, deps, bodies[2 * k], bodies[2 * k + 1], step, now)
            missing.setdefault(
                name,
                "Azure Monitor: the history has requests and latency; CPU, memory and "
                "replicas are the live figures only",
            )
        return step, out
