"""``modeldeck online-endpoint rollout`` (modeldeck's own; az ml has none): start a
progressive rollout, show it, pause/resume/promote/abort it, ``--watch`` it.

The rollout runs in the control plane; this command only starts it, reads it and sends the
operator's actions. Every value is checked by the contract's rules
(``services/api/rollouts.py``) before anything is sent, each error naming its flag. The shape
printed (:func:`rollout_dict`) is also ``online-endpoint show``'s ``modeldeck.rollout``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from ..services.api.errors import Conflict, InvalidInput, ModeldeckError, NotFound
from ..services.api.rollouts import Rollout, RolloutCheck, RolloutSpec, RolloutState
from ..services.api.workspace import Workspace
from .common import confirm

#: the start flags, by the key the YAML block and ``specs.rollout.spec_of`` name them
START_FLAGS = {
    "to": "--to",
    "from": "--from",
    "steps": "--steps",
    "interval": "--interval",
    "max_error_rate": "--max-error-rate",
    "max_p95_ratio": "--max-p95-ratio",
    "min_requests": "--min-requests",
    "mirror_first": "--mirror-first",
    "webhook": "--webhook",
}
_ARGS = {k: k.replace("from", "from_") for k in START_FLAGS}  # argparse's dest of each flag


# --------------------------------------------------------------------------- what is printed


def rollout_dict(r: Rollout) -> dict[str, Any]:
    """A rollout as the commands print it: the endpoint, then the keys its webhook posts
    (``services/rollout/webhook.py``: one JSON view of a rollout), its last check under
    ``last_check``; the webhook's URL redacted (``rollouts.redact_url``)."""
    from ..services.rollout.webhook import payload

    body = payload(r, "show", r.last_check)
    return {"endpoint": r.spec.endpoint, **body["rollout"], "last_check": body["check"]}


async def show_key(ws: Workspace, endpoint: str) -> dict[str, Any]:
    """``online-endpoint show``'s ``modeldeck`` key: the endpoint's current or last rollout
    (None: never had one); a back end that cannot tell says why, beside it, and the endpoint
    is shown all the same."""
    try:
        found = await ws.get_rollout(endpoint)
    except ModeldeckError as exc:
        return {"rollout": None, "rollout_error": exc.message}
    return {"rollout": rollout_dict(found) if found is not None else None}


# --------------------------------------------------------------------------- reading the flags


def _number(raw: str | None, flag: str, example: str) -> float | None:
    if raw is None:
        return None
    try:
        return float(str(raw).strip().rstrip("%"))
    except ValueError:
        raise InvalidInput(flag, raw, "must be a number", f"write e.g. {flag} {example}") from None


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The start flags given, as the block's keys (absent: None)."""
    return {key: getattr(args, _ARGS[key], None) for key in START_FLAGS}


def spec_from_flags(args: argparse.Namespace, name: str, base: RolloutSpec | None) -> RolloutSpec:
    """The spec the flags (over ``-f``'s block, ``base``) ask for, checked: an error names
    the flag, the value, the rule and the fix; nothing has been sent."""
    from ..services.specs.rollout import block_of, spec_of
    from ..services.specs.schema import renamed

    values = block_of(base) if base is not None else {}  # the file's block: the flags win
    given = _given(args)
    given["max_error_rate"] = _number(given["max_error_rate"], "--max-error-rate", "1")
    given["max_p95_ratio"] = _number(given["max_p95_ratio"], "--max-p95-ratio", "1.3")
    values.update({k: v for k, v in given.items() if v is not None})
    try:
        return spec_of(name, values)
    except InvalidInput as exc:
        flag = {**START_FLAGS, "endpoint": "--name"}.get(exc.field)
        if flag is None:
            raise
        raise renamed(exc, flag) from None


def _mode(args: argparse.Namespace) -> str:
    """``start``, ``show`` or the action; start flags without --to (or -f) are refused."""
    starting = args.to is not None or args.file is not None
    if args.action is not None and starting:
        what = "--to" if args.to is not None else "-f/--file"
        raise InvalidInput(
            f"--{args.action}",
            None,
            f"acts on the rollout in progress; {what} starts a new one",
            f"give one of them: modeldeck online-endpoint rollout -n NAME --{args.action}",
        )
    if not starting:
        extra = [START_FLAGS[k] for k, v in _given(args).items() if v is not None]
        if extra:
            raise InvalidInput(
                extra[0],
                None,
                "is used only when a rollout starts",
                f"add --to DEPLOYMENT to start one with {', '.join(extra)}",
            )
    return "start" if starting else (args.action or "show")


# --------------------------------------------------------------------------- the command


async def rollout(args: argparse.Namespace, ws: Workspace) -> Any:
    from ..services.usecases import rollouts as usecase

    mode = _mode(args)
    base = None
    if args.file is not None:
        from ..services.specs.rollout import load_rollout

        base = load_rollout(args.file, name=args.name)
        args.name = base.endpoint
    if not args.name:
        raise InvalidInput(
            "--name",
            None,
            "is required",
            "name the endpoint: modeldeck online-endpoint rollout -n NAME",
        )
    name = args.name
    if mode == "start":
        spec = spec_from_flags(args, name, base)
        found = await usecase.start(ws, spec)
    elif mode == "show":
        found = await ws.get_rollout(name)
        if found is None:
            await ws.get_endpoint(name)  # an unknown endpoint is said as such
            raise NotFound(
                "rollout",
                name,
                message=f"endpoint '{name}' has had no rollout",
                fix=f"start one: modeldeck online-endpoint rollout -n {name} --to DEPLOYMENT",
            )
    else:
        if args.action in ("abort", "promote"):
            current = await ws.get_rollout(name)
            if current is None or not current.state.active:
                raise _not_active(name, current, args.action)
            confirm(args, _question(current, args.action))
        found = await ws.control_rollout(name, args.action)
    if not args.watch:
        return rollout_dict(found)
    return await watch(args, ws, found)


def _not_active(name: str, last: Rollout | None, action: str) -> ModeldeckError:
    """Nothing to abort or promote (checked before asking): what the control plane answers
    a pause or resume of an ended rollout, a Conflict."""
    if last is None:
        return NotFound(
            "rollout",
            name,
            message=f"endpoint '{name}' has had no rollout: nothing to {action}",
            fix=f"see it: modeldeck online-endpoint show -n {name}",
        )
    return Conflict(
        f"the rollout of {last.treatment} on '{name}' is {last.state.value}: nothing to {action}",
        fix=f"see it: modeldeck online-endpoint rollout -n {name}",
    )


def _question(r: Rollout, action: str) -> str:
    now = " ".join(f"{k}={v}" for k, v in r.traffic.items()) or f"{r.treatment} {r.weight}%"
    if action == "abort":
        return (
            f"The rollout of {r.treatment} on '{r.spec.endpoint}' ({r.phase}, now {now}) will "
            f"be aborted: all traffic goes back to {r.control} at once."
        )
    return (
        f"{r.treatment} will get all the traffic of '{r.spec.endpoint}' now (the rollout is at "
        f"{r.phase}, now {now}), without the analysis of the remaining steps."
    )


# --------------------------------------------------------------------------- --watch

#: the watch's columns with -o table (one row a change) and their widths; the last, the
#: check's figures and the message, takes what it needs
WATCH_COLUMNS = (("time", 20), ("state", 9), ("phase", 16), ("traffic", 20), ("verdict", 7))


def _key(r: Rollout) -> tuple[Any, ...]:
    check = r.last_check
    return (
        r.state,
        r.step,
        r.weight,
        r.message,
        tuple(sorted(r.traffic.items())),
        tuple(sorted(r.mirror_traffic.items())),
        None if check is None else (check.at, check.verdict),
    )


def _figures(r: Rollout, c: RolloutCheck) -> str:
    """``green 0.0% (0/212) p95 12ms vs blue 0.1% (1/1903) p95 11ms``."""
    out = []
    for who, reqs, errs, rate, p95 in (
        (r.treatment, c.treatment_requests, c.treatment_errors, c.treatment_error_rate,
         c.treatment_p95_ms),
        (r.control, c.control_requests, c.control_errors, c.control_error_rate,
         c.control_p95_ms),
    ):  # fmt: skip
        pct = "-" if rate is None else f"{rate:.1f}%"
        lat = "" if p95 is None else f" p95 {p95:.0f}ms"
        out.append(f"{who} {pct} ({errs}/{reqs}){lat}")
    return " vs ".join(out)


def watch_row(r: Rollout) -> dict[str, str]:
    """One change, in words: the check's figures, then the message unless it only repeats
    the check's reason."""
    c = r.last_check
    detail = [_figures(r, c)] if c is not None else []
    if r.message and (c is None or r.message != c.reason):
        detail.append(r.message)
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.updated_at)),
        "state": r.state.value,
        "phase": r.phase,
        "traffic": " ".join(f"{k}={v}" for k, v in r.traffic.items()),
        "verdict": c.verdict if c is not None else "",
        "detail": ": ".join(detail),
    }


def _line(args: argparse.Namespace, r: Rollout, first: bool) -> str:
    """One change as ``-o`` prints it: a JSON object on one line (JSON Lines), a YAML
    document, a tsv row, or a table row (its header before the first)."""
    from .output import apply_query, render

    if args.output == "table" and not args.query:
        row = watch_row(r)
        text = "  ".join([*(row[k].ljust(w) for k, w in WATCH_COLUMNS), row["detail"]])
        if first:
            head = "  ".join([*(k.capitalize().ljust(w) for k, w in WATCH_COLUMNS), "Check"])
            text = head.rstrip() + "\n" + text
        return text.rstrip()
    if args.output in ("json", "jsonc"):
        import json

        picked = apply_query(rollout_dict(r), args.query)
        return "" if picked is None else json.dumps(picked, ensure_ascii=False, default=str)
    text = render(rollout_dict(r), args.output, args.query)
    if args.output in ("yaml", "yamlc") and text:
        return "---\n" + text
    return text


def _poll_s(r: Rollout) -> float:
    """How often the watch reads the rollout: a tenth of its interval, within 0.2-2 s."""
    return max(0.2, min(2.0, r.spec.interval_s / 10))


async def watch(args: argparse.Namespace, ws: Workspace, r: Rollout) -> int:
    """Print each change of the rollout until it ends; exit 0 when it Succeeded, else the
    reason on stderr and exit 1 (Failed, Aborted). A Paused rollout is watched on: an operator
    resumes, promotes or aborts it. Ctrl-C stops the watch, not the rollout."""
    last: tuple[Any, ...] | None = None
    first = True
    while True:
        key = _key(r)
        if key != last:
            last = key
            text = _line(args, r, first)
            first = False
            if text:
                sys.stdout.write(text + "\n")
                sys.stdout.flush()
        if not r.state.active:
            break
        await asyncio.sleep(_poll_s(r))
        r = await ws.get_rollout(args.name) or r
    if r.state is RolloutState.SUCCEEDED:
        return 0
    message = r.message.removeprefix(f"{r.state.value.lower()}: ")  # 'Aborted: aborted: ...'
    reason = f": {message}" if message else ""
    sys.stderr.write(
        f"ERROR: the rollout of {r.treatment} on '{r.spec.endpoint}' {r.state.value}{reason}\n"
        f"  fix: see what changed: modeldeck online-endpoint history -n {r.spec.endpoint}\n"
    )
    return 1
