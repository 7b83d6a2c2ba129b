"""The gateway's metrics as Prometheus text: per deployment the requests by status
code, errors, the latency histogram and recent percentiles, requests in flight, ready
replicas and dropped mirror copies; per endpoint the requests refused before a
deployment; then what the providers add (the pool driver, the connection guard). And who
may scrape them (``GET /metrics``: the metrics token)."""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable

from ...prometheus import family, labels, merge_families
from .backends import Backend
from .forwarding import error_response
from .server import Reply
from .stats import BUCKETS


def exposition(
    backends: Iterable[Backend], rejected: dict[tuple[str, int], int], provided: Iterable[str]
) -> str:
    """The gateway's ``/metrics`` text: every deployment's counters, the requests refused
    before a deployment (``rejected``: (endpoint, status) -> count), then the providers'
    lines grouped by family."""
    out: list[str] = []
    now = time.monotonic()
    backends = list(backends)

    def lbl(ep: str, dep: str) -> str:
        return labels(endpoint=ep, deployment=dep)

    out += family(
        "modeldeck_requests_total", "counter", "Scoring requests answered, by status code."
    )
    for b in backends:
        for code, count in sorted(b.stats.codes.items()):
            out.append(
                f'modeldeck_requests_total{{{lbl(b.endpoint, b.name)},code="{code}"}} {count}'
            )
    out += family("modeldeck_request_errors_total", "counter", "Requests answered 5xx or 429.")
    for b in backends:
        out.append(
            f"modeldeck_request_errors_total{{{lbl(b.endpoint, b.name)}}} {b.stats.errors_total}"
        )
    out += family(
        "modeldeck_request_duration_seconds",
        "histogram",
        "Time from arrival at the gateway to the answer.",
    )
    for b in backends:
        s = b.stats
        base = lbl(b.endpoint, b.name)
        cumulative = 0
        for bound, count in zip(BUCKETS, s.buckets, strict=False):
            cumulative += count
            out.append(
                f'modeldeck_request_duration_seconds_bucket{{{base},le="{bound:g}"}} {cumulative}'
            )
        cumulative += s.buckets[-1]
        out.append(f'modeldeck_request_duration_seconds_bucket{{{base},le="+Inf"}} {cumulative}')
        out.append(f"modeldeck_request_duration_seconds_sum{{{base}}} {s.latency_sum:.6f}")
        out.append(f"modeldeck_request_duration_seconds_count{{{base}}} {s.requests_total}")
    out += family(
        "modeldeck_request_latency_ms", "gauge", "Recent latency percentiles (last 60 s)."
    )
    for b in backends:
        for q, value in zip(("0.5", "0.95", "0.99"), b.stats.percentiles(60.0, now), strict=True):
            if value is not None:
                out.append(
                    f'modeldeck_request_latency_ms{{{lbl(b.endpoint, b.name)},quantile="{q}"}} {value:.3f}'
                )
    out += family("modeldeck_requests_in_flight", "gauge", "Requests being answered now.")
    for b in backends:
        out.append(f"modeldeck_requests_in_flight{{{lbl(b.endpoint, b.name)}}} {b.inflight}")
    out += family("modeldeck_replicas_ready", "gauge", "Replicas receiving requests.")
    for b in backends:
        out.append(f"modeldeck_replicas_ready{{{lbl(b.endpoint, b.name)}}} {len(b.instances)}")
    out += family(
        "modeldeck_mirror_dropped_total", "counter", "Mirror copies dropped (mirror busy)."
    )
    for b in backends:
        out.append(
            f"modeldeck_mirror_dropped_total{{{lbl(b.endpoint, b.name)}}} {b.stats.mirror_dropped}"
        )
    out += family(
        "modeldeck_rejected_total", "counter", "Requests refused before reaching a deployment."
    )
    for (ep, code), count in sorted(rejected.items()):
        out.append(f'modeldeck_rejected_total{{{labels(endpoint=ep)},code="{code}"}} {count}')
    out.extend(merge_families(provided))
    return "\n".join(out) + "\n"


def scrape_refusal(authorization: str | None, token: str | None, rid: str) -> Reply | None:
    """None when ``Authorization: Bearer <token>`` is given (constant-time compare); else
    the 404 (no token: the route is off) or the 401."""
    if not token:
        return error_response(
            404,
            "MetricsOff",
            "GET /metrics is off on this gateway",
            rid,
            fix="the local daemon serves it with a token: see metrics_token_file in "
            "modeldeck daemon status",
        )
    scheme, _, given = (authorization or "").partition(" ")
    given = given.strip()
    if (
        scheme.lower() != "bearer"
        or not given.isascii()  # bad bytes arrive escaped: they cannot be encoded
        or not hmac.compare_digest(given.encode(), token.encode())
    ):
        return error_response(
            401,
            "Unauthorized",
            "GET /metrics needs 'Authorization: Bearer <metrics token>'",
            rid,
            fix="the token is in the file named by metrics_token_file in modeldeck daemon status",
        )
    return None
