"""Every package of the tree is in the wheel: pyproject lists them by hand (the layout maps
the repository root onto ``modeldeck``), and a folder left out only shows when the installed
daemon fails to import it (issue 14's services/rollout was)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOT_SHIPPED = {"tests", "bench", "docs", "examples", "build", "dist"}


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {"modeldeck"}
    for init in REPO.rglob("__init__.py"):
        rel = init.parent.relative_to(REPO)
        if not rel.parts or rel.parts[0] in NOT_SHIPPED or rel.parts[0].startswith("."):
            continue
        found.add(".".join(("modeldeck", *rel.parts)))
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
