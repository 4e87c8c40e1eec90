"""The unit tests' fixtures, from the toolkit users get (``lifecycle.testing``).

``World``, its clock, ``T0`` and the payload builders are the toolkit's;
the names here (``Clock``, ``variant``, ``create_request``) are what the
test modules import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lifecycle.testing import T0, World, create_payload
from lifecycle.testing import VirtualClock as Clock
from lifecycle.testing import variant_config as variant

__all__ = ["T0", "Clock", "World", "create_request", "variant"]


def create_request(
    name: str = "exp", endpoint: str | None = None, **members: Any
) -> dict[str, Any]:
    """A whole CreateInferenceExperiment request: ``create_payload()`` named ``name``, on
    ``endpoint`` (default ``<name>-endpoint``)."""
    return create_payload(Name=name, EndpointName=endpoint or f"{name}-endpoint", **members)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def make_world() -> Callable[..., World]:
    return World
