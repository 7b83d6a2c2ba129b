"""Retry and backoff for HTTP calls to Azure: one policy, one loop.

* :class:`RetryPolicy`: how many retries, exponential backoff with full jitter (uniform in
  ``[0, min(cap, base * 2**attempt)]``), and the longest ``Retry-After`` honoured;
* :func:`parse_retry_after`: a ``Retry-After`` header, delta-seconds or an HTTP date;
* :func:`send_with_retries`: sends until an answer that is not retried. 429 is retried
  for any request, transient 5xx (500, 502, 503, 504) and transport errors (time-outs
  included) only for a request that is safe to repeat; a status wait is what
  ``Retry-After`` says, else the backoff. When retries run out the last answer is
  returned, or the last transport error raised, for the caller to turn into its own
  typed error.

Used by the ARM client (``azureml/arm.py``, also Azure Monitor's batch API) and by the
blob uploads of models and code (``azureml/storage.py``).

Why not azure-core's ``AsyncRetryPolicy`` (azure-identity brings azure-core): it runs
inside an azure-core pipeline over its own transports (aiohttp, requests; azure-core has
no httpx transport), so our httpx clients, with their in-flight GET sharing and the
refusal to send a token over plain http before any connection, would need an adapter.
And it retries differently from what we promise and test: no jitter (first retry at
once, then ``factor * 2**(n-1)``), any answer >= 400 that carries ``Retry-After`` and
POST on 500/503/504 are retried, a malformed ``Retry-After`` raises; its bearer-token
policy also refuses the plain-http loopback server our tests run ARM on.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

#: answers worth another try: throttling and the transient server errors
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class RetryPolicy:
    max_retries: int = 4
    backoff_base: float = 0.5  # seconds; doubles per attempt
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0  # never wait longer than this on one Retry-After

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * (2**attempt)))

    def retries(self, status: int, attempt: int, *, safe: bool) -> bool:
        """Whether an answer with ``status`` after ``attempt`` retries gets another try."""
        return status in RETRY_STATUSES and attempt < self.max_retries and (status == 429 or safe)

    def wait(self, attempt: int, retry_after: str | None) -> float:
        """Seconds before the next try: ``Retry-After`` (capped), else the backoff."""
        delay = parse_retry_after(retry_after)
        if delay is None:
            delay = self.backoff(attempt)
        return min(delay, self.max_retry_after)


async def send_with_retries(
    policy: RetryPolicy,
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    safe: bool,
    waited: Callable[[int, float], None] | None = None,
) -> httpx.Response:
    """``send()`` until its answer is not retried (see the module's docstring).

    ``safe``: the request may be repeated (idempotent, or a read sent as POST).
    ``waited(status, seconds)`` hears each wait (status 0: a transport error).
    """
    attempt = 0
    while True:
        try:
            resp = await send()
        except httpx.TransportError:
            if not safe or attempt >= policy.max_retries:
                raise
            status, delay = 0, policy.backoff(attempt)
        else:
            status = resp.status_code
            if not policy.retries(status, attempt, safe=safe):
                return resp
            delay = policy.wait(attempt, resp.headers.get("Retry-After"))
        if waited is not None:
            waited(status, delay)
        await asyncio.sleep(delay)
        attempt += 1
