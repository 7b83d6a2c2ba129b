"""Fixtures of the local control plane's tests: a real daemon in a temporary MODELDECK_HOME
(tests/support/daemon.py), and helpers that create what a test needs through its workspace.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import (
    ClusterSpec,
    CodeConfiguration,
    DeploymentSpec,
    EndpointSpec,
    ModelSpec,
    RequestSettings,
    Resources,
    ResourceSet,
    to_dict,
)
from modeldeck.services.api.workspace import OperationHandle
from modeldeck.services.local.client import LocalWorkspace

from tests.support.daemon import daemon_home, fresh_home, running_home, workspace

__all__ = ["daemon_home", "fresh_home", "h", "workspace"]  # the fixtures offered here

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WAIT_S = 90.0  # only to avoid hangs


async def wait(handle: OperationHandle, timeout: float = WAIT_S) -> Any:
    return await asyncio.wait_for(handle.wait(), timeout)


def deployment(
    name: str,
    endpoint: str,
    *,
    code: str = "blue",
    model: str = "azureml:sklearn-demo:1",
    instances: int = 1,
    cpu: float = 0.5,
    memory_gb: float = 0.5,
    **kwargs: Any,
) -> DeploymentSpec:
    return DeploymentSpec(
        name=name,
        endpoint_name=endpoint,
        model=model,
        code_configuration=CodeConfiguration(
            code=str(EXAMPLES / code) if not os.path.isabs(code) else code,
            scoring_script="score.py",
        ),
        instance_count=instances,
        resources=Resources(requests=ResourceSet(cpu=cpu, memory_gb=memory_gb)),
        request_settings=RequestSettings(
            request_timeout_ms=5000, max_concurrent_requests_per_instance=4
        ),
        **kwargs,
    )


async def ensure_cluster(ws: LocalWorkspace, name: str = "myaks", **kwargs: Any) -> None:
    names = {c.name for c in await ws.list_clusters()}
    if name not in names:
        await wait(await ws.create_cluster(ClusterSpec(name=name, **kwargs)))


async def ensure_model(ws: LocalWorkspace, name: str = "sklearn-demo") -> None:
    if not await ws.list_models(name):
        await ws.create_model(ModelSpec(name=name, path=str(EXAMPLES / "model")))


async def make_endpoint(ws: LocalWorkspace, name: str, cluster: str = "myaks", **kw: Any) -> None:
    await ensure_cluster(ws, cluster)
    await ensure_model(ws)
    await wait(await ws.create_endpoint(EndpointSpec(name=name, compute=cluster, **kw)))


async def snapshot(ws: LocalWorkspace) -> dict[str, Any]:
    """The records a user can see (to check that a refused request changed nothing)."""

    def strip(items: list[Any], *drop: str) -> list[Any]:
        out = []
        for item in items:
            d = to_dict(item)
            for key in drop:
                d.pop(key, None)
            out.append(d)
        return out

    return {
        "clusters": strip(await ws.list_clusters()),
        "models": strip(await ws.list_models()),
        "endpoints": strip(await ws.list_endpoints()),
        "deployments": strip(await ws.list_deployments(), "updated_at"),
    }


def wait_until(predicate: Any, timeout: float = 30.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class Helpers:
    """The helpers above, for test modules as the fixture ``h``."""

    EXAMPLES = EXAMPLES
    wait = staticmethod(wait)
    deployment = staticmethod(deployment)
    ensure_cluster = staticmethod(ensure_cluster)
    ensure_model = staticmethod(ensure_model)
    make_endpoint = staticmethod(make_endpoint)
    snapshot = staticmethod(snapshot)
    wait_until = staticmethod(wait_until)
    running_home = staticmethod(running_home)


@pytest.fixture
def h() -> type[Helpers]:
    return Helpers
