"""From a conda environment file to pip requirements.

Rules (each documented here and in docs/environments.md):

- ``python=3.X`` (or ``python==3.X.Y``, ``python 3.X``) is not a package: it is the
  interpreter version wanted (:mod:`.interpreters` finds one).
- ``pip`` is dropped: the environment is built by uv and needs no pip of its own.
- a conda package with a pip namesake becomes a pip requirement. Conda's version syntax maps
  as: ``name=1.0.2`` -> ``name==1.0.2`` (three or more parts: an exact release);
  ``name=1.2`` or ``name=1.2.*`` -> ``name==1.2.*`` (conda's ``=`` is a prefix match);
  ``name==V`` -> ``name==V``; ``>=``, ``<=``, ``>``, ``<``, ``!=``, ``~=`` and comma-joined
  ranges as they are; a build string (``numpy=1.26.4=py311h...``) is dropped with a warning;
  a channel prefix (``conda-forge::numpy``) is dropped. Names conda spells differently from
  PyPI go through :data:`CONDA_TO_PIP` (``pytorch`` -> ``torch``).
- a conda-only package (:data:`CONDA_ONLY`: system libraries such as ``openssl``,
  ``cudatoolkit``, ``mkl``) is dropped with a warning naming it: the wheels pip installs
  carry their own copies. :data:`CONDA_ONLY_NEEDED` (R, for example) cannot be met by a
  Python environment: an InvalidInput.
- a conda package pinned to a release built against NumPy 1.x (:data:`NUMPY2_SINCE`:
  ``scikit-learn=1.2.2``) with no version of numpy asked for brings ``numpy<2``, as
  conda-forge's repodata does (its builds of those releases carry ``numpy <2.0a0``); pip
  would otherwise take NumPy 2, whose ABI such a wheel cannot load ("numpy.dtype size
  changed"). A warning says so.
- the ``pip:`` list is kept as it is, option lines included (``--extra-index-url``,
  ``--index-url``, ``--find-links``, ``--pre``, ``-r file``, ``-c file``); the paths of
  ``-r``/``-c`` lines are taken relative to the conda file's directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..api.errors import InvalidInput

#: conda names whose PyPI name differs (conda-forge spelling -> PyPI project)
CONDA_TO_PIP: dict[str, str] = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost",
    "py-lightgbm": "lightgbm",
    "py-opencv": "opencv-python",
    "matplotlib-base": "matplotlib",
    "tensorflow-base": "tensorflow",
    "msgpack-python": "msgpack",
    "python-graphviz": "graphviz",
    "pyqt": "PyQt5",
    "pytables": "tables",
    "libprotobuf": "protobuf",
}

#: conda-only packages: system libraries and conda's own plumbing. No pip namesake; the wheels
#: pip installs bring what they need (numpy and scipy wheels carry OpenBLAS, torch wheels
#: CUDA). Dropped with a warning.
CONDA_ONLY: frozenset[str] = frozenset(
    {
        "_libgcc_mutex",
        "_openmp_mutex",
        "blas",
        "bzip2",
        "ca-certificates",
        "cpuonly",
        "cudatoolkit",
        "cuda-toolkit",
        "cudnn",
        "icu",
        "intel-openmp",
        "ld_impl_linux-64",
        "libblas",
        "libcblas",
        "libffi",
        "libgcc",
        "libgcc-ng",
        "libgfortran",
        "libgfortran-ng",
        "libgomp",
        "liblapack",
        "libopenblas",
        "libstdcxx-ng",
        "libuuid",
        "libxgboost",
        "mkl",
        "mkl-include",
        "nccl",
        "ncurses",
        "openblas",
        "openssl",
        "pytorch-cuda",
        "readline",
        "sqlite",
        "tk",
        "tzdata",
        "xz",
        "zlib",
    }
)

#: conda packages a Python environment cannot stand in for: an InvalidInput names them.
CONDA_ONLY_NEEDED: dict[str, str] = {
    "r-base": "the R language",
    "r-essentials": "the R language",
    "nodejs": "Node.js",
    "openjdk": "a Java runtime",
}

#: pip options accepted in the ``pip:`` list (``flag: takes a value``)
PIP_OPTIONS: dict[str, bool] = {
    "-r": True,
    "--requirement": True,
    "-c": True,
    "--constraint": True,
    "-i": True,
    "--index-url": True,
    "--extra-index-url": True,
    "-f": True,
    "--find-links": True,
    "--no-index": False,
    "--pre": False,
}

#: The first release of each compiled package whose wheels load under NumPy 2 (each project's
#: release notes: scikit-learn 1.4.2, SciPy 1.13.0, pandas 2.2.2, Matplotlib 3.8.4,
#: h5py 3.11.0, PyArrow 16.0.0, statsmodels 0.14.2, opencv-python 4.10.0.84, numba 0.60.0,
#: PyTorch 2.3.0). An exact pin below it keeps numpy below 2.
NUMPY2_SINCE: dict[str, tuple[int, ...]] = {
    "scikit-learn": (1, 4, 2),
    "scipy": (1, 13, 0),
    "pandas": (2, 2, 2),
    "matplotlib": (3, 8, 4),
    "h5py": (3, 11, 0),
    "pyarrow": (16, 0, 0),
    "statsmodels": (0, 14, 2),
    "opencv-python": (4, 10, 0, 84),
    "numba": (0, 60, 0),
    "torch": (2, 3, 0),
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")
_OPS = ("==", ">=", "<=", "!=", "~=", ">", "<")
#: a pip requirement line: its name, its extras, the rest (the constraint, a marker)
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?(.*)$", re.S)


def canonical_name(name: str) -> str:
    """A distribution's name as pip compares them (PEP 503: runs of ``-_.`` are one ``-``,
    lower case)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class CondaResult:
    """What a conda file says, in pip's terms."""

    python: str | None = None
    requirements: list[str] = field(default_factory=list)
    #: option lines from the ``pip:`` list (``--extra-index-url URL``, ``-r /abs/path``)
    options: list[str] = field(default_factory=list)
    #: files named by ``-r``/``-c`` lines (their content is part of the key)
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _version_to_pip(name: str, spec: str, where: str) -> tuple[str, str | None]:
    """(pip version specifier, warning) for conda's version part ``spec`` (no name)."""
    spec = spec.strip()
    warning = None
    if not spec:
        return "", None
    if "|" in spec:
        raise InvalidInput(
            where,
            f"{name}{spec}",
            "uses '|' (either-or versions), which pip requirements cannot say",
            f"pin one range, e.g. '{name}>=1.2,<2', or move the package to the pip: list",
        )
    if spec.startswith(_OPS):
        return spec.replace(" ", ""), None
    # name=version[=build] or "name version [build]"
    if spec.startswith("="):
        spec = spec[1:]
    parts = re.split(r"[=\s]+", spec, maxsplit=1)
    version = parts[0]
    if len(parts) > 1 and parts[1]:
        warning = (
            f"{where}: build string '{parts[1]}' of {name} is conda's; dropped (pip has "
            "no build strings)"
        )
    if version.startswith(_OPS) or "," in version:
        return version, warning
    if version.endswith("*"):
        version = version.rstrip("*").rstrip(".")
        return f"=={version}.*", warning
    if version.count(".") >= 2:
        return f"=={version}", warning
    return f"=={version}.*", warning


def python_version_of(spec: str) -> str:
    """The ``X.Y`` a conda python spec asks for (``3.12``, ``3.12.1``, ``>=3.10``...)."""
    m = re.search(r"(\d+)\.(\d+)", spec)
    return f"{m.group(1)}.{m.group(2)}" if m else ""


def conda_dependency_to_pip(dep: str, where: str) -> tuple[str | None, str | None, str | None]:
    """One conda dependency string -> (pip requirement or None, python spec or None, warning).

    Raises InvalidInput for a dependency no Python environment can stand in for."""
    text = dep.strip()
    if "::" in text:  # channel::name
        text = text.split("::", 1)[1]
    if "[" in text:
        raise InvalidInput(
            where,
            dep,
            "uses conda's bracket syntax (name[version=...]), which modeldeck does not read",
            "write it as 'name=1.2.3' or 'name>=1.2', or move it to the pip: list",
        )
    m = _NAME.match(text)
    if not m:
        raise InvalidInput(
            where, dep, "is not a conda package spec", "write 'name', 'name=1.2.3' or 'name>=1.2'"
        )
    name = m.group(0)
    rest = text[m.end() :]
    lower = name.lower()
    if lower == "python":
        return None, rest.strip(" =") or "", None
    if lower == "pip":
        return None, None, None
    if lower in CONDA_ONLY:
        return (
            None,
            None,
            f"{where}: '{dep}' is a conda-only package (no pip namesake); not installed — "
            "the pip wheels carry their own copy. If the model needs it, use an image that "
            "has it (Kubernetes) or install it on this machine",
        )
    needed = CONDA_ONLY_NEEDED.get(lower) or ("the R language" if lower.startswith("r-") else "")
    if needed:
        raise InvalidInput(
            where,
            dep,
            f"is a conda-only package ({needed}); a Python environment built with pip "
            "cannot provide it",
            "run this model from an image that has it (the environment's 'image:' on "
            "Kubernetes), or drop it from the conda file if the scoring script does not need it",
        )
    pip_name = CONDA_TO_PIP.get(lower, name)
    version, warning = _version_to_pip(name, rest, where)
    return pip_name + version, None, warning


def _pip_line(line: str, where: str, base_dir: Path | None, out: CondaResult) -> None:
    text = line.strip()
    if not text or text.startswith("#"):
        return
    if not text.startswith("-"):
        out.requirements.append(text)
        return
    head, _, value = text.partition(" ")
    if head.startswith("--") and "=" in head:
        head, _, inline = head.partition("=")
        value = f"{inline} {value}"
    elif not head.startswith("--") and len(head) > 2:  # -rreqs.txt
        head, value = head[:2], f"{head[2:]} {value}"
    flag = head
    value = value.strip()
    if flag not in PIP_OPTIONS:
        raise InvalidInput(
            where,
            line,
            f"is a pip option modeldeck does not pass on ({flag})",
            "use only: " + ", ".join(PIP_OPTIONS),
        )
    if PIP_OPTIONS[flag] and not value:
        raise InvalidInput(where, line, f"{flag} needs a value", f"write '{flag} <value>'")
    if flag in ("-r", "--requirement", "-c", "--constraint"):
        path = Path(value)
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        path = path.resolve()
        if not path.is_file():
            raise InvalidInput(
                where,
                line,
                f"names {path}, which is not a readable file",
                "give a path relative to the conda file's directory",
            )
        out.files.append(path)
        out.options.append(f"{'-r' if flag in ('-r', '--requirement') else '-c'} {path}")
        return
    out.options.append(f"{flag} {value}".strip())


def conda_to_pip(conda: dict[str, Any], *, base_dir: Path | None, source: str) -> CondaResult:
    """The pip view of a parsed conda document (see the module docstring for the rules)."""
    out = CondaResult()
    for i, dep in enumerate(conda.get("dependencies") or []):
        where = f"conda_file.dependencies[{i}]"
        if isinstance(dep, dict):
            if set(dep) != {"pip"}:
                raise InvalidInput(
                    where,
                    dep,
                    f"is a mapping other than 'pip:' ({source})",
                    "only '- pip: [...]' may be a mapping in dependencies",
                )
            pips = dep["pip"] or []
            if not isinstance(pips, list):
                raise InvalidInput(
                    f"{where}.pip", pips, f"must be a list ({source})", "write '- pip:' + items"
                )
            for j, line in enumerate(pips):
                if not isinstance(line, str):
                    raise InvalidInput(
                        f"{where}.pip[{j}]",
                        line,
                        f"must be a requirement string ({source})",
                        "write '- name==1.2.3' (quote it if YAML reads it as a number)",
                    )
                _pip_line(line, f"{where}.pip[{j}]", base_dir, out)
            continue
        if isinstance(dep, bool) or not isinstance(dep, str | int | float):
            raise InvalidInput(
                where, dep, f"must be a package spec string ({source})", "write '- name=1.2.3'"
            )
        req, py, warning = conda_dependency_to_pip(str(dep), where)
        if py is not None:
            out.python = python_version_of(py) or None
        if req:
            out.requirements.append(req)
        if warning:
            out.warnings.append(warning)
    _keep_numpy_abi(out)
    for key in ("variables",):
        if conda.get(key):
            out.warnings.append(
                f"conda_file.{key} is conda's own; ignored (set environment_variables on "
                "the deployment instead)"
            )
    return out


def _keep_numpy_abi(out: CondaResult) -> None:
    """Add ``numpy<2`` when a conda dependency pins a release built against NumPy 1.x and
    numpy itself is left free (see :data:`NUMPY2_SINCE`)."""
    pinned: dict[str, str] = {}
    for req in out.requirements:
        match = REQUIREMENT.match(req)
        if match is not None:
            pinned[canonical_name(match.group(1))] = match.group(3).strip()
    if pinned.get("numpy"):  # the user asked for a numpy version: theirs to keep
        return
    for package, since in NUMPY2_SINCE.items():
        spec = pinned.get(package, "")
        if not spec.startswith("=="):
            continue
        version = tuple(int(p) for p in re.findall(r"\d+", spec.removeprefix("==").split("*")[0]))
        if version and version < since:
            out.requirements.append("numpy<2")
            out.warnings.append(
                f"{package}{spec} was built against NumPy 1.x: numpy<2 added, as conda-forge "
                f"pins it for that release (ask for a numpy version to choose another)"
            )
            return
