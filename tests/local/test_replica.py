"""Replica processes: the Azure ML entry-script contract, failures, restarts, parent death."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import psutil
from modeldeck.services.local.supervisor import ReplicaState, Supervisor


def _dataplane():  # tests/local/conftest.py is the control plane's: load ours explicitly
    name = "modeldeck_tests_dataplane_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("dataplane_fixtures.py")
        )
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


dp = _dataplane()
supervisor = dp.supervisor
http = dp.http

CONTRACT = """
import json, logging, os, sys
state = {}
def init():
    state["listing"] = sorted(os.listdir(os.environ["AZUREML_MODEL_DIR"]))
    state["model"] = json.load(open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "model.json")))
    state["cwd"] = os.getcwd()
    state["env"] = os.environ.get("GREETING")
    state["inits"] = state.get("inits", 0) + 1
    logging.getLogger("score").info("init done with %d coefficients", len(state["model"]["coef"]))
    logging.getLogger("score").debug("debug is below INFO and stays out")
    print("hello from init", flush=True)
    print("on stderr", file=sys.stderr, flush=True)
def run(raw_data):
    if raw_data == "text":
        return "plain answer"
    if raw_data == "boom":
        raise RuntimeError("scoring exploded")
    return {"raw": raw_data, "type": type(raw_data).__name__, **state}
"""


def _replica_argv(code: Path, model_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "modeldeck.services.local.replica",
        "--code-dir",
        str(code),
        "--scoring-script",
        "score.py",
        "--model-dir",
        str(model_dir),
        *extra,
    ]


async def test_entry_script_contract(
    tmp_path: Path, supervisor: Supervisor, http: aiohttp.ClientSession
) -> None:
    code = dp.write_code(tmp_path, "contract", CONTRACT)
    replica = await dp.start_replica(supervisor, tmp_path, code, env={"GREETING": "hi"})

    async with http.get(f"{replica.url}/") as resp:
        assert resp.status == 200
        assert await resp.text() == "Healthy"

    async with http.post(f"{replica.url}/score", data=b'{"data": [[1, 2]]}') as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert answer["raw"] == '{"data": [[1, 2]]}'
    assert answer["type"] == "str"
    assert answer["listing"] == ["model"]  # the registered folder under its own base name
    assert answer["model"]["coef"]
    assert answer["cwd"] == str(code)
    assert answer["env"] == "hi"
    assert answer["inits"] == 1

    async with http.post(f"{replica.url}/score", data=b"text") as resp:
        assert resp.status == 200
        assert await resp.text() == "plain answer"

    async with http.post(f"{replica.url}/score", data=b"boom") as resp:
        assert resp.status == 500
        body = await resp.json()
    assert "scoring exploded" in body["error"]["message"]

    await dp.wait_for(
        lambda: any(
            "RuntimeError: scoring exploded" in line.text
            for line in supervisor.logstore.read("ep", "dep", 200)
        ),
        what="run() traceback in the log",
    )
    lines = supervisor.logstore.read("ep", "dep", 200)
    by_stream = {(line.stream, line.text) for line in lines}
    assert ("log", "INFO score: init done with 4 coefficients") in by_stream
    assert ("stdout", "hello from init") in by_stream
    assert ("stderr", "on stderr") in by_stream
    assert not any("debug is below INFO" in line.text for line in lines)
    assert all(line.replica == "r-0" for line in lines)


async def test_init_failure_is_failed_with_traceback_and_retried(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    code = dp.write_code(
        tmp_path,
        "broken",
        """
        def load_weights():
            return 1 / 0
        def init():
            load_weights()
        def run(raw_data):
            return raw_data
        """,
    )
    replica = await dp.start_replica(supervisor, tmp_path, code, wait=False)
    await dp.wait_for(lambda: replica.failures >= 2, what="two failed starts")
    assert replica.state in (ReplicaState.FAILED, ReplicaState.STARTING)
    assert replica.last_error is not None
    assert "init() failed: ZeroDivisionError: division by zero" in replica.last_error
    assert str(supervisor.logstore.log("ep", "dep").path) in replica.last_error
    texts = [line.text for line in supervisor.logstore.read("ep", "dep", 500)]
    assert any("Traceback (most recent call last)" in t for t in texts)
    assert any("in load_weights" in t for t in texts)
    assert any(t.startswith("restarting in") for t in texts)  # retried with backoff


async def test_missing_functions_fail_clearly(tmp_path: Path) -> None:
    model_dir = dp.model_dir_for(tmp_path)
    for missing, source in (
        ("run()", "def init():\n    pass\n"),
        ("init()", "def run(raw_data):\n    return raw_data\n"),
        ("init() and run()", "x = 1\n"),
    ):
        code = dp.write_code(tmp_path, f"missing{len(missing)}", source)
        proc = subprocess.run(
            _replica_argv(code, model_dir), capture_output=True, text=True, timeout=60
        )
        assert proc.returncode != 0
        assert f"has no {missing} function" in proc.stderr
        assert str(code / "score.py") in proc.stderr


async def test_azmlinfsrv_runtime_needs_its_package(tmp_path: Path) -> None:
    code = dp.versioned(tmp_path, "v1")
    proc = subprocess.run(
        _replica_argv(
            code, dp.model_dir_for(tmp_path), "--runtime", "azmlinfsrv", "--port", "5001"
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "azureml-inference-server-http" in proc.stderr
    assert "pip install azureml-inference-server-http" in proc.stderr


async def test_not_ready_before_init_finishes(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """The port refuses connections while init() runs, then answers Healthy."""
    code = dp.write_code(
        tmp_path,
        "slow",
        """
        import os, time
        def init():
            open(os.path.join(os.environ["FLAG_DIR"], "in-init"), "w").close()
            while not os.path.exists(os.path.join(os.environ["FLAG_DIR"], "go")):
                time.sleep(0.02)
        def run(raw_data):
            return "ok"
        """,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "FLAG_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        _replica_argv(code, dp.model_dir_for(tmp_path), "--port", str(port)), env=env
    )
    try:
        await dp.wait_for(lambda: (tmp_path / "in-init").exists(), what="init() started")
        try:
            async with http.get(f"http://127.0.0.1:{port}/") as resp:
                raise AssertionError(f"answered {resp.status} before init() finished")
        except aiohttp.ClientConnectorError:
            pass
        (tmp_path / "go").touch()

        async def healthy() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{port}/") as resp:
                    return resp.status == 200 and await resp.text() == "Healthy"
            except aiohttp.ClientError:
                return False

        await dp.wait_for(healthy, what="Healthy after init()")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def test_crash_is_restarted_with_backoff(
    tmp_path: Path, supervisor: Supervisor, http: aiohttp.ClientSession
) -> None:
    code = dp.versioned(tmp_path, "v1")
    replica = await dp.start_replica(supervisor, tmp_path, code)
    first_pid = replica.pid
    assert first_pid is not None
    os.kill(first_pid, signal.SIGKILL)
    await dp.wait_for(lambda: replica.ready and replica.pid != first_pid, what="restarted replica")
    async with http.post(f"{replica.url}/score", data=b"{}") as resp:
        assert resp.status == 200
        assert (await resp.json())["pid"] == replica.pid
    texts = [line.text for line in supervisor.logstore.read("ep", "dep", 200)]
    assert any("killed by signal 9 (SIGKILL)" in t for t in texts)
    assert any(t.startswith("restarting in 0.2 s") for t in texts)
    assert replica.restarts == 1


async def test_replica_dies_with_its_parent(tmp_path: Path) -> None:
    """kill -9 of the process that started a replica leaves no orphan serving."""
    code = dp.versioned(tmp_path, "v1")
    parent_src = f"""
import os, subprocess, sys, time
argv = {_replica_argv(code, dp.model_dir_for(tmp_path))!r} + ["--parent-pid", str(os.getpid())]
child = subprocess.Popen(argv)
print(child.pid, flush=True)
time.sleep(600)
"""
    parent = subprocess.Popen([sys.executable, "-c", parent_src], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child_pid = int(await asyncio.wait_for(asyncio.to_thread(parent.stdout.readline), 60))
        assert psutil.pid_exists(child_pid)
        parent.kill()
        parent.wait(timeout=30)

        def gone() -> bool:
            try:
                return psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        await dp.wait_for(gone, what="the orphaned replica to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=30)
        if parent.stdout is not None:
            parent.stdout.close()


async def test_readiness_probe_budget_ends_a_hanging_init(tmp_path: Path) -> None:
    from modeldeck.services.domain import Probe
    from modeldeck.services.local.logstore import LogStore
    from modeldeck.services.local.supervisor import ReplicaConfig

    code = dp.write_code(
        tmp_path,
        "hangs",
        """
        import time
        def init():
            time.sleep(600)
        def run(raw_data):
            return raw_data
        """,
    )
    sup = Supervisor(LogStore(tmp_path / "logs"), backoff_base=30.0, stop_grace=2.0)
    try:
        replica = sup.create(
            ReplicaConfig(
                endpoint="ep",
                deployment="dep",
                name="r-0",
                code_dir=str(code),
                scoring_script="score.py",
                model_dir=str(dp.model_dir_for(tmp_path)),
                readiness=Probe(initial_delay=0, period=1, failure_threshold=1),
            )
        )
        replica.start()
        await dp.wait_for(lambda: replica.failures >= 1, what="the readiness budget to run out")
        assert replica.state is ReplicaState.FAILED
        assert replica.last_error is not None
        assert replica.last_error.startswith("not ready after 1 s")
        pid = replica.pid
        assert pid is not None
        await dp.wait_for(
            lambda: (
                not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            ),
            what="the hanging replica killed",
        )
    finally:
        await sup.close()
        sup.logstore.close()
