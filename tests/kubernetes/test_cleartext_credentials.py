"""Point 7 of issue 9 on Kubernetes: a kubeconfig token never goes over plain http to
anything but loopback.

The kubeconfig's ``proxy-url`` points at the loopback fake API server: a request to
``http://example.invalid`` reaches the fake through it (the control shows it does for a
user without credentials), so an empty request log means nothing was sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from modeldeck.services.api.errors import InvalidInput


def kubeconfig(tmp_path: Path, fake: Any, server: str, user: dict[str, Any]) -> Path:
    data = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, "proxy-url": fake.url}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "far", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "far",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return path


async def test_without_credentials_the_proxy_carries_the_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_factory: Any, make_driver: Any
) -> None:
    fake = fake_factory(anonymous=True)
    path = kubeconfig(tmp_path, fake, "http://example.invalid:8080", {})
    monkeypatch.setenv("KUBECONFIG", str(path))
    cap = await make_driver(context="far").capacity()
    assert cap.nodes == 4 and fake.requests  # it went out (to the fake, through the proxy)


@pytest.mark.parametrize(
    "user",
    [
        {"token": "fake-token-0123456789"},
        {"username": "admin", "password": "hunter2-hunter2"},
        {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "printf"}},
    ],
    ids=["token", "password", "exec"],
)
async def test_credentials_over_http_elsewhere_are_refused_before_anything_is_sent(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_factory: Any,
    make_driver: Any,
    user: dict[str, Any],
) -> None:
    fake = fake_factory(anonymous=True)
    path = kubeconfig(tmp_path, fake, "http://example.invalid:8080", user)
    monkeypatch.setenv("KUBECONFIG", str(path))
    driver = make_driver(context="far")
    with pytest.raises(InvalidInput) as info:
        await driver.capacity()
    err = info.value
    assert "http://example.invalid:8080" in err.message and "loopback" in err.message
    assert "https://" in (err.fix or "") and "far" in (err.fix or "")
    assert "fake-token" not in str(err) and "hunter2" not in str(err)
    assert fake.requests == []
    with pytest.raises(InvalidInput):  # streams too (pod logs, watches)
        async for _ in driver.api.stream_lines("/api/v1/nodes", driver._call("watch", "Pod")):
            pass
    assert fake.requests == []


async def test_a_token_over_http_to_loopback_is_allowed(driver: Any, fake: Any) -> None:
    assert fake.url.startswith("http://127.0.0.1")
    assert (await driver.capacity()).nodes == 4
