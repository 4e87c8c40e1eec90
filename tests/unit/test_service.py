"""``ExperimentService.invoke_encoded``: what a transport that sends the bytes calls."""

from __future__ import annotations

import json

import pytest

from lifecycle.errors import LifecycleError
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore

from .conftest import create_request


def test_invoke_encoded_gives_the_bytes_invoke_then_encode_would() -> None:
    service = ExperimentService(MemoryStore(), settle_seconds=0.0)
    service.invoke("CreateInferenceExperiment", create_request("exp-1"))

    def encode(value: object) -> bytes:
        return json.dumps(value, sort_keys=True).encode()

    for operation, payload in (
        ("DescribeInferenceExperiment", {"Name": "exp-1"}),
        ("ListInferenceExperiments", {}),
    ):
        assert service.invoke_encoded(operation, payload, encode) == encode(
            service.invoke(operation, payload)
        )
    with pytest.raises(LifecycleError) as caught:
        service.invoke_encoded("DescribeInferenceExperiment", {"Name": "nope"}, encode)
    assert caught.value.code == "ResourceNotFound"
    # what invoke hands out is still the caller's own: changing it changes nothing stored
    mine = service.invoke("DescribeInferenceExperiment", {"Name": "exp-1"})
    mine["ShadowModeConfig"]["ShadowModelVariants"][0]["SamplingPercentage"] = 1
    again = service.invoke_encoded("DescribeInferenceExperiment", {"Name": "exp-1"}, encode)
    assert b'"SamplingPercentage": 50' in again
