"""The endpoint YAML's ``modeldeck`` extension block: a progressive rollout, declared.

```yaml
modeldeck:
  rollout: {to: green, from: blue, steps: [5,10,25,50,100], interval: 2m,
            max_error_rate: 1, max_p95_ratio: 1.3, min_requests: 200, mirror_first: 10m,
            webhook: https://hooks.example.com/x}
```

Read into a :class:`RolloutSpec` by the contract's rules (``services/api/rollouts.py``:
``validate_spec``), each error naming its file and line as the rest of the loader does. az
ml refuses a file with this block (azure-ai-ml's schemas raise on an unknown field: see
docs/yaml.md), so the block can also live in a file of its own, read by
:func:`load_rollout` (``online-endpoint rollout -f rollout.yml``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..api import rollouts
from ..api.errors import InvalidInput
from ..api.rollouts import RolloutSpec
from .document import Doc, at, doc_from_data, from_flag, invalid_at, read_yaml
from .schema import Key, Shape, read_mapping, renamed
from .setargs import Override, apply_overrides, set_paths

#: the keys of ``modeldeck:`` (room for more of modeldeck's own, later)
MODELDECK = Shape("modeldeck", (Key("rollout"),))

#: RolloutSpec's field for each key of ``modeldeck.rollout`` (the command's flags name them
#: alike: ``--max-error-rate``); an error's field names the key
_FIELDS = {
    "to": "to",
    "from": "from_",
    "steps": "steps",
    "interval": "interval_s",
    "max_error_rate": "max_error_rate",
    "max_p95_ratio": "max_p95_ratio",
    "min_requests": "min_requests",
    "mirror_first": "mirror_first_s",
    "webhook": "webhook",
}

#: the keys of ``modeldeck.rollout``
ROLLOUT = Shape("modeldeck.rollout", tuple(Key(k) for k in _FIELDS))


def block_of(spec: RolloutSpec) -> dict[str, Any]:
    """A spec's values under the block's keys (what :func:`spec_of` reads back)."""
    return {key: getattr(spec, name) for key, name in _FIELDS.items()}


def spec_of(endpoint: str, values: dict[str, Any]) -> RolloutSpec:
    """A spec of the raw values given (keys as the YAML and the flags name them; absent:
    the contract's defaults), checked by ``rollouts.validate_spec``: its errors name the key."""
    if values.get("to") is None:
        raise InvalidInput("to", None, "is required", "name the deployment to roll out: to: green")
    raw = {_FIELDS[k]: v for k, v in values.items() if v is not None}
    return rollouts.validate_spec(RolloutSpec(endpoint=endpoint, **raw))


def rollout_from_doc(doc: Doc, endpoint: str) -> RolloutSpec | None:
    """The ``modeldeck.rollout`` block of an endpoint document, or None without one; errors
    name the file and line of the key at fault (an unknown key, with the closest known)."""
    block = read_mapping(doc, doc.data, "modeldeck", ())
    MODELDECK.check(doc, block, ("modeldeck",))
    if block.get("rollout") is None:
        return None
    path = ("modeldeck", "rollout")
    values = read_mapping(doc, block, "rollout", ("modeldeck",))
    ROLLOUT.check(doc, values, path)
    try:
        return spec_of(endpoint, values)
    except InvalidInput as exc:
        key = exc.field if exc.field in values else None
        if key is None and exc.field == "endpoint":
            raise at(doc, ("name",), exc) from None
        return _raise_at(doc, path, key, exc)


def _raise_at(doc: Doc, path: tuple[str, ...], key: str | None, exc: InvalidInput) -> Any:
    if key is None:  # "to is required", or a rule of no one key: the block's line
        raise invalid_at(doc, path, exc.value, f"{exc.field} {exc.rule}", exc.fix or "") from None
    err = renamed(exc, ".".join((*path, key)))
    raise at(doc, (*path, key), err) from None


def read_rollout(
    path: str | Path | None, overrides: Iterable[Override] = (), *, name: str | None = None
) -> RolloutSpec | None:
    """The ``modeldeck.rollout`` block of the YAML file ``path`` (the endpoint's own, or a file
    that holds only the block and, optionally, ``name:``; None: ``--set`` alone), None
    without one; ``--set`` items applied and ``name`` (``--name``) winning, as the
    endpoint's loader does."""
    from .endpoint import ENDPOINT

    doc = read_yaml(path, "endpoint") if path is not None else doc_from_data({}, "--set")
    apply_overrides(doc, overrides)
    if name:
        from_flag(doc, "name", "--name", name)
    ENDPOINT.check(doc, doc.data)
    endpoint = doc.data.get("name")
    if endpoint is None:
        raise InvalidInput(
            "name",
            None,
            "is required",
            "pass --name, or write name: in the file",
            message=f"{doc.source}: the rollout needs its endpoint's name",
        )
    return rollout_from_doc(doc, str(endpoint))


def declared_rollout(
    path: str | Path | None, overrides: Iterable[Override], *, name: str
) -> RolloutSpec | None:
    """What ``online-endpoint update`` declares: the file's block with the ``--set`` items
    applied; without a file, only the items under ``modeldeck.`` (the others edit the
    endpoint as it is, which this does not read)."""
    if path is None:
        overrides = [o for o in overrides if set_paths([o])[0].split(".")[0] == "modeldeck"]
        if not overrides:
            return None
    return read_rollout(path, overrides, name=name)


def load_rollout(
    path: str | Path, overrides: Iterable[Override] = (), *, name: str | None = None
) -> RolloutSpec:
    """``online-endpoint rollout -f FILE``: :func:`read_rollout`, the block required."""
    spec = read_rollout(path, overrides, name=name)
    if spec is None:
        raise InvalidInput(
            "file",
            str(path),
            "has no modeldeck.rollout block",
            "write modeldeck: {rollout: {to: green}} in it (see docs/rollouts.md), or pass --to",
            message=f"{path}: no modeldeck.rollout block to start",
        )
    return spec
