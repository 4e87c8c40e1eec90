"""The guards, one module per family; each answers *why*, not just no.

Every rule returns a list of :class:`Refusal` (empty when the rule passes),
each naming the rule and the field it is about. The machine turns a refusal
into our ``ConflictError``; the service turns a refusal of a request-alone
rule into a ``ValidationError``.

- ``base``: :class:`Refusal`, :class:`Firing` (what an event is fired with), ``UNSET``;
- ``schedule``: the effective schedule and its bounds;
- ``stop``: :class:`StopPlan` and the stop rules;
- ``update``: :class:`UpdatePlan` and what an update may change;
- ``routing``: the guards that pick between the rows of one event.

:data:`GUARDS` maps every guard named in the tables to its rule.
"""

from __future__ import annotations

from collections.abc import Callable

from lifecycle.domain.rules.base import UNSET, Firing, Refusal, VariantConfig, VariantTransition
from lifecycle.domain.rules.routing import ROUTING_GUARDS
from lifecycle.domain.rules.schedule import (
    DAY,
    DEFAULT_DURATION,
    MAX_DURATION,
    effective_schedule,
    schedule_refusals,
    whole_ms,
)
from lifecycle.domain.rules.stop import (
    StopPlan,
    plan_stop,
    stop_request_refusals,
    stop_variant_names,
    variant_action_rules,
)
from lifecycle.domain.rules.update import (
    UpdatePlan,
    update_rules_created,
    update_rules_running,
    update_variant_names,
)

__all__ = [
    "ANY_STATUS_RULES",
    "DAY",
    "DEFAULT_DURATION",
    "GUARDS",
    "MAX_DURATION",
    "UNSET",
    "Firing",
    "Refusal",
    "StopPlan",
    "UpdatePlan",
    "VariantConfig",
    "VariantTransition",
    "effective_schedule",
    "plan_stop",
    "schedule_refusals",
    "stop_request_refusals",
    "whole_ms",
]

#: rules of an event that hold in any status: an event sent in a status with no row for it
#: is refused for that, and for these too (``explain`` lists both; ``invoke`` raises the first)
ANY_STATUS_RULES: dict[str, Callable[[Firing], list[Refusal]]] = {
    "stop": stop_variant_names,
    "update": update_variant_names,
}

#: every guard named in the tables, by name
GUARDS: dict[str, Callable[[Firing], list[Refusal]]] = {
    **ROUTING_GUARDS,
    "update_rules_created": update_rules_created,
    "update_rules_running": update_rules_running,
    "variant_action_rules": variant_action_rules,
}
