"""Pure formatting helpers for the dashboard: errors, bars, colours, filters.

Nothing here touches the network, the clock or the terminal, so every screen
(and the snapshot tests) renders the same data the same way.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text

from ..services.api.errors import ModeldeckError
from . import glyphs

if TYPE_CHECKING:
    from ..services.api.domain import Endpoint
    from ..services.api.health import DeploymentHealth

#: one colour per deployment, chosen from its name (stable across runs: crc32, not hash())
PALETTE = ("#4EA1D3", "#5FB86B", "#E5A03A", "#C678DD", "#E06C75", "#56B6C2", "#D19A66")


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
    g = glyphs.current()
    text.append(g.full * full, style=colour)
    text.append(g.empty * (width - full), style="dim")
    text.append(f" {round(used, 1):g}/{round(total, 1):g}{unit}")
    return text


def abbreviate(name: str, width: int) -> str:
    """``name`` in at most ``width`` cells: its head and its tail around the ellipsis (long
    deployment names often differ at the end: ``canary-2026-12-06-hotfix-a`` / ``-b``)."""
    if len(name) <= width:
        return name
    mark = glyphs.current().ellipsis
    keep = width - len(mark)
    if keep < 1:
        return name[:width]
    head = (keep + 1) // 2
    tail = keep - head
    return name[:head] + mark + (name[-tail:] if tail else "")


MIN_NAME = 2  # a name is never abbreviated below this (``b…=85``)


def share_labels(items: Sequence[tuple[str, int]], width: int | None = None) -> list[str]:
    """``name=pct`` for every deployment, the longest names abbreviated first until the
    labels fit in ``width``: a share is never dropped to make room."""
    if not items:
        return []
    cap = max(len(n) for n, _ in items)
    while True:
        labels = [f"{abbreviate(n, cap)}={v}" for n, v in items]
        if width is None or cap <= MIN_NAME or len(" ".join(labels)) <= width:
            return labels
        cap -= 1


def _shares_in_cells(items: Sequence[tuple[str, int]], width: int) -> list[int]:
    """Cells per share, ``width`` in all: each share at least one (a 5% share of a 10-cell
    bar is seen), the rest in proportion."""
    total = sum(p for _, p in items) or 1
    cells = [max(1 if width >= len(items) else 0, round(p / total * width)) for _, p in items]
    while sum(cells) > width:
        cells[max(range(len(cells)), key=lambda i: cells[i])] -= 1
    while sum(cells) < width:
        cells[max(range(len(cells)), key=lambda i: items[i][1] / total * width - cells[i])] += 1
    return cells


def traffic_bar(
    traffic: Mapping[str, int], width: int = 20, label_width: int | None = None
) -> Text:
    """A stacked bar of an endpoint's traffic split, one colour per deployment, then every
    deployment's share (names abbreviated to fit ``label_width``). Without colour (NO_COLOR)
    each segment has its own fill, shown before its name in the label."""
    g = glyphs.current()
    text = Text()
    items = [(k, v) for k, v in sorted(traffic.items()) if v > 0]
    total = sum(v for _, v in items)
    if total <= 0:
        text.append(g.empty * width, style="dim")
        text.append(" no traffic", style="dim")
        return text
    fills = [g.segments[i % len(g.segments)] if g.mono else g.full for i in range(len(items))]
    for (name, _), fill, cells in zip(items, fills, _shares_in_cells(items, width), strict=True):
        text.append(fill * cells, style=colour_for(name))
    mono = g.mono and len(items) > 1
    room = None if label_width is None else label_width - (len(items) if mono else 0)
    for fill, (name, _), label in zip(fills, items, share_labels(items, room), strict=True):
        text.append(" " + (fill if mono else ""))
        text.append(label, style=colour_for(name))
    return text


class Name(str):
    """A table cell naming something, cut in the middle to fit (``canar…fix-a``): the end
    that tells two long names apart stays."""

    def fit_to(self, width: int) -> Text:
        return Text(abbreviate(self, width))


@dataclass(frozen=True)
class TrafficCell:
    """A table cell with an endpoint's traffic bar, drawn to the width its column gets
    (``ResourceTable`` calls ``fit_to``): every share stays readable however narrow."""

    traffic: tuple[tuple[str, int], ...]
    bar: int = 8

    @classmethod
    def of(cls, traffic: Mapping[str, int], bar: int = 8) -> TrafficCell:
        return cls(tuple(sorted(traffic.items())), bar)

    @property
    def min_width(self) -> int:
        """A short bar, a space, and every share with its name cut to MIN_NAME."""
        items = [(k, v) for k, v in self.traffic if v > 0]
        if not items:
            return 0
        marks = len(items) if glyphs.current().mono and len(items) > 1 else 0
        return min(4, self.bar) + 1 + len(" ".join(share_labels(items, 0))) + marks

    def fit_to(self, width: int) -> Text:
        """The bar gives way (down to 4 cells) before a name is abbreviated."""
        full_label = len(str(self)) - self.bar  # with its leading space
        bar = max(min(4, self.bar), min(self.bar, width - full_label))
        return traffic_bar(dict(self.traffic), bar, width - bar - 1)

    def __str__(self) -> str:
        return traffic_bar(dict(self.traffic), self.bar).plain


_REGEX_SYNTAX = set(".^$*+?{}[]\\|()")


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
        #: the pattern as plain lower-case text when it is one (ASCII, no regex syntax): a
        #: substring test finds what the regex finds, some times faster (10,000 rows a key)
        self.needle = body.lower() if body.isascii() and not _REGEX_SYNTAX & set(body) else None

    def __bool__(self) -> bool:
        return self.regex is not None

    def matches(self, text: str) -> bool:
        if self.regex is None:
            return True
        found = self.regex.search(text) is not None
        return found != self.invert

    def matches_lower(self, lowered: str) -> bool:
        """``matches`` of a text already lower-cased (a table lowers its rows' once): the
        regex ignores case, so it finds the same in either."""
        if self.regex is None:
            return True
        needle = self.needle
        found = needle in lowered if needle is not None else self.regex.search(lowered) is not None
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


def fmt_float(value: float | None, spec: str = ".1f", none: str | None = None) -> str:
    """``value`` formatted; a dash when there is none (``-`` in ASCII)."""
    if value is None:
        return glyphs.current().dash if none is None else none
    return format(value, spec)


def error_rate_text(h: DeploymentHealth | None) -> str:
    """``0.4%``; a dash when there is no figure now."""
    return fmt_float(h.error_rate if h else None, ".1%")


def p95_text(h: DeploymentHealth | None) -> str:
    """``12 ms``; a dash when there is no figure now."""
    p95 = h.latency_p95_ms if h else None
    return glyphs.current().dash if p95 is None else f"{p95:.0f} ms"


def health_figures(h: DeploymentHealth) -> str:
    """``READY 1/1  err 0.4%  p95 12 ms`` (``services.api.health``'s figures, in the
    terminal's glyphs)."""
    return f"READY {h.ready}  err {error_rate_text(h)}  p95 {p95_text(h)}"


def cluster_text(endpoint: Endpoint) -> str:
    """Where an endpoint's deployments run: its cluster record (the local workspace's
    managed capacity for a managed endpoint), else "managed" (Azure ML's managed compute)."""
    return endpoint.cluster or "managed"


def clip(text: str, width: int = 20) -> str:
    mark = glyphs.current().ellipsis
    return text if len(text) <= width else text[: width - len(mark)] + mark


def alarm() -> str:
    """The style of a failure: red, or without colour (NO_COLOR) reversed: bold red turns
    into a dark grey on the dark background there (#3b3b3b on #272727)."""
    return "bold reverse" if glyphs.current().mono else "bold red"


class Whole(Text):
    """A table cell never cut to fit (a state in words): the other columns give way."""

    @property
    def min_width(self) -> int:
        return self.cell_len


def failed_state(word: str) -> Text:
    """``⚠ Failed`` in a STATE column: the word always whole, the cause said elsewhere
    (the status line, the detail's errors)."""
    return Whole(f"{glyphs.current().warn} {word}", style=alarm())


def error_detail(name: str, error: str | None) -> str | None:
    if not error:
        return None
    from rich.markup import escape

    return f"[{alarm()}]{glyphs.current().warn} {escape(name)}:[/] {escape(error)}"


def degraded_text(healths: Sequence[DeploymentHealth]) -> Text:
    """Why the endpoint is Degraded, in words: a line per deployment that takes traffic while
    not ready or failing (``services.api.health``); empty while there is none."""
    from ..services.api.health import degraded

    text = Text()
    for i, h in enumerate(degraded(healths)):
        text.append(("\n" if i else "") + f"{glyphs.current().warn} Degraded: ", style=alarm())
        text.append(h.reason())
    return text
