"""The pytest plugin of ``lifecycle.testing``: the ``sagemaker_mock`` fixture.

Registered by the ``pytest11`` entry point ``lifecycle``, the top-level module
``_lifecycle_pytest``, once pytest configures (after pytest-cov has started
coverage, so the report sees this package's module-level lines run);
``pytest -p lifecycle.testing.pytest_plugin`` loads it directly. Loading it
imports only pytest: boto3, botocore, hypothesis and the engine are
imported when a test first uses the fixture.

::

    def test_my_boto3_code(sagemaker_mock):
        client = boto3.client("sagemaker")
        ...
        sagemaker_mock.advance(3600)

    @pytest.mark.sagemaker_mock(settle=30, tick=5)   # options of mock_sagemaker()
    def test_with_slow_transitions(sagemaker_mock): ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from lifecycle.testing._mock import MockSageMaker

__all__ = ["pytest_configure", "sagemaker_mock"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sagemaker_mock(**options): options of lifecycle.testing.mock_sagemaker() for the sagemaker_mock fixture",
    )


@pytest.fixture
def sagemaker_mock(request: pytest.FixtureRequest) -> Iterator[MockSageMaker]:
    """boto3's SageMaker client answered in process by the engine, for the test (``mock_sagemaker()``)."""
    from lifecycle.testing._mock import mock_sagemaker

    marker = request.node.get_closest_marker("sagemaker_mock")
    options = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        pytest.fail(
            f"@pytest.mark.sagemaker_mock takes options by name (settle=30), not {marker.args!r}",
            pytrace=False,
        )
    try:
        mock = mock_sagemaker(**options)
    except TypeError as exc:  # an option it does not have: the message names it and the others
        pytest.fail(f"@pytest.mark.sagemaker_mock: {exc}", pytrace=False)
    with mock:
        yield mock
