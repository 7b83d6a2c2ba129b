"""The control plane as a process: auto-start, one per state dir, stop, kill -9 and restart."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys

import httpx
import psutil
import pytest
from modeldeck.services.api.domain import EndpointPatch, KeyType, ProvisioningState
from modeldeck.services.api.errors import Unreachable
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.local.controlplane import daemon

pytestmark = pytest.mark.e2e

SAMPLE = b'{"data": [[1, 2, 3, 4]]}'


def _gone(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_autostart_status_single_instance_and_stop(fresh_home, h) -> None:  # type: ignore[no-untyped-def]
    assert daemon.daemon_status()["running"] is False
    async with LocalWorkspace() as ws:  # auto-starts the daemon
        assert await ws.list_endpoints() == []
        status = await ws.status()
    pid = status["pid"]
    assert status["gateway_url"].startswith("http://127.0.0.1:")
    info = daemon.daemon_status()
    assert info["running"] is True and info["pid"] == pid and info["uptime_s"] >= 0
    # a second daemon on the same state dir refuses to run and says who runs
    proc = subprocess.run(
        [sys.executable, "-m", "modeldeck.services.local.controlplane.daemon"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == daemon.EXIT_ALREADY_RUNNING
    assert f"already running on {fresh_home.state} (pid {pid})" in proc.stderr
    assert daemon.daemon_status()["pid"] == pid  # the first one still answers
    # stop: the process ends and the socket goes away
    assert daemon.stop_daemon() is True
    assert h.wait_until(lambda: _gone(pid))
    assert not (fresh_home.state / "modeldeck.sock").exists()
    assert daemon.daemon_status()["running"] is False
    assert daemon.stop_daemon() is False


async def test_without_autostart_a_stopped_daemon_is_unreachable(fresh_home) -> None:  # type: ignore[no-untyped-def]
    async with LocalWorkspace(autostart=False) as ws:
        with pytest.raises(Unreachable) as err:
            await ws.list_clusters()
    assert "modeldeck serve" in str(err.value)
    assert daemon.daemon_status()["running"] is False


async def test_a_daemon_that_cannot_start_says_why_and_where_its_log_is(
    h, tmp_path_factory
) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with h.running_home(
            tmp_path_factory.mktemp("mdb"), MODELDECK_GATEWAY_PORT=str(port)
        ) as home:
            async with LocalWorkspace() as ws:
                with pytest.raises(Unreachable) as err:
                    await ws.list_endpoints()
            message = str(err.value)
            log = home.state / "daemon.log"
            assert "could not start" in message
            assert f"127.0.0.1:{port}" in message and "in use" in message
            assert str(log) in message
            assert err.value.details["log"] == str(log)
            assert "in use" in log.read_text()
            assert message.count("the port is in use") == 1  # said once, not echoed twice
            assert daemon.daemon_status()["running"] is False


async def test_kill_9_and_restart_loses_nothing(fresh_home, h) -> None:  # type: ignore[no-untyped-def]
    async with LocalWorkspace(poll_interval=0.05) as ws:
        await h.make_endpoint(ws, "keep-ep")
        await h.wait(
            await ws.create_deployment(
                h.deployment("blue", "keep-ep", instances=2), all_traffic=True
            )
        )
        await h.wait(await ws.create_deployment(h.deployment("green", "keep-ep", code="green")))
        await h.wait(
            await ws.update_endpoint("keep-ep", EndpointPatch(traffic={"blue": 70, "green": 30}))
        )
        keys = await ws.regenerate_keys("keep-ep", KeyType.SECONDARY)
        before = await h.snapshot(ws)
        endpoint = await ws.get_endpoint("keep-ep")
        pid = (await ws.status())["pid"]
    replicas = [p.pid for p in psutil.Process(pid).children(recursive=True)]
    assert len(replicas) >= 3

    os.kill(pid, signal.SIGKILL)
    assert h.wait_until(lambda: _gone(pid))
    # the replicas of the dead daemon do not outlive it
    assert h.wait_until(lambda: all(_gone(r) for r in replicas), timeout=30)

    async with LocalWorkspace(poll_interval=0.05) as ws:
        status = await ws.status()  # auto-start again
        assert status["pid"] != pid

        for _ in range(600):
            deps = await ws.list_deployments("keep-ep")
            if all(
                d.provisioning_state is ProvisioningState.SUCCEEDED
                and d.ready_replicas == d.desired_replicas
                for d in deps
            ):
                break
            await asyncio.sleep(0.05)
        after = await h.snapshot(ws)
        assert after == before
        assert await ws.get_keys("keep-ep") == keys
        assert (await ws.get_endpoint("keep-ep")).scoring_uri == endpoint.scoring_uri
        async with httpx.AsyncClient(timeout=30) as client:
            for key in (keys.primaryKey, keys.secondaryKey):
                resp = await client.post(
                    endpoint.scoring_uri,
                    content=SAMPLE,
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                )
                assert resp.status_code == 200, resp.text
        new_pid = status["pid"]
    children = [p.pid for p in psutil.Process(new_pid).children(recursive=True)]
    assert len(children) >= 3
    # SIGTERM: a graceful stop takes the replicas with it
    os.kill(new_pid, signal.SIGTERM)
    assert h.wait_until(lambda: _gone(new_pid), timeout=30)
    assert all(_gone(c) for c in children)


async def test_serve_in_the_foreground_stops_on_sigint(fresh_home, h) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(
        [sys.executable, "-m", "modeldeck.services.local.controlplane.daemon"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert h.wait_until(lambda: daemon.daemon_status()["running"], timeout=30)
        assert daemon.daemon_status()["pid"] == proc.pid
        async with LocalWorkspace(autostart=False) as ws:
            await h.ensure_cluster(ws, "fg-pool")
            assert [c.name for c in await ws.list_clusters()] == ["fg-pool"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not (fresh_home.state / "modeldeck.sock").exists()
    assert daemon.daemon_status()["running"] is False


async def test_a_gateway_off_loopback_is_warned_about(h, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    with h.running_home(tmp_path_factory.mktemp("mdw"), MODELDECK_GATEWAY_HOST="0.0.0.0") as home:
        status = daemon.ensure_daemon()
        log = (home.state / "daemon.log").read_text()
        assert "not on loopback" in log and "0.0.0.0" in log
        assert status["gateway_url"].startswith("http://127.0.0.1:")


async def test_a_state_dir_too_deep_for_a_socket_is_explained(h, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    deep = tmp_path_factory.mktemp("mdd") / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    with h.running_home(deep):
        with pytest.raises(Unreachable) as err:
            daemon.ensure_daemon()
        assert "shorter path" in str(err.value)
        assert str(deep / "state" / "daemon.log") in str(err.value)


async def test_concurrent_first_calls_start_one_daemon(fresh_home) -> None:  # type: ignore[no-untyped-def]
    async with LocalWorkspace() as ws, LocalWorkspace() as other:
        results = await asyncio.gather(
            ws.list_endpoints(), ws.list_clusters(), other.list_models(), other.status()
        )
    assert results[:3] == [[], [], []]
    pid = results[3]["pid"]
    assert daemon.daemon_status()["pid"] == pid
    assert _daemons_of(fresh_home.path) == [pid]


def _daemons_of(home: object) -> list[int]:
    """Pids of the live daemon processes serving MODELDECK_HOME=home."""
    found = []
    for proc in psutil.process_iter(["cmdline", "environ", "status"]):
        info = proc.info
        if (
            "modeldeck.services.local.controlplane.daemon" in " ".join(info["cmdline"] or [])
            and (info["environ"] or {}).get("MODELDECK_HOME") == str(home)
            and info["status"] != psutil.STATUS_ZOMBIE
        ):
            found.append(proc.pid)
    return found


async def test_a_daemon_whose_state_dir_is_removed_stops(fresh_home, h) -> None:  # type: ignore[no-untyped-def]
    pid = daemon.ensure_daemon()["pid"]
    shutil.rmtree(fresh_home.state)  # nobody can reach it any more: it must not linger
    assert h.wait_until(lambda: _gone(pid), timeout=30)


async def test_the_body_limit_is_configurable_and_named(h, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    with h.running_home(tmp_path_factory.mktemp("mdl"), MODELDECK_GATEWAY_MAX_BODY_MB="0.01"):
        daemon.ensure_daemon()
        async with LocalWorkspace(autostart=False, poll_interval=0.05) as ws:
            await h.make_endpoint(ws, "limit-ep")
            keys = await ws.get_keys("limit-ep")
            uri = (await ws.get_endpoint("limit-ep")).scoring_uri
        auth = {"Authorization": f"Bearer {keys.primaryKey}"}
        async with httpx.AsyncClient(timeout=30) as client:
            big = await client.post(uri, content=b"x" * 11_000, headers=auth)
            assert big.status_code == 413
            error = big.json()["error"]
            assert "limit of 10485 bytes" in error["message"]
            assert "MODELDECK_GATEWAY_MAX_BODY_MB" in error["fix"]
            small = await client.post(uri, content=b"x" * 9_000, headers=auth)
            assert small.status_code != 413  # under the limit: on to the (absent) deployments
    with h.running_home(tmp_path_factory.mktemp("mdl"), MODELDECK_GATEWAY_MAX_BODY_MB="lots"):
        with pytest.raises(Unreachable) as err:
            daemon.ensure_daemon()
        assert "MODELDECK_GATEWAY_MAX_BODY_MB" in str(err.value)


async def test_an_auto_started_daemon_outlives_its_terminal(fresh_home, h) -> None:  # type: ignore[no-untyped-def]
    # a shell in a session of its own runs a command (which starts the daemon), then hangs
    # up its whole process group, as an SSH drop does to a terminal's session
    shell = subprocess.run(
        [
            "sh",
            "-c",
            f"{sys.executable} -m modeldeck.cli.main cluster list -o none && echo $$ && kill -HUP 0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    assert shell.returncode == -signal.SIGHUP, shell.stderr
    session = int(shell.stdout.split()[0])
    status = daemon.daemon_status()
    assert status["running"] is True, status
    assert os.getsid(status["pid"]) not in (session, os.getsid(0))  # a session of its own
    async with LocalWorkspace(autostart=False) as ws:
        assert await ws.list_clusters() == []


async def test_a_home_that_is_not_a_directory_is_explained(h, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    not_a_dir = tmp_path_factory.mktemp("mdn") / "file"
    not_a_dir.write_text("")
    with h.running_home(not_a_dir):
        async with LocalWorkspace() as ws:
            with pytest.raises(Unreachable) as err:
                await ws.list_clusters()
        assert f"state directory {not_a_dir}/state cannot be used" in err.value.message
        assert "MODELDECK_HOME" in (err.value.fix or "")
