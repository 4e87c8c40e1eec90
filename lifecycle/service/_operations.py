"""The table of operations: for each, its request shape, its checks in order, and what it does.

``OPERATION_SPECS[op]`` is an :class:`OperationSpec`: ``check`` judges the
rules of the request in order, one :class:`Stage` at a time (the request
alone, then existence, then the stored experiment), handing each stage to a
:class:`Gate`, and returns what ``apply`` needs; ``apply`` makes the change and
returns the response. ``ExperimentService.invoke`` passes the gate that raises
the first stage with a refusal (:data:`RAISE`); ``explain`` one that collects
that same stage's refusals, one error per rule, and stops the check
(:class:`Collect`). So the two can never disagree on the order or the rules.

Two kinds of rule are judged by what ``apply`` does rather than before it: an
event's guards (the machine refuses while it fires) and the rules the store
enforces at create (one live experiment per endpoint, the live limit, a unique
name). ``check`` judges them beforehand only when explaining (``gate.explaining``), from
the same guards (:func:`explain_event`) and a dry-run query of the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from lifecycle.domain.experiment import Experiment, HistoryEntry, Variant
from lifecycle.domain.machine import explain_event
from lifecycle.domain.rules import Firing, stop_request_refusals
from lifecycle.domain.statuses import ExperimentStatus, Operation
from lifecycle.errors import (
    EndpointInUseError,
    LifecycleError,
    LiveLimitError,
    NameInUseError,
    NotFoundError,
    ValidationError,
)
from lifecycle.service._checks import Gate, OperationSpec, Response, Stage
from lifecycle.service._plans import (
    create_refusals,
    create_schedule,
    delete_refusals,
    infra,
    stop_plan,
    update_plan,
    update_request_refusals,
    update_schedule_refusals,
)
from lifecycle.service._responses import describe_response, summary
from lifecycle.stores.base import ListQuery, SortBy, sort_key
from lifecycle.wire import shapes

if TYPE_CHECKING:
    from lifecycle.service.service import ExperimentService

__all__ = ["OPERATION_SPECS"]

# -- shared steps --------------------------------------------------------------------


def _load(svc: ExperimentService, name: str, gate: Gate) -> Experiment | None:
    """The existence stage: the stored experiment, or None (ResourceNotFound) when there is none."""
    exp = svc.store.get(svc.account_id, name)
    if exp is None:
        gate.passes(Stage.of([NotFoundError(name)]))
    return exp


class _Firing(NamedTuple):
    """A Start, Stop or Update ready to fire: the record, its event, what it is fired with."""

    exp: Experiment
    event: str
    firing: Firing


def _fire_when_passed(exp: Experiment, event: str, firing: Firing, gate: Gate) -> _Firing | None:
    """The stored experiment's rules, then ``event`` ready to fire: its guards are judged
    while it fires, and beforehand only when explaining."""
    if gate.explaining and not gate.passes(
        Stage.conflicts(exp, event, explain_event(exp, event, firing))
    ):
        return None
    return _Firing(exp, event, firing)


def _fire_and_save(svc: ExperimentService, ready: _Firing, request_id: str | None) -> Response:
    exp = ready.exp
    version = exp.version
    entries = svc.transition(exp, ready.event, ready.firing, request_id or svc.new_request_id())
    svc.commit(exp, version, entries)
    return {"InferenceExperimentArn": exp.arn}


# -- the operations ------------------------------------------------------------------


def _check_create(
    svc: ExperimentService,
    req: shapes.CreateInferenceExperimentRequest,
    now: float,
    gate: Gate,
) -> tuple[shapes.CreateInferenceExperimentRequest, tuple[float, float], float] | None:
    schedule = create_schedule(req, now)
    if not gate.passes(Stage.validation(create_refusals(req, schedule, now))):
        return None
    if gate.explaining and not gate.passes(Stage.of(_store_rules(svc, req))):
        return None
    return req, schedule, now


def _store_rules(
    svc: ExperimentService, req: shapes.CreateInferenceExperimentRequest
) -> list[LifecycleError]:
    """The rules the store enforces at create, asked of it through queries (a dry run), in
    the service's account."""
    out: list[LifecycleError] = []
    if svc.store.get(svc.account_id, req.Name) is not None:
        out.append(NameInUseError(req.Name))
    live = [e for status in ExperimentStatus if not status.terminal for e in _all(svc, status)]
    if any(e.endpoint_name == req.EndpointName for e in live):
        out.append(EndpointInUseError(req.Name, req.EndpointName))
    limit = svc.max_live_experiments
    if limit is not None and len(live) >= limit:
        out.append(LiveLimitError(req.Name, limit))
    return out


def _all(svc: ExperimentService, status: ExperimentStatus) -> list[Experiment]:
    out: list[Experiment] = []
    after = None
    while True:
        page = svc.store.list(
            ListQuery(
                svc.account_id,
                status=status,
                sort_by="Name",
                descending=False,
                limit=100,
                after=after,
            )
        )
        out.extend(page.items)
        if not page.has_more:
            return out
        after = sort_key(page.items[-1], "Name")


def _apply_create(
    svc: ExperimentService,
    ready: tuple[shapes.CreateInferenceExperimentRequest, tuple[float, float], float],
    request_id: str | None,
) -> Response:
    req, (start, end), now = ready
    exp = Experiment(
        account=svc.account_id,
        name=req.Name,
        arn=svc.arn(req.Name),
        endpoint_name=req.EndpointName,
        role_arn=req.RoleArn,
        variants=[
            Variant(
                v.VariantName, v.ModelName, infra(v.InfrastructureConfig), pending="provisioned"
            )
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
        data_storage_config=req.DataStorageConfig.model_dump(exclude_none=True)
        if req.DataStorageConfig
        else None,
        tags=[t.model_dump() for t in req.Tags or ()],
        entered_at=now,
        due_at=now + svc.settle_seconds,
    )
    entry = HistoryEntry(
        exp.name, now, "create", None, exp.status, None, request_id or svc.new_request_id(), 1
    )
    svc.store.create(exp, entry, max_live=svc.max_live_experiments)
    svc.tell([entry])
    return {"InferenceExperimentArn": exp.arn}


def _check_describe(
    svc: ExperimentService,
    req: shapes.DescribeInferenceExperimentRequest,
    now: float,
    gate: Gate,
) -> Experiment | None:
    return _load(svc, req.Name, gate)


def _apply_describe(svc: ExperimentService, exp: Experiment, request_id: str | None) -> Response:
    return describe_response(exp)


def _describe_to_encode(
    svc: ExperimentService, exp: Experiment, request_id: str | None
) -> Response:
    return describe_response(exp, fresh=False)


_SCOPE = (
    "NameContains",
    "Type",
    "StatusEquals",
    "CreationTimeAfter",
    "CreationTimeBefore",
    "LastModifiedTimeAfter",
    "LastModifiedTimeBefore",
    "SortBy",
    "SortOrder",
)


def _check_list(
    svc: ExperimentService,
    req: shapes.ListInferenceExperimentsRequest,
    now: float,
    gate: Gate,
) -> tuple[ListQuery, dict[str, Any]] | None:
    scope = {k: getattr(req, k) for k in _SCOPE}
    scope["Account"] = svc.account_id  # a token of one account is no token in another
    after = None
    if req.NextToken:
        try:
            after = svc.tokens.decode(req.NextToken, scope)
        except ValidationError as err:
            if not gate.passes(Stage.of([err])):
                return None
    sort_by: SortBy = req.SortBy or "CreationTime"
    query = ListQuery(
        svc.account_id,
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
        after=after,
    )
    return query, scope


def _apply_list(
    svc: ExperimentService, ready: tuple[ListQuery, dict[str, Any]], request_id: str | None
) -> Response:
    query, scope = ready
    page = svc.store.list(query)
    out: Response = {"InferenceExperiments": [summary(e) for e in page.items]}
    if page.has_more and page.items:
        out["NextToken"] = svc.tokens.encode(sort_key(page.items[-1], query.sort_by), scope)
    return out


def _check_start(
    svc: ExperimentService,
    req: shapes.StartInferenceExperimentRequest,
    now: float,
    gate: Gate,
) -> _Firing | None:
    exp = _load(svc, req.Name, gate)
    if exp is None:
        return None
    return _fire_when_passed(exp, "start", Firing(exp, now, svc.settle_seconds), gate)


def _check_stop(
    svc: ExperimentService, req: shapes.StopInferenceExperimentRequest, now: float, gate: Gate
) -> _Firing | None:
    plan = stop_plan(req)
    if not gate.passes(Stage.validation(stop_request_refusals(plan))):
        return None
    exp = _load(svc, req.Name, gate)
    if exp is None:
        return None
    return _fire_when_passed(exp, "stop", Firing(exp, now, svc.settle_seconds, plan), gate)


def _check_update(
    svc: ExperimentService,
    req: shapes.UpdateInferenceExperimentRequest,
    now: float,
    gate: Gate,
) -> _Firing | None:
    plan = update_plan(req)
    if not gate.passes(Stage.validation(update_request_refusals(req, plan, now))):
        return None
    exp = _load(svc, req.Name, gate)
    if exp is None:
        return None
    if not gate.passes(Stage.validation(update_schedule_refusals(exp, plan, now))):
        return None
    return _fire_when_passed(exp, "update", Firing(exp, now, svc.settle_seconds, plan), gate)


def _check_delete(
    svc: ExperimentService,
    req: shapes.DeleteInferenceExperimentRequest,
    now: float,
    gate: Gate,
) -> Experiment | None:
    exp = _load(svc, req.Name, gate)
    if exp is None:
        return None
    return exp if gate.passes(Stage.conflicts(exp, "delete", delete_refusals(exp))) else None


def _apply_delete(svc: ExperimentService, exp: Experiment, request_id: str | None) -> Response:
    svc.store.delete(exp.account, exp.name, exp.version)
    return {"InferenceExperimentArn": exp.arn}


#: every operation of the API: its request shape, its check order, its change
OPERATION_SPECS: dict[str, OperationSpec[Any, Any]] = {
    Operation.CREATE: OperationSpec(
        shapes.CreateInferenceExperimentRequest, _check_create, _apply_create
    ),
    Operation.DESCRIBE: OperationSpec(
        shapes.DescribeInferenceExperimentRequest,
        _check_describe,
        _apply_describe,
        _describe_to_encode,
    ),
    Operation.LIST: OperationSpec(shapes.ListInferenceExperimentsRequest, _check_list, _apply_list),
    Operation.START: OperationSpec(
        shapes.StartInferenceExperimentRequest, _check_start, _fire_and_save
    ),
    Operation.STOP: OperationSpec(
        shapes.StopInferenceExperimentRequest, _check_stop, _fire_and_save
    ),
    Operation.UPDATE: OperationSpec(
        shapes.UpdateInferenceExperimentRequest, _check_update, _fire_and_save
    ),
    Operation.DELETE: OperationSpec(
        shapes.DeleteInferenceExperimentRequest, _check_delete, _apply_delete
    ),
}
