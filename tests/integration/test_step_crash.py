"""A server killed between the actuator's answer and the save carries the step out once by key.

The actuator is a user's own (``lifecycle serve --actuator module:factory``): it
writes every step it is handed to a file, fsynced (the receiver's log), and the
first time it is handed ``start-shadow-test`` it then SIGKILLs its own server,
after answering but before the reconciler saves: the worst moment. A server
restarted on the same SQLite file must hand the step over again, with the same
key, so a receiver that keys its effects by it does the step once.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

CRASHING_ACTUATOR = """
    import json, os, signal

    class Crashing:
        def __init__(self):
            self.log = os.environ["CRASH_STEPS"]
            self.marker = os.environ["CRASH_ONCE"]

        def apply(self, step):
            with open(self.log, "a") as f:
                f.write(json.dumps({"key": step.key, "action": str(step.action), "variant": step.variant}) + "\\n")
                f.flush()
                os.fsync(f.fileno())
            if str(step.action) == "start-shadow-test" and os.path.exists(self.marker):
                os.remove(self.marker)
                os.kill(os.getpid(), signal.SIGKILL)  # answered, not yet saved

    def make():
        return Crashing()
"""


def crash_setup(tmp_path: Path) -> tuple[Path, Path, Path, dict[str, str]]:
    """The crashing actuator's module in ``tmp_path``, armed to kill once: its step log, its
    marker, the database, and the environment a server needs to import it."""
    (tmp_path / "crashmod.py").write_text(textwrap.dedent(CRASHING_ACTUATOR))
    log, marker, db = tmp_path / "steps.jsonl", tmp_path / "kill-once", tmp_path / "lifecycle.db"
    marker.write_text("")
    repo = str(Path(__file__).resolve().parents[2])
    env = {
        "PYTHONPATH": os.pathsep.join([str(tmp_path), repo]),
        "CRASH_STEPS": str(log),
        "CRASH_ONCE": str(marker),
    }
    return log, marker, db, env


def received(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_a_step_answered_but_not_saved_is_handed_over_again_with_its_key(
    tmp_path: Path, serve_process: Any, client_for: Any, create_request: Any, wait_for_status: Any
) -> None:
    log, marker, db, env = crash_setup(tmp_path)
    args = ("--store", f"sqlite:///{db}", "--actuator", "crashmod:make")

    first = serve_process(*args, env=env).wait_started()
    client_for(first.url).create_inference_experiment(**create_request("crash-1"))
    assert first.wait(timeout=20) == -signal.SIGKILL, first.output
    assert not marker.exists()

    second = serve_process(*args, env=env).wait_started()
    # the dead server's claim on the experiment holds for its lease (30 s), then lapses
    wait_for_status(client_for(second.url), "crash-1", "Running", timeout=45)
    second.signal(signal.SIGTERM)
    assert second.wait() == 0, second.output

    steps = received(log)
    starts = [s["key"] for s in steps if s["action"] == "start-shadow-test"]
    assert len(starts) == 2, steps  # handed over before the crash, and again after it
    assert len(set(starts)) == 1, "a retry after a crash must carry the same key"
    by_step: dict[tuple[str, str | None], set[str]] = {
        (s["action"], s["variant"]): set() for s in steps
    }
    for s in steps:
        by_step[(s["action"], s["variant"])].add(s["key"])
    assert all(len(keys) == 1 for keys in by_step.values()), by_step


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_two_servers_on_one_sqlite_file_hand_each_step_over_under_one_key(
    tmp_path: Path,
    serve_process: Any,
    client_for: Any,
    create_request: Any,
    wait_for_status: Any,
    workers: str,
) -> None:
    (tmp_path / "crashmod.py").write_text(textwrap.dedent(CRASHING_ACTUATOR))
    log, db = tmp_path / "steps.jsonl", tmp_path / "lifecycle.db"
    repo = str(Path(__file__).resolve().parents[2])
    env = {
        "PYTHONPATH": os.pathsep.join([str(tmp_path), repo]),
        "CRASH_STEPS": str(log),
        "CRASH_ONCE": str(tmp_path / "never"),
    }
    args = ("--store", f"sqlite:///{db}", "--actuator", "crashmod:make", "--workers", workers)
    servers = [serve_process(*args, env=env).wait_started() for _ in range(2)]
    clients = [client_for(s.url) for s in servers]
    names = [f"pair-{i}" for i in range(6)]
    for i, name in enumerate(names):
        clients[i % 2].create_inference_experiment(**create_request(name))
    for name in names:
        wait_for_status(clients[0], name, "Running", timeout=15)
    for i, name in enumerate(names):
        clients[(i + 1) % 2].stop_inference_experiment(
            Name=name, ModelVariantActions={"shadow": "Promote"}
        )
    for name in names:
        wait_for_status(clients[1], name, "Completed", timeout=15)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(received(log)) < 6 * len(names):
        time.sleep(0.05)
    for server in servers:
        server.signal(signal.SIGTERM)
        assert server.wait() == 0, server.output
    keys: dict[tuple[str, str, str | None], set[str]] = {}
    for s in received(log):
        name = s["key"].split("|")[0].rsplit("/", 1)[1]
        keys.setdefault((name, s["action"], s["variant"]), set()).add(s["key"])
    assert all(len(k) == 1 for k in keys.values()), keys
    per_experiment = {(a, v) for (_, a, v) in keys}
    assert per_experiment == {
        ("provision-variant", "prod"),
        ("provision-variant", "shadow"),
        ("start-shadow-test", None),
        ("promote-variant", "shadow"),
        ("remove-variant", "prod"),
        ("end-shadow-test", None),
    }
    assert len(keys) == 6 * len(names)


@pytest.mark.slow
def test_a_worker_killed_after_a_step_was_answered_is_replaced_and_the_step_handed_over_again(
    tmp_path: Path, serve_process: Any, client_for: Any, create_request: Any, wait_for_status: Any
) -> None:
    """With --workers 2 the SIGKILL takes one worker: the server stays up, a new worker
    takes its place, and once the dead worker's lease ends the step goes out again,
    under the same key."""
    log, marker, db, env = crash_setup(tmp_path)
    args = ("--store", f"sqlite:///{db}", "--actuator", "crashmod:make", "--workers", "2")
    server = serve_process(*args, env=env).wait_started()
    client = client_for(server.url)
    client.create_inference_experiment(**create_request("crash-w"))
    deadline = time.monotonic() + 20
    while marker.exists():
        assert time.monotonic() < deadline, server.output
        time.sleep(0.05)
    while "died" not in server.output:  # the supervisor saw the worker go, and replaces it
        assert time.monotonic() < deadline, server.output
        time.sleep(0.05)
    # a new client: the old one's kept-alive connection went to the worker that died
    client = client_for(server.url)
    # the killed worker's claim holds for its lease (30 s), then lapses
    wait_for_status(client, "crash-w", "Running", timeout=45)
    server.signal(signal.SIGTERM)
    assert server.wait() == 0, server.output
    starts = [s["key"] for s in received(log) if s["action"] == "start-shadow-test"]
    assert len(starts) == 2 and len(set(starts)) == 1, starts
