"""Output formats as ``az`` prints them: json (default), yaml, table, tsv; ``--query`` first.

``--query`` (JMESPath) is applied to the JSON-able result before it is formatted, as in
az. tsv prints a scalar bare, so ``KEY=$(modeldeck ... -o tsv --query primaryKey)`` works;
a list prints one row per item; a mapping prints its values tab-separated (a nested mapping
prints empty, a nested list its length, as az does). yaml and jmespath are imported only when
used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..services.errors import InvalidInput


class Raw(str):
    """Text printed as it is, whatever the output format (logs, non-JSON answers)."""


def apply_query(data: Any, query: str | None) -> Any:
    if not query:
        return data
    import jmespath  # deferred
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.search(query, data)
    except JMESPathError as exc:
        raise InvalidInput(
            "--query",
            query,
            f"is not a valid JMESPath expression ({str(exc).splitlines()[0]})",
            "see https://jmespath.org; e.g. --query traffic or --query '[].name'",
        ) from None


def render(
    data: Any,
    fmt: str = "json",
    query: str | None = None,
    columns: Sequence[str] | None = None,
) -> str:
    """The text to print (without the final newline); '' prints nothing."""
    if isinstance(data, Raw):
        return str(data)
    queried = apply_query(data, query)
    if fmt == "none":
        return ""
    if fmt in ("json", "jsonc"):
        return json.dumps(queried, indent=2, ensure_ascii=False, default=str)
    if fmt in ("yaml", "yamlc"):
        import yaml  # deferred

        if queried is None:
            return "null"
        return yaml.safe_dump(queried, sort_keys=False, allow_unicode=True).rstrip("\n")
    if fmt == "tsv":
        return tsv(queried)
    if fmt == "table":
        return table(queried, None if query else columns)
    raise InvalidInput("--output", fmt, "must be json, yaml, table, tsv or none")


# --------------------------------------------------------------------------- tsv


def _tsv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(value)
    return str(value)


def _tsv_row(item: Any) -> str:
    if isinstance(item, dict):
        return "\t".join(_tsv_cell(v) for v in item.values())
    if isinstance(item, list):
        return "\t".join(_tsv_cell(v) for v in item)
    return _tsv_cell(item)


def tsv(data: Any) -> str:
    if data is None:
        return ""
    rows = data if isinstance(data, list) else [data]
    return "\n".join(_tsv_row(r) for r in rows)


# --------------------------------------------------------------------------- table


def _header(key: str) -> str:
    """az capitalises the first character of each key."""
    return key[:1].upper() + key[1:]


def _table_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, dict):
        # traffic maps and tags read well inline: blue=90 green=10
        return " ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_table_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def table(data: Any, columns: Sequence[str] | None = None) -> str:
    if data is None:
        return ""
    rows = data if isinstance(data, list) else [data]
    if not rows:
        return ""
    if not all(isinstance(r, dict) for r in rows):
        # a list of scalars: one column named Result, as az does
        rows = [{"Result": r} for r in rows]
    if columns:
        keys = [c for c in columns if any(c in r for r in rows)]
    else:
        keys = []
        for r in rows:
            for k, v in r.items():
                if (
                    k not in keys
                    and not isinstance(v, list)
                    and (not isinstance(v, dict) or k in ("traffic", "mirror_traffic", "tags"))
                ):
                    keys.append(k)
    cells = [[_table_cell(r.get(k)) for k in keys] for r in rows]
    headers = [_header(k) for k in keys]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)
