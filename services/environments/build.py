"""Building a resolved environment once per key, with uv; listing and pruning them.

Layout under ``root``::

    root/<key>/                 a complete environment (a relocatable venv)
    root/<key>/modeldeck-env.json   written last, before the rename: key, python, packages,
                                size; its mtime is the last time build() handed it out
    root/.locks/<key>.lock      flock'd while a key is built or pruned (never deleted: a lock
                                file removed while someone waits on it locks nothing)
    root/.tmp-<key>-*           a build in progress (removed when it fails, renamed when done)
    root/.trash-*               an environment being pruned

A directory ``root/<key>`` exists only complete: it appears by one ``rename`` of a finished
build and disappears by one ``rename`` to ``.trash-*`` before it is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import stat
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..api.errors import BackendError, InvalidInput
from .interpreters import uv_binary
from .resolve import ResolvedEnvironment

MARKER = "modeldeck-env.json"
REQUIREMENTS = "modeldeck-requirements.txt"
#: the longest a build may take before it is stopped (uv downloads and builds included)
BUILD_TIMEOUT_S = 1800.0
#: how often a waiting build looks at the lock again
LOCK_POLL_S = 0.1
#: uv's lines kept for the error message of a failed build
TAIL_LINES = 40

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_KEY = re.compile(r"^[0-9a-f]{8,64}$")


@dataclass(frozen=True)
class BuiltEnvironment:
    key: str
    path: Path
    python: Path
    size_bytes: int
    #: False: this call built it; True: it was there (or another call built it meanwhile)
    reused: bool = False


@dataclass(frozen=True)
class BuiltInfo:
    key: str
    path: Path
    size_bytes: int
    #: epoch seconds of the last build() that handed it out
    last_used: float
    python: str
    requirements: tuple[str, ...]


def _check_key(key: str) -> None:
    if not _KEY.match(key):
        raise InvalidInput("key", key, "is not an environment key (hex)", "use resolve()'s key")


def tree_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (a hard link counted once, no symlinks)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen or not stat.S_ISREG(st.st_mode):
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


@contextlib.asynccontextmanager
async def _key_lock(root: Path, key: str) -> AsyncIterator[None]:
    locks = root / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    fd = os.open(locks / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                await asyncio.sleep(LOCK_POLL_S)
        yield
    finally:
        os.close(fd)  # releases the lock


def _try_lock(root: Path, key: str) -> int | None:
    locks = root / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    fd = os.open(locks / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _existing(root: Path, key: str) -> BuiltEnvironment | None:
    path = root / key
    marker = path / MARKER
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    with contextlib.suppress(OSError):
        os.utime(marker)  # last used: now
    return BuiltEnvironment(
        key, path, path / "bin" / "python", int(info.get("size_bytes", 0)), reused=True
    )


def _uv_env(resolved: ResolvedEnvironment) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHOME")
    }
    env = {**base, **resolved.pip_config.uv_env(base)}
    env.update(NO_COLOR="1", UV_NO_PROGRESS="1", UV_PYTHON_DOWNLOADS="never")
    return env


def _uv_message(lines: deque[str]) -> str:
    """uv's own error: from its first ``error:``/``×`` line on, else its last lines."""
    kept = list(lines)
    for i, line in enumerate(kept):
        if line.lstrip().startswith(("error:", "×", "x ", "Because", "╰─▶")):
            return "\n".join(kept[i:]).strip()
    return "\n".join(kept[-15:]).strip()


async def _run(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log: Callable[[str], None],
    timeout: float,
) -> tuple[int, deque[str]]:
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=str(cwd),
        start_new_session=True,
    )
    assert proc.stdout is not None

    async def pump() -> None:
        assert proc.stdout is not None
        while True:
            raw = await proc.stdout.readline()
            if not raw:
                break
            line = _ANSI.sub("", raw.decode("utf-8", "replace")).rstrip()
            if line:
                tail.append(line)
                log(line)
        await proc.wait()

    try:
        await asyncio.wait_for(pump(), timeout)
    except BaseException:  # timeout or cancelled: uv does not outlive the build
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 10)
        raise
    assert proc.returncode is not None
    return proc.returncode, tail


async def build(
    resolved: ResolvedEnvironment,
    *,
    root: Path,
    log: Callable[[str], None],
    offline: bool | None = None,
    timeout: float = BUILD_TIMEOUT_S,
) -> BuiltEnvironment:
    """The environment for ``resolved``, built into ``root/<key>`` once.

    A second call with the same key (here or in another process) waits for the first and
    reuses its result. A failed build leaves nothing in ``root`` but the lock file and
    raises BackendError with uv's own message. ``offline`` overrides the pip configuration's
    (``MODELDECK_OFFLINE``)."""
    key = resolved.key
    _check_key(key)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    found = _existing(root, key)
    if found is not None:
        return found
    async with _key_lock(root, key):
        found = _existing(root, key)
        if found is not None:
            log(f"environment {key}: built meanwhile by another operation; reusing it")
            return found
        # leftovers of a build that was killed (we hold the key: nobody else builds it)
        for stale in root.glob(f".tmp-{key}-*"):
            await asyncio.to_thread(shutil.rmtree, stale, True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root))
        try:
            size = await _build_into(resolved, tmp, log=log, offline=offline, timeout=timeout)
            os.rename(tmp, root / key)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, tmp, True))
            raise
        log(f"environment {key}: ready ({size / 1e6:.1f} MB)")
        return BuiltEnvironment(key, root / key, root / key / "bin" / "python", size)


async def _build_into(
    resolved: ResolvedEnvironment,
    tmp: Path,
    *,
    log: Callable[[str], None],
    offline: bool | None,
    timeout: float,
) -> int:
    uv = uv_binary()
    if uv is None:
        raise BackendError(
            "cannot build environments: uv is not installed",
            fix="pip install uv (it is a modeldeck dependency: reinstall modeldeck)",
        )
    cfg = resolved.pip_config
    if offline is not None and offline != cfg.offline:
        cfg = replace(cfg, offline=offline)
        resolved = replace(resolved, pip_config=cfg)
    env = _uv_env(resolved)
    deadline = time.monotonic() + timeout
    log(
        f"environment {resolved.key}: Python {resolved.interpreter.version} "
        f"({resolved.python}), {len(resolved.requirements)} requirement(s)"
        + (f" and {len(resolved.options)} pip option line(s)" if resolved.options else "")
        + f" from {resolved.source}"
    )
    for warning in (*resolved.warnings, *cfg.warnings):
        log(f"warning: {warning}")
    for line in cfg.describe():
        log(f"pip config: {line}")
    venv = [uv, "venv", str(tmp), "--python", str(resolved.python), "--relocatable", "--quiet"]
    venv.append("--allow-existing")
    rc, tail = await _run(venv, env=env, cwd=tmp.parent, log=log, timeout=timeout)
    if rc != 0:
        raise BackendError(
            f"environment build failed: uv venv exited {rc}:\n{_uv_message(tail)}",
            fix=f"check that {resolved.python} runs",
            key=resolved.key,
        )
    lines = [*resolved.options, *resolved.requirements]
    (tmp / REQUIREMENTS).write_text("".join(f"{line}\n" for line in lines))
    if lines:
        install = [
            uv,
            "pip",
            "install",
            "--python",
            str(tmp / "bin" / "python"),
            "-r",
            str(tmp / REQUIREMENTS),
            *cfg.uv_args(),
        ]
        rc, tail = await _run(
            install, env=env, cwd=tmp, log=log, timeout=max(1.0, deadline - time.monotonic())
        )
        if rc != 0:
            raise BackendError(
                f"environment build failed ({resolved.source}): uv pip install exited {rc}:\n"
                f"{_uv_message(tail)}",
                fix="correct the package list in the conda file (names and versions as "
                "PyPI has them); with no network, build once online or set an index mirror "
                "in pip's configuration",
                key=resolved.key,
            )
    size = await asyncio.to_thread(tree_size, tmp)
    info = {
        "key": resolved.key,
        "python": resolved.interpreter.version,
        "interpreter": str(resolved.python),
        "requirements": list(resolved.requirements),
        "options": list(resolved.options),
        "source": resolved.source,
        "built_at": time.time(),
        "size_bytes": size,
    }
    (tmp / MARKER).write_text(json.dumps(info, indent=2) + "\n")
    return size


def list_built(root: Path) -> list[BuiltInfo]:
    """The environments built under ``root`` (complete ones only), oldest use first."""
    out: list[BuiltInfo] = []
    root = Path(root)
    if not root.is_dir():
        return out
    for path in root.iterdir():
        if path.name.startswith(".") or not _KEY.match(path.name):
            continue
        marker = path / MARKER
        try:
            info = json.loads(marker.read_text())
            mtime = marker.stat().st_mtime
        except (OSError, ValueError):
            continue
        out.append(
            BuiltInfo(
                key=path.name,
                path=path,
                size_bytes=int(info.get("size_bytes", 0)),
                last_used=mtime,
                python=str(info.get("python", "")),
                requirements=tuple(info.get("requirements", ())),
            )
        )
    out.sort(key=lambda b: b.last_used)
    return out


def prune(
    root: Path, keep: set[str], older_than_s: float, *, now: float | None = None
) -> list[BuiltInfo]:
    """Remove the environments not in ``keep`` and unused for ``older_than_s``; the removed.

    An environment being built or handed out at that moment (its key locked) is left."""
    root = Path(root)
    now = time.time() if now is None else now
    removed: list[BuiltInfo] = []
    for info in list_built(root):
        if info.key in keep or now - info.last_used < older_than_s:
            continue
        fd = _try_lock(root, info.key)
        if fd is None:
            continue
        try:
            try:  # handed out since list_built() looked: in use again
                if now - (info.path / MARKER).stat().st_mtime < older_than_s:
                    continue
            except OSError:
                continue
            trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=root))
            os.rename(info.path, trash / info.key)
            shutil.rmtree(trash, ignore_errors=True)
            removed.append(info)
        finally:
            os.close(fd)
    for leftover in root.glob(".trash-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return removed
