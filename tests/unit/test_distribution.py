"""The name the project is installed under, and every install hint that names it.

The import package is ``lifecycle``; the distribution on PyPI is another name
(a project called ``lifecycle`` already exists there, unrelated), so every
``pip install`` the code prints or the docs show must name ours, or install
the checkout (``pip install -e '.[extra]'``).
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

from lifecycle.errors import DISTRIBUTION, install_hint

REPO = Path(__file__).resolve().parents[2]

#: the name an install command installs (``.`` for a checkout's ``-e '.[extra]'``)
_PIP_INSTALL = re.compile(r"pip\s+install\s+(?:-e\s+)?['\"]?([A-Za-z0-9_.\-]+)")


def _texts() -> list[Path]:
    """The code, the tests and the docs a user reads an install command in."""
    code = sorted((REPO / "lifecycle").rglob("*.py")) + sorted((REPO / "tests").rglob("*.py"))
    docs = sorted((REPO / "docs").glob("*.md"))
    return [*code, *docs, REPO / "README.md", REPO / "CHANGELOG.md", REPO / ".ci" / "run"]


def test_the_distribution_is_the_one_pyproject_names_and_pip_installed() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION
    assert importlib.metadata.metadata(DISTRIBUTION)["Name"] == DISTRIBUTION
    top_level = importlib.metadata.distribution(DISTRIBUTION).read_text("top_level.txt")
    assert top_level is not None and "lifecycle" in top_level.split()
    # the dev extra installs the other extras of this same distribution
    assert any(r.startswith(f"{DISTRIBUTION}[") for r in project["optional-dependencies"]["dev"])


def test_every_pip_install_in_the_code_and_the_docs_names_this_distribution() -> None:
    found: dict[str, set[str]] = {}
    for path in _texts():
        for name in _PIP_INSTALL.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, set()).add(str(path.relative_to(REPO)))
    assert set(found) <= {DISTRIBUTION, "."}, found
    assert DISTRIBUTION in found  # the scan reads the hints at all


def test_the_install_hint_is_an_extra_of_this_distribution() -> None:
    assert install_hint("postgres") == f"pip install '{DISTRIBUTION}[postgres]'"
    extras = importlib.metadata.metadata(DISTRIBUTION).get_all("Provides-Extra") or []
    assert {"server", "postgres", "testing"} <= set(extras)


def test_serving_without_uvicorn_names_the_server_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lifecycle.http.serve import serve
    from lifecycle.service.service import ExperimentService
    from lifecycle.stores.memory import MemoryStore

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if it were not installed
    assert serve(ExperimentService(MemoryStore()), None, port=0) == 1
    assert install_hint("server") in capsys.readouterr().err
