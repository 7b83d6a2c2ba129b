r"""``online-deployment get-logs`` on Azure ML: ``getLogs`` sent as az ml sends it
(``containerType`` from ``--container``, ``tail`` as given, 0 included), and the lines
given back as the service wrote them (azure-cli-extensions,
``ml_online_deployment_get_logs``: ``print(logs.replace("\\n", "\n"))``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from modeldeck.cli.cmd_deployment import format_log_line
from modeldeck.services.api.errors import InvalidInput

SERVICE_LINES = [
    "2026-11-26 10:00:00,001 | INFO | root | Starting up app",
    "2026-11-26T10:00:01Z | ERROR | score.py | init() failed",
]


async def test_lines_print_as_the_service_wrote_them(ws: Any, seeded: Any) -> None:
    seeded.logs[("my-endpoint", "blue", "InferenceServer")] = SERVICE_LINES
    lines = await ws.get_logs("my-endpoint", "blue")
    # no second timestamp nor a replica of our own in front: what az ml prints
    assert [format_log_line(ln) for ln in lines] == SERVICE_LINES
    assert lines[0].ts < lines[1].ts  # still read for --since


async def test_escaped_line_breaks_are_line_breaks_as_az_prints_them(ws: Any, seeded: Any) -> None:
    seeded.logs[("my-endpoint", "blue", "InferenceServer")] = ["first\\nsecond"]
    lines = await ws.get_logs("my-endpoint", "blue")
    assert [ln.text for ln in lines] == ["first", "second"]


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("storage-initializer", "StorageInitializer"),
        ("inference-server", "InferenceServer"),
        ("StorageInitializer", "StorageInitializer"),  # Azure ML's own name, read too
    ],
)
async def test_container_is_sent_as_the_container_type(
    ws: Any, seeded: Any, given: str, sent: str
) -> None:
    seeded.logs[("my-endpoint", "blue", sent)] = [f"{sent} line"]
    lines = await ws.get_logs("my-endpoint", "blue", lines=7, container=given)
    assert [ln.text for ln in lines] == [f"{sent} line"]
    assert [c.body for c in seeded.calls("POST", suffix="/getLogs")] == [
        {"containerType": sent, "tail": 7}
    ]


async def test_an_asked_container_gets_no_fallback(ws: Any, seeded: Any) -> None:
    seeded.logs[("my-endpoint", "blue", "StorageInitializer")] = ["download ok"]
    assert await ws.get_logs("my-endpoint", "blue", container="inference-server") == []
    assert len(seeded.calls("POST", suffix="/getLogs")) == 1


async def test_an_unknown_container_is_refused_before_any_call(ws: Any, seeded: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        await ws.get_logs("my-endpoint", "blue", container="sidecar")
    assert info.value.field == "container"
    assert "inference-server" in str(info.value) and "storage-initializer" in str(info.value)
    assert seeded.calls("POST", suffix="/getLogs") == []


async def test_lines_0_sends_tail_0_and_shows_nothing(ws: Any, seeded: Any) -> None:
    seeded.logs[("my-endpoint", "blue", "InferenceServer")] = SERVICE_LINES
    assert await ws.get_logs("my-endpoint", "blue", lines=0) == []
    assert [c.body for c in seeded.calls("POST", suffix="/getLogs")] == [
        {"containerType": "InferenceServer", "tail": 0}
    ]


async def _follow(
    ws: Any, seeded: Any, lines: int, before: list[str], after: list[str]
) -> list[str]:
    key = ("my-endpoint", "blue", "InferenceServer")
    seeded.logs[key] = list(before)
    got: list[str] = []

    async def read() -> None:
        async for line in ws.stream_logs("my-endpoint", "blue", lines=lines, follow=True):
            got.append(line.text)
            if line.text == after[-1]:
                return

    task = asyncio.create_task(read())
    for _ in range(100):  # the first answer is in, and a poll or two after it
        if len(seeded.calls("POST", suffix="/getLogs")) >= 2:
            break
        await asyncio.sleep(0.01)
    seeded.logs[key] = [*before, *after]
    await asyncio.wait_for(task, 10)
    return got


async def test_follow_with_lines_0_shows_only_new_lines(ws: Any, seeded: Any) -> None:
    got = await _follow(ws, seeded, 0, ["old 1", "old 2"], ["new 1", "new 2"])
    assert got == ["new 1", "new 2"]


async def test_follow_on_a_log_longer_than_lines_repeats_nothing(ws: Any, seeded: Any) -> None:
    before = [f"line {i}" for i in range(300)]
    got = await _follow(ws, seeded, 5, before, ["new 1"])
    assert got == [*before[-5:], "new 1"]
