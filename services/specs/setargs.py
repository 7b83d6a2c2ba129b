"""az's generic update arguments (``--set``, ``--add``, ``--remove``, ``--force-string``),
applied to a YAML document before it is read.

The grammar and what each does are az's (azure-cli core ``azure/cli/core/commands/arm.py``:
``_split_key_value_pair``, ``set_properties``, ``add_properties``, ``remove_properties``,
``_get_internal_path``, ``_update_instance``; values read as ``util.shell_safe_json_parse``
does: JSON, else a Python literal, else the text), on the YAML's mapping as az ml applies
``--set`` to it (azext_mlv2 ``_params/_common_params.py`` ``add_override_param``: several
``KEY=VALUE`` after one flag, the flag repeatable; azure-ai-ml ``params_override``):

* ``--set a.b[0].c=VALUE`` sets a value: dotted keys, ``[N]`` indexes a list (``[-1]`` the
  last), ``[key=value]`` picks the one item of a list whose ``key`` is ``value``;
* ``--add PATH VALUE...`` appends to the list at PATH: consecutive ``key=value`` items make
  one mapping, any other item is appended as a value;
* ``--remove PATH`` removes a key, ``--remove PATH N`` the N-th item of a list;
* ``--force-string``: ``--set``/``--add`` values are kept as text, not read as JSON.

Where this differs from az, it takes more than az does and never less: a key missing on the
way is created as a mapping (az ml's create does, through params_override; az's generic
update refuses it with "Couldn't find"), a ``"quoted"`` key keeps its dots
(``properties."azureml.x"=1``), and the keys that hold dots in Azure ML YAML keep them
(``resources.requests.nvidia.com/gpu``, the keys of ``tags``, ``environment_variables``,
``traffic``, ``mirror_traffic``: :func:`document.rejoin`). Errors carry az's words
("Couldn't find 'x' in 'a.b'. Available options: [...]") with the keys as the YAML spells them.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api import validation
from ..api.errors import InvalidInput
from .document import Doc, at, read_yaml, rejoin

SET, ADD, REMOVE = "--set", "--add", "--remove"

SET_USAGE = "--set property1.property2=<value>"
ADD_USAGE = "--add property.listProperty <key=value, string or JSON string>"
REMOVE_USAGE = "--remove property.list <indexToRemove> OR --remove propertyToRemove"
_USAGE = {SET: SET_USAGE, ADD: ADD_USAGE, REMOVE: REMOVE_USAGE}

_INDEX = re.compile(r"\[(.*)\]")


@dataclass(frozen=True)
class Edit:
    """One generic update argument: ``--set KEY=VALUE`` (one pair), ``--add PATH VALUE...`` or
    ``--remove PATH [INDEX]``. ``parse``: values are read as JSON (az's generic update);
    False: kept as text (``--force-string``, and az ml's ``create --set``, whose values
    the schema reads)."""

    flag: str
    args: tuple[str, ...]
    parse: bool = True

    def __str__(self) -> str:
        return _cut(" ".join((self.flag, *self.args)))

    @property
    def set_key(self) -> str | None:
        """The key of a ``--set`` (None for --add/--remove)."""
        return split_key_value(self.args[0])[0].strip() if self.flag == SET else None


Override = str | Edit  # a plain "KEY=VALUE" is a --set whose value is read as JSON


def as_edit(item: Override) -> Edit:
    return item if isinstance(item, Edit) else Edit(SET, (item,))


def _cut(raw: str, limit: int = 80) -> str:
    """An argument as error messages name it: cut past ``limit`` characters, as values are."""
    return raw if len(raw) <= limit else raw[: limit - 3] + "..."


def split_key_value(expression: str) -> tuple[str, str]:
    """az's ``_split_key_value_pair``: split at the first ``=`` outside ``[brackets]``
    (no ``=``: the whole expression and "")."""
    if expression.count("=") == 1:
        key, _, value = expression.partition("=")
        return key, value
    depth = False
    for i, c in enumerate(expression):
        if c == "=" and not depth:
            return expression[:i], expression[i + 1 :]
        if c == "[":
            depth = True
        elif c == "]":
            depth = False
    return expression, ""


def parse_set_value(text: str) -> Any:
    """A value as az reads it (``shell_safe_json_parse``): JSON, else a Python literal
    (``{'a': 'b'}``, ``True``), else the text as given."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    if len(text) <= 10_000 and text[:1] in "[{('\"TFN-+0123456789.":
        try:
            value = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return text
        if _plain(value):
            return value
    return text


def _plain(value: Any, depth: int = 0) -> bool:
    """JSON's kinds of values only (a literal may be a tuple, a set, bytes...)."""
    if depth > 32:
        return False
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def internal_path(path: str) -> list[str]:
    """az's ``_get_internal_path``: ``a.b[0][1].c`` -> ``a, b, [0], [1], c`` (empty parts
    dropped, as its regex does), plus ``"quoted"`` keys kept whole and the keys that hold
    dots in Azure ML YAML put back together (:func:`document.rejoin`)."""
    parts: list[str] = []
    buf, quoted, i = "", False, 0

    def flush() -> None:
        nonlocal buf, quoted
        if buf or quoted:
            parts.append(buf)
        buf, quoted = "", False

    while i < len(path):
        c = path[i]
        end = path.find('"', i + 1) if c == '"' else path.find("]", i) if c == "[" else -1
        if c == ".":
            flush()
        elif c == '"' and end > i:
            buf, quoted = buf + path[i + 1 : end], True
            i = end
        elif c == "[" and end > i:
            flush()
            parts.append(path[i : end + 1])
            i = end
        else:
            buf += c
        i += 1
    flush()
    if any(_INDEX.fullmatch(p) for p in parts):
        return parts
    return rejoin(parts)


def _dotted(path: Sequence[str]) -> str:
    return ".".join(path).replace(".[", "[")


def _fail(edit: Edit, text: str, fix: str, value: Any = None) -> InvalidInput:
    return InvalidInput(
        edit.flag,
        str(edit) if value is None else value,
        text,
        fix,
        message=f"{edit}: {text}",
    )


def _not_found(edit: Edit, node: Any, part: str, path: Sequence[str]) -> InvalidInput:
    """az's ``throw_and_show_options``: what can be named where ``part`` was not found."""
    parent = _dotted(path[:-1])
    text = f"Couldn't find '{part}' in '{parent}'."
    if isinstance(node, dict):
        text += f" Available options: {sorted(str(k) for k in node)}"
        fix = "name one of the keys listed"
    elif isinstance(node, list):
        text += (
            f" Available options: index into the collection '{parent}' with [<index>] "
            "or [<key=value>]"
        )
        fix = f"write {parent}[0] (the first item) or {parent}[name=VALUE]"
    else:
        text += f" '{parent}' does not support further indexing."
        fix = f"set '{parent}' itself, e.g. --set {parent}=VALUE"
    return _fail(edit, text, fix)


def _syntax(edit: Edit) -> InvalidInput:
    return _fail(edit, f"invalid syntax: {_USAGE[edit.flag]}", f"write {_USAGE[edit.flag]}")


def _step(edit: Edit, node: Any, part: str, path: Sequence[str], at: int, create: bool) -> Any:
    """az's ``_update_instance``: one part of a path, from ``node``; ``create``: a key that
    is missing or null becomes a mapping (az ml's params_override)."""
    index = _INDEX.fullmatch(part)
    before = path[at - 1] if at else ""
    if index and not isinstance(node, list):
        raise _not_found(edit, node, part, path)
    if index and "=" in index.group(1):
        key, raw = index.group(1).split("=", 1)
        value = parse_set_value(raw)
        matches = [x for x in node if isinstance(x, dict) and x.get(key) == value]
        if len(matches) == 1:
            return matches[0]
        if matches:
            text = f"non-unique key '{key}' found multiple matches on {before}. Key must be unique."
        else:
            text = f"item with value '{value}' doesn't exist for key '{key}' on {before}"
        raise _fail(edit, text, f"list {_dotted(path[:at])} to see its items")
    if index:
        try:
            return node[int(index.group(1))]
        except ValueError:
            raise _syntax(edit) from None
        except IndexError:
            raise _fail(
                edit,
                f"index {index.group(1)} doesn't exist on {before}",
                f"{before} has {len(node)} item(s): index from 0 to {len(node) - 1}",
            ) from None
    if isinstance(node, dict):
        if node.get(part) is None and create:
            node[part] = {}
        if part in node:
            return node[part]
    raise _not_found(edit, node, part, path)


def _find(edit: Edit, root: Any, path: Sequence[str], create: bool, full: Sequence[str]) -> Any:
    node = root
    for i, part in enumerate(path):
        node = _step(edit, node, part, full, i, create)
    return node


def _set(edit: Edit, root: dict[str, Any]) -> list[str]:
    key, raw = split_key_value(edit.args[0])
    if not key.strip():
        raise _fail(
            edit,
            "usage error: Empty key in --set. Correct syntax: --set KEY=VALUE [KEY=VALUE ...]",
            "for example --set instance_count=2 or --set request_settings.request_timeout_ms=1000",
        )
    if "=" not in edit.args[0]:  # az would set "" here; a missing "=" is a typo more often
        raise _fail(
            edit,
            "usage error: --set KEY=VALUE [KEY=VALUE ...]",
            "for example --set instance_count=2 or --set request_settings.request_timeout_ms=1000",
        )
    value = parse_set_value(raw) if edit.parse else raw
    *path, name = internal_path(key)
    node = _find(edit, root, path, True, path)
    index = _INDEX.fullmatch(name)
    if index and isinstance(node, list):
        try:
            node[int(index.group(1))] = value
        except ValueError:
            raise _syntax(edit) from None
        except IndexError:
            raise _fail(
                edit,
                f"index {index.group(1)} doesn't exist on {path[-1] if path else name}",
                "add an item with --add instead",
            ) from None
    elif isinstance(node, dict) and not index:
        node[name] = value
    else:
        raise _not_found(edit, node, name, key.split("."))
    return [*path, name]


def _target(edit: Edit) -> list[str]:
    """The path an --add/--remove names first."""
    path = internal_path(edit.args[0]) if edit.args else []
    if not path:
        raise _syntax(edit)
    return path


def _add(edit: Edit, root: dict[str, Any]) -> list[str]:
    path = _target(edit)
    parent = _find(edit, root, path[:-1], True, path)
    last = path[-1]
    target = parent.get(last) if isinstance(parent, dict) else None
    if isinstance(parent, dict) and target is None:
        target = parent[last] = []
    elif not isinstance(parent, dict):
        target = _step(edit, parent, last, path, len(path) - 1, False)
    if not isinstance(target, list):
        raise _syntax(edit)
    entry: dict[str, Any] = {}
    for argument in edit.args[1:]:
        if "=" in argument:  # consecutive key=value items make one mapping (kept as text)
            k, v = argument.split("=", 1)
            entry[k] = v
            continue
        if entry:
            target.append(entry)
            entry = {}
        target.append(parse_set_value(argument) if edit.parse else argument)
    if entry:
        target.append(entry)
    return path


def _remove(edit: Edit, root: dict[str, Any]) -> list[str]:
    path = _target(edit)
    found = _find(edit, root, path, False, path)
    if len(edit.args) < 2 or not edit.args[1]:
        parent = _find(edit, root, path[:-1], False, path)
        if not isinstance(parent, dict):
            raise _syntax(edit)
        del parent[path[-1]]
        return path
    if not isinstance(found, list):
        raise _fail(edit, f"{path[-1]} doesn't exist", f"'{_dotted(path)}' is not a list")
    try:
        found.pop(int(edit.args[1]))
    except ValueError:
        raise _syntax(edit) from None
    except IndexError:
        raise _fail(
            edit,
            f"index {edit.args[1]} doesn't exist on {path[-1]}",
            f"{path[-1]} has {len(found)} item(s): index from 0 to {len(found) - 1}",
        ) from None
    return path


_APPLY = {SET: _set, ADD: _add, REMOVE: _remove}


def _keys(path: Sequence[str]) -> tuple[str, ...]:
    """The mapping keys of a path, up to its first list index (where errors point)."""
    out: list[str] = []
    for part in path:
        if _INDEX.fullmatch(part):
            break
        out.append(part)
    return tuple(out)


def apply_overrides(doc: Doc, overrides: Iterable[Override]) -> None:
    """Apply ``--set``/``--add``/``--remove`` items to the document, in the order given (az's
    ``ordered_arguments``); each value they give is named by them in errors."""
    for item in overrides:
        edit = as_edit(item)
        path = _keys(_APPLY[edit.flag](edit, doc.data))
        for i in range(1, len(path) + 1):
            sub = path[:i]
            if sub not in doc.where or i == len(path):
                doc.where[sub] = str(edit)
                doc.from_set.add(sub)


def set_paths(overrides: Iterable[Override]) -> list[str]:
    """The dotted paths the items change (what a retry must not have seen changed)."""
    out = []
    for item in overrides:
        edit = as_edit(item)
        key = edit.set_key if edit.flag == SET else (edit.args[0] if edit.args else "")
        out.append(".".join(_keys(internal_path(key or ""))))
    return out


def update_names(
    path: str | Path | None,
    what: str,
    overrides: Iterable[Override],
    flags: Mapping[str, tuple[str, str | None]],
) -> dict[str, str]:
    """The names an ``update`` acts on (``{key: (flag, value given)}``): the flags, else
    (with -f) the file's keys as the items leave them, as az ml's getter reads them
    (azext_mlv2 ``_ml_online_deployment_show``/``_ml_online_endpoint_show``)."""
    out = {key: value for key, (_, value) in flags.items() if value}
    if path is not None and len(out) < len(flags):
        doc = read_yaml(path, what)
        doc.data.update(out)
        apply_overrides(doc, overrides)
        for key in flags:
            value = doc.data.get(key)
            if key not in out and value not in (None, ""):
                try:
                    out[key] = validation.name(value, key)
                except InvalidInput as exc:
                    raise at(doc, (key,), exc) from None
    for key, (flag, _) in flags.items():
        if key not in out:
            raise InvalidInput(
                flag,
                None,
                "is required",
                f"pass {flag}, or -f FILE with {key}: in it (or --set {key}=...)",
                message=f"{flag} is required (or -f FILE with {key}: in it)",
            )
    return out
