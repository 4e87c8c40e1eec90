"""The floor ``bench_http.py`` measures ``lifecycle serve`` against: a bare ASGI app.

It reads each request's body and answers ``200`` with ``Content-Type:
application/x-amz-json-1.1`` and a JSON body of ``--body-size`` bytes, built
once; nothing else. The launcher serves it the way ``lifecycle.http.serve``
serves ``LifecycleApp`` (keep the two in step): uvicorn with its httptools
HTTP/1.1 protocol, the loop on ``auto`` (uvloop when installed), no access log,
lifespan on, no ``Server`` header, the same keep-alive and graceful-shutdown
timeouts, and ``--workers N`` processes on one port. The one difference is
the wrapper ``lifecycle.http.connections.guarded`` puts round the protocol
(the connection cap and the header deadline): that is lifecycle's own work,
so the floor goes without it.

    python benchmarks/_bare_app.py --port PORT --body-size BYTES [--host 127.0.0.1] [--workers 1]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

__all__ = ["app", "body_of", "main"]

Message = MutableMapping[str, Any]

#: the environment variable that carries the body size to every worker process
SIZE_VARIABLE = "BENCH_BARE_BODY_SIZE"


def body_of(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes (spaces when ``size`` is too small for one)."""
    if size < 8:
        return b" " * size
    return b'{"_":"' + b"x" * (size - 8) + b'"}'


_BODY = body_of(int(os.environ.get(SIZE_VARIABLE, "2")))
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/x-amz-json-1.1"),
        (b"content-length", str(len(_BODY)).encode()),
    ],
}
_ANSWER = {"type": "http.response.body", "body": _BODY}


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(_START)
    await send(_ANSWER)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-size", type=int, required=True, help="bytes in each answer")
    parser.add_argument("--workers", type=int, default=1, help="processes on the one port")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    import uvicorn

    # the workers import the app by name, so the size travels in the environment
    os.environ[SIZE_VARIABLE] = str(args.body_size)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    # as lifecycle.http.serve.serve builds its uvicorn.Config (idle 5 s, shutdown 10 s)
    uvicorn.run(
        "_bare_app:app",
        host=args.host,
        port=args.port,
        http="httptools",
        loop="auto",
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        workers=args.workers,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
