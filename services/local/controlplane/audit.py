"""The audit history, server side: the changes the store records (:mod:`.store.history`)
read back as domain records (``online-endpoint history``, the dashboard's History view),
and shown on the clusters that keep changes their own way.

A cluster whose driver :class:`~modeldeck.services.drivers.base.RecordsChanges`
(Kubernetes: a ``modeldeck.io/last-change`` annotation and an Event on the changed
object) gets each change made from this control plane, in revision order, by one
background task woken by the store after each recorded change. Only committed rows are
read, so a refused write never shows; the cluster being unreachable loses the
annotation and the Event (logged), never the record. A change taken in from the cluster
itself (adoption, following: made there by someone else) is not sent back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...api.domain import ChangeHistory, ChangeRecord
from ...api.errors import NotFound
from ...drivers.base import RecordsChanges
from .store.history import ChangeRow

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("modeldeck.daemon")

#: How long one cluster may take to take one change (annotation and Event).
PUBLISH_TIMEOUT_S = 10.0


def record(row: ChangeRow) -> ChangeRecord:
    return ChangeRecord(
        at=row.at,
        actor=row.actor,
        kind=row.kind,
        target=row.target,
        action=row.action,
        changed=row.changed,
        revision=str(row.revision),
    )


class Audit:
    """Reads the history; publishes each new change to its cluster (see module doc)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Callable[[], None] | None = None  # on the store while started
        self._last = 0

    def history(self, endpoint: str | None = None) -> ChangeHistory:
        """An endpoint's changes and its deployments' (deleted ones too), or everything's."""
        rows = self.engine.store.history(endpoint)
        if endpoint is not None and not rows and self.engine.store.endpoint(endpoint) is None:
            raise NotFound("endpoint", endpoint)
        return ChangeHistory(changes=[record(r) for r in rows])

    # ------------------------------------------------------------------ publishing
    def start(self) -> None:
        """Publish the changes recorded from now on (daemon start)."""
        latest = self.engine.store.history(None, limit=1)
        self._last = latest[-1].revision if latest else 0
        loop = asyncio.get_running_loop()
        # thread-safe: a store write from a worker thread wakes the task on the loop
        self._listener = lambda: loop.call_soon_threadsafe(self._wake.set)
        store = self.engine.store
        store.record_listeners = (*store.record_listeners, self._listener)
        self._task = loop.create_task(self._run())

    async def close(self) -> None:
        store = self.engine.store
        store.record_listeners = tuple(f for f in store.record_listeners if f != self._listener)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            for row in self.engine.store.history(None, limit=1000, after=self._last):
                self._last = row.revision
                try:
                    await self._publish(row)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the record stands; the cluster misses one stamp
                    log.warning("change %s of %s: not shown on its cluster: %s", row.revision,
                                row.target, exc)  # fmt: skip

    def _cluster_of(self, row: ChangeRow) -> str | None:
        if row.kind == "cluster":
            return None
        endpoint = row.target.partition("/")[0]
        ep = self.engine.store.endpoint(endpoint)
        if ep is not None:
            return ep.cluster
        compute = row.changed.get("compute")  # the endpoint's delete: the cluster it was on
        return compute[0] if compute else None

    async def _publish(self, row: ChangeRow) -> None:
        cluster = self._cluster_of(row)
        driver = self.engine.drivers.get(cluster) if cluster else None
        if not isinstance(driver, RecordsChanges):
            return
        if row.actor.endswith(f" on cluster '{cluster}'"):  # taken in from there (adopt)
            return
        endpoint, _, deployment = row.target.partition("/")
        await asyncio.wait_for(
            driver.record_change(endpoint, deployment or None, record(row)), PUBLISH_TIMEOUT_S
        )
