"""Point 7 of issue 9: the ARM bearer token and scoring keys never go over plain http to
anything but loopback.

To prove no request leaves, ``HTTP_PROXY`` points at the loopback fake: a request to
``http://example.invalid`` would reach the fake through it (the positive control shows
it does when no credential is involved), so an empty request log means nothing was sent.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from modeldeck.services.api.errors import InvalidInput
from modeldeck.services.azureml.workspace import AzureMLWorkspace


@pytest.fixture
def proxied(monkeypatch: pytest.MonkeyPatch, fake: Any) -> Any:
    for var in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", fake.base_url)
    monkeypatch.setenv("http_proxy", fake.base_url)
    return fake


async def test_the_proxy_would_carry_a_request_to_example_invalid(proxied: Any) -> None:
    """The control: without a credential, http://example.invalid reaches the fake."""
    async with httpx.AsyncClient() as client:
        await client.get("http://example.invalid/score/nothing")
    assert [r.path for r in proxied.requests] == ["/score/nothing"]


async def test_an_http_arm_endpoint_elsewhere_is_refused_before_anything_is_sent(
    proxied: Any, token_credential: Any, arm_settings: Any
) -> None:
    cred = token_credential("static-token-1")
    ws = AzureMLWorkspace.from_settings(
        "plain", arm_settings(proxied, cred, arm_endpoint="http://example.invalid")
    )
    try:
        with pytest.raises(InvalidInput) as info:
            await ws.list_endpoints()
    finally:
        await ws.close()
    err = info.value
    assert err.details["field"] == "arm_endpoint"
    assert "http://example.invalid" in err.message and "loopback" in err.message
    assert "https://" in (err.fix or "")
    assert proxied.requests == []  # nothing reached the network (nor the proxy)
    assert cred.issued == []  # the token was not even fetched


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_http_to_loopback_is_allowed(
    fake: Any, credential: Any, arm_settings: Any, host: str
) -> None:
    fake.add_endpoint("e1", "c")
    url = fake.base_url.replace("127.0.0.1", host)
    ws = AzureMLWorkspace.from_settings("local", arm_settings(fake, credential, arm_endpoint=url))
    try:
        assert [e.name for e in await ws.list_endpoints()] == ["e1"]
    finally:
        await ws.close()
    assert fake.requests[-1].token == "static-token-1"


async def test_a_key_is_never_sent_to_an_http_scoring_uri_elsewhere(
    proxied: Any, ws: Any, seeded: Any
) -> None:
    seeded.endpoints["my-endpoint"]["properties"]["scoringUri"] = (
        "http://example.invalid/score/my-endpoint"
    )
    with pytest.raises(InvalidInput) as info:
        await ws.invoke("my-endpoint", b'{"data": [[1, 2]]}')
    assert info.value.details["field"] == "scoring_uri"
    assert "http://example.invalid/score/my-endpoint" in info.value.message
    assert not [r for r in proxied.requests if r.path.startswith("/score/")]
