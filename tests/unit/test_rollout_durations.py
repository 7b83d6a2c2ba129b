"""A rollout's durations as shown (the dashboard's Rollout view, its form's defaults) read
back as the same seconds by the rule that takes ``--interval`` (services/api/rollouts.py)."""

from __future__ import annotations

import pytest
from modeldeck.services.api.rollouts import duration, duration_text


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.5, "0.5s"), (1, "1s"), (59, "59s"), (60, "1m"), (90, "1m30s"), (120, "2m"),
     (5400, "1h30m"), (86400, "1d")],
)  # fmt: skip
def test_a_duration_shown_reads_back_as_the_same_seconds(seconds: float, shown: str) -> None:
    assert duration_text(seconds) == shown
    assert duration(shown, "interval") == seconds


def test_a_measured_window_is_shown_to_a_tenth_of_a_second() -> None:
    assert duration_text(1.00684) == "1s" and duration_text(2.46) == "2.5s"
