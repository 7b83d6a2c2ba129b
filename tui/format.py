"""Pure formatting helpers for the dashboard: errors, bars, colours, filters.

Nothing here touches the network, the clock or the terminal, so every screen
(and the snapshot tests) renders the same data the same way.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping

from rich.text import Text

from ..services.api.errors import ModeldeckError

#: one colour per deployment, chosen from its name (stable across runs: crc32, not hash())
PALETTE = ("#4EA1D3", "#5FB86B", "#E5A03A", "#C678DD", "#E06C75", "#56B6C2", "#D19A66")
BAR_FULL = "█"
BAR_EMPTY = "░"


def colour_for(name: str) -> str:
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


def describe_error(exc: BaseException) -> str:
    """The message and fix of a service error; never a traceback."""
    if isinstance(exc, ModeldeckError):
        text = exc.message
        if exc.fix:
            text += f"\nfix: {exc.fix}"
        return text
    name = type(exc).__name__
    return f"{name}: {exc}" if str(exc) else name


def error_title(exc: BaseException) -> str:
    return getattr(exc, "code", None) or type(exc).__name__


def capacity_bar(used: float, total: float, width: int = 8, unit: str = "") -> Text:
    """``████░░░░ 6/12`` coloured by how full it is."""
    frac = 0.0 if total <= 0 else max(0.0, min(1.0, used / total))
    full = round(frac * width)
    colour = "green" if frac < 0.7 else "yellow" if frac < 0.9 else "red"
    text = Text()
    text.append(BAR_FULL * full, style=colour)
    text.append(BAR_EMPTY * (width - full), style="dim")
    text.append(f" {round(used, 1):g}/{round(total, 1):g}{unit}")
    return text


def traffic_bar(traffic: Mapping[str, int], width: int = 20) -> Text:
    """A stacked bar of an endpoint's traffic split, one colour per deployment."""
    text = Text()
    items = [(k, v) for k, v in sorted(traffic.items()) if v > 0]
    total = sum(v for _, v in items)
    if total <= 0:
        text.append(BAR_EMPTY * width, style="dim")
        text.append(" no traffic", style="dim")
        return text
    used = 0
    for i, (name, pct) in enumerate(items):
        cells = width - used if i == len(items) - 1 else round(pct / total * width)
        cells = max(0, min(cells, width - used))
        text.append(BAR_FULL * cells, style=colour_for(name))
        used += cells
    text.append(" " + " ".join(f"{k}={v}" for k, v in items))
    return text


class RowFilter:
    """k9s ``/`` filter: a case-insensitive regex; a leading ``!`` inverts it.

    A pattern that is not a valid regex is taken literally (``valid`` says so).
    """

    def __init__(self, pattern: str = "") -> None:
        self.pattern = pattern
        self.invert = pattern.startswith("!")
        body = pattern[1:] if self.invert else pattern
        self.valid = True
        try:
            self.regex: re.Pattern[str] | None = re.compile(body, re.IGNORECASE) if body else None
        except re.error:
            self.valid = False
            self.regex = re.compile(re.escape(body), re.IGNORECASE)

    def __bool__(self) -> bool:
        return self.regex is not None

    def matches(self, text: str) -> bool:
        if self.regex is None:
            return True
        found = self.regex.search(text) is not None
        return found != self.invert


def percent_diff(live: int, staged: int) -> Text:
    if live == staged:
        return Text(f"{staged:3d}%")
    delta = staged - live
    text = Text(f"{staged:3d}% ")
    text.append(
        f"({'+' if delta > 0 else ''}{delta})", style="bold green" if delta > 0 else "bold red"
    )
    return text


def fmt_float(value: float | None, spec: str = ".1f", none: str = "–") -> str:
    return none if value is None else format(value, spec)


def clip(text: str, width: int = 20) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def error_detail(name: str, error: str | None) -> str | None:
    if not error:
        return None
    from rich.markup import escape

    return f"[b red]⚠ {escape(name)}:[/] {escape(error)}"
