"""Progressive rollouts on Azure ML, driven by a real daemon (a subprocess of a test home)
against the fake ARM server (tests/support/fake_arm.py).

The test process holds an ``AzureMLWorkspace`` opened through the profile path; its rollout
calls go to the daemon of the home, which opens the workspace itself from the coordinates it
is sent and signs in with its own azure-identity chain: here ``AzureCliCredential`` through
the fake ``az`` first on the daemon's PATH (as tests/azureml/test_cli_e2e.py signs the CLI
in). Azure Monitor's minute grains grow in the fake while the rollout runs
(``metric_minutes``: ``RequestsPerMinute`` split by deployment and status class), and the
profile's ``rollout_poll``/``rollout_min_interval`` are set low so the steps take seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import EndpointPatch
from modeldeck.services.api.errors import Conflict, InvalidInput, ModeldeckError, NotFound
from modeldeck.services.api.rollouts import Rollout, RolloutSpec, RolloutState
from modeldeck.services.local.client import LocalWorkspace

from tests.azureml.conftest import credential, fake, seeded
from tests.azureml.test_cli_e2e import AzCli
from tests.support.daemon import running_home
from tests.support.fake_arm import FakeArm, open_cloud_workspace

__all__ = ["credential", "fake", "seeded"]  # the fixtures used here

ENDPOINT_PUT = "/onlineEndpoints/my-endpoint"
WAIT_S = 60.0


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A MODELDECK_HOME whose daemon (started by the first rollout call) signs in through the
    fake ``az``; stopped after."""
    cli = AzCli(tmp_path, token="static-token-1")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("AZURE_", "MSI_", "IDENTITY_")):
                mp.delenv(key)
        with running_home(
            cli.home, PATH=cli.env["PATH"], AZURE_TOKEN_CREDENTIALS="AzureCliCredential"
        ):
            yield cli.home


@pytest.fixture
async def cloud(fake: FakeArm, credential: Any, home: Path) -> AsyncIterator[Any]:
    ws = open_cloud_workspace(fake, credential, home, rollout_poll=0.2, rollout_min_interval=1)
    try:
        yield ws
    finally:
        await ws.close()


@contextlib.asynccontextmanager
async def traffic(fake: FakeArm, errors: Callable[[str], int] = lambda d: 0) -> AsyncIterator[None]:
    """Azure Monitor's grain of the minute in progress grows for both deployments (5 requests
    each every 0.1 s; ``errors(deployment)`` of them answered 5xx) while the block runs."""

    async def feed() -> None:
        while True:
            minute = math.floor(time.time() / 60) * 60
            for dep in ("blue", "green"):
                bad = errors(dep)
                fake.metric_minutes.setdefault("my-endpoint", []).extend(
                    [
                        (minute, dep, "2xx", {"RequestsPerMinute": 5 - bad}),
                        (minute, dep, "5xx", {"RequestsPerMinute": bad}),
                    ]
                )
            await asyncio.sleep(0.1)

    task = asyncio.get_running_loop().create_task(feed())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(ws: Any, check: Callable[[Rollout], bool], what: str) -> Rollout:
    deadline = time.monotonic() + WAIT_S
    while True:
        r = await ws.get_rollout("my-endpoint")
        if r is not None and check(r):
            return r
        assert time.monotonic() < deadline, f"{what}: the rollout is {r}"
        await asyncio.sleep(0.1)


def traffic_puts(fake: FakeArm) -> list[dict[str, int]]:
    """The traffic maps of the endpoint's PUTs ARM received, in order."""
    return [r.body["properties"]["traffic"] for r in fake.calls("PUT", suffix=ENDPOINT_PUT)]


async def test_the_daemon_steps_arm_traffic_and_promotes(
    cloud: Any, seeded: FakeArm, home: Path
) -> None:
    spec = RolloutSpec(
        endpoint="my-endpoint", to="green", steps=(10, 50, 100), interval_s=1.0, min_requests=10
    )
    async with traffic(seeded):
        started = await cloud.start_rollout(spec)
        assert started.state is RolloutState.RUNNING
        done = await until(cloud, lambda r: not r.state.active, "promoted")
    assert done.state is RolloutState.SUCCEEDED, done.message
    assert done.id == started.id and done.weight == 100
    # each step one ARM PUT of the endpoint, the treatment's share as the steps say
    assert traffic_puts(seeded) == [
        {"blue": 90, "green": 10},
        {"blue": 50, "green": 50},
        {"blue": 0, "green": 100},
    ]
    # by the daemon's identity: the token its az handed out
    assert {r.token for r in seeded.calls("PUT", suffix=ENDPOINT_PUT)} == {"static-token-1"}
    assert seeded.endpoints["my-endpoint"]["properties"]["traffic"] == {"blue": 0, "green": 100}
    assert [r.id for r in await cloud.list_rollouts()] == [started.id]
    # the local workspace of the same daemon does not list it
    local = LocalWorkspace(autostart=False)
    try:
        assert await local.list_rollouts() == []
    finally:
        await local.close()
    assert seeded.schema_errors == []


async def test_a_treatment_failing_in_azure_monitor_is_rolled_back_at_once(
    cloud: Any, seeded: FakeArm
) -> None:
    spec = RolloutSpec(
        endpoint="my-endpoint", to="green", steps=(25, 100), interval_s=300.0, min_requests=10
    )
    # green answers 5xx to 2 requests in 5 (Azure Monitor's StatusCodeClass 5xx)
    async with traffic(seeded, errors=lambda d: 2 if d == "green" else 0):
        await cloud.start_rollout(spec)
        done = await until(cloud, lambda r: not r.state.active, "failed")
    assert done.state is RolloutState.FAILED, done.message
    assert "green 40.0% errors" in done.message and "against blue 0.0%" in done.message
    # long before the step's 5 minutes: the step, then all traffic back on the control
    assert traffic_puts(seeded) == [{"blue": 75, "green": 25}, {"blue": 100, "green": 0}]


async def test_reading_in_a_home_that_never_had_a_daemon_starts_none(
    cloud: Any, seeded: FakeArm, home: Path
) -> None:
    """``online-endpoint show`` and the dashboard read rollouts: in a home without a store
    there is none, and no daemon is started to say so."""
    assert await cloud.get_rollout("my-endpoint") is None
    assert await cloud.list_rollouts() == []
    with pytest.raises(NotFound):
        await cloud.get_rollout("nope")
    assert not (home / "state" / "modeldeck.sock").exists()
    assert not (home / "data" / "workspace.db").exists()


async def test_pause_resume_a_manual_change_and_abort(cloud: Any, seeded: FakeArm) -> None:
    spec = RolloutSpec(
        endpoint="my-endpoint", to="green", steps=(20, 100), interval_s=1.0, min_requests=10**6
    )
    started = await cloud.start_rollout(spec)
    await until(cloud, lambda r: r.weight == 20, "at its first step")
    # a second one while it runs: refused, nothing written
    with pytest.raises(Conflict):
        await cloud.start_rollout(replace(spec, to="blue"))
    assert traffic_puts(seeded) == [{"blue": 80, "green": 20}]
    paused = await cloud.control_rollout("my-endpoint", "pause")
    assert paused.state is RolloutState.PAUSED
    assert (await cloud.get_rollout("my-endpoint")).state is RolloutState.PAUSED
    resumed = await cloud.control_rollout("my-endpoint", "resume")
    assert resumed.state is RolloutState.RUNNING
    # an operator moves traffic through ARM: the rollout pauses, never writes over it
    handle = await cloud.update_endpoint(
        "my-endpoint", EndpointPatch(traffic={"blue": 70, "green": 30})
    )
    await handle.wait()
    held = await until(cloud, lambda r: r.state is RolloutState.PAUSED, "paused by the change")
    assert "changed by hand" in held.message, held.message
    writes = len(traffic_puts(seeded))
    await asyncio.sleep(1.0)  # five polls: nothing written over the operator's maps
    assert len(traffic_puts(seeded)) == writes
    assert seeded.endpoints["my-endpoint"]["properties"]["traffic"] == {"blue": 70, "green": 30}
    aborted = await cloud.control_rollout("my-endpoint", "abort")
    assert aborted.state is RolloutState.ABORTED and aborted.id == started.id
    assert traffic_puts(seeded)[-1] == {"blue": 100, "green": 0}
    assert seeded.endpoints["my-endpoint"]["properties"]["traffic"] == {"blue": 100, "green": 0}


async def test_bad_input_is_refused_and_nothing_is_written(
    fake: FakeArm, seeded: FakeArm, credential: Any, home: Path, cloud: Any
) -> None:
    # the profile's default least interval: Azure Monitor's grain and lag
    strict = open_cloud_workspace(fake, credential, home, rollout_poll=0.2)
    try:
        with pytest.raises(InvalidInput) as short:
            await strict.start_rollout(
                RolloutSpec(endpoint="my-endpoint", to="green", interval_s=120.0)
            )
        assert short.value.field == "interval"
        assert "Azure Monitor" in short.value.message and "5m" in str(short.value.to_dict())
    finally:
        await strict.close()
    with pytest.raises(ModeldeckError) as unknown:
        await cloud.start_rollout(RolloutSpec(endpoint="my-endpoint", to="purple", interval_s=1.0))
    assert "purple" in unknown.value.message
    assert traffic_puts(seeded) == []
    assert await cloud.get_rollout("my-endpoint") is None
    assert await cloud.list_rollouts() == []


def answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


async def test_a_daemon_killed_mid_rollout_resumes_it_on_azure(
    cloud: Any, seeded: FakeArm, home: Path
) -> None:
    spec = RolloutSpec(
        endpoint="my-endpoint", to="green", steps=(20, 100), interval_s=1.0, min_requests=10
    )
    started = await cloud.start_rollout(spec)  # no traffic yet: it waits at its first step
    await until(cloud, lambda r: r.weight == 20, "at its first step")
    local = LocalWorkspace(autostart=False)
    try:
        pid = (await local.status())["pid"]
    finally:
        await local.close()
    os.kill(pid, signal.SIGKILL)
    # dead once its socket refuses: its last thread has closed it (a zombie leader's
    # other threads may still hold it a moment, and a client connecting then is dropped)
    deadline = time.monotonic() + WAIT_S
    while answers(home / "state" / "modeldeck.sock"):
        assert time.monotonic() < deadline, "the daemon did not die"
        await asyncio.sleep(0.05)
    async with traffic(seeded):
        # the next call starts the daemon again, which drives the rollout where it was
        back = await cloud.get_rollout("my-endpoint")
        assert back is not None and back.id == started.id and back.weight == 20
        done = await until(cloud, lambda r: not r.state.active, "finished after the restart")
    assert done.state is RolloutState.SUCCEEDED, done.message
    # the step written before the kill was adopted, not written again
    assert traffic_puts(seeded) == [{"blue": 80, "green": 20}, {"blue": 0, "green": 100}]


async def test_the_cli_rolls_out_on_an_azure_profile_through_the_daemon(
    tmp_path: Path, seeded: FakeArm
) -> None:
    """``modeldeck online-endpoint rollout --watch`` on an azureml profile: the CLI starts the
    daemon, which signs in through the same ``az`` and drives the steps until promoted."""
    cli = AzCli(tmp_path, token="static-token-1")
    cli.write_config(
        'default = "cloud"\n[workspaces.cloud]\nprovider = "azureml"\n'
        f'subscription_id = "{seeded.sub}"\nresource_group = "{seeded.rg}"\n'
        f'workspace_name = "{seeded.ws}"\narm_endpoint = "{seeded.base_url}"\n'
        f'metrics_endpoint = "{seeded.base_url}"\npoll_interval = 0.01\n'
        "rollout_poll = 0.2\nrollout_min_interval = 1\n"
    )
    with running_home(cli.home):
        async with traffic(seeded):
            code, out, err = await cli.run(
                "online-endpoint", "rollout", "-n", "my-endpoint", "--to", "green",
                "--steps", "50,100", "--interval", "1s", "--min-requests", "10", "--watch",
            )  # fmt: skip
        assert code == 0, out + err
        assert traffic_puts(seeded) == [{"blue": 50, "green": 50}, {"blue": 0, "green": 100}]
        code, out, err = await cli.run("online-endpoint", "rollout", "-n", "my-endpoint")
        assert code == 0 and "Succeeded" in out, out + err
        # too short an interval on Azure ML with the default least: refused, said why
        cli.write_config(
            (cli.home / "config" / "config.toml")
            .read_text()
            .replace("rollout_min_interval = 1\n", "")
        )
        code, out, err = await cli.run(
            "online-endpoint", "rollout", "-n", "my-endpoint", "--to", "blue", "--interval", "2m"
        )
        assert code != 0 and "interval" in err and "Azure Monitor" in err, err
        assert len(traffic_puts(seeded)) == 2
