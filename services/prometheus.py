"""Prometheus text exposition (format 0.0.4): writing it and reading it back.

Written by the gateway (``GET /metrics``: per-deployment counters, see
``local/dataplane/metrics.py``) and by what it gathers from its providers (the pool
driver's replica CPU and memory, the connection guard's counts); read by the Kubernetes
driver, which scrapes its pods (``drivers/kubernetes/metrics.py``).

The scoring host (``scoring/host.py``) writes the same families in the pods, with code
of its own: it is one standard-library file shipped alone into a deployment's Python, so
it imports nothing of modeldeck's. Its ``Stats.text`` is the one other writer.

Our own few lines rather than ``prometheus-client``: the families are written from
counters the gateway already keeps (a registry of collectors would hold them twice), the
output must stay byte for byte what dashboards and tests read (the client formats
floats and orders samples its own way), and the scoring host could not use it anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

#: the ``Content-Type`` of an exposition
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def escape(value: str) -> str:
    """A label value as the text format quotes it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(**values: str) -> str:
    """``name="value",...`` (escaped, in the order given), to go between braces."""
    return ",".join(f'{name}="{escape(str(value))}"' for name, value in values.items())


def family(name: str, kind: str, text: str) -> list[str]:
    """A family's ``# HELP`` and ``# TYPE`` lines."""
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


def merge_families(lines: Iterable[str]) -> list[str]:
    """One group per metric family: several pools provide the same families, and the text
    format allows one HELP and one TYPE per name, with all its samples together."""
    order: list[str] = []
    meta: dict[str, dict[str, str]] = {}
    samples: dict[str, list[str]] = {}
    for line in lines:
        if line.startswith(("# HELP ", "# TYPE ")):
            parts = line.split(" ", 3)
            if len(parts) < 3:
                continue
            name = parts[2]
            meta.setdefault(name, {}).setdefault(parts[1], line)
        elif line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            samples.setdefault(name, []).append(line)
        else:
            continue
        if name not in order:
            order.append(name)
    out: list[str] = []
    for name in order:
        kinds = meta.get(name, {})
        out += [kinds[k] for k in ("HELP", "TYPE") if k in kinds]
        out += samples.get(name, [])
    return out


def parse_samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """Each sample of an exposition: ``(name, labels, value)``; comments, blank lines and
    lines that are not samples are skipped."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        yield m.group(1), dict(_LABEL.findall(m.group(3) or "")), value
