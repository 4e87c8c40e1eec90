"""Opaque List NextTokens: a keyset position bound to the filters and sort it was issued for.

A token is ``base64url(json) + "." + HMAC``: changing a byte, or presenting
it with other filters or another sort, makes it a ``ValidationError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from lifecycle.errors import RuleId, ValidationError

__all__ = ["TokenCodec"]

_DEFAULT_SECRET = b"lifecycle-list-token-v1"


class TokenCodec:
    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or _DEFAULT_SECRET

    def _sign(self, body: bytes) -> str:
        return base64.urlsafe_b64encode(
            hmac.digest(self._secret, body, hashlib.sha256)[:18]
        ).decode()

    def encode(self, position: tuple[str | float, str], scope: Any) -> str:
        body = json.dumps([list(position), scope], separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + self._sign(body)

    def decode(self, token: str, scope: Any) -> tuple[str | float, str]:
        bad = ValidationError(
            "Invalid NextToken: it was not issued for this request's filters and sort, or it was changed",
            field="nextToken",
            rule=RuleId.NEXT_TOKEN,
        )
        try:
            data, _, sig = token.partition(".")
            body = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        except (binascii.Error, ValueError):
            raise bad from None
        if not sig or not hmac.compare_digest(sig, self._sign(body)):
            raise bad
        position, token_scope = json.loads(body)
        expected = json.loads(json.dumps(scope, sort_keys=True))
        if token_scope != expected:
            raise bad
        return (position[0], position[1])
