"""``modeldeck online-deployment metrics``: a deployment's metrics history (an invented
command: az ml has none; Azure ML's figures are in Azure Monitor). Its own module beside
``cmd_deployment.py``: the shape of a history (points, not a resource) is its own."""

from __future__ import annotations

import argparse
from typing import Any

from ..services.api import validation
from ..services.api.domain import MetricSample, MetricsHistory
from ..services.api.workspace import Workspace
from ..services.armids import iso_time
from .common import warner


def _point(p: MetricSample) -> dict[str, Any]:
    return {
        "time": iso_time(p.ts),
        "requests": p.requests_total,
        "requests_per_second": round(p.requests_per_second, 3),
        "status_classes": p.status_codes,
        "error_rate": round(p.error_rate, 4),
        "latency_p50_ms": p.latency_p50_ms,
        "latency_p95_ms": p.latency_p95_ms,
        "latency_p99_ms": p.latency_p99_ms,
        "cpu_percent": p.cpu_percent,
        "memory_mb": p.memory_mb,
        "replicas_ready": p.replicas_ready,
        "replicas_desired": p.replicas_desired,
    }


def history_output(args: argparse.Namespace, history: MetricsHistory) -> Any:
    """``-o table``: one row per point; else the history as one object (its points inside)."""
    points = [_point(p) for p in history.points]
    if args.output == "table" and not args.query:
        return [
            {
                "time": p["time"],
                "req/s": p["requests_per_second"],
                "2xx": p["status_classes"].get("2xx", 0),
                "4xx": p["status_classes"].get("4xx", 0),
                "5xx": p["status_classes"].get("5xx", 0),
                "err%": round(p["error_rate"] * 100, 2),
                "p50 ms": p["latency_p50_ms"],
                "p95 ms": p["latency_p95_ms"],
                "p99 ms": p["latency_p99_ms"],
                "cpu%": p["cpu_percent"],
                "mem MB": p["memory_mb"],
                "ready": f"{p['replicas_ready']}/{p['replicas_desired']}",
            }
            for p in points
        ]
    return {
        "endpoint": args.endpoint_name,
        "deployment": args.name,
        "window": history.window,
        "step_s": history.step_s,
        "points": points,
        "missing": history.missing,
    }


async def deployment_metrics(args: argparse.Namespace, ws: Workspace) -> Any:
    window = validation.metrics_window(args.window)[0]
    history = await ws.get_metrics_history(args.endpoint_name, args.name, window=window)
    for why in history.missing.values():  # e.g. what Azure Monitor does not keep
        warner(args)(why)
    return history_output(args, history)
