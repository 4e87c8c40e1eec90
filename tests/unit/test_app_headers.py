"""How the app reads a request's headers: names in any case, a repeated name's values joined."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

from lifecycle.http.app import LifecycleApp
from lifecycle.service.service import ExperimentService
from lifecycle.stores.memory import MemoryStore


def _ask(headers: list[tuple[bytes, bytes]], body: bytes = b"{}") -> tuple[int, dict[str, Any]]:
    app = LifecycleApp(ExperimentService(MemoryStore(), settle_seconds=0.0))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5555),
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_header_names_are_read_in_any_case() -> None:
    status, body = _ask(
        [
            (b"X-AMZ-Target", b"SageMaker.ListInferenceExperiments"),
            (b"Content-TYPE", b"application/x-amz-json-1.1"),
        ]
    )
    assert (status, body) == (200, {"InferenceExperiments": []})


def test_a_repeated_header_is_its_values_joined_in_order() -> None:
    # two Content-Types read as one "a,b": not a content type the service accepts
    status, body = _ask(
        [
            (b"x-amz-target", b"SageMaker.ListInferenceExperiments"),
            (b"content-type", b"application/x-amz-json-1.1"),
            (b"Content-Type", b"application/json"),
        ]
    )
    assert status == 400
    assert body["__type"] == "SerializationException"
    assert "'application/x-amz-json-1.1,application/json'" in body["Message"]
