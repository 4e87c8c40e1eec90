"""State diagrams and the transition matrix, generated from the transition tables.

Mermaid ``stateDiagram-v2`` and Graphviz DOT text, a Markdown transition matrix, and
SVG through Graphviz's ``dot`` program, all from the same
:data:`~lifecycle.domain.table.TABLES` the machines run on, so a rule change shows in
the diagrams (and ``check`` fails until they are regenerated). ``rules.md``, the
catalogue of the rules a request can break, is written and checked with them.

Why render from the tables directly, not through transitions' ``GraphMachine``:
``GraphMachine`` needs pygraphviz or the ``graphviz`` Python package (one more
dependency, the first one compiled), builds a live machine to draw it, and its output
depends on those packages' versions and on set order, so the same tables would not
always give byte-identical text. It also knows nothing of who fires an event (an API
operation or the reconciler) or of ``deletable_from``. Reading the table rows gives
deterministic text in table order, with every row's guards and firer on its edge.

In every format: each edge is one table row, labelled with its event and guards
(``provisioned [start_time_in_future]``) and who fires it (``by Start, reconciler``;
in DOT, reconciler-only edges are dashed and grey, operation edges solid and blue,
with a legend); the created record enters at the initial status from a start marker;
terminal statuses are marked (double border in DOT, ``terminal`` in Mermaid); the
statuses of ``deletable_from`` have a ``delete`` edge to an end marker.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path

from lifecycle.diagrams import _render as _r
from lifecycle.domain.catalog import rules_markdown
from lifecycle.domain.table import TABLES, MachineTable
from lifecycle.errors import GRAPHVIZ_HINT, DiagramError, DiagramToolMissing, ValidationError

__all__ = [
    "FORMATS",
    "DiagramError",
    "DiagramToolMissing",
    "check",
    "readme",
    "run",
    "to_dot",
    "to_matrix",
    "to_mermaid",
    "to_svg",
    "write_all",
]


def _status(table: MachineTable, name: str | StrEnum | None) -> StrEnum | None:
    """The status of ``table`` called ``name`` (its value or member name, any case)."""
    if name is None:
        return None
    for status in table.statuses:
        if str(name).casefold() in (status.value.casefold(), status.name.casefold()):
            return status
    known = ", ".join(table.statuses)
    raise ValidationError(
        f"no status {name!r} in the {table.name} machine; one of: {known}", field="highlight"
    )


def to_mermaid(table: MachineTable, highlight: str | StrEnum | None = None) -> str:
    """Mermaid ``stateDiagram-v2`` text; ``highlight`` fills one status."""
    return _r.mermaid(table, _status(table, highlight))


def to_dot(table: MachineTable, highlight: str | StrEnum | None = None) -> str:
    """Graphviz DOT text; ``highlight`` fills one status."""
    return _r.dot(table, _status(table, highlight))


def to_matrix(table: MachineTable) -> str:
    """A Markdown matrix: a row per status, a column per event, each cell the target."""
    return _r.matrix(table)


def to_svg(table: MachineTable, highlight: str | StrEnum | None = None) -> str:
    """SVG from :func:`to_dot` through ``dot -Tsvg``; raises :class:`DiagramToolMissing`."""
    source = to_dot(table, highlight)
    exe = shutil.which("dot")
    if exe is None:
        raise DiagramToolMissing
    try:
        done = subprocess.run(
            [exe, "-Tsvg"],
            input=source,
            capture_output=True,
            text=True,
            encoding="utf-8",
            check=False,
        )
    except OSError as exc:
        raise DiagramError(f"could not run Graphviz's `dot` ({exc}): {GRAPHVIZ_HINT}") from exc
    if done.returncode != 0:
        raise DiagramError(f"`dot -Tsvg` failed: {done.stderr.strip()}")
    return done.stdout


# --- the committed files -------------------------------------------------------------------------

#: file name (after the machine's name) -> what renders it
_TEXT_FILES: dict[str, Callable[[MachineTable], str]] = {
    ".mmd": to_mermaid,
    ".dot": to_dot,
    "-matrix.md": to_matrix,
}


def readme(tables: Mapping[str, MachineTable] = TABLES) -> str:
    """``diagrams/README.md``: each machine's Mermaid source, SVG and matrix."""
    out = [
        f"<!-- {_r.HEADER}; regenerate with:",
        "     python -c \"from lifecycle.diagrams import write_all; write_all('diagrams')\" -->",
        "# Lifecycle diagrams",
        "",
        "Generated from the transition tables (`lifecycle/domain/table.py`), the same data the",
        "engine runs on; a test fails when these files drift from the tables.",
        "",
        "Each edge is one table row: `event [guards]` and who fires it (`by Start` is the",
        "StartInferenceExperiment operation; `by reconciler` is the background reconciler).",
        "In the SVGs, operation edges are solid and blue, reconciler edges dashed and grey.",
        "The start marker is where a new record enters; the end marker is `delete`",
        "(DeleteInferenceExperiment), which removes the record. Terminal statuses have a",
        "double border (SVG) or say `terminal` (Mermaid). [rules.md](rules.md) lists every",
        "rule a request can break, by the id its error carries.",
    ]
    for name, table in tables.items():
        out += [
            "",
            f"## {name}",
            "",
            "```mermaid",
            to_mermaid(table).rstrip("\n"),
            "```",
            "",
            f"![{name} lifecycle]({name}.svg)",
            "",
            f"Sources: [{name}.mmd]({name}.mmd), [{name}.dot]({name}.dot).",
            "",
            to_matrix(table).rstrip("\n"),
        ]
    return "\n".join(out) + "\n"


def write_all(directory: str | Path, tables: Mapping[str, MachineTable] = TABLES) -> list[Path]:
    """Write every diagram file of ``tables`` into ``directory``; return their paths."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    contents: dict[str, str] = {}
    for name, table in tables.items():
        for suffix, render in _TEXT_FILES.items():
            contents[name + suffix] = render(table)
        contents[name + ".svg"] = to_svg(table)
    contents["README.md"] = readme(tables)
    contents["rules.md"] = rules_markdown()
    paths = []
    for file_name, text in contents.items():
        path = root / file_name
        path.write_text(text, encoding="utf-8", newline="\n")
        paths.append(path)
    return paths


def _edge_key(title: str, texts: list[str]) -> tuple[str, str, tuple[str, ...]]:
    tail, _, head = title.partition("->")
    lines = tuple(" ".join(t.split()) for t in texts)
    return tail.split(":")[0], head.split(":")[0], lines


def _svg_matches(path: Path, table: MachineTable) -> bool:
    """The SVG is valid XML with exactly the table's statuses and edges (labels included).

    Not byte for byte: Graphviz versions place things differently.
    """
    try:
        root = ET.parse(path).getroot()  # our own committed file
    except (ET.ParseError, OSError):
        return False
    nodes: set[str] = set()
    edges: Counter[tuple[str, str, tuple[str, ...]]] = Counter()
    for group in root.iter("{http://www.w3.org/2000/svg}g"):
        title = group.findtext("{http://www.w3.org/2000/svg}title") or ""
        kind = group.get("class")
        if kind == "node" and not title.startswith("_"):
            nodes.add(title)
        elif kind == "edge":
            texts = [t.text or "" for t in group.iter("{http://www.w3.org/2000/svg}text")]
            edges[_edge_key(title, texts)] += 1
    want_edges = Counter(
        (tail, head, tuple(" ".join(line.split()) for line in lines))
        for tail, head, lines, _kind in _r.dot_edges(table)
    )
    return nodes == {str(s) for s in table.statuses} and edges == want_edges


def check(directory: str | Path, tables: Mapping[str, MachineTable] = TABLES) -> list[str]:
    """The names of the files in ``directory`` that are missing or differ from ``tables``.

    Text files are compared byte for byte, SVGs by what they contain. Needs no Graphviz.
    """
    root = Path(directory)

    def differs(file_name: str, want: str) -> bool:
        path = root / file_name
        return not path.is_file() or path.read_bytes() != want.encode("utf-8")

    bad: list[str] = []
    for name, table in tables.items():
        bad += [name + s for s, render in _TEXT_FILES.items() if differs(name + s, render(table))]
        if not _svg_matches(root / f"{name}.svg", table):
            bad.append(f"{name}.svg")
    if differs("README.md", readme(tables)):
        bad.append("README.md")
    if differs("rules.md", rules_markdown()):
        bad.append("rules.md")
    return bad


# --- the CLI's entry -----------------------------------------------------------------------------

FORMATS = ("mermaid", "dot", "svg", "matrix")


def _render(machine: str, fmt: str, highlight: str | None) -> str:
    table = TABLES.get(machine)
    if table is None:
        raise ValidationError(f"no machine {machine!r}; one of: {', '.join(TABLES)}")
    if fmt not in FORMATS:
        raise ValidationError(f"no format {fmt!r}; one of: {', '.join(FORMATS)}")
    if fmt == "matrix":
        if highlight is not None:
            raise ValidationError("--highlight applies to mermaid, dot and svg, not to matrix")
        return to_matrix(table)
    return {"mermaid": to_mermaid, "dot": to_dot, "svg": to_svg}[fmt](table, highlight)


def run(
    machine: str, fmt: str, output: str | None, highlight: str | None, check_dir: str | None
) -> int:
    """``lifecycle diagram``: 0 done; 1 files differ or Graphviz failed; 2 bad arguments.

    With ``check_dir``, prints each file there that differs from the tables (the other
    arguments are not used). Otherwise renders one machine in one format to ``output``,
    or to stdout when ``output`` is None. Errors are one line on stderr, no traceback.
    """
    if check_dir is not None:
        bad = check(check_dir)
        for file_name in bad:
            print(Path(check_dir) / file_name)
        if bad:
            print(
                f"{len(bad)} diagram file(s) differ from the tables; regenerate them with "
                f"python -c \"from lifecycle.diagrams import write_all; write_all('{check_dir}')\"",
                file=sys.stderr,
            )
        return 1 if bad else 0
    try:
        text = _render(machine, fmt, highlight)
    except ValidationError as exc:
        print(f"lifecycle diagram: {exc.message}", file=sys.stderr)
        return 2
    except DiagramError as exc:
        print(f"lifecycle diagram: {exc.message}", file=sys.stderr)
        return 1
    if output is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(output).write_text(text, encoding="utf-8", newline="\n")
    except OSError as exc:
        print(f"lifecycle diagram: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
