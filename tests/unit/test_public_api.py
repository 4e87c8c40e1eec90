"""The public API is what __all__ says: every name resolves, and nothing else is public."""

from __future__ import annotations

import ast
from pathlib import Path

import lifecycle
import lifecycle.errors

from ._exports import public_members


def _resolve_all() -> None:
    for name in lifecycle.__all__:
        getattr(lifecycle, name)


def test_all_is_unique() -> None:
    assert len(lifecycle.__all__) == len(set(lifecycle.__all__))


def test_every_exported_name_exists() -> None:
    for name in lifecycle.__all__:
        assert hasattr(lifecycle, name), name


def test_the_exported_members_are_the_public_members() -> None:
    # as httpx's test_exported_members: the expectation is what the module holds
    assert public_members(lifecycle) | {"__version__"} == set(lifecycle.__all__)


def test_all_is_what_the_type_checkers_see() -> None:
    # __all__ and the TYPE_CHECKING imports (what mypy and IDEs read) name the same things
    tree = ast.parse(Path(lifecycle.__file__).read_text())
    guarded = next(
        n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    )
    imported = {
        alias.asname or alias.name
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported | {"__version__"} == set(lifecycle.__all__)


def test_the_whole_error_tree_is_exported() -> None:
    errors = {
        name
        for name in lifecycle.errors.__all__
        if isinstance(getattr(lifecycle.errors, name), type)
        and issubclass(getattr(lifecycle.errors, name), Exception)
    }
    assert errors <= set(lifecycle.__all__)


def test_every_error_carries_its_wire_code() -> None:
    codes = {
        lifecycle.ValidationError: "ValidationException",
        lifecycle.ConflictError: "ConflictException",
        lifecycle.ResourceInUseError: "ResourceInUse",
        lifecycle.ResourceLimitExceededError: "ResourceLimitExceeded",
    }
    for cls, code in codes.items():
        assert issubclass(cls, lifecycle.LifecycleError)
        assert cls("m").code == code
    assert lifecycle.NotFoundError("exp").code == "ResourceNotFound"


def test_importing_the_package_loads_neither_pydantic_nor_transitions() -> None:
    import subprocess
    import sys

    code = "import sys, lifecycle; print('pydantic' in sys.modules, 'transitions' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
