"""Where the stylesheets are: package data under ``modeldeck.styles`` (shipped in the wheel)."""

from __future__ import annotations

from pathlib import Path

#: ``modeldeck/styles`` beside ``modeldeck/tui``: Textual reads a stylesheet from a file,
#: so the package is files on disk (importlib.resources, and zipfile with it, were ~2 ms
#: of the dashboard's start for the same path)
STYLES = Path(__file__).resolve().parent.parent / "styles"


def css_path(name: str) -> str:
    """The path of ``styles/NAME`` inside the installed package."""
    return str(STYLES / name)
