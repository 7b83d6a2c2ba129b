"""Toasts of rollouts (issue 14): what changed in any endpoint's rollout since the last read.

The app reads ``list_rollouts`` after each wake of the workspace's watch (and the Rollout
view gives what it reads) through :class:`RolloutToasts`; :class:`RolloutNews` compares
each endpoint's rollout with the one seen before and says what happened: started, a step,
paused, resumed, promoted, failed (with its numbers) or aborted. The first read only sets what was seen: opening the dashboard while
rollouts run, or have ended, says nothing (no storm of toasts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..services.api.rollouts import Rollout, RolloutState

if TYPE_CHECKING:
    from .app import ModeldeckApp


@dataclass(frozen=True)
class News:
    title: str
    message: str
    severity: str = "information"  # Textual's: information | warning | error


def _where(r: Rollout) -> str:
    return f"{r.spec.endpoint}: {r.treatment}"


def _ended(r: Rollout) -> News:
    """What a rollout's state says when it is new to us (or changed to it)."""
    if r.state is RolloutState.SUCCEEDED:
        return News("rollout promoted", f"{_where(r)} has 100% of the traffic ({r.control}: 0%)")
    if r.state is RolloutState.FAILED:
        numbers = r.last_check.reason if r.last_check is not None else ""
        why = "\n".join(dict.fromkeys(x for x in (r.message, numbers) if x))  # once each
        return News(
            "rollout failed",
            f"{_where(r)} failed at {r.phase}: traffic is back on {r.control}"
            + (f"\n{why}" if why else ""),
            "error",
        )
    if r.state is RolloutState.ABORTED:
        why = f"\n{r.message}" if r.message else ""
        return News(
            "rollout aborted",
            f"{_where(r)} aborted: traffic is back on {r.control}{why}",
            "warning",
        )
    if r.state is RolloutState.PAUSED:
        why = f"\n{r.message}" if r.message else ""
        return News("rollout paused", f"{_where(r)} paused at {r.phase}{why}", "warning")
    return News("rollout", f"{_where(r)} {r.state.value.lower()} at {r.phase}")


class RolloutNews:
    """What was seen of each endpoint's rollout: ``(id, state, step)``."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, RolloutState, int]] = {}
        self.loaded = False  # a whole list was read once: from then on, a new one is news

    def update(self, rollouts: Iterable[Rollout], *, complete: bool = True) -> list[News]:
        """The news of ``rollouts`` (``complete``: every endpoint's, as ``list_rollouts``
        gives them; else some, as the Rollout view reads one)."""
        out: list[News] = []
        now: dict[str, tuple[str, RolloutState, int]] = {}
        for r in rollouts:
            key = r.spec.endpoint
            now[key] = (r.id, r.state, r.step)
            before = self.seen.get(key)
            if before == now[key]:
                continue
            if before is None or before[0] != r.id:
                if not self.loaded:
                    continue  # the first read: what runs already is no news
                if r.state is RolloutState.RUNNING:
                    out.append(
                        News(
                            "rollout started",
                            f"{_where(r)} from {r.control}, {r.phase}"
                            + (f", started by {r.started_by}" if r.started_by else ""),
                        )
                    )
                else:  # it started and got here between two reads
                    out.append(_ended(r))
            elif before[1] != r.state:
                if r.state is RolloutState.RUNNING:
                    out.append(News("rollout resumed", f"{_where(r)} resumed at {r.phase}"))
                else:
                    out.append(_ended(r))
            elif r.state is RolloutState.RUNNING and before[2] != r.step:
                out.append(News("rollout step", f"{_where(r)} at {r.phase}"))
        if complete:
            self.seen = now
            self.loaded = True
        else:
            self.seen.update(now)
        return out


class RolloutToasts:
    """The app's toasts of rollouts: what :class:`RolloutNews` says, as notifications; what
    was seen is forgotten when the app switches workspace."""

    def __init__(self, app: ModeldeckApp) -> None:
        self.app = app
        self.generation = app.workspace_generation
        self.news = RolloutNews()

    def seen(self, *rollouts: Rollout, complete: bool = False) -> None:
        """Toast what changed in these rollouts since they were last seen (the Rollout view
        gives the one it reads; :meth:`read_all`, every endpoint's)."""
        app = self.app
        if self.generation != app.workspace_generation:
            self.generation, self.news = app.workspace_generation, RolloutNews()
        for news in self.news.update(rollouts, complete=complete):
            app.notify(
                news.message,
                title=news.title,
                severity=news.severity,  # type: ignore[arg-type]
                timeout=20 if news.severity == "error" else 8,
                markup=False,
            )

    def read_all(self) -> None:
        """Read every endpoint's rollout in a worker (one at a time) and toast the changes;
        the first read only records what runs."""
        self.app.run_worker(self._read_all(), group="rollouts", exclusive=True, exit_on_error=False)

    async def _read_all(self) -> None:
        app = self.app
        generation = app.workspace_generation
        try:
            rollouts = await app.workspace.list_rollouts()
        except asyncio.CancelledError:
            raise
        except Exception:  # a back end without rollouts, a control plane gone: no toast
            return
        if generation == app.workspace_generation:
            self.seen(*rollouts, complete=True)
