"""Who signed a request, and what that key may do: :class:`Principal`.

An authenticator (``SigV4Verifier``) answers each request it accepts with the
principal of the key that signed it: the access key id, the account the key
belongs to, and the operations it may call, as the credentials file's
``account_id`` and ``allow`` say (:func:`parse_allow`):

- ``all`` (the default): the seven operations;
- ``read``: ``DescribeInferenceExperiment`` and ``ListInferenceExperiments``;
- a comma-separated list of operation names.

:meth:`Principal.check` refuses an operation the key may not call with
``AccessDeniedError`` (HTTP 400 ``AccessDeniedException``); the wire layer
asks it right after the signature verifies, before anything else is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from lifecycle.domain.experiment import is_account_id
from lifecycle.domain.statuses import OPERATIONS, Operation
from lifecycle.errors import AccessDeniedError

__all__ = ["ALL_OPERATIONS", "READ_OPERATIONS", "Principal", "is_account_id", "parse_allow"]

#: what ``allow = all`` grants
ALL_OPERATIONS: frozenset[str] = frozenset(OPERATIONS)
#: what ``allow = read`` grants: the operations that change nothing
READ_OPERATIONS: frozenset[str] = frozenset({Operation.DESCRIBE.value, Operation.LIST.value})
_WORDS = {"all": ALL_OPERATIONS, "read": READ_OPERATIONS}


def parse_allow(text: str) -> frozenset[str]:
    """The operations an ``allow`` value grants; ValueError saying what is wrong (empty, an
    empty item, a name that is not one of the seven)."""
    value = text.strip()
    if not value:
        raise ValueError("is empty; use all, read, or a comma-separated list of operations")
    word = _WORDS.get(value.lower())
    if word is not None:
        return word
    names = [item.strip() for item in value.split(",")]
    if "" in names:
        raise ValueError(f"{value!r} has an empty item; separate the operations with commas")
    for name in names:
        if name not in ALL_OPERATIONS:
            shown = name if len(name) <= 60 else name[:60] + "..."
            raise ValueError(
                f"{shown!r} is not an operation; use all, read, or a comma-separated list of: "
                + ", ".join(OPERATIONS)
            )
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class Principal:
    """The signer of a request: its ``access_key`` id, its ``account_id`` (None: the account of
    the server it calls) and the operations it is ``allowed``."""

    access_key: str
    account_id: str | None = None
    allowed: frozenset[str] = ALL_OPERATIONS

    def check(self, operation: str) -> None:
        """Nothing when the key may call ``operation``, else ``AccessDeniedError``."""
        if operation not in self.allowed:
            granted = ", ".join(name for name in OPERATIONS if name in self.allowed)
            raise AccessDeniedError(
                operation,
                self.access_key,
                f"the credentials file allows this key only {granted}",
            )
