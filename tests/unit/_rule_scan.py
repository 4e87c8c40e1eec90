"""The rule ids the engine's code can raise for a request, read from its source."""

from __future__ import annotations

import ast
from pathlib import Path

import lifecycle
from lifecycle.domain.table import EXPERIMENT_TABLE, RECONCILER

PACKAGE = Path(lifecycle.__file__).parent


def literal_rule_ids(path: Path) -> tuple[set[str], list[str]]:
    """Rule ids in a module: first arguments of Refusal(...) and rule= keywords; and the
    f-strings among them, unexpanded."""
    ids: set[str] = set()
    templates: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        values = [kw.value for kw in node.keywords if kw.arg == "rule"]
        if isinstance(node.func, ast.Name) and node.func.id == "Refusal" and node.args:
            values.append(node.args[0])
        for value in values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                ids.add(value.value)
            elif isinstance(value, ast.JoinedStr):
                templates.append(ast.unparse(value))
    return ids, templates


def request_rule_ids() -> set[str]:
    """Every rule id the engine names beyond the shapes, that a request can break."""
    modules = [*sorted((PACKAGE / "domain").glob("rules*.py")), *sorted((PACKAGE / "domain" / "rules").glob("*.py")),
               PACKAGE / "domain" / "machine.py", *sorted((PACKAGE / "service").glob("*.py")),
               *sorted((PACKAGE / "wire").glob("*.py")), *sorted((PACKAGE / "stores").glob("*.py"))]
    ids: set[str] = set()
    templates: set[str] = set()
    for module in modules:
        found, unexpanded = literal_rule_ids(module)
        ids |= found
        templates.update(unexpanded)
    operation_events = {t.event for t in EXPERIMENT_TABLE.transitions if t.source is not None and set(t.fired_by) - {RECONCILER}}
    # guards of rows only the reconciler fires: no request meets them
    reconciler_only = {g for t in EXPERIMENT_TABLE.transitions if t.fired_by == (RECONCILER,) for g in t.guards}
    expected_templates = {
        "f'{event}-from-status'",  # the machine: an event sent in a status with no row for it
        "f'variant-{event}-from-status'",  # fired only by the engine's own effects, after the experiment's guards
        "f'left_{status.value.lower()}'",  # routing guards of updated
        "f'desired_{state.value.lower()}'",  # routing guards of stopped
    }
    assert templates == expected_templates, f"new rule ids built at run time: {templates - expected_templates}"
    ids |= {f"{event}-from-status" for event in operation_events}
    unreachable = reconciler_only | {
        "versioned-save",  # a concurrent save, not one request
        "shape",  # a pydantic error that yields no entry: a fallback
        "unique-name-and-live-endpoint",  # the SQL stores' bulk create, which no operation calls
    }
    return ids - unreachable
