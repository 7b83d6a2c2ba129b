"""When a screen is drawn: at most once per 1/60 s, counted from the frame before.

Textual draws a screen on a timer (1/60 s, paused while nothing changed). Its Timer, after
a tick that came late (every frame that follows a pause: a key, a batch of log lines,
the metrics' tick), skips to the tick after the next one: for 17 to 33 ms after each
frame nothing is drawn, whatever changed. With lines streaming the log view is drawn
ten times a second, so a key pressed in a third of the time waited for that window
before its frame (bench/tui_keypress.py's app traced, key to frame written, two runs
each on a loaded machine: p50 12-17 -> 6-9 ms, p95 55-76 -> 17-43 ms). This timer keeps
the bound (a frame starts at least 1/60 s after the one before) and waits for nothing
else: a change after a quiet moment is drawn at once, as in a bare Textual app, whose
screen rarely draws.

ModeldeckScreen uses it for its frames (``_update_timer``, Textual 8.2's name for the
screen's timer; pinned in pyproject).
"""

from __future__ import annotations

import asyncio
import time

from textual.timer import EventTargetGone, Timer


class FrameTimer(Timer):
    """A screen's frame timer (paused and resumed by Textual's Screen as its own)."""

    async def _run(self) -> None:
        interval = self._interval
        last = float("-inf")
        count = 0
        while True:
            await self._active.wait()  # paused until something on the screen changed
            self._reset = False
            wait = last + interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            last = time.monotonic()
            count += 1
            try:
                await self._tick(next_timer=last, count=count)
            except EventTargetGone:
                break
