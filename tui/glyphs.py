"""What the terminal can draw, chosen once per dashboard from its environment.

* a UTF-8 terminal: Unicode (``…``, ``⚠``, block bars, Braille plots);
* ``TERM=linux`` (the Linux console's 512-glyph font has the CP437 blocks ``█▓▒░`` and
  arrows, no Braille, no ``⚠``, no ``…``, no emoji): blocks kept, the rest in ASCII;
* ``LANG=C`` / ``LC_ALL=POSIX`` (or ``MODELDECK_ASCII=1``): ASCII only.

Python starts a C locale in UTF-8 mode (PEP 538/540: it even rewrites ``LC_CTYPE``), so
a C locale is read from ``sys.flags.utf8_mode`` when nobody asked for UTF-8 mode.
Under ``NO_COLOR`` (``mono``) the bar segments of a traffic split differ by shape.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Glyphs:
    ellipsis: str = "…"
    warn: str = "⚠"
    full: str = "█"
    empty: str = "░"
    focus: str = "▸"
    ok: str = "✓"
    bad: str = "✗"
    arrow: str = "→"
    left_right: str = "←/→"
    up_down: str = "↑/↓"
    dash: str = "–"  # no figure
    enter: str = "⏎"
    bullet: str = "•"  # a masked secret
    times: str = "×"  # 500×3: a status code, how many
    #: fill of each deployment's segment when colour cannot tell them apart
    segments: tuple[str, ...] = ("█", "▓", "▒", "▚", "▞", "▙")
    braille: bool = True  # plots may use Braille dots
    box: bool = True  # plots' axes in box-drawing lines (else | - +)
    emoji: bool = True  # folder icons in a file picker
    mono: bool = False  # NO_COLOR: shapes, not greys, tell things apart


UNICODE = Glyphs()
LINUX_CONSOLE = Glyphs(
    ellipsis="~", warn="!", focus=">", ok="ok", bad="x", segments=("█", "▓", "▒", "░", "#", "="),
    braille=False, emoji=False,
)  # fmt: skip
ASCII = Glyphs(
    ellipsis="~", warn="!", full="#", empty=".", focus=">", ok="ok", bad="x", arrow="->",
    left_right="left/right", up_down="up/down", dash="-", enter="enter", bullet="*", times="x",
    segments=("#", "=", "+", "%", "@", "&"), braille=False, box=False, emoji=False,
)  # fmt: skip

_current = UNICODE


def _c_locale(env: Mapping[str, str]) -> bool:
    """The locale the terminal was started with has no UTF-8 (none set: assume UTF-8)."""
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = env.get(var)
        if value:
            if var == "LC_CTYPE" and value == "C.UTF-8" and _coerced(env):
                continue  # PEP 538 wrote it: the terminal's locale is LANG's
            charset = value.partition(".")[2].partition("@")[0].lower().replace("-", "")
            return charset != "utf8"
    return False


def _coerced(env: Mapping[str, str]) -> bool:
    """Python switched to UTF-8 mode because it started in the C locale (PEP 540)."""
    asked = env.get("PYTHONUTF8") == "1" or "utf8" in getattr(sys, "_xoptions", {})
    return bool(sys.flags.utf8_mode) and not asked


def choose(env: Mapping[str, str] | None = None, *, mono: bool = False) -> Glyphs:
    env = os.environ if env is None else env
    term = env.get("TERM", "")
    if env.get("MODELDECK_ASCII") == "1" or term in ("dumb", "vt100", "vt220") or _c_locale(env):
        base = ASCII
    elif term.startswith("linux"):
        base = LINUX_CONSOLE
    else:
        base = UNICODE
    return Glyphs(**{**base.__dict__, "mono": mono}) if mono else base


def configure(glyphs: Glyphs) -> None:
    """Set by the app at start: every formatter draws with these from then on."""
    global _current
    _current = glyphs


def current() -> Glyphs:
    return _current
