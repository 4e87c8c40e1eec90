"""A response's head and body leave in one write: half the system calls per answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from lifecycle.http.connections import PairedWrites


class _Recording:
    """The transport under the pairing: what reached the socket, write by write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "a write after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


Paired = tuple[PairedWrites, _Recording, asyncio.AbstractEventLoop]


@pytest.fixture
def paired() -> Iterator[Paired]:
    loop = asyncio.new_event_loop()
    raw = _Recording()
    try:
        yield PairedWrites(raw, loop), raw, loop
    finally:
        loop.close()


def _iterate(loop: asyncio.AbstractEventLoop) -> None:
    """Run the callbacks ready now, once (those they schedule wait for the next call)."""
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_a_head_and_its_body_go_out_in_one_write(paired: Paired) -> None:
    transport, raw, _ = paired
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert raw.writes == []
    transport.write(b"{}")
    assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]


def test_a_write_with_no_partner_goes_out_when_the_loop_comes_round(paired: Paired) -> None:
    transport, raw, loop = paired
    loop.call_soon(transport.write, b"HTTP/1.1 100 Continue\r\n\r\n")
    _iterate(loop)  # the batch the write was in: nothing out yet
    assert raw.writes == []
    _iterate(loop)
    assert raw.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]


def test_close_sends_what_is_held_first(paired: Paired) -> None:
    transport, raw, loop = paired
    transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    transport.close()
    assert raw.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"]
    assert raw.closed
    _iterate(loop)  # the send it had scheduled finds nothing left
    assert raw.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"]


def test_a_streamed_answer_keeps_its_order(paired: Paired) -> None:
    transport, raw, loop = paired
    for chunk in (b"head", b"one", b"two", b"three"):
        transport.write(chunk)
    _iterate(loop)
    assert raw.writes == [b"headone", b"twothree"]


def test_everything_else_is_the_transports_own(paired: Paired) -> None:
    transport, raw, _ = paired
    assert transport.is_closing() is False
    raw.closed = True
    assert transport.is_closing() is True
