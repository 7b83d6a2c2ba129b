"""Traffic sliders: stage a new split, see it as a diff against the live map, apply it at once.

* one slider per deployment (at most 6); left/right 1%, shift+left/right 10%, mouse drag;
* "default takes the rest" (the seed's default version): the chosen default moves so
  the total stays 100 (``validation.fill_rest``);
* Apply sends the full map in one ``update_endpoint(EndpointPatch(traffic=...))`` call, with the revision
  of the endpoint the map was staged from; Escape discards;
* mark one deployment as control; a mirror slider capped at 50%;
* when someone else changed the endpoint since (Conflict), a notice says who and what, with
  the new live map: ``b`` re-stages the operator's own edits on it (rebase), ``x`` drops them;
* health (``services.api.health``): each slider shows its deployment's READY x/y, error
  rate and p95 now, or what is wrong with it; the screen says Degraded, and why, while
  traffic goes to a deployment not ready or failing; Apply asks first when the map gives
  such a deployment more traffic, naming READY x/y and its last error (no answer, no change).
"""

from __future__ import annotations

import asyncio
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from ...services.api import health, validation
from ...services.api.domain import (
    Deployment,
    Endpoint,
    EndpointPatch,
)
from ...services.api.errors import Conflict, InvalidInput, ModeldeckError
from ...services.api.rollouts import Rollout
from .. import glyphs
from ..css import css_path
from ..format import degraded_text, describe_error, health_figures
from ..widgets.bars import TrafficBar
from ..widgets.traffic_slider import TrafficSlider
from .base import ModeldeckScreen
from .rollout import pausing_dialog, rollout_now, running_notice
from .traffic_conflict import ConflictRoom, StagedEdits


class TrafficScreen(ConflictRoom, ModeldeckScreen):
    CSS_PATH = css_path("views.tcss")
    VIEW_NAME = "Traffic"
    MUTATING = frozenset(
        {"apply", "toggle_rest", "set_default", "set_control", "mirror_target", "rebase"}
    )
    BINDINGS = [
        Binding("enter", "apply", "Apply"),
        Binding("escape", "discard", "Discard"),
        # shown once an apply was refused because someone else changed the endpoint
        Binding("b", "rebase", "Rebase my edits on live"),
        Binding("x", "drop_edits", "Drop my edits"),
        Binding("r", "toggle_rest", "Default takes rest"),
        Binding("d", "set_default", "Set default"),
        Binding("c", "set_control", "Control"),
        Binding("o", "mirror_target", "Mirror to"),
        Binding("R", "rollout", "Rollout", show=False, key_display="R"),  # ? and ctrl+p list it
        Binding("up", "app.focus_previous", "Prev", show=False),
        Binding("down", "app.focus_next", "Next", show=False),
    ]

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.endpoint_name = endpoint
        self.endpoint: Endpoint | None = None
        self.deployments: list[Deployment] = []
        #: deployment -> its health (``services.api.health``), as last read
        self.healths: dict[str, health.DeploymentHealth] = {}
        self.rollout: Rollout | None = None  # in progress here (applying pauses a running one)
        self.deployment_names: list[str] = []
        self.live: dict[str, int] = {}
        self.staged: dict[str, int] = {}
        self.live_mirror: tuple[str | None, int] = (None, 0)
        self.mirror_target: str | None = None
        self.live_control: str | None = None
        self.control: str | None = None
        self.rest_mode = False
        self.default: str | None = None
        self.applying = False
        # what the staged map was staged from: the live state then, and its revision
        self.base_revision = ""
        self.base_live: dict[str, int] = {}
        self.base_mirror: tuple[str | None, int] = (None, 0)
        self.base_control: str | None = None
        #: the refusal of the last apply (someone else changed the endpoint), until resolved
        self.conflict: Conflict | None = None
        self._conflict_edits = StagedEdits({})

    def title_text(self) -> str:
        return f"Traffic {self.endpoint_name}"

    def compose_body(self) -> ComposeResult:
        yield Static("", id="traffic-live")
        yield TrafficBar(id="traffic-live-bar")
        yield Static("", id="traffic-health")
        yield Static("", id="traffic-rollout")  # a rollout runs: applying pauses it
        yield Vertical(id="sliders")
        yield Static("", id="traffic-conflict")
        yield Static("", id="traffic-summary")
        yield Static(self._hint(), id="traffic-hint")

    def _hint(self) -> str:
        if self.mdapp.readonly:  # nothing can be staged: no key to stage or apply is offered
            return "[dim]read-only: the split is shown, it cannot be changed here   Esc back[/]"
        g = glyphs.current()
        lr = g.left_right
        return (
            f"[dim]{lr} 1%  shift+{lr} 10%  {g.up_down} next  Enter apply  Esc discard\n"
            "d default [b]*[/b]  r default takes rest  c control [b]C[/b]  o mirror target[/]"
        )

    # -- data ------------------------------------------------------------------------------
    async def fetch(self) -> tuple[Any, ...]:
        read, rollout = await asyncio.gather(
            health.read_endpoint(self.workspace, self.endpoint_name),
            rollout_now(self.workspace, self.endpoint_name),
        )
        return (*read, rollout)

    @property
    def dirty(self) -> bool:
        return (
            self.staged != self.live
            or (self.mirror_target, self._mirror_value()) != self.live_mirror
            or self.control != self.live_control
        )

    def show(self, data: tuple[Any, ...]) -> None:
        """``(endpoint, deployments, metric samples or None, running rollout or None)``; the
        samples and the rollout may be left out."""
        endpoint, deployments, *rest = data
        was_dirty = self.loaded and self.dirty
        self.endpoint = endpoint
        self.deployments = list(deployments)
        names = sorted(d.name for d in deployments)
        self.live = {n: int(endpoint.traffic.get(n, 0)) for n in names}
        mirror = [(k, v) for k, v in endpoint.mirror_traffic.items() if v]
        self.live_mirror = (mirror[0][0], int(mirror[0][1])) if mirror else (None, 0)
        self.live_control = endpoint.control
        rebuild = names != self.deployment_names
        self.deployment_names = names
        if not was_dirty or rebuild:
            self.staged = dict(self.live)
            self.mirror_target = self.live_mirror[0]
            self.control = self.live_control
            self._rebase_on(endpoint)
            if self.default not in names:
                self.default = max(self.live, key=lambda n: self.live[n]) if self.live else None
        self.query_one("#traffic-live", Static).update(f"[b]live[/] on [b]{endpoint.name}[/]:")
        self.query_one("#traffic-live-bar", TrafficBar).set_traffic(endpoint.traffic)
        if rebuild:
            self._build_sliders()
        self._show_health(health.endpoint_health(endpoint, deployments, rest[0] if rest else None))
        self.rollout = rest[1] if len(rest) > 1 else None
        notice = self.query_one("#traffic-rollout", Static)
        notice.update(text := running_notice(self.rollout))
        notice.display = bool(text.plain)
        self._sync_sliders()
        self._show_conflict()

    def _show_health(self, healths: list[health.DeploymentHealth]) -> None:
        """Degraded, in words, with why, while live or mirrored traffic goes to a deployment
        not ready or failing; each slider says its deployment's READY x/y, error rate and
        p95 now, or what is wrong with it."""
        box = self.query_one("#traffic-health", Static)
        text = degraded_text(healths)
        box.update(text)
        box.display = bool(text.plain)
        self.healths = {h.name: h for h in healths}

    def _rebase_on(self, endpoint: Endpoint) -> None:
        """What is staged from now on is staged from this state of the endpoint."""
        self.base_revision = endpoint.revision
        self.base_live = dict(self.live)
        self.base_mirror = self.live_mirror
        self.base_control = self.live_control

    def _mirror_value(self) -> int:
        if not self.is_mounted:
            return 0
        sliders = self.query("#mirror-slider")
        return sliders.first(TrafficSlider).value if sliders else self.live_mirror[1]

    def _build_sliders(self) -> None:
        box = self.query_one("#sliders", Vertical)
        box.remove_children()
        if not self.deployment_names:
            box.mount(Static("[dim]no deployments on this endpoint yet: create one first[/]"))
            return
        sliders: list[TrafficSlider] = [
            TrafficSlider(n, self.staged.get(n, 0), live=self.live.get(n, 0), id=f"slider-{n}")
            for n in self.deployment_names
        ]
        mirror = TrafficSlider(
            self.mirror_target or "",
            self.live_mirror[1],
            live=self.live_mirror[1],
            maximum=validation.MAX_MIRROR_PERCENT,
            label=self._mirror_label(),
            id="mirror-slider",
        )
        for slider in (*sliders, mirror):  # the names align, as long as the width allows
            slider.names_width = max(len(n) for n in self.deployment_names) + 1
        box.mount_all(
            [
                *sliders,
                Static("[b]mirror[/] (a copy of live requests, answers ignored; max 50%)"),
                mirror,
            ]
        )
        sliders[0].focus()

    def _mirror_label(self) -> str:
        to = glyphs.current().arrow
        return f"{to}{self.mirror_target}" if self.mirror_target else f"{to}(none: o)"

    def _sync_sliders(self) -> None:
        for name in self.deployment_names:
            found = self.query(f"#slider-{name}")
            if not found:
                continue
            slider = found.first(TrafficSlider)
            slider.live = self.live.get(name, 0)
            slider.value = self.staged.get(name, 0)
            slider.is_default = self.rest_mode and name == self.default
            slider.locked = self.readonly_view or (self.rest_mode and name == self.default)
            slider.is_control = name == self.control
            h = self.healths.get(name)
            slider.problem = (h.problem or "") if h else ""
            slider.figures = health_figures(h) if h else ""
            slider.refresh()
        mirrors = self.query("#mirror-slider")
        if mirrors:
            m = mirrors.first(TrafficSlider)
            m.deployment = self.mirror_target or ""
            m.label = self._mirror_label()
            m.live = self.live_mirror[1] if self.mirror_target == self.live_mirror[0] else 0
            m.locked = self.readonly_view or self.mirror_target is None
            if self.mirror_target is None:
                m.value = 0
            m.refresh()
        self._update_summary()

    @property
    def readonly_view(self) -> bool:
        return self.mdapp.readonly

    def _update_summary(self) -> None:
        total = sum(self.staged.values())
        ok = total in (0, 100)
        text = Text()
        text.append("staged total ", style="bold")
        text.append(f"{total}%", style="bold green" if ok else "bold red")
        g = glyphs.current()
        text.append(
            f"  {g.ok}" if ok else f"  {g.bad} must be 100 (or all 0)",
            style="green" if ok else "red",
        )
        if self.rest_mode and self.default:
            text.append(f"   default takes the rest: {self.default}", style="yellow")
        g = glyphs.current()
        changes = [
            f"{n} {self.live.get(n, 0)}{g.arrow}{v}"
            for n, v in self.staged.items()
            if v != self.live.get(n, 0)
        ]
        mirror_now = (self.mirror_target, self._mirror_value() if self.mirror_target else 0)
        if mirror_now != self.live_mirror and (mirror_now[1] or self.live_mirror[1]):
            changes.append(
                f"mirror {self.live_mirror[0] or g.dash} {self.live_mirror[1]}{g.arrow}"
                f"{mirror_now[0] or g.dash} {mirror_now[1]}"
            )
        if self.control != self.live_control:
            changes.append(
                f"control {self.live_control or g.dash}{g.arrow}{self.control or g.dash}"
            )
        moved = self.endpoint is not None and self.endpoint.revision != self.base_revision
        if moved and self.dirty and self.conflict is None:
            text.append("\n")
            text.append("the live map changed since you staged: ", style="bold yellow")
            text.append("Enter will show what changed and let you rebase", style="yellow")
        text.append("\n")
        if changes:
            text.append("changes: ", style="bold")
            text.append(", ".join(changes), style="yellow")
            text.append("   Enter: apply  Esc: discard", style="dim")
        else:
            text.append("no changes", style="dim")
        self.query_one("#traffic-summary", Static).update(text)

    # -- staging ---------------------------------------------------------------------------
    def on_traffic_slider_changed(self, event: TrafficSlider.Changed) -> None:
        event.stop()
        slider = event.slider
        if slider.id == "mirror-slider":
            self._update_summary()
            return
        name = slider.deployment
        value = event.value
        if self.rest_mode and self.default and name != self.default:
            others = sum(v for n, v in self.staged.items() if n not in (name, self.default))
            value = min(value, 100 - others)
            given = {n: v for n, v in self.staged.items() if n != self.default}
            given[name] = value
            self.staged = validation.fill_rest(given, self.default, self.deployment_names)
        else:
            self.staged[name] = value
        self._sync_sliders()

    def action_toggle_rest(self) -> None:
        if not self.mdapp.allow_mutation("changing traffic"):
            return
        self.rest_mode = not self.rest_mode
        if self.rest_mode:
            if self.default is None and self.deployment_names:
                self.default = self.deployment_names[0]
            self._rebalance()
        self._sync_sliders()

    def _rebalance(self) -> None:
        if not self.default:
            return
        given = {n: v for n, v in self.staged.items() if n != self.default}
        while sum(given.values()) > 100:  # shrink the largest others until the default fits
            top = max(given, key=lambda n: given[n])
            given[top] -= sum(given.values()) - 100
            given[top] = max(0, given[top])
        self.staged = validation.fill_rest(given, self.default, self.deployment_names)

    def _focused_deployment(self) -> str | None:
        focused = self.focused
        if isinstance(focused, TrafficSlider) and focused.id != "mirror-slider":
            return focused.deployment
        return None

    def _deployment_to_mark(self) -> str | None:
        """The focused slider's deployment when traffic may change here; else a notice."""
        if not self.mdapp.allow_mutation("changing traffic"):
            return None
        name = self._focused_deployment()
        if name is None:
            self.notify("focus a deployment's slider first", severity="warning")
        return name

    def action_set_default(self) -> None:
        name = self._deployment_to_mark()
        if name is None:
            return
        self.default = name
        if self.rest_mode:
            self._rebalance()
        self._sync_sliders()

    def action_set_control(self) -> None:
        name = self._deployment_to_mark()
        if name is None:
            return
        self.control = None if self.control == name else name
        self._sync_sliders()

    def action_mirror_target(self) -> None:
        if not self.mdapp.allow_mutation("changing traffic"):
            return
        candidates = [n for n in self.deployment_names if self.staged.get(n, 0) == 0]
        if not candidates:
            self.notify(
                "a mirror goes to a deployment with 0% live traffic: set one to 0 first",
                severity="warning",
            )
            return
        order = [None, *candidates]
        index = order.index(self.mirror_target) if self.mirror_target in order else 0
        self.mirror_target = order[(index + 1) % len(order)]
        self._sync_sliders()

    # -- apply / discard -----------------------------------------------------------------
    def action_apply(self) -> None:
        if not self.mdapp.allow_mutation("apply traffic"):
            return
        if not self.dirty:
            self.notify("no staged changes to apply")
            return
        changes: dict[str, Any] = {}
        try:
            if self.staged != self.live:
                changes["traffic"] = validation.traffic(self.staged, self.deployment_names)
            mirror = (
                {self.mirror_target: self._mirror_value()}
                if self.mirror_target and self._mirror_value()
                else {}
            )
            live_mirror = {self.live_mirror[0]: self.live_mirror[1]} if self.live_mirror[0] else {}
            if mirror != live_mirror:
                target = next(iter(mirror), None)
                if target is not None and self.staged.get(target, 0) > 0:
                    raise InvalidInput(
                        f"mirror_traffic.{target}",
                        mirror[target],
                        f"'{target}' takes live traffic; a mirror must go to a deployment with 0% live traffic",
                        "set its live traffic to 0 first, or mirror to another deployment",
                    )
                changes["mirror_traffic"] = (
                    validation.mirror_traffic(mirror, self.staged, self.deployment_names)
                    if mirror
                    else {}
                )
            if self.control != self.live_control:
                # "" clears the mark (None would mean "leave it"), as --set control=none does
                changes["control"] = self.control or ""
        except InvalidInput as exc:
            self.notify(describe_error(exc), title="not applied", severity="error", timeout=10)
            return
        if not changes:
            self.notify("nothing to apply", severity="warning")
            return
        self._apply_checked(EndpointPatch(**changes))

    @work(group="apply-check", exclusive=True, exit_on_error=False)
    async def _apply_checked(self, patch: EndpointPatch) -> None:
        """Apply ``patch``, after asking when it gives a deployment that is not ready or
        failing more traffic (``health.traffic_risks_now``, as ``update --traffic`` without
        --force refuses it): the dialog names each one, READY x/y and its last error; no
        answer, no change."""
        if self.endpoint is None:
            return
        try:
            risks = await health.traffic_risks_now(
                self.workspace, self.endpoint, self.deployments, patch.traffic, patch.mirror_traffic
            )
        except ModeldeckError as exc:
            self.mdapp.show_error(exc)
            return
        self.unless_risky(
            risks, lambda: self._apply_now(patch), "traffic not applied: nothing was changed"
        )

    def _apply_now(self, patch: EndpointPatch) -> None:
        """Apply; while a rollout runs, once the operator read that applying pauses it."""
        dialog = pausing_dialog(self.rollout, self.endpoint_name)
        if dialog is None:
            self._start_apply(patch)
        else:
            self.on_answer(dialog, lambda _: self._start_apply(patch))

    def _start_apply(self, patch: EndpointPatch) -> None:
        name = self.endpoint_name
        summary = " ".join(f"{k}={v}" for k, v in sorted(self.staged.items()))
        revision = self.base_revision or None
        edits = self._edits()

        async def start() -> Any:
            try:
                return await self.workspace.update_endpoint(name, patch, if_revision=revision)
            except Conflict as exc:
                self.conflict = exc
                self._conflict_edits = edits
                raise

        def done(ok: bool) -> None:
            self.applying = False
            if ok:
                self.loaded = False  # take the new live map as the staged one
                self.conflict = None
                self._show_conflict()
                self.poll_now()
            elif self.conflict is not None:
                self.poll_now()  # the new live map, beside what is staged
                self._show_conflict()

        self.conflict = None
        self.applying = True
        self.mdapp.run_operation(f"traffic {name}: {summary}", start, done)

    def unsaved(self) -> str | None:
        if not (self.loaded and self.dirty) or self.applying:
            return None
        return (
            f"Traffic of '{self.endpoint_name}': a staged change is not applied (Enter applies it)."
        )

    def action_rollout(self) -> None:
        self.mdapp.open_rollout(self.endpoint_name)

    def action_discard(self) -> None:
        if self.dirty:
            self.notify("staged traffic changes discarded")
        self.app.pop_screen()
