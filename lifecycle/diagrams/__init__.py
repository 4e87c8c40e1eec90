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
from collections.abc import Callable, Collection, Mapping
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
    "file_names",
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

#: each format's file, as a suffix of the machine's name, in the order the files are checked
_SUFFIXES = {"mermaid": ".mmd", "dot": ".dot", "matrix": "-matrix.md", "svg": ".svg"}
#: what renders each text file (the SVG goes through Graphviz)
_TEXT_FILES: dict[str, Callable[[MachineTable], str]] = {
    ".mmd": to_mermaid,
    ".dot": to_dot,
    "-matrix.md": to_matrix,
}
#: the files of all the machines together
_SHARED_FILES = ("README.md", "rules.md")


def file_names(
    tables: Mapping[str, MachineTable] = TABLES,
    *,
    machine: str | None = None,
    fmt: str | None = None,
) -> list[str]:
    """The diagram files of ``tables``: each machine's file of each format, then
    ``README.md`` and ``rules.md``. ``machine`` or ``fmt`` narrows the list to that
    machine's or that format's files (the two shared files belong to neither)."""
    if machine is not None and machine not in tables:
        raise ValidationError(f"no machine {machine!r}; one of: {', '.join(tables)}")
    if fmt is not None and fmt not in _SUFFIXES:
        raise ValidationError(f"no format {fmt!r}; one of: {', '.join(_SUFFIXES)}")
    names = [
        name + suffix
        for name in tables
        if machine in (None, name)
        for format_name, suffix in _SUFFIXES.items()
        if fmt in (None, format_name)
    ]
    if machine is None and fmt is None:
        names += _SHARED_FILES
    return names


def _chosen(tables: Mapping[str, MachineTable], files: Collection[str] | None) -> list[str]:
    """``files`` (all of them when None) in the order of :func:`file_names`; a
    ValidationError naming any that is not a diagram file."""
    every = file_names(tables)
    if files is None:
        return every
    unknown = sorted(set(files) - set(every))
    if unknown:
        raise ValidationError(
            f"no diagram file {unknown[0]!r}; one of: {', '.join(every)}", field="files"
        )
    return [name for name in every if name in files]


def _machine_file(tables: Mapping[str, MachineTable], file_name: str) -> tuple[MachineTable, str]:
    """The machine and the suffix of one machine's file."""
    for name, table in tables.items():
        suffix = file_name.removeprefix(name)
        if suffix != file_name and suffix in _SUFFIXES.values():
            return table, suffix
    raise AssertionError(file_name)  # pragma: no cover - _chosen lets only known names by


def _text(tables: Mapping[str, MachineTable], file_name: str) -> str:
    """What a text file (not an SVG) of ``tables`` holds."""
    if file_name == "README.md":
        return readme(tables)
    if file_name == "rules.md":
        return rules_markdown()
    table, suffix = _machine_file(tables, file_name)
    return _TEXT_FILES[suffix](table)


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


def write_all(
    directory: str | Path,
    tables: Mapping[str, MachineTable] = TABLES,
    *,
    files: Collection[str] | None = None,
) -> list[Path]:
    """Write the diagram files of ``tables`` into ``directory`` (only ``files``, names as
    :func:`file_names` gives them, when given); return their paths. Only the SVGs need
    Graphviz's ``dot``."""
    chosen = _chosen(tables, files)
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    contents: dict[str, str] = {}
    for file_name in chosen:
        if file_name.endswith(".svg"):
            contents[file_name] = to_svg(_machine_file(tables, file_name)[0])
        else:
            contents[file_name] = _text(tables, file_name)
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


def check(
    directory: str | Path,
    tables: Mapping[str, MachineTable] = TABLES,
    *,
    files: Collection[str] | None = None,
) -> list[str]:
    """The names of the files in ``directory`` that are missing or differ from ``tables``
    (of ``files`` only, when given).

    Text files are compared byte for byte, SVGs by what they contain. Needs no Graphviz.
    """
    root = Path(directory)
    bad: list[str] = []
    for file_name in _chosen(tables, files):
        path = root / file_name
        if file_name.endswith(".svg"):
            matches = _svg_matches(path, _machine_file(tables, file_name)[0])
        else:
            want = _text(tables, file_name).encode("utf-8")
            matches = path.is_file() and path.read_bytes() == want
        if not matches:
            bad.append(file_name)
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
    machine: str | None,
    fmt: str | None,
    output: str | None,
    highlight: str | None,
    check_dir: str | None,
) -> int:
    """``lifecycle diagram``: 0 done; 1 files differ or Graphviz failed; 2 bad arguments.

    With ``check_dir``, prints each file there that differs from the tables: every
    diagram file, or only ``machine``'s or ``fmt``'s when given (``output`` and
    ``highlight`` are refused with it). Otherwise renders one machine (default
    ``experiment``) in one format (default ``mermaid``) to ``output``, or to stdout when
    ``output`` is None. Errors are one line on stderr, no traceback.
    """
    try:
        if check_dir is not None:
            return _check(check_dir, machine, fmt, output, highlight)
        text = _render(machine or "experiment", fmt or "mermaid", highlight)
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


def _check(
    check_dir: str, machine: str | None, fmt: str | None, output: str | None, highlight: str | None
) -> int:
    """``--check DIR``: print each file that differs, and the command that rewrites them."""
    for flag, value in (("--output", output), ("--highlight", highlight)):
        if value is not None:
            raise ValidationError(
                f"--check compares the files in {check_dir} with the tables and takes no {flag}"
            )
    chosen = file_names(machine=machine, fmt=fmt)
    root = Path(check_dir)
    if not root.is_dir():
        found = "is not a directory" if root.exists() else "does not exist"
        raise ValidationError(f"--check {check_dir}: {check_dir} {found}")
    bad = check(root, files=chosen)
    for file_name in bad:
        print(root / file_name)
    if bad:
        files = "" if bad == file_names() else f", files={bad!r}"
        command = f"from lifecycle.diagrams import write_all; write_all({check_dir!r}{files})"
        dot = (
            f" (an SVG needs Graphviz's dot: {GRAPHVIZ_HINT})"
            if any(name.endswith(".svg") for name in bad)
            else ""
        )
        print(
            f"{len(bad)} diagram file(s) differ from the tables; regenerate them with "
            f'python -c "{command}"{dot}',
            file=sys.stderr,
        )
    return 1 if bad else 0
