"""``since`` on Azure ML: ``getLogs`` has only ``tail``, so the lines are filtered here by the
timestamp they start with; a line without one is kept (its time is unknown)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

KEY = ("my-endpoint", "blue", "InferenceServer")
MOMENT = datetime(2026, 11, 26, 10, 0, 2, tzinfo=UTC).timestamp()


async def test_get_logs_since_filters_by_the_line_timestamps(ws: Any, seeded: Any) -> None:
    seeded.logs[KEY] = [f"2026-11-26T10:00:0{i}Z INFO line {i}" for i in range(5)] + [
        "a line without a time"
    ]
    lines = await ws.get_logs("my-endpoint", "blue", lines=10, since=MOMENT)
    assert [ln.text[-6:] for ln in lines] == ["line 2", "line 3", "line 4", "a time"]
    # getLogs itself has no since: the tail asked for is what was given
    assert seeded.calls("POST", "/getLogs")[-1].body == {
        "containerType": "InferenceServer",
        "tail": 10,
    }
    everything = await ws.get_logs("my-endpoint", "blue", lines=10)
    assert len(everything) == 6


async def test_stream_logs_since_skips_older_lines(ws: Any, seeded: Any) -> None:
    seeded.logs[KEY] = ["2026-11-26T10:00:00Z old", "2026-11-26T10:00:03Z new"]
    got: list[str] = []

    async def read() -> None:
        stream = ws.stream_logs("my-endpoint", "blue", lines=10, follow=False, since=MOMENT)
        async for line in stream:
            got.append(line.text)

    await asyncio.wait_for(read(), 10)
    assert got == ["2026-11-26T10:00:03Z new"]
