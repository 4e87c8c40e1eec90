"""The errors of `lifecycle`: one root, each error knowing its wire code.

The tree::

    LifecycleError                       (root; never raised itself)
    ├── ValidationError                  ValidationException    bad request, judged alone
    ├── ConflictError                    ConflictException      refused by a rule of the stored experiment
    │   └── StaleVersionError            ConflictException      someone else saved first
    ├── NotFoundError                    ResourceNotFound       no such experiment
    ├── ResourceInUseError               ResourceInUse          name or endpoint already taken
    ├── ResourceLimitExceededError       ResourceLimitExceeded  too many live experiments
    ├── StoreError                       InternalFailure        the store cannot be opened or used
    └── ProtocolError                    (wire-level; code given per instance)

Every error keeps what it is about (``name``, ``status``, ``event``, ``rule``,
``field``) so callers can act on it without parsing the message, and
``code`` is the ``__type`` the AWS JSON 1.1 protocol puts on the wire.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ConflictError",
    "LifecycleError",
    "NotFoundError",
    "ProtocolError",
    "ResourceInUseError",
    "ResourceLimitExceededError",
    "StaleVersionError",
    "StoreError",
    "ValidationError",
]


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
    """A rule of the stored experiment refuses the request; nothing changed."""

    code = "ConflictException"
    http_status = 400


class StaleVersionError(ConflictError):
    """The experiment changed between load and save; nothing was written."""


class NotFoundError(LifecycleError):
    code = "ResourceNotFound"
    http_status = 400


class ResourceInUseError(LifecycleError):
    code = "ResourceInUse"
    http_status = 400


class ResourceLimitExceededError(LifecycleError):
    code = "ResourceLimitExceeded"
    http_status = 400


class StoreError(LifecycleError):
    """The store cannot be opened or used (a corrupt file, no permission, no server)."""

    code = "InternalFailure"
    http_status = 500


class ProtocolError(LifecycleError):
    """An error of the wire itself (bad body, unknown operation, signature, size).

    Its code and HTTP status are given per instance.
    """

    def __init__(self, code: str, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]
        self.http_status = http_status  # type: ignore[misc]
