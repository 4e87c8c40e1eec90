"""Text renderers behind :mod:`lifecycle.diagrams`: one table in, Mermaid, DOT or Markdown out.

Private: import the public functions from :mod:`lifecycle.diagrams`. Everything here
is a pure function of a :class:`~lifecycle.domain.table.MachineTable`; the order of
every line follows the order of the table (statuses, then rows), never the order of
a set, so the same table always gives byte-identical text.
"""

from __future__ import annotations

from enum import StrEnum

from lifecycle.domain.statuses import Operation
from lifecycle.domain.table import RECONCILER, MachineTable, Transition

#: the DOT node ids of the two pseudo-statuses: where a record begins and where it is deleted
INITIAL_NODE = "_initial"
DELETED_NODE = "_deleted"
#: the event shown for ``deletable_from`` (not a row: the record goes away)
DELETE_EVENT = "delete"
DELETE_OP = Operation.DELETE
HEADER = "generated from lifecycle/domain/table.py by lifecycle.diagrams; do not edit"

_OP_COLOR = "#1f4e9c"
_RECONCILER_COLOR = "#6b6b6b"
_DELETE_COLOR = "#9c1f1f"
_HIGHLIGHT_FILL = "#ffd54f"
_HIGHLIGHT_STROKE = "#e65100"
_FONT = "Helvetica,Arial,sans-serif"


def short_firer(firer: str) -> str:
    """``StopInferenceExperiment`` -> ``Stop``; ``reconciler`` stays as it is."""
    return firer if firer == RECONCILER else Operation(firer).short


def event_text(t: Transition) -> str:
    """``provisioned [start_time_in_future]``: the event and the guards its row needs."""
    return f"{t.event} [{', '.join(t.guards)}]" if t.guards else t.event


def by_text(fired_by: tuple[str, ...]) -> str:
    """``by Start, reconciler``: who fires the event, operations by their short names."""
    return "by " + ", ".join(short_firer(f) for f in fired_by)


def operations(table: MachineTable) -> tuple[str, ...]:
    """Every API operation that fires an event of ``table`` (plus Delete if it applies)."""
    ops = [f for t in table.transitions for f in t.fired_by if f != RECONCILER]
    if table.deletable_from:
        ops.append(DELETE_OP)
    return tuple(dict.fromkeys(ops))


def in_order(table: MachineTable, statuses: frozenset[StrEnum]) -> tuple[StrEnum, ...]:
    """``statuses`` in the table's order (a frozenset's own order changes between runs)."""
    return tuple(s for s in table.statuses if s in statuses)


def dot_edge_lines(t: Transition) -> tuple[str, ...]:
    """The lines of one DOT edge label; reconciler-only edges need no "by" line (dashed)."""
    lines = [t.event, *(f"[{g}]" for g in t.guards)]
    if t.fired_by != (RECONCILER,):
        lines.append(by_text(t.fired_by))
    return tuple(lines)


DELETE_EDGE_LINES = (DELETE_EVENT, by_text((DELETE_OP,)))


#: one DOT edge: tail, head, label lines, and its kind ("operation", "reconciler" or "delete")
Edge = tuple[str, str, tuple[str, ...], str]


def dot_edges(table: MachineTable) -> tuple[Edge, ...]:
    """Every edge of the DOT graph, in table order, then the delete edges."""
    edges = [
        (
            INITIAL_NODE if t.source is None else str(t.source),
            str(t.dest),
            dot_edge_lines(t),
            "reconciler" if t.fired_by == (RECONCILER,) else "operation",
        )
        for t in table.transitions
    ]
    deletable = in_order(table, table.deletable_from)
    edges += [(str(s), DELETED_NODE, DELETE_EDGE_LINES, "delete") for s in deletable]
    return tuple(edges)


# --- Mermaid -------------------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    """Escape the characters that end a Mermaid label or statement."""
    return text.replace("#", "#35;").replace(":", "#58;").replace(";", "#59;")


def mermaid(table: MachineTable, highlight: StrEnum | None) -> str:
    lines = [
        "stateDiagram-v2",
        f"    %% {table.name} machine, {HEADER}",
        "    %% [*] at the start: the record is created; [*] at the end: the record is deleted",
        "    direction TB",
        "    classDef terminal stroke-width:3px,font-weight:bold",
        f"    classDef highlight fill:{_HIGHLIGHT_FILL},stroke:{_HIGHLIGHT_STROKE},"
        "stroke-width:4px,font-weight:bold",
    ]
    lines += [f"    {status}" for status in table.statuses]
    lines += [f"    {status} : terminal" for status in in_order(table, table.terminal)]
    for t in table.transitions:
        src = "[*]" if t.source is None else str(t.source)
        label = _mermaid_text(f"{event_text(t)} ({by_text(t.fired_by)})")
        lines.append(f"    {src} --> {t.dest} : {label}")
    for status in in_order(table, table.deletable_from):
        label = _mermaid_text(f"{DELETE_EVENT} ({by_text((DELETE_OP,))})")
        lines.append(f"    {status} --> [*] : {label}")
    terminal = in_order(table, table.terminal)
    if terminal:
        lines.append(f"    class {', '.join(terminal)} terminal")
    if highlight is not None:
        lines.append(f"    class {highlight} highlight")
    return "\n".join(lines) + "\n"


# --- DOT -----------------------------------------------------------------------------------------


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(lines: tuple[str, ...]) -> str:
    """A centred multi-line DOT label, padded by two spaces each side so no edge touches the text."""
    return _q("\n".join(f"  {line}  " for line in lines)).replace("\n", "\\n")


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _legend(table: MachineTable) -> str:
    """A boxed key below the graph; short lines, padded, as SVG viewers' fonts run wider."""
    rows = [
        ("<B>Legend</B>", "black"),
        ("solid blue: an API operation fires it", _OP_COLOR),
        ("dashed grey: the reconciler fires it", _RECONCILER_COLOR),
    ]
    if any(table.guards()):
        rows.append(("[guard]: must pass to take the edge", "black"))
    if table.terminal:
        rows.append(("double border: terminal status", "black"))
    rows.append(("dot: record created", "black"))
    if table.deletable_from:
        rows.append(("ringed dot: record deleted", _DELETE_COLOR))
    rows += [(_html(f"{short_firer(op)} = {op}"), _OP_COLOR) for op in operations(table)]
    cells = "".join(
        f'<TR><TD ALIGN="LEFT"><FONT COLOR="{color}">{text}   </FONT></TD></TR>'
        for text, color in rows
    )
    return (
        f'    "_legend" [shape=plaintext, fontsize=10, label=<<TABLE BORDER="1" COLOR="#bbbbbb" '
        f'CELLBORDER="0" CELLSPACING="0" CELLPADDING="3">{cells}</TABLE>>];\n'
        '    { rank=sink; "_legend"; }'
    )


def _node(table: MachineTable, status: StrEnum, highlight: StrEnum | None) -> str:
    attrs: list[str] = []
    if status in table.terminal:
        attrs.append("peripheries=2")
    if status == highlight:
        attrs += [
            'style="rounded,filled,bold"',
            f"fillcolor={_q(_HIGHLIGHT_FILL)}",
            f"color={_q(_HIGHLIGHT_STROKE)}",
            "penwidth=2.5",
        ]
    return f"    {_q(str(status))}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";"


_EDGE_STYLES = {
    "operation": (_OP_COLOR, "solid"),
    "reconciler": (_RECONCILER_COLOR, "dashed"),
    "delete": (_DELETE_COLOR, "solid"),
}


def _edge(tail: str, head: str, lines: tuple[str, ...], kind: str) -> str:
    color, style = _EDGE_STYLES[kind]
    # a self-loop goes over the top: on the right (dot's default) it meets the edges coming in
    ports = "tailport=n, headport=n, " if tail == head else ""
    return (
        f"    {_q(tail)} -> {_q(head)} [{ports}label={_label(lines)}, style={style}, "
        f"color={_q(color)}, fontcolor={_q(color)}];"
    )


def dot(table: MachineTable, highlight: StrEnum | None) -> str:
    out = [
        f"// {table.name} machine, {HEADER}",
        f"digraph {_q(table.name)} {{",
        f"    graph [rankdir=TB, nodesep=0.4, ranksep=0.45, fontname={_q(_FONT)}, fontsize=14,"
        f" labelloc=t, label={_q(table.name + ' lifecycle')}];",
        f"    node [shape=box, style=rounded, fontname={_q(_FONT)}, fontsize=12,"
        ' margin="0.15,0.06"];',
        f"    edge [fontname={_q(_FONT)}, fontsize=9, arrowsize=0.7];",
        f'    {_q(INITIAL_NODE)} [shape=point, width=0.15, label=""];',
    ]
    if table.deletable_from:
        out.append(
            f'    {_q(DELETED_NODE)} [shape=doublecircle, style=filled, label="", width=0.12,'
            f" color={_q(_DELETE_COLOR)}, fillcolor={_q(_DELETE_COLOR)}];"
        )
    out += [_node(table, s, highlight) for s in table.statuses]
    out += [_edge(*edge) for edge in dot_edges(table)]
    out += [_legend(table), "}"]
    return "\n".join(out) + "\n"


# --- Markdown matrix -----------------------------------------------------------------------------


def _cell(table: MachineTable, event: str, source: StrEnum | None) -> str:
    rows = table.rows(event, source)
    if rows:
        return "<br>".join(
            f"{t.dest} [{', '.join(t.guards)}]" if t.guards else str(t.dest) for t in rows
        )
    makes_records = bool(table.rows(event, None)) and not table.sources(event)
    return "—" if source is None or makes_records else "ConflictException"


def _row_name(table: MachineTable, status: StrEnum) -> str:
    marks = [
        mark
        for mark, on in (
            ("initial", status == table.initial),
            ("terminal", status in table.terminal),
        )
        if on
    ]
    return f"**{status}**" + (f" ({', '.join(marks)})" if marks else "")


def matrix(table: MachineTable) -> str:
    events = table.events
    has_new = any(t.source is None for t in table.transitions)
    delete = bool(table.deletable_from)
    head = ["status \\ event", *(f"`{e}`" for e in events), *([f"`{DELETE_EVENT}`"] * delete)]
    body: list[list[str]] = []
    if has_new:
        body.append(["*(no record)*", *(_cell(table, e, None) for e in events), *(["—"] * delete)])
    for status in table.statuses:
        cells = [_cell(table, e, status) for e in events]
        if delete:
            cells.append(
                "*(record deleted)*" if status in table.deletable_from else "ConflictException"
            )
        body.append([_row_name(table, status), *cells])
    lines = [
        f"<!-- {table.name} machine, {HEADER} -->",
        f"### {table.name} transition matrix",
        "",
        "Each cell is the status an event takes the row's status to. Several targets are tried in"
        " order, each under its guards in brackets; when no row applies, or every guard refuses,"
        " the operation fails with `ConflictException` and nothing changes. `—`: does not apply"
        " (the create event makes a new record; every other event needs one).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
        *("| " + " | ".join(r) + " |" for r in body),
        "",
        "| event | fired by | guards |",
        "|---|---|---|",
    ]
    for e in events:
        guards = ", ".join(
            dict.fromkeys(f"`{g}`" for t in table.transitions if t.event == e for g in t.guards)
        )
        lines.append(f"| `{e}` | {', '.join(table.fired_by(e))} | {guards or '—'} |")
    if delete:
        lines.append(f"| `{DELETE_EVENT}` | {DELETE_OP} | — |")
    return "\n".join(lines) + "\n"
