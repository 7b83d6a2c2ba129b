"""The control plane as a process, under pressure: its control socket closes idle clients
and bounds connections per process; it raises its own open files limit at start."""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from modeldeck.services.api.errors import Unreachable
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.local.controlplane import daemon

pytestmark = pytest.mark.e2e


def _unix(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)  # only against a hang
    sock.connect(path)
    return sock


def _until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


async def test_the_control_socket_closes_idle_clients_and_bounds_connections(
    h, tmp_path_factory
) -> None:  # type: ignore[no-untyped-def]
    with h.running_home(
        tmp_path_factory.mktemp("mdc"),
        MODELDECK_HEADER_TIMEOUT_S="0.3",
        MODELDECK_KEEPALIVE_TIMEOUT_S="0.3",
        MODELDECK_CONTROL_MAX_CONNECTIONS_PER_CLIENT="3",
    ) as home:
        daemon.ensure_daemon()
        path = str(home.state / "modeldeck.sock")
        with _unix(path) as idle:
            assert _until_closed(idle) == b""  # sent nothing: closed, nothing answered

        held = []
        for _ in range(3):  # requests in progress (their bodies on the way) from this process
            sock = _unix(path)
            sock.sendall(
                b"POST /v1/clusters HTTP/1.1\r\nHost: modeldeck\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            )
            held.append(sock)
        time.sleep(0.5)  # for the daemon to read their headers (then they are busy, not idle)
        with _unix(path) as fourth:
            answer = _until_closed(fourth)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503"), answer
        assert b"Connection: close" in head
        error = json.loads(body)["error"]
        assert error["code"] == "TooManyConnections"
        assert "control socket" in error["message"]
        assert "MODELDECK_CONTROL_MAX_CONNECTIONS" in error["fix"]

        # another process is a client of its own: answered
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                "from modeldeck.services.local.controlplane import daemon; "
                "print(daemon.daemon_status()['running'])",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.stdout.strip() == "True", other.stderr
        for sock in held:
            sock.close()
        assert daemon.daemon_status()["running"] is True  # this process again, at once
        assert daemon.stop_daemon() is True
        log = (home.state / "daemon.log").read_text()
        assert "refused 1 with 503 over max_connections_per_client=3" in log
        assert "Traceback" not in log


async def test_a_bad_connection_setting_stops_the_start_with_its_name(h, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("mdc")
    with h.running_home(home, MODELDECK_HEADER_TIMEOUT_S="soon"), pytest.raises(Unreachable) as err:
        daemon.ensure_daemon()
    assert "MODELDECK_HEADER_TIMEOUT_S" in str(err.value)
    assert "soon" in str(err.value)


async def test_the_daemon_raises_its_open_files_limit_to_the_hard_limit(
    h, tmp_path_factory
) -> None:  # type: ignore[no-untyped-def]
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 256
    if hard != resource.RLIM_INFINITY and hard <= low:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to raise")

    def lower() -> None:  # as a login shell with `ulimit -Sn 256` would start it
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))

    with h.running_home(tmp_path_factory.mktemp("mdr")) as home:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modeldeck.services.local.controlplane.daemon", "--detached"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lower,
        )
        try:
            assert h.wait_until(lambda: daemon.daemon_status()["running"], timeout=30)
            assert daemon.daemon_status()["pid"] == proc.pid
            limits = psutil.Process(proc.pid).rlimit(psutil.RLIMIT_NOFILE)
            expected = hard if hard != resource.RLIM_INFINITY else 1 << 20
            assert limits[0] == expected
            log = (home.state / "daemon.log").read_text()
            assert f"soft {expected} (was {low}; hard {hard})" in log
            assert daemon.stop_daemon() is True
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def test_2000_idle_connections_leave_the_daemons_endpoints_answering(fresh_home, h) -> None:  # type: ignore[no-untyped-def]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"needs a hard open files limit of 4096 (ulimit -Hn is {hard})")
    # started from a shell with `ulimit -Sn 1024`, as the daemon of the report was
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        daemon.ensure_daemon()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), hard))
    flood: list[asyncio.StreamWriter] = []
    try:
        async with LocalWorkspace(poll_interval=0.05) as ws:
            await h.make_endpoint(ws, "flood-ep")
            await h.wait(
                await ws.create_deployment(h.deployment("blue", "flood-ep"), all_traffic=True)
            )
            keys = await ws.get_keys("flood-ep")
            uri = (await ws.get_endpoint("flood-ep")).scoring_uri
            pid = (await ws.status())["pid"]
        port = int(uri.split(":")[2].split("/")[0])
        auth = {"Authorization": f"Bearer {keys.primaryKey}"}
        sample = b'{"data": [[1, 2, 3, 4]]}'
        # 2,000 idle connections from four other clients (500 each, under the default bound)
        for start in range(0, 2000, 250):
            opened = await asyncio.gather(
                *(
                    asyncio.open_connection(
                        "127.0.0.1", port, local_addr=(f"127.0.0.{2 + i % 4}", 0)
                    )
                    for i in range(start, start + 250)
                )
            )
            flood += [writer for _, writer in opened]

        def held() -> int:
            conns = psutil.Process(pid).net_connections(kind="tcp")
            return sum(1 for c in conns if c.laddr.port == port and c.status == "ESTABLISHED")

        assert held() >= 2000  # the daemon holds them all (its limit was raised)
        async with httpx.AsyncClient(timeout=30) as client:
            during = [
                (await client.post(uri, content=sample, headers=auth)).status_code
                for _ in range(20)
            ]
            assert during == [200] * 20
            for writer in flood:
                writer.close()
            flood.clear()
            after = [
                (await client.post(uri, content=sample, headers=auth)).status_code
                for _ in range(20)
            ]
            assert after == [200] * 20  # at once: no spell of 503 after the flood
        assert "Traceback" not in (fresh_home.state / "daemon.log").read_text()
    finally:
        for writer in flood:
            writer.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
