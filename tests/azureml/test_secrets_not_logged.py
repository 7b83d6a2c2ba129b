"""Keys and tokens never reach a log line, at any level, from our code or the libraries
under it (httpx, httpcore, azure-identity), nor an error message or a repr."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from modeldeck.services.api.domain import CodeConfiguration, DeploymentSpec, KeyType
from modeldeck.services.api.errors import ModeldeckError, Unauthorized
from modeldeck.services.azureml.workspace import AzureMLWorkspace

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LOGGERS = ("", "httpx", "httpcore", "azure", "azure.identity", "modeldeck", "asyncio")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Any:
    """A DEBUG handler on the root logger and, directly, on each library's logger."""
    handler = Capture()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
    saved = []
    for name in LOGGERS:
        log = logging.getLogger(name)
        saved.append((log, log.level, log.propagate))
        log.setLevel(logging.DEBUG)
        if name:
            log.propagate = False
        log.addHandler(handler)
    try:
        yield handler
    finally:
        for log, level, propagate in saved:
            log.removeHandler(handler)
            log.setLevel(level)
            log.propagate = propagate


async def test_no_key_or_token_in_debug_logs(ws: Any, seeded: Any, captured: Capture) -> None:
    seeded.add_endpoint("tok-ep", "myaks", auth="AMLToken", traffic={"blue": 100})
    seeded.add_deployment("tok-ep", "blue")
    secrets: set[str] = {"static-token-1", seeded.sas_sig}

    keys = await ws.get_keys("my-endpoint")
    secrets |= {keys.primaryKey, keys.secondaryKey}
    assert (await ws.invoke("my-endpoint", b'{"data": [[1]]}')).status == 200
    after = await ws.regenerate_keys("my-endpoint", KeyType.PRIMARY)
    secrets |= {after.primaryKey, after.secondaryKey}
    assert (await ws.invoke("my-endpoint", b"{}")).status == 200
    tok = await ws.get_token("tok-ep")
    secrets.add(tok.accessToken)
    assert (await ws.invoke("tok-ep", b"{}")).status == 200
    # a deployment: code uploaded to the blob store through a SAS URL
    spec = DeploymentSpec(
        name="purple",
        endpoint_name="my-endpoint",
        model="azureml:sklearn-demo:1",
        code_configuration=CodeConfiguration(
            code=str(EXAMPLES / "blue"), scoring_script="score.py"
        ),
        environment="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest",
    )
    await (await ws.create_deployment(spec)).wait()
    # an error path: a failed ARM call with the key endpoint's token request
    with pytest.raises(ModeldeckError) as info:
        await ws.get_token("my-endpoint")

    secrets |= set(seeded.keys["my-endpoint"].values()) | set(seeded.aml_tokens.values())
    assert seeded.calls("PUT", "/blob/"), "the upload did not happen: the test checks too little"
    text = "\n".join(captured.lines)
    assert "HTTP Request" in text, "httpx's request lines were not captured"
    assert any(line.startswith("httpcore") for line in captured.lines)
    assert "sig=REDACTED" in text  # the upload's URL was logged, its signature was not
    everything = text + str(info.value) + repr(ws) + repr(ws.tokens) + repr(ws.arm.retry_log)
    leaked = sorted(s for s in secrets if s and s in everything)
    assert leaked == []


async def test_a_refused_token_is_not_in_the_error_or_the_log(
    fake: Any, token_credential: Any, arm_settings: Any, captured: Capture
) -> None:
    cred = token_credential("not-a-valid-token-xyz")
    ws = AzureMLWorkspace.from_settings("x", arm_settings(fake, cred))
    try:
        with pytest.raises(Unauthorized) as info:
            await ws.list_endpoints()
    finally:
        await ws.close()
    assert "az login" in (info.value.fix or "")
    assert len(fake.requests) == 2  # tried once more with a fresh token, then said so
    text = "\n".join(captured.lines) + str(info.value) + str(info.value.to_dict())
    assert "not-a-valid-token-xyz" not in text
