"""Fixtures: a fake Kubernetes API server on loopback, a kubeconfig pointing at it, drivers,
and the console script run against it (``kube_cli``)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import (
    ClusterPurpose,
    ClusterSpec,
    CodeConfiguration,
    DeploymentSpec,
    DriverKind,
    Model,
)
from modeldeck.services.drivers.base import DeploymentRuntime, EndpointAuth, EndpointRoute
from modeldeck.services.drivers.kubernetes.driver import KubernetesDriver

from tests.support.cli import ConsoleScript, Result
from tests.support.fake_apiserver import FakeKube, write_kubeconfig

REPO = Path(__file__).resolve().parents[2]
NS = "ml"
KEY1 = "k1-" + "a" * 40
KEY2 = "k2-" + "b" * 40


@pytest.fixture
def fake_factory() -> Iterator[Callable[..., Any]]:
    servers: list[Any] = []

    def make(**kwargs: Any) -> Any:
        server = FakeKube(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
    for server in servers:  # every manifest any test sent passed the schema validation
        if not getattr(server, "expect_invalid", False):
            assert server.invalid == [], server.invalid


@pytest.fixture
def fake(fake_factory: Callable[..., Any]) -> Any:
    return fake_factory()


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: Any) -> Path:
    path = write_kubeconfig(tmp_path / "kubeconfig", {"fake": (fake.url, "")}, current="fake")
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.fixture
async def make_driver(tmp_path: Path) -> AsyncIterator[Callable[..., KubernetesDriver]]:
    drivers: list[KubernetesDriver] = []

    def make(
        name: str = "prod",
        context: str | None = "fake",
        purpose: ClusterPurpose = ClusterPurpose.FAST_PROD,
        namespace: str | None = NS,
        **kwargs: Any,
    ) -> KubernetesDriver:
        spec = ClusterSpec(
            name=name,
            driver=DriverKind.KUBERNETES,
            purpose=purpose,
            kube_context=context,
            namespace=namespace,
            tags=kwargs.pop("tags", {}),
        )
        options: dict[str, Any] = {
            "poll_interval": 0.02,
            "rollout_timeout": 15.0,
            "schedule_grace": 0.3,
            "request_timeout": (2.0, 5.0),
            "attempts": 4,
            "max_backoff": 0.5,
        }
        options.update(kwargs)
        driver = KubernetesDriver(spec, data_dir=tmp_path / "data", **options)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        await driver.close()


@pytest.fixture
async def driver(
    kubeconfig: Path, make_driver: Callable[..., KubernetesDriver]
) -> KubernetesDriver:
    return make_driver()


def route(
    name: str = "ep",
    traffic: dict[str, int] | None = None,
    mirror: dict[str, int] | None = None,
    mode: str = "key",
) -> EndpointRoute:
    return EndpointRoute(
        name=name,
        auth=EndpointAuth(mode=mode, primary_key=KEY1, secondary_key=KEY2, token_secret="s" * 32),
        traffic=traffic or {},
        mirror_traffic=mirror or {},
    )


def runtime(
    examples: Path, name: str = "blue", endpoint: str = "ep", **changes: Any
) -> DeploymentRuntime:
    code = str(examples / ("green" if name == "green" else "blue"))
    spec = DeploymentSpec(
        name=name,
        endpoint_name=endpoint,
        model="azureml:demo:1",
        code_configuration=CodeConfiguration(code=code, scoring_script="score.py"),
        **changes,
    )
    model = Model(name="demo", version=1, path=str(examples / "model"))
    return DeploymentRuntime(spec=spec, model=model, code_dir=code)


class ProgressLog:
    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []

    def __call__(self, fraction: float, message: str) -> None:
        self.events.append((fraction, message))


@pytest.fixture
def k(examples: Path) -> Any:
    """Helpers: ``k.route(...)``, ``k.runtime(name, **changes)``, ``k.ProgressLog()``."""
    import types

    return types.SimpleNamespace(
        route=route,
        runtime=lambda name="blue", endpoint="ep", **changes: runtime(
            examples, name, endpoint, **changes
        ),
        ProgressLog=ProgressLog,
        NS=NS,
        KEY1=KEY1,
        KEY2=KEY2,
        write_kubeconfig=write_kubeconfig,
        FakeKube=FakeKube,
    )


class Cli(ConsoleScript):
    """The console script with a KUBECONFIG of its own."""

    def __init__(self, home: Path, cwd: Path, kubeconfig: Path) -> None:
        super().__init__(home, cwd, KUBECONFIG=str(kubeconfig))

    def __call__(self, command: str, ok: bool | None = True) -> Result:
        """Run ``modeldeck COMMAND``; ``ok``: it must succeed (True), fail (False), either (None)."""
        result = self.run(command)
        if ok is not None:
            assert (result.code == 0) is ok, str(result)
        return result


@pytest.fixture
def kube_cli(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    fake = FakeKube().start()
    work = tmp_path / "work"
    shutil.copytree(REPO / "examples", work)
    (work / "k8s-endpoint.yml").write_text(
        "name: my-endpoint\ncompute: azureml:prod\nauth_mode: key\n"
    )
    config = write_kubeconfig(tmp_path / "kubeconfig", {"aks-prod": (fake.url, "")})
    cli = Cli(tmp_path_factory.mktemp("mdk"), work, config)
    try:
        yield cli, fake
    finally:
        try:
            cli("daemon stop", ok=None)
        finally:
            fake.stop()
    assert fake.invalid == []  # every manifest the daemon sent passed schema validation
