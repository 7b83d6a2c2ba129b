"""Waiting until a condition holds, bounded (the bound only guards against a hang)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

WAIT_S = 60.0  # only to avoid hangs, never asserted on


async def eventually(
    check: Callable[[], Awaitable[Any] | Any],
    pilot: Any = None,
    timeout: float = WAIT_S,
    what: str | None = None,
) -> None:
    """Poll ``check`` (sync or async) until it holds, letting the app (``pilot``) or the
    event loop run meanwhile; fail after ``timeout`` seconds, naming ``what`` or the check."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            name = what or getattr(check, "__name__", check)
            raise AssertionError(f"condition not met within {timeout:g} s: {name}")
        if pilot is not None:
            await pilot.pause(0.05)
        else:
            await asyncio.sleep(0.05)
