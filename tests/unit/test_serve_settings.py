"""The bounds of ``lifecycle serve`` reach uvicorn as given, fractions of a second included."""

from __future__ import annotations

import pytest

from lifecycle.http.serve import Limits, _uvicorn_settings


def test_a_fractional_idle_timeout_reaches_uvicorn_unrounded() -> None:
    settings = _uvicorn_settings("info", Limits(idle_timeout=0.5))
    assert settings["timeout_keep_alive"] == 0.5


@pytest.mark.parametrize("bound", [0.5, 1.0, 1.5, 2.5, 10.0])
def test_requests_drain_within_the_shutdown_bound_leaving_time_for_the_reconciler(
    bound: float,
) -> None:
    drain = _uvicorn_settings("info", Limits(shutdown_timeout=bound))["timeout_graceful_shutdown"]
    assert 0 < drain < bound
    assert drain >= min(bound - 1.0, bound / 2)
