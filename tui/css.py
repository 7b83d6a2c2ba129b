"""Where the stylesheets are: package data under ``modeldeck.styles`` (shipped in the wheel)."""

from __future__ import annotations

from importlib.resources import files


def css_path(name: str) -> str:
    """The path of ``styles/NAME`` inside the installed package."""
    return str(files("modeldeck.styles") / name)
