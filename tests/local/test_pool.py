"""The pool driver: deployments as real processes behind the real gateway."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import aiohttp
import psutil
import pytest
from modeldeck import __version__
from modeldeck.services.api.domain import ClusterSpec, RequestSettings, ScaleSettings
from modeldeck.services.api.errors import BackendError, InvalidInput, NotFound
from modeldeck.services.drivers.pool import PoolDriver
from modeldeck.services.local.dataplane.gateway import Gateway
from modeldeck.services.local.dataplane.logstore import LogStore

from tests.support import dataplane as dp

gateway = dp.gateway
pool = dp.pool
http = dp.http

BROKEN_INIT = """
import json
def init():
    json.loads("{not json")
def run(raw_data):
    return raw_data
"""


class Progress:
    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []

    def __call__(self, fraction: float, message: str) -> None:
        self.events.append((fraction, message))


async def _post(
    http: aiohttp.ClientSession,
    url: str,
    body: object = None,
    headers: dict[str, str] | None = None,
):
    async with http.post(url, data=json.dumps(body or {}).encode(), headers=headers or {}) as resp:
        return (
            resp.status,
            await resp.json(content_type=None),
            resp.headers.get("azureml-model-deployment"),
        )


async def test_capacity_and_scoring_uri(pool: PoolDriver, gateway: Gateway) -> None:
    cap = await pool.capacity()
    assert (cap.nodes, cap.vcpus, cap.memory_gb, cap.version) == (3, 12.0, 42.0, __version__)
    assert (
        pool.scoring_uri("my-endpoint")
        == f"http://127.0.0.1:{gateway.port}/api/v1/endpoint/my-endpoint/score"
    )
    odd = PoolDriver(
        ClusterSpec(name="odd", vm_size="Standard_Nope"),
        gateway=gateway,
        data_dir=Path("/nonexistent"),
    )
    with pytest.raises(InvalidInput):
        await odd.capacity()
    await odd.close()


async def test_examples_deploy_and_serve(
    tmp_path: Path, pool: PoolDriver, http: aiohttp.ClientSession, examples: Path
) -> None:
    progress = Progress()
    await pool.apply_endpoint(dp.route("my-endpoint", {"blue": 100}, mode="key"))
    rt = dp.runtime(tmp_path, "blue", examples / "blue", endpoint="my-endpoint")
    await pool.apply_deployment("my-endpoint", rt, progress)
    assert progress.events[-1] == (1.0, "1/1 replicas ready")
    assert [f for f, _ in progress.events] == sorted(f for f, _ in progress.events)

    status = await pool.deployment_status("my-endpoint", "blue")
    assert (status.ready_replicas, status.desired_replicas, status.error) == (1, 1, None)

    sample = json.loads((examples / "sample-request.json").read_text())
    code, body, who = await _post(
        http, pool.scoring_uri("my-endpoint"), sample, {"Authorization": f"Bearer {dp.PRIMARY}"}
    )
    assert code == 200
    assert body == {"predictions": [11.1, 24.85], "version": "blue"}
    assert who == "blue"

    logs = await pool.read_logs("my-endpoint", "blue", 50)
    assert any("blue: model loaded from" in line.text and line.stream == "log" for line in logs)
    assert all(line.endpoint == "my-endpoint" and line.deployment == "blue" for line in logs)
    assert dp.PRIMARY not in pool.log_path("my-endpoint", "blue").read_text()

    [sample_metrics] = await pool.metrics("my-endpoint")
    assert sample_metrics.requests_total == 1
    assert sample_metrics.status_codes == {"200": 1}
    assert sample_metrics.latency_p50_ms is not None
    assert sample_metrics.memory_mb and sample_metrics.memory_mb > 1
    assert sample_metrics.cpu_percent is not None
    assert (sample_metrics.replicas_ready, sample_metrics.replicas_desired) == (1, 1)

    async with http.get(f"{pool.gateway.base_url}/metrics", headers=dp.METRICS_AUTH) as resp:
        text = await resp.text()
    labels = 'endpoint="my-endpoint",deployment="blue"'
    assert f'modeldeck_requests_total{{{labels},code="200"}} 1' in text
    assert f'modeldeck_replica_memory_bytes{{{labels},replica="blue-0"}} ' in text
    assert f"modeldeck_replicas_desired{{{labels}}} 1" in text

    pid = pool.replicas("my-endpoint", "blue")[0].pid
    await pool.delete_deployment("my-endpoint", "blue")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(NotFound):
        await pool.deployment_status("my-endpoint", "blue")
    code, body, _ = await _post(
        http, pool.scoring_uri("my-endpoint"), sample, {"Authorization": f"Bearer {dp.PRIMARY}"}
    )
    assert code == 503


async def test_rolling_update_without_a_failed_request(
    tmp_path: Path, pool: PoolDriver, http: aiohttp.ClientSession
) -> None:
    await pool.apply_endpoint(dp.route(traffic={"blue": 100}))
    await pool.apply_deployment(
        "ep",
        dp.runtime(tmp_path, "blue", dp.versioned(tmp_path, "v1"), instance_count=2),
        Progress(),
    )
    old_pids = {r.pid for r in pool.replicas("ep", "blue")}

    seen: list[tuple[int, str]] = []
    stop = asyncio.Event()

    async def client() -> None:
        while not stop.is_set() and len(seen) < 5000:
            code, body, _ = await _post(http, pool.scoring_uri("ep"), {"sleep": 0.01})
            seen.append((code, body.get("version", json.dumps(body))))

    clients = [asyncio.create_task(client()) for _ in range(3)]
    await dp.wait_for(lambda: len(seen) >= 5, what="traffic before the update")
    progress = Progress()
    await pool.apply_deployment(
        "ep", dp.runtime(tmp_path, "blue", dp.versioned(tmp_path, "v2"), instance_count=2), progress
    )
    mark = len(seen)
    await dp.wait_for(lambda: len(seen) >= mark + 5, what="traffic after the update")
    stop.set()
    await asyncio.gather(*clients)

    assert [s for s in seen if s[0] != 200] == []
    versions = [v for _, v in seen]
    assert versions[0] == "v1"
    assert versions[-1] == "v2"
    assert "2/2 replicas ready" in [m for _, m in progress.events]
    new_pids = {r.pid for r in pool.replicas("ep", "blue")}
    assert not new_pids & old_pids
    for pid in old_pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_failed_update_keeps_the_old_version_serving(
    tmp_path: Path, pool: PoolDriver, http: aiohttp.ClientSession
) -> None:
    await pool.apply_endpoint(dp.route(traffic={"blue": 100}))
    await pool.apply_deployment(
        "ep", dp.runtime(tmp_path, "blue", dp.versioned(tmp_path, "v1")), Progress()
    )
    with pytest.raises(BackendError) as info:
        await pool.apply_deployment(
            "ep",
            dp.runtime(tmp_path, "blue", dp.write_code(tmp_path, "bad", BROKEN_INIT)),
            Progress(),
        )
    message = info.value.message
    assert "init() failed: JSONDecodeError" in message
    assert "Traceback (most recent call last)" in message
    assert 'json.loads("{not json")' in message
    assert str(pool.log_path("ep", "blue")) in message
    assert "the previous version keeps serving" in message

    code, body, _ = await _post(http, pool.scoring_uri("ep"))
    assert (code, body["version"]) == (200, "v1")
    status = await pool.deployment_status("ep", "blue")
    assert (status.ready_replicas, status.desired_replicas) == (1, 1)
    assert len(pool.replicas("ep", "blue")) == 1


async def test_first_version_failing_init_shows_failed_and_retries(
    tmp_path: Path, pool: PoolDriver
) -> None:
    await pool.apply_endpoint(dp.route(traffic={"blue": 100}))
    with pytest.raises(BackendError, match="init\\(\\) failed: JSONDecodeError"):
        await pool.apply_deployment(
            "ep",
            dp.runtime(tmp_path, "blue", dp.write_code(tmp_path, "bad", BROKEN_INIT)),
            Progress(),
        )
    status = await pool.deployment_status("ep", "blue")
    assert status.ready_replicas == 0
    assert status.desired_replicas == 1
    assert status.error and "init() failed: JSONDecodeError" in status.error
    texts = [line.text for line in await pool.read_logs("ep", "blue", 300)]
    assert any("Traceback (most recent call last)" in t for t in texts)
    assert sum(t.startswith("restarting in") for t in texts) >= 3


async def test_replica_count_change_keeps_running_replicas(
    tmp_path: Path, pool: PoolDriver
) -> None:
    await pool.apply_endpoint(dp.route(traffic={"blue": 100}))
    code = dp.versioned(tmp_path, "v1")
    await pool.apply_deployment("ep", dp.runtime(tmp_path, "blue", code), Progress())
    [first] = pool.replicas("ep", "blue")
    first_pid = first.pid

    progress = Progress()
    await pool.apply_deployment(
        "ep", dp.runtime(tmp_path, "blue", code, instance_count=3), progress
    )
    replicas = pool.replicas("ep", "blue")
    assert len(replicas) == 3 and all(r.ready for r in replicas)
    assert replicas[0].pid == first_pid
    assert "3/3 replicas ready" in [m for _, m in progress.events]
    assert len(pool.gateway.backend_urls("ep", "blue")) == 3

    # request settings only: applied live, nothing restarts
    live = RequestSettings(request_timeout_ms=1234, max_concurrent_requests_per_instance=4)
    await pool.apply_deployment(
        "ep", dp.runtime(tmp_path, "blue", code, instance_count=3, request=live), Progress()
    )
    assert [r.pid for r in pool.replicas("ep", "blue")] == [r.pid for r in replicas]

    await pool.apply_deployment(
        "ep", dp.runtime(tmp_path, "blue", code, instance_count=1, request=live), Progress()
    )
    assert [r.pid for r in pool.replicas("ep", "blue")] == [first_pid]
    assert pool.gateway.backend_urls("ep", "blue") == [first.address]
    status = await pool.deployment_status("ep", "blue")
    assert (status.ready_replicas, status.desired_replicas) == (1, 1)


async def test_crashed_replica_leaves_and_rejoins_the_gateway(
    tmp_path: Path, pool: PoolDriver, http: aiohttp.ClientSession
) -> None:
    await pool.apply_endpoint(dp.route(traffic={"blue": 100}))
    await pool.apply_deployment(
        "ep",
        dp.runtime(tmp_path, "blue", dp.versioned(tmp_path, "v1"), instance_count=2),
        Progress(),
    )
    victim, survivor = pool.replicas("ep", "blue")
    old_pid = victim.pid
    os.kill(old_pid, signal.SIGKILL)
    await dp.wait_for(
        lambda: pool.gateway.backend_urls("ep", "blue") == [survivor.address],
        what="crashed replica out",
    )
    code, body, _ = await _post(http, pool.scoring_uri("ep"))
    assert (code, body["pid"]) == (200, survivor.pid)
    await dp.wait_for(lambda: victim.ready and victim.pid != old_pid, what="restart")
    await dp.wait_for(
        lambda: len(pool.gateway.backend_urls("ep", "blue")) == 2, what="back in the gateway"
    )
    pids = {(await _post(http, pool.scoring_uri("ep")))[1]["pid"] for _ in range(4)}
    assert pids == {victim.pid, survivor.pid}


async def test_autoscale_up_and_down(
    tmp_path: Path, pool: PoolDriver, http: aiohttp.ClientSession
) -> None:
    await pool.apply_endpoint(dp.route(traffic={"blue": 100}))
    scale = ScaleSettings(
        type="target_utilization",
        min_instances=1,
        max_instances=3,
        target_utilization_percentage=50,
        polling_interval=1,
    )
    request = RequestSettings(
        request_timeout_ms=10000, max_concurrent_requests_per_instance=1, max_queue_wait_ms=10000
    )
    await pool.apply_deployment(
        "ep",
        dp.runtime(tmp_path, "blue", dp.versioned(tmp_path, "v1"), scale=scale, request=request),
        Progress(),
    )
    assert (await pool.deployment_status("ep", "blue")).desired_replicas == 1

    stop = asyncio.Event()
    codes: list[int] = []

    async def client() -> None:
        while not stop.is_set() and len(codes) < 2000:
            codes.append((await _post(http, pool.scoring_uri("ep"), {"sleep": 0.1}))[0])

    clients = [asyncio.create_task(client()) for _ in range(3)]
    try:
        await dp.wait_for(
            lambda: sum(r.ready for r in pool.replicas("ep", "blue")) >= 2,
            timeout=60,
            what="scale up",
        )
    finally:
        stop.set()
        await asyncio.gather(*clients)
    assert set(codes) == {200}
    status = await pool.deployment_status("ep", "blue")
    assert 2 <= status.desired_replicas <= 3

    try:
        await dp.wait_for(
            lambda: len(pool.replicas("ep", "blue")) == 1, timeout=60, what="scale down"
        )
    except AssertionError:
        log = "\n".join(
            f"{x.replica} {x.stream} {x.text}" for x in await pool.read_logs("ep", "blue", 80)
        )
        raise AssertionError(f"no scale down; log:\n{log}") from None
    assert (await pool.deployment_status("ep", "blue")).desired_replicas == 1
    texts = [
        line.text
        for line in await pool.read_logs("ep", "blue", 500)
        if line.replica == "autoscaler"
    ]
    assert any("scaling 1 -> " in t for t in texts)
    assert any(t.endswith("-> 1 replicas") for t in texts)


async def test_follow_logs_streams_new_lines(
    tmp_path: Path, pool: PoolDriver, http: aiohttp.ClientSession, examples: Path
) -> None:
    await pool.apply_endpoint(dp.route(traffic={"green": 100}))
    await pool.apply_deployment("ep", dp.runtime(tmp_path, "green", examples / "green"), Progress())
    stream = pool.follow_logs("ep", "green", 2)
    first = [await anext(stream), await anext(stream)]
    assert len(first) == 2
    sample = json.loads((examples / "sample-request.json").read_text())
    await _post(http, pool.scoring_uri("ep"), sample)

    async def next_print() -> str:
        while True:
            line = await anext(stream)
            if line.stream == "stdout":
                return line.text

    assert await asyncio.wait_for(next_print(), 30) == "green: scoring 2 row(s)"
    await stream.aclose()


def test_logs_rotate_and_stay_bounded(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=4000, backups=2)
    log = store.log("ep", "blue")
    for i in range(1000):
        log.write(f"blue-{i % 2}", "stdout", f"line {i:04d} " + "x" * 40)
    files = log.files()
    assert [p.name for p in files] == ["deployment.log.2", "deployment.log.1", "deployment.log"]
    assert all(p.stat().st_size <= 4000 for p in files)
    last = log.read(30)
    assert [line.text[:9] for line in last] == [f"line {i:04d}" for i in range(970, 1000)]
    assert [line.replica for line in last[-2:]] == ["blue-0", "blue-1"]
    store.remove("ep", "blue")
    assert not (tmp_path / "ep" / "blue").exists()


async def test_a_model_file_appears_under_its_own_name(
    tmp_path: Path, pool: PoolDriver, http: aiohttp.ClientSession
) -> None:
    from modeldeck.services.api.domain import Model

    weights = tmp_path / "models" / "m" / "3" / "m.pkl"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    code = dp.write_code(
        tmp_path,
        "filemodel",
        """
        import os
        def init():
            global listing, content
            d = os.environ["AZUREML_MODEL_DIR"]
            listing = sorted(os.listdir(d))
            content = open(os.path.join(d, "m.pkl"), "rb").read().decode()
        def run(raw_data):
            return {"listing": listing, "content": content, "flavour": os.environ["FLAVOUR"]}
        """,
    )
    model = Model(name="m", version=3, path=str(weights))
    await pool.apply_endpoint(dp.route(traffic={"blue": 100}))
    await pool.apply_deployment(
        "ep",
        dp.runtime(tmp_path, "blue", code, model=model, env={"FLAVOUR": "vanilla"}),
        Progress(),
    )
    code_, body, _ = await _post(http, pool.scoring_uri("ep"))
    assert code_ == 200
    assert body == {"listing": ["m.pkl"], "content": "weights", "flavour": "vanilla"}
