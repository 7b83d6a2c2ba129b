"""Where modeldeck keeps its files. ``MODELDECK_HOME`` moves all of them (tests use it)."""

from __future__ import annotations

import errno
import os
import stat
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
    """Create ``path`` and any missing parents as 0700, whatever the umask: only this user
    gets in. An existing directory another user can write is refused
    (:func:`check_private`); one of this user's that others can only read is made 0700."""
    check_above(_guarded(path)[-1])  # before anything is made in a folder others can swap
    missing: list[Path] = []
    p = path
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)  # the umask can only take bits away...
        except FileExistsError:
            continue  # made meanwhile by someone else: checked below, never chmod-ed
        os.chmod(d, 0o700)  # ...and 0700 exactly is what we want
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path))
    check_tree(path)
    os.chmod(path, 0o700)
    return path


def check_tree(path: Path) -> None:
    """:func:`check_private` on ``path`` and the directories above it up to MODELDECK_HOME,
    then :func:`check_above` on the rest of the way to ``/`` (the client calls it before it
    talks to the socket in the state directory)."""
    guarded = _guarded(path)
    for d in guarded:
        check_private(d)
    check_above(guarded[-1])


def check_above(path: Path) -> None:
    """Refuse ``path`` when a directory above it, up to ``/``, lets another user rename it
    away and put their own in its place. Allowed: directories owned by this user or root
    that others cannot write, and root's sticky directories such as /tmp. Both the path
    as given and with its links resolved are checked (a few lstat calls)."""
    uid = os.getuid()
    seen: set[Path] = set()
    for start in (Path(os.path.abspath(path)), Path(os.path.realpath(path))):
        for d in start.parents:
            if d in seen:
                continue
            seen.add(d)
            try:
                st = os.lstat(d)
            except (FileNotFoundError, NotADirectoryError):
                continue  # not there yet: private_dir creates it 0700
            owner_ok = st.st_uid in (uid, 0)
            if stat.S_ISLNK(st.st_mode):  # a link's mode means nothing; its folder is checked
                bad = not owner_ok
            else:
                writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
                sticky = st.st_uid == 0 and st.st_mode & stat.S_ISVTX
                bad = not owner_ok or bool(writable and not sticky)
            if bad:
                _refuse_above(path, d, st)


def _refuse_above(path: Path, d: Path, st: os.stat_result) -> None:
    from .api.errors import InvalidInput

    uid = os.getuid()
    mode = stat.S_IMODE(st.st_mode)
    what = _what(path)
    if st.st_uid not in (uid, 0):
        rule = (
            f"{d} above it belongs to {_user(st.st_uid)}, mode {mode:04o}: its owner can "
            f"rename {path.name} away and put their own in its place"
        )
        own = "have root give it to you"
    else:
        rule = (
            f"{d} above it can be written by other users (mode {mode:04o}) and is not a "
            f"sticky directory of root's like /tmp: they can rename {path.name} away and put "
            "their own in its place"
        )
        own = f"as its owner: chmod go-w {d}"
    fix = (
        "set MODELDECK_HOME to a directory under ones only you or root can write "
        f"(e.g. ~/.modeldeck), or {own}"
    )
    raise InvalidInput(
        what, str(d), rule, fix, message=f"modeldeck refuses to use its {what} {path}: {rule}"
    )


def _guarded(path: Path) -> list[Path]:
    """``path`` and, below MODELDECK_HOME, every directory from it up to MODELDECK_HOME:
    whoever can write one of them can swap what is below it."""
    out = [path]
    h = home()
    if h is not None and path.is_relative_to(h):
        p = path
        while p != h:
            p = p.parent
            out.append(p)
    return out


def check_private(path: Path, what: str | None = None) -> None:
    """Refuse a directory (or file) that another user can write: owned by another uid, or
    with the group or other write bit. Does nothing when it does not exist (yet)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing there yet (creating it says what is wrong, if anything)
    uid = os.getuid()
    writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if st.st_uid == uid and not writable:
        return
    from .api.errors import InvalidInput

    mode = stat.S_IMODE(st.st_mode)
    what = what or _what(path)
    is_dir = stat.S_ISDIR(st.st_mode)
    private = "700" if is_dir else "600"
    if what.startswith("config"):
        risk = "change which workspaces and gateway address modeldeck uses"
    else:
        risk = "replace the control plane's socket or records"
    if st.st_uid != uid:
        rule = (
            f"belongs to {_user(st.st_uid)}, not to you ({_user(uid)}), mode {mode:04o}: "
            f"its owner can {risk}"
        )
        chown = f"chown -R {_name(uid)}" if is_dir else f"chown {_name(uid)}"
        fix = (
            f"use a directory of your own: set MODELDECK_HOME to one, or have it given to you "
            f"(as root: {chown} {path} && chmod {private} {path})"
        )
    else:
        rule = f"can be written by other users (mode {mode:04o}): they could {risk}"
        fix = f"chmod {private} {path}" + (
            " (modeldeck creates its directories 0700)" if is_dir else ""
        )
    raise InvalidInput(
        what,
        str(path),
        rule,
        fix,
        message=f"modeldeck refuses to use its {what} {path}: {rule}",
    )


def _what(path: Path) -> str:
    h = home()
    if h is not None and path == h:
        return "MODELDECK_HOME"
    for name, fn in (("state", state_dir), ("data", data_dir), ("config", config_dir)):
        if path == fn():
            return f"{name} directory"
    return "directory"


def _name(uid: int) -> str:
    """The user name for a shell command (``chown NAME``), or the uid when it has none."""
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return str(uid)


def _user(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (KeyError, ImportError):
        return f"uid {uid}"


def write_private(path: Path, data: bytes) -> None:
    """Write a file that may hold secrets: 0600 from the moment it exists."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)
