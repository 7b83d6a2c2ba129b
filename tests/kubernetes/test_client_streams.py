"""Watches ended early (a change seen, a follower cancelled) never break other requests.

The control plane follows each attached cluster with watches that end at the first change
while list/show read the same cluster through the same connection pool. A stream's
connection must not be handed to another request while the stream's thread still reads
it: that request would fail as if the cluster were down ("Connection aborted").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.drivers.kubernetes.driver import KubernetesDriver
from modeldeck.services.drivers.kubernetes.errors import Call

from .conftest import NS

WATCH_CYCLES = 120  # bounded: a few seconds
SECRETS = f"/api/v1/namespaces/{NS}/secrets"


def secret(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"churn-{i % 4}",
            "namespace": NS,
            "labels": {"app.kubernetes.io/managed-by": "modeldeck"},
        },
        "data": {"n": ""},
    }


async def test_watches_ended_early_leave_the_connection_pool_sound(
    kubeconfig: Path,
    make_driver: Callable[..., KubernetesDriver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="urllib3")
    # generous time-outs: only against hangs on a loaded machine
    driver = make_driver(request_timeout=(30.0, 60.0), attempts=1)
    api = driver.api
    done = asyncio.Event()
    lists = 0

    async def follower(offset: int) -> None:
        for i in range(WATCH_CYCLES // 2):
            rvs = (await driver.list_state(secrets=True))["resource_versions"]
            assert rvs, "the lists carry resourceVersions"
            # some watches end at a change, others are cancelled while they wait
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(driver.wait_for_change(rvs, 60), 0.01 * ((i + offset) % 5))

    async def lister() -> None:
        nonlocal lists
        while not done.is_set():
            await driver.list_state(secrets=True)
            lists += 1

    async def churn() -> None:
        i = 0
        while not done.is_set():
            i += 1
            body = secret(i)
            name = body["metadata"]["name"]
            await api.request(
                "PUT" if i > 4 else "POST",
                f"{SECRETS}/{name}" if i > 4 else SECRETS,
                Call("update" if i > 4 else "create", "secrets", NS, name),
                body=body,
            )
            await asyncio.sleep(0.005)

    background = [asyncio.create_task(f()) for f in (lister, lister, churn)]
    try:
        await asyncio.gather(follower(0), follower(2))
    finally:
        done.set()
        results = await asyncio.gather(*background, return_exceptions=True)
    for result in results:  # a list or a write that failed fails the test, with its message
        if isinstance(result, BaseException):
            raise result
    assert lists > 0
    full = [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()]
    assert full == [], "a connection went back to the pool twice"
