"""The lifecycle.testing package: its public names, and what importing it costs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import lifecycle.testing

from ._exports import public_members

REPO = Path(__file__).resolve().parents[2]

BLOCK = """
import sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("hypothesis", "boto3", "botocore"):
            raise ImportError(f"{name} is not installed (blocked by the test)")

sys.meta_path.insert(0, Block())
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )


def isort_order(name: str) -> tuple[int, str]:
    """Constants, then classes, then the rest (how ruff sorts ``__all__``)."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_all_is_sorted_and_every_name_resolves() -> None:
    names = lifecycle.testing.__all__
    assert names == sorted(set(names), key=isort_order)
    for name in names:
        assert getattr(lifecycle.testing, name) is not None, name
    assert set(dir(lifecycle.testing)) >= set(names)
    paths = lifecycle.testing.paths.__all__
    assert paths == sorted(set(paths), key=isort_order)
    assert all(getattr(lifecycle.testing.paths, name) is not None for name in paths)


def test_the_exported_members_are_the_public_members() -> None:
    # as httpx's test_exported_members: the expectation is what the modules hold
    held = public_members(lifecycle.testing, frozenset({"paths", "strategies"}))
    assert held == set(lifecycle.testing.__all__)
    paths = lifecycle.testing.paths
    defined = {
        name
        for name, value in vars(paths).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("lifecycle.testing")
    }
    assert set(paths.__all__) <= defined | {"WAYS"}
    assert {"Path", "shortest_paths", "simple_paths", "transition_coverage", "path_to"} <= set(
        paths.__all__
    )


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        lifecycle.testing.nothing_here  # noqa: B018
    except AttributeError as err:
        assert "nothing_here" in str(err)
    else:
        raise AssertionError("no AttributeError")


def test_importing_the_package_loads_nothing_until_used() -> None:
    result = run(
        """
        import sys
        import lifecycle.testing
        heavy = ("hypothesis", "boto3", "botocore", "lifecycle.testing._mock", "lifecycle.testing.strategies")
        print([m for m in heavy if m in sys.modules])
        """
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_everything_but_the_strategies_and_the_mock_works_without_hypothesis_and_boto3() -> None:
    result = run(
        BLOCK
        + """
import lifecycle.testing as t

world = t.experiment_in("Stopping")
assert world.status() == "Stopping"
assert t.transition_cases() and t.paths.transition_coverage(t.paths.shortest_paths()) == []
for attempt in (lambda: t.strategies, lambda: t.mock_sagemaker().__enter__()):
    try:
        attempt()
    except ImportError as err:
        assert "pip install 'inference-lifecycle[testing]'" in str(err), err
    else:
        raise SystemExit("imported without its extra")
print("ok")
"""
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_the_pytest_plugin_imports_nothing_heavy() -> None:
    result = run(
        """
        import sys
        import lifecycle.testing.pytest_plugin
        heavy = ("hypothesis", "boto3", "botocore", "lifecycle.testing._mock", "lifecycle.testing.strategies")
        print([m for m in heavy if m in sys.modules])
        """
    )
    assert result.stdout.strip() == "[]", result.stderr
