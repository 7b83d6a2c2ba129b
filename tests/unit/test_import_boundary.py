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


# ------------------------------------------------------------------ the layers' import rule
# docs/architecture.md draws these layers; this is its rule, checked on every module of the
# package (cli/, tui/ and services/), lazy imports inside functions included.

PACKAGE = SERVICES.parent

#: a module's layer, by the first path prefix that matches
LAYERS: tuple[tuple[str, str], ...] = (
    ("services/scoring/", "scoring"),
    ("services/api/", "api"),
    ("services/specs/", "specs"),
    ("services/environments/", "environments"),
    ("services/drivers/", "drivers"),
    ("services/local/dataplane/", "dataplane"),
    ("services/local/connguard.py", "dataplane"),
    ("services/local/controlplane/", "controlplane"),
    ("services/local/", "client"),
    ("services/azureml/", "azureml"),
    ("services/rollout/", "rollout"),
    ("services/backends.py", "backends"),
    ("services/apply.py", "usecases"),
    ("services/usecases/", "usecases"),
    ("services/", "support"),  # one module a shared concept: paths, inputs, tokens, retry...
    ("cli/", "cli"),
    ("tui/", "tui"),
    ("", "root"),  # modeldeck/__init__.py, __main__.py
)

_BASE = {"api", "support"}
#: what each layer may import besides itself (and the standard library / third parties)
ALLOWED: dict[str, set[str]] = {
    "scoring": set(),  # shipped alone to pods, run by any Python: standard library only
    "api": {"support", "environments", "root"},
    "support": {"api", "root"},
    "specs": _BASE | {"environments", "scoring"},
    "environments": _BASE | {"specs"},
    "drivers": _BASE | {"specs", "environments", "scoring", "dataplane", "root"},
    "dataplane": _BASE | {"scoring", "drivers", "root"},
    # the rollout state machine and its analysis, driven by a host (the daemon)
    "rollout": _BASE,
    "controlplane": _BASE
    | {"specs", "environments", "scoring", "drivers", "dataplane", "rollout", "root"},
    "client": _BASE | {"controlplane"},  # it starts the control plane's process
    # its rollouts are driven by the daemon (controlplane/cloudrollouts.py): see EXCEPTIONS
    "azureml": _BASE | {"specs", "environments", "scoring", "root"},
    "backends": _BASE | {"client", "azureml"},
    "usecases": _BASE | {"specs"},
    "cli": _BASE | {"specs", "usecases", "backends", "tui", "environments", "root"},
    "tui": _BASE | {"specs", "usecases", "backends", "root"},
    "root": {"cli", "tui"},
}
#: the exceptions, each with its reason
EXCEPTIONS: dict[tuple[str, str], str] = {
    # drivers.base is the contract between the control plane and its drivers; the data
    # plane serves the routes it defines, and only that module of the drivers' layer
    ("dataplane", "modeldeck.services.drivers.base"): "the route types the gateway serves",
    # the CLI runs the control plane itself (modeldeck serve / daemon stop / status)
    ("cli", "modeldeck.services.local.controlplane.daemon"): "modeldeck serve and daemon *",
    # --dry-run -o yaml renders Kubernetes objects as YAML the same way the driver does
    ("cli", "modeldeck.services.drivers.kubernetes.manifests"): "--dry-run -o yaml",
    # cluster attach --print-role prints the Role of the driver's RBAC table
    ("cli", "modeldeck.services.drivers.kubernetes.rbac"): "cluster attach --print-role",
    # online-endpoint rollout/show print a rollout in the keys its webhook posts (one view)
    ("cli", "modeldeck.services.rollout.webhook"): "a rollout printed as its webhook posts it",
    # the daemon drives Azure ML rollouts (a process that outlives the command): the
    # workspace's rollout calls ask the daemon of its home, which opens the workspace itself
    ("azureml", "modeldeck.services.local.client"): "its rollouts are driven by the daemon",
    ("controlplane", "modeldeck.services.azureml.workspace"): "the daemon drives Azure ML rollouts",
}


def _layer(rel: str) -> str:
    return next(layer for prefix, layer in LAYERS if rel.startswith(prefix))


def _module_path(name: str) -> str | None:
    """``modeldeck.services.api.domain`` -> ``services/api/domain.py`` (or a package's __init__)."""
    parts = name.split(".")
    if parts[0] != "modeldeck":
        return None
    for n in range(len(parts), 0, -1):
        rel = "/".join(parts[1:n])
        for cand in (f"{rel}.py", f"{rel}/__init__.py" if rel else "__init__.py"):
            if (PACKAGE / cand).is_file():
                return cand
    return None


def _package_imports(path: Path) -> list[str]:
    """Every modeldeck module ``path`` imports, absolute, including ``from . import x``."""
    rel = path.relative_to(PACKAGE)
    pkg = ["modeldeck", *rel.with_suffix("").parts][:-1]  # a module's package, or __init__'s
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("modeldeck")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("modeldeck"):
                continue
            found.append(mod)
            found += [f"{mod}.{a.name}" for a in node.names]  # `from . import store`
    return found


def test_each_layer_imports_only_what_the_architecture_allows() -> None:
    sources = [
        p
        for d in ("services", "cli", "tui")
        for p in sorted((PACKAGE / d).rglob("*.py"))
        if "__pycache__" not in p.parts
    ]
    assert len(sources) > 50, "the package was not found"
    offenders = []
    for path in sources:
        rel = path.relative_to(PACKAGE).as_posix()
        layer = _layer(rel)
        for name in _package_imports(path):
            target = _module_path(name)
            if target is None:
                continue
            other = _layer(target)
            if other == layer or other in ALLOWED[layer] or (layer, name) in EXCEPTIONS:
                continue
            if any((layer, name.rsplit(".", k)[0]) in EXCEPTIONS for k in range(1, 3)):
                continue
            offenders.append(f"{rel} ({layer}) imports {name} ({other})")
    assert offenders == [], "\n".join(sorted(set(offenders)))


def test_the_rule_checks_something() -> None:
    """The classification sees the layers it names (a renamed folder would empty a rule)."""
    layers = {
        _layer(p.relative_to(PACKAGE).as_posix())
        for d in ("services", "cli", "tui")
        for p in (PACKAGE / d).rglob("*.py")
    }
    expected = set(ALLOWED) - {"root", "usecases"}
    assert expected <= layers, expected - layers
