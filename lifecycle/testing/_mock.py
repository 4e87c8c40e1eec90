"""``mock_sagemaker()``: boto3's SageMaker client answered in process by the engine.

While the mock is active, every SageMaker client created (``boto3.client``,
``boto3.Session().client``, ``botocore`` sessions alike) gets a handler on
its ``before-send.sagemaker`` event, and so does one made before the mock
was entered, at its first call under it (``BaseClient._make_api_call`` is
wrapped while a mock is active): that one is answered by the innermost
active mock, and its handler comes off when the last mock ends. botocore emits that event with the
signed request just before it would open a connection, and sends nothing
when a handler returns a response: the handler passes the request to
:func:`lifecycle.http.protocol.handle` (the same wire layer the server
uses) and hands botocore its answer as an ``AWSResponse``. No socket, no
server, no thread. Any other SageMaker operation raises
:class:`NotEmulatedError` before anything is sent, unless moto's
``mock_aws()`` is active: then the handler leaves it to moto, and moto
leaves the seven operations to the mock (:mod:`lifecycle.testing._moto`),
each experiment living in the moto account of the request's credentials.
``accounts={access_key: account_id}`` puts the requests signed with a key in
that account, with or without moto.

boto3 and botocore are imported only when the mock is entered, moto never.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, ParamSpec, TypeVar, overload
from urllib.parse import urlsplit

from lifecycle.domain.experiment import is_account_id
from lifecycle.domain.rules.schedule import whole_ms
from lifecycle.errors import NotEmulatedError, install_hint
from lifecycle.service.service import OPERATIONS, ExperimentService
from lifecycle.testing import _moto
from lifecycle.testing._world import VirtualClock, World, advance_together

__all__ = ["DUMMY_CREDENTIALS", "MockSageMaker", "NotEmulatedError", "mock_sagemaker"]

#: what the mock puts in the environment when it has no credentials
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_CREDENTIAL_SOURCES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)
_REGION_VARIABLES = ("AWS_DEFAULT_REGION", "AWS_REGION")
_TARGET_PREFIX = "SageMaker."
_CREATE = "CreateInferenceExperiment"
P = ParamSpec("P")
T = TypeVar("T")


class _Body:
    """The ``raw`` of an ``AWSResponse``: what botocore reads the body from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


# The active mocks, innermost last, and botocore's methods the mock wraps while one is.
_active: list[MockSageMaker] = []
_lock = threading.RLock()
_original_create_client: Callable[..., Any] | None = None
_original_make_api_call: Callable[..., Any] | None = None
# the clients made under a mock, each answered by that mock for good
_made_under: weakref.WeakSet[Any] = weakref.WeakSet()
# the clients made before any mock was entered and used under one since: each request is
# answered by the innermost active mock, and the handler comes off when the last one ends
_adopted: weakref.WeakSet[Any] = weakref.WeakSet()
_ADOPTED_ID = "lifecycle-mock-adopted"


def _is_sagemaker(client: Any) -> bool:
    return bool(client.meta.service_model.service_name == "sagemaker")


def _adopt(client: Any) -> None:
    """Give ``client``, a SageMaker client made before the mocks, the handler that passes
    its requests to the innermost active mock (once; never one made under a mock)."""
    held = weakref.ref(client)

    def before_send(request: Any, **_: Any) -> Any:
        with _lock:
            owner = _active[-1] if _active else None
        return None if owner is None else owner._before_send(request, held())

    with _lock:  # registered before another thread's call can find it adopted
        if not _active or client in _made_under or client in _adopted:
            return
        client.meta.events.register("before-send.sagemaker", before_send, unique_id=_ADOPTED_ID)
        _adopted.add(client)


def _install() -> None:
    global _original_create_client, _original_make_api_call
    import botocore.client
    import botocore.session

    original: Callable[..., Any] = botocore.session.Session.create_client
    _original_create_client = original
    make_api_call: Callable[..., Any] = botocore.client.BaseClient._make_api_call
    _original_make_api_call = make_api_call

    def create_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = original(self, service_name, *args, **kwargs)
        with _lock:
            owner = _active[-1] if _active else None
        if owner is not None and _is_sagemaker(client):
            owner._attach(client)
        return client

    def _make_api_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        # a client made before the mock was entered meets it at its first call under it
        if _is_sagemaker(self):
            _adopt(self)
        return make_api_call(self, *args, **kwargs)

    create_client.__wrapped__ = original  # type: ignore[attr-defined]
    _make_api_call.__wrapped__ = make_api_call  # type: ignore[attr-defined]
    botocore.session.Session.create_client = create_client
    botocore.client.BaseClient._make_api_call = _make_api_call


def _uninstall() -> None:
    global _original_create_client, _original_make_api_call
    import botocore.client
    import botocore.session

    if _original_create_client is not None:
        botocore.session.Session.create_client = _original_create_client
        _original_create_client = None
    if _original_make_api_call is not None:
        botocore.client.BaseClient._make_api_call = _original_make_api_call
        _original_make_api_call = None
    for client in list(_adopted):  # as they were before the mocks
        client.meta.events.unregister("before-send.sagemaker", unique_id=_ADOPTED_ID)
    _adopted.clear()


class MockSageMaker:
    """The engine behind boto3's SageMaker client, on a virtual clock. Use :func:`mock_sagemaker`.

    ``service``, ``store``, ``reconciler``, ``actuator`` and ``clock`` are
    those of ``world`` (a :class:`~lifecycle.testing.World`), the engine of
    the mock's account (``account_id``). A request signed with an access key
    of ``accounts`` is in that key's account, and beside moto any other in
    the moto account of its credentials; each account has an engine of its
    own on the same clock: :meth:`account` gives it. Before
    each request the clock moves on ``tick`` seconds and the reconciler runs,
    so a polling loop sees experiments move on; :meth:`advance` moves the
    clock further (a test's stand-in for waiting). ``calls`` lists each
    operation answered, with its payload.

    A mock is a context manager and a decorator: a function decorated with
    it runs under a new mock of the same options at each call.
    """

    def __init__(
        self,
        *,
        settle: float = 0.0,
        region: str | None = None,
        account_id: str = _moto.DEFAULT_ACCOUNT,
        accounts: Mapping[str, str] | None = None,
        start: float | None = None,
        tick: float = 0.0,
        reconcile_on_request: bool = True,
        virtual_sleep: bool = False,
        check_endpoints: bool = False,
        **world_options: Any,
    ) -> None:
        _check_options(world_options)
        self._keys = _check_accounts(account_id, accounts)
        self._options: dict[str, Any] = {
            "settle": settle,
            "region": region,
            "account_id": account_id,
            "accounts": dict(self._keys),
            "start": start,
            "tick": tick,
            "reconcile_on_request": reconcile_on_request,
            "virtual_sleep": virtual_sleep,
            "check_endpoints": check_endpoints,
            **world_options,
        }
        self._region = region
        self.tick = tick
        self.reconcile_on_request = reconcile_on_request
        self.virtual_sleep = virtual_sleep
        self.check_endpoints = check_endpoints
        self._settle = settle
        self._account_id = account_id
        self._start = start
        self._world_options = world_options
        self._worlds: dict[str, World] = {}
        self.calls: list[tuple[str, Any]] = []
        self._saved_env: dict[str, str | None] = {}
        self._real_sleep: Callable[[Any], None] | None = None
        self.active = False

    @classmethod
    def current(cls) -> MockSageMaker:
        """The innermost active mock (what a function under ``@mock_sagemaker`` uses)."""
        with _lock:
            if not _active:
                raise RuntimeError("no mock_sagemaker() is active")
            return _active[-1]

    # -- the engine ---------------------------------------------------------------------

    @property
    def world(self) -> World:
        """The engine of the mock's own account (``account_id``)."""
        return self.account(self._account_id)

    def account(self, account_id: str) -> World:
        """The engine of ``account_id`` (made on first use, on the mock's clock)."""
        with _lock:
            world = self._worlds.get(account_id)
            if world is None:
                first = self._entered()[0]
                world = self._worlds[account_id] = self._new_world(
                    first.clock, first.service.region, account_id
                )
            return world

    def _entered(self) -> tuple[World, ...]:
        """Every account's engine (the mock's own first), once the mock was entered."""
        if not self._worlds:
            raise RuntimeError("the mock is not entered yet: use `with mock_sagemaker() as mock:`")
        return tuple(self._worlds.values())

    @property
    def accounts(self) -> Mapping[str, World]:
        """Each account's engine, by account id: the mock's own, and each one a request was in."""
        return MappingProxyType(self._worlds)

    def _new_world(self, clock: VirtualClock, region: str, account_id: str) -> World:
        return World(
            settle=self._settle,
            clock=clock,
            region=region,
            account_id=account_id,
            **self._world_options,
        )

    @property
    def service(self) -> ExperimentService:
        return self.world.service

    @property
    def store(self) -> Any:
        return self.world.store

    @property
    def reconciler(self) -> Any:
        return self.world.reconciler

    @property
    def actuator(self) -> Any:
        return self.world.actuator

    @property
    def clock(self) -> VirtualClock:
        return self.world.clock

    @property
    def region(self) -> str:
        return self.service.region

    def now(self) -> float:
        """The virtual time (epoch seconds)."""
        return self.clock()

    def advance(self, seconds: float = 0.0) -> int:
        """Move the virtual clock ``seconds`` on, the reconciler of every account acting at
        each due time on the way.

        Returns how many reconciler steps were saved. Pass it as the ``sleep``
        of code that polls: ``wait_until_completed(client, sleep=mock.advance)``.
        """
        return advance_together(self._entered(), seconds)

    def client(self, **kwargs: Any) -> Any:
        """``boto3.client("sagemaker", region_name=<the mock's region>, **kwargs)``."""
        import boto3

        kwargs.setdefault("region_name", self.region)
        return boto3.client("sagemaker", **kwargs)

    # -- entering and leaving ------------------------------------------------------------

    def __enter__(self) -> MockSageMaker:
        if self.active:
            raise RuntimeError("this mock is already active")
        try:
            import botocore.session  # noqa: F401  (fail early, with the install hint)
        except ImportError as exc:
            raise ImportError("mock_sagemaker() needs boto3: " + install_hint("testing")) from exc

        region = self._region or next(
            (os.environ[v] for v in _REGION_VARIABLES if os.environ.get(v)), "us-east-1"
        )
        if not self._worlds:
            clock = VirtualClock(whole_ms(time.time()) if self._start is None else self._start)
            self._worlds[self._account_id] = self._new_world(clock, region, self._account_id)
        self._set_env(region)
        with _lock:
            if not _active:
                _install()
            _active.append(self)
        if self.virtual_sleep:
            self._real_sleep = time.sleep
            time.sleep = self._sleep
        self.active = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.active = False
        if self._real_sleep is not None:
            time.sleep = self._real_sleep
            self._real_sleep = None
        with _lock:
            if self in _active:
                _active.remove(self)
            if not _active:
                _uninstall()
                _moto.release()
        self._restore_env()

    def __call__(self, func: Callable[P, T]) -> Callable[P, T]:
        """Decorate ``func``: each call runs under a new mock of this one's options."""
        if inspect.isclass(func) or inspect.iscoroutinefunction(func):
            raise TypeError(
                "mock_sagemaker() decorates plain functions (a test or a method); "
                "for a class or a coroutine, enter it with `with mock_sagemaker() as mock:`"
            )
        options = dict(self._options)

        @functools.wraps(func)
        def under_the_mock(*args: P.args, **kwargs: P.kwargs) -> T:
            with MockSageMaker(**options):
                return func(*args, **kwargs)

        return under_the_mock

    def _set_env(self, region: str) -> None:
        wanted: dict[str, str] = {}
        if not any(os.environ.get(v) for v in _REGION_VARIABLES):
            wanted["AWS_DEFAULT_REGION"] = region
        if not any(os.environ.get(v) for v in _CREDENTIAL_SOURCES):
            wanted.update(DUMMY_CREDENTIALS)
        for key, value in wanted.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def _sleep(self, seconds: Any) -> None:
        self.advance(max(0.0, float(seconds)))

    # -- answering ------------------------------------------------------------------------

    def _attach(self, client: Any) -> None:
        # the client is held weakly: the handler lives in the client's own event emitter
        held = weakref.ref(client)
        with _lock:
            _made_under.add(client)

        def before_send(request: Any, **_: Any) -> Any:
            return self._before_send(request, held())

        client.meta.events.register(
            "before-send.sagemaker", before_send, unique_id=f"lifecycle-mock-{id(self)}"
        )

    def _before_send(self, request: Any, client: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        headers = {
            str(k).lower(): v.decode() if isinstance(v, bytes) else str(v)
            for k, v in request.headers.items()
        }
        target = headers.get("x-amz-target", "")
        operation = target[len(_TARGET_PREFIX) :] if target.startswith(_TARGET_PREFIX) else target
        beside_moto = _moto.active()
        if operation not in OPERATIONS:
            if beside_moto:
                return None  # moto's stubber, next in line, answers it
            raise NotEmulatedError(operation or "(no X-Amz-Target)", OPERATIONS)
        if not self.active:
            raise RuntimeError(
                f"this SageMaker client was made under mock_sagemaker(), which has ended; "
                f"nothing was sent ({operation})"
            )
        body = request.body
        if body is None:
            body = b""
        elif isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = body.read()
        self._log(operation, body)
        if self.reconcile_on_request:
            self.advance(self.tick)
        world = self.account(self._account_of(headers, beside_moto))
        response = self._refused_by_moto(world, operation, body, client, beside_moto)
        if response is None:
            from lifecycle.http.protocol import handle

            response = handle(
                world.service,
                method=request.method,
                path=urlsplit(request.url).path or "/",
                headers=headers,
                body=body,
            )
        _moto.mark_answered(request)
        return AWSResponse(
            request.url, response.status, dict(response.headers), _Body(response.body)
        )

    def _account_of(self, headers: Mapping[str, str], beside_moto: bool) -> str:
        """The account a request is in: its access key's in ``accounts``, else (beside
        moto) moto's account of its credentials, else the mock's own."""
        mapped = self._keys.get(_moto.access_key_of(headers) or "")
        if mapped is not None:
            return mapped
        return _moto.account_of(headers) if beside_moto else self._account_id

    def _refused_by_moto(
        self, world: World, operation: str, body: bytes, client: Any, beside_moto: bool
    ) -> Any:
        """With ``check_endpoints``, a valid Create whose endpoint or models moto does not
        have is refused (ResourceNotFound): its error response, else None."""
        if not self.check_endpoints or operation != _CREATE:
            return None
        if not beside_moto:
            raise RuntimeError(
                "mock_sagemaker(check_endpoints=True) asks moto about the endpoint, "
                "but no moto mock_aws() is active; nothing was sent (CreateInferenceExperiment)"
            )
        try:
            payload = json.loads(body)
        except ValueError:
            return None  # the wire layer says what is wrong with it
        if client is None or world.service.explain(operation, payload):
            return None  # what the engine refuses it refuses first, in its own words
        refused = _moto.check_endpoint(client, payload, world.service.account_id)
        if refused is None:
            return None
        from lifecycle.http.protocol import error_response

        rule, message = refused
        return error_response(
            "ResourceNotFound", message, operation=operation, name=payload["Name"], rule=rule
        )

    def _log(self, operation: str, body: bytes) -> None:
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = body
        self.calls.append((operation, payload))

    def __repr__(self) -> str:
        state = "active" if self.active else "inactive"
        now = self._entered()[0].clock.now if self._worlds else None
        return f"<MockSageMaker {state} now={now}>"


#: the World options the mock sets itself
_MOCK_SETS = frozenset({"settle", "clock", "region", "account_id"})


def _check_accounts(account_id: object, accounts: Mapping[str, str] | None) -> dict[str, str]:
    """``accounts`` as a dict; ``ValueError`` naming the first access key or account id
    (``account_id`` too) that is not one."""
    if not is_account_id(account_id):
        raise ValueError(f"account_id must be a 12-digit AWS account id, not {account_id!r}")
    if accounts is None:
        return {}
    if not isinstance(accounts, Mapping):
        raise TypeError(
            f"accounts must map access keys to account ids, not {type(accounts).__name__}"
        )
    for key, account in accounts.items():
        if type(key) is not str or not key or "/" in key:
            raise ValueError(f"accounts: {key!r} is not an access key")
        if not is_account_id(account):
            raise ValueError(
                f"accounts: the account of access key {key!r} must be a 12-digit AWS "
                f"account id, not {account!r}"
            )
    return dict(accounts)


def _keywords(function: Callable[..., Any]) -> set[str]:
    return {
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _check_options(world_options: dict[str, Any]) -> None:
    """A TypeError naming each option that is neither the mock's nor the World's, and
    listing those there are."""
    passed_on = _keywords(World.__init__) - _MOCK_SETS
    unknown = sorted(set(world_options) - passed_on)
    if unknown:
        known = sorted(_keywords(MockSageMaker.__init__) | passed_on)
        raise TypeError(
            f"mock_sagemaker() has no option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; its options are {', '.join(known)}"
        )


@overload
def mock_sagemaker(func: Callable[P, T], /) -> Callable[P, T]: ...


@overload
def mock_sagemaker(
    *,
    settle: float = 0.0,
    region: str | None = None,
    account_id: str = ...,
    accounts: Mapping[str, str] | None = None,
    start: float | None = None,
    tick: float = 0.0,
    reconcile_on_request: bool = True,
    virtual_sleep: bool = False,
    check_endpoints: bool = False,
    **world_options: Any,
) -> MockSageMaker: ...


def mock_sagemaker(
    func: Callable[P, T] | None = None, /, **options: Any
) -> MockSageMaker | Callable[P, T]:
    """A context manager (and decorator) under which boto3's SageMaker client is answered
    by the engine in process.

    ``with mock_sagemaker() as mock:`` every ``boto3.client("sagemaker")``
    made inside (or made before and used inside) answers the seven
    inference-experiment operations through
    the wire layer, on a virtual clock starting at the real time (or
    ``start``). Each transitional status lasts ``settle`` virtual seconds;
    each request first moves the clock ``tick`` seconds and runs the
    reconciler; ``mock.advance(seconds)`` moves time on. With
    ``virtual_sleep=True``, ``time.sleep`` inside the block advances the
    virtual clock instead of sleeping. A region (``region``, else
    ``us-east-1``) and dummy credentials are put in the environment when it
    has none, and taken out again on exit. Experiments are in ``account_id``
    (``123456789012``), except those of a client whose access key
    ``accounts`` maps (``{access_key: account_id}``): they are in that
    account. Other SageMaker operations raise :class:`NotEmulatedError`,
    unless moto's ``mock_aws()`` is active: then moto answers them, and each
    experiment of a key ``accounts`` does not map is in the moto account of
    the request's credentials. Beside moto, ``check_endpoints=True`` makes a
    Create ask moto whether its endpoint is InService and its models exist
    (ResourceNotFound when not).

    ``@mock_sagemaker`` and ``@mock_sagemaker(settle=60)`` decorate a
    function, which runs under a new mock at each call
    (:meth:`MockSageMaker.current` finds it).
    """
    mock = MockSageMaker(**options)
    return mock if func is None else mock(func)
