"""A YAML document as plain data, with where each key came from: errors name the line.

``Doc.where`` maps each key's path to "line 7" (or the ``--set``/flag that gave it);
:func:`at` prefixes an error with it. Paths are tuples of keys; :func:`split_path` reads a
dotted one (``--set resources.requests.nvidia.com/gpu=1``). ``yaml`` is imported only when
a file is read.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..api.errors import InvalidInput
from . import yamlload

#: the YAML key of GPUs in a resource set: holds a dot, so dotted paths put it back together
GPU_KEY = "nvidia.com/gpu"


@dataclass
class Doc:
    """A YAML document as plain data, and where each key came from."""

    data: dict[str, Any]
    source: str  # the file name as the user wrote it, or a label
    base_dir: Path | None  # relative paths in the file are relative to this
    where: dict[tuple[str, ...], str] = field(default_factory=dict)  # path -> "line 7"
    from_set: set[tuple[str, ...]] = field(default_factory=set)

    def loc(self, path: Sequence[str]) -> str:
        path = tuple(path)
        while path:
            if path in self.where:
                at = self.where[path]
                return at if path in self.from_set else f"{self.source}: {at}"
            path = path[:-1]
        return self.source

    def base_for(self, path: Sequence[str]) -> Path | None:
        """Where a relative path at ``path`` is relative to: the YAML file's folder, also for
        a path given by ``--set`` or a flag (az ml loads the file with params_override, so
        they resolve against its base path); with no file, the cwd for a path given so."""
        if self.base_dir is not None:
            return self.base_dir
        return Path.cwd() if tuple(path) in self.from_set else None


#: the files read in :func:`one_read_per_file`: (path as given, what) -> the first read
_READ: ContextVar[dict[tuple[str, str], Doc] | None] = ContextVar("_READ", default=None)


@contextlib.contextmanager
def one_read_per_file() -> Iterator[None]:
    """Within it, each YAML file is read once: the readers after the first get a copy of
    what it read. A command that reads a file for several things (the names it acts on,
    the ``revision:`` it pins, the spec, its ``modeldeck.rollout``, the spec again on a
    retry) then never mixes two versions of a file saved in the meantime."""
    token = _READ.set({})
    try:
        yield
    finally:
        _READ.reset(token)


def read_yaml(path: str | Path, what: str) -> Doc:
    """Read one YAML mapping with the line of each key. Errors are InvalidInput."""
    read = _READ.get()
    key = (str(path), what)
    if read is not None and key in read:
        return copy.deepcopy(read[key])
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidInput(
            "file",
            str(path),
            "does not exist" if not p.exists() else "is not a file",
            f"give the path of the {what} YAML file (-f FILE)",
        )
    text = yamlload.read_text(p, field="file")  # at most yamlload.MAX_BYTES are read
    doc = parse_yaml(text, str(path), p.resolve().parent, what)
    if read is not None:
        read[key] = copy.deepcopy(doc)
    return doc


def parse_yaml(text: str, source: str, base_dir: Path | None, what: str) -> Doc:
    import yaml  # deferred: the CLI's cold start stays small

    loader = None
    try:
        # aliases, expansion and nesting are bounded while composing (yamlload)
        loader = yamlload.loader_class()(text)
        node = loader.get_single_node()
        doc = Doc({}, source, base_dir)
        if node is None:
            raise InvalidInput(
                "file",
                source,
                f"is empty; expected a {what} mapping",
                "see examples/endpoint.yml and examples/blue.yml",
            )
        if not isinstance(node, yaml.MappingNode):
            raise InvalidInput(
                "file",
                source,
                f"must be a mapping of {what} keys",
                "write key: value lines at the top level (see examples/blue.yml)",
                message=f"{source}: line {node.start_mark.line + 1}: expected a mapping of {what} keys",
            )
        doc.data = _node_value(loader, node, (), doc)
        return doc
    except (yaml.YAMLError, RecursionError) as exc:
        mark = loader.get_mark() if loader is not None else None
        raise yamlload.as_invalid(exc, source, mark=mark) from None
    finally:
        if loader is not None:
            loader.dispose()


_MAX_DEPTH = 32


def _node_value(loader: Any, node: Any, path: tuple[str, ...], doc: Doc, depth: int = 0) -> Any:
    import yaml

    if depth > _MAX_DEPTH:  # also what a recursive alias (&a [*a]) turns into
        raise InvalidInput(
            "file",
            doc.source,
            f"nests deeper than {_MAX_DEPTH} levels",
            "remove recursive aliases; no key of a spec nests that deep",
            message=f"{doc.source}: line {node.start_mark.line + 1}: nested too deeply",
        )
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # YAML merge keys (<<)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            key = str(key) if not isinstance(key, str) else key
            line = f"line {key_node.start_mark.line + 1}"
            if key in out:
                raise InvalidInput(
                    ".".join((*path, key)),
                    key,
                    "is given twice",
                    "keep one of them",
                    message=f"{doc.source}: {line}: key '{key}' is given twice",
                )
            sub = (*path, key)
            doc.where[sub] = line
            out[key] = _node_value(loader, value_node, sub, doc, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_node_value(loader, n, path, doc, depth + 1) for n in node.value]
    return loader.construct_object(node, deep=True)


def doc_from_data(data: Mapping[str, Any], source: str) -> Doc:
    """A document built from data we already have (the current spec, or flags)."""
    return Doc(dict(data), source, None)


def from_flag(doc: Doc, key: str, flag: str, value: str) -> None:
    """A flag's value for a top-level key: an error about it names the flag, not the file."""
    doc.data[key] = value
    doc.where[(key,)] = f"{flag} {value}"
    doc.from_set.add((key,))


def split_path(key: str) -> list[str]:
    return rejoin(key.strip().split("."))


def rejoin(parts: Sequence[str]) -> list[str]:
    """The parts of a dotted path with the keys that hold dots in Azure ML YAML put back
    together: ``nvidia.com/gpu``, and the keys of tags, environment variables and traffic."""
    out: list[str] = []
    i = 0
    while i < len(parts):
        if parts[i] == "nvidia" and i + 1 < len(parts) and parts[i + 1] == "com/gpu":
            out.append(GPU_KEY)
            i += 2
            continue
        out.append(parts[i])
        i += 1
    # map keys (tags, environment variables, traffic) may hold dots themselves
    if out and out[0] in ("tags", "environment_variables", "traffic", "mirror_traffic"):
        out = [out[0], ".".join(out[1:])] if len(out) > 1 else out
    return out


def at(doc: Doc, path: Sequence[str], exc: InvalidInput) -> InvalidInput:
    """The same error, prefixed with where the value came from."""
    loc = doc.loc(path)
    err = InvalidInput(exc.field, exc.value, exc.rule, exc.fix, message=f"{loc}: {exc.message}")
    return err


def invalid_at(doc: Doc, path: Sequence[str], value: Any, rule: str, fix: str) -> InvalidInput:
    """The error on the value at ``path`` (its field the dotted path), prefixed with where
    the value came from (:func:`at`)."""
    return at(doc, path, InvalidInput(".".join(path), value, rule, fix))


def file_revision(path: str | Path, what: str) -> str | None:
    """The top-level ``revision:`` of an update file (as ``show -o yaml`` prints it), or None."""
    doc = read_yaml(path, what)
    value = doc.data.get("revision")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or len(str(value)) > 200:
        raise invalid_at(
            doc,
            ("revision",),
            str(value)[:80],
            "is not a revision (a short text or number)",
            f"copy revision: as `modeldeck online-{what} show -o yaml` prints it, or remove it",
        )
    return str(value)
