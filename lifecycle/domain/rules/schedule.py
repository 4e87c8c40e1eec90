"""Schedule rules (ValidationException): the effective schedule and its bounds."""

from __future__ import annotations

from lifecycle.domain.rules.base import Refusal
from lifecycle.errors import RuleId

__all__ = ["DAY", "DEFAULT_DURATION", "MAX_DURATION", "effective_schedule", "schedule_refusals"]

DAY = 86400.0
DEFAULT_DURATION = 7 * DAY
MAX_DURATION = 30 * DAY


def effective_schedule(start: float | None, end: float | None, now: float) -> tuple[float, float]:
    """The schedule an experiment runs on: no start means now, no end means 7 days after start."""
    eff_start = now if start is None else start
    eff_end = eff_start + DEFAULT_DURATION if end is None else end
    return eff_start, eff_end


def schedule_refusals(start: float, end: float, now: float, *, end_given: bool) -> list[Refusal]:
    """Schedule rules (ValidationException): end after start and after now, at most 30 days."""
    out: list[Refusal] = []
    if end <= start:
        out.append(
            Refusal(
                RuleId.SCHEDULE_END_AFTER_START,
                "Schedule.EndTime must be after Schedule.StartTime",
                "Schedule.EndTime",
            )
        )
    elif end - start > MAX_DURATION:
        out.append(
            Refusal(
                RuleId.SCHEDULE_MAX_DURATION,
                "The experiment may not run for more than 30 days (Schedule.EndTime - Schedule.StartTime)",
                "Schedule.EndTime",
            )
        )
    if end_given and end <= now:
        out.append(
            Refusal(
                RuleId.SCHEDULE_END_IN_FUTURE,
                "Schedule.EndTime must be in the future",
                "Schedule.EndTime",
            )
        )
    return out
