"""``--set key=value`` overrides: dotted paths applied to a document before it is read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..api.errors import InvalidInput
from . import yamlload
from .document import Doc, split_path


def parse_set_value(text: str) -> Any:
    """A --set value as YAML reads a scalar: ``2`` is a number, ``true`` a bool, ``Key`` text."""
    if text.strip() == "":
        return ""
    try:
        value = yamlload.safe_load(text, "--set")
    except InvalidInput:
        return text
    return value if isinstance(value, str | int | float | bool | list | dict) else text


def _cut(raw: str, limit: int = 80) -> str:
    """A --set item as error messages name it: cut past ``limit`` characters, as values are."""
    return raw if len(raw) <= limit else raw[: limit - 3] + "..."


def apply_overrides(doc: Doc, overrides: Iterable[str]) -> None:
    """Apply ``--set key=value`` items (dotted paths) to the document, in order."""
    for raw in overrides:
        key, sep, text = raw.partition("=")
        path = split_path(key)
        if not sep or not key.strip() or any(not p for p in path):
            raise InvalidInput(
                "--set",
                raw,
                "must be KEY=VALUE with a dotted key",
                "for example --set instance_count=2 or --set request_settings.request_timeout_ms=1000",
            )
        value = parse_set_value(text)
        node: dict[str, Any] = doc.data
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                where = ".".join(path[: i + 1])
                raise InvalidInput(
                    "--set",
                    raw,
                    f"'{where}' is not a mapping, so '{key}' cannot be set",
                    f"set '{where}' itself, e.g. --set {where}=VALUE",
                    message=f"--set {_cut(raw)}: '{where}' is not a mapping",
                )
            node = nxt
        node[path[-1]] = value
        for i in range(1, len(path) + 1):
            sub = tuple(path[:i])
            if sub not in doc.where or i == len(path):
                doc.where[sub] = f"--set {_cut(raw)}"
                doc.from_set.add(sub)


def set_paths(overrides: Iterable[str]) -> list[str]:
    """The dotted paths ``--set`` items change (what a retry must not have seen changed)."""
    return [".".join(split_path(o.partition("=")[0])) for o in overrides]
