"""The metrics history room: samples every deployment every 10 s into ``metrics.db``
(:mod:`.metricstore`), whether or not anyone watches, and answers history reads.

A tick asks the engine for one sample per deployment (:meth:`Engine.get_metrics`: the
gateway's counters and the replicas' CPU and memory on the pool, the pods' ``/metrics``
and ``metrics.k8s.io`` on Kubernetes), turns the cumulative counters into the tick's counts
(a counter that went down, a restarted pod or gateway, counts from its new value: as
Prometheus' ``increase``), writes the tick's rows in one transaction, and once a minute
rolls up and prunes. The first tick after a start only learns the counters (the counts
before it are not this interval's). Writes and reads run in threads: the gateway shares
the daemon's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from ...api import validation
from ...api.domain import MetricSample, MetricsHistory
from .metricstore import COARSE_S, FINE_S, MetricStore, Row

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("modeldeck.daemon")

#: cumulative counters of one deployment: requests, errors, {code: count}
_Counters = tuple[int, int, dict[str, int]]


def _class_counts(codes: dict[str, int]) -> tuple[int, int, int]:
    """(2xx, 4xx, 5xx) of {status code: count} (1xx and 3xx count in requests only)."""
    out = [0, 0, 0]
    for code, n in codes.items():
        i = {"2": 0, "4": 1, "5": 2}.get(str(code)[:1])
        if i is not None:
            out[i] += n
    return out[0], out[1], out[2]


def interval_row(sample: MetricSample, before: _Counters | None, ts: int) -> Row | None:
    """The row of ``sample`` for the step ending at ``ts``: its counts since ``before``
    (None: not known yet, no row)."""
    if before is None:
        return None
    req0, err0, codes0 = before

    def increase(now: int, then: int) -> int:
        return now - then if now >= then else now

    codes = {k: increase(v, codes0.get(k, 0)) for k, v in sample.status_codes.items()}
    s2, s4, s5 = _class_counts(codes)
    return Row(
        sample.endpoint,
        sample.deployment,
        ts,
        increase(sample.requests_total, req0),
        s2,
        s4,
        s5,
        increase(sample.errors_total, err0),
        sample.latency_p50_ms,
        sample.latency_p95_ms,
        sample.latency_p99_ms,
        sample.cpu_percent,
        sample.memory_mb,
        sample.replicas_ready,
        sample.replicas_desired,
    )


class Sampler:
    """Holds ``metrics.db`` and the task that fills it."""

    def __init__(self, engine: Engine, *, interval: int = FINE_S) -> None:
        self.engine = engine
        self.interval = interval
        self.db = MetricStore(engine.data_dir / "metrics.db")
        self._counters: dict[tuple[str, str], _Counters] = {}
        self._task: asyncio.Future[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self.db.close()

    async def _run(self) -> None:
        while True:
            now = time.time()
            await asyncio.sleep(self.interval - now % self.interval)  # on the 10 s marks
            try:
                await self.tick(round(time.time() / self.interval) * self.interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bad tick must not end the history
                log.warning("metrics history: sampling failed: %s", exc)

    async def tick(self, ts: int) -> None:
        """Sample every deployment for the step ending at ``ts``; write; roll up and prune."""
        report = await self.engine.get_metrics()
        rows: list[Row] = []
        counters: dict[tuple[str, str], _Counters] = {}
        for s in report.samples:
            key = (s.endpoint, s.deployment)
            row = interval_row(s, self._counters.get(key), ts)
            counters[key] = (s.requests_total, s.errors_total, dict(s.status_codes))
            if row is not None:
                rows.append(row)
        self._counters = counters  # deployments gone are forgotten
        await asyncio.to_thread(self._write, rows, ts)

    def _write(self, rows: list[Row], ts: int) -> None:
        if rows:
            self.db.write(rows)
        if ts % COARSE_S == 0:
            self.db.maintain(ts)

    async def history(
        self, endpoint: str | None, deployment: str | None, window: str
    ) -> MetricsHistory:
        """The points of the last ``window`` (see :class:`MetricsHistory`)."""
        name, seconds, step = validation.metrics_window(window)
        end = time.time()
        points = await asyncio.to_thread(
            self.db.read, end - seconds, end, step, endpoint=endpoint, deployment=deployment
        )
        return MetricsHistory(name, step, points)
