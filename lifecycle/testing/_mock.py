"""``mock_sagemaker()``: boto3's SageMaker client answered in process by the engine.

While the mock is active, every SageMaker client created (``boto3.client``,
``boto3.Session().client``, ``botocore`` sessions alike) gets a handler on
its ``before-send.sagemaker`` event. botocore emits that event with the
signed request just before it would open a connection, and sends nothing
when a handler returns a response: the handler passes the request to
:func:`lifecycle.http.protocol.handle` (the same wire layer the server
uses) and hands botocore its answer as an ``AWSResponse``. No socket, no
server, no thread. Any other SageMaker operation raises
:class:`NotEmulatedError` before anything is sent.

boto3 and botocore are imported only when the mock is entered.
"""

from __future__ import annotations

import inspect
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from lifecycle.domain.rules.schedule import whole_ms
from lifecycle.errors import NotEmulatedError, install_hint
from lifecycle.service.service import OPERATIONS, ExperimentService
from lifecycle.testing._world import VirtualClock, World

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


class _Body:
    """The ``raw`` of an ``AWSResponse``: what botocore reads the body from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


# The active mocks, innermost last, and botocore's create_client while one is active.
_active: list[MockSageMaker] = []
_lock = threading.RLock()
_original_create_client: Callable[..., Any] | None = None


def _install() -> None:
    global _original_create_client
    import botocore.session

    original: Callable[..., Any] = botocore.session.Session.create_client
    _original_create_client = original

    def create_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = original(self, service_name, *args, **kwargs)
        with _lock:
            owner = _active[-1] if _active else None
        if owner is not None and client.meta.service_model.service_name == "sagemaker":
            owner._attach(client)
        return client

    create_client.__wrapped__ = original  # type: ignore[attr-defined]
    botocore.session.Session.create_client = create_client


def _uninstall() -> None:
    global _original_create_client
    import botocore.session

    if _original_create_client is not None:
        botocore.session.Session.create_client = _original_create_client
        _original_create_client = None


class MockSageMaker:
    """The engine behind boto3's SageMaker client, on a virtual clock. Use :func:`mock_sagemaker`.

    ``service``, ``store``, ``reconciler``, ``actuator`` and ``clock`` are
    those of ``world`` (a :class:`~lifecycle.testing.World`). Before each
    request the clock moves on ``tick`` seconds and the reconciler runs, so
    a polling loop sees experiments move on; :meth:`advance` moves the clock
    further (a test's stand-in for waiting). ``calls`` lists each operation
    answered, with its payload.
    """

    def __init__(
        self,
        *,
        settle: float = 0.0,
        region: str | None = None,
        account_id: str = "123456789012",
        start: float | None = None,
        tick: float = 0.0,
        reconcile_on_request: bool = True,
        virtual_sleep: bool = False,
        **world_options: Any,
    ) -> None:
        _check_options(world_options)
        self._region = region
        self.tick = tick
        self.reconcile_on_request = reconcile_on_request
        self.virtual_sleep = virtual_sleep
        self._settle = settle
        self._account_id = account_id
        self._start = start
        self._world_options = world_options
        self._world: World | None = None
        self.calls: list[tuple[str, Any]] = []
        self._saved_env: dict[str, str | None] = {}
        self._real_sleep: Callable[[Any], None] | None = None
        self.active = False

    # -- the engine ---------------------------------------------------------------------

    @property
    def world(self) -> World:
        if self._world is None:
            raise RuntimeError("the mock is not entered yet: use `with mock_sagemaker() as mock:`")
        return self._world

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
        """Move the virtual clock ``seconds`` on, the reconciler acting at each due time on the way.

        Returns how many reconciler steps were saved. Pass it as the ``sleep``
        of code that polls: ``wait_until_completed(client, sleep=mock.advance)``.
        """
        return self.world.advance(seconds)

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
        if self._world is None:
            clock = VirtualClock(whole_ms(time.time()) if self._start is None else self._start)
            self._world = World(
                settle=self._settle,
                clock=clock,
                region=region,
                account_id=self._account_id,
                **self._world_options,
            )
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
        self._restore_env()

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
        client.meta.events.register(
            "before-send.sagemaker", self._before_send, unique_id=f"lifecycle-mock-{id(self)}"
        )

    def _before_send(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        headers = {
            str(k).lower(): v.decode() if isinstance(v, bytes) else str(v)
            for k, v in request.headers.items()
        }
        target = headers.get("x-amz-target", "")
        operation = target[len(_TARGET_PREFIX) :] if target.startswith(_TARGET_PREFIX) else target
        if operation not in OPERATIONS:
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
        from lifecycle.http.protocol import handle

        response = handle(
            self.service,
            method=request.method,
            path=urlsplit(request.url).path or "/",
            headers=headers,
            body=body,
        )
        return AWSResponse(
            request.url, response.status, dict(response.headers), _Body(response.body)
        )

    def _log(self, operation: str, body: bytes) -> None:
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = body
        self.calls.append((operation, payload))

    def __repr__(self) -> str:
        state = "active" if self.active else "inactive"
        return f"<MockSageMaker {state} now={self._world.clock.now if self._world else None}>"


#: the World options the mock sets itself
_MOCK_SETS = frozenset({"settle", "clock", "region", "account_id"})


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


def mock_sagemaker(
    *,
    settle: float = 0.0,
    region: str | None = None,
    start: float | None = None,
    tick: float = 0.0,
    reconcile_on_request: bool = True,
    virtual_sleep: bool = False,
    **world_options: Any,
) -> MockSageMaker:
    """A context manager under which boto3's SageMaker client is answered by the engine in process.

    ``with mock_sagemaker() as mock:`` every ``boto3.client("sagemaker")``
    made inside answers the seven inference-experiment operations through
    the wire layer, on a virtual clock starting at the real time (or
    ``start``). Each transitional status lasts ``settle`` virtual seconds;
    each request first moves the clock ``tick`` seconds and runs the
    reconciler; ``mock.advance(seconds)`` moves time on. With
    ``virtual_sleep=True``, ``time.sleep`` inside the block advances the
    virtual clock instead of sleeping. A region (``region``, else
    ``us-east-1``) and dummy credentials are put in the environment when it
    has none, and taken out again on exit. Other SageMaker operations raise
    :class:`NotEmulatedError`.
    """
    return MockSageMaker(
        settle=settle,
        region=region,
        start=start,
        tick=tick,
        reconcile_on_request=reconcile_on_request,
        virtual_sleep=virtual_sleep,
        **world_options,
    )
