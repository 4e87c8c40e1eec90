"""The diagrams and the matrix are generated from the tables, and a check catches drift."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from lifecycle import diagrams
from lifecycle.diagrams import (
    DiagramError,
    DiagramToolMissing,
    check,
    run,
    to_dot,
    to_matrix,
    to_mermaid,
    to_svg,
)
from lifecycle.domain.statuses import ExperimentStatus as E
from lifecycle.domain.table import EXPERIMENT_TABLE, TABLES, VARIANT_TABLE, MachineTable
from lifecycle.errors import LifecycleError, ValidationError

COMMITTED = Path(__file__).resolve().parents[2] / "diagrams"
SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
TEXT_RENDERERS = {"mermaid": to_mermaid, "dot": to_dot, "matrix": to_matrix}
EXPERIMENT_FILES = ["experiment.mmd", "experiment.dot", "experiment-matrix.md", "experiment.svg"]
ALL_FILES = [*EXPERIMENT_FILES, *(f.replace("experiment", "variant") for f in EXPERIMENT_FILES)]


def _without_row(table: MachineTable, index: int) -> MachineTable:
    rows = table.transitions[:index] + table.transitions[index + 1 :]
    return dataclasses.replace(table, transitions=rows)


# provisioned Creating -> Created [start_time_in_future]
SHORT_EXPERIMENT = _without_row(EXPERIMENT_TABLE, 1)
SHORT_TABLES = {"experiment": SHORT_EXPERIMENT, "variant": VARIANT_TABLE}


@pytest.fixture
def committed_copy(tmp_path: Path) -> Path:
    """A copy of the committed diagrams/, written from the real tables."""
    return Path(shutil.copytree(COMMITTED, tmp_path / "diagrams"))


@pytest.fixture
def no_dot_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))


def _svg_parts(svg: str) -> tuple[set[str], Counter[str]]:
    """The node titles and the edge titles (ports stripped) of a Graphviz SVG."""
    root = ET.fromstring(svg)
    nodes, edges = set(), Counter[str]()
    for g in root.iter(f"{SVG}g"):
        title = g.findtext(f"{SVG}title") or ""
        if g.get("class") == "node":
            nodes.add(title)
        elif g.get("class") == "edge":
            tail, _, head = title.partition("->")
            edges[f"{tail.split(':')[0]}->{head.split(':')[0]}"] += 1
    return nodes, edges


# --- drift ---------------------------------------------------------------------------------------


def test_committed_diagrams_match_the_tables() -> None:
    assert check(COMMITTED) == [], (
        "regenerate: python -c \"from lifecycle.diagrams import write_all; write_all('diagrams')\""
    )


@pytest.mark.parametrize("fmt", sorted(TEXT_RENDERERS))
def test_removing_a_transition_changes_the_text(fmt: str) -> None:
    render = TEXT_RENDERERS[fmt]
    assert render(SHORT_EXPERIMENT) != render(EXPERIMENT_TABLE)


def test_check_names_every_file_a_removed_transition_changes(committed_copy: Path) -> None:
    assert check(committed_copy, SHORT_TABLES) == [*EXPERIMENT_FILES, "README.md"]


def test_check_names_a_missing_file(committed_copy: Path) -> None:
    (committed_copy / "variant.dot").unlink()
    assert check(committed_copy) == ["variant.dot"]


def test_check_names_an_svg_that_is_not_xml(committed_copy: Path) -> None:
    (committed_copy / "variant.svg").write_text("<svg", encoding="utf-8")
    assert check(committed_copy) == ["variant.svg"]


def test_check_names_an_svg_that_lost_an_edge(committed_copy: Path) -> None:
    path = committed_copy / "experiment.svg"
    tree = ET.parse(path)
    parent = next(g for g in tree.getroot().iter(f"{SVG}g") if g.get("class") == "graph")
    parent.remove(next(g for g in parent if g.get("class") == "edge"))
    tree.write(path)
    assert check(committed_copy) == ["experiment.svg"]


def test_check_ignores_how_graphviz_placed_the_svg(committed_copy: Path) -> None:
    path = committed_copy / "variant.svg"
    path.write_text(path.read_text(encoding="utf-8").replace('x="', 'x="1'), encoding="utf-8")
    assert check(committed_copy) == []


@needs_dot
def test_write_all_writes_what_check_accepts(tmp_path: Path) -> None:
    paths = diagrams.write_all(tmp_path / "out")
    assert sorted(p.name for p in paths) == sorted([*ALL_FILES, "README.md", "rules.md"])
    assert check(tmp_path / "out") == []


def test_a_drifted_rule_catalogue_fails_the_check(committed_copy: Path) -> None:
    (committed_copy / "rules.md").write_text("# Rules\n", encoding="utf-8")
    assert check(committed_copy) == ["rules.md"]


def test_readme_embeds_mermaid_svgs_and_matrices() -> None:
    text = diagrams.readme()
    for table in TABLES.values():
        assert f"```mermaid\n{to_mermaid(table)}```" in text
        assert f"({table.name}.svg)" in text
        assert to_matrix(table).rstrip("\n") in text


# --- content -------------------------------------------------------------------------------------

TABLE_IDS = [t.name for t in TABLES.values()]


@pytest.mark.parametrize("fmt", sorted(TEXT_RENDERERS))
@pytest.mark.parametrize("table", TABLES.values(), ids=TABLE_IDS)
def test_every_status_and_event_appears(fmt: str, table: MachineTable) -> None:
    text = TEXT_RENDERERS[fmt](table)
    missing = [n for n in (*map(str, table.statuses), *table.events) if n not in text]
    assert missing == []


@needs_dot
@pytest.mark.parametrize("table", TABLES.values(), ids=TABLE_IDS)
def test_every_status_and_event_appears_in_the_svg(table: MachineTable) -> None:
    text = to_svg(table)
    missing = [n for n in (*map(str, table.statuses), *table.events) if n not in text]
    assert missing == []


def test_delete_appears_for_the_statuses_that_allow_it() -> None:
    text = to_mermaid(EXPERIMENT_TABLE)
    deleted_from = {line.split()[0] for line in text.splitlines() if "--> [*]" in line}
    assert deleted_from == {str(s) for s in EXPERIMENT_TABLE.deletable_from}


def test_each_guarded_edge_carries_its_guards() -> None:
    assert "Creating --> Created : provisioned [start_time_in_future] (by reconciler)" in (
        to_mermaid(EXPERIMENT_TABLE)
    )


def test_dot_dashes_reconciler_edges_and_not_operation_edges() -> None:
    lines = to_dot(EXPERIMENT_TABLE).splitlines()
    started = next(line for line in lines if '"Starting" -> "Running"' in line)
    start = next(line for line in lines if '"Created" -> "Starting"' in line)
    assert ("style=dashed" in started, "style=dashed" in start) == (True, False)


def test_dot_has_a_legend_that_names_the_operations() -> None:
    legend = next(line for line in to_dot(VARIANT_TABLE).splitlines() if '"_legend"' in line)
    assert "Stop = StopInferenceExperiment" in legend


def test_mermaid_marks_initial_and_terminal_statuses() -> None:
    lines = to_mermaid(EXPERIMENT_TABLE).splitlines()
    assert "    [*] --> Creating : create (by Create)" in lines
    assert "    class Completed, Cancelled terminal" in lines


def test_dot_gives_terminal_statuses_a_double_border() -> None:
    bordered = [line for line in to_dot(EXPERIMENT_TABLE).splitlines() if "peripheries=2" in line]
    assert [line.split()[0] for line in bordered] == ['"Completed"', '"Cancelled"']


def test_matrix_shows_several_guarded_targets_in_one_cell() -> None:
    assert "| Created [start_time_in_future]<br>Starting [start_time_reached] |" in to_matrix(
        EXPERIMENT_TABLE
    )


def test_matrix_says_conflict_where_no_row_leaves_the_status() -> None:
    row = next(line for line in to_matrix(EXPERIMENT_TABLE).splitlines() if "**Completed**" in line)
    assert row.count("ConflictException") == len(EXPERIMENT_TABLE.events) - 1


@pytest.mark.parametrize("fmt", sorted(TEXT_RENDERERS))
def test_output_is_the_same_on_every_call(fmt: str) -> None:
    render = TEXT_RENDERERS[fmt]
    assert render(EXPERIMENT_TABLE) == render(EXPERIMENT_TABLE)


def test_output_does_not_depend_on_the_hash_seed() -> None:
    """Frozensets (terminal, deletable_from) iterate in hash order; the text must not."""
    code = "from lifecycle.diagrams import readme; print(readme(), end='')"
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert outs == {diagrams.readme()}


# --- highlight -----------------------------------------------------------------------------------


def test_mermaid_highlight_marks_exactly_that_status() -> None:
    lines = to_mermaid(EXPERIMENT_TABLE, highlight="Running").splitlines()
    assert [line for line in lines if line.startswith("    class ") and "highlight" in line] == [
        "    class Running highlight"
    ]


def test_dot_highlight_fills_exactly_that_status() -> None:
    filled = [line for line in to_dot(EXPERIMENT_TABLE, E.RUNNING).splitlines() if "filled" in line]
    assert [line.split()[0] for line in filled if not line.startswith('    "_')] == ['"Running"']


def test_no_highlight_fills_no_status() -> None:
    assert "class Running highlight" not in to_mermaid(EXPERIMENT_TABLE)


def test_highlight_accepts_any_case() -> None:
    assert to_dot(EXPERIMENT_TABLE, "running") == to_dot(EXPERIMENT_TABLE, E.RUNNING)


def test_highlight_of_an_unknown_status_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="InService"):
        to_mermaid(EXPERIMENT_TABLE, highlight="InService")


# --- SVG -----------------------------------------------------------------------------------------


@needs_dot
@pytest.mark.parametrize("table", TABLES.values(), ids=TABLE_IDS)
def test_svg_has_a_node_for_every_status(table: MachineTable) -> None:
    nodes, _ = _svg_parts(to_svg(table))
    assert {str(s) for s in table.statuses} <= nodes


@needs_dot
@pytest.mark.parametrize("table", TABLES.values(), ids=TABLE_IDS)
def test_svg_has_an_edge_for_every_transition(table: MachineTable) -> None:
    _, edges = _svg_parts(to_svg(table))
    want = Counter(f"{t.source or '_initial'}->{t.dest}" for t in table.transitions)
    assert want - edges == Counter()


@needs_dot
def test_svg_highlight_fills_the_status() -> None:
    root = ET.fromstring(to_svg(EXPERIMENT_TABLE, highlight="Stopping"))
    node = next(g for g in root.iter(f"{SVG}g") if g.findtext(f"{SVG}title") == "Stopping")
    assert [p.get("fill") for p in node.iter(f"{SVG}path")] == ["#ffd54f"]


@pytest.mark.usefixtures("no_dot_on_path")
def test_svg_without_dot_raises_an_error_naming_graphviz() -> None:
    with pytest.raises(DiagramToolMissing, match=r"apt-get install graphviz"):
        to_svg(VARIANT_TABLE)


def test_svg_reports_dot_failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = tmp_path / "dot"
    failing.write_text("#!/bin/sh\necho 'syntax error in line 1' >&2\nexit 1\n", encoding="utf-8")
    failing.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda _name: str(failing))
    with pytest.raises(DiagramError, match=r"`dot -Tsvg` failed: syntax error in line 1"):
        to_svg(VARIANT_TABLE)


def test_svg_reports_a_dot_that_cannot_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_executable = tmp_path / "dot"
    not_executable.write_text("", encoding="utf-8")
    monkeypatch.setattr(shutil, "which", lambda _name: str(not_executable))
    with pytest.raises(DiagramError, match="graphviz"):
        to_svg(VARIANT_TABLE)


def test_missing_dot_is_a_lifecycle_error() -> None:
    assert issubclass(DiagramToolMissing, LifecycleError)


@pytest.mark.usefixtures("no_dot_on_path")
def test_check_needs_no_dot(committed_copy: Path) -> None:
    assert check(committed_copy) == []


# --- run (the CLI's entry) -----------------------------------------------------------------------


def test_run_prints_to_stdout_without_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("variant", "mermaid", None, None, None) == 0
    assert capsys.readouterr().out == to_mermaid(VARIANT_TABLE)


def test_run_writes_the_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.md"
    assert run("experiment", "matrix", str(out), None, None) == 0
    assert (out.read_text(encoding="utf-8"), capsys.readouterr().out) == (
        to_matrix(EXPERIMENT_TABLE),
        "",
    )


def test_run_that_cannot_write_the_output_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("variant", "dot", str(tmp_path), None, None) == 1
    assert "cannot write" in capsys.readouterr().err


def test_run_passes_the_highlight(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("experiment", "dot", None, "Created", None) == 0
    assert capsys.readouterr().out == to_dot(EXPERIMENT_TABLE, "Created")


@pytest.mark.parametrize(
    ("machine", "fmt", "highlight", "complaint"),
    [
        ("endpoint", "dot", None, "no machine 'endpoint'"),
        ("variant", "png", None, "no format 'png'"),
        ("variant", "dot", "Running", "no status 'Running'"),
        ("variant", "matrix", "Creating", "not to matrix"),
    ],
    ids=["machine", "format", "highlight", "highlight-matrix"],
)
def test_run_rejects_a_bad_argument_with_code_2_and_one_line(
    machine: str,
    fmt: str,
    highlight: str | None,
    complaint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(machine, fmt, None, highlight, None) == 2
    err = capsys.readouterr().err
    assert (complaint in err, err.count("\n")) == (True, 1)


@pytest.mark.usefixtures("no_dot_on_path")
def test_run_svg_without_dot_exits_1_naming_graphviz(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("variant", "svg", None, None, None) == 1
    assert "graphviz" in capsys.readouterr().err


def test_run_check_of_current_files_exits_0(committed_copy: Path) -> None:
    assert run(None, None, None, None, str(committed_copy)) == 0


def test_run_check_prints_each_differing_file_and_exits_1(
    committed_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (committed_copy / "variant.mmd").write_text("stateDiagram-v2\n", encoding="utf-8")
    (committed_copy / "experiment-matrix.md").unlink()
    assert run(None, None, None, None, str(committed_copy)) == 1
    assert capsys.readouterr().out.splitlines() == [
        str(committed_copy / "experiment-matrix.md"),
        str(committed_copy / "variant.mmd"),
    ]


@pytest.mark.parametrize(
    ("machine", "fmt", "reported"),
    [
        (None, "mermaid", ["variant.mmd"]),
        (None, "dot", ["experiment.dot"]),
        ("variant", None, ["variant.mmd", "variant.svg"]),
        ("experiment", "dot", ["experiment.dot"]),
        ("experiment", "mermaid", []),
    ],
)
def test_run_check_honours_machine_and_format(
    committed_copy: Path,
    capsys: pytest.CaptureFixture[str],
    machine: str | None,
    fmt: str | None,
    reported: list[str],
) -> None:
    (committed_copy / "variant.mmd").write_text("stateDiagram-v2\n", encoding="utf-8")
    (committed_copy / "experiment.dot").write_text("digraph {}\n", encoding="utf-8")
    (committed_copy / "variant.svg").unlink()
    (committed_copy / "README.md").write_text("# stale\n", encoding="utf-8")
    assert run(machine, fmt, None, None, str(committed_copy)) == (1 if reported else 0)
    printed = capsys.readouterr().out.splitlines()
    assert printed == [str(committed_copy / name) for name in reported]


@pytest.mark.parametrize(
    ("where", "says"),
    [("missing", "{d}: {d} does not exist"), ("file", "{d}: {d} is not a directory")],
)
def test_run_check_of_what_is_not_a_directory_says_so_with_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, says: str
) -> None:
    target = tmp_path / "diagrams"
    if where == "file":
        target.write_text("x", encoding="utf-8")
    assert run(None, None, None, None, str(target)) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"lifecycle diagram: --check {says.format(d=target)}\n")


@pytest.mark.parametrize(
    ("output", "highlight", "flag"), [("x.mmd", None, "--output"), (None, "Created", "--highlight")]
)
def test_run_check_refuses_output_and_highlight(
    committed_copy: Path,
    capsys: pytest.CaptureFixture[str],
    output: str | None,
    highlight: str | None,
    flag: str,
) -> None:
    assert run(None, None, output, highlight, str(committed_copy)) == 2
    assert f"takes no {flag}" in capsys.readouterr().err


def _hint(err: str) -> str:
    """The Python code of the command a failed check says to run."""
    return err.split('python -c "', 1)[1].split('"', 1)[0]


@pytest.mark.usefixtures("no_dot_on_path")
def test_the_hint_after_a_mermaid_drift_rewrites_it_without_graphviz(
    committed_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (committed_copy / "variant.mmd").write_text("stateDiagram-v2\n", encoding="utf-8")
    (committed_copy / "README.md").unlink()
    assert run(None, None, None, None, str(committed_copy)) == 1
    err = capsys.readouterr().err
    assert "graphviz" not in err.lower()
    done = subprocess.run(
        [sys.executable, "-c", _hint(err)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ["PATH"]},  # no `dot` on it
    )
    assert done.returncode == 0, done.stderr
    assert check(committed_copy) == []


def test_the_hint_after_an_svg_drift_says_it_needs_graphviz(
    committed_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (committed_copy / "variant.svg").unlink()
    assert run(None, None, None, None, str(committed_copy)) == 1
    err = capsys.readouterr().err
    assert "files=['variant.svg']" in _hint(err)
    assert "an SVG needs Graphviz's dot" in err


def test_the_hint_after_every_file_drifted_rewrites_them_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert run(None, None, None, None, str(tmp_path / "empty")) == 1
    assert _hint(capsys.readouterr().err).endswith(f"write_all({str(tmp_path / 'empty')!r})")


@pytest.mark.usefixtures("no_dot_on_path")
def test_write_all_of_some_files_writes_only_those_and_needs_no_dot_for_text(
    tmp_path: Path,
) -> None:
    paths = diagrams.write_all(tmp_path, files=["rules.md", "variant.dot"])
    assert [p.name for p in paths] == ["variant.dot", "rules.md"]
    assert check(tmp_path, files=["variant.dot", "rules.md"]) == []
    with pytest.raises(DiagramToolMissing):
        diagrams.write_all(tmp_path, files=["variant.svg"])
    with pytest.raises(ValidationError, match=r"no diagram file 'variant\.png'"):
        diagrams.write_all(tmp_path, files=["variant.png"])


def test_file_names_narrow_by_machine_and_format() -> None:
    assert diagrams.file_names(fmt="svg") == ["experiment.svg", "variant.svg"]
    assert diagrams.file_names(machine="variant") == [
        "variant.mmd",
        "variant.dot",
        "variant-matrix.md",
        "variant.svg",
    ]
    assert diagrams.file_names()[-2:] == ["README.md", "rules.md"]
    with pytest.raises(ValidationError, match="no format 'png'"):
        diagrams.file_names(fmt="png")
