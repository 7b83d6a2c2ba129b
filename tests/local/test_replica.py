"""Replica processes: the Azure ML entry-script contract, failures, restarts, parent death."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import psutil
import pytest
from modeldeck.services.local.dataplane.supervisor import ReplicaState, Supervisor

from tests.support import dataplane as dp
from tests.support.dataplane import replica_argv as _replica_argv

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


async def test_entry_script_contract(tmp_path: Path, supervisor: Supervisor) -> None:
    code = dp.write_code(tmp_path, "contract", CONTRACT)
    replica = await dp.start_replica(supervisor, tmp_path, code, env={"GREETING": "hi"})
    async with dp.direct(replica) as http:
        await _check_contract(http, code)

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
    assert ("system", "ready") in by_stream
    assert not any("debug is below INFO" in line.text for line in lines)
    assert all(line.replica == "r-0" for line in lines)
    # no address of the replica in what a user reads (get-logs)
    sockets = str(tmp_path / "sock")
    assert not any("127.0.0.1" in line.text or sockets in line.text for line in lines)


async def _check_contract(http: aiohttp.ClientSession, code: Path) -> None:
    async with http.get("http://replica/") as resp:
        assert resp.status == 200
        assert await resp.text() == "Healthy"

    async with http.post("http://replica/score", data=b'{"data": [[1, 2]]}') as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert answer["raw"] == '{"data": [[1, 2]]}'
    assert answer["type"] == "str"
    assert answer["listing"] == ["model"]  # the registered folder under its own base name
    assert answer["model"]["coef"]
    assert answer["cwd"] == str(code)
    assert answer["env"] == "hi"
    assert answer["inits"] == 1

    # as azmlinfsrv answers: a str result is sent JSON-encoded
    async with http.post("http://replica/score", data=b"text") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json"
        assert await resp.read() == b'"plain answer"'

    # azmlinfsrv's 500: the message points at the log (where the traceback is)
    async with http.post("http://replica/score", data=b"boom") as resp:
        assert resp.status == 500
        assert resp.headers["x-ms-run-function-failed"] == "True"
        body = await resp.json()
    assert body == {
        "message": "An unexpected error occurred in scoring script. Check the logs for more info."
    }


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


#: stands in for Azure's ``azmlinfsrv`` as far as listening goes: like gunicorn, it serves
#: a socket handed over by systemd socket activation (fd 3, LISTEN_FDS, LISTEN_PID) and
#: otherwise binds a TCP port of its own (the real one: 0.0.0.0:5001; here loopback)
FAKE_AZMLINFSRV = """#!{python}
import json, os, runpy, socket, socketserver, sys
from http.server import BaseHTTPRequestHandler
entry = sys.argv[sys.argv.index("--entry_script") + 1]
ns = runpy.run_path(entry)
ns["init"]()
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def address_string(self): return "-"
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"Healthy")
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        out = json.dumps(ns["run"](body)).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.send_header("x-served-by", "azmlinfsrv"); self.end_headers(); self.wfile.write(out)
if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS") == "1":
    class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer): pass
    server = S("", H, bind_and_activate=False)
    server.socket.close()
    server.socket = socket.socket(fileno=3)
    server.socket.listen(16)
else:
    class S(socketserver.ThreadingMixIn, socketserver.TCPServer): pass
    server = S(("127.0.0.1", {port}), H)
server.serve_forever()
"""


async def test_azmlinfsrv_runtime_serves_only_the_replica_socket(
    tmp_path: Path, supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """azmlinfsrv gets the replica's Unix socket (socket activation), and binds no port."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "azmlinfsrv"
    tool.write_text(FAKE_AZMLINFSRV.format(python=sys.executable, port=port))
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    from modeldeck.services.local.dataplane.supervisor import ReplicaConfig

    replica = supervisor.create(
        ReplicaConfig(
            endpoint="ep",
            deployment="dep",
            name="r-0",
            code_dir=str(dp.versioned(tmp_path, "v1")),
            scoring_script="score.py",
            model_dir=str(dp.model_dir_for(tmp_path)),
            runtime="azmlinfsrv",
        )
    )
    replica.start()
    await dp.wait_for(lambda: replica.ready or replica.failures > 0, what="azmlinfsrv ready")
    assert replica.ready, replica.error
    async with dp.direct(replica) as http, http.post("http://replica/score", data=b"{}") as resp:
        assert resp.status == 200
        assert resp.headers["x-served-by"] == "azmlinfsrv"
        assert (await resp.json())["version"] == "v1"
    assert replica.pid is not None
    listening = psutil.Process(replica.pid).net_connections("inet")
    assert listening == []  # the fallback port was not bound: nothing but the socket


async def test_not_ready_before_init_finishes(tmp_path: Path) -> None:
    """The socket refuses connections while init() runs, then answers Healthy."""
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
    path = tmp_path / "r.sock"
    env = {**os.environ, "FLAG_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        _replica_argv(code, dp.model_dir_for(tmp_path), "--socket", str(path)), env=env
    )
    http = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path)))
    try:
        await dp.wait_for(lambda: (tmp_path / "in-init").exists(), what="init() started")
        assert path.is_socket() and (path.stat().st_mode & 0o777) == 0o600
        try:
            async with http.get("http://replica/") as resp:
                raise AssertionError(f"answered {resp.status} before init() finished")
        except aiohttp.ClientConnectorError:
            pass
        (tmp_path / "go").touch()

        async def healthy() -> bool:
            try:
                async with http.get("http://replica/") as resp:
                    return resp.status == 200 and await resp.text() == "Healthy"
            except aiohttp.ClientError:
                return False

        await dp.wait_for(healthy, what="Healthy after init()")
        assert not [c for c in psutil.Process(proc.pid).net_connections("inet")]  # no TCP
    finally:
        await http.close()
        proc.terminate()
        proc.wait(timeout=30)


async def test_crash_is_restarted_with_backoff(tmp_path: Path, supervisor: Supervisor) -> None:
    code = dp.versioned(tmp_path, "v1")
    replica = await dp.start_replica(supervisor, tmp_path, code)
    first_pid = replica.pid
    assert first_pid is not None
    os.kill(first_pid, signal.SIGKILL)
    await dp.wait_for(lambda: replica.ready and replica.pid != first_pid, what="restarted replica")
    async with dp.direct(replica) as http, http.post("http://replica/score", data=b"{}") as resp:
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
    from modeldeck.services.api.domain import Probe
    from modeldeck.services.local.dataplane.logstore import LogStore
    from modeldeck.services.local.dataplane.supervisor import ReplicaConfig

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


async def test_replica_sockets_are_private_whatever_the_umask(tmp_path: Path) -> None:
    """The socket directories are 0700 (also under umask 000), the socket 0600, and no
    replica process listens on a TCP port."""
    from modeldeck.services.local.dataplane.logstore import LogStore

    old = os.umask(0)
    try:
        sup = Supervisor(LogStore(tmp_path / "logs"), socket_dir=tmp_path / "sock")
        try:
            replica = await dp.start_replica(sup, tmp_path, dp.versioned(tmp_path, "v1"))
            assert replica.socket_path is not None and replica.address is not None
            path = Path(replica.socket_path)
            assert replica.address == f"unix:{path}"
            assert path.is_socket() and path.stat().st_mode & 0o777 == 0o600
            assert path.parent.parent == tmp_path / "sock"
            for d in (path.parent, path.parent.parent):
                assert d.stat().st_mode & 0o777 == 0o700, d
            assert replica.pid is not None
            assert psutil.Process(replica.pid).net_connections("inet") == []
        finally:
            await sup.close()
            sup.logstore.close()
        assert not path.parent.exists()  # close() removes the directory
    finally:
        os.umask(old)


async def test_a_socket_dir_too_deep_falls_back_then_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modeldeck.services.api.errors import BackendError
    from modeldeck.services.local.dataplane.logstore import LogStore
    from modeldeck.services.local.dataplane.supervisor import MAX_SOCKET_PATH

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    runtime = tmp_path / "run"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    sup = Supervisor(LogStore(tmp_path / "logs"), socket_dir=deep)
    try:
        replica = await dp.start_replica(sup, tmp_path, dp.versioned(tmp_path, "v1"))
        assert replica.socket_path is not None
        assert Path(replica.socket_path).parent.parent == runtime  # the short fallback
        assert len(os.fsencode(replica.socket_path)) <= MAX_SOCKET_PATH
        assert Path(replica.socket_path).parent.stat().st_mode & 0o777 == 0o700
    finally:
        await sup.close()
        sup.logstore.close()

    too_long = tmp_path / ("f" * 100)
    too_long.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(too_long))
    sup = Supervisor(LogStore(tmp_path / "logs2"), socket_dir=deep)
    try:
        replica = await dp.start_replica(sup, tmp_path, dp.versioned(tmp_path, "v1"), wait=False)
        await dp.wait_for(lambda: replica.failures > 0, what="the replica to give up")
        assert replica.pid is None  # nothing was started
        assert replica.last_error is not None
        assert "no directory short enough for the replicas' Unix sockets" in replica.last_error
        texts = [line.text for line in sup.logstore.read("ep", "dep", 50)]
        assert any("fix: set MODELDECK_HOME (or TMPDIR) to a shorter path" in t for t in texts)
    finally:
        await sup.close()
        sup.logstore.close()
    with pytest.raises(BackendError):
        Supervisor(LogStore(tmp_path / "logs3"), socket_dir=deep).socket_path(replica)
