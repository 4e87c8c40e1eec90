"""``GET /metrics``: what the server does, in the Prometheus text format (``prometheus_client``).

Every label set is bounded: operations are the seven (or ``other``), codes
are the wire's error codes, transitions are the table's, kinds are
:attr:`~lifecycle.errors.StoreUnavailableError.KINDS`; no experiment name
is ever a label. Each app has a registry of its own, so two apps in one
process never mix their counts.

=============================================  ==========================================
metric                                         what it counts
=============================================  ==========================================
``lifecycle_requests_total{operation,code}``   answered requests, by outcome code
``lifecycle_request_duration_seconds``         latency histogram, by ``operation``
``lifecycle_transitions_total``                committed transitions, by ``machine``
                                               (``experiment``, ``variant``), ``event``,
                                               ``from`` and ``to``
``lifecycle_step_attempts_total{action}``      actuator calls
``lifecycle_step_failures_total{action}``      actuator calls that failed
``lifecycle_reconciler_pass_seconds``          how long each reconciler pass took
``lifecycle_oldest_due_step_age_seconds``      how long the oldest step found due had waited
``lifecycle_store_errors_total{kind}``         outages the store met (answered 503)
``lifecycle_throttled_requests_total``         requests over ``--rate-limit`` (answered
                                               ``ThrottlingException``), by ``operation``
``lifecycle_experiments{status}``              experiments per status (read at scrape time)
``lifecycle_open_connections``                 HTTP connections open now
``lifecycle_webhook_deliveries_total``         events a webhook receiver took (2xx), by
                                               ``subscription``
``lifecycle_webhook_failures_total``           failed deliveries, by ``subscription`` and
                                               ``status`` (the HTTP status, ``no_answer``,
                                               ``trimmed``)
``lifecycle_webhook_lag_seconds``              how long ago the event a subscription is
                                               delivering was committed (0: caught up)
=============================================  ==========================================

A subscription's label is its short id (``subscription_id(url)``, 12 hex
digits), never its URL: one value per ``--webhook``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

try:
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        generate_latest,
    )
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError as _err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the server's metrics need prometheus_client, which the 'server' extra installs"
    ) from _err

from lifecycle.domain.experiment import HistoryEntry
from lifecycle.domain.statuses import OPERATIONS

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_log = logging.getLogger("lifecycle.server")
_KNOWN_OPERATIONS = frozenset(OPERATIONS) | {"Health", "Ready", "Metrics", "Events"}
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class _Experiments(Collector):
    """``lifecycle_experiments{status}``, counted by the store when scraped."""

    def __init__(self, count: Callable[[], dict[str, int]]) -> None:
        self._count = count

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "lifecycle_experiments", "Experiments in each status", labels=["status"]
        )
        try:
            counts = self._count()
        except Exception as exc:  # a scrape during an outage still answers the rest
            _log.warning("metrics: cannot count experiments: %s", exc)
            counts = {}
        for status, n in sorted(counts.items()):
            family.add_metric([status], n)
        yield family


class Metrics:
    """The server's counters, histograms and gauges, in a registry of their own.

    ``count_by_status`` (the store's) is called at each scrape; ``open_connections``
    too. The methods are the hooks: :meth:`request`, :meth:`store_error` and
    :meth:`throttled` from the app, :meth:`transition` as the service's listener,
    :meth:`step` and :meth:`finished_pass` as the reconciler's observer,
    :meth:`delivered` and :meth:`delivery_failed` as the webhook
    subscriptions' observer, :meth:`watch_lag` for each subscription.
    """

    def __init__(
        self,
        count_by_status: Callable[[], dict[str, int]] | None = None,
        open_connections: Callable[[], int] | None = None,
    ) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[str | None, str], tuple[Any, Any]] = {}
        self._transition_children: dict[tuple[Any, ...], Any] = {}
        self._requests = Counter(
            "lifecycle_requests",
            "Requests answered, by operation and outcome code",
            ["operation", "code"],
            registry=registry,
        )
        self._latency = Histogram(
            "lifecycle_request_duration_seconds",
            "Time to answer a request, by operation",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self._transitions = Counter(
            "lifecycle_transitions",
            "Committed transitions",
            ["machine", "event", "from", "to"],
            registry=registry,
        )
        self._attempts = Counter(
            "lifecycle_step_attempts", "Actuator calls, by action", ["action"], registry=registry
        )
        self._failures = Counter(
            "lifecycle_step_failures",
            "Actuator calls that failed, by action",
            ["action"],
            registry=registry,
        )
        self._pass = Histogram(
            "lifecycle_reconciler_pass_seconds",
            "Time of one reconciler pass",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self._oldest_due = Gauge(
            "lifecycle_oldest_due_step_age_seconds",
            "How long the oldest step the last pass found due had waited",
            registry=registry,
        )
        self._store_errors = Counter(
            "lifecycle_store_errors",
            "Store outages met (answered 503), by kind",
            ["kind"],
            registry=registry,
        )
        self._throttled = Counter(
            "lifecycle_throttled_requests",
            "Requests over the rate limit (answered ThrottlingException), by operation",
            ["operation"],
            registry=registry,
        )
        self._deliveries = Counter(
            "lifecycle_webhook_deliveries",
            "Events a webhook receiver took (2xx), by subscription",
            ["subscription"],
            registry=registry,
        )
        self._delivery_failures = Counter(
            "lifecycle_webhook_failures",
            "Failed webhook deliveries, by subscription and status",
            ["subscription", "status"],
            registry=registry,
        )
        self._lag = Gauge(
            "lifecycle_webhook_lag_seconds",
            "How long ago the event a subscription is delivering was committed (0: caught up)",
            ["subscription"],
            registry=registry,
        )
        if open_connections is not None:
            gauge = Gauge(
                "lifecycle_open_connections", "HTTP connections open now", registry=registry
            )
            gauge.set_function(lambda: float(open_connections()))
        if count_by_status is not None:
            registry.register(_Experiments(count_by_status))

    # -- hooks ----------------------------------------------------------------------

    def request(self, operation: str | None, code: str, seconds: float) -> None:
        children = self._children.get((operation, code))
        if children is None:  # once per (operation, code): labels() is a lookup under a lock
            op = operation if operation in _KNOWN_OPERATIONS else "other"
            children = (self._requests.labels(op, code), self._latency.labels(op))
            if len(self._children) < 4096:
                self._children[(operation, code)] = children
        children[0].inc()
        children[1].observe(seconds)

    def transition(self, entry: HistoryEntry) -> None:
        """Count a committed transition under its machine (``entry.machine``)."""
        machine = entry.machine
        key = (machine, entry.event, entry.from_status, entry.to_status)
        child = self._transition_children.get(key)
        if child is None:  # once per transition of the table: labels() is a lookup under a lock
            source = "" if entry.from_status is None else str(entry.from_status)
            child = self._transitions.labels(machine, entry.event, source, str(entry.to_status))
            if len(self._transition_children) < 4096:
                self._transition_children[key] = child
        child.inc()

    def step(self, action: str, ok: bool) -> None:
        self._attempts.labels(action).inc()
        if not ok:
            self._failures.labels(action).inc()

    def finished_pass(self, seconds: float, oldest_due_age: float) -> None:
        self._pass.observe(seconds)
        self._oldest_due.set(oldest_due_age)

    def store_error(self, kind: str) -> None:
        self._store_errors.labels(kind).inc()

    def throttled(self, operation: str) -> None:
        self._throttled.labels(operation if operation in _KNOWN_OPERATIONS else "other").inc()

    def delivered(self, subscription: str) -> None:
        self._deliveries.labels(subscription).inc()

    def delivery_failed(self, subscription: str, status: str) -> None:
        self._delivery_failures.labels(subscription, status).inc()

    def watch_lag(self, subscription: str, lag_seconds: Callable[[], float]) -> None:
        """Report ``lag_seconds()`` as the subscription's lag at each scrape."""
        self._deliveries.labels(subscription)  # a subscription shows at 0 before its first
        self._lag.labels(subscription).set_function(lag_seconds)

    # -- the scrape -----------------------------------------------------------------

    def render(self) -> bytes:
        """The text exposition of every metric (calls the store to count experiments)."""
        return generate_latest(self.registry)
