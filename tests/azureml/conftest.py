"""Fixtures of the Azure ML back end's tests: a fake ARM server on loopback, a static
token credential (the one substitution the issue allows), and a workspace opened
through the real profile path (``open_workspace``) against the fake.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken


def _load(module: str) -> Any:
    name = f"modeldeck_tests_azureml_{module}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name(f"{module}.py")
        )
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


fake_arm = _load("fake_arm")
FakeArm = fake_arm.FakeArm


class StaticTokenCredential:
    """Hands out the given tokens in turn, each valid for ``lifetime`` seconds."""

    def __init__(self, *tokens: str, lifetime: float = 3600.0) -> None:
        self.tokens = list(tokens) or ["static-token-1"]
        self.lifetime = lifetime
        self.issued: list[str] = []
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        token = self.tokens[min(len(self.issued), len(self.tokens) - 1)]
        self.issued.append(token)
        return AccessToken(token, int(time.time() + self.lifetime))


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
    from modeldeck.services.backends import open_workspace

    cfg = md_home / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text(
        '[workspaces.cloud]\nprovider = "azureml"\n'
        f'subscription_id = "{fake.sub}"\nresource_group = "{fake.rg}"\nworkspace_name = "{fake.ws}"\n'
    )
    workspace = open_workspace(
        "cloud",
        arm_endpoint=fake.base_url,
        metrics_endpoint=fake.base_url,
        credential=credential,
        poll_interval=0.01,
        log_poll_interval=0.01,
    )
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
