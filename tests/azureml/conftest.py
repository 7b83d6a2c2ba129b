"""Fixtures of the Azure ML back end's tests: a fake ARM server on loopback, a static
token credential (the one substitution the issue allows), and a workspace opened
through the real profile path (``open_workspace``) against the fake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_arm import FakeArm, StaticTokenCredential, open_cloud_workspace


@pytest.fixture
async def fake() -> AsyncIterator[Any]:
    arm = await FakeArm(valid_tokens={"static-token-1"}).start()
    try:
        yield arm
    finally:
        await arm.stop()


@pytest.fixture
def credential() -> StaticTokenCredential:
    return StaticTokenCredential("static-token-1")


@pytest.fixture
def token_credential() -> type[StaticTokenCredential]:
    """The static token credential class, for tests that need their own tokens."""
    return StaticTokenCredential


@pytest.fixture
def arm_settings() -> Any:
    """``arm_settings(fake, credential, **extra)``: profile settings pointing at the fake."""
    return settings_for


def settings_for(fake: Any, credential: Any, **extra: Any) -> dict[str, Any]:
    return {
        "subscription_id": fake.sub,
        "resource_group": fake.rg,
        "workspace_name": fake.ws,
        "arm_endpoint": fake.base_url,
        "credential": credential,
        "poll_interval": 0.01,
        "log_poll_interval": 0.01,
        **extra,
    }


@pytest.fixture
async def ws(fake: Any, credential: Any, md_home: Path) -> AsyncIterator[Any]:
    """An AzureMLWorkspace opened through the profile path (config.toml + overrides)."""
    workspace = open_cloud_workspace(fake, credential, md_home, log_poll_interval=0.01)
    try:
        yield workspace
    finally:
        await workspace.close()
        assert fake.schema_errors == [], "the client sent requests the REST spec does not allow"


@pytest.fixture
def seeded(fake: Any) -> Any:
    """An AKS compute, a model, an endpoint with blue (100%) and green (0%)."""
    fake.add_compute("myaks")
    fake.add_model("sklearn-demo", "1")
    fake.add_model("sklearn-demo", "2")
    fake.add_endpoint("my-endpoint", "myaks", traffic={"blue": 100, "green": 0})
    fake.add_deployment("my-endpoint", "blue", model="sklearn-demo", version="1")
    fake.add_deployment("my-endpoint", "green", model="sklearn-demo", version="2")
    return fake
