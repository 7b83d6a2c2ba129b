"""Where modeldeck keeps its files. ``MODELDECK_HOME`` moves all of them (tests use it)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path | None:
    value = os.environ.get("MODELDECK_HOME")
    return Path(value).expanduser().resolve() if value else None


def _platform(kind: str) -> Path:
    import platformdirs  # deferred: the CLI's cold start stays small

    return Path(getattr(platformdirs, f"user_{kind}_dir")("modeldeck", appauthor=False))


def config_dir() -> Path:
    """Profiles (``config.toml``)."""
    h = home()
    return h / "config" if h else _platform("config")


def data_dir() -> Path:
    """SQLite state, registered model copies, logs of the local workspace."""
    h = home()
    return h / "data" if h else _platform("data")


def state_dir() -> Path:
    """Runtime files: the control plane's Unix socket, pid file and its own log. Mode 0700."""
    h = home()
    return h / "state" if h else _platform("state")


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700: only this user gets in."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write a file that may hold secrets: 0600 from the moment it exists."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)
