"""Finding a Python interpreter of the version an environment asks for.

Searched in order, each candidate run once to learn what it really is (a pyenv shim on
PATH may exist for a version that is not enabled and fail when run):

1. ``python3.X`` on PATH;
2. pyenv's installed versions: ``$PYENV_ROOT/versions/3.X*/bin/python3.X`` (default
   ``~/.pyenv``), whether or not they are enabled;
3. ``uv python find 3.X --no-python-downloads --system`` (interpreters uv manages or sees).

The path kept is the interpreter itself (a venv's base, a shim's target), so an environment
built from it keeps working when shims or venvs change. Nothing is downloaded. When no
interpreter of the version is found, :func:`find_python` returns the closest one found (same
major, nearest minor, the higher on a tie) or the one modeldeck runs on, and a warning naming
both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_PROBE = (
    "import json, os, sys, platform;"
    "print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3],"
    "'implementation': platform.python_implementation(),"
    "'executable': os.path.realpath(getattr(sys, '_base_executable', None) or sys.executable)}))"
)

_probed: dict[str, Interpreter | None] = {}


@dataclass(frozen=True)
class Interpreter:
    path: Path
    version: str  # "3.11.7"
    implementation: str = "CPython"

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


def probe(path: str | Path) -> Interpreter | None:
    """What ``path`` is when run (``None``: it does not run as a Python)."""
    key = str(path)
    if key in _probed:
        return _probed[key]
    found: Interpreter | None = None
    try:
        proc = subprocess.run(
            [key, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=20, check=False
        )
        if proc.returncode == 0:
            info = json.loads(proc.stdout.strip().splitlines()[-1])
            found = Interpreter(Path(info["executable"]), info["version"], info["implementation"])
    except (OSError, ValueError, KeyError, IndexError, subprocess.TimeoutExpired):
        found = None
    _probed[key] = found
    return found


def current() -> Interpreter:
    """The interpreter modeldeck runs on (its base, not modeldeck's venv)."""
    found = probe(sys.executable)
    if found is not None:
        return found
    v = sys.version_info
    return Interpreter(Path(sys.executable), f"{v.major}.{v.minor}.{v.micro}")


def _pyenv_root(pyenv_root: Path | None) -> Path:
    if pyenv_root is not None:
        return pyenv_root
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def _candidates(
    minor: str, *, path: str | None, pyenv_root: Path | None, use_uv: bool
) -> list[str]:
    out: list[str] = []
    on_path = shutil.which(f"python{minor}", path=path)
    if on_path:
        out.append(on_path)
    versions = _pyenv_root(pyenv_root) / "versions"
    if versions.is_dir():
        for d in sorted(versions.iterdir(), reverse=True):
            if d.name == minor or d.name.startswith(minor + "."):
                exe = d / "bin" / f"python{minor}"
                if exe.exists():
                    out.append(str(exe))
    if use_uv:
        uv = uv_binary()
        if uv:
            try:
                proc = subprocess.run(
                    [uv, "python", "find", minor, "--no-python-downloads", "--system"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                    env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
                )
                if proc.returncode == 0 and proc.stdout.strip():
                    out.append(proc.stdout.strip().splitlines()[-1])
            except (OSError, subprocess.TimeoutExpired):
                pass
    return out


def uv_binary() -> str | None:
    """uv's binary (the ``uv`` package's), or one on PATH; ``None`` if neither."""
    try:
        import uv  # type: ignore[import-not-found, import-untyped, unused-ignore]

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def _installed_minors(*, path: str | None, pyenv_root: Path | None) -> list[Interpreter]:
    """Interpreters found for 3.6..3.15 (for the closest-version fallback)."""
    found: list[Interpreter] = []
    for minor in range(6, 16):
        for cand in _candidates(f"3.{minor}", path=path, pyenv_root=pyenv_root, use_uv=False):
            interp = probe(cand)
            if interp is not None and interp.minor == f"3.{minor}":
                found.append(interp)
                break
    return found


def find_python(
    wanted: str | None,
    *,
    path: str | None = None,
    pyenv_root: Path | None = None,
    use_uv: bool = True,
) -> tuple[Interpreter, str | None]:
    """(interpreter, warning or None) for the ``X.Y`` version ``wanted``.

    ``path`` and ``pyenv_root`` replace ``$PATH`` and ``~/.pyenv`` (tests); ``wanted=None``
    takes the interpreter modeldeck runs on."""
    here = current()
    if not wanted:
        return here, None
    if not re.fullmatch(r"\d+\.\d+", wanted):
        wanted = ".".join(wanted.split(".")[:2])
    if here.minor == wanted:
        return here, None
    for cand in _candidates(wanted, path=path, pyenv_root=pyenv_root, use_uv=use_uv):
        interp = probe(cand)
        if interp is not None and interp.minor == wanted:
            return interp, None
    # none of that version: the closest found, else the current one
    w_major, w_minor = (int(x) for x in wanted.split("."))
    pool = [here, *_installed_minors(path=path, pyenv_root=pyenv_root)]
    same_major = [i for i in pool if int(i.minor.split(".")[0]) == w_major]
    chosen = here
    if same_major:
        chosen = min(
            same_major, key=lambda i: (abs(int(i.minor.split(".")[1]) - w_minor), -int(i.minor[2:]))
        )
    warning = (
        f"python={wanted}: no Python {wanted} interpreter found (PATH, pyenv, uv); "
        f"using Python {chosen.version} ({chosen.path}). Install Python {wanted} "
        f"(e.g. `uv python install {wanted}` or `pyenv install {wanted}`) to match the "
        "conda file, or change its python= line"
    )
    return chosen, warning
