"""WorkspaceTarget over Azure ML (the fake ARM server on loopback, tests/support/fake_arm.py):
the runner's cumulative counters added up from Azure Monitor's one-minute grains (its live
figures count the last minute only), and a traffic write carrying the etag read."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from modeldeck.services.api.errors import Conflict
from modeldeck.services.rollout.workspace_target import WorkspaceTarget

from tests.azureml.conftest import credential, fake, seeded, ws

__all__ = ["credential", "fake", "seeded", "ws"]  # the fixtures used here


def minute(t: float, deployment: str, ok: int, errors: int) -> list[Any]:
    """Azure Monitor's RequestsPerMinute of one minute, split by status class."""
    return [
        (t, deployment, "2xx", {"RequestsPerMinute": ok}),
        (t, deployment, "5xx", {"RequestsPerMinute": errors}),
    ]


def counts(report: Any) -> dict[str, tuple[int, int]]:
    return {s.deployment: (s.requests_total, s.errors_total) for s in report.samples}


async def test_azure_counts_add_up_from_the_first_read_and_never_go_down(
    ws: Any, seeded: Any
) -> None:
    # the reads must fall in one minute, past its first seconds (a metrics call's timespan
    # ends at a whole second: before it, this minute's grain is not in it)
    now = time.time()
    if not 2 <= now % 60 <= 55:
        time.sleep((62 - now % 60) % 60)
        now = time.time()
    this_minute = math.floor(now / 60) * 60
    # ten minutes before the target's first read: not part of any window of it
    seeded.metric_minutes["my-endpoint"] = [
        row for k in range(1, 11) for row in minute(this_minute - 60 * k, "blue", 60, 1)
    ]
    target = WorkspaceTarget(ws, poll_s=30.0, cumulative=False)
    assert counts(await target.figures("my-endpoint")) == {"blue": (0, 0), "green": (0, 0)}
    # this minute's requests land (Azure Monitor ingests them)
    seeded.metric_minutes["my-endpoint"] += minute(this_minute, "blue", 50, 0)
    seeded.metric_minutes["my-endpoint"] += minute(this_minute, "green", 7, 3)
    assert counts(await target.figures("my-endpoint")) == {"blue": (50, 0), "green": (10, 3)}
    # more of the same minute: the grain grows, it is not counted twice
    seeded.metric_minutes["my-endpoint"] += minute(this_minute, "green", 5, 0)
    first = counts(await target.figures("my-endpoint"))
    assert first == {"blue": (50, 0), "green": (15, 3)}
    # the minutes before the first read fall out of Azure Monitor's hour: nothing goes down
    seeded.metric_minutes["my-endpoint"] = [
        r for r in seeded.metric_minutes["my-endpoint"] if r[0] >= this_minute
    ]
    assert counts(await target.figures("my-endpoint")) == first
    # the local workspace's counters are cumulative already: passed as they are
    assert WorkspaceTarget(ws).cumulative


async def test_a_traffic_write_carries_the_etag_read_and_reads_the_endpoint_back(
    ws: Any, seeded: Any
) -> None:
    target = WorkspaceTarget(ws, poll_s=30.0)
    before = await target.endpoint("my-endpoint")
    after = await target.set_traffic(
        "my-endpoint",
        {"blue": 90, "green": 10},
        {},
        if_revision=before.revision,
        why="rollout r1: step 1/3, green 10%",
    )
    assert after.traffic == {"blue": 90, "green": 10}
    assert after.revision and after.revision != before.revision
    with pytest.raises(Conflict):
        await target.set_traffic(
            "my-endpoint",
            {"blue": 50, "green": 50},
            {},
            if_revision=before.revision,
            why="rollout r1: step 2/3, green 50%",
        )
    assert (await target.endpoint("my-endpoint")).traffic == {"blue": 90, "green": 10}
    assert {d.name for d in await target.deployments("my-endpoint")} == {"blue", "green"}
