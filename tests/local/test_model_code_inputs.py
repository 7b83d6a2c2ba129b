"""Issue 9, point 2: model and code inputs, as the real control plane sees them.

Every refusal is checked twice: through the client (LocalWorkspace, which checks
first) and raw on the daemon's socket (another client, an old CLI), so the daemon's
own rules hold. Large files are sparse (truncate): nothing here fills the disk.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from modeldeck.services.api.domain import ModelSpec, to_dict
from modeldeck.services.api.errors import InvalidInput, Unreachable
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.services.local.controlplane import daemon

pytestmark = pytest.mark.e2e

BOUND_S = 60.0  # only to avoid hangs: assertions are on errors, bytes and files


@pytest.fixture
async def raw(daemon_home) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """Straight to the daemon's socket, past the client's checks."""
    sock = str(daemon_home.state / "modeldeck.sock")
    async with httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=sock), base_url="http://modeldeck", timeout=BOUND_S
    ) as client:
        yield client


def refused(resp: httpx.Response, field: str) -> dict[str, Any]:
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["code"] == "InvalidInput" and err["details"]["field"] == field, err
    assert err.get("fix")
    return err


def store_bytes(data: Path) -> int:
    """Bytes of every file under data/models (the registered copies and .incoming)."""
    total = 0
    for dirpath, _, files in os.walk(data / "models"):
        total += sum(os.lstat(os.path.join(dirpath, f)).st_blocks * 512 for f in files)
    return total


def incoming(data: Path) -> list[str]:
    folder = data / "models" / ".incoming"
    return sorted(os.listdir(folder)) if folder.exists() else []


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


# --------------------------------------------------------------------------- devices


async def test_devices_fifos_sockets_and_proc_are_refused_before_any_copy(  # type: ignore[no-untyped-def]
    workspace, raw, daemon_home, tmp_path
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    sock_dir = tmp_path / "s"
    sock_dir.mkdir()
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(sock_dir / "sock"))
    try:
        for path in ("/dev/zero", "/proc/self", str(fifo), str(sock_dir / "sock")):
            with pytest.raises(InvalidInput) as err:
                await asyncio.wait_for(
                    workspace.create_model(ModelSpec(name="dev", path=path)), BOUND_S
                )
            assert err.value.field == "path" and err.value.value == path
            # the daemon's own check, without the client's
            resp = await raw.post("/v1/models", json={"name": "dev", "path": path})
            err_dict = refused(resp, "path")
            assert path in err_dict["message"]
    finally:
        listener.close()
    assert "socket" in err_dict["details"]["rule"]  # the last one: named for what it is
    assert await workspace.list_models("dev") == []
    assert incoming(daemon_home.data) == []


async def test_dev_zero_writes_nothing_into_the_store(workspace, raw, daemon_home) -> None:  # type: ignore[no-untyped-def]
    before = store_bytes(daemon_home.data)
    resp = await raw.post("/v1/models", json={"name": "zero", "path": "/dev/zero"})
    err = refused(resp, "path")
    assert "/dev" in err["details"]["rule"]
    assert store_bytes(daemon_home.data) - before == 0
    assert incoming(daemon_home.data) == []


# --------------------------------------------------------------------------- links


async def test_a_model_folder_with_a_link_out_is_refused_naming_the_link(  # type: ignore[no-untyped-def]
    workspace, raw, daemon_home, tmp_path
) -> None:
    secret = tmp_path / "passwd"  # stands for /etc/passwd or ~/.ssh: made here, not real
    secret.write_text("root:x:0:0::/root:/bin/sh\n")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    (folder / "passwd").symlink_to(secret)
    with pytest.raises(InvalidInput) as err:
        await workspace.create_model(ModelSpec(name="leaky", path=str(folder)))
    assert err.value.field == "path"
    assert (
        f"invalid path '{folder / 'passwd'}': is a symbolic link to {secret}" in err.value.message
    )
    resp = await raw.post("/v1/models", json={"name": "leaky", "path": str(folder)})
    assert str(folder / "passwd") in refused(resp, "path")["details"]["value"]
    assert await workspace.list_models("leaky") == []
    assert incoming(daemon_home.data) == []
    assert not (daemon_home.data / "models" / "leaky").exists()


async def test_an_in_folder_link_is_stored_as_the_file_it_points_to(  # type: ignore[no-untyped-def]
    workspace, tmp_path
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "v2.json").write_text('{"w": 2}')
    (folder / "model.json").symlink_to("v2.json")
    model = await workspace.create_model(ModelSpec(name="linked", path=str(folder)))
    stored = Path(model.path) / "model.json"
    assert not stored.is_symlink() and stored.read_text() == '{"w": 2}'
    # the store does not depend on the original: change it, the copy stays
    (folder / "v2.json").write_text('{"w": 3}')
    assert stored.read_text() == '{"w": 2}'


# --------------------------------------------------------------------------- size cap


async def test_a_model_over_the_configured_cap_is_refused_and_nothing_is_left(  # type: ignore[no-untyped-def]
    h, tmp_path_factory
) -> None:
    home = tmp_path_factory.mktemp("mcap")
    src = tmp_path_factory.mktemp("src")
    (src / "small.bin").write_bytes(b"s" * 1000)
    (src / "large.bin").write_bytes(b"l" * 8000)
    with h.running_home(home, MODELDECK_MAX_MODEL_BYTES="4KiB") as hm:
        daemon.ensure_daemon()
        async with LocalWorkspace(autostart=False) as ws:
            ok = await ws.create_model(ModelSpec(name="small", path=str(src / "small.bin")))
            assert Path(ok.path).read_bytes() == b"s" * 1000
            with pytest.raises(InvalidInput) as err:
                await ws.create_model(ModelSpec(name="large", path=str(src / "large.bin")))
            assert err.value.field == "path" and "size cap of 4 KiB" in err.value.rule
            assert "MODELDECK_MAX_MODEL_BYTES" in (err.value.fix or "")
            assert [m.name for m in await ws.list_models()] == ["small"]
        assert incoming(hm.data) == []
        assert not (hm.data / "models" / "large").exists()


# --------------------------------------------------------------------------- cancel


def _wait_for_partial(data: Path) -> bool:
    """A copy is under way: .incoming holds a copy's folder with the file in it."""

    def started() -> bool:
        return any(
            (data / "models" / ".incoming" / d / "huge.bin").exists() for d in incoming(data)
        )

    return _wait(started)


def _wait(predicate: Any, timeout: float = BOUND_S) -> bool:
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return True
        done.wait(0.02)
    return bool(predicate())


async def test_a_client_that_goes_away_stops_the_copy_and_the_partial_is_removed(  # type: ignore[no-untyped-def]
    h, tmp_path_factory
) -> None:
    home = tmp_path_factory.mktemp("mcut")
    huge = sparse(tmp_path_factory.mktemp("src") / "huge.bin", 1024**4)  # 1 TiB of holes
    with h.running_home(home, MODELDECK_MAX_MODEL_BYTES="2TiB") as hm:
        daemon.ensure_daemon()
        ws = LocalWorkspace(autostart=False)
        task = asyncio.ensure_future(ws.create_model(ModelSpec(name="huge", path=str(huge))))
        assert await asyncio.to_thread(_wait_for_partial, hm.data)
        task.cancel()  # the CLI interrupted: its connection closes
        with pytest.raises(asyncio.CancelledError):
            await task
        await ws.close()
        assert await asyncio.to_thread(_wait, lambda: incoming(hm.data) == [])
        log = (hm.state / "daemon.log").read_text()
        assert "the client went away; cancelling" in log
        assert "Traceback" not in log and "Error handling request" not in log
        async with LocalWorkspace(autostart=False) as again:  # the daemon is still fine
            assert await again.list_models("huge") == []


async def test_daemon_stop_does_not_wait_for_a_copy_in_progress(  # type: ignore[no-untyped-def]
    h, tmp_path_factory
) -> None:
    home = tmp_path_factory.mktemp("mstop")
    huge = sparse(tmp_path_factory.mktemp("src") / "huge.bin", 1024**4)
    with h.running_home(home, MODELDECK_MAX_MODEL_BYTES="2TiB") as hm:
        pid = daemon.ensure_daemon()["pid"]
        ws = LocalWorkspace(autostart=False)
        task = asyncio.ensure_future(ws.create_model(ModelSpec(name="huge", path=str(huge))))
        try:
            assert await asyncio.to_thread(_wait_for_partial, hm.data)
            # a graceful stop: the daemon logs "stopped" itself (a SIGKILL would not)
            assert await asyncio.to_thread(daemon.stop_daemon, 20.0)
            with pytest.raises(Unreachable):  # the copy was cancelled, the client told so
                await asyncio.wait_for(task, BOUND_S)
        finally:
            task.cancel()
            await ws.close()
        log = (hm.state / "daemon.log").read_text()
        assert log.rstrip().endswith("stopped"), log[-2000:]
        assert "Traceback" not in log
        assert incoming(hm.data) == []
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# --------------------------------------------------------------------------- code


async def test_scoring_script_outside_the_code_folder_is_refused_by_the_daemon(  # type: ignore[no-untyped-def]
    workspace, raw, h, daemon_home, tmp_path
) -> None:
    await h.make_endpoint(workspace, "inputs-ep")
    before = await h.snapshot(workspace)
    code = tmp_path / "blue"
    code.mkdir()
    (code / "score.py").write_text((h.EXAMPLES / "blue" / "score.py").read_text())
    green = h.EXAMPLES / "green" / "score.py"
    for script in ("../green/score.py", str(green)):
        spec = to_dict(h.deployment("outside", "inputs-ep", code=str(h.EXAMPLES / "blue")))
        spec["code_configuration"]["scoring_script"] = script
        resp = await raw.post("/v1/endpoints/inputs-ep/deployments", json={"spec": spec})
        err = refused(resp, "code_configuration.scoring_script")
        assert script in err["details"]["value"]
    # a script that is a link out of the folder, and a code folder with a link out
    (code / "score.py").unlink()
    (code / "score.py").symlink_to(green)
    spec = to_dict(h.deployment("outside", "inputs-ep", code=str(code)))
    resp = await raw.post("/v1/endpoints/inputs-ep/deployments", json={"spec": spec})
    assert "leads outside" in refused(resp, "code_configuration.scoring_script")["message"]
    (code / "score.py").unlink()
    (code / "score.py").write_text((h.EXAMPLES / "blue" / "score.py").read_text())
    secret = tmp_path / "token.txt"
    secret.write_text("not for the store")
    (code / "token.txt").symlink_to(secret)
    with pytest.raises(InvalidInput) as exc:
        await workspace.create_deployment(h.deployment("outside", "inputs-ep", code=str(code)))
    assert exc.value.field == "code_configuration.code"
    assert str(code / "token.txt") in exc.value.message
    assert await h.snapshot(workspace) == before  # no deployment, Failed or otherwise
    assert not (daemon_home.data / "code" / "inputs-ep" / "outside").exists()


async def test_code_over_its_cap_is_refused_before_any_change(  # type: ignore[no-untyped-def]
    h, tmp_path_factory
) -> None:
    home = tmp_path_factory.mktemp("ccap")
    code = tmp_path_factory.mktemp("code")
    (code / "score.py").write_text((h.EXAMPLES / "blue" / "score.py").read_text())
    sparse(code / "data.bin", 10 * 1024 * 1024)
    with h.running_home(home, MODELDECK_MAX_CODE_BYTES="1MiB") as hm:
        daemon.ensure_daemon()
        async with LocalWorkspace(autostart=False, poll_interval=0.05) as ws:
            await h.make_endpoint(ws, "cap-ep")
            with pytest.raises(InvalidInput) as err:
                await ws.create_deployment(h.deployment("big", "cap-ep", code=str(code)))
            assert err.value.field == "code_configuration.code"
            assert "size cap of 1 MiB" in err.value.rule
            assert "MODELDECK_MAX_CODE_BYTES" in (err.value.fix or "")
            assert await ws.list_deployments("cap-ep") == []
        leftovers = list((hm.data / "code").rglob("*")) if (hm.data / "code").exists() else []
        assert [p for p in leftovers if p.is_file()] == []
