"""Real environment builds with real uv (packages from PyPI through this machine's pip config).

Small packages where the point is the mechanism: six 1.16.0 against six 1.15.0. Bounded: each
build is a handful of files; every test builds at most two environments."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from modeldeck.services.api.errors import BackendError
from modeldeck.services.environments import (
    BuiltEnvironment,
    EnvironmentSpec,
    ResolvedEnvironment,
    build,
    environment_from_dict,
    list_built,
    prune,
    resolve,
)
from modeldeck.services.environments.interpreters import uv_binary

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(uv_binary() is None, reason="uv is a modeldeck dependency: install it"),
]


def _spec(*pip: str, python: str = "3.11") -> EnvironmentSpec:
    return environment_from_dict(
        {
            "name": "t",
            "conda_file": {"dependencies": [f"python={python}", "pip", {"pip": list(pip)}]},
        },
        base_dir=Path("."),
        source="test.yml",
    )


def _resolve(*pip: str) -> ResolvedEnvironment:
    return resolve(_spec(*pip))


def _run(built: BuiltEnvironment, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(built.python), "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def _entries(root: Path) -> list[str]:
    """What a user sees in the environments directory (the lock directory aside)."""
    return sorted(p.name for p in root.iterdir() if p.name != ".locks")


async def test_two_pins_build_two_environments_each_importing_its_own(tmp_path: Path) -> None:
    root = tmp_path / "envs"
    new, old = _resolve("six==1.16.0"), _resolve("six==1.15.0")
    assert new.key != old.key
    logs: list[str] = []
    built_new = await build(new, root=root, log=logs.append)
    built_old = await build(old, root=root, log=logs.append)
    assert built_new.path == root / new.key and built_old.path == root / old.key
    assert _run(built_new, "import six; print(six.__version__)").stdout.strip() == "1.16.0"
    assert _run(built_old, "import six; print(six.__version__)").stdout.strip() == "1.15.0"
    # uv's own lines reached the log
    assert any("six==1.16.0" in line for line in logs)
    assert any("six==1.15.0" in line for line in logs)
    assert _entries(root) == sorted([new.key, old.key])
    assert {b.key for b in list_built(root)} == {new.key, old.key}
    assert all(b.size_bytes > 0 for b in list_built(root))


async def test_the_environment_holds_only_what_was_asked(tmp_path: Path) -> None:
    built = await build(_resolve("six==1.16.0"), root=tmp_path, log=lambda _: None)
    # modeldeck's own dependencies (pyyaml, httpx) and modeldeck itself are not there, nor pip
    for module in ("yaml", "httpx", "modeldeck", "pip"):
        proc = _run(built, f"import {module}")
        assert proc.returncode == 1 and "ModuleNotFoundError" in proc.stderr, module
    proc = _run(built, "import sys; print(sys.prefix)")
    assert proc.stdout.strip() == str(built.path)  # works from where it was renamed to


async def test_same_spec_twice_builds_once(tmp_path: Path) -> None:
    logs: list[str] = []
    first = await build(_resolve("six==1.16.0"), root=tmp_path, log=logs.append)
    second = await build(_resolve("six==1.16.0"), root=tmp_path, log=logs.append)
    assert first.reused is False and second.reused is True
    assert second.path == first.path and second.size_bytes == first.size_bytes
    assert sum("Installed 1 package" in line for line in logs) == 1
    assert _entries(tmp_path) == [first.key]


async def test_two_concurrent_builds_of_one_key_build_once(tmp_path: Path) -> None:
    resolved = _resolve("six==1.15.0")
    logs_a: list[str] = []
    logs_b: list[str] = []
    a, b = await asyncio.gather(
        build(resolved, root=tmp_path, log=logs_a.append),
        build(resolved, root=tmp_path, log=logs_b.append),
    )
    assert sorted([a.reused, b.reused]) == [False, True]
    assert a.path == b.path
    assert sum("Installed 1 package" in line for line in logs_a + logs_b) == 1
    assert _entries(tmp_path) == [resolved.key]
    assert _run(a, "import six; print(six.__version__)").stdout.strip() == "1.15.0"


async def test_a_package_that_does_not_exist_fails_with_uvs_message(tmp_path: Path) -> None:
    root = tmp_path / "envs"
    resolved = _resolve("six==1.16.0", "modeldeck-surely-not-a-package-zq==1.0")
    logs: list[str] = []
    with pytest.raises(BackendError) as err:
        await build(resolved, root=root, log=logs.append)
    message = str(err.value)
    assert "uv pip install exited" in message
    # uv's own words, naming the package
    assert "modeldeck-surely-not-a-package-zq" in err.value.message
    assert "not found" in err.value.message or "No solution found" in err.value.message
    assert err.value.fix
    # nothing half-built: no environment directory, no temporary one
    assert _entries(root) == []
    assert list_built(root) == []
    # the same output reached the log as it came
    assert any("modeldeck-surely-not-a-package-zq" in line for line in logs)


async def test_offline_build_uses_the_cache_and_fails_clearly_without_it(tmp_path: Path) -> None:
    resolved = _resolve("six==1.16.0")
    await build(resolved, root=tmp_path / "warm", log=lambda _: None)  # six is in uv's cache
    built = await build(resolved, root=tmp_path / "offline", log=lambda _: None, offline=True)
    assert _run(built, "import six; print(six.__version__)").stdout.strip() == "1.16.0"
    missing = _resolve("modeldeck-surely-not-a-package-zq==1.0")
    with pytest.raises(BackendError) as err:
        await build(missing, root=tmp_path / "offline", log=lambda _: None, offline=True)
    assert "modeldeck-surely-not-a-package-zq" in err.value.message
    assert _entries(tmp_path / "offline") == [resolved.key]


async def test_prune_removes_only_unused(tmp_path: Path) -> None:
    used = await build(_resolve("six==1.16.0"), root=tmp_path, log=lambda _: None)
    unused = await build(_resolve("six==1.15.0"), root=tmp_path, log=lambda _: None)
    now = time.time()
    # within the grace time nothing goes, even what nobody keeps
    assert prune(tmp_path, keep={used.key}, older_than_s=3600, now=now) == []
    removed = prune(tmp_path, keep={used.key}, older_than_s=3600, now=now + 7200)
    assert [r.key for r in removed] == [unused.key]
    assert removed[0].size_bytes == unused.size_bytes
    assert _entries(tmp_path) == [used.key]
    assert _run(used, "import six; print(six.__version__)").stdout.strip() == "1.16.0"
    # a pruned environment builds again on demand
    again = await build(_resolve("six==1.15.0"), root=tmp_path, log=lambda _: None)
    assert again.reused is False and again.key == unused.key


async def test_a_cancelled_build_leaves_nothing_and_the_next_one_builds(tmp_path: Path) -> None:
    resolved = _resolve("six==1.16.0")
    task: asyncio.Task[BuiltEnvironment] | None = None

    def log(line: str) -> None:
        # cancel as soon as uv's own output starts: uv is running, the build half-done
        if line.startswith("Using Python") and task is not None:
            task.cancel()

    task = asyncio.create_task(build(resolved, root=tmp_path, log=log))
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _entries(tmp_path) == []
    built = await build(resolved, root=tmp_path, log=lambda _: None)
    assert built.reused is False
    assert _run(built, "import six; print(six.__version__)").stdout.strip() == "1.16.0"


async def test_two_processes_building_one_key_build_once(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, json
        from pathlib import Path
        from modeldeck.services.environments import build, environment_from_dict, resolve
        spec = environment_from_dict(
            {{"name": "t", "conda_file": {{"dependencies": ["python=3.11", "pip",
                {{"pip": ["six==1.15.0"]}}]}}}},
            base_dir=Path("."), source="test.yml")
        lines = []
        built = asyncio.run(build(resolve(spec), root=Path({str(tmp_path)!r}), log=lines.append))
        print(json.dumps({{"reused": built.reused, "key": built.key,
                          "installed": sum("Installed 1 package" in l for l in lines)}}))
        """
    )
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(2)
    ]
    outs = [await asyncio.wait_for(p.communicate(), 180) for p in procs]
    results = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sorted(r["reused"] for r in results) == [False, True]
    assert sum(r["installed"] for r in results) == 1
    assert _entries(tmp_path) == [results[0]["key"]]
