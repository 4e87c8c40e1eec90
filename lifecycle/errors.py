"""The errors of `lifecycle`: one root, each error knowing its wire code.

The tree (class, its wire code, its HTTP status, what it means)::

    LifecycleError                    InternalFailure        500  root; never raised itself
    ├── ValidationError               ValidationException    400  the request is wrong on its own
    ├── ConflictError                 ConflictException      400  a rule of the stored experiment refuses it
    │   └── StaleVersionError         ConflictException      400  someone else saved first; nothing written
    ├── NotFoundError                 ResourceNotFound       400  no such experiment
    ├── ResourceInUseError            ResourceInUse          400  a name or an endpoint is taken
    │   ├── NameInUseError            ResourceInUse          400    an experiment has that name
    │   ├── EndpointInUseError        ResourceInUse          400    the endpoint has a live experiment
    │   └── BulkCreateError           ResourceInUse          400    a bulk load broke either rule
    ├── ResourceLimitExceededError    ResourceLimitExceeded  400  too many live experiments
    │   └── LiveLimitError            ResourceLimitExceeded  400    the live limit is reached
    ├── TrimmedChangesError           TrimmedDataAccessException 410  a feed read behind the retention
    ├── StoreError                    InternalFailure        500  the store cannot be opened or used
    │   └── StoreUnavailableError     ServiceUnavailable     503  an outage: retry after ``retry_after`` s
    │   └── SchemaTooNewError         InternalFailure        500    its schema is newer than this build knows
    ├── ProtocolError                 (per subclass)              the wire itself is wrong
    │   ├── UnknownOperationError     UnknownOperationException  400  no such target
    │   │   ├── UnknownPathError      UnknownOperationException  404  no such path
    │   │   └── MethodNotAllowedError UnknownOperationException  405  not POST
    │   ├── SerializationError        SerializationException     400  not a JSON object, or its type
    │   ├── RequestTooLargeError      RequestEntityTooLarge      413
    │   ├── UnrecognizedClientError   UnrecognizedClientException 403  no such access key
    │   ├── InvalidSignatureError     InvalidSignatureException  403  the signature does not verify
    │   ├── AccessDeniedError         AccessDeniedException      400  the key may not do that operation
    │   └── ThrottlingError           ThrottlingException        400  over the rate limit; retry later
    ├── ActuatorError                 (not on the wire)           a step could not be carried out
    ├── DiagramError                  (not on the wire)           Graphviz could not render a diagram
    │   └── DiagramToolMissing                                      ``dot`` is not installed
    └── NotEmulatedError              UnknownOperationException  400  (``lifecycle.testing``'s mock) not one of the seven

Every error keeps what it is about (``name``, ``status``, ``event``, ``rule``,
``field``) so callers can act on it without parsing the message, and
``code`` is the ``__type`` the AWS JSON 1.1 protocol puts on the wire. The
leaf classes build their own messages from what they are about, so each
message is written once.

The module passes the house's ~350 lines on purpose: the tree is drawn and
defined in one place, as a few lines per class, and the rule ids its errors
carry (:class:`RuleId`) sit beside it, below every other module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

__all__ = [
    "AccessDeniedError",
    "ActuatorError",
    "BulkCreateError",
    "ConflictError",
    "DiagramError",
    "DiagramToolMissing",
    "EndpointInUseError",
    "InvalidSignatureError",
    "LifecycleError",
    "LiveLimitError",
    "MethodNotAllowedError",
    "NameInUseError",
    "NotEmulatedError",
    "NotFoundError",
    "ProtocolError",
    "Refusal",
    "RequestTooLargeError",
    "ResourceInUseError",
    "ResourceLimitExceededError",
    "RuleId",
    "SchemaTooNewError",
    "SerializationError",
    "StaleVersionError",
    "StoreError",
    "StoreUnavailableError",
    "ThrottlingError",
    "TrimmedChangesError",
    "UnknownOperationError",
    "UnknownPathError",
    "UnrecognizedClientError",
    "ValidationError",
    "not_an_object",
]


class RuleId(StrEnum):
    """The id of every rule the engine checks beyond the shapes, as its errors carry it in ``.rule``.

    :data:`lifecycle.domain.catalog.RULE_CATALOG` says what each asks and which
    operations meet it; the ``<event>-from-status`` ids come from
    :func:`lifecycle.domain.catalog.status_rule`, one per event of the table.
    """

    # the request alone (ValidationException)
    BODY_OBJECT = "body-object"
    NEXT_TOKEN = "next-token"
    UNIQUE_VARIANT_NAMES = "unique-variant-names"
    DISTINCT_SOURCE_AND_SHADOW = "distinct-source-and-shadow"
    VARIANTS_IN_MODEL_VARIANTS = "variants-in-model-variants"
    VARIANTS_IN_SHADOW_CONFIG = "variants-in-shadow-config"
    SCHEDULE_END_AFTER_START = "schedule-end-after-start"
    SCHEDULE_MAX_DURATION = "schedule-max-duration"
    SCHEDULE_END_IN_FUTURE = "schedule-end-in-future"
    SCHEDULE_IN_RANGE = "schedule-in-range"
    UPDATE_CHANGES_SOMETHING = "update-changes-something"
    SINGLE_PROMOTE = "single-promote"
    UNIQUE_DESIRED_VARIANT = "unique-desired-variant"
    DESIRED_VARIANT_REMOVED = "desired-variant-removed"
    # existence (ResourceNotFound)
    EXPERIMENT_EXISTS = "experiment-exists"
    # the stored experiment (ConflictException)
    KNOWN_VARIANT = "known-variant"
    PROMOTE_SHADOW_ONLY = "promote-shadow-only"
    PROMOTION_REPLACES_PRODUCTION = "promotion-replaces-production"
    PRODUCTION_REQUIRED = "production-required"
    DESIRED_VARIANT_REMOVED_BY_PROMOTION = "desired-variant-removed-by-promotion"
    RUNNING_UPDATE_FIELDS = "running-update-fields"
    SHADOW_CONFIG_CONSISTENT = "shadow-config-consistent"
    VERSIONED_SAVE = "versioned-save"
    # what the store enforces at create (ResourceInUse, ResourceLimitExceeded)
    UNIQUE_NAME = "unique-name"
    ONE_LIVE_EXPERIMENT_PER_ENDPOINT = "one-live-experiment-per-endpoint"
    MAX_LIVE_EXPERIMENTS = "max-live-experiments"
    # met by no request: the SQL stores' bulk load, and a shape error with no entry
    BULK_CREATE = "unique-name-and-live-endpoint"
    SHAPE = "shape"


@dataclass(frozen=True, slots=True)
class Refusal:
    """One broken rule, as a guard answers it: its id, why, and the field it is about.

    ``rule`` is a :class:`RuleId`, a ``<event>-from-status`` id, or a routing guard's
    name. A ``ConflictError`` carries every refusal that refused its request.
    """

    rule: str
    message: str
    field: str | None = None


class LifecycleError(Exception):
    """Root of every error this package raises."""

    code: ClassVar[str] = "InternalFailure"
    http_status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        status: str | None = None,
        event: str | None = None,
        rule: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.status = status
        self.event = event
        self.rule = rule
        self.field = field

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ValidationError(LifecycleError):
    """The request is wrong on its own, whatever is stored.

    ``errors`` holds one ``(field, message)`` pair per broken constraint.
    """

    code = "ValidationException"
    http_status = 400

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        rule: str | None = None,
        errors: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message, field=field, rule=rule)
        self.errors = errors if errors is not None else [(field or "", message)]


class ConflictError(LifecycleError):
    """A rule of the stored experiment refuses the request; nothing changed.

    ``refusals`` holds every rule that refused it (``rule`` and ``field`` are the first's).
    """

    code = "ConflictException"
    http_status = 400

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        status: str | None = None,
        event: str | None = None,
        rule: str | None = None,
        field: str | None = None,
        refusals: Sequence[Refusal] = (),
    ) -> None:
        super().__init__(message, name=name, status=status, event=event, rule=rule, field=field)
        self.refusals: tuple[Refusal, ...] = tuple(refusals)


class StaleVersionError(ConflictError):
    """The experiment changed between load and save; nothing was written (or deleted)."""

    def __init__(self, name: str, *, deleting: bool = False) -> None:
        what = "deleted" if deleting else "written"
        super().__init__(
            f"Inference experiment '{name}' was changed by another request; nothing was {what}",
            name=name,
            rule=RuleId.VERSIONED_SAVE,
        )


class NotFoundError(LifecycleError):
    """No inference experiment has that name."""

    code = "ResourceNotFound"
    http_status = 400

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Inference experiment '{name}' does not exist",
            name=name,
            rule=RuleId.EXPERIMENT_EXISTS,
        )


class ResourceInUseError(LifecycleError):
    code = "ResourceInUse"
    http_status = 400


class NameInUseError(ResourceInUseError):
    """An inference experiment of that name exists already."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Inference experiment '{name}' already exists", name=name, rule=RuleId.UNIQUE_NAME
        )


class EndpointInUseError(ResourceInUseError):
    """The endpoint already has a live (not Completed or Cancelled) experiment: ``holder``,
    when the store can say which."""

    def __init__(self, name: str, endpoint: str, holder: str | None = None) -> None:
        which = f" ('{holder}')" if holder else ""
        super().__init__(
            f"Endpoint '{endpoint}' already has a live inference experiment{which}; one live experiment per endpoint",
            name=name,
            rule=RuleId.ONE_LIVE_EXPERIMENT_PER_ENDPOINT,
        )
        self.endpoint = endpoint
        self.holder = holder


class BulkCreateError(ResourceInUseError):
    """A bulk load (``Store.bulk_create``) broke the unique-name or one-live-per-endpoint rule."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"bulk create refused: {detail}", rule=RuleId.BULK_CREATE)


class ResourceLimitExceededError(LifecycleError):
    code = "ResourceLimitExceeded"
    http_status = 400


class LiveLimitError(ResourceLimitExceededError):
    """As many experiments as the limit allows are live already."""

    def __init__(self, name: str, limit: int) -> None:
        super().__init__(
            f"At most {limit} inference experiments may be live (not Completed or Cancelled) at once",
            name=name,
            rule=RuleId.MAX_LIVE_EXPERIMENTS,
        )
        self.limit = limit


class TrimmedChangesError(LifecycleError):
    """A read of the change feed after a position whose successors the retention removed.

    ``trimmed_through`` is the last position removed: reading after it goes on
    from ``oldest``, the oldest change kept (None when none is), and skips
    what was removed between ``after`` and it.
    """

    code = "TrimmedDataAccessException"
    http_status = 410

    def __init__(self, after: int, trimmed_through: int, oldest: int | None) -> None:
        kept = f"the oldest kept is {oldest}" if oldest is not None else "none is kept now"
        super().__init__(
            f"position {after} is behind the change feed's retention: the changes up to position "
            f"{trimmed_through} were removed ({kept}); read after={trimmed_through} to go on from "
            "the oldest kept, knowing that the changes between were missed"
        )
        self.after = after
        self.trimmed_through = trimmed_through
        self.oldest = oldest


class StoreError(LifecycleError):
    """The store cannot be opened or used (a corrupt file, no permission, no server)."""

    code = "InternalFailure"
    http_status = 500


class StoreUnavailableError(StoreError):
    """The store cannot serve the request now, and nothing was written: a lost
    connection, a write lock held past the bound, a full disk, a database that
    does not answer in time. A client retries after ``retry_after`` seconds
    (the server sends it as ``Retry-After``; boto3 retries a 503 on its own).

    ``kind`` names the outage for metrics and logs: one of :attr:`KINDS`.
    """

    code = "ServiceUnavailable"
    http_status = 503
    #: every ``kind``: a bounded label set
    KINDS: ClassVar[tuple[str, ...]] = (
        "lock_timeout",
        "disk_full",
        "connection",
        "timeout",
        "read_only",
        "io",
        "busy",
    )

    def __init__(self, message: str, *, kind: str, retry_after: int = 1) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {', '.join(self.KINDS)}, not {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


class SchemaTooNewError(StoreError):
    """The database's schema is at a version this build does not know yet; it is not opened.

    A later build migrated it. ``where`` names the database (a SQLite file, a
    PostgreSQL schema), ``found`` is its version and ``known`` the newest this
    build knows. Nothing was written.
    """

    def __init__(self, where: str, found: int, known: int) -> None:
        super().__init__(
            f"{where} is at schema version {found}, newer than this build of lifecycle knows "
            f"(version {known}): run a build that knows version {found}, or give another store"
        )
        self.where = where
        self.found = found
        self.known = known


class ProtocolError(LifecycleError):
    """An error of the wire itself (bad body, unknown operation, signature, size).

    Each subclass has its code and HTTP status.
    """

    code: ClassVar[str] = "InternalFailure"

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        super().__init__(message, rule=rule)


class UnknownOperationError(ProtocolError):
    """No such operation: an ``X-Amz-Target`` this API does not have (or none)."""

    code = "UnknownOperationException"
    http_status = 400


class UnknownPathError(UnknownOperationError):
    """A path other than ``/`` (and the server's documented ones)."""

    http_status = 404


class MethodNotAllowedError(UnknownOperationError):
    """A method other than ``POST`` on ``/``."""

    http_status = 405


class SerializationError(ProtocolError):
    code = "SerializationException"
    http_status = 400


def not_an_object(payload: object) -> SerializationError:
    """The refusal of a request body (or an ``invoke`` payload) that is not a JSON object."""
    if isinstance(payload, list | tuple):
        kind = "an array"
    elif isinstance(payload, str):
        kind = "a string"
    elif isinstance(payload, bool):
        kind = "a boolean"
    elif isinstance(payload, int | float):
        kind = "a number"
    elif payload is None:
        kind = "null"
    else:
        kind = f"a {type(payload).__name__}"
    return SerializationError(
        f"the request body must be a JSON object, not {kind}", rule=RuleId.BODY_OBJECT
    )


class RequestTooLargeError(ProtocolError):
    code = "RequestEntityTooLarge"
    http_status = 413


class UnrecognizedClientError(ProtocolError):
    code = "UnrecognizedClientException"
    http_status = 403


class InvalidSignatureError(ProtocolError):
    code = "InvalidSignatureException"
    http_status = 403


class AccessDeniedError(ProtocolError):
    """A signed request from a key that may not do ``operation``; nothing was done.

    ``key`` is the access key id, ``reason`` says why when it is not the key's list of
    operations (its account is not served here, say).
    """

    code = "AccessDeniedException"
    http_status = 400

    def __init__(self, operation: str, key: str, reason: str | None = None) -> None:
        why = reason or "the key's allowed operations in the credentials file do not include it"
        super().__init__(f"User: {key} is not authorized to perform: sagemaker:{operation} ({why})")
        self.operation = operation
        self.key = key


class ThrottlingError(ProtocolError):
    """A request over its client's rate limit (``lifecycle serve --rate-limit``); nothing was
    done, and the client retries later (boto3 retries this code with backoff)."""

    code = "ThrottlingException"
    http_status = 400


class ActuatorError(LifecycleError):
    """A step could not be carried out. The reconciler retries it with backoff; one that is
    not ``retryable`` fails the experiment at once. Never sent on the wire."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class DiagramError(LifecycleError):
    """Graphviz could not render a diagram."""


#: the name the project is published under (``pip install``); the import package is ``lifecycle``
DISTRIBUTION = "inference-lifecycle"


def install_hint(extra: str) -> str:
    """The command that installs the optional ``extra``, for the messages of ImportErrors."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


#: how to get Graphviz's ``dot``, for the diagram errors' messages
GRAPHVIZ_HINT = "install the Debian package graphviz (apt-get install graphviz)"


class DiagramToolMissing(DiagramError):
    """Graphviz's ``dot`` program is not on PATH."""

    def __init__(self) -> None:
        super().__init__(
            f"Graphviz's `dot` program is not on PATH: {GRAPHVIZ_HINT}, "
            "or ask for --format mermaid, dot or matrix instead"
        )


class NotEmulatedError(LifecycleError, NotImplementedError):
    """A SageMaker operation ``lifecycle.testing.mock_sagemaker()`` does not answer (it
    answers only the seven inference-experiment ones)."""

    code = "UnknownOperationException"
    http_status = 400

    def __init__(self, operation: str, answered: Sequence[str]) -> None:
        super().__init__(
            f"SageMaker operation {operation!r} is not emulated by lifecycle.testing.mock_sagemaker(); "
            f"it answers only {', '.join(answered)} (beside moto's mock_aws(), in process, "
            "moto answers the others)",
            event=operation,
        )
        self.operation = operation
