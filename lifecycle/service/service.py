"""ExperimentService: one method per operation, each request -> one event -> one versioned save.

Every transport goes through :meth:`ExperimentService.invoke`, which takes
and returns the wire shapes as plain dicts. A request is validated once
(ValidationException), its experiment loaded once (ResourceNotFound), one
event fired on it through the machine (ConflictException, naming the rule),
and the result saved once with the version that was loaded: a concurrent
change makes the save a ``StaleVersionError`` (a ConflictException) and
writes nothing. :meth:`explain` answers the same questions without
changing anything and lists every rule a request breaks.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from lifecycle.domain.experiment import Experiment, HistoryEntry, Variant
from lifecycle.domain.machine import explain_event, fire, refusal_error
from lifecycle.domain.rules import (
    Firing,
    Refusal,
    StopPlan,
    UpdatePlan,
    stop_request_refusals,
)
from lifecycle.domain.statuses import ExperimentStatus
from lifecycle.errors import (
    LifecycleError,
    ProtocolError,
    ResourceInUseError,
    ResourceLimitExceededError,
    ValidationError,
)
from lifecycle.service._plans import (
    create_refusals,
    create_schedule,
    delete_refusals,
    infra,
    not_found,
    stop_plan,
    update_plan,
    update_request_refusals,
    update_schedule_refusals,
    validation_error,
)
from lifecycle.service._responses import describe_response, summary
from lifecycle.service._tokens import TokenCodec
from lifecycle.stores.base import ListQuery, Save, SortBy, Store, sort_key
from lifecycle.wire.shapes import parse_request

__all__ = ["OPERATIONS", "ExperimentService", "Listener"]

OPERATIONS = (
    "CreateInferenceExperiment",
    "DescribeInferenceExperiment",
    "ListInferenceExperiments",
    "StartInferenceExperiment",
    "StopInferenceExperiment",
    "UpdateInferenceExperiment",
    "DeleteInferenceExperiment",
)

#: called after each committed transition, with its history entry
Listener = Callable[[HistoryEntry], None]


class ExperimentService:
    """The seven operations of the inference-experiment lifecycle over one store."""

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
        self.account_id = account_id
        self.settle_seconds = settle_seconds
        self.max_live_experiments = max_live_experiments
        self._tokens = TokenCodec(token_secret)
        # request ids: a random per-service prefix and a counter (unique, and cheap on the hot path)
        hexed = uuid.uuid4().hex
        self._id_prefix = f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-"
        self._id_counter = itertools.count()
        self._listeners: list[Listener] = []
        self._handlers: dict[str, Callable[[Any, str | None], dict[str, Any]]] = {
            "CreateInferenceExperiment": self._create,
            "DescribeInferenceExperiment": self._describe,
            "ListInferenceExperiments": self._list,
            "StartInferenceExperiment": self._start,
            "StopInferenceExperiment": self._stop,
            "UpdateInferenceExperiment": self._update,
            "DeleteInferenceExperiment": self._delete,
        }

    # -- the one entry point ----------------------------------------------------

    def invoke(self, operation: str, payload: object, *, request_id: str | None = None) -> dict[str, Any]:
        """Run one operation on a wire-shaped payload; return the wire-shaped response."""
        handler = self._handlers.get(operation)
        if handler is None:
            raise ProtocolError("UnknownOperationException", f"Operation '{operation}' is not one of {', '.join(OPERATIONS)}")
        return handler(parse_request(operation, payload), request_id)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(entry)`` after each committed transition."""
        self._listeners.append(listener)

    def arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:inference-experiment/{name}"

    # boto3-style methods: same names, same keyword arguments, same dicts back
    def create_inference_experiment(self, **kw: Any) -> dict[str, Any]:
        return self.invoke("CreateInferenceExperiment", kw)

    def describe_inference_experiment(self, **kw: Any) -> dict[str, Any]:
        return self.invoke("DescribeInferenceExperiment", kw)

    def list_inference_experiments(self, **kw: Any) -> dict[str, Any]:
        return self.invoke("ListInferenceExperiments", kw)

    def start_inference_experiment(self, **kw: Any) -> dict[str, Any]:
        return self.invoke("StartInferenceExperiment", kw)

    def stop_inference_experiment(self, **kw: Any) -> dict[str, Any]:
        return self.invoke("StopInferenceExperiment", kw)

    def update_inference_experiment(self, **kw: Any) -> dict[str, Any]:
        return self.invoke("UpdateInferenceExperiment", kw)

    def delete_inference_experiment(self, **kw: Any) -> dict[str, Any]:
        return self.invoke("DeleteInferenceExperiment", kw)

    # -- committing ---------------------------------------------------------------

    def commit(self, exp: Experiment, expected_version: int, entries: list[HistoryEntry]) -> None:
        """Save ``exp`` over ``expected_version`` with its history, then tell the listeners."""
        self.store.save(exp, expected_version, entries)
        self._tell(entries)

    def commit_many(self, saves: Sequence[Save]) -> list[bool]:
        """Save several records in one transaction (see :meth:`Store.save_many`), then tell
        the listeners of those written; for each, whether it was written."""
        written = self.store.save_many(saves)
        for (_, _, entries), ok in zip(saves, written, strict=True):
            if ok:
                self._tell(entries)
        return written

    def _tell(self, entries: Sequence[HistoryEntry]) -> None:
        for listener in self._listeners:
            for entry in entries:
                listener(entry)

    def transition(
        self,
        exp: Experiment,
        event: str,
        firing: Firing,
        request_id: str | None = None,
    ) -> HistoryEntry:
        """Fire ``event`` on ``exp`` (in place) and return the history entry to commit."""
        source = exp.status
        fire(exp, event, firing)
        reason = exp.status_reason if event in ("stop", "fail", "stopped") else firing.reason
        return HistoryEntry(exp.name, firing.now, event, source, exp.status, reason, request_id)

    def _new_request_id(self) -> str:
        return f"{self._id_prefix}{next(self._id_counter):012x}"

    def _load(self, name: str) -> Experiment:
        exp = self.store.get(name)
        if exp is None:
            raise not_found(name)
        return exp

    def _fire_and_save(self, exp: Experiment, event: str, firing: Firing, request_id: str | None) -> dict[str, Any]:
        version = exp.version
        entry = self.transition(exp, event, firing, request_id or self._new_request_id())
        self.commit(exp, version, [entry])
        return {"InferenceExperimentArn": exp.arn}

    # -- operations ---------------------------------------------------------------

    def _create(self, req: Any, request_id: str | None) -> dict[str, Any]:
        now = self.clock()
        start, end = create_schedule(req, now)
        refusals = create_refusals(req, (start, end), now)
        if refusals:
            raise validation_error(refusals)
        exp = Experiment(
            name=req.Name,
            arn=self.arn(req.Name),
            endpoint_name=req.EndpointName,
            role_arn=req.RoleArn,
            variants=[
                Variant(v.VariantName, v.ModelName, infra(v.InfrastructureConfig), pending="provisioned")
                for v in req.ModelVariants
            ],
            shadow_mode_config=req.ShadowModeConfig.model_dump(exclude_none=True),
            start_time=start,
            end_time=end,
            creation_time=now,
            last_modified_time=now,
            type=req.Type,
            description=req.Description,
            kms_key=req.KmsKey,
            data_storage_config=req.DataStorageConfig.model_dump(exclude_none=True) if req.DataStorageConfig else None,
            tags=[t.model_dump() for t in req.Tags or ()],
            entered_at=now,
            due_at=now + self.settle_seconds,
        )
        entry = HistoryEntry(exp.name, now, "create", None, exp.status, None, request_id or self._new_request_id(), 1)
        self.store.create(exp, entry, max_live=self.max_live_experiments)
        self._tell([entry])
        return {"InferenceExperimentArn": exp.arn}

    def _describe(self, req: Any, request_id: str | None) -> dict[str, Any]:
        return describe_response(self._load(req.Name))

    def _list_query(self, req: Any) -> tuple[ListQuery, dict[str, Any]]:
        scope = {
            k: getattr(req, k)
            for k in ("NameContains", "Type", "StatusEquals", "CreationTimeAfter", "CreationTimeBefore",
                      "LastModifiedTimeAfter", "LastModifiedTimeBefore", "SortBy", "SortOrder")
        }
        sort_by: SortBy = req.SortBy or "CreationTime"
        query = ListQuery(
            name_contains=req.NameContains,
            type=req.Type,
            status=ExperimentStatus(req.StatusEquals) if req.StatusEquals else None,
            created_after=req.CreationTimeAfter,
            created_before=req.CreationTimeBefore,
            modified_after=req.LastModifiedTimeAfter,
            modified_before=req.LastModifiedTimeBefore,
            sort_by=sort_by,
            descending=(req.SortOrder or "Descending") == "Descending",
            limit=req.MaxResults or 10,
            after=self._tokens.decode(req.NextToken, scope) if req.NextToken else None,
        )
        return query, scope

    def _list(self, req: Any, request_id: str | None) -> dict[str, Any]:
        query, scope = self._list_query(req)
        page = self.store.list(query)
        out: dict[str, Any] = {"InferenceExperiments": [summary(e) for e in page.items]}
        if page.has_more and page.items:
            out["NextToken"] = self._tokens.encode(sort_key(page.items[-1], query.sort_by), scope)
        return out

    def _start(self, req: Any, request_id: str | None) -> dict[str, Any]:
        exp = self._load(req.Name)
        return self._fire_and_save(exp, "start", Firing(exp, self.clock(), self.settle_seconds), request_id)

    def _stop(self, req: Any, request_id: str | None) -> dict[str, Any]:
        plan = stop_plan(req)
        refusals = stop_request_refusals(plan)
        if refusals:
            raise validation_error(refusals)
        exp = self._load(req.Name)
        return self._fire_and_save(exp, "stop", Firing(exp, self.clock(), self.settle_seconds, plan), request_id)

    def _update(self, req: Any, request_id: str | None) -> dict[str, Any]:
        now = self.clock()
        plan = update_plan(req)
        refusals = update_request_refusals(req, plan, now)
        if refusals:
            raise validation_error(refusals)
        exp = self._load(req.Name)
        refusals = update_schedule_refusals(exp, plan, now)
        if refusals:
            raise validation_error(refusals)
        return self._fire_and_save(exp, "update", Firing(exp, now, self.settle_seconds, plan), request_id)

    def _delete(self, req: Any, request_id: str | None) -> dict[str, Any]:
        exp = self._load(req.Name)
        refusals = delete_refusals(exp)
        if refusals:
            raise refusal_error(exp.name, exp.status, "delete", refusals)
        self.store.delete(exp.name, exp.version)
        return {"InferenceExperimentArn": exp.arn}

    # -- explain ----------------------------------------------------------------------

    def explain(self, operation: str, payload: object) -> list[LifecycleError]:
        """Every rule ``payload`` would break, one error per rule; empty exactly when
        :meth:`invoke` would succeed now. Changes nothing."""
        if operation not in self._handlers:
            return [ProtocolError("UnknownOperationException", f"Operation '{operation}' is not one of {', '.join(OPERATIONS)}")]
        try:
            req = parse_request(operation, payload)
        except ValidationError as err:
            return [ValidationError(f"1 validation error detected: {msg}", field=f, rule=err.rule, errors=[(f, msg)]) for f, msg in err.errors]
        now = self.clock()
        return [*self._explain(operation, req, now)]

    def _explain(self, operation: str, req: BaseModel, now: float) -> list[LifecycleError]:
        r: Any = req
        early: list[Refusal] = []
        if operation == "CreateInferenceExperiment":
            early = create_refusals(r, create_schedule(r, now), now)
        elif operation == "StopInferenceExperiment":
            early = stop_request_refusals(stop_plan(r))
        elif operation == "UpdateInferenceExperiment":
            early = update_request_refusals(r, update_plan(r), now)
        elif operation == "ListInferenceExperiments":
            try:
                self._list_query(r)
            except ValidationError as err:
                return [err]
        if early:
            return [validation_error([x]) for x in early]
        if operation == "CreateInferenceExperiment":
            return self._explain_create(r)
        if operation == "ListInferenceExperiments":
            return []
        exp = self.store.get(r.Name)
        if exp is None:
            return [not_found(r.Name)]
        if operation == "DeleteInferenceExperiment":
            return [refusal_error(exp.name, exp.status, "delete", [x]) for x in delete_refusals(exp)]
        if operation == "DescribeInferenceExperiment":
            return []
        plan: StopPlan | UpdatePlan | None = None
        if operation == "StartInferenceExperiment":
            event = "start"
        elif operation == "StopInferenceExperiment":
            event, plan = "stop", stop_plan(r)
        else:
            event, plan = "update", update_plan(r)
            sched = update_schedule_refusals(exp, plan, now)
            if sched:
                return [validation_error([x]) for x in sched]
        firing = Firing(exp, now, plan=plan)
        return [refusal_error(exp.name, exp.status, event, [x]) for x in explain_event(exp, event, firing)]

    def _explain_create(self, req: Any) -> list[LifecycleError]:
        if self.store.get(req.Name) is not None:
            return [ResourceInUseError(f"Inference experiment '{req.Name}' already exists", name=req.Name, rule="unique-name")]
        # the endpoint and limit rules are decided by the store at create time; a dry run
        # asks the same store through a query of live experiments
        live = [e for status in ExperimentStatus if not status.terminal for e in self._all(status)]
        out: list[LifecycleError] = []
        if any(e.endpoint_name == req.EndpointName for e in live):
            out.append(ResourceInUseError(f"Endpoint '{req.EndpointName}' already has a live inference experiment; one live experiment per endpoint", name=req.Name, rule="one-live-experiment-per-endpoint"))
        if self.max_live_experiments is not None and len(live) >= self.max_live_experiments:
            out.append(ResourceLimitExceededError(f"At most {self.max_live_experiments} inference experiments may be live (not Completed or Cancelled) at once", name=req.Name, rule="max-live-experiments"))
        return out

    def _all(self, status: ExperimentStatus) -> list[Experiment]:
        out: list[Experiment] = []
        after = None
        while True:
            page = self.store.list(ListQuery(status=status, sort_by="Name", descending=False, limit=100, after=after))
            out.extend(page.items)
            if not page.has_more:
                return out
            after = sort_key(page.items[-1], "Name")

