"""The options of ``lifecycle serve``: its flags, their checks, and the actuator they choose.

:func:`add_serve_arguments` adds every flag to a parser (``lifecycle.cli`` and
``python -m lifecycle.http.serve`` share it); :func:`build_actuator` turns the
``--actuator`` flags into what carries out the reconciler's steps (simulated,
a webhook, or a factory of the user's); :func:`webhook_specs` reads the
``--webhook`` flags, each URL with the secret of the
``--webhook-secret-file`` that follows it; :func:`read_secret` reads a
secret file. Every bad value is a usage error that names its flag.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lifecycle.domain.experiment import is_account_id
from lifecycle.http._environment import (
    ENV_PREFIX,
    EnvironmentParser,
    environment_variable,
    from_environment,
)
from lifecycle.http.throttle import RateLimit

if TYPE_CHECKING:
    from lifecycle.actuators import Actuator

__all__ = [
    "DEFAULT_EVENTS_MAX_AGE",
    "ENV_PREFIX",
    "SERVE_DESCRIPTION",
    "EnvironmentParser",
    "add_serve_arguments",
    "build_actuator",
    "default_store_url",
    "environment_variable",
    "from_environment",
    "read_secret",
    "webhook_specs",
]

#: what ``lifecycle serve --help`` says first
SERVE_DESCRIPTION = (
    "Serve the seven inference-experiment operations of SageMaker's API (AWS JSON 1.1, so "
    "boto3 and the AWS CLI work unchanged) on POST /, and GET /health; the reconciler runs in "
    "the same process. SIGINT or SIGTERM stops it cleanly. Every flag can also be set by the "
    "environment variable shown with it (LIFECYCLE_ and the flag's name, in capitals, dashes "
    "as underscores); a flag on the command line wins."
)

_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
_WEBHOOK_TIMEOUT = 10.0
#: how long the server keeps the change feed's events unless told otherwise (7 days)
DEFAULT_EVENTS_MAX_AGE = 7 * 86400.0


def default_store_url() -> str:
    """``sqlite:///lifecycle.db`` when the SQLite store is available, else ``memory://``."""
    stores = importlib.import_module("lifecycle.stores")
    if hasattr(stores, "open_store") and importlib.util.find_spec("lifecycle.stores.sqlite"):
        return "sqlite:///lifecycle.db"
    return "memory://"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is not between 0 and 65535")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number, 0 or more")
    return value


def _timeout(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0")
    return value


def _account_id(text: str) -> str:
    if not is_account_id(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a 12-digit AWS account id")
    return text


def _rate_limit(text: str) -> RateLimit:
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _region(text: str) -> str:
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]+", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an AWS region name like us-east-1")
    return text


class _Webhook(argparse._AppendAction):
    """``--webhook URL``: one more URL, and an empty secret slot beside it in
    ``webhook_secret_file`` (the two lists stay aligned)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        super().__call__(parser, namespace, values, option_string)
        secrets = list(getattr(namespace, "webhook_secret_file", None) or [])
        secrets.append(None)
        namespace.webhook_secret_file = secrets


class _WebhookSecret(argparse._AppendAction):
    """``--webhook-secret-file FILE``: fills the secret slot of the ``--webhook`` just before it."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        urls = getattr(namespace, "webhook", None) or []
        secrets = list(getattr(namespace, self.dest, None) or [])
        if not urls:
            parser.error(
                f"{option_string} FILE must follow the --webhook URL whose events it signs"
            )
        if len(secrets) != len(urls) or secrets[-1] is not None:
            parser.error(
                f"--webhook {urls[-1]} has {option_string} twice; give one after each --webhook"
            )
        secrets[-1] = values
        setattr(namespace, self.dest, secrets)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser``; :func:`from_environment` then lets each
    also come from its ``LIFECYCLE_*`` variable."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; another address without --auth "
        "prints a warning)",
    )
    parser.add_argument(
        "--port", type=_port, default=8080, help="TCP port (default 8080; 0 picks a free one)"
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        default=default_store_url(),
        help="where experiments are kept: memory://, sqlite:///PATH or postgresql://... "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--region", type=_region, default="us-east-1", help="region in ARNs (default us-east-1)"
    )
    parser.add_argument(
        "--account-id",
        type=_account_id,
        default="123456789012",
        help="account id in ARNs (default 123456789012)",
    )
    parser.add_argument(
        "--max-live-experiments",
        type=_positive_int,
        default=100,
        metavar="N",
        help="refuse Create (ResourceLimitExceeded) past N experiments that are not "
        "Completed or Cancelled (default 100)",
    )
    parser.add_argument(
        "--settle-seconds",
        type=_seconds,
        default=0.0,
        metavar="S",
        help="how long Creating, Starting, Updating and Stopping last before the "
        "reconciler moves them on (default 0: on its next pass)",
    )
    parser.add_argument(
        "--auth",
        choices=("none", "sigv4"),
        default="none",
        help="check AWS Signature Version 4 on every request (needs --credentials)",
    )
    parser.add_argument(
        "--credentials",
        metavar="FILE",
        help="access keys accepted with --auth sigv4, in the format of ~/.aws/credentials: "
        "[section] lines each followed by aws_access_key_id = ... and "
        "aws_secret_access_key = ..., and optionally account_id = ... (12 digits; default "
        "--account-id) and allow = all, read (Describe and List) or a comma-separated list "
        "of operations",
    )
    parser.add_argument(
        "--rate-limit",
        type=_rate_limit,
        metavar="RATE[:BURST]",
        help="answer a client's requests beyond RATE a second, in bursts of up to BURST "
        "(default RATE rounded up, at least 1), with 400 ThrottlingException, which boto3 "
        "retries with backoff; a client is an access key with --auth sigv4, else a client "
        "address; with --workers N each worker process has its own limit (default: none)",
    )
    parser.add_argument(
        "--token-secret-file",
        metavar="FILE",
        help="sign List's NextTokens with the secret in FILE (its bytes, less surrounding "
        "whitespace) instead of the one the store keeps; give every replica the same file",
    )
    parser.add_argument(
        "--actuator",
        metavar="KIND",
        default="simulated",
        help="what carries out the reconciler's steps: simulated (the default: records each "
        "step, changes nothing real), webhook (POSTs each step as JSON to --actuator-url; "
        "see docs/actuators.md), or package.module:factory, a callable of your own, called "
        "with no arguments, that returns an object with an apply(step) method (the module "
        "must be importable: installed, or on PYTHONPATH)",
    )
    parser.add_argument(
        "--actuator-url",
        metavar="URL",
        help="with --actuator webhook: the http:// or https:// URL each step is POSTed to",
    )
    parser.add_argument(
        "--actuator-secret-file",
        metavar="FILE",
        help="with --actuator webhook: sign each body with the secret in FILE (its bytes, "
        "less surrounding whitespace) in X-Lifecycle-Signature: sha256=<hex HMAC-SHA256>",
    )
    parser.add_argument(
        "--actuator-timeout",
        type=_timeout,
        metavar="SECONDS",
        help="with --actuator webhook: how long to wait to connect and for each read of the "
        "answer before the step counts as failed and is retried (default "
        f"{_WEBHOOK_TIMEOUT:g})",
    )
    parser.add_argument(
        "--webhook",
        metavar="URL",
        action=_Webhook,
        help="POST every event of the change feed to URL (http:// or https://), in order, at "
        "least once, retried until a 2xx answer, resuming after a restart (see docs/events.md); "
        "repeat for more receivers; from the environment, a comma-separated list",
    )
    parser.add_argument(
        "--webhook-secret-file",
        metavar="FILE",
        action=_WebhookSecret,
        help="sign the events of the --webhook just before this flag with the secret in FILE "
        "(its bytes, less surrounding whitespace): X-Lifecycle-Signature: sha256=<hex "
        "HMAC-SHA256 of the body>; from the environment, a comma-separated list whose n-th "
        "file signs the n-th webhook",
    )
    parser.add_argument(
        "--events-max-age",
        type=_seconds,
        default=DEFAULT_EVENTS_MAX_AGE,
        metavar="SECONDS",
        help="keep the change feed's events this long, then remove them; 0 keeps them "
        f"whatever their age (default {DEFAULT_EVENTS_MAX_AGE:g}: 7 days)",
    )
    parser.add_argument(
        "--events-max-count",
        type=_positive_int,
        metavar="N",
        help="keep at most the newest N events of the change feed (default: no limit)",
    )
    parser.add_argument(
        "--lock-timeout",
        type=_timeout,
        default=5.0,
        metavar="SECONDS",
        help="how long a write waits for the store's lock (SQLite's file lock, PostgreSQL's "
        "row locks and a pooled connection) before it is answered 503 ServiceUnavailable "
        "with Retry-After, writing nothing; also bounds a request's wait for a worker thread "
        "and the /ready probe (default 5)",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="serve from N processes on one port over one SQLite file or PostgreSQL "
        "database, each with its own reconciler, sharing the work through the store's "
        "claims (default 1; the memory store is one per process, so it takes only 1)",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=8,
        metavar="N",
        help="worker threads for store calls: N for reads (Describe, List) and N for writes, "
        "so reads never queue behind writers waiting for a lock; on SQLite, reads are made "
        "on the event loop and only one that would wait goes to a thread (default 8)",
    )
    parser.add_argument(
        "--max-connections",
        type=_positive_int,
        metavar="N",
        help="HTTP connections open at once; one more is answered 503 and closed (default: "
        "1024, or 64 fewer than the process's open-file limit when that is lower)",
    )
    parser.add_argument(
        "--header-timeout",
        type=_timeout,
        default=10.0,
        metavar="SECONDS",
        help="a connection must send a whole request head within this long of opening, "
        "and of its previous answer, or it is closed (default 10)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_timeout,
        default=5.0,
        metavar="SECONDS",
        help="close a keep-alive connection that sends nothing this long after an answer "
        "(default 5)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=_timeout,
        default=10.0,
        metavar="SECONDS",
        help="on SIGTERM or SIGINT, the longest the server waits for requests in flight and "
        "for the reconciler to end its step before it exits (default 10)",
    )
    parser.add_argument(
        "--log-level", choices=_LOG_LEVELS, default="info", help="log level (default info)"
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text: one line per record, TIME LEVEL LOGGER MESSAGE key=value...; json: one "
        "JSON object per line (default text)",
    )


def webhook_specs(args: argparse.Namespace) -> list[tuple[str, bytes | None]]:
    """Each ``--webhook`` URL with its secret, read from its ``--webhook-secret-file`` (the
    n-th of ``webhook_secret_file`` is the n-th URL's, None for none); ValueError, naming the
    flag, for more secret files than URLs, a URL given twice, a URL that is not http(s), or
    a secret file that cannot be read."""
    from lifecycle.actuators._http import SignedSender

    urls: list[str] = list(args.webhook or ())
    files: list[str | None] = list(args.webhook_secret_file or ())
    if len(files) > len(urls):
        raise ValueError(
            f"--webhook-secret-file: {len(files)} secret files for {len(urls)} webhooks; "
            "each file signs the webhook given before it (from the environment, the n-th)"
        )
    files.extend([None] * (len(urls) - len(files)))
    specs: list[tuple[str, bytes | None]] = []
    seen: set[str] = set()
    for url, secret_file in zip(urls, files, strict=True):
        if url in seen:
            raise ValueError(f"--webhook {url} is given twice")
        seen.add(url)
        secret = None
        if secret_file is not None:
            try:
                secret = read_secret(secret_file)
            except ValueError as exc:
                raise ValueError(f"--webhook-secret-file: {exc}") from None
        try:
            SignedSender(url).close()  # the sender's own check of the URL
        except ValueError as exc:
            raise ValueError(f"--webhook: {exc}") from None
        specs.append((url, secret))
    return specs


_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def build_actuator(args: argparse.Namespace) -> Actuator:
    """The actuator the ``--actuator*`` flags name; ValueError, naming the flag, when they
    do not fit together or name something that cannot act."""
    given = [
        flag
        for flag, value in (
            ("--actuator-url", args.actuator_url),
            ("--actuator-secret-file", args.actuator_secret_file),
            ("--actuator-timeout", args.actuator_timeout),
        )
        if value is not None
    ]
    if args.actuator != "webhook" and given:
        raise ValueError(f"{given[0]} is only used with --actuator webhook")
    if args.actuator == "simulated":
        from lifecycle.actuators import SimulatedActuator

        return SimulatedActuator()
    if args.actuator == "webhook":
        return _webhook_actuator(args)
    return _factory_actuator(args.actuator)


def _webhook_actuator(args: argparse.Namespace) -> Actuator:
    from lifecycle.actuators import WebhookActuator

    if not args.actuator_url:
        raise ValueError("--actuator webhook needs --actuator-url URL")
    secret = None
    if args.actuator_secret_file:
        try:
            secret = read_secret(args.actuator_secret_file)
        except ValueError as exc:
            raise ValueError(f"--actuator-secret-file: {exc}") from None
    timeout = _WEBHOOK_TIMEOUT if args.actuator_timeout is None else args.actuator_timeout
    try:
        return WebhookActuator(args.actuator_url, secret=secret, timeout=timeout)
    except ValueError as exc:
        raise ValueError(f"--actuator-url: {exc}") from None


def _factory_actuator(spec: str) -> Actuator:
    """``package.module:factory``: import the module, call the factory, check the result."""
    module_name, colon, attribute = spec.partition(":")
    if not (colon and _DOTTED.fullmatch(module_name) and _DOTTED.fullmatch(attribute)):
        raise ValueError(
            f"--actuator must be simulated, webhook or package.module:factory, not {spec!r}"
        )
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # the user's module: whatever its import raises is theirs to fix
        raise ValueError(
            f"--actuator: cannot import {module_name}: {type(exc).__name__}: {exc}"
        ) from None
    for part in attribute.split("."):
        target = getattr(target, part, _MISSING)
        if target is _MISSING:
            raise ValueError(f"--actuator: {module_name} has no {attribute}")
    if not callable(target):
        raise ValueError(f"--actuator: {spec} is a {type(target).__name__}, not a callable")
    try:
        actuator = target()
    except Exception as exc:
        raise ValueError(f"--actuator: {spec}() raised {type(exc).__name__}: {exc}") from None
    if not callable(getattr(actuator, "apply", None)):
        raise ValueError(
            f"--actuator: {spec}() returned a {type(actuator).__name__}, "
            "which has no apply(step) method"
        )
    return cast("Actuator", actuator)


_MISSING = object()


def read_secret(path: str) -> bytes:
    """A secret kept in a file: its bytes, less surrounding whitespace; ValueError naming
    what is wrong (unreadable, empty)."""
    try:
        secret = Path(path).read_bytes().strip()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not secret:
        raise ValueError(f"{path} is empty")
    return secret
