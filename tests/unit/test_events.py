"""LeanMachine fires events as a plain ``transitions.Machine`` does.

Each scenario is run on both classes, built the same way, and what each
observes (callbacks in order, the state reached, the return value, the
error raised) is compared: the specialised path may skip work, never
behaviour.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import Any, cast

import pytest
from transitions import EventData, Machine, MachineError, State

from lifecycle.domain._events import LeanMachine


class Light(Enum):
    RED = "Red"
    GREEN = "Green"
    AMBER = "Amber"


class Model:
    def __init__(self, status: Any = "a") -> None:
        self.status = status
        self.calls: list[str] = []
        self.allow = True

    def allowed(self, event_data: EventData) -> bool:  # a condition given by name
        self.calls.append("cond:by-name")
        return self.allow

    def after_by_name(self, event_data: EventData) -> None:
        self.calls.append("after:by-name")


def _record(label: str, result: Any = None) -> Any:
    def callback(event_data: EventData) -> Any:
        cast(Any, event_data.model).calls.append(f"{label}:{event_data.state.name}")
        return result

    return callback


def _machine(cls: type[Machine], **kwargs: Any) -> Machine:
    states = [
        {"name": "a", "on_exit": [_record("exit-a")]},
        {"name": "b", "on_enter": [_record("enter-b")], "on_exit": [_record("exit-b")]},
        "c",
    ]
    machine = cls(
        model=None,
        states=states,
        initial="a",
        auto_transitions=False,
        send_event=True,
        model_attribute="status",
        **kwargs,
    )
    machine.add_transition(
        "go",
        "a",
        "b",
        conditions=[_record("cond-1", True), "allowed"],
        unless=[_record("unless", False)],
        prepare=[_record("prepare")],
        before=[_record("before")],
        after=[_record("after"), "after_by_name"],
    )
    machine.add_transition(
        "go", "a", "c", after=[_record("after-second-row")]
    )  # tried when the first refuses
    machine.add_transition(
        "stay", "b", None, after=[_record("internal")]
    )  # internal: no state change
    machine.add_transition(
        "loop", "b", "=", after=[_record("loop")]
    )  # reflexive: exit and enter again
    machine.add_transition("back", "b", "a", conditions=[_record("refuse", False)])
    machine.add_transition("boom", "b", "c", after=[_boom])
    return machine


def _boom(event_data: EventData) -> None:
    raise RuntimeError("effect failed")


def _run(cls: type[Machine], steps: list[str], allow: bool = True, **kwargs: Any) -> list[Any]:
    machine = _machine(cls, **kwargs)
    model = Model()
    model.allow = allow
    seen: list[Any] = []
    for step in steps:
        try:
            seen.append(("result", step, machine.events[step].trigger(model)))
        except (MachineError, RuntimeError) as err:
            seen.append(("error", step, type(err).__name__, str(err)))
        seen.append(("status", model.status))
    seen.append(("calls", model.calls))
    return seen


SCENARIOS = {
    "first row taken, every callback in order": ["go"],
    "internal then reflexive": ["go", "stay", "loop"],
    "a refused row leaves the state": ["go", "back"],
    "no row from the status": ["stay"],
    "an effect that raises": ["go", "boom"],
}


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
@pytest.mark.parametrize("allow", [True, False], ids=["by-name passes", "by-name refuses"])
def test_the_same_as_a_plain_machine(steps: list[str], allow: bool) -> None:
    assert _run(LeanMachine, steps, allow) == _run(Machine, steps, allow)


def test_callback_order_is_the_librarys() -> None:
    calls = _run(LeanMachine, ["go"])[-1][1]
    assert calls == [
        "prepare:a",
        "cond-1:a",
        "cond:by-name",
        "unless:a",
        "before:a",
        "exit-a:a",
        "enter-b:b",
        "after:b",
        "after:by-name",
    ]


def test_second_row_when_the_first_refuses() -> None:
    seen = _run(LeanMachine, ["go"], allow=False)
    assert ("status", "c") in seen
    assert "after-second-row:c" in seen[-1][1]


def test_ignored_invalid_trigger_answers_false() -> None:
    seen = _run(LeanMachine, ["stay"], ignore_invalid_triggers=True)
    assert seen[0] == ("result", "stay", False)
    assert seen == _run(Machine, ["stay"], ignore_invalid_triggers=True)


def _run_with_arguments(cls: type[Machine]) -> list[Any]:
    """send_event=False: callbacks get the trigger's own arguments, not an EventData."""
    seen: list[Any] = []

    def cond(*args: Any, **kwargs: Any) -> bool:
        seen.append(("cond", args, kwargs))
        return bool(kwargs.get("ok"))

    def after(*args: Any, **kwargs: Any) -> None:
        seen.append(("after", args, kwargs))

    machine = cls(
        model=None,
        states=["a", "b"],
        initial="a",
        auto_transitions=False,
        send_event=False,
        model_attribute="status",
    )
    machine.add_transition("go", "a", "b", conditions=[cond], after=[after])
    model = Model()
    seen.append(machine.events["go"].trigger(model, 1, ok=False))
    seen.append(machine.events["go"].trigger(model, 2, ok=True))
    seen.append(model.status)
    return seen


def test_callbacks_get_the_triggers_arguments_when_events_are_not_sent() -> None:
    seen = _run_with_arguments(LeanMachine)
    assert seen == _run_with_arguments(Machine)
    assert seen[-1] == "b" and ("after", (2,), {"ok": True}) in seen


def test_enum_states_and_bound_models() -> None:
    for cls in (Machine, LeanMachine):
        model = Model(status=None)
        machine = cls(
            model=model,
            states=Light,
            initial=Light.RED,
            auto_transitions=False,
            model_attribute="status",
        )
        machine.add_transition("next", Light.RED, Light.GREEN)
        machine.add_transition("next", Light.GREEN, Light.AMBER)
        assert model.next() is True  # type: ignore[attr-defined]
        assert model.next() is True  # type: ignore[attr-defined]
        assert model.status is Light.AMBER
        with pytest.raises(MachineError, match="Can't trigger event next from state AMBER"):
            model.next()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "hook",
    [
        "prepare_event",
        "before_state_change",
        "after_state_change",
        "finalize_event",
        "on_exception",
        "on_final",
    ],
)
def test_machine_wide_hooks_are_refused_not_skipped(hook: str) -> None:
    with pytest.raises(ValueError, match=f"no machine-wide {hook} hook"):
        LeanMachine(model=None, states=["a"], initial="a", **{hook: print})
    machine = LeanMachine(model=None, states=["a"], initial="a")
    with pytest.raises(ValueError, match=f"no machine-wide {hook} hook"):
        setattr(machine, hook, [print])
    with pytest.raises(AttributeError):
        getattr(machine, hook).append(print)
    assert getattr(machine, hook) == ()


def test_queued_is_refused() -> None:
    with pytest.raises(ValueError, match="no queue"):
        LeanMachine(model=None, states=["a"], initial="a", queued=True)


def test_a_state_added_again_is_found_anew() -> None:
    machine = LeanMachine(model=None, states=["a"], initial="a")
    first = machine.state_of("a")
    assert machine.state_of("a") is first
    machine.add_states(["a"])
    assert machine.state_of("a") is machine.states["a"]
    assert machine.state_of("a") is not first


class _CountingState(State):
    """A State that does work of its own on enter and exit, beyond callbacks."""

    def enter(self, event_data: EventData) -> None:
        cast(Any, event_data.model).calls.append(f"enter {self.name}")
        super().enter(event_data)

    def exit(self, event_data: EventData) -> None:
        cast(Any, event_data.model).calls.append(f"exit {self.name}")
        super().exit(event_data)


def _run_state_objects(cls: type[Machine]) -> list[str]:
    machine = cls(
        model=None,
        states=[_CountingState("a"), _CountingState("b")],
        initial="a",
        auto_transitions=False,
        send_event=True,
        model_attribute="status",
    )
    machine.add_transition("go", "a", "b")
    model = Model()
    machine.events["go"].trigger(model)
    return model.calls


def test_states_that_do_their_own_work_are_entered_and_exited() -> None:
    assert _run_state_objects(LeanMachine) == _run_state_objects(Machine) == ["exit a", "enter b"]


def test_a_queue_asked_for_by_position_is_refused() -> None:
    # Machine(model, states, initial, transitions, send_event, auto_transitions, ordered_transitions,
    #         ignore_invalid_triggers, before_state_change, after_state_change, name, queued)
    with pytest.raises(ValueError, match="no queue"):
        LeanMachine(None, ["a", "b"], "a", None, False, False, False, None, None, None, None, True)


def _unknown_destination(cls: type[Machine]) -> tuple[str, str]:
    machine = cls(
        model=None, states=["a"], initial="a", auto_transitions=False, model_attribute="status"
    )
    machine.add_transition("go", "a", "nowhere")
    with pytest.raises(
        ValueError, match="nowhere"
    ) as raised:  # the library's error, not a KeyError
        machine.events["go"].trigger(Model())
    return type(raised.value).__name__, str(raised.value)


def test_a_row_to_an_unknown_state_fails_as_in_the_library() -> None:
    assert _unknown_destination(LeanMachine) == _unknown_destination(Machine)


class Phase(StrEnum):
    OPEN = "Open"
    SHUT = "Shut"


def test_a_plain_string_equal_to_an_enum_states_value_is_refused_even_after_that_state_was_seen() -> (
    None
):
    for cls in (Machine, LeanMachine):
        machine = cls(
            model=None,
            states=Phase,
            initial=Phase.OPEN,
            auto_transitions=False,
            model_attribute="status",
        )
        machine.add_transition("shut", Phase.OPEN, Phase.SHUT)
        machine.add_transition("shut", Phase.SHUT, Phase.SHUT)
        assert (
            machine.events["shut"].trigger(Model(status=Phase.OPEN)) is True
        )  # Phase.OPEN is now known
        with pytest.raises(ValueError, match="State 'Open' is not a registered state"):
            machine.events["shut"].trigger(
                Model(status="Open")
            )  # equal to Phase.OPEN, but not a state's name
