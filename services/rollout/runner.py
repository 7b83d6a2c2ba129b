"""The rollout state machine: one :class:`RolloutRunner` drives one rollout on one endpoint.

The host (the local daemon; for Azure ML the daemon too) builds a runner for each active
rollout record and runs :meth:`RolloutRunner.run` as a task; the operator's actions call
:meth:`~RolloutRunner.pause`, :meth:`~RolloutRunner.resume`, :meth:`~RolloutRunner.promote`
and :meth:`~RolloutRunner.abort`, serialised with the tick by one lock.

What a run does:

* **Start** (a new rollout, or the same record after a daemon restart): the endpoint is read.
  If it already has the current phase's maps (or the next phase's: the daemon died between
  the traffic write and the record's) they are adopted; if it still has the maps the record
  last wrote (or none were written yet) the current phase's maps are written; anything else
  is an operator's change: the rollout pauses. The step's window starts again, at the same
  step, from a snapshot of the figures taken then.
* **Phases.** An optional mirror phase first (``spec.mirror_first_s`` > 0; step -1): the
  control keeps 100% of live traffic and the treatment gets a mirrored
  :data:`~..api.rollouts.MIRROR_PERCENT`, analysed as a step. Then each step of
  ``spec.steps`` gives the treatment its share (``step_traffic``). The last step (100) is not
  held: passing the step before it promotes.
* **Each tick** (``target.poll_s``): the record is loaded again (another process may have
  paused or ended it: a Paused record is left alone, a terminal one ends the run); the
  endpoint is read, and if its traffic or mirror map is not what the rollout last wrote an
  operator changed it: the rollout pauses with a notice and never writes over it. Then the
  figures are read and judged (``analysis.py``): fail -> traffic back on the control at once,
  Failed, the check's reason as the message; pass -> the next step (or promotion);
  otherwise the rollout stays Running with the check's reason ("waiting for 200 requests
  (37 so far)").
* Every traffic write carries the endpoint revision the runner read (``if_revision``); a
  Conflict means someone changed it meanwhile: the rollout pauses.

Cancelling :meth:`run` leaves the record as it is, so a restarted daemon resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable

from ..api.domain import Endpoint, MetricsReport
from ..api.errors import Conflict, ModeldeckError, NotFound
from ..api.rollouts import (
    MIRROR_PERCENT,
    Rollout,
    RolloutCheck,
    RolloutState,
    changed_since,
    step_traffic,
)
from . import analysis
from .target import RolloutBook, RolloutTarget

log = logging.getLogger(__name__)

Maps = tuple[dict[str, int], dict[str, int]]


def _live(m: dict[str, int]) -> dict[str, int]:
    """A traffic map without its zero entries (how two maps are compared)."""
    return {k: int(v) for k, v in m.items() if int(v) > 0}


def _shown(m: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(m.items())) or "none"


class ManualChange(Exception):
    """The endpoint's maps are not the ones the rollout wrote: an operator changed them."""

    def __init__(self, endpoint: Endpoint) -> None:
        mirror = _live(endpoint.mirror_traffic)
        self.text = f"traffic changed by hand to {_shown(_live(endpoint.traffic))}" + (
            f" (mirror {_shown(mirror)})" if mirror else ""
        )
        super().__init__(self.text)


def _cancelled_meanwhile() -> None:
    """Raise CancelledError when this task was cancelled but the cancellation was lost: in
    Python 3.11 ``asyncio.wait_for`` swallows it when its inner await completes in the same
    loop iteration (fixed in 3.12; the local client's reads use it), and the runner would go
    on ticking after its host stopped it. The task's ``cancelling()`` count still says so."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class RecordMoved(Conflict):
    """The rollout's record changed under the runner (another process saved it): the runner
    takes the record as it is now; an operator's action is refused with this Conflict."""


#: the shortest time between two saves of a step's progress (the check's figures so far)
PROGRESS_SAVE_S = 1.0


class RolloutRunner:
    def __init__(
        self,
        rollout: Rollout,
        target: RolloutTarget,
        book: RolloutBook,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rollout = rollout
        self.target = target
        self.book = book
        self.clock = clock
        self._lock = asyncio.Lock()
        self._base: MetricsReport | None = None  # the window's first snapshot
        self._window_start = 0.0
        self._waiting_told = False  # "waiting" notified once per window
        self._started = False  # the current phase's maps are on the endpoint (or adopted)
        self._progress_at = 0.0  # when a step's progress was last saved
        self._gone = False  # the record was deleted or replaced by another rollout

    @property
    def endpoint(self) -> str:
        return self.rollout.spec.endpoint

    # ------------------------------------------------------------------ the loop
    async def run(self) -> Rollout:
        """Drive the rollout until it is Succeeded, Failed or Aborted, or its record is gone
        (the record as it ends); cancelled, it leaves the record as it is."""
        async with self._lock:
            current = self.book.load(self.endpoint)
            if current is not None and current.id == self.rollout.id:
                self.rollout = current
            if self.rollout.state is RolloutState.RUNNING:
                await self._guard(self._start())
        while self.rollout.state.active and not self._gone:
            _cancelled_meanwhile()
            await asyncio.sleep(self.target.poll_s)
            async with self._lock:
                await self._guard(self._tick())
        return self.rollout

    async def _guard(self, step: Awaitable[None]) -> None:
        """Run one start or tick: an operator's change pauses, a vanished endpoint or
        deployment aborts, a back end's error is logged and the next tick tries again (so is
        one met while pausing or aborting)."""
        try:
            await self._react(step)
        except RecordMoved as exc:
            log.info("rollout %s: %s", self.rollout.id, exc.message)
        except ModeldeckError as exc:
            log.warning("rollout %s of %s: %s", self.rollout.id, self.endpoint, exc.message)
        except OSError as exc:
            log.warning("rollout %s of %s: %s", self.rollout.id, self.endpoint, exc)

    async def _react(self, step: Awaitable[None]) -> None:
        try:
            await step
        except ManualChange as change:
            await self._pause_for(change.text)
        except RecordMoved:
            raise
        except Conflict as exc:
            text = f"the endpoint changed while the rollout wrote it ({exc.message})"
            with contextlib.suppress(ModeldeckError, OSError):
                ep = await self.target.endpoint(self.endpoint)
                if self._maps_of(ep) != self._live_maps(
                    (self.rollout.traffic, self.rollout.mirror_traffic)
                ):
                    text = ManualChange(ep).text
            await self._pause_for(text)
        except NotFound as exc:
            await self._finish(RolloutState.ABORTED, f"stopped: {exc.message}", "aborted")

    async def _start(self) -> None:
        ep = await self.target.endpoint(self.endpoint)
        r = self.rollout
        now = self._maps_of(ep)
        if now == self._live_maps(self._phase_maps(r.step)):
            await self._record(r.step, ep, event=None)
        elif r.step + 1 < len(r.spec.steps) and now == self._live_maps(
            self._phase_maps(r.step + 1)
        ):
            await self._record(r.step + 1, ep, event=None)  # died between write and record
        elif not (r.traffic or r.mirror_traffic) or now == self._live_maps(
            (r.traffic, r.mirror_traffic)
        ):
            await self._apply_phase(r.step, ep)
        else:
            raise ManualChange(ep)
        if self.rollout.state is RolloutState.RUNNING:
            self._started = True
            await self._restart_window()

    async def _tick(self) -> None:
        previous = self.rollout
        current = self.book.load(self.endpoint)
        if current is None or current.id != previous.id:
            self._gone = True  # nothing of ours to drive
            return
        self.rollout = current
        if current.state is not RolloutState.RUNNING:
            return
        if not self._started:  # the start failed (a back end's error), or resumed elsewhere
            await self._start()
            return
        ep = await self.target.endpoint(self.endpoint)
        if self._maps_of(ep) != self._live_maps((current.traffic, current.mirror_traffic)):
            raise ManualChange(ep)
        if previous.state is not RolloutState.RUNNING or self._base is None:
            await self._restart_window()  # resumed by another process, or no snapshot yet
            return
        report = await self.target.figures(self.endpoint)
        at = self.clock()
        interval = current.spec.mirror_first_s if current.step < 0 else current.spec.interval_s
        w, check = analysis.analyse(
            current.spec,
            self._base,
            report,
            started_at=self._window_start,
            at=at,
            interval_s=interval,
        )
        if check is None:
            self._base, self._window_start = report, at
            await self._save(message="the figures' counters were reset: the window starts again")
            return
        if check.verdict == "fail":
            await self._fail(check, ep)
        elif check.verdict == "pass":
            await self._advance(check, ep)
        else:
            if current.message != check.reason and (
                current.last_check is None or at - self._progress_at >= PROGRESS_SAVE_S
            ):
                self._progress_at = at
                await self._save(message=check.reason, last_check=check)
            starved = w.treatment_requests < current.spec.min_requests
            if starved and at - self._window_start >= interval and not self._waiting_told:
                self._waiting_told = True  # told once a window: the step lacks traffic
                await self._notify("waiting", check)

    # ------------------------------------------------------------------ operator actions
    async def pause(self, why: str, *, if_revision: str | None = None) -> Rollout:
        """Hold the traffic as it is; ``why`` becomes the message. With ``if_revision`` (each
        action's): refused (Conflict) when the record took another revision since."""
        async with self._lock:
            self._active_or_refuse("pause", if_revision)
            if self.rollout.state is RolloutState.RUNNING:
                await self._pause_for(why)
            return self.rollout

    async def resume(self, *, if_revision: str | None = None) -> Rollout:
        """Write the current step's maps again (on the endpoint revision read now) and start
        the step's window again."""
        async with self._lock:
            self._active_or_refuse("resume", if_revision)
            ep = await self.target.endpoint(self.endpoint)
            r = self.rollout
            traffic, mirror = self._phase_maps(r.step)
            ep = await self._set(ep, traffic, mirror, f"resumed at {self._phase_words(r.step)}")
            await self._save(
                state=RolloutState.RUNNING,
                message=f"resumed at {r.phase}",
                traffic=_live(ep.traffic),
                mirror_traffic=_live(ep.mirror_traffic),
                step_started_at=self.clock(),
            )
            self._started = True
            await self._restart_window()
            await self._notify("resumed", None)
            return self.rollout

    async def promote(self, *, if_revision: str | None = None) -> Rollout:
        """The treatment gets 100% now: Succeeded."""
        async with self._lock:
            self._active_or_refuse("promote", if_revision)
            await self._end_at(100, f"promoted by hand: {self.rollout.spec.to} has 100%")
            return self.rollout

    async def abort(self, *, if_revision: str | None = None) -> Rollout:
        """All traffic back on the control: Aborted."""
        async with self._lock:
            self._active_or_refuse("abort", if_revision)
            await self._end_at(0, f"aborted: all traffic back on {self.rollout.spec.from_}")
            return self.rollout

    # ------------------------------------------------------------------ transitions
    def _active_or_refuse(self, action: str, if_revision: str | None) -> None:
        current = self.book.load(self.endpoint)
        if current is not None and current.id == self.rollout.id:
            self.rollout = current
        stale = changed_since(self.rollout, if_revision)
        if stale is not None:
            raise stale
        if not self.rollout.state.active:
            raise Conflict(
                f"the rollout of {self.rollout.spec.to} on '{self.endpoint}' is "
                f"{self.rollout.state.value}: nothing to {action}",
                fix=f"start a new one: modeldeck online-endpoint rollout -n {self.endpoint} "
                "--to NAME",
            )

    async def _fail(self, check: RolloutCheck, ep: Endpoint) -> None:
        spec = self.rollout.spec
        traffic = step_traffic(spec, 0)
        message = check.reason
        try:
            await self._set(
                ep, traffic, {}, f"failed, all traffic back on {spec.from_}", check=True
            )
            mirror: dict[str, int] = {}
        except (ManualChange, Conflict) as exc:
            # the operator's map wins; the verdict stands
            ep = await self.target.endpoint(self.endpoint)
            traffic, mirror = self._maps_of(ep)
            why = exc.text if isinstance(exc, ManualChange) else exc.message
            message += f" (traffic not rolled back: {why})"
        await self._finish(
            RolloutState.FAILED,
            message,
            "failed",
            check=check,
            traffic=traffic,
            mirror_traffic=mirror,
            weight=traffic.get(spec.to, 0),
        )

    async def _advance(self, check: RolloutCheck, ep: Endpoint) -> None:
        r = self.rollout
        nxt = r.step + 1
        if r.spec.steps[nxt] >= 100:
            message = f"promoted: {r.spec.to} has 100% ({check.reason})"
            await self._end_at(100, message, ep=ep, check=check, guarded=True)
            return
        self.rollout = dataclasses.replace(r, last_check=check)
        await self._apply_phase(nxt, ep)
        await self._restart_window()

    async def _apply_phase(self, step: int, ep: Endpoint) -> None:
        spec = self.rollout.spec
        if step >= 0 and spec.steps[step] >= 100:  # steps (100,): nothing to hold
            await self._end_at(100, f"promoted: {spec.to} has 100%", ep=ep)
            return
        traffic, mirror = self._phase_maps(step)
        ep = await self._set(ep, traffic, mirror, self._phase_words(step))
        await self._record(step, ep, event="mirror" if step < 0 else "step")

    async def _record(self, step: int, ep: Endpoint, *, event: str | None) -> None:
        """Save ``step`` as the one being held, with the endpoint's maps as written."""
        spec = self.rollout.spec
        weight = 0 if step < 0 else spec.steps[step]
        phase = "mirror" if step < 0 else f"step {step + 1}/{len(spec.steps)} ({weight}%)"
        await self._save(
            step=step,
            weight=weight,
            traffic=_live(ep.traffic),
            mirror_traffic=_live(ep.mirror_traffic),
            step_started_at=self.clock(),  # the step's window starts (again) now
            message=f"holding {phase}",
        )
        if event is not None:
            await self._notify(event, self.rollout.last_check)

    async def _end_at(
        self,
        weight: int,
        message: str,
        *,
        ep: Endpoint | None = None,
        check: RolloutCheck | None = None,
        guarded: bool = False,
    ) -> None:
        """Give the treatment ``weight`` (100: promoted, Succeeded; 0: Aborted), the control
        the rest, no mirror, on the revision of ``ep`` (read now when None); ``guarded``:
        only over the maps the rollout wrote (``_set``'s check)."""
        spec = self.rollout.spec
        ep = ep or await self.target.endpoint(self.endpoint)
        traffic = step_traffic(spec, weight)
        promoted = weight >= 100
        words = f"{spec.to} 100%" if promoted else f"all traffic back on {spec.from_}"
        event = "promoted" if promoted else "aborted"
        await self._set(ep, traffic, {}, f"{event}, {words}", check=guarded)
        state = RolloutState.SUCCEEDED if promoted else RolloutState.ABORTED
        await self._finish(state, message, event, check=check, traffic=traffic, weight=weight)

    async def _pause_for(self, why: str) -> None:
        if self.rollout.state is not RolloutState.RUNNING:
            return
        await self._save(
            state=RolloutState.PAUSED, message=f"{why}; paused: resume, promote or abort"
        )
        await self._notify("paused", None)

    async def _finish(
        self,
        state: RolloutState,
        message: str,
        event: str,
        *,
        check: RolloutCheck | None = None,
        **changes: object,
    ) -> None:
        now = self.clock()
        if check is not None:
            changes["last_check"] = check
        if "traffic" in changes:
            changes.setdefault("mirror_traffic", {})
        await self._save(state=state, message=message, finished_at=now, **changes)
        await self._notify(event, check)

    # ------------------------------------------------------------------ the endpoint
    def _phase_maps(self, step: int) -> Maps:
        spec = self.rollout.spec
        if step < 0:
            return step_traffic(spec, 0), {spec.to: MIRROR_PERCENT}
        return step_traffic(spec, spec.steps[step]), {}

    def _phase_words(self, step: int) -> str:
        spec = self.rollout.spec
        if step < 0:
            return f"mirror {MIRROR_PERCENT}% to {spec.to}"
        return f"step {step + 1}/{len(spec.steps)}, {spec.to} {spec.steps[step]}%"

    @staticmethod
    def _live_maps(maps: Maps) -> Maps:
        return _live(maps[0]), _live(maps[1])

    def _maps_of(self, ep: Endpoint) -> Maps:
        return _live(ep.traffic), _live(ep.mirror_traffic)

    async def _set(
        self,
        ep: Endpoint,
        traffic: dict[str, int],
        mirror: dict[str, int],
        words: str,
        *,
        check: bool = False,
    ) -> Endpoint:
        """Write both maps on the revision of ``ep`` (as read). ``check``: only if the
        endpoint still has the maps the rollout last wrote (else :class:`ManualChange`); a
        Conflict on a change of other fields is retried once on the endpoint read again."""
        why = f"rollout {self.rollout.id}: {words}"
        mine = self._live_maps((self.rollout.traffic, self.rollout.mirror_traffic))
        for attempt in (1, 2):
            if check and self._maps_of(ep) != mine:
                raise ManualChange(ep)
            try:
                return await self.target.set_traffic(
                    self.endpoint, traffic, mirror, if_revision=ep.revision, why=why
                )
            except Conflict:
                if attempt == 2 or not check:
                    raise
                ep = await self.target.endpoint(self.endpoint)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ the record
    async def _restart_window(self) -> None:
        self._base = await self.target.figures(self.endpoint)
        self._window_start = self.clock()
        self._waiting_told = False

    async def _save(self, **changes: object) -> None:
        """Save the record with ``changes``. The book refuses a save on a stale revision
        (Conflict): when the record moved on in the same state (another process saved it)
        the changes are saved on it; in another state the runner takes it as it is
        (:class:`RecordMoved`)."""
        changes.setdefault("updated_at", self.clock())
        try:
            self.rollout = self.book.save(dataclasses.replace(self.rollout, **changes))  # type: ignore[arg-type]
            return
        except Conflict:
            current = self.book.load(self.endpoint)
        if current is None or current.id != self.rollout.id:
            raise RecordMoved(f"the rollout {self.rollout.id} of '{self.endpoint}' is gone")
        if current.state is not self.rollout.state:
            self.rollout = current
            raise RecordMoved(
                f"the rollout of {current.spec.to} on '{self.endpoint}' became "
                f"{current.state.value} meanwhile ({current.message})",
                fix=f"read it again: modeldeck online-endpoint rollout -n {self.endpoint}",
            )
        self.rollout = self.book.save(dataclasses.replace(current, **changes))  # type: ignore[arg-type]

    async def _notify(self, event: str, check: RolloutCheck | None) -> None:
        try:
            await self.book.notify(self.rollout, event, check)
        except Exception:  # a notification never stops the rollout
            log.exception("rollout %s: notifying %s failed", self.rollout.id, event)
