#!/usr/bin/env python3
"""Mutation testing: one plausible one-line bug at a time, and whether the fast tests catch it.

Each mutant is a (file, exact original text, replacement, description). The
working tree is copied once to a temporary directory (without ``.venv``,
``.git`` and caches), so edits made while the run goes on do not leak into
it; the fast tests (``tests/unit`` and ``tests/contract`` without
PostgreSQL) must pass there unmutated. Then each mutant is applied to a copy
of that snapshot and the fast tests run on it, with ``PYTHONPATH`` pointing
at the copy. The real files are never written, so a killed run leaves
nothing to restore.

One line per mutant: ``caught`` (a test failed), ``SURVIVED`` (every test
passed: a rule that no test holds), ``timeout`` (the tests ran past the
per-mutant limit: some test waits without a bound) or ``ERROR`` (the
original text is not in the file exactly once, so the mutant is stale; or
pytest could not run at all).

Exit status: 0 when every mutant is caught; 1 when any survived, timed out
or is stale; 2 when the unmutated tests fail.

    python scripts/mutants.py              # every mutant
    python scripts/mutants.py -k schedule  # those whose file or description says "schedule"
    python scripts/mutants.py --list       # the mutants, not run

Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(
    ".venv",
    ".git",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    ".coverage*",
    "*.db",
    "*.db-wal",
    "*.db-shm",
)
TESTS = ["tests/unit", "tests/contract", "-m", "not postgres"]


class Mutant(NamedTuple):
    file: str
    original: str
    replacement: str
    description: str


_SCHEDULE = "lifecycle/domain/rules/schedule.py"
_STOP = "lifecycle/domain/rules/stop.py"
_ROUTING = "lifecycle/domain/rules/routing.py"
_UPDATE = "lifecycle/domain/rules/update.py"
_TABLE = "lifecycle/domain/table.py"
_OPERATIONS = "lifecycle/service/_operations.py"
_PLANS = "lifecycle/service/_plans.py"
_MEMORY = "lifecycle/stores/memory.py"
_SCALARS = "lifecycle/wire/_scalars.py"

MUTANTS: list[Mutant] = [
    # the four of issue 20
    Mutant(
        _SCHEDULE,
        "    if end <= start:\n",
        "    if end < start:\n",
        "schedule: an EndTime equal to StartTime is accepted (<= to <)",
    ),
    Mutant(
        _OPERATIONS,
        '    "SortBy",\n    "SortOrder",\n)',
        '    "SortBy",\n)',
        "List: the NextToken's scope leaves out SortOrder",
    ),
    Mutant(
        _OPERATIONS,
        "    if not gate.passes(Stage.validation(update_request_refusals(req, plan, now))):\n"
        "        return None\n"
        "    exp = _load(svc, req.Name, gate)\n"
        "    if exp is None:\n"
        "        return None\n",
        "    exp = _load(svc, req.Name, gate)\n"
        "    if exp is None:\n"
        "        return None\n"
        "    if not gate.passes(Stage.validation(update_request_refusals(req, plan, now))):\n"
        "        return None\n",
        "Update: existence is checked before the request alone",
    ),
    Mutant(
        _STOP,
        "_STATES[desired_state] if desired_state else DesiredState.COMPLETED",
        "_STATES[desired_state] if desired_state else DesiredState.CANCELLED",
        "Stop: DesiredState defaults to Cancelled",
    ),
    # schedule boundaries
    Mutant(
        _SCHEDULE,
        "    elif end - start > MAX_DURATION:\n",
        "    elif end - start >= MAX_DURATION:\n",
        "schedule: exactly 30 days is refused (> to >=)",
    ),
    Mutant(
        _SCHEDULE,
        "    if end_given and end <= now:\n",
        "    if end_given and end < now:\n",
        "schedule: a Create's EndTime equal to now is accepted (<= to <)",
    ),
    Mutant(
        _PLANS,
        "if plan.end_time is not UNSET and plan.end_time <= now:",
        "if plan.end_time is not UNSET and plan.end_time < now:",
        "Update: an EndTime equal to now is accepted (<= to <)",
    ),
    Mutant(
        _PLANS,
        "    start = exp.start_time if plan.start_time is UNSET else plan.start_time\n",
        "    start = exp.start_time\n",
        "Update: the schedule is judged with the stored StartTime, not the requested one",
    ),
    Mutant(
        _PLANS,
        "    if plan.start_time is not UNSET and plan.end_time is not UNSET:"
        "  # judged without the stored one\n"
        "        out.extend(schedule_refusals(plan.start_time, plan.end_time, now, end_given=False))\n",
        "",
        "Update: a Schedule that gives both times is not judged at all (the check dropped)",
    ),
    Mutant(
        _ROUTING,
        "    if f.experiment.start_time > f.now:\n",
        "    if f.experiment.start_time >= f.now:\n",
        "routing: a StartTime of exactly now waits in Created (> to >=)",
    ),
    # stop rules
    Mutant(
        _STOP,
        "    if len(promotes) > 1:\n",
        "    if len(promotes) > 2:\n",
        "Stop: two Promotes are accepted (off by one)",
    ),
    Mutant(
        _STOP,
        "    if len(plan.actions) < 2 and not plan.desired_order:\n",
        "    if len(plan.actions) <= 2 and not plan.desired_order:\n",
        "Stop: the request-alone rules are skipped for two actions (< to <=)",
    ),
    Mutant(
        _STOP,
        "    if shadow_promoted and actions.get(prod) is VariantAction.RETAIN:\n",
        "    if shadow_promoted and actions.get(shadow) is VariantAction.RETAIN:\n",
        "Stop: promotion-replaces-production looks at the shadow's action (a dropped guard)",
    ),
    Mutant(
        _UPDATE,
        "    if plan.start_time is not UNSET and plan.start_time != exp.start_time:\n",
        "    if plan.start_time is not UNSET:\n",
        "Update while Running: re-sending the stored StartTime is refused",
    ),
    # the tables
    Mutant(
        _TABLE,
        "    deletable_from=frozenset({E.CREATED, E.COMPLETED, E.CANCELLED}),\n",
        "    deletable_from=frozenset({E.CREATED, E.COMPLETED}),\n",
        "table: Delete is refused in Cancelled",
    ),
    Mutant(
        _TABLE,
        '(UPDATE_OP,), ("update_rules_running",)),',
        '(UPDATE_OP,), ("update_rules_created",)),',
        "table: an Update while Running is judged by Created's rules (swapped guard)",
    ),
    Mutant(
        _TABLE,
        '        Transition("fail", E.STOPPING, E.CANCELLED, _R),\n',
        '        Transition("fail", E.STOPPING, E.COMPLETED, _R),\n',
        "table: a stop that fails for good ends Completed (swapped status)",
    ),
    Mutant(
        _TABLE,
        '(STOP_OP, RECONCILER), ("variant_action_rules",)),',
        "(STOP_OP, RECONCILER), ()),",
        "table: Stop's variant-action guard is dropped",
    ),
    # create and update rules of the request alone
    Mutant(
        _PLANS,
        "    missing = [n for n in (source, shadow) if n not in names]\n",
        "    missing = [n for n in (source,) if n not in names]\n",
        "Create: the shadow variant need not be in ModelVariants",
    ),
    Mutant(
        _PLANS,
        "        and len(plan.variants) != len(req.ModelVariants)\n",
        "        and len(plan.variants) > len(req.ModelVariants)\n",
        "Update: a variant named twice in ModelVariants is accepted",
    ),
    Mutant(
        _OPERATIONS,
        "    if limit is not None and len(live) >= limit:\n",
        "    if limit is not None and len(live) > limit:\n",
        "explain: the live limit's dry run is one too high (>= to >)",
    ),
    # the memory store
    Mutant(
        _MEMORY,
        "        return ListPage(page[: query.limit], len(page) > query.limit)\n",
        "        return ListPage(page[: query.limit], len(page) >= query.limit)\n",
        "memory store: an exact last page says there is more (> to >=)",
    ),
    Mutant(
        _MEMORY,
        "                and len(self._live_endpoints) >= max_live\n",
        "                and len(self._live_endpoints) > max_live\n",
        "memory store: one create past the live limit is accepted (>= to >)",
    ),
    Mutant(
        _MEMORY,
        "                    if (s.value < at) if not desc else (s.value > at):\n",
        "                    if (s.value <= at) if not desc else (s.value > at):\n",
        "memory store: paging by Status ascending skips the rest of the current status",
    ),
    Mutant(
        _MEMORY,
        "        while heap and heap[0][0] <= now and len(out) < limit:\n",
        "        while heap and heap[0][0] < now and len(out) < limit:\n",
        "memory store: work due exactly now is not due (<= to <)",
    ),
    # the wire shapes
    Mutant(
        _SCALARS,
        '_str("InferenceExperimentName", 1, 120, ',
        '_str("InferenceExperimentName", 1, 121, ',
        "wire: a Name of 121 characters is accepted",
    ),
    Mutant(
        _SCALARS,
        'Percentage = Annotated[int, _int("Percentage", 0, 100)]',
        'Percentage = Annotated[int, _int("Percentage", 0, 101)]',
        "wire: a SamplingPercentage of 101 is accepted",
    ),
    Mutant(
        _SCALARS,
        '_keep(Size("ModelVariantActionMap", 1, 2)),',
        '_keep(Size("ModelVariantActionMap", 1, 3)),',
        "wire: three ModelVariantActions are accepted",
    ),
    Mutant(
        _SCALARS,
        '_str("InferenceExperimentStatusReason", 0, 1024, ".*")',
        '_str("InferenceExperimentStatusReason", 0, 1025, ".*")',
        "wire: a Reason of 1025 characters is accepted",
    ),
]


class Result(NamedTuple):
    verdict: str  # caught, SURVIVED, timeout, ERROR
    seconds: float
    detail: str


def venv_python() -> str:
    candidate = REPO / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def copy_tree(source: Path, into: Path) -> Path:
    target = into / "repo"
    shutil.copytree(source, target, ignore=IGNORE, symlinks=True)
    return target


def first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" - ")[0]
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_tests(copy: Path, python: str, timeout: float, pytest_args: Sequence[str]) -> Result:
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    for name in ("LIFECYCLE_REQUIRE_POSTGRES", "LIFECYCLE_TEST_POSTGRES_DSN"):
        env.pop(name, None)
    argv = [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *TESTS, *pytest_args]
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=copy,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so a timeout ends every child
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Result("timeout", time.monotonic() - started, f"over {timeout:.0f}s")
    seconds = time.monotonic() - started
    if proc.returncode == 0:
        return Result("SURVIVED", seconds, "every test passed")
    if proc.returncode in (1, 2):  # tests failed, or collection failed on the mutant
        return Result("caught", seconds, first_failure(output))
    return Result("ERROR", seconds, f"pytest exited {proc.returncode}: {first_failure(output)}")


def mutate(copy: Path, mutant: Mutant) -> str | None:
    """Apply ``mutant`` to the copy; the reason it cannot be, or None."""
    path = copy / mutant.file
    if not path.is_file():
        return f"{mutant.file} does not exist"
    text = path.read_text()
    found = text.count(mutant.original)
    if found != 1:
        return f"its original text is in {mutant.file} {found} times, not once"
    path.write_text(text.replace(mutant.original, mutant.replacement))
    return None


def run_mutant(
    snapshot: Path, mutant: Mutant, python: str, timeout: float, pytest_args: Sequence[str]
) -> Result:
    with tempfile.TemporaryDirectory(prefix="lifecycle-mutant-") as tmp:
        copy = copy_tree(snapshot, Path(tmp))
        problem = mutate(copy, mutant)
        if problem is not None:
            return Result("ERROR", 0.0, problem)
        return run_tests(copy, python, timeout, pytest_args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="pattern", help="only mutants whose file or description matches")
    parser.add_argument(
        "--timeout",
        type=float,
        help="seconds per mutant (default: three times the unmutated run, times --jobs)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--python", default=venv_python(), help="the interpreter to test with")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("pytest_args", nargs="*", help="more arguments for pytest (after --)")
    args = parser.parse_args(argv)

    mutants = [
        m
        for m in MUTANTS
        if not args.pattern or re.search(args.pattern, f"{m.file} {m.description}", re.I)
    ]
    if args.list:
        width = len(str(len(mutants)))
        for i, m in enumerate(mutants, 1):
            print(f"{i:>{width}} {m.file}: {m.description}")
        return 0

    # one snapshot of the working tree for the whole run: edits made meanwhile do not leak in
    with tempfile.TemporaryDirectory(prefix="lifecycle-mutants-") as tmp:
        snapshot = copy_tree(REPO, Path(tmp))
        return run_all(snapshot, mutants, args)


def run_all(snapshot: Path, mutants: list[Mutant], args: argparse.Namespace) -> int:
    """The unmutated tests of ``snapshot``, then each mutant on a copy of it; the exit status."""
    jobs = max(1, args.jobs)
    width = len(str(len(mutants)))
    base = run_tests(snapshot, args.python, args.timeout or 1800.0, args.pytest_args)
    if base.verdict != "SURVIVED":
        print(f"baseline: the unmutated tests do not pass ({base.verdict}: {base.detail})")
        return 2
    # a mutant that makes the tests run far longer than they do unmutated has made one wait
    timeout = args.timeout or max(120.0, 3 * base.seconds * jobs)
    print(
        f"baseline: the unmutated tests pass ({base.seconds:.1f}s); "
        f"{len(mutants)} mutants, {jobs} at a time, {timeout:.0f}s each at most",
        flush=True,
    )

    counts = dict.fromkeys(("caught", "SURVIVED", "timeout", "ERROR"), 0)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(run_mutant, snapshot, m, args.python, timeout, args.pytest_args)
            for m in mutants
        ]
        for i, (mutant, future) in enumerate(zip(mutants, futures, strict=True), 1):
            result = future.result()
            counts[result.verdict] += 1
            print(
                f"{i:>{width}} {result.verdict:<8} {result.seconds:6.1f}s  "
                f"{mutant.file}: {mutant.description}  [{result.detail}]",
                flush=True,
            )
    summary = (
        f"mutants: {counts['caught']} caught, {counts['SURVIVED']} survived, "
        f"{counts['timeout']} timed out"
    )
    if counts["ERROR"]:
        summary += f", {counts['ERROR']} errors (a stale mutant, or pytest could not run)"
    print(summary)
    return 0 if counts["caught"] == len(mutants) else 1


if __name__ == "__main__":
    sys.exit(main())
