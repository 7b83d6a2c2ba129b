"""A pseudo-terminal harness for the dashboard benchmarks.

Runs a command in a real pty (as a terminal would), records every chunk the app
writes with its arrival time, sends keys, and waits for text to appear on the
output (ANSI escapes stripped). Used by every ``bench/tui_*.py``.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][A-Za-z0-9]|\x1b[=>]")
HERE = Path(__file__).resolve().parent
APP = str(HERE / "_tui_bench_app.py")
PYCACHE = os.path.join(tempfile.gettempdir(), "modeldeck-bench-pycache")


class Pty:
    def __init__(
        self, argv: list[str], *, cols: int = 120, rows: int = 40, env: dict[str, str] | None = None
    ) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        full_env = {
            **os.environ,
            "TERM": "xterm-256color",
            "COLUMNS": str(cols),
            "LINES": str(rows),
            **(env or {}),
        }
        full_env.pop("NO_COLOR", None)
        # as installed: byte-compiled modules (a wheel install writes .pyc files; a checkout
        # run with PYTHONDONTWRITEBYTECODE would compile every module at each start)
        full_env.pop("PYTHONDONTWRITEBYTECODE", None)
        full_env.setdefault("PYTHONPYCACHEPREFIX", PYCACHE)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=full_env,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self.master = master
        self.chunks: list[tuple[float, int]] = []  # (time, bytes)
        self._text = bytearray()
        self._dropped = 0  # bytes of text dropped from the front (marks stay valid)
        self._lock = threading.Lock()
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.05)
            except (OSError, ValueError):
                return
            if not ready:
                if self.proc.poll() is not None:
                    return
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            now = time.perf_counter()
            with self._lock:
                self.chunks.append((now, len(data)))
                self._text += ANSI.sub(b"", data)
                if len(self._text) > 4_000_000:
                    del self._text[:2_000_000]
                    self._dropped += 2_000_000

    @property
    def mark(self) -> int:
        with self._lock:
            return self._dropped + len(self._text)

    def wait_for(self, needle: bytes | str, since: int = 0, timeout: float = 30.0) -> float:
        """Time (perf_counter) when ``needle`` appeared in the output after ``since``."""
        if isinstance(needle, str):
            needle = needle.encode()
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self._lock:
                found = self._text.find(needle, max(0, since - self._dropped)) >= 0
            if found:
                return time.perf_counter()
            if self.proc.poll() is not None:
                break
            time.sleep(0.001)
        raise TimeoutError(
            f"{needle!r} did not appear (exit={self.proc.poll()}); tail: {bytes(self._text[-800:])!r}"
        )

    def send(self, data: str | bytes) -> float:
        if isinstance(data, str):
            data = data.encode()
        t = time.perf_counter()
        os.write(self.master, data)
        return t

    def close(self) -> None:
        if self.proc.poll() is None:
            with _suppress():
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                with _suppress():
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._closed = True
        with _suppress():
            os.close(self.master)


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], (OSError, ProcessLookupError))  # type: ignore[arg-type]


def app(mode: str, *args: str, **kwargs: object) -> Pty:
    return Pty([sys.executable, APP, mode, *args], **kwargs)  # type: ignore[arg-type]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
