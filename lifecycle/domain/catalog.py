"""Every rule a request can break, by the id the engine's errors carry in ``.rule``.

Every id is a :class:`RuleId` member (or made by :func:`status_rule`), and the
code that checks a rule (``domain/rules``, ``machine.py``, ``service/_plans.py``,
the stores) names it that way; this catalogue says, for each, the wire code of
its error, the operations that can meet it and what it asks. A test compares it
with :class:`RuleId`, both ways, and ``diagrams/rules.md`` is rendered from it
(:func:`rules_markdown`). The ``<event>-from-status`` ids are made from the
experiment table, so they follow it.

Shape rules (lengths, patterns, enums, required members from botocore's service
model) are not listed one by one: their error's ``.rule`` is the kind of
constraint (``pattern``, ``max-length``, ...) and its ``.field`` the member;
the testing strategies name each ``<Shape>:<constraint>``, for example
``InferenceExperimentName:pattern``.
"""

from __future__ import annotations

from typing import NamedTuple

from lifecycle.domain.statuses import Operation
from lifecycle.domain.table import EXPERIMENT_TABLE, OPERATION_EVENTS
from lifecycle.errors import RuleId

__all__ = [
    "INTERNAL_RULES",
    "RULE_CATALOG",
    "Rule",
    "RuleId",
    "rules_markdown",
    "status_rule",
    "variant_status_rule",
]


#: ids of :class:`RuleId` that no request of the API can meet, so the catalogue leaves them out
INTERNAL_RULES = frozenset({RuleId.BULK_CREATE, RuleId.SHAPE})


def status_rule(event: str) -> str:
    """``<event>-from-status``: ``event`` sent to an experiment in a status with no row for it."""
    return f"{event}-from-status"


def variant_status_rule(event: str) -> str:
    """``variant-<event>-from-status``: a variant event in a status with no row for it (only the
    engine's own effects fire variant events, after the experiment's guards passed)."""
    return f"variant-{event}-from-status"


class Rule(NamedTuple):
    """One rule: its id, the wire code of its error, who can meet it, and what it asks."""

    id: str
    code: str
    operations: tuple[Operation, ...]
    asks: str


_V, _C, _NF = "ValidationException", "ConflictException", "ResourceNotFound"
_O, _R = Operation, RuleId
_BY_NAME = (_O.DESCRIBE, _O.START, _O.STOP, _O.UPDATE, _O.DELETE)


def _status_rules() -> list[Rule]:
    """``<event>-from-status``: each operation's event, from the statuses the table has rows for."""
    out = []
    for operation, event in OPERATION_EVENTS.items():
        allowed = EXPERIMENT_TABLE.sources(event)
        sources = [s.value for s in EXPERIMENT_TABLE.statuses if s in allowed]
        out.append(
            Rule(
                status_rule(event),
                _C,
                (Operation(operation),),
                f"the experiment is {' or '.join(sources)}",
            )
        )
    deletable = [s.value for s in EXPERIMENT_TABLE.statuses if s in EXPERIMENT_TABLE.deletable_from]
    out.append(
        Rule(
            status_rule("delete"),
            _C,
            (_O.DELETE,),
            f"the experiment is {', '.join(deletable[:-1])} or {deletable[-1]}",
        )
    )
    return out


_RULES: list[Rule] = [
    # the request alone (ValidationException), checked first
    Rule(
        _R.BODY_OBJECT,
        "SerializationException",
        tuple(Operation),
        "the request body (over HTTP, through invoke and the mock alike) is a JSON object",
    ),
    Rule(
        _R.NEXT_TOKEN,
        _V,
        (_O.LIST,),
        "NextToken is one this service issued for the same filters and sort, unchanged",
    ),
    Rule(
        _R.UNIQUE_VARIANT_NAMES, _V, (_O.CREATE, _O.UPDATE), "ModelVariants names each variant once"
    ),
    Rule(
        _R.DISTINCT_SOURCE_AND_SHADOW,
        _V,
        (_O.CREATE, _O.UPDATE),
        "ShadowModeConfig's source and shadow variants differ",
    ),
    Rule(
        _R.VARIANTS_IN_MODEL_VARIANTS,
        _V,
        (_O.CREATE,),
        "the source and shadow variants of ShadowModeConfig are in ModelVariants",
    ),
    Rule(
        _R.VARIANTS_IN_SHADOW_CONFIG,
        _V,
        (_O.CREATE,),
        "every variant of ModelVariants is ShadowModeConfig's source or shadow",
    ),
    Rule(
        _R.SCHEDULE_END_AFTER_START,
        _V,
        (_O.CREATE, _O.UPDATE),
        "Schedule.EndTime is after Schedule.StartTime",
    ),
    Rule(
        _R.SCHEDULE_MAX_DURATION, _V, (_O.CREATE, _O.UPDATE), "the schedule is at most 30 days long"
    ),
    Rule(
        _R.SCHEDULE_END_IN_FUTURE,
        _V,
        (_O.CREATE, _O.UPDATE),
        "a Schedule.EndTime given is after now",
    ),
    Rule(
        _R.SCHEDULE_IN_RANGE,
        _V,
        (_O.CREATE, _O.UPDATE),
        "the effective schedule (defaults included) lies in years 1 to 9999",
    ),
    Rule(_R.UPDATE_CHANGES_SOMETHING, _V, (_O.UPDATE,), "the update names a member besides Name"),
    Rule(_R.SINGLE_PROMOTE, _V, (_O.STOP,), "ModelVariantActions promotes at most one variant"),
    Rule(_R.UNIQUE_DESIRED_VARIANT, _V, (_O.STOP,), "DesiredModelVariants names each variant once"),
    Rule(
        _R.DESIRED_VARIANT_REMOVED,
        _V,
        (_O.STOP,),
        "DesiredModelVariants configures no variant whose action is Remove",
    ),
    # the experiment must exist
    Rule(_R.EXPERIMENT_EXISTS, _NF, _BY_NAME, "an inference experiment of that Name exists"),
    # the stored experiment (ConflictException)
    *_status_rules(),
    Rule(
        _R.KNOWN_VARIANT,
        _C,
        (_O.STOP, _O.UPDATE),
        "every variant named is one of the experiment's (the variant set is fixed at create)",
    ),
    Rule(
        _R.PROMOTE_SHADOW_ONLY,
        _C,
        (_O.STOP,),
        "only the shadow variant is promoted, never production",
    ),
    Rule(
        _R.PROMOTION_REPLACES_PRODUCTION,
        _C,
        (_O.STOP,),
        "when the shadow is promoted, production is not Retain",
    ),
    Rule(
        _R.PRODUCTION_REQUIRED,
        _C,
        (_O.STOP,),
        "production is removed only when the shadow is promoted",
    ),
    Rule(
        _R.DESIRED_VARIANT_REMOVED_BY_PROMOTION,
        _C,
        (_O.STOP,),
        "DesiredModelVariants does not configure the production variant a promotion removes",
    ),
    Rule(
        _R.RUNNING_UPDATE_FIELDS,
        _C,
        (_O.UPDATE,),
        "a Running experiment changes only Description, Schedule.EndTime and SamplingPercentage",
    ),
    Rule(
        _R.SHADOW_CONFIG_CONSISTENT,
        _C,
        (_O.UPDATE,),
        "ShadowModeConfig names the experiment's two variants as source and shadow",
    ),
    Rule(
        _R.VERSIONED_SAVE,
        _C,
        (_O.START, _O.STOP, _O.UPDATE, _O.DELETE),
        "nobody changed the experiment between its load and its save",
    ),
    # what the store enforces at create
    Rule(_R.UNIQUE_NAME, "ResourceInUse", (_O.CREATE,), "no inference experiment has that Name"),
    Rule(
        _R.ONE_LIVE_EXPERIMENT_PER_ENDPOINT,
        "ResourceInUse",
        (_O.CREATE,),
        "the endpoint has no live (not Completed or Cancelled) experiment",
    ),
    Rule(
        _R.MAX_LIVE_EXPERIMENTS,
        "ResourceLimitExceeded",
        (_O.CREATE,),
        "fewer live experiments than the limit (100 by default) exist",
    ),
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
        "patterns, enums and required members, from botocore's SageMaker service model) are",
        "ValidationExceptions whose rule is the kind of constraint (`pattern`, `max-length`,",
        "`min-value`, `enum`, `not-null`, `unknown-member`, `type`) and whose field is the",
        "member; `lifecycle.testing.strategies` names each `<Shape>:<constraint>`, such as",
        "`InferenceExperimentName:pattern`.",
        "",
        "Over HTTP, every error a rule raised carries the rule's id in the response header",
        "`X-Lifecycle-Rule` (the body stays AWS's: `__type` and `Message`); boto3 shows it in",
        "`err.response['ResponseMetadata']['HTTPHeaders']['x-lifecycle-rule']`.",
        "",
        "| rule | error | operations | the request must meet |",
        "|---|---|---|---|",
    ]
    for rule in RULE_CATALOG.values():
        operations = ", ".join(op.short for op in rule.operations)
        lines.append(f"| `{rule.id}` | {rule.code} | {operations} | {rule.asks} |")
    return "\n".join(lines) + "\n"
