"""A shared jump box: another local user cannot reach a replica without the gateway.

Runs a real daemon as root, then attacks it from a child that has dropped to uid 65534
(``nobody``): every Unix socket and TCP port the replica processes hold is tried with a
plain ``POST /score`` and no key. None may answer; through the gateway, with the key,
the same request answers 200. The workspace's own directories are opened up to 0755 for
the attack, so what keeps ``nobody`` out is the replicas' own socket directory (0700)
and not a parent that happens to be private.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from modeldeck.services.api.domain import AuthMode, EndpointSpec, to_dict
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.local.controlplane import daemon

SAMPLE = b'{"data": [[1, 2, 3, 4]]}'
NOBODY = 65534

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root to run a second user (os.setuid) against the daemon"
)

#: runs in a child as root, drops to uid/gid 65534 at once, then tries every target
ATTACK = r"""
import json, os, socket, sys
import encodings.idna  # the interpreter's files may be root's only: load before dropping
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
assert os.getuid() == 65534 and os.geteuid() == 65534
targets = json.loads(sys.argv[1])
body = sys.argv[2].encode()
request = (
    b"POST /score HTTP/1.1\r\nHost: replica\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
)
out = []
for kind, where in targets:
    s = socket.socket(socket.AF_UNIX if kind == "unix" else
                      (socket.AF_INET6 if ":" in where[0] else socket.AF_INET))
    s.settimeout(10)
    try:
        s.connect(where if kind == "unix" else tuple(where))
    except OSError as exc:
        out.append({"target": [kind, where], "accepted": False, "why": exc.strerror})
        s.close()
        continue
    answer = b""
    try:
        s.sendall(request)
        while len(answer) < 64:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    except OSError as exc:
        answer = answer or ("error " + str(exc.strerror)).encode()
    s.close()
    out.append({"target": [kind, where], "accepted": True,
                "why": answer.split(b"\r\n", 1)[0].decode("latin-1")})
print(json.dumps(out))
"""

#: the gateway, as uid 65534: with and without the key, and /metrics without its token
AS_NOBODY_THROUGH_GATEWAY = r"""
import json, os, sys, urllib.request, urllib.error
import encodings.idna  # the interpreter's files may be root's only: load before dropping
os.setgroups([]); os.setgid(65534); os.setuid(65534)
uri, key, metrics, token_file = sys.argv[1:5]
def status(url, data=None, headers={}):
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
try:
    open(token_file).read()
    token = "readable"
except OSError as exc:
    token = exc.strerror
body = sys.argv[5].encode()
print(json.dumps({
    "with_key": status(uri, body, {"Authorization": "Bearer " + key,
                                   "Content-Type": "application/json"}),
    "without_key": status(uri, body, {"Content-Type": "application/json"}),
    "metrics": status(metrics),
    "token_file": token,
}))
"""


#: as uid 65534, keyless requests each sent then closed at once: the client socket is
#: orphaned while the gateway reads the request (the kernel then reports its uid as 0)
SEND_AND_CLOSE_AS_NOBODY = r"""
import os, socket, sys, time
import encodings.idna  # the interpreter's files may be root's only: load before dropping
os.setgroups([]); os.setgid(65534); os.setuid(65534)
host, port, path, body = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].encode()
request = (
    b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
)
for _ in range(20):
    s = socket.create_connection((host, port))
    s.sendall(request)
    s.close()
    time.sleep(0.02)
print("[]")
"""


def _as_nobody(script: str, *args: str) -> Any:
    proc = subprocess.run(
        [sys.executable, "-I", "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _replica_processes(daemon_pid: int) -> list[psutil.Process]:
    out = []
    for child in psutil.Process(daemon_pid).children(recursive=True):
        try:
            if "scoring/host.py" in " ".join(child.cmdline()):
                out.append(child)
        except psutil.Error:
            continue
    return out


def _targets(procs: list[psutil.Process], sockets_dir: Path) -> list[tuple[str, Any]]:
    """Every Unix socket path and TCP port the replica processes hold, and the socket
    files in the workspace's replica socket directory."""
    found: set[tuple[str, Any]] = set()
    for proc in procs:
        for conn in proc.net_connections(kind="unix"):
            if conn.laddr:
                found.add(("unix", conn.laddr))
        for conn in proc.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                ip = conn.laddr.ip
                ip = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(ip, ip)
                found.add(("tcp", (ip, conn.laddr.port)))
    for path in sockets_dir.rglob("*"):
        if path.is_socket():
            found.add(("unix", str(path)))
    return sorted(found, key=str)


async def test_no_direct_replica_access_for_another_user(h: Any) -> None:
    home = Path(tempfile.mkdtemp(prefix="mdsh-", dir="/tmp"))  # short: Unix socket paths
    try:
        with h.running_home(home):
            daemon.ensure_daemon()
            async with LocalWorkspace(autostart=False, poll_interval=0.05) as ws:
                await _attack_and_check(ws, h, home)
    finally:
        import shutil

        shutil.rmtree(home, ignore_errors=True)


async def _attack_and_check(ws: LocalWorkspace, h: Any, home: Path) -> None:
    await h.ensure_cluster(ws)
    await h.ensure_model(ws)
    await h.wait(await ws.create_endpoint(EndpointSpec(name="sh-key", compute="myaks")))
    await h.wait(
        await ws.create_endpoint(
            EndpointSpec(name="sh-token", compute="myaks", auth_mode=AuthMode.AML_TOKEN)
        )
    )
    for ep in ("sh-key", "sh-token"):
        await h.wait(await ws.create_deployment(h.deployment("blue", ep), all_traffic=True))

    daemon_pid = int((home / "state" / daemon.PID_NAME).read_text().strip())
    procs = _replica_processes(daemon_pid)
    assert len(procs) == 2  # one replica per endpoint
    sockets_dir = home / "data" / "sock"
    # and the control socket (every /v1 route: /v1/watch, /v1/history, keys): the owner's only
    targets = [*_targets(procs, sockets_dir), ("unix", str(home / "state" / daemon.SOCKET_NAME))]
    unix = [t for t in targets if t[0] == "unix"]
    assert len(unix) >= 2, targets  # each replica's socket was found (the test can fail)
    for _, path in unix:
        st = Path(path).parent.stat()
        assert st.st_uid == 0 and st.st_mode & 0o777 == 0o700, (path, oct(st.st_mode))

    # only the sockets' own directories stay private: open up everything above them
    for d in (home, home / "data", home / "state", sockets_dir):
        d.chmod(0o755)
    results = _as_nobody(ATTACK, json.dumps(targets), SAMPLE.decode())
    accepted = [r for r in results if r["accepted"]]
    print(
        f"direct replica access attempts accepted: {len(accepted)} of {len(results)} "
        f"(targets: {len(unix)} unix sockets, {len(targets) - len(unix)} TCP ports)"
    )
    assert len(results) == len(targets)
    assert accepted == [], accepted
    assert all(r["why"] == "Permission denied" for r in results if r["target"][0] == "unix")

    # the gateway is the way in: with the key (or a token) 200, without 401
    key = (await ws.get_keys("sh-key")).primaryKey
    key_uri = (await ws.get_endpoint("sh-key")).scoring_uri
    token = (await ws.get_token("sh-token")).accessToken
    token_uri = (await ws.get_endpoint("sh-token")).scoring_uri
    async with httpx.AsyncClient(timeout=30) as client:
        for uri, secret in ((key_uri, key), (token_uri, token)):
            ok = await client.post(
                uri, content=SAMPLE, headers={"Authorization": f"Bearer {secret}"}
            )
            assert ok.status_code == 200, ok.text
            assert (await client.post(uri, content=SAMPLE)).status_code == 401

        status = daemon.daemon_status()
        gateway = str(status["gateway"])
        token_file = str(status["metrics_token_file"])
        seen = _as_nobody(
            AS_NOBODY_THROUGH_GATEWAY,
            key_uri,
            key,
            f"{gateway}/metrics",
            token_file,
            SAMPLE.decode(),
        )
        assert seen == {
            "with_key": 200,
            "without_key": 401,
            "metrics": 401,
            "token_file": "Permission denied",
        }
        metrics_token = Path(token_file).read_text().strip()
        scrape = await client.get(
            f"{gateway}/metrics", headers={"Authorization": f"Bearer {metrics_token}"}
        )
        assert scrape.status_code == 200
        assert 'modeldeck_requests_total{endpoint="sh-key",deployment="blue",code="200"}' in (
            scrape.text
        )

    # and no replica address in what a user reads: logs, deployment show
    for ep in ("sh-key", "sh-token"):
        lines = await ws.get_logs(ep, "blue", lines=200)
        texts = [line.text for line in lines]
        assert any(t == "ready" for t in texts), texts
        shown = json.dumps([to_dict(await ws.get_deployment(ep, "blue")), texts])
        for _, path in unix:
            assert path not in shown
        assert str(sockets_dir) not in shown
        assert "127.0.0.1:" not in shown.replace(str(gateway), "")


async def _served(status: dict[str, Any], endpoint: str) -> float:
    """Requests the gateway forwarded to ``endpoint``'s deployments, from its /metrics."""
    token = Path(str(status["metrics_token_file"])).read_text().strip()
    async with httpx.AsyncClient(timeout=30) as client:
        scrape = await client.get(
            f"{status['gateway']}/metrics", headers={"Authorization": f"Bearer {token}"}
        )
    total = 0.0
    for line in scrape.text.splitlines():
        if line.startswith("modeldeck_requests_total{") and f'endpoint="{endpoint}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_a_local_endpoint_takes_its_owners_requests_without_a_key_and_nobody_elses(
    h: Any,
) -> None:
    """az ml's ``--local`` endpoints take requests with no key (deploy-local-endpoint.sh
    curls one so). Here such an endpoint lets in a keyless request only from a loopback
    socket of its owner's uid; another user (uid 65534) still gets 401 without the key and
    200 with it; an endpoint made without --local refuses its owner's keyless request too."""
    home = Path(tempfile.mkdtemp(prefix="mdsl-", dir="/tmp"))
    try:
        with h.running_home(home):
            daemon.ensure_daemon()
            async with LocalWorkspace(autostart=False, poll_interval=0.05) as ws:
                await h.ensure_cluster(ws)
                await h.ensure_model(ws)
                for name, local in (("sl-local", True), ("sl-plain", False)):
                    spec = EndpointSpec(name=name, compute="myaks", local=local)
                    await h.wait(await ws.create_endpoint(spec))
                    await h.wait(
                        await ws.create_deployment(h.deployment("blue", name), all_traffic=True)
                    )
                assert (await ws.get_endpoint("sl-local")).local is True
                local_uri = (await ws.get_endpoint("sl-local")).scoring_uri
                plain_uri = (await ws.get_endpoint("sl-plain")).scoring_uri
                key = (await ws.get_keys("sl-local")).primaryKey
                async with httpx.AsyncClient(timeout=30) as client:
                    own = await client.post(local_uri, content=SAMPLE)
                    assert own.status_code == 200, own.text
                    wrong = await client.post(
                        local_uri, content=SAMPLE, headers={"Authorization": "Bearer nope"}
                    )
                    assert wrong.status_code == 401  # a key given is checked as ever
                    assert (await client.post(plain_uri, content=SAMPLE)).status_code == 401
                for d in (home, home / "data", home / "state"):
                    d.chmod(0o755)
                status = daemon.daemon_status()
                seen = _as_nobody(
                    AS_NOBODY_THROUGH_GATEWAY,
                    local_uri,
                    key,
                    f"{status['gateway']}/metrics",
                    str(status["metrics_token_file"]),
                    SAMPLE.decode(),
                )
                assert seen["with_key"] == 200
                assert seen["without_key"] == 401
                # nor a keyless request whose socket is closed while the gateway reads it
                # (orphaned: its uid read as 0, which is this daemon's owner, root)
                served = await _served(status, "sl-local")
                url = httpx.URL(local_uri)
                _as_nobody(
                    SEND_AND_CLOSE_AS_NOBODY,
                    str(url.host),
                    str(url.port),
                    url.raw_path.decode(),
                    SAMPLE.decode(),
                )
                await asyncio.sleep(1.0)
                assert await _served(status, "sl-local") == served
    finally:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
