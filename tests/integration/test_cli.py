"""`lifecycle demo` and `lifecycle diagram` through the real entry point."""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import lifecycle
from lifecycle.cli import _parser, main
from lifecycle.errors import DISTRIBUTION


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


def test_diagram_check_of_a_missing_directory_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nonexistent"
    assert main(["diagram", "--check", str(missing)]) == 2
    assert (
        capsys.readouterr().err
        == f"lifecycle diagram: --check {missing}: {missing} does not exist\n"
    )


def test_diagram_check_honours_the_format(tmp_path: Path) -> None:
    committed = Path(__file__).parents[2] / "diagrams"
    assert main(["diagram", "--check", str(committed), "--format", "matrix"]) == 0
    (tmp_path / "experiment-matrix.md").write_text("stale\n")
    assert main(["diagram", "--check", str(tmp_path), "--format", "matrix"]) == 1


def test_an_unknown_machine_is_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", "--machine", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def python_m_lifecycle(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m lifecycle ARGS`` in a subprocess, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_python_dash_m_runs_the_cli() -> None:
    done = python_m_lifecycle("demo")
    assert done.returncode == 0, done.stderr
    assert "final status: Completed" in done.stdout


# -- what the command line says about itself ------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_version_prints_the_installed_distribution_and_its_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    installed = importlib.metadata.version(DISTRIBUTION)
    assert capsys.readouterr().out == f"{DISTRIBUTION} {installed}\n"
    assert lifecycle.__version__ == installed  # the package says what pip installed


def test_version_works_through_python_dash_m() -> None:
    done = python_m_lifecycle("--version")
    assert (done.returncode, done.stdout.split()[0]) == (0, DISTRIBUTION), done.stderr


def test_every_help_starts_with_a_description(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _subcommands()
    assert {"serve", "diagram", "demo"} <= set(commands)
    for argv in ([], *([name] for name in commands)):
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        parser = commands[argv[0]] if argv else _parser()
        assert parser.description, argv
        assert " ".join(parser.description.split()) in text, argv


def test_the_readme_synopsis_lists_every_command_and_flag() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## The command line", 1)[1]
    synopsis = section.split("```", 2)[1]
    assert "lifecycle --version" in synopsis
    for name, parser in _subcommands().items():
        assert f"lifecycle {name}" in synopsis, name
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in synopsis, f"lifecycle {name} {flag}"
