"""A rollout's notifications posted as JSON to the operator's webhook (``--webhook URL``).

One POST per event (``started``, ``step``, ``mirror``, ``paused``, ``resumed``, ``waiting``,
``promoted``, ``failed``, ``aborted``), ``Content-Type: application/json``, the body
:func:`payload`::

    {
      "event": "failed",
      "endpoint": "my-endpoint",
      "at": "2026-12-07T01:30:12.250000+00:00",          # ISO 8601, UTC
      "text": "modeldeck: rollout of green on my-endpoint failed: green 31.0% errors ...",
      "rollout": {"id": ..., "state": "Failed", "phase": "step 3/5 (25%)", "step": 2,
                  "weight": 0, "treatment": "green", "control": "blue", "message": ...,
                  "traffic": {"blue": 100, "green": 0}, "mirror_traffic": {},
                  "started_at": ISO, "step_started_at": ISO, "updated_at": ISO,
                  "finished_at": ISO | null, "started_by": ..., "driven_by": ...,
                  "spec": {"endpoint", "to", "from", "steps", "interval_s",
                           "max_error_rate", "max_p95_ratio", "min_requests",
                           "mirror_first_s", "webhook": "https://hooks.example.com/…"}},
      "check": null | {"verdict": "fail", "reason": ..., "window_s": 4.0, "at": ISO,
                       "treatment": {"requests": 300, "errors": 93,
                                     "error_rate_percent": 31.0, "p95_ms": 12.5},
                       "control": {"requests": 912, "errors": 0,
                                   "error_rate_percent": 0.0, "p95_ms": 11.0}}
    }

``text`` is one line for chat webhooks that show it (Slack's incoming webhooks read that key).
The webhook's own URL is shown redacted (``redact_url``: its path often holds a secret), in
the payload and in the logs. Posting never raises and never waits more than ``timeout``
seconds: a failure is returned as text for the caller to record.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..api.domain import to_dict
from ..api.rollouts import Rollout, RolloutCheck, redact_url
from ..armids import iso_time

log = logging.getLogger(__name__)


def _side(requests: int, errors: int, rate: float | None, p95: float | None) -> dict[str, Any]:
    return {
        "requests": requests,
        "errors": errors,
        "error_rate_percent": None if rate is None else round(rate, 3),
        "p95_ms": None if p95 is None else round(p95, 3),  # 23.0, not 23.000000001047738
    }


def check_dict(check: RolloutCheck) -> dict[str, Any]:
    """A check's figures as the payload gives them."""
    return {
        "verdict": check.verdict,
        "reason": check.reason,
        "window_s": round(check.window_s, 3),
        "at": iso_time(check.at),
        "treatment": _side(
            check.treatment_requests,
            check.treatment_errors,
            check.treatment_error_rate,
            check.treatment_p95_ms,
        ),
        "control": _side(
            check.control_requests,
            check.control_errors,
            check.control_error_rate,
            check.control_p95_ms,
        ),
    }


def payload(
    rollout: Rollout, event: str, check: RolloutCheck | None, *, at: float | None = None
) -> dict[str, Any]:
    """The JSON body of one notification (the module's docstring shows it)."""
    # the keys as the YAML block and the flags name them: ``from``, not the field's ``from_``
    spec = {("from" if k == "from_" else k): v for k, v in to_dict(rollout.spec).items()}
    spec["webhook"] = redact_url(rollout.spec.webhook) if rollout.spec.webhook else None
    body = {
        "id": rollout.id,
        "state": rollout.state.value,
        "phase": rollout.phase,
        "step": rollout.step,
        "weight": rollout.weight,
        "treatment": rollout.treatment,
        "control": rollout.control,
        "message": rollout.message,
        "traffic": dict(rollout.traffic),
        "mirror_traffic": dict(rollout.mirror_traffic),
        "started_at": iso_time(rollout.started_at),
        "step_started_at": iso_time(rollout.step_started_at),
        "updated_at": iso_time(rollout.updated_at),
        "finished_at": iso_time(rollout.finished_at),
        "started_by": rollout.started_by,
        "driven_by": rollout.driven_by,
        "revision": rollout.revision,
        "spec": spec,
    }
    when = rollout.updated_at if at is None else at
    text = (
        f"modeldeck: rollout of {rollout.treatment} on {rollout.spec.endpoint} {event} "
        f"({rollout.state.value}, {rollout.phase})"
        + (f": {rollout.message}" if rollout.message else "")
    )
    return {
        "event": event,
        "endpoint": rollout.spec.endpoint,
        "at": iso_time(when),
        "text": text,
        "rollout": body,
        "check": None if check is None else check_dict(check),
    }


async def post(url: str, body: dict[str, Any], *, timeout: float = 5.0) -> str | None:
    """POST ``body`` as JSON to ``url``: None when the receiver answered 2xx, else what went
    wrong, in words (the URL redacted). Never raises; gives up after ``timeout`` seconds; does
    not follow redirects nor read the answer's body."""
    import httpx

    shown = redact_url(url)
    error: str | None = None
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            async with asyncio.timeout(timeout):
                async with client.stream("POST", url, json=body) as resp:
                    if not 200 <= resp.status_code < 300:
                        error = f"the webhook {shown} answered HTTP {resp.status_code}"
    except TimeoutError:
        error = f"the webhook {shown} did not answer within {timeout:g} s"
    except Exception as exc:  # never raises: the rollout goes on
        text = str(exc).replace(url, shown) or type(exc).__name__
        error = f"the webhook {shown} could not be reached: {text}"
    if error:
        log.warning("%s", error)
    return error
