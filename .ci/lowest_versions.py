#!/usr/bin/env python3
"""Print pip constraints that pin runtime dependencies to their floors in pyproject.toml.

``pkg>=X`` becomes ``pkg==X``. Two groups, installed one after the other by .ci/run
in a second venv, each followed by ``pytest tests/unit``:

- ``core`` (the default): ``[project] dependencies``, what ``pip install modeldeck`` gets;
- ``extras``: the ``kubernetes`` and ``azureml`` extras. Their floors may need more of a
  core dependency than the core floor (kubernetes 37 needs PyYAML>=6.0.3);
  pip raises those, so the core floors are proved on their own first.

Test tools (the ``test`` extra) are left free: the point is what modeldeck runs on.

Usage: python3 .ci/lowest_versions.py [core|extras] > constraints.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


EXTRAS = ("kubernetes", "azureml")


def floors(pyproject: Path, group: str = "core") -> dict[str, str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    if group == "core":
        reqs = list(project.get("dependencies", []))
    elif group == "extras":
        extras = project.get("optional-dependencies", {})
        reqs = [r for extra in EXTRAS for r in extras.get(extra, [])]
    else:
        raise SystemExit(f"unknown group {group!r}: core or extras")
    out: dict[str, str] = {}
    for req in reqs:
        m = _REQ.match(req.split(";")[0])
        if not m:
            raise SystemExit(f"cannot read the requirement {req!r}")
        name, spec = m.group(1).lower(), m.group(3)
        floor = re.search(r">=\s*([0-9][^,\s]*)", spec)
        if floor is None:
            raise SystemExit(f"{req!r} has no floor (>=): give it one")
        out[name] = floor.group(1)
    return out


def main() -> None:
    group = sys.argv[1] if len(sys.argv) > 1 else "core"
    path = Path(__file__).resolve().parent.parent / "pyproject.toml"
    for name, version in sorted(floors(path, group).items()):
        print(f"{name}=={version}")


if __name__ == "__main__":
    main()
