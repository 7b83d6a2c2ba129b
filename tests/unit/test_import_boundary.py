"""services/ never imports textual or tui: the service layer stays free of the UI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"
FORBIDDEN = ("textual", "rich", "modeldeck.tui", "tui")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                rel = path.relative_to(SERVICES.parent).with_suffix("").parts[: -node.level]
                base = ".".join(rel)
                found.append(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.append(node.module)
    return found


def test_no_service_module_imports_the_ui() -> None:
    offenders = []
    for path in sorted(SERVICES.rglob("*.py")):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                offenders.append(f"{path.relative_to(SERVICES.parent)} imports {name}")
    assert offenders == []


def test_importing_every_service_module_loads_no_ui() -> None:
    modules = [
        "modeldeck.services." + ".".join(p.relative_to(SERVICES).with_suffix("").parts)
        for p in sorted(SERVICES.rglob("*.py"))
        if p.name != "__init__.py"
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    try: importlib.import_module(m)\n"
        "    except ImportError as e:\n"
        "        if 'textual' in str(e) or 'tui' in str(e): raise\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'textual' or m.startswith('modeldeck.tui')]\n"
        "print(bad); raise SystemExit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
