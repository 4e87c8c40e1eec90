"""The public API is what __all__ says, sorted, and every name in it resolves."""

from __future__ import annotations

import lifecycle


def test_all_is_sorted_and_unique() -> None:
    assert lifecycle.__all__ == sorted(set(lifecycle.__all__))


def test_every_exported_name_exists() -> None:
    for name in lifecycle.__all__:
        assert hasattr(lifecycle, name), name


def test_the_exported_members_are_pinned() -> None:
    assert set(lifecycle.__all__) == {
        "EXPERIMENT_TABLE", "OPERATIONS", "TABLES", "VARIANT_TABLE", "Actuator", "ActuatorError",
        "ConflictError", "DesiredState", "Experiment", "ExperimentService", "ExperimentStatus",
        "HistoryEntry", "LifecycleError", "ListQuery", "MachineTable", "MemoryStore", "NotFoundError",
        "ProtocolError", "RULE_CATALOG", "Reconciler", "Refusal", "ResourceInUseError", "ResourceLimitExceededError", "Rule",
        "SimulatedActuator", "StaleVersionError", "Step", "Store", "StoreError", "Transition",
        "ValidationError", "Variant", "VariantAction", "VariantStatus", "__version__", "open_store",
    }


def test_every_error_carries_its_wire_code() -> None:
    codes = {
        lifecycle.ValidationError: "ValidationException",
        lifecycle.ConflictError: "ConflictException",
        lifecycle.NotFoundError: "ResourceNotFound",
        lifecycle.ResourceInUseError: "ResourceInUse",
        lifecycle.ResourceLimitExceededError: "ResourceLimitExceeded",
    }
    for cls, code in codes.items():
        assert issubclass(cls, lifecycle.LifecycleError)
        assert cls("m").code == code


def test_importing_the_package_loads_neither_pydantic_nor_transitions() -> None:
    import subprocess
    import sys

    code = "import sys, lifecycle; print('pydantic' in sys.modules, 'transitions' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
