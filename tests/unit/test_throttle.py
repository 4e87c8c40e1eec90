"""``--rate-limit RATE[:BURST]``: its parsing, and the token buckets on a clock of the test's own."""

from __future__ import annotations

import pytest

from lifecycle.http.throttle import RateLimit, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "rate", "burst"),
    [
        ("5", 5.0, 5),
        ("5:10", 5.0, 10),
        ("2.5", 2.5, 3),
        ("0.5", 0.5, 1),
        ("0.5:4", 0.5, 4),
        (" 3 ", 3.0, 3),
    ],
)
def test_a_rate_limit_reads_rate_and_burst_the_burst_defaulting_to_the_rate_rounded_up(
    text: str, rate: float, burst: int
) -> None:
    limit = RateLimit.parse(text)
    assert (limit.rate, limit.burst) == (rate, burst)
    assert RateLimit.parse(str(limit)) == limit  # how --workers hands it on


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0", "RATE must be a finite number above 0"),
        ("-1", "RATE must be a finite number above 0"),
        ("inf", "RATE must be a finite number above 0"),
        ("nan", "RATE must be a finite number above 0"),
        ("fast", "RATE must be a number of requests a second"),
        ("", "RATE must be a number of requests a second"),
        ("5:0", "BURST must be at least 1"),
        ("5:1.5", "BURST must be a whole number"),
        ("5:", "BURST must be a whole number"),
        ("5:many", "BURST must be a whole number"),
    ],
)
def test_a_bad_rate_limit_says_which_part_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as caught:
        RateLimit.parse(text)
    assert repr(text) in str(caught.value)


def test_of_takes_a_limit_its_text_or_none() -> None:
    limit = RateLimit(4.0, 8)
    assert RateLimit.of(limit) is limit
    assert RateLimit.of("4:8") == limit
    assert RateLimit.of(None) is None


def test_a_client_gets_its_burst_at_once_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(2.0, 3), clock=clock)
    assert [limiter.take("a") for _ in range(4)] == [True, True, True, False]
    clock.now += 0.25  # half a token
    assert not limiter.take("a")
    clock.now += 0.25  # a whole one, counting the half the refused take kept
    assert limiter.take("a")
    assert not limiter.take("a")


def test_a_bucket_never_holds_more_than_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(10.0, 2), clock=clock)
    limiter.take("a")
    clock.now += 3600
    assert [limiter.take("a") for _ in range(3)] == [True, True, False]


def test_each_client_has_its_own_bucket() -> None:
    limiter = RateLimiter(RateLimit(1.0, 1), clock=Clock())
    assert limiter.take("a")
    assert not limiter.take("a")
    assert limiter.take("b")


def test_buckets_of_idle_clients_are_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(1.0, 2), clock=clock)
    for n in range(100):
        limiter.take(f"idle-{n}")
    assert len(limiter) == 100
    clock.now += 61  # past the sweep interval, and every bucket full again
    limiter.take("new")
    assert len(limiter) == 1


def test_a_busy_client_is_not_forgotten_by_the_sweep() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(0.01, 1), clock=clock)  # a token per 100 s
    assert limiter.take("busy")
    clock.now += 61
    limiter.take("new")  # sweeps; "busy" has not filled up again
    assert not limiter.take("busy")


def test_the_buckets_held_are_bounded_however_many_clients_come() -> None:
    limiter = RateLimiter(RateLimit(1.0, 1), clock=Clock(), max_clients=50)
    for n in range(1000):
        limiter.take(f"client-{n}")
        assert len(limiter) <= 50
