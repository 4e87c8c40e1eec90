"""The Actuator: what really changes an endpoint, and the default one that simulates it.

The reconciler hands the actuator one :class:`Step` at a time. Every step
carries an idempotency key that is the same every time the same step is
tried (after a retry, a crash, or on another replica), so an actuator that
remembers the keys it carried out does each step once.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

__all__ = ["Actuator", "ActuatorError", "SimulatedActuator", "Step"]


@dataclass(frozen=True, slots=True)
class Step:
    """One change to carry out on an endpoint.

    ``action`` is one of ``provision-variant``, ``start-shadow-test``,
    ``update-variant``, ``apply-update``, ``promote-variant``,
    ``remove-variant``, ``end-shadow-test``.
    """

    key: str
    experiment: str
    endpoint: str
    action: str
    variant: str | None = None
    model_name: str | None = None
    infrastructure: dict[str, Any] | None = None


class ActuatorError(Exception):
    """A step could not be carried out; the reconciler retries it, then fails the experiment."""


@runtime_checkable
class Actuator(Protocol):
    def apply(self, step: Step) -> None:
        """Carry out ``step`` (once per key); raise to report a failure."""
        ...


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
    action fail, for tests of the retry and fail paths.
    """

    def __init__(self, log_path: str | os.PathLike[str] | None = None) -> None:
        self._lock = threading.Lock()
        self.applied: dict[str, Step] = {}
        self.calls: list[Step] = []
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

    def fail(self, action: str, times: int = 1, message: str = "simulated failure") -> None:
        with self._lock:
            self._failures.setdefault(action, []).extend([message] * times)

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
            self.applied.setdefault(step.key, step)
        self._offset += end
        return end < len(data)

    def apply(self, step: Step) -> None:
        with self._lock:
            self.calls.append(step)
            pending = self._failures.get(step.action)
            if pending:
                raise ActuatorError(f"{pending.pop(0)} ({step.action} of {step.variant or step.experiment})")
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
            self.applied[step.key] = step


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
