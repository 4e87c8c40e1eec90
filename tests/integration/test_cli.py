"""`lifecycle demo` and `lifecycle diagram` through the real entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lifecycle.cli import main


def test_demo_prints_each_status_from_creating_to_completed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    order = ["-> Creating", "-> Starting", "-> Running", "-> Stopping", "-> Completed"]
    positions = [out.index(s) for s in order]
    assert positions == sorted(positions)
    assert "variant shadow: InService" in out
    assert "variant prod: Deleted" in out


def test_diagram_writes_mermaid_for_the_variant_machine(tmp_path: Path) -> None:
    target = tmp_path / "v.mmd"
    assert (
        main(["diagram", "--machine", "variant", "--format", "mermaid", "--output", str(target)])
        == 0
    )
    assert target.read_text().startswith("stateDiagram-v2")


def test_diagram_check_passes_on_the_committed_diagrams() -> None:
    assert main(["diagram", "--check", str(Path(__file__).parents[2] / "diagrams")]) == 0


def test_an_unknown_machine_is_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", "--machine", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "final status: Completed" in done.stdout
