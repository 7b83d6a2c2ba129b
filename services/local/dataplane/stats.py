"""A deployment's counters in the gateway: requests, codes, latency histogram, recent
latencies (p50/p95/p99) and requests per second, cheap to update on every request."""

from __future__ import annotations

import math
import time
from array import array
from bisect import bisect_left

_RESERVOIR = 2048
_RATE_SLOTS = 64
#: histogram bucket upper bounds, seconds
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class DeploymentStats:
    """Counters of one deployment; cheap to update on every request."""

    __slots__ = (
        "_lat",
        "_lat_n",
        "_lat_ts",
        "_sec_err",
        "_sec_id",
        "_sec_req",
        "buckets",
        "codes",
        "errors_total",
        "latency_sum",
        "mirror_dropped",
        "requests_total",
        "started",
    )

    def __init__(self) -> None:
        self.requests_total = 0
        self.errors_total = 0
        self.codes: dict[int, int] = {}
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.mirror_dropped = 0
        self._lat = array("d", bytes(8 * _RESERVOIR))
        self._lat_ts = array("d", bytes(8 * _RESERVOIR))
        self._lat_n = 0
        self._sec_id = [-1] * _RATE_SLOTS
        self._sec_req = [0] * _RATE_SLOTS
        self._sec_err = [0] * _RATE_SLOTS
        self.started = time.monotonic()

    def record(self, status: int, latency_s: float, now: float) -> None:
        self.requests_total += 1
        codes = self.codes
        codes[status] = codes.get(status, 0) + 1
        error = status >= 500 or status == 429
        if error:
            self.errors_total += 1
        self.buckets[bisect_left(BUCKETS, latency_s)] += 1
        self.latency_sum += latency_s
        i = self._lat_n % _RESERVOIR
        self._lat[i] = latency_s
        self._lat_ts[i] = now
        self._lat_n += 1
        sec = int(now)
        slot = sec % _RATE_SLOTS
        if self._sec_id[slot] != sec:
            self._sec_id[slot] = sec
            self._sec_req[slot] = 0
            self._sec_err[slot] = 0
        self._sec_req[slot] += 1
        if error:
            self._sec_err[slot] += 1

    def percentiles(
        self, window_s: float = 60.0, now: float | None = None
    ) -> tuple[float | None, float | None, float | None]:
        """(p50, p95, p99) in ms over the recent latencies (last ``window_s`` s, at most 2048)."""
        now = time.monotonic() if now is None else now
        n = min(self._lat_n, _RESERVOIR)
        recent = sorted(self._lat[i] for i in range(n) if now - self._lat_ts[i] <= window_s)
        if not recent:
            return None, None, None

        def pick(q: float) -> float:
            return recent[min(len(recent) - 1, max(0, math.ceil(q * len(recent)) - 1))] * 1000.0

        return pick(0.50), pick(0.95), pick(0.99)

    def rate(self, window_s: int = 10, now: float | None = None) -> tuple[float, float]:
        """(requests per second, error rate 0..1) over the last ``window_s`` seconds."""
        now = time.monotonic() if now is None else now
        sec = int(now)
        window_s = max(1, min(window_s, _RATE_SLOTS - 1))
        requests = errors = 0
        for s in range(sec - window_s + 1, sec + 1):
            slot = s % _RATE_SLOTS
            if self._sec_id[slot] == s:
                requests += self._sec_req[slot]
                errors += self._sec_err[slot]
        span = min(float(window_s), max(now - self.started, 1e-3), (window_s - 1) + (now - sec))
        return requests / max(span, 1e-3), (errors / requests if requests else 0.0)
