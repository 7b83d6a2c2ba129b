"""Data and helpers of the 80x24 tests (issue 13): an endpoint with four deployments
with long names, and the text a terminal of that size shows."""

from __future__ import annotations

from typing import Any

from modeldeck.services.api.domain import AuthMode, Deployment, Endpoint, ProvisioningState

from tests.tui.test_snapshots import URI, _dep

OK = ProvisioningState.SUCCEEDED
LONG = {
    "blue": 85,
    "canary-2026-12-06-hotfix-a": 5,
    "canary-2026-12-06-hotfix-b": 0,
    "green-2026-11-30-release": 10,
}


def long_endpoint() -> tuple[Endpoint, list[Deployment]]:
    endpoint = Endpoint("fraud-scoring-prod", "myaks", AuthMode.KEY, URI, dict(LONG), {}, OK)
    return endpoint, [_dep(n, endpoint.name, v) for n, v in LONG.items()]


def screen_text(app: Any) -> str:
    """What the terminal shows, one line per row."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)
