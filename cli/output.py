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

from ..services.api.errors import InvalidInput


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
    if fmt == "none" or queried is None:
        # knack prints a command's result only when it is not None (knack/cli.py, invoke):
        # an unknown --query path prints nothing, in every format, and exits 0
        return ""
    if fmt in ("json", "jsonc"):
        return json.dumps(queried, indent=2, ensure_ascii=False, default=str)
    if fmt in ("yaml", "yamlc"):
        import yaml  # deferred

        return yaml.safe_dump(queried, sort_keys=False, allow_unicode=True).rstrip("\n")
    if fmt == "tsv":
        return tsv(queried)
    if fmt == "table":
        return table(queried, None if query else columns, own=not query)
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


#: short headers for our own columns, so a list reads at 100 columns (a --query result keeps
#: az's capitalised keys)
HEADERS = {
    "provisioning_state": "State",
    "endpoint_name": "Endpoint",
    "ready_replicas": "Ready",
    "desired_replicas": "Desired",
    "instance_count": "Instances",
    "agent_count": "Nodes",
    "vm_size": "VM size",
    "vcpus_total": "vCPU",
    "vcpus_used": "vCPU used",
    "memory_gb_total": "Memory GiB",
    "memory_gb_used": "GiB used",
    "auth_mode": "Auth",
    "scoring_uri": "Scoring URI",
    "openapi_uri": "OpenAPI URI",
    "mirror_traffic": "Mirror",
    "kube_context": "Context",
    "primaryKey": "Primary key",
    "secondaryKey": "Secondary key",
}
#: columns that only a single object's table shows (too wide for a list)
SINGLE_ONLY = ("scoring_uri", "openapi_uri", "control", "error", "kube_context", "namespace")
#: the default columns of each kind, for results whose command names none (create, update)
KIND_COLUMNS: dict[str, tuple[str, ...]] = {
    "cluster": (
        "name",
        "driver",
        "purpose",
        "provisioning_state",
        "agent_count",
        "vm_size",
        "vcpus_total",
        "vcpus_used",
        "endpoints",
        "kube_context",
        "namespace",
        "error",
    ),
    "endpoint": (
        "name",
        "compute",
        "auth_mode",
        "provisioning_state",
        "traffic",
        "mirror_traffic",
        "control",
        "scoring_uri",
        "error",
    ),
    "deployment": (
        "name",
        "endpoint_name",
        "model",
        "provisioning_state",
        "ready_replicas",
        "desired_replicas",
        "traffic",
        "mirror_traffic",
        "error",
    ),
    "model": ("name", "version", "description", "path"),
}
WIDTH = 100


def kind_of(row: dict[str, Any]) -> str | None:
    if "vm_size" in row and "driver" in row:
        return "cluster"
    if "scoring_uri" in row and "auth_mode" in row:
        return "endpoint"
    if "endpoint_name" in row and "ready_replicas" in row:
        return "deployment"
    if "version" in row and "path" in row and "name" in row:
        return "model"
    return None


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
        return f"{value:.15g}"  # 0.5, 12, and a timestamp in full (not 1.79571e+09)
    return str(value)


def _own_columns(
    rows: list[dict[str, Any]], columns: Sequence[str] | None, single: bool
) -> list[str] | None:
    """The columns to show of our own results: the command's, else the kind's; a list leaves
    out the wide ones, and a column empty in every row (mirror, error) is left out."""
    kind = kind_of(rows[0])
    wanted = list(columns) if columns else list(KIND_COLUMNS.get(kind or "", ()))
    if not wanted:
        return None
    if single and kind in KIND_COLUMNS:  # the kind's detail columns, if anything is in them
        wanted += [c for c in KIND_COLUMNS[kind] if c in SINGLE_ONLY and c not in wanted]
    if not single:
        wanted = [c for c in wanted if c not in SINGLE_ONLY]
        if any(r.get("error") for r in rows):  # a cluster that cannot be reached: say so
            wanted.append("error")
    return [
        c
        for c in wanted
        if any(c in r for r in rows)
        and (c == "traffic" or any(r.get(c) not in (None, {}, [], "") for r in rows))
    ]


def _vertical(keys: list[str], headers: list[str], row: list[str]) -> str:
    width = max(len(h) for h in headers)
    pad = "\n" + " " * (width + 2)  # a multi-line value (an error's log lines) stays in its column
    return "\n".join(
        f"{h.ljust(width)}  {pad.join(c.splitlines())}".rstrip()
        for h, c in zip(headers, row, strict=True)
    )


def table(data: Any, columns: Sequence[str] | None = None, own: bool = True) -> str:
    """az's table: one row per item. Our own results (``own``: no --query) show the useful
    columns under short headers; a single object too wide for 100 columns prints one field
    per line instead."""
    if data is None:
        return ""
    single = not isinstance(data, list)
    rows = [data] if single else data
    if not rows:
        return ""
    if not all(isinstance(r, dict) for r in rows):
        # a list of scalars: one column named Result, as az does
        rows = [{"Result": r} for r in rows]
    picked = _own_columns(rows, columns, single) if own else None
    if picked:
        keys = picked
    elif columns:
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
    if not single and "error" in keys:  # one line each in a list; show NAME has it all
        i = keys.index("error")
        for row in cells:
            first = (row[i].splitlines() or [""])[0]
            row[i] = first if len(first) <= 60 else first[:59] + "…"
    headers = [HEADERS.get(k, _header(k).replace("_", " ")) if own else _header(k) for k in keys]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    if own and single and sum(widths) + 2 * (len(widths) - 1) > WIDTH:
        return _vertical(keys, headers, cells[0])
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)
