"""ExperimentService: one method per operation, each request -> one event -> one versioned save.

Every transport goes through :meth:`ExperimentService.invoke`, which takes
and returns the wire shapes as plain dicts. A request is validated once
(ValidationException), its experiment loaded once (ResourceNotFound), one
event fired on it through the machine (ConflictException, naming the rule),
and the result saved once with the version that was loaded: a concurrent
change makes the save a ``StaleVersionError`` (a ConflictException) and
writes nothing. :meth:`explain` answers the same questions without
changing anything and lists every rule a request breaks. :meth:`changes`
reads the change feed: every committed transition, in one order
(``docs/events.md``).

A service runs every operation in one account (``account_id``: the ARNs it
makes carry it, and it sees only that account's experiments);
:meth:`ExperimentService.for_account` gives the service of another account
over the same store.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from lifecycle.domain.experiment import Experiment, HistoryEntry, is_account_id
from lifecycle.domain.machine import fire
from lifecycle.domain.rules import Firing, VariantTransition, whole_ms
from lifecycle.domain.statuses import OPERATIONS, Operation
from lifecycle.errors import LifecycleError, UnknownOperationError, ValidationError
from lifecycle.service._checks import RAISE, Collect, OperationSpec
from lifecycle.service._operations import OPERATION_SPECS
from lifecycle.service._tokens import TokenCodec
from lifecycle.service.feed import DEFAULT_PAGE, Retention, check_account, check_read
from lifecycle.stores.base import ChangePage, Save, Store
from lifecycle.wire.shapes import parse_request

__all__ = ["OPERATIONS", "ExperimentService", "Listener", "variant_entry"]

#: called after each committed transition (see :meth:`ExperimentService.add_listener`)
Listener = Callable[[HistoryEntry], None]

#: the reason a history entry records for these events is the one the record holds after it
_REASON_FROM_RECORD = frozenset({"stop", "fail", "stopped"})


def variant_entry(
    name: str, now: float, t: VariantTransition, request_id: str | None = None
) -> HistoryEntry:
    """The entry of a variant transition of the experiment ``name``: written to the change
    feed with the experiment's transition it came with (not to the history)."""
    # every field by position: a named tuple made from keywords costs twice as much
    return HistoryEntry(
        name, now, t.event, t.source, t.dest, None, request_id, 0, "variant", t.variant
    )


def _check_account_id(account_id: str) -> str:
    if not is_account_id(account_id):
        raise ValueError(f"account_id must be a 12-digit AWS account id, not {account_id!r}")
    return account_id


def _unknown_operation(operation: str) -> UnknownOperationError:
    return UnknownOperationError(f"Operation '{operation}' is not one of {', '.join(OPERATIONS)}")


class ExperimentService:
    """The seven operations of the inference-experiment lifecycle over one store, in one
    account (``account_id``, a 12-digit AWS account id; ``ValueError`` for another value)."""

    OPERATIONS = OPERATIONS

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        settle_seconds: float = 0.0,
        max_live_experiments: int | None = 100,
        token_secret: bytes | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.region = region
        self.account_id = _check_account_id(account_id)
        self.settle_seconds = settle_seconds
        self.max_live_experiments = max_live_experiments
        #: signs and checks List's NextTokens, with ``token_secret`` or else the store's secret
        self.tokens = TokenCodec(token_secret or store.token_secret())
        # request ids: a random per-service prefix and a counter (unique, and cheap on the hot path)
        hexed = uuid.uuid4().hex
        self._id_prefix = f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-"
        self._id_counter = itertools.count()
        self._listeners: list[tuple[Listener, bool]] = []
        #: the service of each account over this store, this one's own among them
        self._accounts: dict[str, ExperimentService] = {account_id: self}
        self._accounts_lock = threading.Lock()

    def for_account(self, account_id: str) -> ExperimentService:
        """The service of ``account_id`` over the same store: every operation runs in
        that account (its ARNs carry it; it sees only its experiments, and another
        account's are to it as names that do not exist; List's NextTokens are bound to
        it).

        It shares this service's store, clock, region, token codec, listeners and
        request ids, and its settings (settle time, live limit) as they are when it is
        first asked for; one per account, made once: asking again, here or on any
        service of the family, gives the same object. ``ValueError`` for an account id
        that is not 12 digits.
        """
        view = self._accounts.get(account_id)
        if view is None:
            _check_account_id(account_id)
            with self._accounts_lock:
                view = self._accounts.get(account_id)
                if view is None:
                    view = copy.copy(self)  # shares every part; only the account is its own
                    view.account_id = account_id
                    self._accounts[account_id] = view
        return view

    # -- the one entry point ----------------------------------------------------

    def invoke(
        self, operation: str, payload: object, *, request_id: str | None = None
    ) -> dict[str, Any]:
        """Run one operation on a wire-shaped payload; return the wire-shaped response.

        Raises the first stage of the operation's checks that refuses it (see
        :mod:`lifecycle.service._operations`), or what its change meets.
        """
        spec, ready = self._checked(operation, payload)
        return spec.apply(self, ready, request_id)

    def invoke_encoded(
        self,
        operation: str,
        payload: object,
        encode: Callable[[Any], bytes],
        *,
        request_id: str | None = None,
    ) -> bytes:
        """:meth:`invoke`, its response handed straight to ``encode``: what a transport
        that sends the bytes calls. The same bytes as ``encode(invoke(...))``, without
        the copies a response a caller keeps needs."""
        spec, ready = self._checked(operation, payload)
        apply = spec.apply_to_encode or spec.apply
        return encode(apply(self, ready, request_id))

    def _checked(self, operation: str, payload: object) -> tuple[OperationSpec[Any, Any], Any]:
        """The operation's spec and what its checks hand to ``apply``; raises the first
        stage that refuses the request."""
        spec = OPERATION_SPECS.get(operation)
        if spec is None:
            raise _unknown_operation(operation)
        ready = spec.check(self, parse_request(operation, payload), whole_ms(self.clock()), RAISE)
        return spec, ready

    def explain(self, operation: str, payload: object) -> list[LifecycleError]:
        """Every rule ``payload`` would break, one error per rule; empty exactly when
        :meth:`invoke` would succeed now. Changes nothing."""
        spec = OPERATION_SPECS.get(operation)
        if spec is None:
            return [_unknown_operation(operation)]
        try:
            req = parse_request(operation, payload)
        except ValidationError as err:
            return [
                ValidationError(
                    f"1 validation error detected: {msg}", field=f, rule=err.rule, errors=[(f, msg)]
                )
                for f, msg in err.errors
            ]
        except LifecycleError as err:  # a payload that is not an object
            return [err]
        gate = Collect()
        spec.check(self, req, whole_ms(self.clock()), gate)
        return gate.errors

    def add_listener(self, listener: Listener, *, variants: bool = False) -> None:
        """Call ``listener(entry)`` after each committed transition of the experiment
        machine; with ``variants=True`` after each of the variant machine's too (an
        entry whose ``machine`` is ``"variant"`` and whose ``variant`` names it, told
        after the experiment transition it came with)."""
        self._listeners.append((listener, variants))

    def changes(
        self, after: int | None = None, limit: int = DEFAULT_PAGE, account: str | None = None
    ) -> ChangePage:
        """Up to ``limit`` (1 to 1,000) committed transitions after position ``after``, in
        position order, and the position to read the next page after.

        ``after=None`` starts at the oldest change kept. Positions only grow in
        the order they become readable, so reading on from ``next_position``
        sees each change once. With ``account``, only the changes of that
        account's experiments, on the same positions; a page that is not full
        has passed every other account's change up to the newest, and its
        ``next_position`` moves on past them. Without it, every account's
        (whichever account this service is in). ``ValidationError`` for a bad
        argument; ``TrimmedChangesError`` when the retention removed changes
        after ``after``.
        """
        check_read(after, limit)
        if account is None:
            return self.store.changes(after, limit)
        return self.store.changes(after, limit, check_account(account))

    def trim_changes(self, retention: Retention) -> int:
        """Remove the changes ``retention`` no longer keeps; how many."""
        before = None if retention.max_age is None else self.clock() - retention.max_age
        if before is None and retention.max_count is None:
            return 0
        return self.store.trim_changes(before=before, keep=retention.max_count)

    def arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:inference-experiment/{name}"

    # boto3-style methods: same names, same keyword arguments, same dicts back
    def create_inference_experiment(self, **kw: Any) -> dict[str, Any]:
        return self.invoke(Operation.CREATE, kw)

    def describe_inference_experiment(self, **kw: Any) -> dict[str, Any]:
        return self.invoke(Operation.DESCRIBE, kw)

    def list_inference_experiments(self, **kw: Any) -> dict[str, Any]:
        return self.invoke(Operation.LIST, kw)

    def start_inference_experiment(self, **kw: Any) -> dict[str, Any]:
        return self.invoke(Operation.START, kw)

    def stop_inference_experiment(self, **kw: Any) -> dict[str, Any]:
        return self.invoke(Operation.STOP, kw)

    def update_inference_experiment(self, **kw: Any) -> dict[str, Any]:
        return self.invoke(Operation.UPDATE, kw)

    def delete_inference_experiment(self, **kw: Any) -> dict[str, Any]:
        return self.invoke(Operation.DELETE, kw)

    # -- committing ---------------------------------------------------------------

    def commit(self, exp: Experiment, expected_version: int, entries: list[HistoryEntry]) -> None:
        """Save ``exp`` over ``expected_version`` with its history, then tell the listeners."""
        self.store.save(exp, expected_version, entries)
        self.tell(entries)

    def commit_many(self, saves: Sequence[Save]) -> list[bool]:
        """Save several records in one transaction (see :meth:`Store.save_many`), then tell
        the listeners of those written; for each, whether it was written."""
        written = self.store.save_many(saves)
        for (_, _, entries), ok in zip(saves, written, strict=True):
            if ok:
                self.tell(entries)
        return written

    def tell(self, entries: Sequence[HistoryEntry]) -> None:
        """Call the listeners with each committed entry: every listener the experiment
        machine's, those that asked the variant machine's too."""
        for listener, variants in self._listeners:
            for entry in entries:
                if variants or entry.machine == "experiment":
                    listener(entry)

    def transition(
        self,
        exp: Experiment,
        event: str,
        firing: Firing,
        request_id: str | None = None,
    ) -> list[HistoryEntry]:
        """Fire ``event`` on ``exp`` (in place) and return the entries to commit: the
        experiment's history entry, then one per variant transition its effect fired."""
        source = exp.status
        fire(exp, event, firing)
        reason = exp.status_reason if event in _REASON_FROM_RECORD else firing.reason
        entry = HistoryEntry(exp.name, firing.now, event, source, exp.status, reason, request_id)
        if not firing.variants:
            return [entry]
        entries = [entry]
        for t in firing.variants:
            entries.append(variant_entry(exp.name, firing.now, t, request_id))
        return entries

    def new_request_id(self) -> str:
        """A request id for a history entry when the caller gave none."""
        return f"{self._id_prefix}{next(self._id_counter):012x}"
