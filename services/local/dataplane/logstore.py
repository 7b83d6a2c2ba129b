"""Deployment logs of the local pools: one file per deployment, bounded on disk.

Every line of every replica of a deployment (stdout, stderr, Python logging, and the
supervisor's own ``system`` lines) goes to ``ROOT/ENDPOINT/DEPLOYMENT/deployment.log``
as ``<ISO time> <replica> <stream> <text>``. The file rotates by size
(``deployment.log.1`` .. ``.N``), so a chatty scoring script cannot fill the disk.
Followers in the same process get new lines as they are written.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

from ...api.domain import LogLine

MAX_LINE = 16 * 1024
_FOLLOW_QUEUE = 2000
#: the "replica" of the environment build's lines (what runs before the scoring hosts: az
#: ml's storage-initializer, as the Kubernetes driver's init containers are)
ENVIRONMENT = "environment"
#: which lines a reader wants (az ml's --container), None for all of them
Keep = Callable[[LogLine], bool] | None


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(endpoint: str, deployment: str, raw: str) -> LogLine | None:
    parts = raw.split(" ", 3)
    if len(parts) < 3:
        return None
    try:
        ts = datetime.fromisoformat(parts[0]).timestamp()
    except ValueError:
        return None
    return LogLine(ts, endpoint, deployment, parts[1], parts[2], parts[3] if len(parts) > 3 else "")


def _tail(path: Path, lines: int, block: int = 64 * 1024) -> list[str]:
    """The last ``lines`` lines of a file, reading backwards from its end."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        pos = f.tell()
        data = b""
        while pos > 0 and data.count(b"\n") <= lines:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    text = data.decode("utf-8", "replace").splitlines()
    if pos > 0:
        text = text[1:]  # the first one may be cut
    return text[-lines:] if lines > 0 else []


class DeploymentLog:
    """The log of one deployment (all its replicas)."""

    def __init__(
        self, directory: Path, endpoint: str, deployment: str, *, max_bytes: int, backups: int
    ) -> None:
        self.directory = directory
        self.endpoint = endpoint
        self.deployment = deployment
        self.path = directory / "deployment.log"
        self.max_bytes = max_bytes
        self.backups = backups
        self._file = None  # type: ignore[var-annotated]
        self._size = 0
        self._followers: set[asyncio.Queue[LogLine | None]] = set()

    # ----------------------------------------------------------------- writing
    def _open(self):  # type: ignore[no-untyped-def]
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
            self._size = self._file.tell()
        return self._file

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        for i in range(self.backups - 1, 0, -1):
            src = self.path.with_name(f"deployment.log.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"deployment.log.{i + 1}"))
        if self.path.exists():
            if self.backups > 0:
                os.replace(self.path, self.path.with_name("deployment.log.1"))
            else:
                self.path.unlink()

    def write(self, replica: str, stream: str, text: str, ts: float | None = None) -> None:
        ts = time.time() if ts is None else ts
        text = text.rstrip("\r\n").replace("\n", " ").replace("\r", " ")
        if len(text) > MAX_LINE:
            text = text[:MAX_LINE] + " [line truncated]"
        line = f"{_stamp(ts)} {replica} {stream} {text}\n"
        f = self._open()
        if self._size + len(line) > self.max_bytes and self._size > 0:
            self._rotate()
            f = self._open()
        f.write(line)
        f.flush()
        self._size += len(line.encode("utf-8", "replace")) if not line.isascii() else len(line)
        if self._followers:
            item = LogLine(ts, self.endpoint, self.deployment, replica, stream, text)
            for q in self._followers:
                if q.full():  # a slow follower loses its oldest lines, never blocks the writer
                    with contextlib.suppress(asyncio.QueueEmpty):
                        q.get_nowait()
                q.put_nowait(item)

    # ----------------------------------------------------------------- reading
    def files(self) -> list[Path]:
        """Oldest first."""
        out = [self.path.with_name(f"deployment.log.{i}") for i in range(self.backups, 0, -1)]
        out.append(self.path)
        return [p for p in out if p.exists()]

    def read(self, lines: int, since: float | None = None, keep: Keep = None) -> list[LogLine]:
        """The last ``lines`` lines across all replicas, oldest first; ``since`` (epoch
        seconds): only lines written at or after it (the file is in time order, so the
        lines since a moment are a suffix of it: filtering the tail keeps the last ones);
        ``keep``: only the lines it keeps (then the whole bounded log is read)."""
        if lines <= 0:
            return []
        if self._file is not None:
            self._file.flush()
        wanted = lines if keep is None else 2**62
        collected: list[str] = []
        for path in reversed(self.files()):
            try:
                raw = _tail(path, wanted - len(collected))
            except OSError:
                continue
            collected[:0] = raw
            if len(collected) >= wanted:
                break
        out = []
        for raw_line in collected:
            parsed = _parse(self.endpoint, self.deployment, raw_line)
            if parsed is None or (since is not None and parsed.ts < since):
                continue
            if keep is None or keep(parsed):
                out.append(parsed)
        return out[-lines:]

    async def follow(
        self, lines: int = 0, since: float | None = None, keep: Keep = None
    ) -> AsyncIterator[LogLine]:
        """The last ``lines`` lines, then every new line as it is written (until cancelled);
        ``since`` (epoch seconds): none written before it; ``keep`` as :meth:`read`'s."""
        q: asyncio.Queue[LogLine | None] = asyncio.Queue(_FOLLOW_QUEUE)
        self._followers.add(q)  # subscribe and read with no await between: nothing is lost
        try:
            for line in self.read(lines, since, keep):
                yield line
            while True:
                item = await q.get()
                if item is None:
                    return
                if (since is None or item.ts >= since) and (keep is None or keep(item)):
                    yield item
        finally:
            self._followers.discard(q)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        for q in self._followers:
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(None)


class LogStore:
    """All deployment logs under one root directory."""

    def __init__(self, root: Path, *, max_bytes: int = 2 * 1024 * 1024, backups: int = 3) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.backups = backups
        self._logs: dict[tuple[str, str], DeploymentLog] = {}

    def log(self, endpoint: str, deployment: str) -> DeploymentLog:
        key = (endpoint, deployment)
        log = self._logs.get(key)
        if log is None:
            log = DeploymentLog(
                self.root / endpoint / deployment,
                endpoint,
                deployment,
                max_bytes=self.max_bytes,
                backups=self.backups,
            )
            self._logs[key] = log
        return log

    def read(
        self,
        endpoint: str,
        deployment: str,
        lines: int,
        since: float | None = None,
        keep: Keep = None,
    ) -> list[LogLine]:
        return self.log(endpoint, deployment).read(lines, since, keep)

    def follow(
        self,
        endpoint: str,
        deployment: str,
        lines: int = 0,
        since: float | None = None,
        keep: Keep = None,
    ) -> AsyncIterator[LogLine]:
        return self.log(endpoint, deployment).follow(lines, since, keep)

    def remove(self, endpoint: str, deployment: str) -> None:
        """Forget a deleted deployment's log (files included)."""
        log = self._logs.pop((endpoint, deployment), None)
        if log is not None:
            log.close()
        shutil.rmtree(self.root / endpoint / deployment, ignore_errors=True)

    def close(self) -> None:
        for log in self._logs.values():
            log.close()
        self._logs.clear()
