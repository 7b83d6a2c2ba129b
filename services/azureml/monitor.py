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
from typing import Any

from ..api.domain import MetricSample
from ..api.errors import ModeldeckError
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
    for metric in body.get("value") or []:
        mname = ((metric.get("name") or {}).get("value")) or ""
        for series in metric.get("timeseries") or []:
            dims = {
                str((m.get("name") or {}).get("value", "")).lower(): str(m.get("value", ""))
                for m in series.get("metadatavalues") or []
            }
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
            name = str(ep.get("name"))
            deps = _deployments_of(ep)
            params = {
                "api-version": METRICS_API_VERSION,
                "metricnames": ",".join(ENDPOINT_METRICS),
                "timespan": f"{start}/{end}",
                "interval": "PT1M",
                "aggregation": "average,total",
                "$filter": "deployment eq '*'",
            }
            async with sem:
                try:
                    resp = await self.arm.request(
                        "GET",
                        f"{ep.get('id')}/providers/Microsoft.Insights/metrics",
                        params=params,
                        kind="endpoint",
                        name=name,
                    )
                    body = resp.json()
                except ModeldeckError as exc:
                    missing[name] = exc.message
                    body = {}
            return metrics_to_samples(name, deps, body, now=now)

        groups = await asyncio.gather(*(one(e) for e in endpoints))
        return [s for g in groups for s in g]
