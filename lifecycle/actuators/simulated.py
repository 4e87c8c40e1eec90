"""The default actuator: it changes nothing real and records each step once, by key."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import OrderedDict, deque
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

from lifecycle.actuators.base import ActuatorError, Step

__all__ = ["SimulatedActuator"]


class SimulatedActuator:
    """Carries out nothing real: it records each step once, by key.

    With ``log_path`` the record is a durable append-only JSON-lines file
    (each line flushed and fsynced before ``apply`` returns), read back on
    start, so a restarted process does not carry out a step twice. Several
    processes may share one log: ``apply`` takes an exclusive lock on the
    file (``fcntl.flock``), reads what the others appended since it last
    looked, and appends only a key nobody carried out. A line cut short by
    a crash is ignored and the next line starts on a fresh line.
    ``fail(action, times, message)`` makes the next ``times`` steps of that
    action fail, for tests of the retry and fail paths; ``fail(...,
    retryable=False)`` fails them as an error retrying cannot mend.

    Memory stays bounded however long it runs: ``applied`` remembers the last
    ``remember`` keys carried out and ``calls`` the last ``remember`` steps it
    was handed. A step is retried only while its experiment is in the status
    that planned it, and at most ``--max-live-experiments`` (100 by default)
    are live, each with a handful of steps open, so 10,000 keys leave a wide
    margin; a key older than that never comes back.
    """

    def __init__(
        self, log_path: str | os.PathLike[str] | None = None, *, remember: int = 10_000
    ) -> None:
        self._lock = threading.Lock()
        self._remember = remember
        #: the keys carried out, oldest first (at most ``remember``)
        self.applied: OrderedDict[str, Step] = OrderedDict()
        #: every step handed to ``apply``, oldest first (at most ``remember``)
        self.calls: deque[Step] = deque(maxlen=remember)
        self._retryable: dict[str, bool] = {}
        self._failures: dict[str, list[str]] = {}
        self._log = Path(log_path) if log_path is not None else None
        self._offset = 0  # how far into the log this process has read
        if self._log is not None and self._log.exists():
            with self._log.open("rb") as f:
                _lock_file(f.fileno())
                try:
                    self._read_new(f)
                finally:
                    _unlock_file(f.fileno())

    def fail(
        self,
        action: str,
        times: int = 1,
        message: str = "simulated failure",
        *,
        retryable: bool = True,
    ) -> None:
        with self._lock:
            self._failures.setdefault(action, []).extend([message] * times)
            self._retryable[action] = retryable

    def _remember_key(self, step: Step) -> None:
        self.applied[step.key] = step
        self.applied.move_to_end(step.key)
        while len(self.applied) > self._remember:
            self.applied.popitem(last=False)

    def _read_new(self, f: BinaryIO) -> bool:
        """Take in the lines appended since the last read; True when the log ends mid-line."""
        f.seek(self._offset)
        data = f.read()
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            try:
                step = Step(**json.loads(line))
            except (ValueError, TypeError):
                continue  # a line cut short by a crash, then completed by the next writer
            if step.key not in self.applied:
                self._remember_key(step)
        self._offset += end
        return end < len(data)

    def apply(self, step: Step) -> None:
        with self._lock:
            self.calls.append(step)
            pending = self._failures.get(step.action)
            if pending:
                raise ActuatorError(
                    f"{pending.pop(0)} ({step.action} of {step.variant or step.experiment})",
                    retryable=self._retryable.get(step.action, True),
                )
            if step.key in self.applied:
                return
            if self._log is not None:
                with self._log.open("ab+") as f:
                    _lock_file(f.fileno())
                    try:
                        torn = self._read_new(f)
                        if step.key in self.applied:
                            return  # another process carried it out
                        line = json.dumps(asdict(step), sort_keys=True) + "\n"
                        f.write((b"\n" if torn else b"") + line.encode())
                        f.flush()
                        os.fsync(f.fileno())
                        self._offset = f.tell()
                    finally:
                        _unlock_file(f.fileno())
            self._remember_key(step)


if sys.platform == "win32":  # pragma: no cover - no flock: one process per log

    def _lock_file(fd: int) -> None:
        return None

    def _unlock_file(fd: int) -> None:
        return None

else:
    import fcntl

    def _lock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
