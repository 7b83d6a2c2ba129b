"""Behind a TLS-inspecting proxy: the CA bundle azure-cli users set is trusted (issue 16, point 5).

The fake ARM serves HTTPS on loopback with a certificate of a private CA (a proxy's CA,
as far as the client can tell), trusted only through the environment. azure-cli reads
``REQUESTS_CA_BUNDLE`` then ``CURL_CA_BUNDLE`` (requests' rule; azure-cli PR #21807);
modeldeck reads the same two first, then ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``
(``services/transport.py:tls_verify``, the one rule every Azure client uses).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import certifi
import pytest
from modeldeck.services.api.errors import InvalidInput, Unreachable
from modeldeck.services.transport import CA_BUNDLE_VARIABLES, tls_verify

from tests.support.fake_arm import FakeArm, open_cloud_workspace
from tests.support.tls import LoopbackCA, loopback_ca


@pytest.fixture
def proxy_ca(tmp_path: Path) -> LoopbackCA:
    return loopback_ca(tmp_path)


@pytest.fixture
async def tls_fake(proxy_ca: LoopbackCA) -> AsyncIterator[FakeArm]:
    arm = await FakeArm(valid_tokens={"static-token-1"}, tls=proxy_ca.server).start()
    arm.add_compute("myaks")
    arm.add_model("sklearn-demo", "1")
    arm.add_endpoint("my-endpoint", "myaks", traffic={"blue": 100})
    arm.add_deployment("my-endpoint", "blue", model="sklearn-demo", version="1")
    try:
        yield arm
    finally:
        await arm.stop()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in CA_BUNDLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def test_requests_ca_bundle_is_trusted_for_arm_and_the_scoring_uri(
    tls_fake: FakeArm, proxy_ca: LoopbackCA, clean_env: pytest.MonkeyPatch, md_home: Path
) -> None:
    assert tls_fake.base_url.startswith("https://127.0.0.1:")
    # SSL_CERT_FILE names a bundle without the proxy's CA: REQUESTS_CA_BUNDLE comes first
    clean_env.setenv("SSL_CERT_FILE", certifi.where())
    clean_env.setenv("REQUESTS_CA_BUNDLE", str(proxy_ca.ca_pem))
    ws = open_cloud_workspace(tls_fake, _credential(), md_home)
    try:
        assert [e.name for e in await ws.list_endpoints()] == ["my-endpoint"]
        res = await ws.invoke("my-endpoint", b'{"data": [[1, 2]]}')  # the https scoring URI
        assert res.status == 200
    finally:
        await ws.close()


async def test_without_the_bundle_the_proxy_is_not_trusted(
    tls_fake: FakeArm, clean_env: pytest.MonkeyPatch, md_home: Path
) -> None:
    ws = open_cloud_workspace(tls_fake, _credential(), md_home)
    try:
        with pytest.raises(Unreachable) as caught:
            await ws.list_endpoints()
        assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
        assert not tls_fake.requests  # nothing reached the server
    finally:
        await ws.close()


def test_the_order_is_requests_then_curl_then_openssl(proxy_ca: LoopbackCA) -> None:
    ours, other = str(proxy_ca.ca_pem), certifi.where()

    def trusted(env: dict[str, str]) -> set[str]:
        ctx = tls_verify(env)
        return {dict(x[0] for x in c["subject"]).get("commonName", "") for c in ctx.get_ca_certs()}

    proxy = {"modeldeck test proxy CA"}
    assert trusted({"REQUESTS_CA_BUNDLE": ours, "CURL_CA_BUNDLE": other}) == proxy
    assert trusted({"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ours}) == proxy  # "" = unset
    assert trusted({"CURL_CA_BUNDLE": ours, "SSL_CERT_FILE": other}) == proxy
    assert trusted({"SSL_CERT_FILE": ours}) == proxy
    assert tls_verify({}) is True  # certifi's roots, httpx's default


def test_a_bundle_that_is_not_there_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        tls_verify({"REQUESTS_CA_BUNDLE": str(tmp_path / "missing.pem")})
    assert caught.value.field == "REQUESTS_CA_BUNDLE"
    assert "missing.pem" in str(caught.value) and "unset it" in (caught.value.fix or "")


async def test_cli_behind_the_proxy_with_requests_ca_bundle(
    tls_fake: FakeArm, proxy_ca: LoopbackCA, tmp_path: Path
) -> None:
    """The real console script, signed in through az, as an az user behind the proxy runs it."""
    from tests.azureml.test_cli_e2e import AzCli

    cli = AzCli(tmp_path / "cli", token="static-token-1")
    unset = {name: "" for name in CA_BUNDLE_VARIABLES}
    argv = (
        "online-endpoint",
        "list",
        "-o",
        "json",
        "--subscription",
        tls_fake.sub,
        "-g",
        tls_fake.rg,
        "--workspace-name",
        tls_fake.ws,
    )
    env = {**unset, "MODELDECK_ARM_ENDPOINT": tls_fake.base_url}
    code, out, err = await cli.run(*argv, **{**env, "REQUESTS_CA_BUNDLE": str(proxy_ca.ca_pem)})
    assert code == 0, err
    assert [e["name"] for e in json.loads(out)] == ["my-endpoint"]
    code, _, err = await cli.run(*argv, **env)
    assert code != 0 and "CERTIFICATE_VERIFY_FAILED" in err


def _credential() -> Any:
    from tests.support.fake_arm import StaticTokenCredential

    return StaticTokenCredential("static-token-1")
