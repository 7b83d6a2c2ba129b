"""Snapshots of every screen at 80x24 and 120x40, with data, empty and in error.

Deterministic by construction: the app runs with ``autoload=False`` and each screen
is given fixed domain objects through ``show_data`` (what a successful fetch draws),
so no clock, port or key reaches the picture. The error state of the first screen is
real: a local workspace whose control plane does not answer (auto-start off).
Update with ``pytest tests/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from modeldeck.services.api.domain import (
    AuthMode,
    Cluster,
    ClusterPurpose,
    CodeConfiguration,
    Deployment,
    DeploymentRole,
    DeploymentSpec,
    DriverKind,
    Endpoint,
    EndpointKeys,
    LogLine,
    MetricSample,
    MetricsHistory,
    Model,
    ProvisioningState,
    Resources,
    ResourceSet,
)
from modeldeck.services.local.client import LocalWorkspace
from modeldeck.tui.app import ModeldeckApp
from textual.pilot import Pilot
from textual.widgets import Input

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
OK = ProvisioningState.SUCCEEDED
URI = "http://127.0.0.1:8080/api/v1/endpoint/my-endpoint/score"

CLUSTERS = [
    Cluster(
        "myaks",
        DriverKind.POOL,
        ClusterPurpose.FAST_PROD,
        OK,
        3,
        "Standard_D3_v2",
        12,
        42,
        1.0,
        1.0,
        endpoints=2,
    ),
    Cluster(
        "devbox", DriverKind.POOL, ClusterPurpose.DEV_TEST, OK, 1, "Standard_D2_v2", 2, 7, 0, 0
    ),
    Cluster(
        "aks-prod",
        DriverKind.KUBERNETES,
        ClusterPurpose.FAST_PROD,
        OK,
        4,
        None,
        16,
        64,
        kube_context="prod",
        namespace="ml",
        error="cluster did not answer within 5 s",
    ),
]
MODELS = [
    Model("sklearn-demo", 1, "/m/sklearn-demo/1", "the walkthrough's model"),
    Model("sklearn-demo", 2, "/m/sklearn-demo/2", "retrained"),
    Model("fraud", 1, "/m/fraud/1"),
]
ENDPOINTS = [
    Endpoint(
        "my-endpoint", "myaks", AuthMode.KEY, URI, {"blue": 90, "green": 10}, {}, OK, control="blue"
    ),
    Endpoint(
        "token-ep", "myaks", AuthMode.AML_TOKEN, URI.replace("my-endpoint", "token-ep"), {}, {}, OK
    ),
    Endpoint(
        "edge",
        "aks-prod",
        AuthMode.KEY,
        URI.replace("my-endpoint", "edge"),
        {},
        {},
        ProvisioningState.FAILED,
        error="cluster aks-prod did not answer",
    ),
]


def _dep(
    name: str,
    endpoint: str,
    traffic: int,
    *,
    ready: int = 1,
    state: ProvisioningState = OK,
    error: str | None = None,
    model: str = "azureml:sklearn-demo:1",
    control: bool = False,
    mirror: int = 0,
) -> Deployment:
    spec = DeploymentSpec(
        name,
        endpoint,
        model,
        CodeConfiguration(f"/code/{name}", "score.py"),
        resources=Resources(requests=ResourceSet(cpu=0.5, memory_gb=0.5)),
        role=DeploymentRole.CONTROL if control else DeploymentRole.TREATMENT,
    )
    return Deployment(spec, state, ready, 1, traffic, mirror, error)


DEPLOYMENTS = [
    _dep("blue", "my-endpoint", 90, control=True),
    _dep("green", "my-endpoint", 10, model="azureml:sklearn-demo:2"),
    _dep("shadow", "my-endpoint", 0, mirror=20),
    _dep("canary", "token-ep", 0, ready=0, state=ProvisioningState.CREATING),
    _dep(
        "crashy",
        "token-ep",
        0,
        ready=0,
        state=ProvisioningState.FAILED,
        error="init() failed: FileNotFoundError: model.json",
    ),
]
MY_DEPLOYMENTS = [d for d in DEPLOYMENTS if d.endpoint_name == "my-endpoint"]
RPS = {"my-endpoint": 12.5, "token-ep": 0.0}


def _samples(ts: float, k: int) -> list[MetricSample]:
    return [
        MetricSample(
            ts,
            "my-endpoint",
            "blue",
            100 * k,
            10.0 + (k % 5),
            0,
            0.0,
            4.0 + k % 3,
            9.0 + k % 4,
            cpu_percent=20.0 + k % 7,
            memory_mb=80,
            replicas_ready=1,
            replicas_desired=1,
        ),
        MetricSample(
            ts,
            "my-endpoint",
            "green",
            10 * k,
            1.0 + (k % 3),
            k // 10,
            0.02 * (k % 4),
            5.0 + k % 2,
            12.0 + k % 5,
            cpu_percent=5.0 + k % 3,
            memory_mb=82,
            replicas_ready=1,
            replicas_desired=1,
        ),
    ]


LOG_LINES = [
    LogLine(0, "my-endpoint", "blue", "blue-0", "system", "starting replica blue-0 (pid 1234)"),
    LogLine(0, "my-endpoint", "blue", "blue-0", "log", "blue: model loaded from /model/model.json"),
    LogLine(0, "my-endpoint", "blue", "blue-1", "log", "blue: model loaded from /model/model.json"),
    LogLine(
        0, "my-endpoint", "blue", "blue-0", "stdout", '{"event": "score", "rows": 2, "ms": 3.1}'
    ),
    LogLine(0, "my-endpoint", "blue", "blue-1", "stderr", "Traceback (most recent call last):"),
    LogLine(0, "my-endpoint", "blue", "blue-1", "stderr", '  File "score.py", line 14, in init'),
    LogLine(0, "my-endpoint", "blue", "blue-1", "stderr", "FileNotFoundError: model.json"),
    LogLine(0, "my-endpoint", "blue", "blue-0", "stdout", "POST /score 200 3.1ms"),
]


def app_for(view: str = "endpoints", **kwargs: Any) -> ModeldeckApp:
    ws = LocalWorkspace("local", autostart=False)
    return ModeldeckApp(ws, initial_view=view, autoload=False, theme="dark", **kwargs)


def feeding(
    data: Any, push: Callable[[], Any] | None = None, after: Callable[[Pilot], Any] | None = None
) -> Callable[[Pilot], Any]:
    async def run_before(pilot: Pilot) -> None:
        await pilot.pause()
        if push is not None:
            await pilot.app.push_screen(push())
            await pilot.pause()
        pilot.app.screen.show_data(data)
        await pilot.pause(0.3)  # the tables size their columns when idle
        if after is not None:
            result = after(pilot)
            if result is not None:
                await result
        for inp in pilot.app.screen.query(Input):
            inp.cursor_blink = False
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_endpoints(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(
        app_for("endpoints"), terminal_size=size, run_before=feeding((ENDPOINTS, RPS))
    )


@pytest.mark.parametrize("size", SIZES)
def test_endpoints_empty(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for("endpoints"), terminal_size=size, run_before=feeding(([], {})))


@pytest.mark.parametrize("size", SIZES)
def test_endpoints_control_plane_unreachable(
    snap_compare: Any, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real error: no control plane at a fixed (absent) home, auto-start off."""
    monkeypatch.setenv("MODELDECK_HOME", "/nonexistent/modeldeck-home")
    app = ModeldeckApp(
        LocalWorkspace("local", autostart=False),
        initial_view="endpoints",
        poll_scale=0,
        theme="dark",
    )

    async def settle(pilot: Pilot) -> None:
        for _ in range(100):
            if getattr(pilot.app.screen, "last_error", None) is not None:
                break
            await pilot.pause(0.05)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_clusters_with_one_unreachable(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for("clusters"), terminal_size=size, run_before=feeding(CLUSTERS))


@pytest.mark.parametrize("size", SIZES)
def test_models(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for("models"), terminal_size=size, run_before=feeding(MODELS))


@pytest.mark.parametrize("size", SIZES)
def test_deployments(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for("deployments"), terminal_size=size, run_before=feeding(DEPLOYMENTS))


@pytest.mark.parametrize("size", SIZES)
def test_deployments_filtered(snap_compare: Any, size: tuple[int, int]) -> None:
    run = feeding(DEPLOYMENTS)
    assert snap_compare(
        app_for("deployments"),
        terminal_size=size,
        run_before=run,
        press=["slash", "b", "l", "u", "e", "enter"],
    )


@pytest.mark.parametrize("size", SIZES)
def test_endpoint_detail(snap_compare: Any, size: tuple[int, int]) -> None:
    from modeldeck.tui.screens.endpoint_detail import EndpointDetailScreen

    run = feeding(
        (ENDPOINTS[0], MY_DEPLOYMENTS, None), push=lambda: EndpointDetailScreen("my-endpoint")
    )
    assert snap_compare(app_for(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_traffic_with_staged_change(snap_compare: Any, size: tuple[int, int]) -> None:
    from modeldeck.tui.screens.traffic import TrafficScreen

    run = feeding((ENDPOINTS[0], MY_DEPLOYMENTS), push=lambda: TrafficScreen("my-endpoint"))
    # default takes the rest (blue), then green +10: blue 80 green 20, shown as a diff
    assert snap_compare(
        app_for(), terminal_size=size, run_before=run, press=["r", "down", "shift+right"]
    )


@pytest.mark.parametrize("size", SIZES)
def test_keys_masked(snap_compare: Any, size: tuple[int, int]) -> None:
    from modeldeck.tui.screens.keys import KeysScreen

    keys = EndpointKeys("primary-key-never-shown", "secondary-key-never-shown")
    run = feeding((ENDPOINTS[0], keys, None), push=lambda: KeysScreen("my-endpoint"))
    assert snap_compare(app_for(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_regenerate_key_confirmation(snap_compare: Any, size: tuple[int, int]) -> None:
    from modeldeck.tui.screens.keys import KeysScreen

    keys = EndpointKeys("primary-key-never-shown", "secondary-key-never-shown")
    run = feeding((ENDPOINTS[0], keys, None), push=lambda: KeysScreen("my-endpoint"))
    assert snap_compare(app_for(), terminal_size=size, run_before=run, press=["r"])


@pytest.mark.parametrize("size", SIZES)
def test_logs_filtered(snap_compare: Any, size: tuple[int, int]) -> None:
    from modeldeck.tui.screens.logs import LogsScreen

    async def lines(pilot: Pilot) -> None:
        pilot.app.screen.feed_many(LOG_LINES)
        await pilot.pause(0.2)

    run = feeding(None, push=lambda: LogsScreen("my-endpoint", "blue"), after=lines)
    assert snap_compare(
        app_for(),
        terminal_size=size,
        run_before=run,
        press=["slash", "m", "o", "d", "e", "l", "enter"],
    )


@pytest.mark.parametrize("size", SIZES)
def test_logs_json_and_traceback(snap_compare: Any, size: tuple[int, int]) -> None:
    from modeldeck.tui.screens.logs import LogsScreen

    async def lines(pilot: Pilot) -> None:
        pilot.app.screen.feed_many(LOG_LINES)
        await pilot.pause(0.2)

    run = feeding(None, push=lambda: LogsScreen("my-endpoint", "blue"), after=lines)
    assert snap_compare(app_for(), terminal_size=size, run_before=run, press=["j", "e"])


@pytest.mark.parametrize("size", SIZES)
def test_metrics_control_vs_treatment(snap_compare: Any, size: tuple[int, int]) -> None:
    from modeldeck.tui.screens.metrics import MetricsScreen

    def make() -> MetricsScreen:
        screen = MetricsScreen("my-endpoint")
        screen.clock = lambda: 1060.0
        return screen

    async def history(pilot: Pilot) -> None:
        screen = pilot.app.screen
        # the control plane's history of the hour (a point a minute), then live samples
        past = [p for j in range(59) for p in _samples(1060.0 - 3540 + 60 * j, j)]
        screen.show_data(([], [ENDPOINTS[0]], MetricsHistory("1h", 60, past)))
        for k in range(60):
            screen.show_data((_samples(1000.0 + k, k), [ENDPOINTS[0]]))
        await pilot.pause()

    run = feeding(([], [ENDPOINTS[0]]), push=make, after=history)
    assert snap_compare(app_for(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_metrics_empty(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for("metrics"), terminal_size=size, run_before=feeding(([], [])))


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(
        app_for("endpoints"),
        terminal_size=size,
        run_before=feeding((ENDPOINTS, RPS)),
        press=["question_mark"],
    )


@pytest.mark.parametrize("size", SIZES)
def test_create_cluster_form_invalid(snap_compare: Any, size: tuple[int, int]) -> None:
    async def fill(pilot: Pilot) -> None:
        await pilot.press("c")
        await pilot.press(*"pool-1")
        pilot.app.screen.query_one("#f-agent_count", Input).value = "1"
        await pilot.pause()

    run = feeding(CLUSTERS, after=fill)
    assert snap_compare(app_for("clusters"), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_readonly_endpoints(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(
        app_for("endpoints", readonly=True),
        terminal_size=size,
        run_before=feeding((ENDPOINTS, RPS)),
    )


@pytest.mark.parametrize("size", SIZES)
def test_light_theme(snap_compare: Any, size: tuple[int, int]) -> None:
    app = app_for("deployments")
    app.theme = "textual-light"
    assert snap_compare(app, terminal_size=size, run_before=feeding(DEPLOYMENTS))


def _fills(svg: str) -> list[tuple[int, int, int]]:
    import re

    return [
        tuple(int(h[i : i + 2], 16) for i in (0, 2, 4))
        for h in re.findall(r'fill="#([0-9a-fA-F]{6})"', svg)
    ]  # type: ignore[misc]


@pytest.mark.parametrize("no_color", [False, True])
def test_no_color_is_honoured(no_color: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """With NO_COLOR set, every colour drawn is a grey; without it, there are colours."""
    import asyncio

    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)

    async def run() -> str:
        app = app_for("endpoints")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.screen.show_data((ENDPOINTS, RPS))
            await pilot.pause(0.3)
            return app.export_screenshot()

    window_buttons = {(0xFF, 0x5F, 0x57), (0xFE, 0xBC, 0x2E), (0x28, 0xC8, 0x40)}  # the SVG's frame
    fills = [c for c in _fills(asyncio.run(run())) if c not in window_buttons]
    chromatic = [c for c in fills if max(c) - min(c) > 24]
    assert fills
    assert (chromatic == []) is no_color
