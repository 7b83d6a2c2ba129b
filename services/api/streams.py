"""Domain types: logs, metrics and an invocation's answer (see domain.py: re-exported there,
loaded on first use)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LogLine:
    ts: float  # epoch seconds
    endpoint: str
    deployment: str
    replica: str  # e.g. "blue-0"
    stream: str  # "stdout" | "stderr" | "log" | "system"
    text: str


@dataclass(frozen=True)
class MetricSample:
    ts: float
    endpoint: str
    deployment: str
    requests_total: int = 0
    requests_per_second: float = 0.0
    errors_total: int = 0
    error_rate: float = 0.0  # errors / requests over the last interval, 0..1
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    status_codes: dict[str, int] = field(default_factory=dict)
    cpu_percent: float | None = None  # sum over replicas, 100 = one core
    memory_mb: float | None = None
    replicas_ready: int = 0
    replicas_desired: int = 0
    #: where the real p95 lies when ``latency_p95_ms`` is interpolated in a histogram (the
    #: Kubernetes pods' buckets): the bounds of its bucket, the last one's upper bound None
    #: (unbounded); None when the p95 is measured (the local gateway, Azure Monitor)
    latency_p95_bounds_ms: tuple[float, float | None] | None = None


@dataclass(frozen=True)
class MetricsReport:
    """What ``get_metrics`` answers: one sample per deployment, and endpoint -> why some of
    its metrics are missing (e.g. a Kubernetes cluster without the metrics server; ``"*"``
    for all endpoints), both as of that one call."""

    samples: list[MetricSample] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)


#: The history windows ``get_metrics_history`` takes: name -> (seconds, seconds between
#: points), so a plot holds 30-300 points whatever the window (a back end whose finest grain
#: is coarser, as Azure Monitor's one minute, uses its own).
METRICS_WINDOWS: dict[str, tuple[int, int]] = {
    "5m": (300, 10),
    "1h": (3600, 60),
    "24h": (86400, 300),
    "7d": (7 * 86400, 3600),
}


@dataclass(frozen=True)
class MetricsHistory:
    """What ``get_metrics_history`` answers: per deployment, points ``step_s`` seconds apart
    over the last ``window`` (a key of :data:`METRICS_WINDOWS`), oldest first.

    Each point is a :class:`MetricSample` whose ``ts`` is the end of its step;
    ``requests_total``, ``errors_total`` and ``status_codes`` (by class: ``"2xx"``,
    ``"4xx"``, ``"5xx"``) count the requests of that step, ``requests_per_second`` and
    ``error_rate`` are over it; latency p95/p99 are the highest of the step (p50 weighted
    by requests), CPU and memory its average, ``replicas_ready`` its fewest. A step with no
    sample has no point (a gap, not a zero). ``missing``: as in :class:`MetricsReport`."""

    window: str
    step_s: int
    points: list[MetricSample] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The compact wire form: each point a list of :class:`MetricSample`'s fields in
        ``fields`` order (24 h of 100 deployments is 28,800 points: ``to_dict`` and
        ``from_dict`` spent seconds on them)."""
        names = [f.name for f in dataclasses.fields(MetricSample)]
        return {
            "window": self.window,
            "step_s": self.step_s,
            "missing": dict(self.missing),
            "fields": names,
            "points": [[getattr(p, n) for n in names] for p in self.points],
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> MetricsHistory:
        names = data["fields"]
        return cls(
            data["window"],
            int(data["step_s"]),
            [MetricSample(**dict(zip(names, row, strict=True))) for row in data["points"]],
            dict(data.get("missing") or {}),
        )


@dataclass(frozen=True)
class InvokeResult:
    status: int
    body: bytes
    deployment: (
        str | None
    )  # who answered (x-ms-azureml-model-deployment / azureml-model-deployment)
    request_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: How the request went when not to the scoring URI (Kubernetes: the API server's
    #: service proxy, its path, and why); None: the scoring URI.
    via: str | None = None
