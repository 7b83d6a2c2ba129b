"""Model and code inputs: what modeldeck may read from a user's path, checked in one place.

A model (``model create --path``, an inline ``model.path``) and a code folder
(``code_configuration.code``) are copied into the local store, packed into
Kubernetes ConfigMaps or uploaded to Azure ML. Every one of those goes through
:func:`scan` first and reads through :func:`copy` / :func:`read_files`:

* regular files and folders only: a device, FIFO or socket is refused, and so is
  anything on ``/proc``, ``/sys`` or ``/dev`` (``/dev/zero`` never ends, ``/proc``
  leads to ``/`` and to files that block);
* a symbolic link inside the folder whose target stays inside the folder is read
  as what it points to (the copy holds the file, not the link: a ConfigMap or a
  blob cannot hold a link, so all back ends see the same tree); a link that leaves
  the folder, dangles or loops is refused, naming the link and its target. The
  path the user named may itself be a link: that is what they asked for;
* a size cap (``MODELDECK_MAX_MODEL_BYTES``, ``MODELDECK_MAX_CODE_BYTES``, or
  ``max_model_bytes`` / ``max_code_bytes`` under ``[daemon]`` in config.toml) is
  checked on the sizes found by the walk and again on the bytes actually read, so a
  file that grows, or lies about its size, stops at the cap;
* each file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and must be the very file
  the walk saw (same device and inode): a file swapped for a link or a FIFO
  between the walk and the copy is refused, not followed;
* a copy can be cancelled between two chunks (:func:`copy_async` cancels it when
  the awaiting task is cancelled: a client that went away, a daemon that stops);
  a refused or cancelled copy leaves nothing behind.

``scoring_script`` is confined to the code folder: :func:`scoring_script_rule`
(no file system: the CLI and the daemon both call it through
``validation.deployment_spec``) and :func:`check_code` (the script is a regular
file inside the folder).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .api.errors import InvalidInput, Unreachable

if TYPE_CHECKING:
    import threading

# asyncio, hashlib, shutil and threading are imported where they are used: the CLI's checks
# (validation, specs) import this module, and its cold start is measured.

Kind = Literal["model", "code"]

GiB = 1024**3
MiB = 1024**2
#: A model: weights of the models a CPU pool serves comfortably; raise it for larger ones.
DEFAULT_MAX_MODEL_BYTES = 2 * GiB
#: Code: scripts and small assets. Each deployment and each update keeps its own copy of
#: the code, and a Kubernetes deployment ships it in a 1 MiB ConfigMap; data belongs with
#: the model.
DEFAULT_MAX_CODE_BYTES = 64 * MiB
#: Files and folders in one input: bounds the walk of a folder named by mistake (a home).
MAX_ENTRIES = 100_000
#: Where nothing is a model or code: pseudo file systems whose files never end or block.
FORBIDDEN_ROOTS = ("/proc", "/sys", "/dev")
IGNORED_DIRS = frozenset({"__pycache__", ".git"})
IGNORED_SUFFIXES = (".pyc", ".pyo")
CHUNK = 1 * MiB
_ZEROS = bytes(CHUNK)

_ENV = {"model": "MODELDECK_MAX_MODEL_BYTES", "code": "MODELDECK_MAX_CODE_BYTES"}
_DEFAULTS = {"model": DEFAULT_MAX_MODEL_BYTES, "code": DEFAULT_MAX_CODE_BYTES}
_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": MiB, "mib": MiB, "g": GiB, "gib": GiB}
_UNITS |= {"t": 1024 * GiB, "tib": 1024 * GiB}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$")


class CopyCancelled(Exception):
    """The copy was cancelled between two chunks; its partial output is removed."""


# --------------------------------------------------------------------------- caps


def parse_size(raw: object, setting: str) -> int:
    """``2147483648``, ``2GiB``, ``500M``: a positive number of bytes."""
    m = _SIZE_RE.match(str(raw))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS or int(m.group(1)) <= 0:
        raise InvalidInput(
            setting,
            raw,
            "must be a positive number of bytes, optionally with a unit (KiB, MiB, GiB, TiB)",
            f"set it to e.g. 4GiB, or unset {setting} for the default",
        )
    return int(m.group(1)) * _UNITS[unit]


def max_bytes(kind: Kind) -> int:
    """The cap for a model or a code folder: env wins, then config.toml ``[daemon]``."""
    env = _ENV[kind]
    raw: object = os.environ.get(env)
    if raw in (None, ""):
        raw = _config().get(f"max_{kind}_bytes")
    if raw in (None, ""):
        return _DEFAULTS[kind]
    return parse_size(raw, env)


def _config() -> dict[str, object]:
    from . import profiles  # deferred: config.toml is read only when no env var is set

    try:
        daemon = profiles.load_config().get("daemon")
    except InvalidInput:
        return {}
    return daemon if isinstance(daemon, dict) else {}


def _fix_for_cap(kind: Kind) -> str:
    return (
        f"make the {kind} smaller, or raise the cap: {_ENV[kind]}=8GiB (or max_{kind}_bytes "
        "under [daemon] in config.toml), then restart the control plane (modeldeck daemon stop)"
    )


# --------------------------------------------------------------------------- the walk


@dataclass(frozen=True)
class Entry:
    """One folder or regular file of an input."""

    rel: str  # posix path under the input ("" for the input itself when it is a file)
    source: str  # the real path to open (an in-folder link's target)
    is_dir: bool
    size: int
    ident: tuple[int, int]  # (st_dev, st_ino) as the walk saw it
    mode: int


@dataclass(frozen=True)
class Input:
    """A checked model or code input: what :func:`copy` and :func:`read_files` read."""

    given: str  # the path as the user named it
    root: str  # its real path
    is_dir: bool
    entries: tuple[Entry, ...]
    total_bytes: int
    limit: int
    field: str
    kind: Kind

    @property
    def name(self) -> str:
        return Path(self.given).name or Path(self.root).name

    def files(self) -> Iterator[Entry]:
        return (e for e in self.entries if not e.is_dir)


def _forbidden_devices() -> set[int]:
    out = set()
    for root in FORBIDDEN_ROOTS:
        with contextlib.suppress(OSError):
            out.add(os.stat(root).st_dev)
    return out


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _kind_of(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file or folder"


def ignored(name: str) -> bool:
    """Never copied: caches and version control."""
    return name in IGNORED_DIRS or name.endswith(IGNORED_SUFFIXES)


def check_top(path: str, field: str, kind: Kind = "model") -> tuple[str, os.stat_result]:
    """The named path itself (no walk): it exists, is a regular file or a folder, and is
    not on /proc, /sys or /dev. Returns its real path and stat."""
    what = "a model file or folder" if kind == "model" else "the folder that holds the code"
    if not path:
        raise InvalidInput(field, path, "is required", f"give the path of {what}")
    real = os.path.realpath(path)
    for root in FORBIDDEN_ROOTS:
        if _under(real, root):
            raise InvalidInput(
                field,
                path,
                f"is on {root}"
                + (f" (it leads to {real})" if real != path else "")
                + f"; {root} holds devices and kernel files, never a {kind}",
                f"give the path of {what}: regular files and folders only",
            )
    try:
        st = os.stat(real)
    except FileNotFoundError:
        raise InvalidInput(
            field, path, "does not exist", f"give the path of {what} that exists"
        ) from None
    except OSError as exc:
        raise InvalidInput(
            field, path, f"cannot be read ({exc.strerror or exc})", f"give the path of {what}"
        ) from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise InvalidInput(
            field,
            path,
            f"is {_kind_of(st.st_mode)}; a {kind} is made of regular files and folders",
            f"give the path of {what}",
        )
    if st.st_dev in _forbidden_devices():
        raise InvalidInput(
            field,
            path,
            "is on a kernel file system (/proc, /sys or /dev mounted there)",
            f"give the path of {what}: regular files and folders only",
        )
    return real, st


def scan(path: str, field: str, kind: Kind = "model", *, limit: int | None = None) -> Input:
    """Walk an input with lstat only (no file is opened) and check every rule above.

    Raises :class:`InvalidInput` naming ``field``, the offending path, the rule and the
    fix. Sizes are summed here, before anything is copied.
    """
    limit = max_bytes(kind) if limit is None else limit
    root, st = check_top(path, field, kind)
    ident = (st.st_dev, st.st_ino)
    if stat.S_ISREG(st.st_mode):
        entry = Entry("", root, False, st.st_size, ident, st.st_mode)
        _check_total(path, field, kind, st.st_size, limit)
        return Input(path, root, False, (entry,), st.st_size, limit, field, kind)
    banned = _forbidden_devices()
    entries: list[Entry] = [Entry("", root, True, 0, ident, st.st_mode)]
    total = 0
    # (real dir, rel, shown dir, the folders above it: a link back to one of them loops)
    stack: list[tuple[str, str, str, frozenset[tuple[int, int]]]] = [
        (root, "", path, frozenset({ident}))
    ]
    while stack:
        real_dir, rel_dir, shown_dir, above = stack.pop()
        try:
            with os.scandir(real_dir) as it:
                names = sorted(e.name for e in it)
        except OSError as exc:
            raise InvalidInput(
                field, shown_dir, f"cannot be read ({exc.strerror or exc})", "check its permissions"
            ) from None
        subdirs = []
        for name in names:
            if ignored(name):
                continue
            shown = os.path.join(shown_dir, name)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            source = os.path.join(real_dir, name)
            try:
                lst = os.lstat(source)
            except FileNotFoundError:
                continue  # removed while we walked: nothing to copy
            if stat.S_ISLNK(lst.st_mode):
                source, lst = _follow_link(source, shown, root, field)
            if lst.st_dev in banned:
                raise InvalidInput(
                    field,
                    shown,
                    "is on a kernel file system (/proc, /sys or /dev)",
                    f"remove it from the {kind}",
                )
            ent_id = (lst.st_dev, lst.st_ino)
            if stat.S_ISDIR(lst.st_mode):
                if ent_id in above:
                    raise InvalidInput(
                        field,
                        shown,
                        f"is a symbolic link to {source}, a folder that contains it: a loop",
                        "remove the link",
                    )
                entries.append(Entry(rel, source, True, 0, ent_id, lst.st_mode))
                subdirs.append((source, rel, shown, above | {ent_id}))
            elif stat.S_ISREG(lst.st_mode):
                entries.append(Entry(rel, source, False, lst.st_size, ent_id, lst.st_mode))
                total += lst.st_size
                _check_total(path, field, kind, total, limit)
            else:
                raise InvalidInput(
                    field,
                    shown,
                    f"is {_kind_of(lst.st_mode)}; a {kind} is made of regular files and folders",
                    f"remove it from the {kind} folder",
                )
            if len(entries) > MAX_ENTRIES:
                raise InvalidInput(
                    field,
                    path,
                    f"holds more than {MAX_ENTRIES:,} files and folders",
                    f"give the folder of the {kind} only",
                )
        stack.extend(reversed(subdirs))
    return Input(path, root, True, tuple(entries), total, limit, field, kind)


def _follow_link(link: str, shown: str, root: str, field: str) -> tuple[str, os.stat_result]:
    try:
        target = os.readlink(link)
    except OSError:
        target = "?"
    real = os.path.realpath(link)
    fix = "copy what it points to into the folder, or remove the link"
    if not _under(real, root):
        raise InvalidInput(
            field,
            shown,
            f"is a symbolic link to {target} ({real}), outside {root}; links may only "
            "point inside the folder",
            fix,
        )
    try:
        return real, os.stat(real)
    except OSError:
        raise InvalidInput(
            field, shown, f"is a symbolic link to {target}, which does not exist", fix
        ) from None


def _check_total(path: str, field: str, kind: Kind, total: int, limit: int) -> None:
    if total > limit:
        raise InvalidInput(
            field,
            path,
            f"is larger than the {kind} size cap of {_human(limit)} ({_human(total)} found so far)",
            _fix_for_cap(kind),
        )


def _human(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"


# --------------------------------------------------------------------------- reading


def _open_checked(inp: Input, entry: Entry) -> int:
    """Open an entry's file read-only, never following a link, and make sure it is the
    regular file the walk saw."""
    shown = os.path.join(inp.given, entry.rel) if entry.rel else inp.given
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(entry.source, flags)
    except OSError as exc:
        raise InvalidInput(
            inp.field,
            shown,
            f"cannot be opened ({exc.strerror or exc}); was it replaced by a link?",
            "copy it again once the folder stops changing",
        ) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != entry.ident:
        os.close(fd)
        raise InvalidInput(
            inp.field,
            shown,
            "changed while it was being copied (it is no longer the file that was checked)",
            "copy it again once the folder stops changing",
        )
    os.set_blocking(fd, True)
    return fd


def _chunks(inp: Input, cancel: threading.Event | None) -> Iterator[tuple[Entry, bytes | None]]:
    """Each entry, then its file's chunks (``None`` marks a folder or the end of a file);
    stops at the cap and at a cancel."""
    read = 0
    for entry in inp.entries:
        if entry.is_dir:
            yield entry, None
            continue
        fd = _open_checked(inp, entry)
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    raise CopyCancelled()
                chunk = os.read(fd, CHUNK)
                if not chunk:
                    break
                read += len(chunk)
                if read > inp.limit:
                    raise InvalidInput(
                        inp.field,
                        inp.given,
                        f"is larger than the {inp.kind} size cap of {_human(inp.limit)} "
                        "(it grew while it was being read)",
                        _fix_for_cap(inp.kind),
                    )
                yield entry, chunk
        finally:
            os.close(fd)
        yield entry, None


def copy(
    inp: Input, dest: Path, *, cancel: threading.Event | None = None, digest: bool = False
) -> str:
    """Copy a scanned input to ``dest`` (a file or folder that must not exist yet).

    Holes stay holes (a chunk of zeros is skipped, not written). Returns the tree's
    digest (:mod:`.codehash`) when ``digest``, else "". On any failure or
    a cancel, ``dest`` is removed before the exception leaves.
    """
    from .codehash import TreeDigest

    h = TreeDigest() if digest else None
    out: int | None = None
    try:
        for entry, chunk in _chunks(inp, cancel):
            target = dest / entry.rel if entry.rel else dest
            if entry.is_dir:
                os.mkdir(target, 0o700)
                if h is not None:
                    h.folder(entry.rel)
                continue
            if out is None:
                out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                if h is not None:
                    h.begin(entry.rel)
            if chunk is None:  # end of this file
                os.ftruncate(out, os.lseek(out, 0, os.SEEK_CUR))
                os.fchmod(out, 0o600 | (entry.mode & 0o100))
                os.close(out)
                out = None
                if h is not None:
                    h.end()
                continue
            if h is not None:
                h.update(chunk)
            if chunk == _ZEROS[: len(chunk)]:
                os.lseek(out, len(chunk), os.SEEK_CUR)
            else:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view) :]
    except BaseException:
        if out is not None:
            os.close(out)
        remove(dest)
        raise
    return h.hexdigest() if h is not None else ""


def digest(inp: Input) -> str:
    """The digest :func:`copy` returns for ``inp`` (:mod:`.codehash`), read without copying."""
    from .codehash import TreeDigest

    h = TreeDigest()
    begun = False
    for entry, chunk in _chunks(inp, None):
        if entry.is_dir:
            h.folder(entry.rel)
            continue
        if not begun:
            h.begin(entry.rel)
            begun = True
        if chunk is None:  # end of this file
            h.end()
            begun = False
        else:
            h.update(chunk)
    return h.hexdigest()


async def copy_async(
    inp: Input,
    dest: Path,
    *,
    digest: bool = False,
    running: set[threading.Event] | None = None,
) -> str:
    """:func:`copy` in a thread that stops when the awaiting task is cancelled (or when
    its event in ``running`` is set): the partial copy is removed before this returns."""
    import asyncio
    import threading

    cancel = threading.Event()
    if running is not None:
        running.add(cancel)
    task = asyncio.ensure_future(asyncio.to_thread(copy, inp, dest, cancel=cancel, digest=digest))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        cancel.set()
        with contextlib.suppress(BaseException):
            await task  # one chunk at most: the thread sees the flag and cleans up
        raise
    except CopyCancelled:
        raise Unreachable(
            f"the copy of {inp.given} was cancelled: the control plane is stopping",
            fix="repeat the command once it runs again (modeldeck daemon status)",
        ) from None
    finally:
        if running is not None:
            running.discard(cancel)


def read_entry(inp: Input, entry: Entry) -> bytes:
    """One file of a scanned input (the file the walk saw, at most the input's cap)."""
    fd = _open_checked(inp, entry)
    try:
        parts, read = [], 0
        while chunk := os.read(fd, CHUNK):
            read += len(chunk)
            if read > inp.limit:
                raise InvalidInput(
                    inp.field,
                    inp.given,
                    f"is larger than the {inp.kind} size cap of {_human(inp.limit)}",
                    _fix_for_cap(inp.kind),
                )
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def read_files(inp: Input) -> dict[str, bytes]:
    """Every file of a scanned input in memory, by relative path (``""`` for a file input)."""
    out: dict[str, bytes] = {}
    parts: list[bytes] = []
    for entry, chunk in _chunks(inp, None):
        if entry.is_dir:
            continue
        if chunk is None:
            out[entry.rel] = b"".join(parts)
            parts = []
        else:
            parts.append(chunk)
    return out


def remove(path: Path) -> None:
    """Remove a file or a folder (a partial copy); never follows a link."""
    import shutil

    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


# --------------------------------------------------------------------------- scoring script

SCRIPT_FIELD = "code_configuration.scoring_script"
_SCRIPT_FIX = "name the scoring script relative to code_configuration.code, e.g. score.py"


def scoring_script_rule(script: str | None) -> str:
    """The scoring script names a file inside the code folder: relative, no ``..``.
    No file system access: the CLI and the daemon both check it before anything else."""
    if not script:
        raise InvalidInput(SCRIPT_FIELD, script, "is required", _SCRIPT_FIX)
    if script.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]", script):
        raise InvalidInput(
            SCRIPT_FIELD,
            script,
            "must be relative to code_configuration.code, not an absolute path",
            _SCRIPT_FIX,
        )
    parts = re.split(r"[\\/]", script)
    if ".." in parts:
        raise InvalidInput(
            SCRIPT_FIELD,
            script,
            "must stay inside code_configuration.code ('..' is not allowed); only the code "
            "folder is copied, so a script outside it would be missing on the replicas",
            "move the script into the code folder, or point code_configuration.code at a "
            "folder that holds it",
        )
    if posixpath.normpath(script) in (".", ""):
        raise InvalidInput(SCRIPT_FIELD, script, "must name a file", _SCRIPT_FIX)
    return script


def check_code(code: str, script: str) -> Path:
    """``script`` is a regular file inside the folder ``code`` (links resolved); returns
    the script's real path."""
    scoring_script_rule(script)
    real_code, st = check_top(code, "code_configuration.code", "code")
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInput(
            "code_configuration.code",
            code,
            "is not a folder",
            "give the folder that holds the scoring script",
        )
    path = os.path.join(code, script)
    real = os.path.realpath(path)
    if not _under(real, real_code):
        raise InvalidInput(
            SCRIPT_FIELD,
            script,
            f"leads outside {code} (to {real}); only the code folder is copied",
            "move the script into the code folder",
        )
    try:
        st = os.stat(real)
    except OSError:
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        raise InvalidInput(SCRIPT_FIELD, script, f"is not a file in {code}", _SCRIPT_FIX)
    _check_total(script, SCRIPT_FIELD, "code", st.st_size, max_bytes("code"))
    return Path(real)
