"""Every rule a request can break, by the id the engine's errors carry in ``.rule``.

The engine raises these ids where it checks them (``domain/rules``, ``machine.py``,
``service/_plans.py``, the stores); this catalogue says, for each, the wire code of its
error, the operations that can meet it and what it asks. A test compares it with
the ids the engine's code can raise, both ways, and ``diagrams/rules.md`` is
rendered from it (:func:`rules_markdown`). The ``<event>-from-status`` ids are made
from the experiment table, so they follow it.

Shape rules (lengths, patterns, enums, required members from botocore's service
model) are not listed one by one: their id is ``<Shape>:<constraint>``, for
example ``InferenceExperimentName:pattern``.
"""

from __future__ import annotations

from typing import NamedTuple

from lifecycle.domain.table import EXPERIMENT_TABLE

__all__ = ["RULE_CATALOG", "Rule", "rules_markdown"]


class Rule(NamedTuple):
    """One rule: its id, the wire code of its error, who can meet it, and what it asks."""

    id: str
    code: str
    operations: tuple[str, ...]
    asks: str


_V, _C, _NF = "ValidationException", "ConflictException", "ResourceNotFound"
_CREATE, _DESCRIBE, _LIST = "CreateInferenceExperiment", "DescribeInferenceExperiment", "ListInferenceExperiments"
_START, _STOP, _UPDATE, _DELETE = (
    "StartInferenceExperiment",
    "StopInferenceExperiment",
    "UpdateInferenceExperiment",
    "DeleteInferenceExperiment",
)
_BY_NAME = (_DESCRIBE, _START, _STOP, _UPDATE, _DELETE)
_OPERATION_OF_EVENT = {"start": _START, "stop": _STOP, "update": _UPDATE}


def _status_rules() -> list[Rule]:
    """``<event>-from-status``: each operation's event, from the statuses the table has rows for."""
    out = []
    for event, operation in _OPERATION_OF_EVENT.items():
        allowed = EXPERIMENT_TABLE.sources(event)
        sources = [s.value for s in EXPERIMENT_TABLE.statuses if s in allowed]
        out.append(Rule(f"{event}-from-status", _C, (operation,), f"the experiment is {' or '.join(sources)}"))
    deletable = [s.value for s in EXPERIMENT_TABLE.statuses if s in EXPERIMENT_TABLE.deletable_from]
    out.append(Rule("delete-from-status", _C, (_DELETE,), f"the experiment is {', '.join(deletable[:-1])} or {deletable[-1]}"))
    return out


_RULES: list[Rule] = [
    # the request alone (ValidationException), checked first
    Rule("body-object", _V, (_CREATE, _DESCRIBE, _LIST, _START, _STOP, _UPDATE, _DELETE), "the request body is a JSON object"),
    Rule("next-token", _V, (_LIST,), "NextToken is one this service issued for the same filters and sort, unchanged"),
    Rule("unique-variant-names", _V, (_CREATE, _UPDATE), "ModelVariants names each variant once"),
    Rule("distinct-source-and-shadow", _V, (_CREATE, _UPDATE), "ShadowModeConfig's source and shadow variants differ"),
    Rule("variants-in-model-variants", _V, (_CREATE,), "the source and shadow variants of ShadowModeConfig are in ModelVariants"),
    Rule("variants-in-shadow-config", _V, (_CREATE,), "every variant of ModelVariants is ShadowModeConfig's source or shadow"),
    Rule("schedule-end-after-start", _V, (_CREATE, _UPDATE), "Schedule.EndTime is after Schedule.StartTime"),
    Rule("schedule-max-duration", _V, (_CREATE, _UPDATE), "the schedule is at most 30 days long"),
    Rule("schedule-end-in-future", _V, (_CREATE, _UPDATE), "a Schedule.EndTime given is after now"),
    Rule("update-changes-something", _V, (_UPDATE,), "the update names a member besides Name"),
    Rule("single-promote", _V, (_STOP,), "ModelVariantActions promotes at most one variant"),
    Rule("unique-desired-variant", _V, (_STOP,), "DesiredModelVariants names each variant once"),
    Rule("desired-variant-removed", _V, (_STOP,), "DesiredModelVariants configures no variant whose action is Remove"),
    # the experiment must exist
    Rule("experiment-exists", _NF, _BY_NAME, "an inference experiment of that Name exists"),
    # the stored experiment (ConflictException)
    *_status_rules(),
    Rule("known-variant", _C, (_STOP, _UPDATE), "every variant named is one of the experiment's (the variant set is fixed at create)"),
    Rule("promote-shadow-only", _C, (_STOP,), "only the shadow variant is promoted, never production"),
    Rule("promotion-replaces-production", _C, (_STOP,), "when the shadow is promoted, production is not Retain"),
    Rule("production-required", _C, (_STOP,), "production is removed only when the shadow is promoted"),
    Rule("desired-variant-removed-by-promotion", _C, (_STOP,), "DesiredModelVariants does not configure the production variant a promotion removes"),
    Rule("running-update-fields", _C, (_UPDATE,), "a Running experiment changes only Description, Schedule.EndTime and SamplingPercentage"),
    Rule("shadow-config-consistent", _C, (_UPDATE,), "ShadowModeConfig names the experiment's two variants as source and shadow"),
    Rule("versioned-save", _C, (_START, _STOP, _UPDATE, _DELETE), "nobody changed the experiment between its load and its save"),
    # what the store enforces at create
    Rule("unique-name", "ResourceInUse", (_CREATE,), "no inference experiment has that Name"),
    Rule("one-live-experiment-per-endpoint", "ResourceInUse", (_CREATE,), "the endpoint has no live (not Completed or Cancelled) experiment"),
    Rule("max-live-experiments", "ResourceLimitExceeded", (_CREATE,), "fewer live experiments than the limit (100 by default) exist"),
]

#: every rule a request can break, by id, in the order they are checked (the request
#: alone, then existence, then the stored experiment; create's store rules last)
RULE_CATALOG: dict[str, Rule] = {rule.id: rule for rule in _RULES}


def rules_markdown() -> str:
    """``diagrams/rules.md``: the catalogue as a Markdown table."""
    lines = [
        "<!-- generated from lifecycle/domain/catalog.py by lifecycle.diagrams.write_all; do not edit -->",
        "# Rules",
        "",
        "Every rule a request can break, in the order they are checked: the request alone,",
        "then that the experiment exists, then the stored experiment. A refused request's",
        "error (and each entry `explain` returns) carries the rule's id in `.rule`, its wire",
        "code in `.code`, and the field it is about in `.field`. Shape rules (lengths,",
        "patterns, enums and required members, from botocore's SageMaker service model) have",
        "ids of the form `<Shape>:<constraint>`, such as `InferenceExperimentName:pattern`.",
        "",
        "| rule | error | operations | the request must meet |",
        "|---|---|---|---|",
    ]
    for rule in RULE_CATALOG.values():
        operations = ", ".join(op.replace("InferenceExperiments", "").replace("InferenceExperiment", "") for op in rule.operations)
        lines.append(f"| `{rule.id}` | {rule.code} | {operations} | {rule.asks} |")
    return "\n".join(lines) + "\n"
