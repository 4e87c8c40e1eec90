"""Schedule rules (ValidationException): the effective schedule and its bounds; times in ms.

Every time the engine stores and returns is a whole number of milliseconds,
as SageMaker's are (:func:`whole_ms`), so a time read with Describe and sent
back, as boto3 does to the microsecond, compares equal; and every time lies
in years 1 to 9999 (:data:`EARLIEST`, :data:`LATEST`), so every response is
one a client can parse.
"""

from __future__ import annotations

from datetime import UTC, datetime

from lifecycle.domain.rules.base import Refusal
from lifecycle.errors import RuleId

__all__ = [
    "DAY",
    "DEFAULT_DURATION",
    "EARLIEST",
    "LATEST",
    "MAX_DURATION",
    "effective_schedule",
    "schedule_refusals",
    "whole_ms",
]

DAY = 86400.0
DEFAULT_DURATION = 7 * DAY
MAX_DURATION = 30 * DAY
#: 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the times a datetime (and so boto3) can hold
EARLIEST, LATEST = -62135596800.0, 253402300799.0


def whole_ms(t: float) -> float:
    """``t`` (epoch seconds) to the nearest whole millisecond."""
    return round(t * 1000) / 1000


def _iso(t: float) -> str:
    if EARLIEST <= t <= LATEST:
        return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
    return f"{t:.3f} epoch seconds"


def effective_schedule(start: float | None, end: float | None, now: float) -> tuple[float, float]:
    """The schedule an experiment runs on: no start means now, no end means 7 days after start."""
    eff_start = now if start is None else start
    eff_end = eff_start + DEFAULT_DURATION if end is None else end
    return whole_ms(eff_start), whole_ms(eff_end)


def schedule_refusals(start: float, end: float, now: float, *, end_given: bool) -> list[Refusal]:
    """Schedule rules (ValidationException): end after start and after now, at most 30 days,
    and both in years 1 to 9999 (the defaults included)."""
    out: list[Refusal] = []
    for member, t in (("StartTime", start), ("EndTime", end)):
        if not EARLIEST <= t <= LATEST:
            out.append(
                Refusal(
                    RuleId.SCHEDULE_IN_RANGE,
                    f"Schedule.{member} would be {_iso(t)}, outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z",
                    f"Schedule.{member}",
                )
            )
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
