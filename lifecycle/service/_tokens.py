"""Opaque List NextTokens: a keyset position bound to the filters and sort it was issued for.

A token is ``base64url(json) + "." + HMAC``, signed with the deployment's
secret (``Store.token_secret``: random, made once, shared by every replica of
one database). Changing a byte, presenting it with other filters or another
sort, or a body the server did not write (even one signed with the secret) is
a ``ValidationError`` with the rule ``next-token``: after the signature the
body is checked member by member: a list of the position and the scope; the
position a list of the sort value (a time for the CreationTime sort, a string
for Name and Status) and a name; the scope the request's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from typing import Any

from lifecycle.errors import RuleId, ValidationError

__all__ = ["TokenCodec"]

#: the sorts whose position holds a time (epoch seconds); the others hold a string
_TIME_SORTS = frozenset({"CreationTime", None})


def _invalid() -> ValidationError:
    return ValidationError(
        "Invalid NextToken: it was not issued for this request's filters and sort, or it was changed",
        field="nextToken",
        rule=RuleId.NEXT_TOKEN,
    )


class TokenCodec:
    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("a token secret must not be empty")
        #: the key tokens are signed with
        self.secret = secret

    def _sign(self, body: bytes) -> str:
        return base64.urlsafe_b64encode(
            hmac.digest(self.secret, body, hashlib.sha256)[:18]
        ).decode()

    def encode(self, position: tuple[str | float, str], scope: dict[str, Any]) -> str:
        body = json.dumps([list(position), scope], separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + self._sign(body)

    def decode(self, token: str, scope: dict[str, Any]) -> tuple[str | float, str]:
        try:
            data, _, sig = token.partition(".")
            body = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        except (binascii.Error, ValueError):
            raise _invalid() from None
        # bytes, not str: compare_digest refuses a str with characters outside ASCII
        if not sig or not hmac.compare_digest(sig.encode(), self._sign(body).encode()):
            raise _invalid()
        try:
            content = json.loads(body)
        except ValueError:  # also a body that is not UTF-8
            raise _invalid() from None
        position = _position(content, scope)
        if position is None:
            raise _invalid()
        return position


def _position(content: Any, scope: dict[str, Any]) -> tuple[str | float, str] | None:
    """The position of a token's content, when the content is what ``encode`` writes for
    ``scope``; None otherwise."""
    if type(content) is not list or len(content) != 2:
        return None
    position, token_scope = content
    if type(position) is not list or len(position) != 2 or type(token_scope) is not dict:
        return None
    if token_scope != json.loads(json.dumps(scope, sort_keys=True)):
        return None
    value, name = position
    if type(name) is not str:
        return None
    if scope.get("SortBy") in _TIME_SORTS:
        if type(value) not in (int, float) or not math.isfinite(value):
            return None
        return float(value), name
    return (value, name) if type(value) is str else None
