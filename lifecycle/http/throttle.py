"""Rate limits (``lifecycle serve --rate-limit RATE[:BURST]``): a token bucket per client.

:class:`RateLimit` is the flag's value: ``RATE`` requests a second, in bursts
of up to ``BURST`` (default ``RATE`` rounded up, at least 1). A
:class:`RateLimiter` keeps one bucket per client (the access key with SigV4,
else the client's address): each holds up to ``burst`` tokens, gains ``rate``
a second, and a request takes one; a request that finds less than one is
refused, and the app answers it HTTP 400 ``ThrottlingException``, which
boto3 retries with backoff in its standard and adaptive retry modes.

It is cheap on the request path: :meth:`RateLimiter.take` is a dict lookup
and a little arithmetic on the monotonic clock, with no lock, because the
app calls it on its event loop only (one thread). Memory is bounded: a
bucket that has filled up again is the same as no bucket, so buckets idle
that long are forgotten (swept at most once a minute, and whenever
:attr:`RateLimiter.max_clients` are held; past that the half seen first goes).
Each process has its own buckets: with ``--workers N`` the limit holds per
worker process.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MAX_CLIENTS", "RateLimit", "RateLimiter"]

#: the most clients whose buckets are held at once
MAX_CLIENTS = 10_000
#: at most this often, idle buckets are swept out
_SWEEP_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``rate`` requests a second per client, in bursts of up to ``burst``."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"RATE must be a finite number above 0, not {self.rate:g}")
        if self.burst < 1:
            raise ValueError(f"BURST must be at least 1, not {self.burst}")

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """``RATE`` or ``RATE:BURST`` (what ``str()`` gives back); ValueError saying which part
        is wrong."""
        rate_text, colon, burst_text = text.strip().partition(":")
        try:
            rate = float(rate_text)
        except ValueError:
            raise ValueError(
                f"{text!r}: RATE must be a number of requests a second, as in 5, 0.5 or 20:40"
            ) from None
        try:
            burst = int(burst_text) if colon else math.ceil(max(1.0, rate))
        except ValueError:
            raise ValueError(f"{text!r}: BURST must be a whole number of requests") from None
        except OverflowError:  # RATE is infinite; the check below says so
            burst = 1
        try:
            return cls(rate, burst)
        except ValueError as exc:
            raise ValueError(f"{text!r}: {exc}") from None

    @classmethod
    def of(cls, value: RateLimit | str | None) -> RateLimit | None:
        """A parsed flag value as it is, or its text (how ``--workers`` hands the flags on)."""
        if value is None or isinstance(value, RateLimit):
            return value
        return cls.parse(value)

    def __str__(self) -> str:
        return f"{self.rate:g}:{self.burst}"

    def describe(self) -> str:
        """``5 requests a second (bursts of up to 10)``, for messages."""
        what = "request" if self.rate == 1 else "requests"
        return f"{self.rate:g} {what} a second (bursts of up to {self.burst})"


class RateLimiter:
    """Token buckets, one per client, for one :class:`RateLimit`; call from one thread."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.limit = limit
        self.max_clients = max_clients
        self._rate = limit.rate
        self._burst = float(limit.burst)
        #: how long an empty bucket takes to fill: a bucket idle that long is forgotten
        self._refill = self._burst / self._rate
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}  # client: [tokens, when last counted]
        self._swept = clock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str) -> bool:
        """Take a token of ``client``'s bucket: True when there was one, False when the
        request is over the limit (nothing taken)."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients or now - self._swept >= _SWEEP_SECONDS:
                self._sweep(now)
            self._buckets[client] = [self._burst - 1.0, now]
            return True
        tokens = bucket[0] + (now - bucket[1]) * self._rate
        if tokens > self._burst:
            tokens = self._burst
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return True
        bucket[0] = tokens
        return False

    def _sweep(self, now: float) -> None:
        """Forget the buckets that have filled up again; when as many clients as the bound
        are all busy, forget the half seen first (they start again with a full bucket)."""
        self._swept = now
        full = now - self._refill
        for client in [c for c, (_, last) in self._buckets.items() if last <= full]:
            del self._buckets[client]
        if len(self._buckets) >= self.max_clients:
            oldest = list(itertools.islice(self._buckets, len(self._buckets) // 2 + 1))
            for client in oldest:
                del self._buckets[client]
