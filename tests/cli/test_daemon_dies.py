"""A control plane that dies mid-command: one clear Unreachable (exit 6), never a socket error."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from modeldeck.services.api.errors import Unreachable
from modeldeck.services.local.client import LocalWorkspace

from .conftest import Cli

pytestmark = pytest.mark.e2e

WAIT_S = 60.0  # only to avoid hangs
SOCKET_WORDS = ("unexpected", "Traceback", "h11", "ConnectionResetError", "peer", "Errno")


def daemon_pid(cli: Cli) -> int:
    status = cli("daemon status -o json").json()
    assert status["running"] is True, status
    return int(status["pid"])


def wait_for(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=WAIT_S)
    return proc.returncode, out, err


def assert_said_once_and_clearly(
    code: int, err: str, cli: Cli, what: str, *, between_requests: bool = False
) -> None:
    """``between_requests``: the kill may also land between two of the command's requests
    (its polls of an operation): the next one finds no control plane, and says so."""
    log = cli.home / "state" / "daemon.log"
    assert code == 6, err  # Unreachable
    verbs = (
        ("closed the connection", "stopped answering")
        if between_requests
        else ("closed the connection",)
    )
    assert any(f"the local control plane {verb} {what}" in err for verb in verbs), err
    assert f"it may have crashed: see its log, {log}" in err, err
    assert "fix: check it with: modeldeck daemon status" in err, err
    for word in SOCKET_WORDS:
        assert word not in err, (word, err)


def deploy(cli: Cli, blue: str = "blue.yml") -> None:
    cli("cluster create --name myaks -o none")
    cli("model create --name sklearn-demo --path ./model -o none")
    cli("online-endpoint create -f endpoint.yml -o none")
    cli(f"online-deployment create -n blue -e my-endpoint -f {blue} --all-traffic -o none")


def test_killed_while_following_logs(cli: Cli) -> None:
    deploy(cli)
    follow = cli.popen("online-deployment get-logs -n blue -e my-endpoint --follow")
    try:
        assert follow.stdout is not None
        first = follow.stdout.readline()  # the stream is open: the history came through
        assert first, follow.stderr.read() if follow.stderr else ""
        os.kill(daemon_pid(cli), signal.SIGKILL)
        code, _, err = finish(follow)
    finally:
        if follow.poll() is None:
            follow.kill()
    assert_said_once_and_clearly(code, err, cli, "while following the logs")
    # the next command starts a new control plane, with everything kept
    assert cli("online-deployment list -e my-endpoint --query '[].name'").json() == ["blue"]


def slow_deployment(cli: Cli) -> Path:
    """slow.yml: blue whose init() never ends (it sleeps) once it has created the file returned:
    while it exists the create command waits for the operation (its replica is not ready)."""
    started = cli.cwd / "init-started"
    cli.cwd.joinpath("slow").mkdir()
    score = (cli.cwd / "blue" / "score.py").read_text()
    slow_init = (
        "def init() -> None:\n    import pathlib, time\n\n"
        f"    pathlib.Path({str(started)!r}).touch()\n    time.sleep(120)\n    _init()\n"
    )
    (cli.cwd / "slow" / "score.py").write_text(
        score.replace("def init() -> None:", "def _init() -> None:") + "\n\n" + slow_init
    )
    (cli.cwd / "slow.yml").write_text(
        (cli.cwd / "blue.yml").read_text().replace("code: ./blue", "code: ./slow")
    )
    cli("cluster create --name myaks -o none")
    cli("model create --name sklearn-demo --path ./model -o none")
    cli("online-endpoint create -f endpoint.yml -o none")
    return started


def kill_while_creating(cli: Cli, started: Path, workspace: str = "") -> tuple[int, str]:
    """Create the slow deployment, kill the control plane once its replica runs init()
    (the command is then waiting for the operation: its POST was answered long before);
    the command's exit code and stderr."""
    create = cli.popen(f"online-deployment create -n blue -e my-endpoint -f slow.yml{workspace}")
    try:
        wait_for(started.exists, "the replica's init() to start")
        os.kill(daemon_pid(cli), signal.SIGKILL)
        code, _, err = finish(create)
    finally:
        if create.poll() is None:
            create.kill()
    return code, err


def test_killed_while_a_deployment_is_being_created(cli: Cli) -> None:
    code, err = kill_while_creating(cli, slow_deployment(cli))
    what = "mid-command (GET /v1/operations/"
    assert_said_once_and_clearly(code, err, cli, what, between_requests=True)
    assert "check whether the change was made" not in err  # a GET can simply be repeated


def test_killed_between_two_polls_of_the_operation(cli: Cli) -> None:
    """The command polls the operation every 2 s, each poll answered at once: the kill lands
    between two polls. The next poll finds no control plane and says so (exit 6, its log);
    it does not start a new one, which could only answer that the operation was lost
    ('interrupted', exit 1: what it said before)."""
    started = slow_deployment(cli)
    config = cli.home / "config"
    config.mkdir(mode=0o700, exist_ok=True)
    (config / "config.toml").write_text(
        '[workspaces.slowpoll]\nprovider = "local"\npoll_interval = 2.0\nlong_poll = 0.0\n'
    )
    os.chmod(config / "config.toml", 0o600)
    code, err = kill_while_creating(cli, started, " -w slowpoll")
    what = "mid-command (GET /v1/operations/"
    assert_said_once_and_clearly(code, err, cli, what, between_requests=True)
    assert "interrupted" not in err
    # the next command starts a new control plane, which brings the deployment back
    assert cli("online-deployment list -e my-endpoint --query '[].name'").json() == ["blue"]


def _rst_server(path: Path, ready: threading.Event, done: threading.Event) -> None:
    """A peer that dies mid-request: reads a little of it, then closes with data unread."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind(str(path))
        srv.listen(1)
        ready.set()
        conn, _ = srv.accept()
        conn.recv(1024)
        conn.close()  # unread data: the writer gets EPIPE / ECONNRESET
        done.wait(WAIT_S)


async def test_a_connection_reset_while_sending_is_unreachable(
    md_home: Path,
) -> None:
    state = md_home / "state"
    state.mkdir(mode=0o700)
    ready, done = threading.Event(), threading.Event()
    server = threading.Thread(
        target=_rst_server, args=(state / "modeldeck.sock", ready, done), daemon=True
    )
    server.start()
    assert ready.wait(WAIT_S)
    try:
        async with LocalWorkspace(autostart=False) as ws:
            with pytest.raises(Unreachable) as exc:
                await asyncio.wait_for(ws.invoke("my-endpoint", b"x" * (16 << 20)), WAIT_S)
    finally:
        done.set()
        server.join(WAIT_S)
    message = str(exc.value)
    assert "closed the connection mid-command (POST /v1/endpoints/my-endpoint/invoke)" in message
    assert "check whether the change was made" in message  # a POST is not blindly repeated
    for word in SOCKET_WORDS:
        assert word not in message, (word, message)
