"""The ``pytest11`` entry point ``lifecycle``: registers ``lifecycle.testing.pytest_plugin``.

pytest imports the modules of its entry points before any plugin's
``pytest_load_initial_conftests``, which is where pytest-cov starts coverage;
a plugin inside the ``lifecycle`` package would import ``lifecycle`` and
``lifecycle.testing`` then, and the coverage report would show their
module-level lines as never run. This module is outside the package and
imports nothing of it: the plugin itself is imported and registered when
pytest configures, after coverage has started. ``pytest -p
lifecycle.testing.pytest_plugin`` loads the plugin directly, as before.
"""

from __future__ import annotations

import importlib

import pytest

__all__ = ["pytest_configure"]

PLUGIN = "lifecycle.testing.pytest_plugin"


def pytest_configure(config: pytest.Config) -> None:
    plugin = importlib.import_module(PLUGIN)
    if not config.pluginmanager.is_registered(plugin):  # not also loaded with -p
        config.pluginmanager.register(plugin, PLUGIN)
