"""A small declarative schema: each YAML shape is declared once, as :class:`Key` rows.

A :class:`Shape` names the keys a mapping accepts, in the order errors list them; each key
says how its value is read (a reader below), the domain field it fills and its default (the
domain dataclass's unless given), or that it is accepted and not used (with the warning).
From that one declaration come the accepted keys (an unknown key is named with its line and
the closest known key), the "not used" warnings, and the domain value
(:meth:`Shape.build`); a shape whose keys need more than a reader (a name that is required,
a path resolved against the file, an environment) declares its keys and reads those in code.

The readers take ``(doc, data, key, path, default)``; every error names where the value
came from (file and line, or the ``--set``), the field, the value, the rule and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api import validation
from ..api.errors import InvalidInput
from .document import Doc, at, invalid_at, split_path

#: a key's reader: (doc, the mapping, the key, the mapping's path, the default) -> value
Reader = Callable[[Doc, Mapping[str, Any], str, tuple[str, ...], Any], Any]

_DOMAIN = object()  # a Key's default: the domain dataclass's

#: (the capability of the back ends that send a key, the warning of those that do not)
BackendWarnings = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Key:
    """One key of a shape.

    ``read``: how its value is read (None: accepted, and read by the shape's own code or not
    at all); ``field``: the domain field it fills (default: the key's name); ``keep=False``:
    read to check it, not kept; ``default``: when absent (default: the domain dataclass's);
    ``ignored``: accepted for compatibility and not used: why (a one-line warning), or "";
    ``sent_by``: the key is kept and sent by the back ends that declare this capability
    (:meth:`Workspace.capabilities`, e.g. ``"deployment.instance_type"``); ``ignored`` is then
    the warning of the back ends that do not (:meth:`Shape.backend_warnings`).
    """

    name: str
    read: Reader | None = None
    field: str | None = None
    default: Any = _DOMAIN
    keep: bool = True
    ignored: str | None = None
    sent_by: str | None = None


@dataclass(frozen=True)
class Shape:
    """The keys of one YAML mapping and the domain type they make."""

    #: how errors name the mapping ("scale_settings"); None: by its path (resources.limits)
    what: str | None
    keys: tuple[Key, ...]
    domain: type | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The keys accepted, in the order an error lists them."""
        return tuple(k.name for k in self.keys)

    def check(
        self, doc: Doc, mapping: Mapping[str, Any], path: tuple[str, ...] = (), what: str = ""
    ) -> None:
        """An unknown key: InvalidInput naming its line and the closest known key."""
        _check_keys(doc, mapping, path, self.names, what or self.what or ".".join(path))

    def warnings(self, doc: Doc, data: Mapping[str, Any]) -> list[str]:
        """What the document gives that is accepted and not used, one line each."""
        return [
            f"{doc.loc((k.name,))}: {k.ignored}"
            for k in self.keys
            if k.ignored and k.name in data and k.sent_by is None
        ]

    def backend_warnings(self, doc: Doc, data: Mapping[str, Any]) -> BackendWarnings:
        """What the document gives that only some back ends send: (capability, warning) for
        the back ends that lack the capability (see ``Key.sent_by``)."""
        return tuple(
            (k.sent_by, f"{doc.loc((k.name,))}: {k.ignored}")
            for k in self.keys
            if k.sent_by and k.ignored and k.name in data
        )

    def read(
        self,
        doc: Doc,
        data: Mapping[str, Any],
        path: tuple[str, ...],
        *names: str,
        defaults: Any = None,
    ) -> dict[str, Any]:
        """The values of the keys named (all with a reader if none), in that order, by domain
        field; ``defaults`` (a domain value) gives the defaults instead of the dataclass."""
        by_name = {k.name: k for k in self.keys}
        out: dict[str, Any] = {}
        for key in [by_name[n] for n in names] if names else self.keys:
            if key.read is None:
                continue
            value = key.read(doc, data, key.name, path, self._default(key, defaults))
            if key.keep:
                out[key.field or key.name] = value
        return out

    def build(
        self, doc: Doc, data: Mapping[str, Any], path: tuple[str, ...], *, defaults: Any = None
    ) -> Any:
        """Check the keys, read each, and make the domain value."""
        assert self.domain is not None
        self.check(doc, data, path)
        return self.domain(**self.read(doc, data, path, defaults=defaults))

    def _default(self, key: Key, defaults: Any) -> Any:
        if key.default is not _DOMAIN:
            return key.default
        name = key.field or key.name
        if defaults is not None:
            return getattr(defaults, name)
        assert self.domain is not None, f"{key.name}: no default"
        f = {f.name: f for f in dataclasses.fields(self.domain)}[name]
        return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]


# --------------------------------------------------------------------------- checking helpers


def _suggest(key: str, allowed: Sequence[str]) -> str | None:
    match = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if not match:
        lowered = {a.lower(): a for a in allowed}
        return lowered.get(key.lower())
    return match[0]


def _check_keys(
    doc: Doc, mapping: Mapping[str, Any], path: tuple[str, ...], allowed: Sequence[str], what: str
) -> None:
    for key in mapping:
        if key in allowed:
            continue
        hint = _suggest(key, [a for a in allowed if a != "$schema"])
        full = ".".join((*path, key))
        message = f"{doc.loc((*path, key))}: unknown key '{key}' in {what}"
        if hint:
            message += f"; did you mean '{hint}'?"
            fix = f"rename it to '{hint}'"
        else:
            fix = "remove it; the keys accepted here are: " + ", ".join(
                a for a in allowed if a != "$schema"
            )
        raise InvalidInput(full, key, f"is not a key of {what}", fix, message=message)


def field_path(field_name: str) -> tuple[str, ...]:
    path = split_path(field_name.replace(".memory_gb", ".memory"))
    return tuple(path)


def renamed(exc: InvalidInput, field_name: str) -> InvalidInput:
    return InvalidInput(
        field_name,
        exc.value,
        exc.rule,
        exc.fix,
        message=exc.message.replace(f"invalid {exc.field} ", f"invalid {field_name} ", 1),
    )


def read_mapping(
    doc: Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...]
) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_at(
            doc,
            (*path, key),
            value,
            "must be a mapping of keys to values",
            f"write '{key}:' on its own line with indented keys below it",
        )
    return value


def read_text(doc: Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...]) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid_at(doc, (*path, key), value, "must be text", f"write {key}: some text")
    return str(value)


def read_int(
    doc: Doc,
    data: Mapping[str, Any],
    key: str,
    path: tuple[str, ...],
    default: int,
    lo: int | None = None,
    hi: int | None = None,
) -> int:
    value = data.get(key)
    if value is None:
        return default
    try:
        return validation.integer(value, ".".join((*path, key)), lo, hi)
    except InvalidInput as exc:
        if exc.fix is None:
            exc = InvalidInput(exc.field, exc.value, exc.rule, f"write {key}: {default}")
        raise at(doc, (*path, key), exc) from None


def read_bool(doc: Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...]) -> bool | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid_at(doc, (*path, key), value, "must be true or false", f"write {key}: true")


def read_str_map(
    doc: Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...]
) -> dict[str, str]:
    value = read_mapping(doc, data, key, path)
    out: dict[str, str] = {}
    for k, v in value.items():
        if v is None:
            v = ""
        if isinstance(v, dict | list):
            raise at(
                doc,
                (*path, key, k),
                InvalidInput(
                    f"{'.'.join((*path, key))}.{k}",
                    v,
                    "must be text",
                    "quote the value to make it text",
                ),
            )
        out[str(k)] = str(v).lower() if isinstance(v, bool) else str(v)
    return out


def read_percent_map(
    doc: Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...]
) -> dict[str, int]:
    value = read_mapping(doc, data, key, path)
    out: dict[str, int] = {}
    for k, v in value.items():
        try:
            out[str(k)] = validation.integer(v, f"{key}.{k}", 0, 100)
        except InvalidInput as exc:
            raise at(doc, (*path, key, k), exc) from None
    return out


def read_enum(
    doc: Doc,
    data: Mapping[str, Any],
    key: str,
    path: tuple[str, ...],
    choices: Sequence[str],
    default: str,
) -> str:
    """Case-insensitive; '-' and '_' and CamelCase are alike (TargetUtilization)."""
    value = data.get(key)
    if value is None:
        return default

    def norm(s: str) -> str:
        return re.sub(r"[-_\s]", "", s).lower()

    if isinstance(value, str):
        for c in choices:
            if norm(c) == norm(value):
                return c
    raise invalid_at(
        doc,
        (*path, key),
        value,
        "must be one of " + ", ".join(choices),
        f"write {key}: {choices[0]}",
    )


def resolve_path(doc: Doc, path: tuple[str, ...], value: str) -> str:
    """A local path resolved against the YAML file's folder; a remote asset
    (``validation.is_remote_asset``) as given: the back end decides
    (:func:`services.apply.refuse_remote`)."""
    if validation.is_remote_asset(value):
        return value
    p = Path(value).expanduser()
    base = doc.base_for(path)
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p.resolve()) if base is not None or p.is_absolute() else value


# --------------------------------------------------------------------------- readers


def text(doc: Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...], default: Any) -> Any:
    value = read_text(doc, data, key, path)
    return default if value is None else value


def boolean(
    doc: Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...], default: Any
) -> Any:
    value = read_bool(doc, data, key, path)
    return default if value is None else value


def str_map(doc: Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...], _: Any) -> Any:
    return read_str_map(doc, data, key, path)


def percent_map(doc: Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...], _: Any) -> Any:
    return read_percent_map(doc, data, key, path)


def integer(lo: int | None = None, hi: int | None = None, example: int | None = None) -> Reader:
    """An integer in [lo, hi]; the fix names ``example`` (default: the default)."""

    def read(
        doc: Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...], default: Any
    ) -> Any:
        if data.get(key) is None:
            return default
        return read_int(doc, data, key, path, default if example is None else example, lo, hi)

    return read


def choice(choices: Sequence[str], parse: Callable[[Any], Any] | None = None) -> Reader:
    """One of ``choices`` (as :func:`read_enum` compares them), then ``parse`` (an enum's)."""

    def read(
        doc: Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...], default: Any
    ) -> Any:
        value = read_enum(doc, data, key, path, choices, default)
        return parse(value) if parse is not None else value

    return read


def quantity(parse: Callable[[Any, str], Any]) -> Reader:
    """A Kubernetes quantity (``500m``, ``1Gi``) read by ``parse`` (validation's)."""

    def read(
        doc: Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...], default: Any
    ) -> Any:
        if data.get(key) is None:
            return default
        try:
            return parse(data[key], ".".join((*path, key)))
        except InvalidInput as exc:
            raise at(doc, field_path(exc.field), exc) from None

    return read


def nested(shape: Shape) -> Reader:
    """A mapping of ``shape``'s keys, made into its domain value (each absent key: the
    default value's, or the domain dataclass's when the default is None); the mapping
    absent or null: the default itself (None for a probe: not given)."""

    def read(
        doc: Doc, data: Mapping[str, Any], key: str, path: tuple[str, ...], default: Any
    ) -> Any:
        if data.get(key) is None:
            return default
        value = read_mapping(doc, data, key, path)
        return shape.build(doc, value, (*path, key), defaults=default)

    return read
