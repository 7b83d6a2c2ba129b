"""A line plot drawn as text, fast enough for a keypress: Braille dots (2x4 a cell), or
one marker a cell where the terminal has no Braille or no colour (each series its own
marker then, so shape tells them apart).

Points are first reduced to one per dot column (the mean of those that fall in it), so
the work is bounded by the plot's size, not by how many points a window holds; lines
join consecutive points, except across a gap the caller names (the sampler was not
running: no line is made up). Pure: no Textual; ``MetricPlot`` wraps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: colours of the series, in order
PALETTE = ("cyan", "magenta", "yellow", "green", "bright_blue", "red", "white")
#: one marker a cell, per series, where dots cannot be drawn or colours cannot be told apart
MARKERS = ("*", "+", "o", "x", "%", "@", "=")
#: a line: runs of text and the name of their style (a colour, "bold", "dim"), if any
Line = list[tuple[str, str | None]]
_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] of a cell


@dataclass(frozen=True)
class Series:
    label: str
    xs: Sequence[float]
    ys: Sequence[float]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:.0f}"
    return f"{v:.3g}"


def _reduce(xs: Sequence[float], ys: Sequence[float], x0: float, span: float, cols: int):  # type: ignore[no-untyped-def]
    """(column, y) per dot column: the mean of the points in it, in x order."""
    sums: dict[int, list[float]] = {}
    for x, y in zip(xs, ys, strict=False):
        c = round((x - x0) / span * (cols - 1))
        if 0 <= c < cols:
            acc = sums.get(c)
            if acc is None:
                sums[c] = [y, 1.0]
            else:
                acc[0] += y
                acc[1] += 1.0
    return [(c, s / n) for c, (s, n) in sorted(sums.items())]


def render(
    title: str,
    series: Sequence[Series],
    *,
    width: int,
    height: int,
    x_range: tuple[float, float],
    y_top: float,
    x_label: str,
    max_gap: float = float("inf"),
    dots: bool = True,
    mono: bool = False,
    box: bool = True,
) -> list[Line]:
    """The plot as ``height`` lines of ``width`` cells, each line runs of (text, style
    name or None): a title with the legend, the
    canvas with y ticks (0, half, top) on its left, x ticks under it, then ``x_label``.
    Two points further apart than ``max_gap`` (in x) are not joined. ``box``: the axes in
    box-drawing lines, else in ASCII (``| - +``)."""
    x0, x1 = x_range
    span = (x1 - x0) or 1.0
    top = y_top if y_top > 0 else 1.0
    labels = [_fmt(top), _fmt(top / 2), "0"]
    lw = max(len(s) for s in labels)
    cw = max(1, width - lw - 1)
    ch = max(1, height - 4)  # the title, the x axis, its ticks and its label
    cell_dots = dots and not mono
    sx, sy = (2, 4) if cell_dots else (1, 1)
    pw, ph = cw * sx, ch * sy
    bits = [[0] * cw for _ in range(ch)]
    owner = [[-1] * cw for _ in range(ch)]

    def plot(px: int, py: int, i: int) -> None:
        if 0 <= px < pw and 0 <= py < ph:
            r, c = py // sy, px // sx
            bits[r][c] |= _BITS[py % 4][px % 2] if cell_dots else 1
            owner[r][c] = i

    for i, s in enumerate(series):
        if not s.xs:
            continue
        last_x: float | None = None
        prev: tuple[int, int] | None = None
        pts = _reduce(s.xs, s.ys, x0, span, pw)
        col_x = {round((x - x0) / span * (pw - 1)): x for x in s.xs}
        for c, y in pts:
            py = round((1 - min(max(y, 0.0), top) / top) * (ph - 1))
            x = col_x.get(c, x0 + c / max(pw - 1, 1) * span)
            if prev is not None and last_x is not None and x - last_x <= max_gap:
                (ax, ay), steps = prev, max(abs(c - prev[0]), abs(py - prev[1]), 1)
                for k in range(1, steps + 1):
                    plot(ax + round((c - ax) * k / steps), ay + round((py - ay) * k / steps), i)
            else:
                plot(c, py, i)
            prev, last_x = (c, py), x

    tick, rule, corner, dash = ("┤", "│", "└", "─") if box else ("+", "|", "+", "-")
    lines: list[Line] = []
    head: Line = [(title, "bold")]
    for i, s in enumerate(series):
        mark = "⣿" if cell_dots else MARKERS[i % len(MARKERS)]
        head += [(f"  {mark} ", None if mono else PALETTE[i % len(PALETTE)]), (s.label, None)]
    pad = max(0, (width - sum(len(t) for t, _ in head)) // 2)
    lines.append([(" " * pad, None), *head])
    tick_rows = {0: labels[0], ch // 2: labels[1], ch - 1: labels[2]}
    for r in range(ch):
        label = tick_rows.get(r, "")
        line: Line = [(label.rjust(lw) + (tick if label else rule), "dim")]
        row, own = bits[r], owner[r]
        if not any(row):
            line.append((" " * cw, None))
            lines.append(line)
            continue
        run: list[str] = []
        run_style: str | None = None
        for c in range(cw):
            b, i = row[c], own[c]
            if not b:
                char, style = " ", None
            elif cell_dots:
                char, style = chr(0x2800 + b), PALETTE[i % len(PALETTE)]
            else:
                char, style = MARKERS[i % len(MARKERS)], None if mono else PALETTE[i % len(PALETTE)]
            if style != run_style and run:
                line.append(("".join(run), run_style))
                run = []
            run_style = style
            run.append(char)
        if run:
            line.append(("".join(run), run_style))
        lines.append(line)
    lines.append([(" " * lw + corner + dash * cw, "dim")])
    ticks = [(0, _fmt(x0)), (cw // 2, _fmt(x0 + span / 2)), (cw - 1, _fmt(x1))]
    axis = [" "] * (lw + 1 + cw)
    for c, t in ticks:
        start = min(max(lw + 1 + c - len(t) // 2, 0), len(axis) - len(t))
        axis[start : start + len(t)] = list(t)
    lines.append([("".join(axis), "dim")])
    lines.append([(x_label.center(width).rstrip(), "dim")])
    return lines


def plain(lines: Sequence[Line]) -> str:
    """The text of rendered lines, without styles (tests, screenshots)."""
    return "\n".join("".join(t for t, _ in line) for line in lines)
