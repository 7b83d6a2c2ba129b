"""README tour screenshots, taken by the app itself (``App.save_screenshot``) as SVG.

Starts a real local workspace in a temporary MODELDECK_HOME (its control plane, real
scoring processes behind the real gateway), builds the walkthrough's state (a pool, the
example model, an endpoint with blue and green deployments at 90/10, some requests),
then drives the dashboard through each screen and saves ``docs/img/*.svg``. Last, a
deployment whose ``init()`` raises (``red``) is given 10% of the traffic through the
Traffic screen's confirmation, for the Degraded endpoint (``traffic-health``) and the
endpoint's History (``history``).
Usage: ``python docs/screenshots.py [--out docs/img] [--size 120x40]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


async def build_state() -> None:
    from modeldeck.services.api.domain import (
        ClusterSpec,
        CodeConfiguration,
        DeploymentSpec,
        EndpointPatch,
        EndpointSpec,
        ModelSpec,
        Resources,
        ResourceSet,
    )
    from modeldeck.services.local.client import LocalWorkspace

    ws = LocalWorkspace()
    try:
        await (await ws.create_cluster(ClusterSpec(name="myaks"))).wait()
        await (
            await ws.create_cluster(
                ClusterSpec(
                    name="devbox", purpose="DevTest", agent_count=1, vm_size="Standard_D2_v2"
                )
            )
        ).wait()  # type: ignore[arg-type]
        await ws.create_model(
            ModelSpec(
                name="sklearn-demo",
                path=str(EXAMPLES / "model"),
                description="the walkthrough's model",
            )
        )
        await (
            await ws.create_endpoint(
                EndpointSpec(
                    name="my-endpoint", compute="myaks", description="the walkthrough's endpoint"
                )
            )
        ).wait()
        for name in ("blue", "green"):
            spec = DeploymentSpec(
                name,
                "my-endpoint",
                "azureml:sklearn-demo:1",
                CodeConfiguration(str(EXAMPLES / name), "score.py"),
                resources=Resources(requests=ResourceSet(cpu=0.5, memory_gb=0.5)),
            )
            await (await ws.create_deployment(spec)).wait()
        await (
            await ws.update_endpoint(
                "my-endpoint", EndpointPatch(traffic={"blue": 90, "green": 10}, control="blue")
            )
        ).wait()
    finally:
        await ws.close()


async def tour(out: Path, size: tuple[int, int]) -> list[Path]:
    from modeldeck.services.local.client import LocalWorkspace
    from modeldeck.tui.app import ModeldeckApp

    saved: list[Path] = []
    app = ModeldeckApp(LocalWorkspace(autostart=False), poll_scale=0.5)
    traffic = asyncio.ensure_future(requests())

    async def shot(pilot: object, name: str, wait: float = 1.5) -> None:
        await pilot.pause(wait)  # type: ignore[attr-defined]
        path = app.save_screenshot(f"{name}.svg", path=str(out))
        saved.append(Path(path))

    async with app.run_test(size=size) as pilot:
        await shot(pilot, "endpoints")
        await pilot.press("enter")
        await shot(pilot, "endpoint-detail")
        await pilot.press("t")
        await pilot.pause(1.0)
        await pilot.press("r", "down", "shift+right")  # stage green +10, blue takes the rest
        await shot(pilot, "traffic", 0.5)
        await pilot.press("escape")
        await pilot.press("k")
        await shot(pilot, "keys")
        await pilot.press("escape")
        await pilot.press("l")
        await shot(pilot, "logs", 2.0)
        await pilot.press("escape")
        await pilot.press("m")
        await pilot.press("W")  # the 5m window: the history the control plane sampled so far
        for _ in range(60):  # a minute of samples for the plots
            await pilot.pause(1.0)
        await shot(pilot, "metrics", 0.5)
        await pilot.press("escape")
        for view, key in (("deployments", "2"), ("clusters", "3"), ("models", "4")):
            await pilot.press(key)
            await shot(pilot, view)
        await pilot.press("question_mark")
        await shot(pilot, "help", 0.5)
        await pilot.press("escape")
        await add_failing_deployment(Path(os.environ["MODELDECK_HOME"]) / "red")
        await pilot.press("1")
        await pilot.pause(1.0)
        await pilot.press("t")
        await pilot.pause(1.5)
        # stage red +10 (blue, the default, gives it) and apply: the dialog asks; yes
        await pilot.press("r", "down", "down", "shift+right", "enter")
        await pilot.pause(1.0)
        await pilot.press("y")
        await shot(pilot, "traffic-health", 3.0)
        await pilot.press("escape")
        await pilot.press("h")
        await pilot.pause(1.5)
        # the cursor on the newest change (the traffic given to red): its status line and u
        table = app.screen.query_one("#table")
        table.move_cursor(row=table.get_row_index("000000"))  # type: ignore[attr-defined]
        await shot(pilot, "history", 0.5)
    traffic.cancel()
    return saved


async def add_failing_deployment(code: Path) -> None:
    """``red``: a deployment whose ``init()`` raises, so its replica is READY 0/1, Failed."""
    from modeldeck.services.api.domain import (
        CodeConfiguration,
        DeploymentSpec,
        Resources,
        ResourceSet,
    )
    from modeldeck.services.api.errors import ModeldeckError
    from modeldeck.services.local.client import LocalWorkspace

    shutil.rmtree(code, ignore_errors=True)
    code.mkdir(parents=True)
    (code / "score.py").write_text(
        "def init():\n    raise RuntimeError('model file is corrupt')\n\n"
        "def run(raw_data):\n    return raw_data\n"
    )
    spec = DeploymentSpec(
        "red",
        "my-endpoint",
        "azureml:sklearn-demo:1",
        CodeConfiguration(str(code), "score.py"),
        resources=Resources(requests=ResourceSet(cpu=0.5, memory_gb=0.5)),
    )
    ws = LocalWorkspace(autostart=False)
    try:
        await (await ws.create_deployment(spec)).wait()
    except ModeldeckError:
        pass  # expected: its init() raised
    finally:
        await ws.close()


async def requests() -> None:
    """Steady traffic while the tour runs, so the metrics have something to show."""
    from modeldeck.services.local.client import LocalWorkspace

    body = (EXAMPLES / "sample-request.json").read_bytes()
    ws = LocalWorkspace(autostart=False)
    try:
        while True:
            await ws.invoke("my-endpoint", body)
            await asyncio.sleep(0.05)
    finally:
        await ws.close()


GATEWAY_PORT = 8080  # the port Azure ML's local endpoints use, as in the docs' examples


def _free_or_any(port: int) -> int:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return 0  # taken: any free port (the pictures then differ in the URI only)
    return port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"))
    parser.add_argument("--size", default="120x40")
    args = parser.parse_args()
    cols, rows = (int(x) for x in args.size.split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # a fresh home at a fixed path: the paths the logs print are the same from run to run
    home = Path(tempfile.gettempdir()) / "modeldeck-tour"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(mode=0o700)
    os.environ["MODELDECK_HOME"] = str(home)
    # the scoring URI in the pictures stays the same from run to run (when the port is free)
    os.environ.setdefault("MODELDECK_GATEWAY_PORT", str(_free_or_any(GATEWAY_PORT)))
    from modeldeck.services.local.controlplane import daemon

    daemon.ensure_daemon()
    try:
        asyncio.run(build_state())
        for path in asyncio.run(tour(out, (cols, rows))):
            print(path)
    finally:
        daemon.stop_daemon()


if __name__ == "__main__":
    main()
