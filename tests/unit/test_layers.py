"""The domain is pure: it imports the standard library, transitions, pydantic and our errors only.

`lint-imports` (pyproject.toml) checks the layers between our own packages and
forbids the domain the project's other dependencies; this test is the allow-list
that also catches a dependency added later.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import lifecycle

DOMAIN = Path(lifecycle.__file__).parent / "domain"
ALLOWED_PACKAGES = {"transitions", "pydantic", "pydantic_core"}
ALLOWED_OURS = ("lifecycle.domain", "lifecycle.errors")


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


def test_the_domain_imports_only_the_standard_library_transitions_pydantic_and_errors() -> None:
    modules = sorted(DOMAIN.rglob("*.py"))
    assert len(modules) > 5
    outside = {
        f"{path.relative_to(DOMAIN)}: {name}"
        for path in modules
        for name in _imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names
        and name.split(".")[0] not in ALLOWED_PACKAGES
        and not name.startswith(ALLOWED_OURS)
    }
    assert outside == set()
