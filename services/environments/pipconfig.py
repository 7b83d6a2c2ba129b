"""The user's pip configuration, read as pip reads it, and handed to uv.

Files, in pip's order (later wins): ``$XDG_CONFIG_DIRS/pip/pip.conf`` (``/etc/xdg/pip``),
``/etc/pip.conf``, ``~/.pip/pip.conf``, ``~/.config/pip/pip.conf``, ``<sys.prefix>/pip.conf``,
then ``$PIP_CONFIG_FILE`` (``os.devnull`` there: no files at all); in each, ``[global]`` then
``[install]``. Then the ``PIP_*`` environment variables win over every file.

What is passed on to uv (:meth:`PipConfig.uv_env` / :meth:`PipConfig.uv_args`):

=====================  ===============================================================
pip                    uv
=====================  ===============================================================
index-url              ``UV_INDEX_URL`` (environment, never argv: it may hold a token)
extra-index-url        ``UV_EXTRA_INDEX_URL``, and ``UV_INDEX_STRATEGY=unsafe-best-match``
                       (pip picks the best version across every index; uv by default
                       stops at the first index that has the package)
find-links             ``--find-links`` (one per location)
constraint             ``--constraint`` (one per file; the files' content is in the key)
cert                   ``SSL_CERT_FILE``; without one, ``UV_SYSTEM_CERTS=1`` (the
                       platform's store, as a corporate proxy needs)
trusted-host           ``UV_INSECURE_HOST``
no-index               ``UV_NO_INDEX=1``
pre                    ``UV_PRERELEASE=allow``
timeout                ``UV_HTTP_TIMEOUT``
=====================  ===============================================================

``REQUESTS_CA_BUNDLE`` stands in for ``cert`` when pip has none (pip reads it too). A
``file://`` index or a find-links directory that does not exist is skipped with a warning
(pip would fail on it or ignore it). ``UV_*`` variables the user already set win: whoever
configured uv itself meant it. Offline (``MODELDECK_OFFLINE=1`` or ``offline=True``):
``UV_OFFLINE=1``, packages come from uv's cache only.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def _split(value: str) -> list[str]:
    return [v for v in re.split(r"\s+", value.strip()) if v]


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def redact(url: str) -> str:
    """``url`` without its password/token (for logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def config_files(env: Mapping[str, str] | None = None) -> list[Path]:
    """pip's configuration files in the order pip applies them (existing or not)."""
    env = os.environ if env is None else env
    explicit = env.get("PIP_CONFIG_FILE")
    if explicit == os.devnull:
        return []
    xdg_dirs = env.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(":") if d]
    files.append(Path("/etc/pip.conf"))
    home = Path(env.get("HOME") or Path.home())
    files.append(home / ".pip" / "pip.conf")
    xdg_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    files.append(xdg_home / "pip" / "pip.conf")
    files.append(Path(sys.prefix) / "pip.conf")
    if explicit:
        files.append(Path(explicit))
    return files


@dataclass
class PipConfig:
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    cert: str | None = None
    trusted_hosts: list[str] = field(default_factory=list)
    no_index: bool = False
    pre: bool = False
    timeout: str | None = None
    offline: bool = False
    #: what was skipped and why (a missing file:// index, an unreadable cert...)
    warnings: list[str] = field(default_factory=list)
    #: the files read (for the log)
    files: list[Path] = field(default_factory=list)

    def key_material(self) -> dict[str, object]:
        """What changes the packages installed (for the environment key)."""
        constraints = []
        for c in self.constraints:
            try:
                digest = hashlib.sha256(Path(c).read_bytes()).hexdigest()
            except OSError:
                digest = "unreadable"
            constraints.append((c, digest))
        return {
            "index_url": self.index_url,
            "extra_index_urls": sorted(self.extra_index_urls),
            "find_links": sorted(self.find_links),
            "constraints": sorted(constraints),
            "no_index": self.no_index,
            "pre": self.pre,
        }

    def uv_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """Environment variables for uv (only those ``base`` does not set already)."""
        out: dict[str, str] = {}

        def put(name: str, value: str) -> None:
            if name not in base:
                out[name] = value

        if self.index_url:
            put("UV_INDEX_URL", self.index_url)
        if self.extra_index_urls:
            put("UV_EXTRA_INDEX_URL", " ".join(self.extra_index_urls))
            put("UV_INDEX_STRATEGY", "unsafe-best-match")
        if self.cert:
            out["SSL_CERT_FILE"] = self.cert  # pip's cert is what this user trusts
        else:
            put("UV_SYSTEM_CERTS", "1")
        if self.trusted_hosts:
            put("UV_INSECURE_HOST", " ".join(self.trusted_hosts))
        if self.no_index:
            put("UV_NO_INDEX", "1")
        if self.pre:
            put("UV_PRERELEASE", "allow")
        if self.timeout:
            put("UV_HTTP_TIMEOUT", self.timeout)
        if self.offline:
            out["UV_OFFLINE"] = "1"
        return out

    def uv_args(self) -> list[str]:
        args: list[str] = []
        for link in self.find_links:
            args += ["--find-links", link]
        for c in self.constraints:
            args += ["--constraint", c]
        return args

    def describe(self) -> list[str]:
        """One line per setting passed on, secrets redacted (for the build log)."""
        lines = []
        if self.index_url:
            lines.append(f"index-url {redact(self.index_url)}")
        lines += [f"extra-index-url {redact(u)}" for u in self.extra_index_urls]
        lines += [f"find-links {redact(u)}" for u in self.find_links]
        lines += [f"constraint {c}" for c in self.constraints]
        if self.cert:
            lines.append(f"cert {self.cert}")
        if self.offline:
            lines.append("offline (uv's cache only)")
        return lines


def _local_path(location: str) -> Path | None:
    """The filesystem path of a local location (``file://`` URL or a path), else None."""
    if location.startswith("file://"):
        return Path(urlsplit(location).path)
    if "://" in location:
        return None
    return Path(location).expanduser()


def read_pip_config(
    env: Mapping[str, str] | None = None, *, offline: bool | None = None
) -> PipConfig:
    """The pip configuration in force for ``env`` (default: this process's environment)."""
    env = os.environ if env is None else env
    values: dict[str, str] = {}
    cfg = PipConfig()
    for path in config_files(env):
        if not path.is_file():
            continue
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (OSError, configparser.Error, UnicodeDecodeError) as exc:
            cfg.warnings.append(f"pip config {path} not read ({exc}); its settings are skipped")
            continue
        cfg.files.append(path)
        for section in ("global", "install"):
            if parser.has_section(section):
                for k, v in parser.items(section):
                    values[k.replace("_", "-")] = v
    for name, value in env.items():
        if name.startswith("PIP_") and name != "PIP_CONFIG_FILE":
            values[name[4:].lower().replace("_", "-")] = value

    def local_ok(location: str, what: str) -> bool:
        p = _local_path(location)
        if p is not None and not p.exists():
            cfg.warnings.append(
                f"pip's {what} {redact(location)} does not exist on this machine; skipped"
            )
            return False
        return True

    index = values.get("index-url") or values.get("i")
    if index and local_ok(index, "index-url"):
        cfg.index_url = index
    cfg.extra_index_urls = [
        u for u in _split(values.get("extra-index-url", "")) if local_ok(u, "extra-index-url")
    ]
    cfg.find_links = [
        str(_local_path(u)) if _local_path(u) is not None and "://" not in u else u
        for u in _split(values.get("find-links", ""))
        if local_ok(u, "find-links")
    ]
    for c in _split(values.get("constraint", "")):
        if Path(c).expanduser().is_file():
            cfg.constraints.append(str(Path(c).expanduser().resolve()))
        else:
            cfg.warnings.append(f"pip's constraint file {c} is not a readable file; skipped")
    cert = values.get("cert") or env.get("REQUESTS_CA_BUNDLE")
    if cert:
        if Path(cert).expanduser().is_file():
            cfg.cert = str(Path(cert).expanduser())
        else:
            cfg.warnings.append(f"pip's cert {cert} is not a readable file; skipped")
    cfg.trusted_hosts = _split(values.get("trusted-host", ""))
    cfg.no_index = _truthy(values.get("no-index", ""))
    cfg.pre = _truthy(values.get("pre", ""))
    timeout = values.get("timeout") or values.get("default-timeout")
    cfg.timeout = timeout.strip() if timeout else None
    cfg.offline = _truthy(env.get("MODELDECK_OFFLINE", "")) if offline is None else offline
    return cfg
