"""AWS JSON 1.1 between bytes and ``ExperimentService.invoke`` (SPEC §5).

Pure: no sockets, no event loop. :func:`handle` takes one request as plain
values and returns one :class:`WireResponse`. The ASGI server
(``lifecycle.http.app``) calls it, and so can anything else that holds request
bytes, such as a botocore event hook that answers a boto3 client in process.

What it does, in order:

1. ``POST /`` only (other methods or paths: ``UnknownOperationException``,
   405 / 404).
2. A body over :data:`MAX_BODY_BYTES` (1 MiB): 413 ``RequestEntityTooLarge``.
3. When an authenticator is given (SigV4, ``lifecycle.http.sigv4``), the
   request must pass it: 403 otherwise.
4. ``X-Amz-Target: SageMaker.<Operation>`` names one of the service's
   operations: ``UnknownOperationException`` otherwise; and the signer may
   call it (its :class:`~lifecycle.http.access.Principal`): 400
   ``AccessDeniedException`` otherwise.
5. ``Content-Type`` is ``application/x-amz-json-1.1`` or
   ``application/json`` (parameters such as ``charset`` allowed):
   ``SerializationException`` otherwise.
6. The body is UTF-8 JSON holding one object, with no ``NaN``/``Infinity``,
   no lone surrogate escapes and at most :data:`MAX_DEPTH` levels of nesting:
   ``SerializationException`` otherwise. An empty body reads as ``{}`` (what
   AWS JSON services do for a request with no members).
7. ``service.invoke(operation, payload, request_id=...)``; its ``LifecycleError`` becomes the
   error envelope ``{"__type": CODE, "Message": TEXT}`` with the
   ``X-Amzn-ErrorType`` header and the error's HTTP status.

:func:`admit` does steps 1 to 4 and :func:`dispatch` the rest, so the app can
do what it must between the two (throttle the signer, pick the service of its
account) without touching the service first; :func:`handle` is both.

Every response carries ``x-amzn-RequestId``. Anything else that escapes is a
bug: it is logged with its traceback and answered with HTTP 500
``InternalFailure``, never raised.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lifecycle.errors import (
    LifecycleError,
    MethodNotAllowedError,
    RequestTooLargeError,
    SerializationError,
    StoreUnavailableError,
    UnknownOperationError,
    UnknownPathError,
    not_an_object,
)
from lifecycle.http.access import Principal
from lifecycle.stores.base import WouldWait

__all__ = [
    "JSON_CONTENT_TYPE",
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "RULE_HEADER",
    "TARGET_PREFIX",
    "Admission",
    "Authenticator",
    "Service",
    "WireResponse",
    "admit",
    "dispatch",
    "error_response",
    "handle",
    "json_response",
    "refusal",
    "unavailable_response",
]

#: the largest request body accepted (1 MiB); one byte more is a 413
MAX_BODY_BYTES = 1024 * 1024
#: the deepest nesting of arrays and objects a body may have
MAX_DEPTH = 64
TARGET_PREFIX = "SageMaker."
#: the response header naming the rule that refused a request
RULE_HEADER = "X-Lifecycle-Rule"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
_ACCEPTED_CONTENT_TYPES = frozenset({JSON_CONTENT_TYPE, "application/json"})

_log = logging.getLogger("lifecycle.wire")


class Service(Protocol):
    """What :func:`handle` needs of ``ExperimentService``."""

    @property
    def OPERATIONS(self) -> Sequence[str]: ...

    def invoke(
        self, operation: str, payload: Any, /, *, request_id: str | None = None
    ) -> Mapping[str, Any]:
        """Run one operation; ``request_id`` is the x-amzn-RequestId, for its history."""
        ...


class Authenticator(Protocol):
    """Checks a request before anything else sees it (``SigV4Verifier``).

    ``verify`` returns the caller's :class:`~lifecycle.http.access.Principal` (its
    access key id, account and allowed operations) or raises a
    ``UnrecognizedClientError`` or ``InvalidSignatureError`` (403).
    """

    def verify(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Principal: ...


@dataclass(slots=True)
class WireResponse:
    """One HTTP response: status, headers (name, value) and body bytes.

    ``operation``, ``name`` and ``outcome`` say what the request was (the
    operation when the target named a known one, the experiment name when
    the body had a string ``Name``) and how it ended (``OK`` or the error
    code), for the server's log line and metrics; so do ``rule`` (the id of
    the rule that refused it), ``request_id``, ``access_key`` (who signed
    it) and ``store_error`` (the kind of store outage it met).
    """

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    operation: str | None = None
    name: str | None = None
    outcome: str = "OK"
    rule: str | None = None
    request_id: str | None = None
    access_key: str | None = None
    store_error: str | None = None


#: request ids: a random per-process prefix and a counter, in the shape of a UUID (unique,
#: and a counter's increment per request instead of reading the system's random source)
_ID_PREFIX = (lambda h: f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-")(uuid.uuid4().hex)
_ID_COUNTER = itertools.count()


def _new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):012x}"


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not a JSON number")


class _HugeInt(int):
    """A JSON integer with more digits than Python turns into an ``int``
    (``sys.get_int_max_str_digits``): a value to validate like any other, so it is
    kept as a number of its sign and a size past every bound, and shows as its digits."""

    text: str

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


def _parse_int(text: str) -> int:
    limit = sys.get_int_max_str_digits()
    if not limit or len(text) <= limit:
        return int(text)
    huge = _HugeInt(-(10**limit) if text.startswith("-") else 10**limit)
    huge.text = text
    return huge


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int)
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _encode_json(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


_encode: Callable[[Any], bytes] = _encode_json
try:  # a response is encoded ~15 times faster by orjson (the server extra installs it)
    from orjson import dumps as _orjson_dumps

    def _encode(value: Any) -> bytes:
        out: bytes = _orjson_dumps(value)
        # orjson writes NaN and infinities as null; the strict encoder refuses them (a bug
        # of ours, answered 500), so any null takes the strict path: responses have none
        return _encode_json(value) if b"null" in out else out
except ImportError:  # pragma: no cover - without the server extra
    pass


def error_response(
    code: str,
    message: str,
    status: int = 400,
    *,
    request_id: str | None = None,
    operation: str | None = None,
    name: str | None = None,
    rule: str | None = None,
    retry_after: int | None = None,
    store_error: str | None = None,
    members: Mapping[str, Any] | None = None,
) -> WireResponse:
    """The AWS JSON 1.1 error envelope for ``code``; ``rule``, the id of the rule that
    refused the request, goes in the ``X-Lifecycle-Rule`` header (the body stays AWS's);
    ``retry_after`` (seconds) in ``Retry-After``; ``members`` are more members of the body
    (an error's own fields, as AWS errors carry them)."""
    body = _ENCODER.encode({"__type": code, "Message": message, **(members or {})}).encode()
    rid = request_id or _new_request_id()
    headers = [
        ("Content-Type", JSON_CONTENT_TYPE),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", rid),
        ("X-Amzn-ErrorType", code),
    ]
    if rule:
        headers.append((RULE_HEADER, rule))
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    return WireResponse(
        status, headers, body, operation, name, code, rule, rid, store_error=store_error
    )


def json_response(
    status: int,
    body: Mapping[str, Any],
    operation: str,
    outcome: str,
    retry_after: int | None = None,
) -> WireResponse:
    """A plain JSON answer of the server's own paths (``/health``, ``/ready``, ``/events``)."""
    raw = _encode(body)
    rid = _new_request_id()
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(raw))),
        ("x-amzn-RequestId", rid),
    ]
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    return WireResponse(status, headers, raw, operation, None, outcome, request_id=rid)


def unavailable_response(
    err: StoreUnavailableError,
    *,
    request_id: str | None = None,
    operation: str | None = None,
    name: str | None = None,
) -> WireResponse:
    """503 ``ServiceUnavailable`` with ``Retry-After``: the store cannot serve the request now,
    nothing was written, and the message says why (a full disk, a lock held too long, ...)."""
    return error_response(
        err.code,
        err.message,
        err.http_status,
        request_id=request_id,
        operation=operation,
        name=name,
        retry_after=err.retry_after,
        store_error=err.kind,
    )


@dataclass(slots=True)
class Admission:
    """A request that passed the checks of :func:`admit`: its id, its operation, and who
    signed it (None without an authenticator)."""

    request_id: str
    operation: str
    principal: Principal | None = None


def admit(
    operations: Sequence[str],
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    request_id: str | None = None,
    query: str = "",
    auth: Authenticator | None = None,
    root_path: str = "",
) -> Admission | WireResponse:
    """Steps 1 to 4 of the module's list: the method, the path, the size, the signature
    and what the signer may do, the target among ``operations``; the refusal's answer, or
    the :class:`Admission` to :func:`dispatch`. Touches no service. Never raises."""
    rid = request_id or _new_request_id()
    operation: str | None = None
    key: str | None = None
    try:
        if method != "POST":
            raise MethodNotAllowedError(f"method {method} is not allowed; use POST {root_path}/")
        if path != "/" and not (root_path and not path):  # under a prefix, the bare prefix is "/"
            raise UnknownPathError(
                f"no such path {root_path + path!r}; requests go to POST {root_path}/"
            )
        if len(body) > MAX_BODY_BYTES:
            raise RequestTooLargeError(
                f"the request body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}"
            )
        principal = None
        if auth is not None:
            principal = auth.verify(
                method=method, path=root_path + path, query=query, headers=headers, body=body
            )
            key = principal.access_key
        operation = _operation(operations, headers.get("x-amz-target"))
        if principal is not None:
            principal.check(operation)
    except Exception as exc:
        return refusal(exc, rid, operation, key=key)
    return Admission(rid, operation, principal)


def dispatch(
    service: Service, admission: Admission, *, headers: Mapping[str, str], body: bytes
) -> WireResponse:
    """Steps 5 to 7 for an admitted request: the content type, the body, ``invoke``, the
    answer. Never raises, but ``WouldWait`` from a store call made under the store's
    ``without_waiting()``: that request read and wrote nothing, to be made again."""
    rid = admission.request_id
    operation = admission.operation
    principal = admission.principal
    key = None if principal is None else principal.access_key
    name: str | None = None
    try:
        _check_content_type(headers.get("content-type"))
        payload = _decode(body)
        raw_name = payload.get("Name")
        if type(raw_name) is str:
            name = raw_name[:128]
        encoded = getattr(service, "invoke_encoded", None)
        if encoded is not None:
            out = encoded(operation, payload, _encode, request_id=rid)
        else:
            out = _encode(service.invoke(operation, payload, request_id=rid))
    except WouldWait:
        raise  # asked not to wait (the store's without_waiting): the caller makes it again
    except Exception as exc:
        return refusal(exc, rid, operation, name, key)
    return WireResponse(
        200,
        [
            ("Content-Type", JSON_CONTENT_TYPE),
            ("Content-Length", str(len(out))),
            ("x-amzn-RequestId", rid),
        ],
        out,
        operation,
        name,
        request_id=rid,
        access_key=key,
    )


def refusal(
    exc: Exception,
    request_id: str,
    operation: str | None,
    name: str | None = None,
    key: str | None = None,
) -> WireResponse:
    """The answer to a request that raised ``exc``: an outage is 503 with ``Retry-After``
    (nothing was written), a ``LifecycleError`` its code and status (a 5xx's details go to
    the log, not the client), anything else a bug, logged and answered 500."""
    if isinstance(exc, StoreUnavailableError):
        answer = unavailable_response(exc, request_id=request_id, operation=operation, name=name)
    elif isinstance(exc, LifecycleError):
        message = exc.message
        if exc.http_status >= 500:
            _log.error("%s failed (request %s): %s", operation, request_id, message, exc_info=exc)
            message = f"an internal error occurred (request {request_id})"
        answer = error_response(
            exc.code,
            message,
            exc.http_status,
            request_id=request_id,
            operation=operation,
            name=name,
            rule=exc.rule,
        )
    else:
        _log.error("bug: %s raised while answering request %s", operation, request_id, exc_info=exc)
        return error_response(
            "InternalFailure",
            f"an internal error occurred (request {request_id})",
            500,
            request_id=request_id,
            operation=operation,
            name=name,
        )
    answer.access_key = key
    return answer


def handle(
    service: Service,
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    request_id: str | None = None,
    query: str = "",
    auth: Authenticator | None = None,
    root_path: str = "",
) -> WireResponse:
    """Answer one AWS JSON 1.1 request: :func:`admit`, then :func:`dispatch`. Never raises.

    ``headers`` has lower-case names. ``query`` is the raw query string
    (only SigV4 reads it). ``path`` is the path under ``root_path``, the
    prefix a host mounted the app under (ASGI's ``root_path``): the client
    asked for, and signed, ``root_path + path``. Under a prefix, the prefix
    itself (``path`` empty) is the root as ``/`` is: where boto3 posts when
    its ``endpoint_url`` does not end in ``/``. A principal of another
    account than ``service``'s is served by ``service`` all the same: the
    app picks the service of the principal's account, this function does not.
    """
    admitted = admit(
        service.OPERATIONS,
        method=method,
        path=path,
        headers=headers,
        body=body,
        request_id=request_id,
        query=query,
        auth=auth,
        root_path=root_path,
    )
    if isinstance(admitted, WireResponse):
        return admitted
    return dispatch(service, admitted, headers=headers, body=body)


def _operation(operations: Sequence[str], target: str | None) -> str:
    if target is None:
        raise UnknownOperationError(
            "the X-Amz-Target header is missing; it must be SageMaker.<Operation>",
        )
    if target.startswith(TARGET_PREFIX):
        operation = target[len(TARGET_PREFIX) :]
        if operation in operations:
            return operation
    shown = target if len(target) <= 100 else target[:100] + "..."
    raise UnknownOperationError(
        f"unknown operation {shown!r}; X-Amz-Target must be SageMaker.<Operation> with one of: "
        + ", ".join(operations),
    )


def _check_content_type(content_type: str | None) -> None:
    if content_type == JSON_CONTENT_TYPE:
        return
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in _ACCEPTED_CONTENT_TYPES:
        shown = "none" if content_type is None else repr(content_type[:100])
        raise SerializationError(
            f"Content-Type {shown} is not accepted; send {JSON_CONTENT_TYPE} or application/json",
        )


#: integers orjson would read as floats (past 64 bits) hide in runs of 19 digits or more
_LONG_DIGITS = re.compile(rb"[0-9]{19,}")
_orjson_loads: Callable[[bytes], Any] | None
try:
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover - without the server extra
    _orjson_loads = None


def _decode(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, read by orjson where it reads exactly what
    :func:`_decode_strict` does (an object with no long digit run, no escape and little
    nesting, which is nearly every request), else by the strict reader and its errors."""
    if _orjson_loads is not None and not _LONG_DIGITS.search(body):
        try:
            payload = _orjson_loads(body)
        except ValueError:
            pass  # the strict reader says what is wrong, in its words
        else:
            if (
                type(payload) is dict
                and b"\\u" not in body
                and body.count(b"[") + body.count(b"{") <= MAX_DEPTH
            ):
                return payload
    return _decode_strict(body)


def _decode_strict(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SerializationError(f"the request body is not valid UTF-8: {exc.reason}") from None
    if not text or text.isspace():
        return {}
    try:
        payload = _DECODER.decode(text)
    except RecursionError:
        raise SerializationError(
            f"the request body is nested deeper than {MAX_DEPTH} levels"
        ) from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, an integer too long
        raise SerializationError(f"the request body is not valid JSON: {exc}") from None
    if type(payload) is not dict:
        raise not_an_object(payload)
    # Only a body with many brackets can be too deep, and only one with a
    # \uD8xx-style escape can hold a lone surrogate: the common case skips the walk.
    if (body.count(b"[") + body.count(b"{") > MAX_DEPTH) or b"\\u" in body:
        _check_tree(payload)
    return payload


def _check_tree(payload: dict[str, Any]) -> None:
    """Depth and well-formed strings, iteratively (no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SerializationError(
                f"the request body is nested deeper than {MAX_DEPTH} levels",
            )
        if isinstance(node, dict):
            for key, value in node.items():
                _check_string(key)
                stack.append((value, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, str):
            _check_string(node)


def _check_string(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SerializationError(
            "the request body holds a string with a lone surrogate escape (not valid Unicode)",
        ) from None
