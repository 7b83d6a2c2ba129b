"""Fixtures of the dashboard's tests.

Flow tests drive the real app (``run_test``) against a real local workspace: the
control plane daemon is started through its real auto-start path in a temporary
MODELDECK_HOME and stopped after the module.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import (
    ClusterSpec,
    CodeConfiguration,
    DeploymentSpec,
    EndpointPatch,
    EndpointSpec,
    ModelSpec,
    RequestSettings,
    Resources,
    ResourceSet,
)
from modeldeck.services.local.client import LocalWorkspace

from tests.support.daemon import Home, daemon_home, workspace
from tests.support.polling import eventually

__all__ = ["daemon_home", "h", "other", "tui_home", "workspace"]  # the fixtures offered here

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WAIT_S = 60.0  # only to avoid hangs, never asserted on


@pytest.fixture(scope="module")
def tui_home(daemon_home: Home) -> Path:
    """A MODELDECK_HOME with a running control plane for one test module."""
    return daemon_home.path


@pytest.fixture
async def other(workspace: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """Another operator: same account, logged in from 10.9.8.7."""
    monkeypatch.setenv("SSH_CONNECTION", "10.9.8.7 52100 10.0.0.1 22")
    ws = LocalWorkspace(autostart=False, poll_interval=0.05)
    ws._http()  # names itself now, while SSH_CONNECTION says so
    monkeypatch.delenv("SSH_CONNECTION")
    try:
        yield ws
    finally:
        await ws.close()


def deployment_spec(name: str, endpoint: str, code: str = "blue", **kwargs: Any) -> DeploymentSpec:
    return DeploymentSpec(
        name=name,
        endpoint_name=endpoint,
        model="azureml:sklearn-demo:1",
        code_configuration=CodeConfiguration(code=str(EXAMPLES / code), scoring_script="score.py"),
        resources=Resources(requests=ResourceSet(cpu=0.25, memory_gb=0.25)),
        request_settings=RequestSettings(
            request_timeout_ms=5000, max_concurrent_requests_per_instance=4
        ),
        **kwargs,
    )


async def ensure_cluster(ws: Any, name: str = "pool-a") -> None:
    if name not in {c.name for c in await ws.list_clusters()}:
        await asyncio.wait_for((await ws.create_cluster(ClusterSpec(name=name))).wait(), WAIT_S)


async def ensure_model(ws: Any) -> None:
    if not await ws.list_models("sklearn-demo"):
        await ws.create_model(ModelSpec(name="sklearn-demo", path=str(EXAMPLES / "model")))


async def make_endpoint(ws: Any, name: str, deployments: dict[str, int], **kwargs: Any) -> None:
    """An endpoint with deployments (name -> traffic %), ready to serve."""
    await ensure_cluster(ws)
    await ensure_model(ws)
    await asyncio.wait_for(
        (await ws.create_endpoint(EndpointSpec(name=name, compute="pool-a", **kwargs))).wait(),
        WAIT_S,
    )
    for dep in deployments:
        code = "green" if dep.startswith("green") else "blue"
        await asyncio.wait_for(
            (await ws.create_deployment(deployment_spec(dep, name, code))).wait(), WAIT_S
        )
    if any(deployments.values()):
        await asyncio.wait_for(
            (await ws.update_endpoint(name, EndpointPatch(traffic=deployments))).wait(), WAIT_S
        )


async def select_row(app: Any, pilot: Any, key: str) -> Any:
    """Wait until the current view's table shows ``key``, then put the cursor on it."""
    from modeldeck.tui.widgets.resource_table import ResourceTable

    grid = app.screen.query_one("#table", ResourceTable)
    await eventually(lambda: key in grid.shown_keys, pilot)
    grid.move_cursor(row=grid.get_row_index(key))
    return grid


class Helpers:
    """The helpers above, for test modules as the fixture ``h``."""

    EXAMPLES = EXAMPLES
    deployment_spec = staticmethod(deployment_spec)
    ensure_cluster = staticmethod(ensure_cluster)
    ensure_model = staticmethod(ensure_model)
    make_endpoint = staticmethod(make_endpoint)
    eventually = staticmethod(eventually)
    select_row = staticmethod(select_row)


@pytest.fixture
def h() -> type[Helpers]:
    return Helpers
