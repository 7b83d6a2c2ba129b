"""Metrics history: its own SQLite file, ``metrics.db`` beside ``workspace.db`` (0600, WAL),
so its steady write volume never contends with the records' transactions.

Two tables of one row per deployment and step, bounded by retention:

* ``fine``: one row per :data:`FINE_S` (10 s), kept :data:`FINE_KEEP_S` (24 h);
* ``coarse``: the fine rows rolled up per :data:`COARSE_S` (1 min), kept
  :data:`COARSE_KEEP_S` (30 days).

A row's ``ts`` is the end of its step (``(ts - step, ts]``). Counts (requests, status
classes, errors) add up; latencies are kept in 10 µs, CPU in tenths of a percent, memory
in MB, all integers (SQLite stores small integers in 1-3 bytes, a REAL in 8). A roll-up
(and a read at a coarser step) sums the counts, weights p50 by requests, keeps the highest
p95/p99 (a bound, not a percentile of the merged requests: those are not kept), averages
CPU and memory and keeps the fewest ready replicas. :func:`row_bytes` is the bound on
disk per row the tests and the note check.

The sampler (:mod:`.sampler`) is the only writer; reads (:meth:`MetricStore.read`) open
their own connection, so the daemon runs them in a thread while the sampler writes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ...api.domain import MetricSample

FINE_S = 10
FINE_KEEP_S = 86400
COARSE_S = 60
COARSE_KEEP_S = 30 * 86400
_LAT = 100.0  # stored units per ms (10 µs)
_CPU = 10.0  # stored units per percent

_COLUMNS = """
    series INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    s2xx INTEGER NOT NULL,
    s4xx INTEGER NOT NULL,
    s5xx INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    p50 INTEGER,
    p95 INTEGER,
    p99 INTEGER,
    cpu INTEGER,
    mem INTEGER,
    ready INTEGER NOT NULL,
    desired INTEGER NOT NULL,
    PRIMARY KEY (series, ts)
"""
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    endpoint TEXT NOT NULL,
    deployment TEXT NOT NULL,
    UNIQUE (endpoint, deployment)
);
CREATE TABLE IF NOT EXISTS fine ({_COLUMNS}) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coarse ({_COLUMNS}) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
SCHEMA_VERSION = 1

#: every series: with it, a range of ``ts`` is one primary-key range per series, not a scan
_ALL = "series IN (SELECT id FROM series)"

#: one step's aggregate of rows (``ts`` grouped by ``:step``); the roll-up and reads share it
_AGGREGATE = """
    SELECT series, ((ts + :step - 1) / :step) * :step AS t,
        SUM(requests), SUM(s2xx), SUM(s4xx), SUM(s5xx), SUM(errors),
        CAST(ROUND(COALESCE(SUM(p50 * requests) * 1.0 / NULLIF(SUM(
            CASE WHEN p50 IS NULL THEN 0 ELSE requests END), 0), AVG(p50))) AS INTEGER),
        MAX(p95), MAX(p99), CAST(ROUND(AVG(cpu)) AS INTEGER), CAST(ROUND(AVG(mem)) AS INTEGER),
        MIN(ready), MAX(desired)
    FROM {source}
    GROUP BY series, t
"""


@dataclass(frozen=True)
class Row:
    """One deployment's step, as stored (counts of the step; gauges as sampled)."""

    endpoint: str
    deployment: str
    ts: int
    requests: int
    s2xx: int
    s4xx: int
    s5xx: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    cpu_percent: float | None
    memory_mb: float | None
    ready: int
    desired: int


def row_bytes() -> int:
    """The most one row of ``fine`` or ``coarse`` takes on disk, B-tree cell included, for
    figures in range (a step under 8 million requests, latencies under 83 s, CPU under
    8,000 cores, memory under 8 TB, under 128 replicas and 8 million series): a record
    header of 15 bytes, the key (series 3 bytes, ts 4), 5 counts at 3, 5 gauges at 3, 2
    replica counts at 1, the cell's length prefix (2) and its slot in the page (2), in
    pages at least two thirds full (as SQLite's B-tree balancing keeps them). The WAL
    beside it is checkpointed at 1,000 pages (4 MB) by SQLite's default."""
    record = 15 + 3 + 4 + 5 * 3 + 5 * 3 + 2 * 1
    return (record + 2 + 2) * 3 // 2


def _scaled(value: float | None, unit: float) -> int | None:
    return None if value is None else round(value * unit)


def _unscaled(value: int | None, unit: float) -> float | None:
    return None if value is None else value / unit


def _open(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=5000")
    return db


class MetricStore:
    """``metrics.db``: written by the sampler, read by the API (each in its own thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = _open(path)
        self._lock = threading.Lock()  # the writer connection: one thread at a time
        self._series: dict[tuple[str, str], int] = {}
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            db.executescript(SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION};")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(str(path) + suffix, 0o600)
        self._readers = threading.local()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing (the sampler) -----------------------------------------------------------------
    def _series_id(self, endpoint: str, deployment: str) -> int:
        key = (endpoint, deployment)
        sid = self._series.get(key)
        if sid is None:
            self._db.execute(
                "INSERT OR IGNORE INTO series (endpoint, deployment) VALUES (?, ?)", key
            )
            sid = self._db.execute(
                "SELECT id FROM series WHERE endpoint=? AND deployment=?", key
            ).fetchone()[0]
            self._series[key] = sid
        return sid

    def write(self, rows: Iterable[Row], *, table: str = "fine") -> None:
        """One transaction for all of a tick's rows (a row already there is replaced)."""
        assert table in ("fine", "coarse")
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    f"INSERT OR REPLACE INTO {table} VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            self._series_id(r.endpoint, r.deployment),
                            r.ts,
                            r.requests,
                            r.s2xx,
                            r.s4xx,
                            r.s5xx,
                            r.errors,
                            _scaled(r.p50_ms, _LAT),
                            _scaled(r.p95_ms, _LAT),
                            _scaled(r.p99_ms, _LAT),
                            _scaled(r.cpu_percent, _CPU),
                            _scaled(r.memory_mb, 1.0),
                            r.ready,
                            r.desired,
                        )
                        for r in rows
                    ],
                )
            except BaseException:
                db.execute("ROLLBACK")
                self._series.clear()  # ids made in the rolled-back transaction are gone
                raise
            db.execute("COMMIT")

    def rolled_until(self) -> int:
        """The end of the last minute rolled up into ``coarse`` (0: none yet)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='rolled'").fetchone()
        return int(row[0]) if row else 0

    def maintain(self, now: float) -> None:
        """Roll the complete minutes of ``fine`` up into ``coarse``, then drop what is past
        retention (and the series with no row left)."""
        until = int(now) // COARSE_S * COARSE_S
        with self._lock:
            db = self._db
            row = db.execute("SELECT value FROM meta WHERE key='rolled'").fetchone()
            since = int(row[0]) if row else 0
            db.execute("BEGIN IMMEDIATE")
            try:
                if until > since:
                    db.execute(
                        "INSERT OR REPLACE INTO coarse "
                        + _AGGREGATE.format(
                            source=f"fine WHERE {_ALL} AND ts > "
                            f"{max(since, until - FINE_KEEP_S)} AND ts <= {until}"
                        ),
                        {"step": COARSE_S},
                    )
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('rolled', ?)", (until,))
                for table, keep in (("fine", FINE_KEEP_S), ("coarse", COARSE_KEEP_S)):
                    db.execute(f"DELETE FROM {table} WHERE {_ALL} AND ts <= ?", (int(now) - keep,))
                gone = db.execute(
                    "DELETE FROM series WHERE NOT EXISTS (SELECT 1 FROM fine WHERE series=id) "
                    "AND NOT EXISTS (SELECT 1 FROM coarse WHERE series=id) RETURNING id"
                ).fetchall()
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            if gone:
                self._series.clear()

    # -- reading (the API, in a thread) ---------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        db = getattr(self._readers, "db", None)
        if db is None:
            db = self._readers.db = _open(self.path)
        return db

    def read(
        self,
        start: float,
        end: float,
        step: int,
        *,
        endpoint: str | None = None,
        deployment: str | None = None,
    ) -> list[MetricSample]:
        """The points in ``(start, end]``, ``step`` seconds apart (a multiple of 10 s), of one
        deployment, one endpoint's or all, as :class:`~...api.domain.MetricsHistory` words
        them. A step of a minute or more reads ``coarse`` up to the last roll-up and ``fine``
        after it (the minute in progress)."""
        db = self._reader()
        lo, hi = int(start) // step * step, int(end)  # whole steps: the first is not cut
        names: dict[int, tuple[str, str]] = {}
        args: dict[str, object] = {"lo": lo, "hi": hi, "step": step}
        sql = "SELECT id, endpoint, deployment FROM series"
        if endpoint is not None:
            sql += " WHERE endpoint=:ep" + (" AND deployment=:dep" if deployment else "")
            args.update(ep=endpoint, dep=deployment)
        for sid, ep, dep in db.execute(sql, args):
            names[sid] = (ep, dep)
        if not names:
            return []
        ids = f"series IN ({','.join(str(i) for i in names)})"
        if step < COARSE_S:
            source = f"(SELECT * FROM fine WHERE {ids} AND ts > :lo AND ts <= :hi)"
        else:
            row = db.execute("SELECT value FROM meta WHERE key='rolled'").fetchone()
            rolled = min(max(int(row[0]) if row else 0, lo), hi)
            source = (
                f"(SELECT * FROM coarse WHERE {ids} AND ts > :lo AND ts <= {rolled} "
                f"UNION ALL SELECT * FROM fine WHERE {ids} AND ts > {rolled} AND ts <= :hi)"
            )
        # at the fine step the rows are the points; else one point per step
        sql = f"SELECT * FROM {source}" if step == FINE_S else _AGGREGATE.format(source=source)
        out: list[MetricSample] = []
        for sid, ts, req, s2, s4, s5, err, p50, p95, p99, cpu, mem, ready, desired in db.execute(
            sql, args
        ):
            ep, dep = names.get(sid, (None, None))
            if ep is None:
                continue
            # the step in progress ends now: its point is at now, its rate over what passed
            span = float(step - max(0, ts - hi)) or float(step)
            out.append(
                MetricSample(
                    ts=float(min(ts, hi)),
                    endpoint=ep,
                    deployment=dep,
                    requests_total=req,
                    requests_per_second=req / span,
                    errors_total=err,
                    error_rate=err / req if req else 0.0,
                    latency_p50_ms=_unscaled(p50, _LAT),
                    latency_p95_ms=_unscaled(p95, _LAT),
                    latency_p99_ms=_unscaled(p99, _LAT),
                    status_codes={k: v for k, v in (("2xx", s2), ("4xx", s4), ("5xx", s5)) if v},
                    cpu_percent=_unscaled(cpu, _CPU),
                    memory_mb=None if mem is None else float(mem),
                    replicas_ready=ready,
                    replicas_desired=desired,
                )
            )
        out.sort(key=lambda s: (s.endpoint, s.deployment, s.ts))
        return out
