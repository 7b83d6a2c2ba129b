"""Data and helpers of the 80x24 tests (issue 13): an endpoint with four deployments
with long names, and the text a terminal of that size shows."""

from __future__ import annotations

import html
import re
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


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_of(svg: str, word: str) -> list[float]:
    """WCAG contrast ratios of each piece of text containing ``word`` in a Textual SVG
    screenshot, against the cell background under it (4.5 is WCAG's minimum for text)."""
    fills = dict(re.findall(r"\.(terminal-[\w-]+) \{ fill: #([0-9a-f]{6})", svg))
    rects = [
        (float(x), float(y), float(w), float(h), colour)
        for colour, x, y, w, h in re.findall(
            r'<rect fill="#([0-9a-f]{6})" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"',
            svg,
        )
    ]
    out = []
    for cls, x, y, body in re.findall(
        r'<text class="([^"]*)" x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>', svg
    ):
        if word not in html.unescape(body):
            continue
        tx, ty = float(x), float(y)
        under = [r for r in rects if r[0] <= tx < r[0] + r[2] and r[1] <= ty - 5 < r[1] + r[3]]
        text_l, back_l = _luminance(fills[cls]), _luminance(under[-1][4])
        out.append((max(text_l, back_l) + 0.05) / (min(text_l, back_l) + 0.05))
    return out
