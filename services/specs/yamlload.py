"""The one way modeldeck reads YAML: bounded in bytes, nesting, aliases and expansion.

A YAML file is input from whoever wrote it, and YAML can be made to explode: a
400-byte "billion laughs" document (aliases of aliases, nine levels) stands for
a billion nodes. PyYAML composes it as a small graph, but anything that walks it
as a tree (our key-line map, JSON for the control plane) builds the expansion.

:class:`BoundedLoader` counts while it composes, before anything is built:

- aliases: at most ``max_aliases`` in one document;
- expansion: each node's size as a tree (1 + the sizes of its children, an alias
  counting the size of the node it names) must stay within ``max_nodes``;
  an alias to a node still being composed (``&a [*a]``) is refused outright;
- nesting: at most ``MAX_DEPTH`` levels below the top, refused with the line
  and column where the level that is too deep starts (no RecursionError).

:func:`read_text` reads at most ``max_bytes`` (+1 to know there is more), so a
huge file, a FIFO or ``/dev/zero`` renamed ``spec.yml`` costs that much at most.
Every failure is an :class:`InvalidInput` naming the file and, where known,
``line:column``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..api.errors import InvalidInput

#: the largest YAML spec file read (a modeldeck choice: the examples are < 2 KiB)
MAX_BYTES = 1024 * 1024
#: levels of nesting below the top of a document (specs need 4)
MAX_DEPTH = 32
#: aliases (``*name``) in one document
MAX_ALIASES = 100
#: nodes of the document once every alias is expanded (a spec has a few hundred)
MAX_NODES = 100_000


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.3g} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"


def read_text(path: Path, *, field: str = "file", max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of ``path``, reading at most ``max_bytes`` of it."""
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise InvalidInput(
            field,
            str(path),
            f"cannot be read ({exc.strerror or exc})",
            "give a readable UTF-8 YAML file",
        ) from None
    if len(data) > max_bytes:
        raise InvalidInput(
            field,
            str(path),
            f"is larger than {_mib(max_bytes)}, the most a YAML file may be"
            + (f" ({_mib(size)})" if size > max_bytes else ""),
            "give the spec file itself: a spec is a few KiB "
            "(put large content in files the spec names)",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            field,
            str(path),
            f"is not UTF-8 text (byte {exc.start})",
            "give a UTF-8 YAML file",
        ) from None


def _loader_class() -> type:
    import yaml  # deferred: the CLI's cold start stays small

    class Limit(yaml.MarkedYAMLError):
        """A bound of :class:`BoundedLoader` was passed (not a syntax error)."""

        def __init__(self, problem: str, mark: Any, fix: str) -> None:
            super().__init__(problem=problem, problem_mark=mark)
            self.fix = fix

    class BoundedLoader(yaml.SafeLoader):
        max_depth = MAX_DEPTH
        max_aliases = MAX_ALIASES
        max_nodes = MAX_NODES

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._depth = -1
            self._aliases = 0
            #: id(node) -> its size as a tree; the nodes stay alive in the graph
            self._sizes: dict[int, int] = {}

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                self._aliases += 1
                if self._aliases > self.max_aliases:
                    raise Limit(
                        f"more than {self.max_aliases} aliases (*name) in one document",
                        event.start_mark,
                        "write repeated values out instead of aliasing them",
                    )
                node = super().compose_node(parent, index)
                if id(node) not in self._sizes:
                    raise Limit(
                        f"the alias *{event.anchor} is inside the node it names (a recursive alias)",
                        event.start_mark,
                        "an alias may only name a node that ends before it",
                    )
                return node
            event = self.peek_event()
            self._depth += 1
            try:
                if self._depth > self.max_depth:
                    raise Limit(
                        f"nests deeper than {self.max_depth} levels",
                        event.start_mark,
                        "no spec key nests that deep: check the brackets and indentation there",
                    )
                node = super().compose_node(parent, index)
            finally:
                self._depth -= 1
            size = 1
            if isinstance(node, yaml.SequenceNode):
                size += sum(self._sizes[id(n)] for n in node.value)
            elif isinstance(node, yaml.MappingNode):
                size += sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
            if size > self.max_nodes and self._aliases:
                raise Limit(
                    f"expands to more than {self.max_nodes:,} values once its aliases are followed",
                    node.start_mark,
                    "write the values out instead of aliasing lists of aliases "
                    "(a 'billion laughs' document is refused)",
                )
            if size > self.max_nodes:
                raise Limit(
                    f"holds more than {self.max_nodes:,} values",
                    node.start_mark,
                    "a spec holds a few hundred values: check what was pasted into it",
                )
            self._sizes[id(node)] = size
            return node

    BoundedLoader.Limit = Limit  # type: ignore[attr-defined]
    return BoundedLoader


_LOADER: type | None = None


def loader_class() -> type:
    """:class:`yaml.SafeLoader` with the bounds above (built on first use: yaml is deferred)."""
    global _LOADER
    if _LOADER is None:
        _LOADER = _loader_class()
    return _LOADER


def as_invalid(
    exc: BaseException, source: str, *, field: str = "file", mark: Any = None
) -> InvalidInput:
    """A YAML error (syntax or bound) or a RecursionError as InvalidInput naming file and line."""
    mark = getattr(exc, "problem_mark", None) or mark
    at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    where = f"{source}: {at}"
    if isinstance(exc, RecursionError):
        problem = f"nests deeper than {MAX_DEPTH} levels"
    else:
        problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, RecursionError | loader_class().Limit):
        rule = f"is refused ({at}{problem})"
        fix = getattr(exc, "fix", None) or "no spec key nests that deep: check the brackets there"
        message = f"{where}YAML refused: {problem}"
    else:
        rule = f"is not valid YAML ({at}{problem})"
        fix = "fix the YAML syntax (indentation, ':' after each key)"
        message = f"{where}not valid YAML: {problem}"
    return InvalidInput(field, source, rule, fix, message=message)


def _reader_error(exc: Any, text: str, source: str, field: str) -> InvalidInput:
    """PyYAML's 'unacceptable character ... position N' as the line and column of it."""
    pos = int(getattr(exc, "position", 0) or 0)
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    char = getattr(exc, "character", 0)  # its code point (PyYAML passes ord(character))
    point = ord(char) if isinstance(char, str) and char else int(char or 0)
    code = f"#x{point:04x}"
    name = "a NUL" if point == 0 else "a control character"
    at = f"line {line}, column {column}"
    problem = f"{name} ({code}), which YAML does not allow"
    return InvalidInput(
        field,
        source,
        f"is not valid YAML ({at}: {problem})",
        f"remove the character at {at}: a spec is plain UTF-8 text",
        message=f"{source}: {at}: not valid YAML: {problem}",
    )


def safe_load(text: str, source: str, *, field: str = "file") -> Any:
    """Like ``yaml.safe_load`` within the bounds; errors are InvalidInput naming ``source``."""
    import yaml

    loader = None
    try:
        loader = loader_class()(text)  # the reader refuses control characters here
        return loader.get_single_data()
    except yaml.reader.ReaderError as exc:  # a control character: PyYAML gives an offset
        raise _reader_error(exc, text, source, field) from None
    except (yaml.YAMLError, RecursionError) as exc:
        mark = loader.get_mark() if loader is not None else None
        raise as_invalid(exc, source, field=field, mark=mark) from None
    finally:
        if loader is not None:
            loader.dispose()
