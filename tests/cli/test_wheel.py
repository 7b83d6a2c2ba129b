"""The built wheel works outside the source tree: styles inside it, the console script's
entry point, and the CLI plus the daemon it starts running from the wheel's own files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PARTS = ("pyproject.toml", "README.md", "__init__.py", "__main__.py")
PACKAGES = ("cli", "services", "styles", "tui")

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel --no-deps`` of a copy of the tree (the build writes into its source)."""
    src = tmp_path_factory.mktemp("src")
    for name in PARTS:
        shutil.copy2(REPO / name, src / name)
    for name in PACKAGES:
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [built] = dist.glob("modeldeck-*.whl")
    return built


def test_the_wheel_holds_the_package_and_its_styles(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for tcss in (REPO / "styles").glob("*.tcss"):
        assert f"modeldeck/styles/{tcss.name}" in names
    for module in (
        "cli/main.py",
        "services/local/controlplane/daemon.py",
        "services/scoring/host.py",
    ):
        assert f"modeldeck/{module}" in names
    assert not any(n.startswith(("modeldeck/tests/", "tests/", "modeldeck/bench/")) for n in names)
    [entry] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry).decode()
    assert "modeldeck = modeldeck.cli.main:main" in text


def test_the_wheel_runs_outside_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copytree(REPO / "examples" / "model", elsewhere / "model")
    home = tmp_path / "h"
    # the wheel's files come first on the path; the daemon the CLI starts inherits it
    env = {**os.environ, "PYTHONPATH": str(site), "MODELDECK_HOME": str(home)}
    for key in ("MODELDECK_GATEWAY_PORT", "MODELDECK_GATEWAY_HOST", "MODELDECK_WORKSPACE"):
        env.pop(key, None)

    def run(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, *args],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    where = run(
        "-c",
        "import modeldeck.cli.main as m, importlib.resources as r; print(m.__file__);"
        "print(sorted(p.name for p in r.files('modeldeck.styles').iterdir()))",
    )
    assert where.splitlines()[0].startswith(str(site))
    assert "app.tcss" in where.splitlines()[1]
    assert "az ml" in run("-m", "modeldeck.cli.main", "--help")
    try:
        run("-m", "modeldeck.cli.main", "cluster", "create", "--name", "myaks", "-o", "none")
        model = json.loads(
            run(
                "-m",
                "modeldeck.cli.main",
                "model",
                "create",
                "-n",
                "sklearn-demo",
                "--path",
                "./model",
            )
        )
        assert model["version"] == "1" and Path(model["path"]).is_relative_to(home)
        status = json.loads(run("-m", "modeldeck.cli.main", "daemon", "status"))
        assert status["running"] is True
        # the daemon it started runs the wheel's code, not the source tree's
        environ = Path(f"/proc/{status['pid']}/environ").read_bytes().split(b"\0")
        assert f"PYTHONPATH={site}".encode() in environ
    finally:
        subprocess.run(
            [sys.executable, "-m", "modeldeck.cli.main", "daemon", "stop"],
            env=env,
            capture_output=True,
            timeout=60,
        )
