"""``get-logs --since``: durations (as kubectl logs --since) and ISO 8601 times (--since-time)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from modeldeck.cli.parser import build_parser
from modeldeck.cli.since import parse_since
from modeldeck.services.api.errors import InvalidInput

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1.5h", 5400),
        (" 10M ", 600),
    ],
)
def test_durations_count_back_from_now(text: str, seconds: float) -> None:
    assert parse_since(text, NOW) == NOW - seconds


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05.250+00:00", datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)),
        ("2026-01-02T05:04:05+02:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),  # no zone: UTC
    ],
)
def test_iso_times_are_moments(text: str, moment: datetime) -> None:
    assert parse_since(text, NOW) == moment.timestamp()


@pytest.mark.parametrize("text", ["10", "ten minutes", "10x", "-5m", "0s", "", "m", "2026-13-01"])
def test_bad_values_are_refused_by_name_with_a_fix(text: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_since(text, NOW)
    assert exc.value.field == "since" and exc.value.value == text
    assert "10m" in (exc.value.fix or "") and "2026-01-02T03:04:05Z" in (exc.value.fix or "")


def test_get_logs_takes_since() -> None:
    args = build_parser(full=True).parse_args(
        ["online-deployment", "get-logs", "-n", "blue", "-e", "ep", "--since", "10m"]
    )
    assert args.since == "10m"
    default = build_parser(full=True).parse_args(
        ["online-deployment", "get-logs", "-n", "blue", "-e", "ep"]
    )
    assert default.since is None
