"""services/rollout/webhook.py against a real HTTP server on loopback (aiohttp)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from modeldeck.services.api.rollouts import Rollout, RolloutCheck, RolloutSpec, RolloutState
from modeldeck.services.rollout import webhook

from tests.support.rollouts import webhook_receiver

SECRET = "/services/T000/B000/s3cr3tt0k3n"


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict], dict]]:
    """http://127.0.0.1:PORT, the bodies received, and the answer's settings (status, delay)."""
    settings: dict = {"status": 200, "delay": 0.0}
    async with webhook_receiver(SECRET.lstrip("/"), settings) as (url, bodies):
        yield url.removesuffix(SECRET), bodies, settings


def rollout(url: str) -> Rollout:
    spec = RolloutSpec(endpoint="ep", to="green", from_="blue", steps=(10, 50, 100), webhook=url)
    return Rollout(
        id="r1",
        spec=spec,
        state=RolloutState.FAILED,
        step=1,
        weight=0,
        started_at=1_800_000_000.0,
        step_started_at=1_800_000_100.0,
        updated_at=1_800_000_104.5,
        finished_at=1_800_000_104.5,
        message="green 31.0% errors (93 of 300) against blue 0.0% (0 of 912) over 4 s",
        traffic={"blue": 100, "green": 0},
    )


CHECK = RolloutCheck(
    at=1_800_000_104.5,
    window_s=4.0,
    treatment_requests=300,
    treatment_errors=93,
    control_requests=912,
    control_errors=0,
    treatment_p95_ms=12.5,
    control_p95_ms=11.0,
    verdict="fail",
    reason="green 31.0% errors (93 of 300) against blue 0.0% (0 of 912) over 4 s",
)


async def test_the_payload_is_posted_as_json_with_the_numbers_and_the_webhook_redacted(
    receiver: tuple[str, list[dict], dict],
) -> None:
    base, bodies, _ = receiver
    url = base + SECRET
    r = rollout(url)
    assert await webhook.post(url, webhook.payload(r, "failed", CHECK)) is None
    (body,) = bodies
    assert (body["event"], body["endpoint"]) == ("failed", "ep")
    assert body["at"] == "2027-01-15T08:01:44.500000+00:00"
    assert body["rollout"]["state"] == "Failed"
    assert body["rollout"]["phase"] == "step 2/3 (50%)"
    assert (body["rollout"]["treatment"], body["rollout"]["control"]) == ("green", "blue")
    assert body["rollout"]["spec"]["steps"] == [10, 50, 100]
    assert body["rollout"]["spec"]["from"] == "blue"  # as --from and the YAML's from: name it
    assert "from_" not in body["rollout"]["spec"]
    assert body["rollout"]["spec"]["webhook"] == base + "/…"
    assert body["check"]["treatment"] == {
        "requests": 300,
        "errors": 93,
        "error_rate_percent": 31.0,
        "p95_ms": 12.5,
    }
    assert body["check"]["control"]["requests"] == 912
    assert body["check"]["verdict"] == "fail"
    assert "93 of 300" in body["text"]
    assert "s3cr3t" not in json.dumps(body)
    step = webhook.payload(r, "step", None)
    assert step["check"] is None and step["event"] == "step"


def test_a_promoted_rollout_reads_promoted_not_the_step_it_left() -> None:
    """The record keeps the last step it held (step 2/3, 50%): the JSON an operator reads
    (webhook, rollout -o json, show) says where the traffic is."""
    r = replace(rollout("https://hooks.example.com/x"), state=RolloutState.SUCCEEDED, weight=100)
    body = webhook.payload(r, "promoted", CHECK)
    assert body["rollout"]["phase"] == "promoted (100%)"
    assert "(Succeeded, promoted (100%))" in body["text"]


def test_the_figures_read_as_measured_not_with_float_noise() -> None:
    noisy = replace(CHECK, window_s=5.109350919723511, treatment_p95_ms=23.000000001047738)
    check = webhook.payload(rollout("https://hooks.example.com/x"), "step", noisy)["check"]
    assert (check["window_s"], check["treatment"]["p95_ms"]) == (5.109, 23.0)
    assert check["control"]["p95_ms"] == 11.0


async def test_a_failed_post_is_returned_as_text_and_never_shows_the_secret(
    receiver: tuple[str, list[dict], dict], caplog: pytest.LogCaptureFixture
) -> None:
    base, _, settings = receiver
    url = base + SECRET
    body = webhook.payload(rollout(url), "step", None)
    caplog.set_level(logging.WARNING)
    settings["status"] = 500
    assert await webhook.post(url, body) == f"the webhook {base}/… answered HTTP 500"
    settings["status"], settings["delay"] = 200, 1.5
    error = await asyncio.wait_for(webhook.post(url, body, timeout=0.3), 3.0)
    assert error == f"the webhook {base}/… did not answer within 0.3 s"
    closed = "http://127.0.0.1:9" + SECRET  # discard: nothing listens
    error = await webhook.post(closed, body, timeout=2.0)
    assert error is not None and error.startswith("the webhook http://127.0.0.1:9/… ")
    assert "s3cr3t" not in caplog.text + (error or "")
    assert caplog.text.count("the webhook") == 3
