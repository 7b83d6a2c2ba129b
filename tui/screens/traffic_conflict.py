"""Traffic's room for an apply refused because someone else changed the endpoint (a
``Conflict``): the notice saying who and what, with the live map now; ``b`` stages the
operator's own edits again on that live map (rebase), ``x`` drops them. A mixin of
:class:`~.traffic.TrafficScreen`, whose state it shares (the attributes listed below)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.widgets import Static

from ...services.api import revisions, validation
from ...services.api.domain import Endpoint
from ...services.api.errors import Conflict
from .. import glyphs
from ..widgets.traffic_slider import TrafficSlider


@dataclass(frozen=True)
class StagedEdits:
    """The operator's own edits: what differs from the live state they were staged on."""

    traffic: dict[str, int]
    mirror: tuple[str | None, int] | None = None  # None: the mirror was not edited
    control_edited: bool = False
    control: str | None = None


class ConflictRoom:
    """The refused apply's notice, rebase and drop (TrafficScreen's state)."""

    endpoint: Endpoint | None
    deployment_names: list[str]
    live: dict[str, int]
    staged: dict[str, int]
    live_mirror: tuple[str | None, int]
    mirror_target: str | None
    live_control: str | None
    control: str | None
    rest_mode: bool
    default: str | None
    base_live: dict[str, int]
    base_mirror: tuple[str | None, int]
    base_control: str | None
    #: the refusal of the last apply (someone else changed the endpoint), until resolved
    conflict: Conflict | None
    _conflict_edits: StagedEdits
    mdapp: Any
    query: Any
    query_one: Any
    notify: Any
    refresh_bindings: Any
    _mirror_value: Any
    _rebase_on: Any
    _sync_sliders: Any
    _update_summary: Any

    def _edits(self) -> StagedEdits:
        mirror = (self.mirror_target, self._mirror_value() if self.mirror_target else 0)
        # with "default takes the rest", the default's number follows the others: not an edit
        rest = self.default if self.rest_mode else None
        return StagedEdits(
            traffic={
                n: v for n, v in self.staged.items() if v != self.base_live.get(n, 0) and n != rest
            },
            mirror=mirror if mirror != self.base_mirror else None,
            control_edited=self.control != self.base_control,
            control=self.control,
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("rebase", "drop_edits") and self.conflict is None:
            return False  # only while a refused apply waits for a decision
        return super().check_action(action, parameters)

    def _show_conflict(self) -> None:
        box = self.query_one("#traffic-conflict", Static)
        self.refresh_bindings()
        exc = self.conflict
        box.display = exc is not None
        if exc is None:
            box.update("")
            return
        details = exc.details
        changed = details.get("changed")
        what = revisions.describe(changed) if isinstance(changed, dict) else ""
        live = "  ".join(f"{n} {v}%" for n, v in sorted(self.live.items())) or "(none)"
        text = Text()
        text.append("changed by someone else", style="bold red")
        text.append(f": {details.get('by') or 'another operator'}")
        sent, now = details.get("revision_sent"), details.get("revision_now")
        if sent and now:
            text.append(f" (revision {sent} {glyphs.current().arrow} {now})", style="dim")
        if what:
            text.append(f"\n  {what}")
        text.append("\nlive now: ", style="bold")
        text.append(live)
        if self.live_mirror[0]:
            text.append(
                f"  mirror {glyphs.current().arrow}{self.live_mirror[0]} {self.live_mirror[1]}%"
            )
        text.append("\nb", style="bold")
        text.append(" rebase: your edits again, on this live map (then Enter)   ")
        text.append("x", style="bold")
        text.append(" drop your edits")
        box.update(text)

    def action_rebase(self) -> None:
        """Stage the operator's own edits again, on the live map as it is now."""
        if self.conflict is None or not self.mdapp.allow_mutation("changing traffic"):
            return
        if self.endpoint is None:
            return
        edits = self._conflict_edits
        staged = dict(self.live)
        staged.update({n: v for n, v in edits.traffic.items() if n in staged})
        if self.rest_mode and self.default in staged and self.default not in edits.traffic:
            given = {n: v for n, v in staged.items() if n != self.default}
            if sum(given.values()) <= 100:
                staged = validation.fill_rest(given, self.default, self.deployment_names)
        self.staged = staged
        self.mirror_target = edits.mirror[0] if edits.mirror else self.live_mirror[0]
        self.control = edits.control if edits.control_edited else self.live_control
        self._rebase_on(self.endpoint)
        self.conflict = None
        self._sync_sliders()
        if edits.mirror:
            self._set_mirror_value(edits.mirror[1])
        self._show_conflict()
        total = sum(self.staged.values())
        self.notify(
            f"your edits, staged on the live map (total {total}%): review them, Enter applies",
            title="rebased",
            severity="information" if total in (0, 100) else "warning",
        )

    def action_drop_edits(self) -> None:
        """Forget the operator's edits: the live map is what is staged."""
        if self.conflict is None or self.endpoint is None:
            return
        self.staged = dict(self.live)
        self.mirror_target = self.live_mirror[0]
        self.control = self.live_control
        self._rebase_on(self.endpoint)
        self.conflict = None
        self._sync_sliders()
        self._set_mirror_value(self.live_mirror[1])
        self._show_conflict()
        self.notify("your edits were dropped: the live map is staged", title="discarded")

    def _set_mirror_value(self, value: int) -> None:
        sliders = self.query("#mirror-slider")
        if sliders:
            slider = sliders.first(TrafficSlider)
            slider.value = value
            slider.refresh()
        self._update_summary()
