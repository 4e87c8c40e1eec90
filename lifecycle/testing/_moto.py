"""``mock_sagemaker()`` beside moto's ``mock_aws()``: each answers its own operations.

moto 5 answers boto3 in process through one object, its ``BotocoreStubber``
(``moto.core.models.botocore_stubber``). Importing moto appends it to
botocore's built-in handlers of the ``before-send`` event, so every client
made afterwards carries it; ``mock_aws()`` only switches its ``enabled``
flag. The mock's own handler sits on ``before-send.sagemaker``, and botocore
calls the handlers of a more specific event name first, so for a SageMaker
client the mock always sees a request before moto does, whichever of the
two was entered first.

botocore calls *every* ``before-send`` handler and keeps the first answer,
so moto would still be asked about the seven inference-experiment operations
(and raise ``NotImplementedError``). Hence the guard: while a mock is
active, moto's stubber passes over each request the mock has answered (a
set of those requests, held weakly), and acts as before on everything else.
The guard wraps the stubber class's ``__call__`` once and is taken off when
the last mock ends; nothing else of moto's is touched, and moto's handler is
never registered a second time.

Nothing here imports moto: it is found in ``sys.modules`` when the program
has imported it, and counts as active while its stubber is enabled (moto's
default, in-process mode; its server and proxy modes are not composed with).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from lifecycle.domain.experiment import is_account_id

__all__ = [
    "DEFAULT_ACCOUNT",
    "ENDPOINT_EXISTS",
    "ENDPOINT_IN_SERVICE",
    "MODEL_EXISTS",
    "access_key_of",
    "account_of",
    "active",
    "check_endpoint",
    "guard",
    "mark_answered",
    "release",
]

#: moto's default account, which answers every request it cannot place elsewhere
DEFAULT_ACCOUNT = "123456789012"
#: the rules ``check_endpoints=True`` adds to Create (the X-Lifecycle-Rule of its refusals)
ENDPOINT_EXISTS = "endpoint-exists"
ENDPOINT_IN_SERVICE = "endpoint-in-service"
MODEL_EXISTS = "model-exists"
_MODELS = "moto.core.models"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")

_lock = threading.Lock()
# the requests a mock answered, which moto's stubber passes over
_answered: weakref.WeakSet[Any] = weakref.WeakSet()
# the stubber class and its own __call__, while the guard is on
_guarded: tuple[Any, Callable[..., Any]] | None = None


def _stubber() -> Any | None:
    """moto's ``BotocoreStubber`` when the program has imported moto, else None."""
    models = sys.modules.get(_MODELS)
    return getattr(models, "botocore_stubber", None) if models is not None else None


def active() -> bool:
    """moto is imported and one of its mocks (``mock_aws()``) answers in process now."""
    stubber = _stubber()
    return bool(stubber is not None and getattr(stubber, "enabled", False))


def guard() -> bool:
    """Put the guard on moto's stubber if moto is imported and it is not on yet; True
    when it is on (so answered requests must be marked)."""
    global _guarded
    if _guarded is not None:
        return True
    stubber = _stubber()
    if stubber is None:
        return False
    with _lock:
        if _guarded is None:
            cls: Any = type(stubber)
            original: Callable[..., Any] = cls.__call__

            def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
                # botocore passes event_name and request by keyword
                request = kwargs.get("request", args[1] if len(args) > 1 else None)
                if request is not None and request in _answered:
                    return None
                return original(self, *args, **kwargs)

            __call__.__wrapped__ = original  # type: ignore[attr-defined]
            cls.__call__ = __call__
            _guarded = (cls, original)
    return True


def release() -> None:
    """Take the guard off moto's stubber (when the last mock ends)."""
    global _guarded
    with _lock:
        if _guarded is None:
            return
        cls, original = _guarded
        if getattr(cls.__dict__.get("__call__"), "__wrapped__", None) is original:
            cls.__call__ = original
        _guarded = None
        _answered.clear()


def mark_answered(request: Any) -> None:
    """``request`` is answered by a mock: moto's stubber passes over it."""
    if guard():
        _answered.add(request)


def access_key_of(headers: Mapping[str, str]) -> str | None:
    """The access key a SigV4-signed request was signed with (None: not signed).
    ``headers`` have lower-case names."""
    found = _CREDENTIAL.search(headers.get("authorization", ""))
    return None if found is None else found.group(1)


def _checked(account: str, source: str) -> str:
    """``account``, when it can be an account of the mock's ARNs; else a ValueError that
    says where it came from (moto takes any text; an ARN's account is 12 digits)."""
    if not is_account_id(account):
        raise ValueError(
            f"moto's account {account!r}, from {source}, is not a 12-digit AWS account id; "
            "mock_sagemaker() keeps experiments in 12-digit accounts only"
        )
    return account


def account_of(headers: Mapping[str, str]) -> str:
    """The moto account a request is in, by moto's own rules (its multi-account
    documentation): the ``MOTO_ACCOUNT_ID`` environment variable, else an
    ``x-moto-account-id`` header, else the account moto issued the access key in
    (``sts.assume_role`` into another account gives keys of that account), else
    moto's default account. ``headers`` have lower-case names."""
    if os.environ.get("MOTO_ACCOUNT_ID"):
        return _checked(os.environ["MOTO_ACCOUNT_ID"], "the MOTO_ACCOUNT_ID environment variable")
    if headers.get("x-moto-account-id"):
        return _checked(headers["x-moto-account-id"], "the request's x-moto-account-id header")
    key = access_key_of(headers)
    if key is None:
        return DEFAULT_ACCOUNT
    from moto.iam.models import get_account_id_from  # moto is active: it is imported

    return str(get_account_id_from(key))


def check_endpoint(client: Any, payload: Mapping[str, Any], account: str) -> tuple[str, str] | None:
    """What moto says of a valid Create's endpoint and models, asked through ``client``
    (so in the request's ``account`` and region): None when the endpoint exists and
    is InService and moto knows every variant's model, else the rule broken and why.

    moto answers DescribeEndpoint and DescribeModel of something it does not hold with
    a ValidationException ("Could not find ..."); any other error of moto's is raised.
    """
    from botocore.exceptions import ClientError

    def missing(err: ClientError) -> bool:
        return bool(err.response.get("Error", {}).get("Code") == "ValidationException")

    endpoint = payload["EndpointName"]
    where = f"moto's account {account}, region {client.meta.region_name}"
    try:
        status = client.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
    except ClientError as err:
        if not missing(err):
            raise
        return ENDPOINT_EXISTS, f"EndpointName: endpoint '{endpoint}' does not exist in {where}"
    if status != "InService":
        return (
            ENDPOINT_IN_SERVICE,
            f"EndpointName: endpoint '{endpoint}' is {status}, not InService, in {where}",
        )
    for index, variant in enumerate(payload["ModelVariants"]):
        model = variant["ModelName"]
        try:
            client.describe_model(ModelName=model)
        except ClientError as err:
            if not missing(err):
                raise
            return (
                MODEL_EXISTS,
                f"ModelVariants[{index}].ModelName: model '{model}' of variant "
                f"'{variant['VariantName']}' does not exist in {where}",
            )
    return None
