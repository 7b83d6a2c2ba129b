"""Snapshots at 80x24 for issue 13's fixes (the other screens: test_snapshots.py).

Same construction as test_snapshots.py: ``autoload=False``, fixed domain objects fed
through ``show_data``. Update with ``pytest tests/tui/test_snapshots_narrow.py --snapshot-update``.
"""

from __future__ import annotations

from typing import Any

from tests.tui.narrow import long_endpoint
from tests.tui.test_snapshots import ENDPOINTS, RPS, app_for, feeding

SMALL = (80, 24)


def test_traffic_of_four_long_names_shows_every_share(snap_compare: Any) -> None:
    """Acceptance: every deployment's share on screen, long names cut with an ellipsis."""
    from modeldeck.tui.screens.traffic import TrafficScreen

    endpoint, deployments = long_endpoint()
    run = feeding((endpoint, deployments), push=lambda: TrafficScreen(endpoint.name))
    assert snap_compare(app_for(), terminal_size=SMALL, run_before=run)


def test_endpoints_with_a_long_split(snap_compare: Any) -> None:
    endpoint, _ = long_endpoint()
    run = feeding(([endpoint, *ENDPOINTS], RPS))
    assert snap_compare(app_for("endpoints"), terminal_size=SMALL, run_before=run)


def test_deployments_with_long_names(snap_compare: Any) -> None:
    from tests.tui.test_snapshots import DEPLOYMENTS

    _, deployments = long_endpoint()
    run = feeding([*deployments, *DEPLOYMENTS])
    assert snap_compare(app_for("deployments"), terminal_size=SMALL, run_before=run)


def test_delete_of_a_serving_endpoint_asks_for_its_name(snap_compare: Any) -> None:
    from modeldeck.tui.screens.dialogs import TypedConfirmScreen

    msg = (
        "Delete endpoint 'my-endpoint' and all its deployments.\n"
        "Its scoring URI stops answering; its keys stop working.\n\n"
        "[bold red]It is serving: 8.0 req/s now, traffic blue=90 green=10.[/]"
    )
    run = feeding(
        (ENDPOINTS, RPS),
        after=lambda pilot: pilot.app.push_screen(
            TypedConfirmScreen("Delete my-endpoint?", msg, "my-endpoint")
        ),
    )
    assert snap_compare(app_for("endpoints"), terminal_size=SMALL, run_before=run)
