"""Checking AWS Signature Version 4 on incoming requests (``--auth sigv4``).

A :class:`SigV4Verifier` holds access-key/secret pairs and, for each request,
rebuilds the canonical request, the string to sign and the HMAC-SHA256
signing-key chain exactly as the AWS SDKs do (botocore's ``SigV4Auth``), then
compares signatures in constant time. It plugs into
``lifecycle.http.protocol.handle(auth=...)``, which runs it before the target
or the body are looked at, so a refused request reaches nothing.

Refusals (HTTP 403):

- ``UnrecognizedClientException``: no ``Authorization`` header, or its
  access key id is not in the credentials file.
- ``InvalidSignatureException``: anything else: a malformed header, an
  algorithm other than ``AWS4-HMAC-SHA256``, a missing ``X-Amz-Date`` or one
  that does not match the credential scope, a time more than 15 minutes
  from the server's clock, ``host`` not signed, a signed header missing, an
  ``X-Amz-Content-SHA256`` that is not the body's hash, or a signature that
  does not match.

The region and service named in the credential scope are taken as the
client signed them (any region is accepted: the server answers for one
region, but a client configured for another still proves it holds the
secret).

The credentials file has the format of ``~/.aws/credentials``: INI sections
(any names), each with ``aws_access_key_id`` and ``aws_secret_access_key``,
and optionally what the key may do (:mod:`lifecycle.http.access`):

- ``account_id``: the 12-digit account the key belongs to (default: the
  server's ``--account-id``); a key of another account is served only by a
  service that serves that account, and is refused ``AccessDeniedException``
  otherwise;
- ``allow``: ``all`` (the default), ``read`` (Describe and List only), or a
  comma-separated list of operation names; any other operation is refused
  ``AccessDeniedException`` (HTTP 400), nothing done.

Other keys (``region``, ``aws_session_token``) are ignored; ``#`` and ``;``
start comments. A bad value stops the server at startup with a
``CredentialsError`` naming the file, the section and the field::

    [ci]
    aws_access_key_id = AKIDEXAMPLE
    aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY

    [dashboard]
    aws_access_key_id = AKIADASHBOARD
    aws_secret_access_key = another-secret
    allow = read

    [team-b]
    aws_access_key_id = AKIATEAMB
    aws_secret_access_key = a-third-secret
    account_id = 111122223333
    allow = DescribeInferenceExperiment, StopInferenceExperiment

:meth:`SigV4Verifier.verify` answers a request it accepts with the key's
:class:`~lifecycle.http.access.Principal`.
"""

from __future__ import annotations

import configparser
import hashlib
import hmac
import posixpath
import time
from calendar import timegm
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from lifecycle.errors import InvalidSignatureError, UnrecognizedClientError
from lifecycle.http.access import ALL_OPERATIONS, Principal, is_account_id, parse_allow

__all__ = [
    "ALGORITHM",
    "MAX_CLOCK_SKEW_SECONDS",
    "AccessKey",
    "CredentialsError",
    "SigV4Verifier",
    "load_credentials",
]

ALGORITHM = "AWS4-HMAC-SHA256"
#: how far X-Amz-Date may be from the server's clock, as AWS allows
MAX_CLOCK_SKEW_SECONDS = 15 * 60
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class CredentialsError(ValueError):
    """The credentials file cannot be read or holds no usable key."""


@dataclass(frozen=True, slots=True)
class AccessKey:
    """One key of the credentials file: its secret, and the principal it signs as."""

    secret: str
    principal: Principal


def load_credentials(path: str | Path, *, account_id: str | None = None) -> dict[str, AccessKey]:
    """Read a ``~/.aws/credentials``-style file into ``{access_key_id: AccessKey}``; a key with
    no ``account_id`` line belongs to ``account_id`` (None: the server's)."""
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00none")
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as exc:
        raise CredentialsError(f"cannot read credentials file {path}: {exc.strerror}") from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise CredentialsError(f"credentials file {path} is not valid INI: {exc}") from None
    keys: dict[str, AccessKey] = {}
    sections: dict[str, str] = {}
    for section in parser.sections():
        key_id = parser.get(section, "aws_access_key_id", fallback="").strip()
        secret = parser.get(section, "aws_secret_access_key", fallback="").strip()
        if not key_id or not secret:
            raise CredentialsError(
                f"credentials file {path}: section [{section}] needs both "
                "aws_access_key_id and aws_secret_access_key"
            )
        key = AccessKey(secret, _principal(path, section, key_id, parser[section], account_id))
        seen = keys.get(key_id)
        if seen is not None and seen.secret != secret:
            raise CredentialsError(
                f"credentials file {path}: access key {key_id} is listed twice with "
                "different secrets"
            )
        if seen is not None and seen != key:
            raise CredentialsError(
                f"credentials file {path}: access key {key_id} is listed twice, in "
                f"[{sections[key_id]}] and [{section}], with different account_id or allow"
            )
        keys[key_id] = key
        sections.setdefault(key_id, section)
    if not keys:
        raise CredentialsError(f"credentials file {path} lists no access key")
    return keys


def _principal(
    path: str | Path,
    section: str,
    key_id: str,
    fields: Mapping[str, str],
    default_account: str | None,
) -> Principal:
    """The principal of one section: its ``account_id`` and ``allow``, checked."""
    account = fields.get("account_id")
    if account is not None:
        account = account.strip()
        if not is_account_id(account):
            raise CredentialsError(
                f"credentials file {path}: section [{section}]: account_id {account[:40]!r} "
                "is not a 12-digit AWS account id"
            )
    allowed = ALL_OPERATIONS
    allow = fields.get("allow")
    if allow is not None:
        try:
            allowed = parse_allow(allow)
        except ValueError as exc:
            raise CredentialsError(
                f"credentials file {path}: section [{section}]: allow {exc}"
            ) from None
    return Principal(key_id, account or default_account, allowed)


def _invalid(message: str) -> InvalidSignatureError:
    return InvalidSignatureError(message)


class SigV4Verifier:
    """Verifies SigV4-signed requests against a fixed set of credentials."""

    def __init__(
        self,
        credentials: Mapping[str, str | AccessKey],
        *,
        account_id: str | None = None,
        clock: Callable[[], float] = time.time,
        max_skew_seconds: float = MAX_CLOCK_SKEW_SECONDS,
    ) -> None:
        """``credentials`` maps each access key id to its secret (a key of ``account_id``,
        allowed every operation) or to an :class:`AccessKey`; ``account_id`` None is the
        account of the server the verifier guards."""
        if not credentials:
            raise CredentialsError("SigV4 checking needs at least one access key")
        self._keys_by_id = {
            key_id: key
            if isinstance(key, AccessKey)
            else AccessKey(key, Principal(key_id, account_id))
            for key_id, key in credentials.items()
        }
        self._clock = clock
        self._max_skew = max_skew_seconds
        self._keys: dict[tuple[str, str, str, str], bytes] = {}

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        account_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> SigV4Verifier:
        """The verifier of the keys in a credentials file (:func:`load_credentials`)."""
        return cls(load_credentials(path, account_id=account_id), clock=clock)

    @property
    def access_keys(self) -> frozenset[str]:
        return frozenset(self._keys_by_id)

    def verify(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Principal:
        """The principal of the key that signed the request, or a 403 error."""
        authorization = headers.get("authorization")
        if not authorization:
            raise UnrecognizedClientError(
                "the request is not signed: the Authorization header is missing"
            )
        algorithm, _, rest = authorization.strip().partition(" ")
        if algorithm != ALGORITHM:
            raise _invalid(f"unsupported signing algorithm {algorithm[:40]!r}; use {ALGORITHM}")
        fields: dict[str, str] = {}
        for part in rest.split(","):
            key, sep, value = part.strip().partition("=")
            if sep:
                fields[key] = value.strip()
        credential = fields.get("Credential")
        signed = fields.get("SignedHeaders")
        signature = fields.get("Signature")
        if credential is None or signed is None or signature is None:
            raise _invalid("the Authorization header needs Credential, SignedHeaders and Signature")
        scope_parts = credential.split("/")
        if len(scope_parts) != 5 or scope_parts[4] != "aws4_request" or not all(scope_parts):
            raise _invalid(
                "Credential must be <access key>/<yyyymmdd>/<region>/<service>/aws4_request"
            )
        key_id, date, region, service, _ = scope_parts
        access_key = self._keys_by_id.get(key_id)
        if access_key is None:
            raise UnrecognizedClientError(
                "the security token included in the request is invalid: "
                "the access key id is not recognised"
            )
        amz_date = headers.get("x-amz-date", "")
        self._check_time(amz_date, date)

        signed_names = signed.split(";")
        if "host" not in signed_names:
            raise _invalid("the host header must be signed")
        canonical_headers = []
        for header in signed_names:
            header_value = headers.get(header)
            if header_value is None or header != header.lower():
                raise _invalid(f"signed header {header[:60]!r} is not in the request")
            canonical_headers.append(f"{header}:{' '.join(header_value.split())}\n")

        body_hash = hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256
        declared = headers.get("x-amz-content-sha256")
        if declared is not None and declared != body_hash:
            raise _invalid("X-Amz-Content-SHA256 is not the SHA-256 of the body")

        canonical_request = "\n".join(
            (
                method.upper(),
                _canonical_path(path),
                _canonical_query(query),
                "".join(canonical_headers),
                signed,
                body_hash,
            )
        )
        string_to_sign = "\n".join(
            (
                ALGORITHM,
                amz_date,
                f"{date}/{region}/{service}/aws4_request",
                hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
            )
        )
        expected = hmac.new(
            self._signing_key(key_id, access_key.secret, date, region, service),
            string_to_sign.encode("utf-8"),
            hashlib.sha256,
        ).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise _invalid(
                "the request signature we calculated does not match the signature you provided; "
                "check your secret access key and signing method"
            )
        return access_key.principal

    def _check_time(self, amz_date: str, scope_date: str) -> None:
        try:
            signed_at = timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            raise _invalid("X-Amz-Date is missing or not in the form YYYYMMDDTHHMMSSZ") from None
        if amz_date[:8] != scope_date:
            raise _invalid(
                f"the credential scope date {scope_date[:8]!r} is not the date of X-Amz-Date"
            )
        now = self._clock()
        if abs(now - signed_at) > self._max_skew:
            raise _invalid(
                f"signature expired or not yet valid: X-Amz-Date {amz_date} is more than "
                f"{int(self._max_skew)} seconds from the server time"
            )

    def _signing_key(self, key_id: str, secret: str, date: str, region: str, service: str) -> bytes:
        cache_key = (key_id, date, region, service)
        key = self._keys.get(cache_key)
        if key is None:
            key = f"AWS4{secret}".encode()
            for part in (date, region, service, "aws4_request"):
                key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
            if len(self._keys) > 1024:
                self._keys.clear()
            self._keys[cache_key] = key
        return key


def _canonical_path(path: str) -> str:
    """The URI as botocore signs it: normalised, then percent-encoded (``/`` and ``~`` kept)."""
    if not path:
        return "/"
    normalized = posixpath.normpath(path)
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    if normalized.startswith("//"):
        normalized = "/" + normalized.lstrip("/")
    return quote(normalized, safe="/~")


def _canonical_query(query: str) -> str:
    """The query string as botocore signs a URL's: pairs sorted, values as sent."""
    if not query:
        return ""
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&"))
    return "&".join(f"{key}={value}" for key, value in pairs)
