"""A cluster that cannot be reached shows its error in its row; the rest keep updating.

A Kubernetes cluster is attached through the dashboard against the faithful fake API
server of tests/kubernetes (real HTTP on loopback, through a real kubeconfig); the
server is then stopped, as a cluster that goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import ClusterSpec
from modeldeck.services.local.controlplane import daemon
from modeldeck.tui.app import ModeldeckApp
from modeldeck.tui.screens.dialogs import ConfirmScreen
from modeldeck.tui.screens.forms import FormScreen
from modeldeck.tui.widgets.resource_table import ResourceTable
from textual.widgets import Input

from tests.support import fake_apiserver
from tests.support.daemon import running_home

pytestmark = pytest.mark.e2e


@pytest.fixture
def kube_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    fake = fake_apiserver.FakeKube().start()
    home = tmp_path_factory.mktemp("mdk")
    kubeconfig = fake_apiserver.write_kubeconfig(
        home / "kubeconfig", {"fake": (fake.url, "")}, current="fake"
    )
    with running_home(home, KUBECONFIG=str(kubeconfig)):
        daemon.ensure_daemon()
        try:
            yield home, fake
        finally:
            if fake.loop is not None and not fake.loop.is_closed():
                fake.stop()


@pytest.fixture
async def kube_workspace(kube_home: tuple[Path, Any]) -> AsyncIterator[Any]:
    from modeldeck.services.local.client import LocalWorkspace

    ws = LocalWorkspace(autostart=False, poll_interval=0.05)
    try:
        yield ws
    finally:
        await ws.close()


def _row(app: ModeldeckApp, key: str) -> str:
    cells = app.screen.query_one("#table", ResourceTable).cells(key) or ()
    return " ".join(getattr(c, "plain", str(c)) for c in cells)


async def test_unreachable_cluster_is_isolated(
    kube_workspace: Any, kube_home: tuple[Path, Any], h: Any
) -> None:
    _, fake = kube_home
    ws = kube_workspace
    await asyncio.wait_for((await ws.create_cluster(ClusterSpec(name="pool-b"))).wait(), 60)
    app = ModeldeckApp(ws, poll_scale=0.25, initial_view="clusters")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("a")
        assert isinstance(app.screen, FormScreen)
        await pilot.press(*"kube-a")
        app.screen.query_one("#f-kube_context", Input).value = "fake"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await h.eventually(
            lambda: "Ready" in _row(app, "kube-a") and "kubernetes" in _row(app, "kube-a"), pilot
        )
        assert "0/15.9" in _row(app, "kube-a")  # its vCPU total, read from the fake nodes

        fake.stop()  # the cluster goes away
        await h.eventually(lambda: "⚠" in _row(app, "kube-a"), pilot)
        assert (
            app.screen.query_one("#error-banner").has_class("-shown") is False
        )  # the view is fine

        # the rest keep updating
        await asyncio.wait_for((await ws.scale_cluster("pool-b", 4)).wait(), 60)
        await h.eventually(lambda: _row(app, "pool-b").split()[4] == "4", pilot)
        assert "⚠" not in _row(app, "pool-b")

        # detach asks first and says what keeps running; then the row goes
        grid = app.screen.query_one("#table", ResourceTable)
        grid.move_cursor(row=grid.get_row_index("kube-a"))
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        assert "What keeps running" in app.screen.message
        assert "keep running and serving" in app.screen.message
        await pilot.press("y")
        await h.eventually(lambda: "kube-a" not in grid.all_keys, pilot)
    assert "kube-a" not in {c.name for c in await ws.list_clusters()}


async def test_metrics_say_why_cpu_and_memory_are_missing(
    kube_workspace: Any, kube_home: tuple[Path, Any], h: Any, examples: Path
) -> None:
    """A cluster without the metrics server: the metrics view says so, not a blank."""
    from modeldeck.services.api.domain import (
        CodeConfiguration,
        DeploymentSpec,
        DriverKind,
        EndpointSpec,
        ModelSpec,
    )
    from textual.widgets import Static

    _, fake = kube_home
    ws = kube_workspace
    spec = ClusterSpec(name="kube-m", driver=DriverKind.KUBERNETES, kube_context="fake")
    await asyncio.wait_for((await ws.attach_cluster(spec)).wait(), 60)
    await ws.create_model(ModelSpec(name="sklearn-demo", path=str(examples / "model")))
    await asyncio.wait_for(
        (await ws.create_endpoint(EndpointSpec(name="kube-ep", compute="kube-m"))).wait(), 60
    )
    dep = DeploymentSpec(
        name="blue",
        endpoint_name="kube-ep",
        model="azureml:sklearn-demo:1",
        code_configuration=CodeConfiguration(str(examples / "blue"), "score.py"),
    )
    await asyncio.wait_for((await ws.create_deployment(dep, all_traffic=True)).wait(), 60)
    fake.metrics_server = False  # metrics.k8s.io is no longer served

    app = ModeldeckApp(ws, poll_scale=0.25, initial_view="metrics")
    async with app.run_test(size=(120, 40)) as pilot:

        def title() -> str:
            return str(app.screen.query_one("#metric-title", Static).render())

        await h.eventually(lambda: "⚠" in title(), pilot)
        assert "kube-ep" in title() and "metrics server" in title()
