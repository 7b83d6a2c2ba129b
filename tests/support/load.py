"""Steady scoring traffic through the real gateway, recorded request by request: the load of
the rollout tests (tests/local/test_rollout_acceptance.py) and of bench/rollout_analysis.py.

Bounded: it stops after ``max_requests`` requests or ``max_seconds`` seconds, whichever comes
first, and sends only to a loopback scoring URI (127.0.0.1, ::1, localhost). Each answer is
recorded with the wall-clock time it was sent (``time.time()``, the clock the control plane
stamps its records with), its status (0: no answer: the connection was refused or dropped,
as while the daemon is down) and the ``azureml-model-deployment`` header (the deployment
that served it).

    async with Load(endpoint.scoring_uri, keys.primaryKey, rate=40) as load:
        ...
    failed = [r for r in load.records if r.sent_at > t and r.failed]
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

LOOPBACK = ("127.0.0.1", "::1", "localhost")
BODY = b'{"data": [[1, 2, 3, 4]]}'


@dataclass(frozen=True)
class Answer:
    sent_at: float  # epoch seconds
    done_at: float
    status: int  # 0: no answer
    deployment: str  # the azureml-model-deployment header; "" without one

    @property
    def failed(self) -> bool:
        return self.status != 200


class Load:
    """``rate`` requests a second, at most ``concurrency`` in flight (below a deployment's
    ``max_concurrent_requests_per_instance``, so the gateway never queues nor answers 429)."""

    def __init__(
        self,
        uri: str,
        key: str,
        *,
        rate: float = 40.0,
        concurrency: int = 3,
        max_requests: int = 20_000,
        max_seconds: float = 120.0,
        timeout_s: float = 10.0,
    ) -> None:
        host = urlsplit(uri).hostname
        if host not in LOOPBACK:
            raise ValueError(f"the load is sent to loopback only, not to {host!r}")
        self.uri = uri
        self.key = key
        self.rate = rate
        self.concurrency = concurrency
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.timeout_s = timeout_s
        self.records: list[Answer] = []
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Load:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Stop sending; wait for the answers in flight."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def since(self, t: float) -> list[Answer]:
        """The answers to requests sent after ``t`` (epoch seconds)."""
        return [r for r in self.records if r.sent_at > t]

    async def wait_for(self, n: int, timeout: float = 60.0) -> None:
        """Until ``n`` answers are recorded in all (bounded: only against a hang)."""
        deadline = time.monotonic() + timeout
        while len(self.records) < n:
            if time.monotonic() > deadline or not self.running:
                raise AssertionError(f"{len(self.records)} answers, not {n}, within {timeout:g} s")
            await asyncio.sleep(0.05)

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        slots = asyncio.Semaphore(self.concurrency)
        pending: set[asyncio.Task[None]] = set()
        start = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

            async def one() -> None:
                sent_at = time.time()
                try:
                    async with session.post(self.uri, data=BODY, headers=headers) as resp:
                        await resp.read()
                        status = resp.status
                        deployment = resp.headers.get("azureml-model-deployment", "")
                except (TimeoutError, aiohttp.ClientError, OSError):
                    status, deployment = 0, ""
                finally:
                    slots.release()
                self.records.append(Answer(sent_at, time.time(), status, deployment))

            due = start
            try:
                while self.sent < self.max_requests:
                    now = time.monotonic()
                    if now - start > self.max_seconds:
                        break
                    if due > now:
                        await asyncio.sleep(due - now)
                    due = max(due, now) + 1 / self.rate  # no burst to catch up after a stall
                    await slots.acquire()
                    self.sent += 1
                    task = asyncio.create_task(one())
                    pending.add(task)
                    task.add_done_callback(pending.discard)
            finally:
                if pending:
                    await asyncio.wait(pending, timeout=self.timeout_s + 1)
