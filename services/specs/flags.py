"""Values of command-line flags that are not YAML: ``--tag k=v``, ``--purpose``,
``--traffic "blue=90 green=10"``/``--rest NAME`` and ``--mirror-traffic``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from ..api import validation
from ..api.domain import ClusterPurpose
from ..api.errors import InvalidInput


def parse_tags(items: Iterable[str], flag: str = "--tag") -> dict[str, str]:
    """``--tag k=v`` items (also ``k``, an empty value, as az takes it)."""
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key.strip():
            raise InvalidInput(flag, item, "must be KEY=VALUE", f"for example {flag} team=demo")
        out[key.strip()] = value
    return out


def parse_purpose(value: str) -> ClusterPurpose:
    try:
        return ClusterPurpose.parse(value.replace("_", ""))  # type: ignore[return-value]
    except ValueError:
        raise InvalidInput(
            "purpose", value, "must be FastProd or DevTest", "pass --purpose FastProd"
        ) from None


def traffic_from_flags(
    traffic: str | None, rest: str | None, deployments: Sequence[str]
) -> dict[str, int] | None:
    """``--traffic "blue=90 green=10"`` and ``--rest NAME``: a full, valid map, or None.

    Deployments left out of ``--traffic`` get 0 (the map is what the operator wrote);
    with ``--rest`` that deployment takes the remainder (the seed's default version).
    """
    if traffic is None and rest is None:
        return None
    if traffic is not None and not traffic.strip() and rest is None:
        # an unset shell variable (--traffic "$SPLIT") must not silently stop all traffic
        raise InvalidInput(
            "--traffic",
            traffic,
            "is empty",
            'give the split, e.g. --traffic "blue=90 green=10"; to stop all traffic, set each '
            'deployment to 0, e.g. --traffic "blue=0 green=0"',
        )
    given = _with_fix(
        lambda: validation.parse_traffic(traffic or ""), 'for example --traffic "blue=90 green=10"'
    )
    for dep in given:
        if dep not in deployments:
            validation.traffic(given, deployments)  # raises, naming the unknown deployment
    if rest is not None:
        return validation.fill_rest(given, rest, deployments)
    full = {d: 0 for d in deployments}
    full.update(given)
    return validation.traffic(full, deployments)


def _with_fix(call: Callable[[], dict[str, int]], fix: str) -> dict[str, int]:
    try:
        return call()
    except InvalidInput as exc:
        if exc.fix:
            raise
        raise InvalidInput(exc.field, exc.value, exc.rule, fix, message=exc.message) from None


def mirror_from_flag(
    mirror: str, live: Mapping[str, int], deployments: Sequence[str]
) -> dict[str, int]:
    given = _with_fix(
        lambda: validation.parse_traffic(mirror, "mirror_traffic"),
        'for example --mirror-traffic "green=10"',
    )
    return validation.mirror_traffic(given, live, deployments)
