"""The operation tracker: long changes run as asyncio tasks recorded as :class:`Operation`\\ s.

A request that starts a long change (a rollout, a deletion) gets its operation at once;
the work runs in a task, reports progress, and ends Succeeded or Failed with its typed
error. Clients long-poll an operation (:meth:`Operations.wait`); finished operations stay
in the store for a while. Background tasks that are not operations (the environment
pruner, the cluster followers) are spawned here too, so the daemon's stop ends them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

from ...api.domain import Operation, OperationStatus
from ...api.errors import BackendError, ModeldeckError, NotFound
from ...drivers.base import Progress
from .store.db import Store

log = logging.getLogger("modeldeck.daemon")

#: the body of an operation: it reports progress, raises a typed error when it fails
Work = Callable[[Progress], Awaitable[None]]


def message_of(exc: BaseException) -> str:
    """What an operation (or a record's ``error``) says about ``exc``."""
    if isinstance(exc, ModeldeckError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def _error_dict(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ModeldeckError):
        return exc.to_dict()
    return BackendError(f"{type(exc).__name__}: {exc}").to_dict()


class Operations:
    """The operations of this daemon (recent ones in memory, all in the store) and the
    tasks that run them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._ops: dict[str, Operation] = {}
        self._revs: dict[str, int] = {}  # operation id -> changes so far
        self._events: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, kind: str, target: str, work: Work) -> Operation:
        """Run ``work`` as a new operation; the operation, Running."""
        op = Operation(
            id=uuid.uuid4().hex,
            kind=kind,
            target=target,
            status=OperationStatus.RUNNING,
            message="started",
            started_at=time.time(),
        )
        self._ops[op.id] = op
        self.store.save_operation(op)

        def progress(fraction: float, message: str) -> None:
            cur = self._ops.get(op.id)
            if cur is not None and not cur.done:
                frac = max(cur.progress, min(1.0, max(0.0, float(fraction))))
                self._ops[op.id] = replace(cur, progress=frac, message=message)
                self._touch(op.id)

        async def run() -> None:
            try:
                await work(progress)
            except asyncio.CancelledError:
                self._finish(op.id, BackendError("interrupted: the control plane is stopping"))
                raise
            except Exception as exc:
                if not isinstance(exc, ModeldeckError):
                    log.exception("%s %s failed", kind, target)
                else:
                    log.info("%s %s failed: %s", kind, target, exc.message)
                self._finish(op.id, exc)
            else:
                self._finish(op.id, None)

        self.spawn(run(), f"{kind} {target}")
        return op

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` in the background until it ends or :meth:`close` cancels it."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _finish(self, op_id: str, exc: BaseException | None) -> None:
        cur = self._ops[op_id]
        if exc is None:
            done = replace(
                cur,
                status=OperationStatus.SUCCEEDED,
                progress=1.0,
                message="done",
                finished_at=time.time(),
            )
        else:
            done = replace(
                cur,
                status=OperationStatus.FAILED,
                message=message_of(exc),
                error=_error_dict(exc),
                finished_at=time.time(),
            )
        self._ops[op_id] = done
        self._touch(op_id)
        if exc is None:  # the daemon's log is the record of what changed, and when
            log.info("%s %s: succeeded", cur.kind, cur.target)
        with contextlib.suppress(Exception):
            self.store.save_operation(done)
        if len(self._ops) > 500:
            for key in [k for k, v in self._ops.items() if v.done][:250]:
                del self._ops[key]
                self._revs.pop(key, None)

    def _touch(self, op_id: str) -> None:
        """An operation changed: wake whoever waits for it (long polls)."""
        self._revs[op_id] = self._revs.get(op_id, 0) + 1
        event = self._events.pop(op_id, None)
        if event is not None:
            event.set()

    async def wait(self, op_id: str, after: int, timeout: float) -> tuple[Operation, int]:
        """The operation once it changed past revision ``after`` (or after ``timeout``)."""
        op = self.get(op_id)
        rev = self._revs.get(op_id, 0)
        if op.done or rev > after or timeout <= 0:
            return op, rev
        event = self._events.setdefault(op_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), min(timeout, 30.0))
        return self.get(op_id), self._revs.get(op_id, 0)

    def done(self, kind: str, target: str, message: str = "done") -> Operation:
        """An operation that finished inside the request (quick changes)."""
        now = time.time()
        op = Operation(
            id=uuid.uuid4().hex,
            kind=kind,
            target=target,
            status=OperationStatus.SUCCEEDED,
            progress=1.0,
            message=message,
            started_at=now,
            finished_at=now,
        )
        self._ops[op.id] = op
        self.store.save_operation(op)
        log.info("%s %s: %s", kind, target, message)
        return op

    def get(self, op_id: str) -> Operation:
        op = self._ops.get(op_id) or self.store.operation(op_id)
        if op is None:
            raise NotFound("operation", op_id, fix="operations are kept for a while after they end")
        return op

    def list_all(self) -> list[Operation]:
        stored = {op.id: op for op in self.store.operations()}
        stored.update(self._ops)
        return sorted(stored.values(), key=lambda o: o.started_at or 0, reverse=True)

    async def close(self) -> None:
        """Cancel every task (operations end Failed: interrupted) and wait for them."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
