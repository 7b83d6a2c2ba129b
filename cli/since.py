"""``get-logs --since``: a relative duration (``30s``, ``10m``, ``2h``, ``1d``, ``1h30m``, as
``kubectl logs --since``) or an ISO 8601 moment (``2026-01-02T03:04:05Z``, as
``kubectl logs --since-time``; one without a zone is UTC), as epoch seconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ..services.api.errors import InvalidInput

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?[smhd])+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_FIX = (
    "write a duration such as 30s, 10m, 2h, 1d (or 1h30m), or a time such as 2026-01-02T03:04:05Z"
)


def parse_since(text: str, now: float) -> float:
    """Epoch seconds: ``now`` minus a duration, or the moment an ISO 8601 time names."""
    raw = text.strip()
    if _DURATION.match(raw.lower()):
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(raw.lower()))
        if seconds <= 0:
            raise InvalidInput("since", text, "must be a duration of more than 0", _FIX)
        return now - seconds
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("since", text, "must be a duration or an ISO 8601 time", _FIX) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
