"""The README's library example runs as a user would run it: in a fresh interpreter, twice."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def library_example() -> str:
    section = README.split("## The library", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert found is not None, "the README's library section has no Python example"
    return found.group(1)


def test_the_library_example_keeps_off_the_servers_default_file() -> None:
    assert "lifecycle.db" not in library_example()  # `lifecycle serve`'s default store


def test_the_library_example_runs_again_and_again_and_prints_the_last_status(
    tmp_path: Path,
) -> None:
    where, temporary = tmp_path / "cwd", tmp_path / "tmp"
    where.mkdir()
    temporary.mkdir()
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "TMPDIR": str(temporary)}
    for _ in range(2):  # the second run finds nothing of the first in its way
        done = subprocess.run(
            [sys.executable, "-c", library_example()],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        assert (done.stdout, done.stderr) == ("Completed\n", "")
    assert list(where.iterdir()) == []  # nothing left where it ran
    assert len(list(temporary.glob("*/experiments.db"))) == 2
