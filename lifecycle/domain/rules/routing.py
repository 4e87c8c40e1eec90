"""Routing guards: which row of an event is taken (the start time, where an update
began, the stop's DesiredState, whether the variant steps are done).

No request meets these: they choose between rows the reconciler fires.
"""

from __future__ import annotations

from collections.abc import Callable

from lifecycle.domain.rules.base import Firing, Refusal
from lifecycle.domain.statuses import DesiredState, ExperimentStatus

__all__ = ["ROUTING_GUARDS"]


def _start_time_in_future(f: Firing) -> list[Refusal]:
    if f.experiment.start_time > f.now:
        return []
    return [
        Refusal("start_time_in_future", "Schedule.StartTime has been reached", "Schedule.StartTime")
    ]


def _start_time_reached(f: Firing) -> list[Refusal]:
    if f.experiment.start_time <= f.now:
        return []
    return [
        Refusal(
            "start_time_reached", "Schedule.StartTime is still in the future", "Schedule.StartTime"
        )
    ]


def _left(status: ExperimentStatus) -> Callable[[Firing], list[Refusal]]:
    def rule(f: Firing) -> list[Refusal]:
        if f.experiment.update_origin is status:
            return []
        return [
            Refusal(f"left_{status.value.lower()}", f"the update did not start from {status.value}")
        ]

    return rule


def _desired(state: DesiredState) -> Callable[[Firing], list[Refusal]]:
    def rule(f: Firing) -> list[Refusal]:
        if f.experiment.desired_state is state:
            return []
        return [
            Refusal(
                f"desired_{state.value.lower()}", f"the stop's DesiredState is not {state.value}"
            )
        ]

    return rule


def _variant_steps_done(f: Firing) -> list[Refusal]:
    pending = [v.name for v in f.experiment.variants if v.pending is not None]
    if not pending:
        return []
    return [
        Refusal("variant_steps_done", f"variant steps still to carry out: {', '.join(pending)}")
    ]


ROUTING_GUARDS: dict[str, Callable[[Firing], list[Refusal]]] = {
    "start_time_in_future": _start_time_in_future,
    "start_time_reached": _start_time_reached,
    "left_created": _left(ExperimentStatus.CREATED),
    "left_running": _left(ExperimentStatus.RUNNING),
    "variant_steps_done": _variant_steps_done,
    "desired_completed": _desired(DesiredState.COMPLETED),
    "desired_cancelled": _desired(DesiredState.CANCELLED),
}
