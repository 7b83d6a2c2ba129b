"""Helpers and fixtures of the local data plane's tests (replica, supervisor, gateway, pool).

A test module imports this module and re-exports the fixtures it uses::

    from tests.support import dataplane as dp

    gateway = dp.gateway
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from modeldeck.services.api.domain import (
    ClusterSpec,
    CodeConfiguration,
    DeploymentSpec,
    Model,
    Probe,
    RequestSettings,
    ScaleSettings,
)
from modeldeck.services.drivers.base import DeploymentRuntime, EndpointAuth, EndpointRoute
from modeldeck.services.drivers.pool import PoolDriver
from modeldeck.services.local.dataplane.gateway import Gateway
from modeldeck.services.local.dataplane.logstore import LogStore
from modeldeck.services.local.dataplane.supervisor import (
    Replica,
    ReplicaConfig,
    ReplicaState,
    Supervisor,
)

from .polling import eventually


def replica_argv(code: Path, model_dir: Path, *extra: str) -> list[str]:
    """The command line of one bare replica (the scoring host run as the supervisor runs it)."""
    return [
        sys.executable,
        "-m",
        "modeldeck.services.local.dataplane.replica",
        "--code-dir",
        str(code),
        "--scoring-script",
        "score.py",
        "--model-dir",
        str(model_dir),
        *extra,
    ]


REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
PRIMARY = "primary-key-0123456789abcdefghijklmnopqrstuv"
SECONDARY = "secondary-key-0123456789abcdefghijklmnopqrst"
SECRET = "token-secret-0123456789abcdefghijklmnopqrstuv"
METRICS_TOKEN = "metrics-token-0123456789abcdefghijklmnopqrs"
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}

#: a scoring script whose answer names its version; "sleep" in the body sleeps that long
VERSIONED = """
import json, logging, os, time
VERSION = {version!r}
def init():
    logging.getLogger("score").info("init of %s, model dir %s", VERSION, os.listdir(os.environ["AZUREML_MODEL_DIR"]))
def run(raw_data):
    data = json.loads(raw_data or "{{}}")
    if data.get("sleep"):
        time.sleep(float(data["sleep"]))
    if data.get("fail"):
        raise ValueError("asked to fail")
    return {{"version": VERSION, "pid": os.getpid()}}
"""


def write_code(root: Path, name: str, source: str) -> Path:
    """A code folder ``root/name`` with ``score.py`` holding ``source``."""
    code = root / name
    code.mkdir(parents=True, exist_ok=True)
    (code / "score.py").write_text(textwrap.dedent(source))
    return code


def versioned(root: Path, name: str, version: str | None = None) -> Path:
    return write_code(root, name, VERSIONED.format(version=version or name))


def model_copy(root: Path) -> Model:
    """The examples' model folder, copied as the workspace copies it."""
    dest = root / "models" / "sklearn-demo" / "1" / "model"
    if not dest.exists():
        shutil.copytree(EXAMPLES / "model", dest)
    return Model(name="sklearn-demo", version=1, path=str(dest))


def runtime(
    root: Path,
    name: str,
    code: Path,
    *,
    endpoint: str = "ep",
    instance_count: int = 1,
    request: RequestSettings | None = None,
    scale: ScaleSettings | None = None,
    env: dict[str, str] | None = None,
    probe: Probe | None = None,
    model: Model | None = None,
) -> DeploymentRuntime:
    spec = DeploymentSpec(
        name=name,
        endpoint_name=endpoint,
        model="azureml:sklearn-demo:1",
        code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
        instance_count=instance_count,
        request_settings=request
        or RequestSettings(request_timeout_ms=10000, max_concurrent_requests_per_instance=4),
        scale_settings=scale or ScaleSettings(),
        environment_variables=env or {},
        readiness_probe=probe,  # None: the pool's own (supervisor.LOCAL_PROBE)
        liveness_probe=probe,
    )
    return DeploymentRuntime(spec=spec, model=model or model_copy(root), code_dir=str(code))


def route(
    name: str = "ep",
    traffic: dict[str, int] | None = None,
    *,
    mode: str = "none",
    mirror: dict[str, int] | None = None,
    primary: str = PRIMARY,
) -> EndpointRoute:
    return EndpointRoute(
        name=name,
        auth=EndpointAuth(
            mode=mode, primary_key=primary, secondary_key=SECONDARY, token_secret=SECRET
        ),
        traffic=traffic or {},
        mirror_traffic=mirror or {},
    )


def model_dir_for(root: Path) -> Path:
    """An AZUREML_MODEL_DIR holding the examples' model folder under its base name."""
    model = model_copy(root)
    d = root / "amd"
    d.mkdir(exist_ok=True)
    link = d / "model"
    if not link.exists():
        link.symlink_to(model.path, target_is_directory=True)
    return d


async def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` (sync or async) until true; fail after ``timeout`` (only against hangs)."""
    await eventually(predicate, timeout=timeout, what=what)


async def start_replica(
    sup: Supervisor,
    root: Path,
    code: Path,
    *,
    name: str = "r-0",
    deployment: str = "dep",
    max_concurrency: int = 4,
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> Replica:
    config = ReplicaConfig(
        endpoint="ep",
        deployment=deployment,
        name=name,
        code_dir=str(code),
        scoring_script="score.py",
        model_dir=str(model_dir_for(root)),
        environment=env or {},
        max_concurrency=max_concurrency,
    )
    replica = sup.create(config)
    replica.start()
    if wait:
        await wait_for(
            lambda: replica.state is ReplicaState.READY or replica.failures > 0,
            what=f"{name} ready",
        )
        assert replica.ready, replica.error
    return replica


@pytest.fixture
async def supervisor(tmp_path: Path) -> AsyncIterator[Supervisor]:
    sup = Supervisor(
        LogStore(tmp_path / "logs"),
        backoff_base=0.2,
        backoff_cap=2.0,
        stop_grace=3.0,
        socket_dir=tmp_path / "sock",
    )
    yield sup
    await sup.close()
    sup.logstore.close()


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    gw = Gateway("127.0.0.1", 0, metrics_token=METRICS_TOKEN)
    await gw.start()
    yield gw
    await gw.close()


@pytest.fixture
async def pool(tmp_path: Path, gateway: Gateway) -> AsyncIterator[PoolDriver]:
    driver = PoolDriver(
        ClusterSpec(name="pool1"),
        gateway=gateway,
        data_dir=tmp_path / "pooldata",
        backoff_base=0.2,
        backoff_cap=2.0,
        stop_grace=3.0,
    )
    yield driver
    await driver.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


def direct(replica: Replica) -> aiohttp.ClientSession:
    """A session straight to a replica's Unix socket (the gateway's way in); URLs
    ``http://replica/...``. Use as ``async with dp.direct(r) as s``."""
    assert replica.socket_path is not None
    return aiohttp.ClientSession(
        connector=aiohttp.UnixConnector(path=replica.socket_path),
        timeout=aiohttp.ClientTimeout(total=30),
    )
