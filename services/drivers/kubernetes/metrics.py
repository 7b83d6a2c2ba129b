"""Parsing for the metrics a deployment's pods expose.

* ``metrics.k8s.io`` PodMetrics quantities (``"12345678n"`` CPU, ``"51200Ki"`` memory);
* the pod server's Prometheus text (``modeldeck_requests_total{code=...}``,
  ``modeldeck_request_errors_total``, the ``modeldeck_request_duration_seconds``
  histogram), read through the API server's ``pods/proxy`` subresource;
* rates and latency quantiles over a window of scrapes (as ``histogram_quantile``):
  :class:`Recent` keeps a deployment's scrapes of the last :data:`WINDOW_S` seconds, so the
  figures are over about the last minute however often they are read (a rollout's analysis
  every half second, the metrics history every 10 s, dashboards), as the local gateway's.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field

from ...prometheus import parse_samples

#: The figures' window: rates and quantiles are over the requests of about the last minute.
WINDOW_S = 60.0
_CPU = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0}
_MEM = {
    "": 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def _quantity(quantity: str | float | int, pattern: str, units: dict, what: str) -> float:
    """A number as is; text: ``pattern``'s number times the factor of its suffix in ``units``."""
    if isinstance(quantity, int | float):
        return float(quantity)
    m = re.fullmatch(pattern, quantity.strip())
    if not m:
        raise ValueError(f"not a {what} quantity: {quantity!r}")
    return float(m.group(1)) * units[m.group(2) or ""]


def cpu_cores(quantity: str | float | int) -> float:
    """A Kubernetes CPU quantity in cores."""
    return _quantity(quantity, r"([0-9.]+)([num]?)", _CPU, "CPU")


def memory_bytes(quantity: str | float | int) -> float:
    """A Kubernetes memory quantity in bytes."""
    return _quantity(quantity, r"([0-9.]+(?:e[0-9]+)?)([kMGT]i?|Ki)?", _MEM, "memory")


@dataclass
class Scrape:
    """One pod's (or the sum of several pods') scoring counters."""

    codes: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    count: float = 0.0
    total_seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.codes.values())

    def add(self, other: Scrape) -> None:
        for k, v in other.codes.items():
            self.codes[k] = self.codes.get(k, 0) + v
        self.errors += other.errors
        for le, v in other.buckets.items():
            self.buckets[le] = self.buckets.get(le, 0.0) + v
        self.count += other.count
        self.total_seconds += other.total_seconds


def parse_prometheus(text: str) -> Scrape:
    """The scoring counters of one pod's ``/metrics`` text."""
    out = Scrape()
    for name, labels, number in parse_samples(text):
        if name == "modeldeck_requests_total":
            code = labels.get("code", "")
            out.codes[code] = out.codes.get(code, 0) + int(number)
        elif name == "modeldeck_request_errors_total":
            out.errors += int(number)
        elif name == "modeldeck_request_duration_seconds_bucket":
            le = labels.get("le", "+Inf")
            key = math.inf if le in ("+Inf", "Inf") else float(le)
            out.buckets[key] = out.buckets.get(key, 0.0) + number
        elif name == "modeldeck_request_duration_seconds_count":
            out.count += number
        elif name == "modeldeck_request_duration_seconds_sum":
            out.total_seconds += number
    return out


def _rank_bucket(
    buckets: dict[float, float], q: float
) -> tuple[float, float, float, float, float] | None:
    """Where ``q`` falls in cumulative buckets (upper bounds in seconds): its rank, then the
    bucket that holds it: lower bound, count below it, upper bound, count up to it (+Inf
    past the last). None when empty."""
    items = sorted(buckets.items())
    if not items or items[-1][1] <= 0:
        return None
    rank = q * items[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in items:
        if count >= rank:
            return rank, prev_le, prev_count, le, count
        prev_le, prev_count = le, count
    return rank, prev_le, prev_count, math.inf, prev_count


def quantile(buckets: dict[float, float], q: float) -> float | None:
    """``histogram_quantile`` over cumulative buckets, in milliseconds (None when empty)."""
    found = _rank_bucket(buckets, q)
    if found is None:
        return None
    rank, lo, lo_count, hi, hi_count = found
    if math.isinf(hi):
        return lo * 1000.0
    span = hi_count - lo_count
    frac = (rank - lo_count) / span if span > 0 else 1.0
    return (lo + (hi - lo) * frac) * 1000.0


def quantile_bucket(buckets: dict[float, float], q: float) -> tuple[float, float | None] | None:
    """The bounds, in milliseconds, of the bucket :func:`quantile` interpolates ``q`` in:
    where the real quantile lies (the +Inf bucket's upper bound: None). None when empty."""
    found = _rank_bucket(buckets, q)
    if found is None:
        return None
    _, lo, _, hi, _ = found
    return lo * 1000.0, None if math.isinf(hi) else hi * 1000.0


def delta(now: Scrape, before: Scrape | None) -> Scrape:
    """Counters between two scrapes (counter resets, e.g. a restarted pod, count from 0)."""
    if before is None or now.count < before.count:
        return now
    out = Scrape(
        codes={k: max(0, v - before.codes.get(k, 0)) for k, v in now.codes.items()},
        errors=max(0, now.errors - before.errors),
        buckets={le: max(0.0, v - before.buckets.get(le, 0.0)) for le, v in now.buckets.items()},
        count=now.count - before.count,
        total_seconds=max(0.0, now.total_seconds - before.total_seconds),
    )
    return out


class Recent:
    """One deployment's scrapes of the last :data:`WINDOW_S` seconds (and the newest one
    older, the window's start): :meth:`add` a scrape, get the counters since that start."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._scrapes: deque[tuple[float, Scrape]] = deque(maxlen=1024)

    def add(self, now: float, scrape: Scrape) -> tuple[Scrape, float]:
        """The counters between the window's start and ``scrape`` (taken at ``now``), and the
        seconds between them (0: the first scrape, whose counters are all since the pod
        started)."""
        held = self._scrapes
        while len(held) > 1 and now - held[1][0] >= self.window_s:
            held.popleft()
        start = held[0] if held else None
        held.append((now, scrape))
        if start is None:
            return delta(scrape, None), 0.0
        return delta(scrape, start[1]), now - start[0]
