"""Long polls on the workspace's revision: ``GET /v1/watch?after=REV&wait=S`` answers as
soon as a change past ``REV`` is recorded (any endpoint, deployment or cluster: the
``changes`` of ``store/history.py``), or after ``S`` seconds with the revision as it is.

A dashboard awaits this instead of waiting for its next poll, so what another operator
changed shows within the time of one fetch (bench/propagation.py). Status alone (a
replica turning ready) takes no revision: the dashboards' polls still show that.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

MAX_WAIT_S = 30.0


class Changes:
    def __init__(self, store: Any) -> None:
        self.store = store
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Listen to the store (on the control plane's event loop: writes come from threads)."""
        self._loop = asyncio.get_running_loop()
        self.store.record_listeners = (*self.store.record_listeners, self._recorded)

    def close(self) -> None:
        self.store.record_listeners = tuple(
            f for f in self.store.record_listeners if f != self._recorded
        )

    def _recorded(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, after: int, timeout: float) -> int:
        """The revision once it is past ``after``, or as it is after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, min(timeout, MAX_WAIT_S))
        while True:
            revision = self.store.revision()
            left = deadline - loop.time()
            if revision > after or left <= 0:
                return revision
            # the store tells its listeners once a change is committed: then read again
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), left)
