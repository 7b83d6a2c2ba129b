"""Rollout: one endpoint's progressive rollout (issue 14), as the control plane drives it.

What it shows: the state (a word, never cut), the phase (``step 3/5 (25%)``, ``mirror``),
the step ladder with the current step marked, the traffic now, the last check (treatment
against control over the same window: requests, error %, p95; the verdict and its reason),
the thresholds, why it is paused or failed, who started it and which control plane drives it.

Keys: ``n`` start one (a form checked with ``services.api.rollouts``' rules before anything is
sent), ``p`` pause, ``r`` resume, ``P`` promote now and ``a`` abort (both asked first), each
sent with the rollout's revision as read. The control plane runs the rollout: this screen
only reads it (woken by the workspace's watch, as every view, and polled slowly) and sends
the operator's actions.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from ...services.api import rollouts
from ...services.api.domain import Deployment, Endpoint
from ...services.api.rollouts import Rollout, RolloutCheck, RolloutState
from .. import glyphs
from ..css import css_path
from ..format import alarm, fmt_float
from ..widgets.bars import TrafficBar
from .base import ModeldeckScreen
from .dialogs import ConfirmScreen

#: each state's style when colour is available (the word itself always says it)
STATE_STYLES = {
    RolloutState.RUNNING: "bold cyan",
    RolloutState.PAUSED: "bold yellow",
    RolloutState.SUCCEEDED: "bold green",
    RolloutState.ABORTED: "bold yellow",
}


def clock(at: float | None) -> str:
    """``14:03:07Z`` (UTC): fixed data draws the same everywhere (no "ago")."""
    return glyphs.current().dash if at is None else time.strftime("%H:%M:%SZ", time.gmtime(at))


def state_text(state: RolloutState) -> Text:
    word = f"{glyphs.current().warn} {state.value}" if state is RolloutState.FAILED else state.value
    style = alarm() if state is RolloutState.FAILED else STATE_STYLES.get(state, "bold")
    return Text(word, style="bold reverse" if glyphs.current().mono else style)


def ladder(rollout: Rollout) -> Text:
    """``mirror → 5% ✓ → 10% ✓ → ▸25% → 50% → 100%``: the current step marked by shape (and
    reversed), the ones passed ticked, the one a failed or aborted rollout stopped at crossed."""
    g = glyphs.current()
    spec = rollout.spec
    done_state = rollout.state is RolloutState.SUCCEEDED
    text = Text()
    parts: list[tuple[str, str]] = []
    if spec.mirror_first_s > 0 or rollout.step < 0:
        current = rollout.step < 0 and not done_state
        parts.append(("mirror", "current" if current else "done"))
    for i, pct in enumerate(spec.steps):
        if done_state or i < rollout.step:
            parts.append((f"{pct}%", "done"))
        elif i == rollout.step:
            parts.append((f"{pct}%", "current"))
        else:
            parts.append((f"{pct}%", "next"))
    for i, (label, where) in enumerate(parts):
        if i:
            text.append(f" {g.arrow} ", style="dim")
        if where == "current" and rollout.state in (RolloutState.FAILED, RolloutState.ABORTED):
            text.append(f"{label} {g.bad}", style=alarm())  # where it stopped
        elif where == "current":
            text.append(f"{g.focus}{label}", style="bold reverse")
        elif where == "done":
            text.append(f"{label} {g.ok}", style="green")
        else:
            text.append(label, style="dim")
    return text


def _rate(rate: float | None) -> str:
    return fmt_float(rate, ".1f") + ("%" if rate is not None else "")


def _ms(value: float | None) -> str:
    return glyphs.current().dash if value is None else f"{value:.0f} ms"


def check_text(rollout: Rollout) -> Text:
    """The last analysis: a line per side (requests, errors, p95 over the window), the
    verdict and its reason in the runner's words."""
    check: RolloutCheck | None = rollout.last_check
    text = Text()
    if check is None:
        text.append("last check ", style="bold")
        text.append("none yet (the first comes at the end of the step's interval)", style="dim")
        return text
    verdict_style = {"pass": "bold green", "fail": alarm(), "wait": "bold yellow"}
    text.append("last check ", style="bold")
    text.append(f"at {clock(check.at)}, over {rollouts.duration_text(check.window_s)}: ")
    text.append(check.verdict, style=verdict_style.get(check.verdict, "bold"))
    width = max(len(rollout.treatment), len(rollout.control), 7) + 12
    text.append(f"\n  {'':<{width}} {'requests':>8} {'errors':>7} {'p95':>8}", style="dim")
    for name, role, requests, rate, p95 in (
        (
            rollout.treatment,
            "treatment",
            check.treatment_requests,
            check.treatment_error_rate,
            check.treatment_p95_ms,
        ),
        (
            rollout.control,
            "control",
            check.control_requests,
            check.control_error_rate,
            check.control_p95_ms,
        ),
    ):
        label = f"{name} ({role})"
        text.append(f"\n  {label:<{width}} {requests:>8} {_rate(rate):>7} {_ms(p95):>8}")
    if check.reason:
        text.append("\n  ")
        text.append(check.reason, style=alarm() if check.verdict == "fail" else "")
    return text


def thresholds_text(rollout: Rollout) -> Text:
    spec = rollout.spec
    text = Text()
    text.append("thresholds ", style="bold")
    text.append(
        f"errors at most {spec.max_error_rate:g} pt above the control   "
        f"p95 at most {spec.max_p95_ratio:g}{glyphs.current().times} the control's   "
        f"at least {spec.min_requests} requests   every {rollouts.duration_text(spec.interval_s)}"
    )
    if spec.mirror_first_s:
        text.append(f"   mirror first {rollouts.duration_text(spec.mirror_first_s)}")
    if spec.webhook:
        shown = rollouts.redact_url(spec.webhook).replace("…", glyphs.current().ellipsis)
        text.append(f"   webhook {shown}")
    return text


def summary_text(rollout: Rollout) -> Text:
    """The heading: what moves where, its state and phase, and when."""
    text = Text()
    text.append("rollout of ", style="bold")
    text.append(rollout.treatment, style="bold")
    text.append(f" from {rollout.control} on {rollout.spec.endpoint}\n")
    text.append("state ", style="bold")
    text.append_text(state_text(rollout.state))
    text.append("   ")
    text.append(rollout.phase, style="bold")
    text.append(f"   started {clock(rollout.started_at)}")
    if rollout.finished_at is not None:
        text.append(f"   ended {clock(rollout.finished_at)}")
    elif rollout.state is RolloutState.RUNNING:
        text.append(f"   step since {clock(rollout.step_started_at)}")
    return text


def who_text(rollout: Rollout) -> Text:
    text = Text()
    text.append("started by ", style="dim")
    text.append(rollout.started_by or glyphs.current().dash)
    text.append("   driven by ", style="dim")
    text.append(rollout.driven_by or glyphs.current().dash)
    return text


class RolloutScreen(ModeldeckScreen):
    CSS_PATH = css_path("views.tcss")
    VIEW_NAME = "Rollout"
    POLL_INTERVAL = 3.0  # woken at once by the watch; this is for back ends without one
    MUTATING = frozenset({"start", "pause", "resume", "promote", "abort"})
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("n", "start", "Start"),
        Binding("p", "pause", "Pause"),
        Binding("r", "resume", "Resume"),
        Binding("P", "promote", "Promote", key_display="P"),  # asks first
        Binding("a", "abort", "Abort"),
    ]

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.endpoint_name = endpoint
        self.rollout: Rollout | None = None
        self.endpoint: Endpoint | None = None
        self.deployments: list[Deployment] = []

    def title_text(self) -> str:
        return f"Rollout {self.endpoint_name}"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="rollout-body"):
            yield Static("", id="rollout-summary")
            yield Static("", id="rollout-ladder")
            yield Static("", id="rollout-traffic-label")
            yield TrafficBar(id="rollout-traffic")
            yield Static("", id="rollout-message")
            yield Static("", id="rollout-check")
            yield Static("", id="rollout-thresholds")
            yield Static("", id="rollout-who")

    # -- data ------------------------------------------------------------------------------
    async def fetch(self) -> tuple[Rollout | None, Endpoint, list[Deployment]]:
        ws = self.workspace
        rollout, endpoint, deployments = await asyncio.gather(
            ws.get_rollout(self.endpoint_name),
            ws.get_endpoint(self.endpoint_name),
            ws.list_deployments(self.endpoint_name),
        )
        return rollout, endpoint, deployments

    def show(self, data: tuple[Any, ...]) -> None:
        """``(rollout or None, endpoint, deployments)``."""
        rollout, endpoint, deployments = data
        self.rollout, self.endpoint, self.deployments = rollout, endpoint, list(deployments)
        if rollout is not None:
            self.mdapp.rollout_toasts.seen(rollout)
        self._draw()
        self.refresh_bindings()

    def _draw(self) -> None:
        rollout, endpoint = self.rollout, self.endpoint
        g = glyphs.current()
        traffic = endpoint.traffic if endpoint is not None else {}
        label = Text.assemble(("traffic now ", "bold"))
        live = "  ".join(f"{k} {v}%" for k, v in sorted(traffic.items()) if v) or g.dash
        label.append(live)
        mirror = endpoint.mirror_traffic if endpoint is not None else {}
        if any(mirror.values()):
            label.append("   mirror ")
            label.append(" ".join(f"{g.arrow}{k} {v}%" for k, v in mirror.items() if v))
        self.query_one("#rollout-traffic-label", Static).update(label)
        self.query_one("#rollout-traffic", TrafficBar).set_traffic(traffic)
        parts = {
            "#rollout-summary": Text(),
            "#rollout-ladder": Text(),
            "#rollout-message": Text(),
            "#rollout-check": Text(),
            "#rollout-thresholds": Text(),
            "#rollout-who": Text(),
        }
        if rollout is None:
            hint = "" if self.mdapp.readonly else ": n starts one"
            parts["#rollout-summary"] = Text(
                f"no rollout on {self.endpoint_name} yet{hint}", style="dim"
            )
        else:
            parts["#rollout-summary"] = summary_text(rollout)
            parts["#rollout-ladder"] = Text.assemble(("steps ", "bold"), ladder(rollout))
            if rollout.message:
                failed = rollout.state is RolloutState.FAILED
                why = Text.assemble(("why ", "bold"))
                why.append(rollout.message, style=alarm() if failed else "yellow")
                parts["#rollout-message"] = why
            parts["#rollout-check"] = check_text(rollout)
            parts["#rollout-thresholds"] = thresholds_text(rollout)
            parts["#rollout-who"] = who_text(rollout)
        for selector, text in parts.items():
            box = self.query_one(selector, Static)
            box.update(text)
            box.display = bool(text.plain)

    # -- keys ------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.rollout.state if self.rollout is not None else None
        if action == "pause" and state is not RolloutState.RUNNING:
            return False
        if action == "resume" and state is not RolloutState.PAUSED:
            return False
        if action in ("promote", "abort") and not (state and state.active):
            return False
        if action == "start" and state is not None and state.active:
            return False
        return super().check_action(action, parameters)

    def action_start(self) -> None:
        if not self.mdapp.allow_mutation("start a rollout"):
            return
        if self.endpoint is None:
            self.notify("the endpoint is not read yet", severity="warning")
            return
        from .forms import rollout_form

        def start(spec: rollouts.RolloutSpec) -> None:
            # the profile's rollout_webhook when the form names none, as the CLI does
            from ...services.usecases.rollouts import start as start_rollout

            self.mdapp.run_call(
                f"rollout of {spec.to} on {spec.endpoint}",
                lambda: start_rollout(self.workspace, spec),
                self._took,
            )

        self.on_answer(rollout_form(self.endpoint, self.deployments), start)

    def _took(self, rollout: Any) -> None:
        if isinstance(rollout, Rollout) and self.is_attached:
            self.rollout = rollout
            self.mdapp.rollout_toasts.seen(rollout)
            self._draw()
            self.refresh_bindings()

    def _control(self, action: str) -> None:
        rollout = self.rollout
        if rollout is None or not self.mdapp.allow_mutation(f"{action} the rollout"):
            return
        self.mdapp.run_call(
            f"{action} rollout of {rollout.treatment} on {self.endpoint_name}",
            # with the revision drawn: refused (saying what it is now) once its state, step
            # or traffic moved; its figures coming in do not move it
            lambda: self.workspace.control_rollout(
                rollout.spec.endpoint, action, if_revision=rollout.revision
            ),
            self._took,
        )

    def action_pause(self) -> None:
        self._control("pause")

    def action_resume(self) -> None:
        self._control("resume")

    def action_promote(self) -> None:
        rollout = self.rollout
        if rollout is None:
            return
        self.on_answer(
            ConfirmScreen(
                f"Promote {rollout.treatment} now?",
                f"{rollout.treatment} gets 100% of {self.endpoint_name}'s traffic at once, "
                f"without the steps left ({rollout.phase} now); {rollout.control} gets none.",
                "Promote",
            ),
            lambda _: self._control("promote"),
        )

    def action_abort(self) -> None:
        rollout = self.rollout
        if rollout is None:
            return
        self.on_answer(
            ConfirmScreen(
                f"Abort the rollout of {rollout.treatment}?",
                f"All of {self.endpoint_name}'s traffic goes back to {rollout.control} now "
                f"({rollout.treatment} has {rollout.weight}%); the rollout ends Aborted.",
                "Abort",
            ),
            lambda _: self._control("abort"),
        )


# -- the Traffic screen's part: a manual change pauses a running rollout --------------------
async def rollout_now(workspace: Any, endpoint: str) -> Rollout | None:
    """The endpoint's rollout while in progress (Running or Paused), else None (none, ended,
    or a back end without rollouts: the Traffic screen reads it beside the endpoint and must
    not fail for it)."""
    try:
        rollout = await workspace.get_rollout(endpoint)
    except asyncio.CancelledError:
        raise
    except Exception:
        return None
    return rollout if rollout is not None and rollout.state.active else None


def running_notice(rollout: Rollout | None) -> Text:
    """Above the sliders: ``rollout of green running, step 2/5 (10%): applying pauses it``;
    a paused one says it holds (the operator's change may be what paused it)."""
    if rollout is None:
        return Text()
    state = rollout.state.value.lower()
    text = Text.assemble(
        (f"rollout of {rollout.treatment} {state}, {rollout.phase}", "bold yellow")
    )
    if rollout.state is RolloutState.RUNNING:
        text.append(": applying pauses it (R: the rollout)", style="yellow")
    else:
        text.append(": it holds until resumed or aborted (R: the rollout)", style="yellow")
    return text


def pausing_dialog(rollout: Rollout | None, endpoint: str) -> ConfirmScreen | None:
    """Asked before a manual traffic change while a rollout runs (None: none runs): the
    operator wins, and the rollout pauses where it is (the control plane sees the change)."""
    if rollout is None or rollout.state is not RolloutState.RUNNING:
        return None
    return ConfirmScreen(
        "Apply, and pause the rollout?",
        f"A rollout of {rollout.treatment} is running on {endpoint} ({rollout.phase}). "
        "Applying this change pauses it: it holds the traffic you set until resumed "
        "(R, then r) or aborted.",
        "Apply and pause",
    )
