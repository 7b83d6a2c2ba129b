"""Shared fixtures. Each area keeps its own conftest.py in its folder."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture
def examples() -> Path:
    return EXAMPLES


@pytest.fixture
def md_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh MODELDECK_HOME (short path: Unix socket paths are limited to 107 bytes)."""
    home = tmp_path_factory.mktemp("mdh")
    monkeypatch.setenv("MODELDECK_HOME", str(home))
    return home
