"""Profile settings and config.json discovery, auth (tokens, 401), throttling and retries."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from modeldeck.services.api.domain import EndpointPatch, ModelSpec
from modeldeck.services.api.errors import InvalidInput, ModeldeckError, Unauthorized, Unreachable
from modeldeck.services.azureml.workspace import AzureMLWorkspace


def write_config(folder: Path, **data: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(data))
    return path


async def test_config_json_in_the_current_folder(
    tmp_path: Path, monkeypatch: Any, fake: Any, credential: Any
) -> None:
    write_config(tmp_path, subscription_id=fake.sub, resource_group=fake.rg, workspace_name=fake.ws)
    monkeypatch.chdir(tmp_path)
    ws = AzureMLWorkspace.from_settings(
        "cfg", {"arm_endpoint": fake.base_url, "credential": credential}
    )
    try:
        assert (ws.subscription_id, ws.resource_group, ws.workspace_name) == (
            fake.sub,
            fake.rg,
            fake.ws,
        )
        fake.add_endpoint("e1", "c")
        assert [e.name for e in await ws.list_endpoints()] == ["e1"]
    finally:
        await ws.close()


def test_config_json_in_azureml_folder_of_a_parent(
    tmp_path: Path, monkeypatch: Any, credential: Any
) -> None:
    write_config(
        tmp_path / ".azureml", subscription_id="s-1", resource_group="rg-1", workspace_name="w-1"
    )
    deep = tmp_path / "project" / "src"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    ws = AzureMLWorkspace.from_settings("cfg", {"credential": credential})
    assert (ws.subscription_id, ws.resource_group, ws.workspace_name) == ("s-1", "rg-1", "w-1")


def test_settings_and_flags_win_over_config_json(tmp_path: Path, monkeypatch: Any) -> None:
    write_config(tmp_path, subscription_id="s-1", resource_group="rg-1", workspace_name="w-1")
    monkeypatch.chdir(tmp_path)
    ws = AzureMLWorkspace.from_settings("cfg", {"subscription": "s-2", "workspace_name": "w-2"})
    assert (ws.subscription_id, ws.resource_group, ws.workspace_name) == ("s-2", "rg-1", "w-2")


def test_explicit_config_file(tmp_path: Path, monkeypatch: Any) -> None:
    path = write_config(
        tmp_path / "elsewhere", subscription_id="s-3", resource_group="rg-3", workspace_name="w-3"
    )
    monkeypatch.chdir(tmp_path)
    ws = AzureMLWorkspace.from_settings("cfg", {"config_file": str(path)})
    assert ws.workspace_name == "w-3"
    with pytest.raises(InvalidInput) as info:
        AzureMLWorkspace.from_settings("cfg", {"config_file": str(tmp_path / "missing.json")})
    assert info.value.field == "config_file"


def test_missing_coordinates_name_the_field_and_the_fix(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput) as info:
        AzureMLWorkspace.from_settings("cfg", {"subscription_id": "s", "workspace_name": "w"})
    assert info.value.field == "resource_group"
    assert "--resource-group" in (info.value.fix or "") and "config.json" in (info.value.fix or "")


async def test_every_call_carries_the_pinned_api_version_and_token(ws: Any, seeded: Any) -> None:
    await ws.list_deployments()
    arm = [r for r in seeded.requests if not r.path.startswith(("/blob/", "/score/"))]
    assert arm and all(r.query.get("api-version") == "2024-10-01" for r in arm)
    assert all(r.token == "static-token-1" for r in arm)


async def test_token_is_cached_while_it_is_fresh(ws: Any, seeded: Any, credential: Any) -> None:
    for _ in range(5):
        await ws.list_endpoints()
    assert len(credential.issued) == 1
    assert credential.scopes[0] == ("https://management.azure.com/.default",)


async def test_short_lived_tokens_are_refreshed_before_expiry(
    fake: Any, token_credential: Any, arm_settings: Any
) -> None:
    # each token lives 100 s, inside the 300 s refresh margin: a new one for every call
    cred = token_credential("t-1", "t-2", "t-3", lifetime=100)
    fake.valid_tokens |= {"t-1", "t-2", "t-3"}
    fake.add_endpoint("e1", "c")
    ws = AzureMLWorkspace.from_settings("x", arm_settings(fake, cred))
    try:
        for _ in range(3):
            await ws.get_endpoint("e1")
    finally:
        await ws.close()
    assert [r.token for r in fake.calls("GET", suffix="/onlineEndpoints/e1")] == [
        "t-1",
        "t-2",
        "t-3",
    ]


async def test_a_revoked_token_is_replaced_once(
    fake: Any, token_credential: Any, arm_settings: Any
) -> None:
    cred = token_credential("revoked", "fresh")
    fake.valid_tokens = {"fresh"}
    fake.add_endpoint("e1", "c")
    ws = AzureMLWorkspace.from_settings("x", arm_settings(fake, cred))
    try:
        ep = await ws.get_endpoint("e1")
    finally:
        await ws.close()
    assert ep.name == "e1"
    assert [r.token for r in fake.requests] == ["revoked", "fresh"]


async def test_401_says_run_az_login(fake: Any, token_credential: Any, arm_settings: Any) -> None:
    cred = token_credential("nobody-knows-me")
    ws = AzureMLWorkspace.from_settings("x", arm_settings(fake, cred))
    try:
        with pytest.raises(Unauthorized) as info:
            await ws.list_endpoints()
    finally:
        await ws.close()
    assert "InvalidAuthenticationToken: The access token is invalid." in str(info.value)
    assert "az login" in (info.value.fix or "")
    assert "nobody-knows-me" not in str(info.value)


async def test_no_login_at_all_says_run_az_login(fake: Any, arm_settings: Any) -> None:
    class NoLogin:
        def get_token(self, *scopes: str, **kw: Any) -> Any:
            raise RuntimeError("Please run 'az login' to setup account.")

    ws = AzureMLWorkspace.from_settings("x", arm_settings(fake, NoLogin()))
    try:
        with pytest.raises(Unauthorized) as info:
            await ws.list_clusters()
    finally:
        await ws.close()
    assert "az login" in (info.value.fix or "")
    assert fake.requests == []  # nothing sent without a token


async def test_an_expired_token_from_the_credential_is_unauthorized(
    fake: Any, token_credential: Any, arm_settings: Any
) -> None:
    cred = token_credential("old", lifetime=-60)
    ws = AzureMLWorkspace.from_settings("x", arm_settings(fake, cred))
    try:
        with pytest.raises(Unauthorized) as info:
            await ws.list_endpoints()
    finally:
        await ws.close()
    assert "expired" in str(info.value) and "az login" in (info.value.fix or "")


async def test_429_is_retried_after_retry_after(ws: Any, seeded: Any) -> None:
    seeded.throttle(2, retry_after="1")
    eps = await ws.list_endpoints()
    assert [e.name for e in eps] == ["my-endpoint"]
    assert list(ws.arm.retry_log) == [(429, 1.0), (429, 1.0)]


async def test_transient_503_on_a_put_is_retried(ws: Any, seeded: Any) -> None:
    seeded.fail_transient(1, status=503)
    await (await ws.update_endpoint("my-endpoint", EndpointPatch(description="x"))).wait()
    assert (await ws.get_endpoint("my-endpoint")).description == "x"
    assert ws.arm.retry_log[0][0] == 503


async def test_throttling_that_never_ends_is_an_error_with_arms_words(
    fake: Any, credential: Any, arm_settings: Any
) -> None:
    ws = AzureMLWorkspace.from_settings("x", arm_settings(fake, credential, max_retries=2))
    fake.throttle(3, retry_after="0")
    try:
        with pytest.raises(ModeldeckError) as info:
            await ws.list_endpoints()
    finally:
        await ws.close()
    assert "TooManyRequests" in str(info.value)
    assert len(fake.requests) == 3


async def test_lro_polls_follow_retry_after(ws: Any, seeded: Any) -> None:
    seeded.retry_after = "1"
    seeded.lro_steps = 0
    handle = await ws.update_endpoint("my-endpoint", EndpointPatch(description="slow"))
    op = await handle.wait()
    assert op.status.value == "Succeeded"
    polls = seeded.calls("GET", "/mfeOperationsStatus/")
    assert len(polls) == seeded.lro_steps + 1  # never more polls than the operation needs


async def test_unreachable_arm_is_unreachable(credential: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ws = AzureMLWorkspace.from_settings(
        "x",
        {
            "subscription_id": "s",
            "resource_group": "r",
            "workspace_name": "w",
            "arm_endpoint": f"http://127.0.0.1:{port}",
            "credential": credential,
            "max_retries": 0,
        },
    )
    try:
        with pytest.raises(Unreachable) as info:
            await ws.list_endpoints()
    finally:
        await ws.close()
    assert "arm_endpoint" in (info.value.fix or "")


async def test_tokens_and_keys_never_reach_the_log(ws: Any, seeded: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    keys = await ws.get_keys("my-endpoint")
    await ws.invoke("my-endpoint", b"{}")
    text = caplog.text + repr(ws) + repr(ws.tokens)
    assert keys.primaryKey not in text
    assert "static-token-1" not in text


async def test_default_credential_narrowed_by_azure_token_credentials(
    fake: Any, monkeypatch: Any, tmp_path: Path
) -> None:
    # the real DefaultAzureCredential (no substitution), told to use the az CLI only,
    # on a PATH without az: it fails at once, and we say which command fixes it
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "AzureCliCredential")
    monkeypatch.setenv("PATH", str(tmp_path))
    ws = AzureMLWorkspace.from_settings(
        "x",
        {
            "subscription_id": fake.sub,
            "resource_group": fake.rg,
            "workspace_name": fake.ws,
            "arm_endpoint": fake.base_url,
        },
    )
    try:
        with pytest.raises(Unauthorized) as info:
            await ws.list_endpoints()
    finally:
        await ws.close()
    assert "AzureCliCredential" in str(info.value)
    assert "az login" in (info.value.fix or "")
    assert fake.requests == []


class ScopedCredential:
    """One token per scope (``tok:<scope>``), as Microsoft Entra issues one per audience."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kw: Any) -> AccessToken:
        self.scopes.append(scopes[0])
        return AccessToken(f"tok:{scopes[0]}", int(time.time() + 3600))


async def test_sovereign_cloud_audiences_for_arm_and_scoring(fake: Any, arm_settings: Any) -> None:
    # a US Government workspace behind the fake: ARM tokens for the cloud's ARM audience,
    # aad_token scoring with a token for that cloud's Azure ML audience (ml.azure.us)
    cred = ScopedCredential()
    gov_arm = "tok:https://management.usgovcloudapi.net/.default"
    fake.valid_tokens = {gov_arm}
    fake.aad_tokens = {"tok:https://ml.azure.us/.default"}
    fake.add_compute("gov-aks")
    fake.add_endpoint("gov-ep", "gov-aks", auth="AADToken", traffic={"blue": 100})
    fake.add_deployment("gov-ep", "blue")
    settings = arm_settings(fake, cred, arm_audience="https://management.usgovcloudapi.net")
    ws = AzureMLWorkspace.from_settings("gov", settings)
    try:
        assert [e.name for e in await ws.list_endpoints()] == ["gov-ep"]
        res = await ws.invoke("gov-ep", b"{}")
    finally:
        await ws.close()
    assert res.status == 200 and res.deployment == "blue"
    assert cred.scopes == [
        "https://management.usgovcloudapi.net/.default",
        "https://ml.azure.us/.default",
    ]
    assert all(r.token == gov_arm for r in fake.requests if not r.path.startswith("/score/"))


@pytest.mark.parametrize(
    ("arm", "arm_scope", "ml_scope"),
    [
        (
            "https://management.azure.com",
            "https://management.azure.com/.default",
            "https://ml.azure.com/.default",
        ),
        (
            "https://management.usgovcloudapi.net/",
            "https://management.usgovcloudapi.net/.default",
            "https://ml.azure.us/.default",
        ),
        (
            "https://management.chinacloudapi.cn",
            "https://management.chinacloudapi.cn/.default",
            "https://ml.azure.cn/.default",
        ),
    ],
)
def test_scopes_follow_the_cloud_of_the_arm_endpoint(
    arm: str, arm_scope: str, ml_scope: str
) -> None:
    ws = AzureMLWorkspace.from_settings(
        "x",
        {"subscription_id": "s", "resource_group": "r", "workspace_name": "w", "arm_endpoint": arm},
    )
    assert ws.tokens.scope == arm_scope
    assert ws.ml_scope == ml_scope


def test_authority_reaches_the_default_credential(monkeypatch: Any) -> None:
    # the real DefaultAzureCredential, narrowed to the environment's service principal:
    # the sovereign cloud's authority is the one it will sign in at
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-0000-0000-0000-000000000000")
    monkeypatch.setenv("AZURE_TENANT_ID", "22222222-0000-0000-0000-000000000000")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-a-real-secret")
    ws = AzureMLWorkspace.from_settings(
        "x",
        {
            "subscription_id": "s",
            "resource_group": "r",
            "workspace_name": "w",
            "arm_endpoint": "https://management.usgovcloudapi.net",
            "authority": "login.microsoftonline.us",
        },
    )
    cred = ws.tokens.credential()
    inner = cred.credentials[0]._credential  # EnvironmentCredential -> ClientSecretCredential
    assert inner._authority == "https://login.microsoftonline.us"


async def test_429_without_retry_after_backs_off_with_jitter(ws: Any, seeded: Any) -> None:
    # no Retry-After: exponential backoff with full jitter, each wait within its cap
    seeded.throttle(2, retry_after=None)
    assert [e.name for e in await ws.list_endpoints()] == ["my-endpoint"]
    waits = list(ws.arm.retry_log)
    assert [s for s, _ in waits] == [429, 429]
    policy = ws.arm.retry
    for attempt, (_, delay) in enumerate(waits):
        assert 0.0 <= delay <= policy.backoff_base * 2**attempt


def test_retry_after_as_an_http_date_is_honoured() -> None:
    from email.utils import formatdate

    from modeldeck.services.retry import parse_retry_after

    assert parse_retry_after("7") == 7.0
    in_a_minute = parse_retry_after(formatdate(time.time() + 60, usegmt=True))
    assert in_a_minute is not None and 50 < in_a_minute <= 60
    assert parse_retry_after("soon") is None


class RefreshOnCredential:
    """azure-identity's newer protocol: ``get_token_info`` with a ``refresh_on`` time."""

    def __init__(self, refresh_in: float) -> None:
        self.refresh_in = refresh_in
        self.issued: list[str] = []

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        token = f"ri-{len(self.issued) + 1}"
        self.issued.append(token)
        now = int(time.time())
        return AccessTokenInfo(token, now + 3600, refresh_on=now + int(self.refresh_in))

    def get_token(self, *scopes: str, **kw: Any) -> Any:
        raise AssertionError("get_token_info is preferred when the credential has it")


@pytest.mark.parametrize(
    ("refresh_in", "expected"), [(-1, ["ri-1", "ri-2"]), (1800, ["ri-1", "ri-1"])]
)
async def test_the_credentials_refresh_on_is_honoured(
    fake: Any, arm_settings: Any, refresh_in: float, expected: list[str]
) -> None:
    # a managed identity token says "refresh me at half-life": a new one is asked for then,
    # though it is far from expiry
    cred = RefreshOnCredential(refresh_in)
    fake.valid_tokens |= {"ri-1", "ri-2"}
    fake.add_endpoint("e1", "c")
    ws = AzureMLWorkspace.from_settings("x", arm_settings(fake, cred))
    try:
        for _ in range(2):
            await ws.get_endpoint("e1")
    finally:
        await ws.close()
    assert [r.token for r in fake.calls("GET", suffix="/onlineEndpoints/e1")] == expected


async def test_a_throttled_blob_upload_waits_as_retry_after_says(
    ws: Any, fake: Any, tmp_path: Path
) -> None:
    # storage answers 503 ServerBusy with Retry-After: 1; the upload waits that second
    # (its own first backoff is at most 0.5 s), then the file arrives once
    model = tmp_path / "model.json"
    model.write_text("{}")
    fake.throttle_blobs(1, retry_after="1")
    start = time.monotonic()
    await ws.create_model(ModelSpec(name="throttled", path=str(model)))
    assert time.monotonic() - start >= 0.95
    assert len(fake.calls("PUT", "/blob/")) == 2
    assert list(fake.blobs.values()) == [b"{}"]
