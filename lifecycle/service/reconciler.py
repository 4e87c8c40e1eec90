"""The reconciler: moves experiments through their transitional statuses.

``run_once()`` claims from the store the experiments that are due, in every
account (an index on due time, not a scan; a claim with a lease, so another
reconciler on another replica leaves them alone), and for each carries out the step its status calls for
through the :class:`~lifecycle.actuators.Actuator`, then fires the event that
ends the step and saves with the version it loaded; the saves of one round
out of statuses only the reconciler moves go to the store together, in one
transaction. A save that finds a newer version means another request or
replica got there first: the step is left to it. A step whose actuator call fails is
retried with exponential backoff; past ``max_attempts``, or at once for an error
that is not ``retryable``, the experiment fails (Cancelled, StatusReason = the step
and the error). ``_attempt.py`` states the step contract this keeps.

:meth:`Reconciler.stop` asks a pass in progress to end between two steps: what
was carried out is saved, the rest is left due (and its claims given back), so
a server shuts down in the time of one step, not of a whole pass. An
:class:`Observer` hears of each step attempt and each pass (the server's
metrics); the log has one line per failed attempt.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Protocol

from lifecycle.actuators import Actuator, ActuatorError, SimulatedActuator
from lifecycle.domain.experiment import Experiment, HistoryEntry
from lifecycle.domain.machine import fire_variant
from lifecycle.domain.rules import Firing, StopPlan, plan_stop, whole_ms
from lifecycle.domain.statuses import ExperimentStatus as S
from lifecycle.domain.statuses import StepAction, VariantAction
from lifecycle.domain.table import EXPERIMENT_TABLE, RECONCILER
from lifecycle.errors import StaleVersionError
from lifecycle.service._attempt import PENDING_ORDER, Attempt, StepObserver, cut
from lifecycle.service._logfields import log
from lifecycle.service.service import ExperimentService, variant_entry
from lifecycle.stores.base import ExperimentKey, Save

__all__ = ["STATUS_ACTIONS", "VARIANT_ACTIONS", "Observer", "Reconciler"]

_log = logging.getLogger("lifecycle.reconciler")
#: ``time.sleep(0)``: lets another thread take the interpreter. Bound when this module is
#: imported, so a test's stand-in for ``time.sleep`` (a virtual clock) never sees it
_yield_interpreter = partial(time.sleep, 0)
#: how long a pass runs steps before it lets another thread in
_HOLD_SECONDS = 0.002

#: the step that ends each pending variant event
VARIANT_ACTIONS = {
    "provisioned": StepAction.PROVISION_VARIANT,
    "updated": StepAction.UPDATE_VARIANT,
    "promoted": StepAction.PROMOTE_VARIANT,
    "removed": StepAction.REMOVE_VARIANT,
}
#: the experiment's own step in a transitional status, after its variants' steps (Creating has none)
STATUS_ACTIONS = {
    S.STARTING: StepAction.START_SHADOW_TEST,
    S.UPDATING: StepAction.APPLY_UPDATE,
    S.STOPPING: StepAction.END_SHADOW_TEST,
}
#: statuses a request can move an experiment out of (the others only the reconciler moves)
_REQUEST_STATUSES = (
    frozenset(
        t.source
        for t in EXPERIMENT_TABLE.transitions
        if t.source is not None and set(t.fired_by) - {RECONCILER}
    )
    | EXPERIMENT_TABLE.deletable_from
)
_CAUGHT_UP = (
    "Schedule.EndTime passed before the experiment was started; it was started and stopped at once"
)


class Observer(StepObserver, Protocol):
    """What hears of the reconciler's work (the server's metrics implement it): each
    actuator call (``step``) and each pass."""

    def finished_pass(self, seconds: float, oldest_due_age: float) -> None:
        """A pass took ``seconds``; the oldest step it found due had waited ``oldest_due_age``."""


class Reconciler:
    def __init__(
        self,
        service: ExperimentService,
        actuator: Actuator | None = None,
        *,
        clock: Callable[[], float] | None = None,
        max_attempts: int = 3,
        retry_seconds: float = 1.0,
        backoff: float = 2.0,
        max_retry_seconds: float = 300.0,
        jitter: float = 0.0,
        batch: int = 100,
        commit_chunk: int | None = None,
        owner: str | None = None,
        lease_seconds: float = 30.0,
        observer: Observer | None = None,
    ) -> None:
        self.service = service
        #: who this reconciler is when it claims due work (unique per process and instance)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        #: how long a claim keeps other reconcilers off an experiment (a crashed one's work waits this long)
        self.lease_seconds = lease_seconds
        self.actuator: Actuator = actuator if actuator is not None else SimulatedActuator()
        self.clock = clock or service.clock
        #: tries of one step before the experiment fails (an error not ``retryable``: one)
        self.max_attempts = max_attempts
        #: the wait after a first failure; each further one waits ``backoff`` times longer,
        #: at most ``max_retry_seconds``, give or take ``jitter`` (a fraction) at random
        self.retry_seconds = retry_seconds
        self.backoff = backoff
        self.max_retry_seconds = max_retry_seconds
        self.jitter = jitter
        self._random = random.Random()
        self.batch = batch
        #: saves of one round committed together at most: the store's ``save_chunk`` (SQLite:
        #: a transaction of a hundred saves holds its one write lock, and the interpreter,
        #: while requests' writes wait behind it), else the whole round
        self.commit_chunk = commit_chunk or getattr(service.store, "save_chunk", None) or batch
        #: told of each step attempt and each pass
        self.observer = observer
        self._stopping = threading.Event()
        self._oldest_due = 0.0
        self._held_since = 0.0

    def stop(self) -> None:
        """Ask the pass in progress to end after the step it is carrying out (thread-safe).

        Every later :meth:`run_once` returns at once; :meth:`release` gives
        back this reconciler's claims.
        """
        self._stopping.set()

    def resume(self) -> None:
        """Undo :meth:`stop`: later passes run again (a host that starts the loop anew)."""
        self._stopping.clear()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def release(self) -> int:
        """Give back every claim this reconciler holds, so another takes the work at once."""
        return self.service.store.release(self.owner)

    def run_once(self, max_rounds: int = 16, *, stop: threading.Event | None = None) -> int:
        """Carry out every step due now; return how many experiments were moved on.

        With settle time 0 one call runs a new experiment through to Running:
        a step that makes the next one due at once is taken in the next round.
        Once ``stop`` is set the pass ends after the step in progress (the steps
        already carried out are saved; the claims not yet worked on lapse with
        their lease), so a host that shuts down waits for one step, not a round.
        """
        started = time.perf_counter()
        self._oldest_due = 0.0
        moved = 0
        for _ in range(max_rounds):
            if self._stopping.is_set() or (stop is not None and stop.is_set()):
                break
            now = whole_ms(self.clock())
            # claimed, not just listed: two replicas never take the same step at once
            keys = self.service.store.claim(now, self.batch, self.owner, self.lease_seconds)
            if not keys:
                break
            round_moved = self._advance_all(keys, now, stop)
            moved += round_moved
            if round_moved == 0:
                break
        if self.observer is not None:
            self.observer.finished_pass(time.perf_counter() - started, self._oldest_due)
        return moved

    def advance(self, name: str, now: float, account: str | None = None) -> int:
        """Carry out the due step of one experiment (``name`` of ``account``, by default the
        service's account); 1 if it was saved, else 0."""
        key = ExperimentKey(self.service.account_id if account is None else account, name)
        prepared = self._prepare(key, now)
        return 0 if prepared is None else self._commit(prepared[0])

    def _commit(self, save: Save) -> int:
        try:
            self.service.commit(*save)
        except StaleVersionError:
            return 0  # someone else moved it on first
        return 1

    def _advance_all(
        self, keys: list[ExperimentKey], now: float, stop: threading.Event | None = None
    ) -> int:
        """Carry out the due steps of the experiments ``keys``; how many were saved.

        Steps out of a status no request can change (Creating, Starting,
        Updating, Stopping) are saved together, in transactions of up to
        ``commit_chunk`` saves: one flush to disk for many experiments instead
        of one each, and no transaction so long that requests' writes queue
        behind it (on SQLite, which has one writer at a time). A step
        out of a status a request can change too (Created, Running) is saved
        at once, so a request that lands meanwhile finds it saved, or makes
        it stale before its actuator calls are long past.
        """
        moved = 0
        batch: list[Save] = []
        for key in keys:
            if self._stopping.is_set() or (stop is not None and stop.is_set()):
                break
            # let other threads in between two steps once this pass has held the
            # interpreter for a while (a server's event loop answering requests): without it
            # a pass of a thousand steps holds it in 5 ms slices, which requests waiting
            # behind it see as latency; yielding at every step starves the pass instead
            if time.perf_counter() - self._held_since > _HOLD_SECONDS:
                _yield_interpreter()
                self._held_since = time.perf_counter()
            prepared = self._prepare(key, now)
            if prepared is None:
                continue
            save, loaded_status = prepared
            if loaded_status in _REQUEST_STATUSES:
                moved += self._commit(save)
            else:
                batch.append(save)
                if len(batch) >= self.commit_chunk:
                    moved += sum(self.service.commit_many(batch))
                    batch = []
        if batch:
            moved += sum(self.service.commit_many(batch))
        return moved

    def _prepare(self, key: ExperimentKey, now: float) -> tuple[Save, S] | None:
        """Load one experiment and carry out its due step, unsaved: the save to make and
        the status it was loaded in; None when nothing is due.

        The step's events are fired on a copy of the record: a failed attempt saves the
        loaded record with only its retry bookkeeping (attempts, last error, next try),
        so no status changes before the actuator confirms its step.
        """
        now = whole_ms(now)
        loaded = self.service.store.get(key.account, key.name)
        if loaded is None or loaded.due_at is None or loaded.due_at > now:
            return None
        self._oldest_due = max(self._oldest_due, now - loaded.due_at)
        attempt = Attempt(self.actuator, loaded, self.observer)
        work = loaded.copy()
        entries: list[HistoryEntry] = []
        try:
            self._step(work, now, entries, attempt)
        except ActuatorError as err:
            return self._failed(loaded, now, err, attempt), loaded.status
        return (work, loaded.version, entries), loaded.status

    def _failed(self, loaded: Experiment, now: float, err: ActuatorError, attempt: Attempt) -> Save:
        """The save of a failed attempt: a retry later, or (the last try, or an error that
        retrying cannot mend) the experiment fails, after undoing what the attempt did."""
        exp = loaded.copy()
        exp.attempts += 1
        exp.last_error = cut(err.message)
        if exp.attempts < self.max_attempts and err.retryable:
            exp.due_at = now + self.retry_delay(exp.attempts)
            self._log_failure(exp, attempt, err, retry_in=exp.due_at - now)
            return exp, loaded.version, []
        reason = attempt.describe_failure(err)
        problems = attempt.undo(loaded, self.max_attempts)
        if problems:
            reason = cut(f"{reason}; {'; '.join(problems)}")
        self._log_failure(exp, attempt, err, retry_in=None)
        entries: list[HistoryEntry] = []
        if exp.status is S.CREATED:  # the catch-up start: the start happened, its step failed
            entries.extend(self._fire(exp, "start", now))
        entries.extend(self._fire(exp, "fail", now, reason=reason))
        return exp, loaded.version, entries

    @staticmethod
    def _log_failure(
        exp: Experiment, attempt: Attempt, err: ActuatorError, retry_in: float | None
    ) -> None:
        """One line per failed step attempt: which step, which try, the error, what next."""
        step = attempt.failed
        fields = {
            "account": exp.account,
            "experiment": exp.name,
            "action": str(step.action) if step else None,
            "variant": step.variant if step else None,
            "attempt": attempt.number,
            "error": err.message,
            "retryable": err.retryable,
            "retry_in_s": None if retry_in is None else round(retry_in, 3),
        }
        if retry_in is None:
            log(_log, logging.WARNING, "step failed for good; the experiment fails", fields)
        else:
            log(_log, logging.INFO, "step failed; it will be retried", fields)

    def retry_delay(self, attempts: int) -> float:
        """How long after its ``attempts``-th failure a step is tried again: exponential
        backoff from ``retry_seconds``, capped at ``max_retry_seconds``, with jitter."""
        delay = min(self.retry_seconds * self.backoff ** (attempts - 1), self.max_retry_seconds)
        if self.jitter:
            delay *= 1 + self._random.uniform(-self.jitter, self.jitter)
        return delay

    # -- steps ----------------------------------------------------------------------

    def _fire(
        self,
        exp: Experiment,
        event: str,
        now: float,
        plan: StopPlan | None = None,
        reason: str | None = None,
    ) -> list[HistoryEntry]:
        firing = Firing(exp, now, self.service.settle_seconds, plan, reason)
        return self.service.transition(exp, event, firing)

    @staticmethod
    def _carry_variants(
        exp: Experiment, now: float, entries: list[HistoryEntry], attempt: Attempt
    ) -> None:
        """Carry out each variant's pending step (a promotion first, a removal last), then
        fire the variant event that ends it (its entry joins ``entries``)."""
        pending = sorted(
            (v for v in exp.variants if v.pending is not None),
            key=lambda v: PENDING_ORDER[v.pending or ""],
        )
        for v in pending:
            assert v.pending is not None
            model = v.pending_model_name or v.model_name
            infra = v.pending_infrastructure or v.infrastructure
            attempt.apply(exp, VARIANT_ACTIONS[v.pending], v.name, model, infra)
            entries.append(variant_entry(exp.name, now, fire_variant(v, v.pending)))

    def _step(
        self, exp: Experiment, now: float, entries: list[HistoryEntry], attempt: Attempt
    ) -> None:
        status = exp.status
        if status is S.CREATING:
            self._carry_variants(exp, now, entries, attempt)
            entries.extend(self._fire(exp, "provisioned", now))
        elif status is S.CREATED:
            if exp.end_time <= now:
                self._catch_up(exp, now, entries, attempt)
            else:
                entries.extend(self._fire(exp, "start", now))
        elif status is S.STARTING:
            attempt.apply(exp, STATUS_ACTIONS[status])
            entries.extend(self._fire(exp, "started", now))
        elif status is S.UPDATING:
            self._carry_variants(exp, now, entries, attempt)
            attempt.apply(exp, STATUS_ACTIONS[status])
            entries.extend(self._fire(exp, "updated", now))
        elif status is S.RUNNING:
            entries.extend(self._fire(exp, "stop", now, plan=self._automatic_stop(exp)))
        elif status is S.STOPPING:
            self._carry_variants(exp, now, entries, attempt)
            attempt.apply(exp, STATUS_ACTIONS[status])
            entries.extend(self._fire(exp, "stopped", now))

    @staticmethod
    def _automatic_stop(exp: Experiment) -> StopPlan:
        """The stop at EndTime: production Retain, shadow Remove, Completed."""
        actions = {
            exp.production_variant: VariantAction.RETAIN.value,
            exp.shadow_variant: VariantAction.REMOVE.value,
        }
        return plan_stop(actions, [], "Completed", None)

    def _catch_up(
        self, exp: Experiment, now: float, entries: list[HistoryEntry], attempt: Attempt
    ) -> None:
        """A Created experiment whose EndTime has passed: start and stop it at once."""
        entries.extend(self._fire(exp, "start", now))
        attempt.apply(exp, StepAction.START_SHADOW_TEST)
        entries.extend(self._fire(exp, "started", now))
        entries.extend(self._fire(exp, "stop", now, plan=self._automatic_stop(exp)))
        exp.status_reason = _CAUGHT_UP
        self._carry_variants(exp, now, entries, attempt)
        attempt.apply(exp, StepAction.END_SHADOW_TEST)
        entries.extend(self._fire(exp, "stopped", now))
