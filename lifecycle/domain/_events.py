"""The `transitions` classes our two machines are built from, specialised for the hot path.

``transitions`` is general: a trigger goes through a partial, the machine's
queue check, machine-wide ``prepare_event``/``finalize_event``/``on_exception``
hooks, ``before``/``after_state_change`` chains, per-callback name resolution
and about a dozen logging calls, whether or not any of them is in use. A Stop
fires three events (the experiment's and one per variant), so that generality
is most of a request's cost.

These subclasses (through the ``state_cls``, ``event_cls`` and
``transition_cls`` hooks ``Machine`` offers for this) keep the semantics the
engine relies on and skip only what is empty:

* the rows of an event are tried in order; a row is taken when every one of
  its conditions answers its target (``Condition.check``, so guards stay
  ``transitions`` conditions); the first row taken ends the trigger;
* ``prepare``, ``before`` and ``after`` callbacks of a row, and ``on_exit`` /
  ``on_enter`` of the states, run in ``transitions``' order when there are any;
* the model's attribute is set to the destination's value;
* a trigger from a status with no row raises ``MachineError``, as before.

A ``LeanMachine`` refuses a queue and the machine-wide hooks
(``prepare_event``, ``before_state_change``, ``after_state_change``,
``finalize_event``, ``on_exception``, ``on_final``) at construction and on
assignment, so nothing is ever silently skipped. ``tests/unit/test_events.py``
runs the same scenarios through a plain ``Machine`` and a ``LeanMachine`` and
compares what each does.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any

from transitions import EventData, Machine, State
from transitions.core import Condition, Event, Transition

__all__ = ["LeanMachine"]

_LOGGER = logging.getLogger("transitions.core")
_DEBUG = logging.DEBUG


class NamedState(State):
    """A State whose name is computed once (the library derives an Enum state's name
    on every read), and whose enter and exit do nothing when it has no callbacks
    (the library's still log twice and walk the empty lists); ``LeanTransition``
    skips calling them then."""

    def __init__(self, name: str | Enum, *args: Any, **kwargs: Any) -> None:
        super().__init__(name, *args, **kwargs)
        self._cached_name = name.name if isinstance(name, Enum) else name

    @property
    def name(self) -> str:
        return self._cached_name

    def enter(self, event_data: EventData) -> None:
        if self.on_enter:
            super().enter(event_data)

    def exit(self, event_data: EventData) -> None:
        if self.on_exit:
            super().exit(event_data)


class LeanCondition(Condition):
    """A condition whose callable is called straight with the EventData when the machine
    sends events; a name, or a machine that passes the trigger's arguments, goes the
    library's way."""

    def check(self, event_data: EventData) -> bool:
        func = self.func
        if callable(func) and event_data.machine.send_event:
            return bool(func(event_data) == self.target)
        return bool(super().check(event_data))


class LeanTransition(Transition):
    """A row: its conditions, then its callbacks, skipping the lists that are empty."""

    condition_cls = LeanCondition

    def execute(self, event_data: EventData) -> bool:
        machine = event_data.machine
        if self.prepare:
            machine.callbacks(self.prepare, event_data)
        for cond in self.conditions:
            if not cond.check(event_data):
                return False
        if self.before:
            machine.callbacks(self.before, event_data)
        if self.dest:  # None is an internal transition: no change of state
            states = machine.states
            source = states[self.source]
            if (
                source.on_exit or type(source) is not NamedState
            ):  # another State class may do its own work
                source.exit(event_data)
            dest = states.get(self.dest) or machine.get_state(
                self.dest
            )  # the library's error for an unknown one
            setattr(event_data.model, machine.model_attribute, dest.value)
            event_data.state = dest
            if dest.on_enter or type(dest) is not NamedState:
                dest.enter(event_data)
        if self.after:
            if machine.send_event:
                for func in self.after:
                    if callable(func):
                        func(event_data)
                    else:  # a name: the library resolves it on the model
                        machine.callback(func, event_data)
            else:
                machine.callbacks(self.after, event_data)
        if _LOGGER.isEnabledFor(_DEBUG):
            _LOGGER.debug(
                "%s%s: %s -> %s", machine.name, event_data.event.name, self.source, self.dest
            )
        return True


class LeanEvent(Event):
    """An event fired straight on a record: no partial, no queue, no machine-wide hooks."""

    def trigger(self, model: Any, *args: Any, **kwargs: Any) -> bool:
        machine = self.machine
        state = machine.state_of(getattr(model, machine.model_attribute))
        rows = self.transitions.get(state.name)
        if rows is None:
            self._is_valid_source(state)  # raises MachineError, or logs when told to ignore
            return False
        event_data = EventData(state, self, machine, model, args, kwargs)
        for row in rows:
            event_data.transition = row
            if row.execute(event_data):
                event_data.result = True
                return True
        return False


class LeanMachine(Machine):
    """A ``Machine`` made of the classes above, with a status -> State map for the hot path.

    It has no queue and no machine-wide hooks (``prepare_event``,
    ``before_state_change``, ``after_state_change``, ``finalize_event``,
    ``on_exception``, ``on_final``): asking for either, at construction or
    later, raises ``ValueError``. Per-row ``prepare``/``before``/``after``,
    conditions and per-state ``on_enter``/``on_exit`` all work.
    """

    state_cls = NamedState
    event_cls = LeanEvent
    transition_cls = LeanTransition

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._state_by_value: dict[Any, tuple[State, type]] = {}
        super().__init__(*args, **kwargs)
        if self.has_queue:
            raise ValueError("LeanMachine has no queue: fire events one at a time")

    def _no_hook(name: str) -> property:  # type: ignore[misc]
        def get(self: Machine) -> tuple[()]:
            return ()  # a tuple: appending to it fails instead of being skipped

        def put(self: Machine, value: Any) -> None:
            if value:
                raise ValueError(
                    f"LeanMachine has no machine-wide {name} hook: give the rows their own callbacks"
                )

        return property(get, put)

    prepare_event = _no_hook("prepare_event")
    before_state_change = _no_hook("before_state_change")
    after_state_change = _no_hook("after_state_change")
    finalize_event = _no_hook("finalize_event")
    on_exception = _no_hook("on_exception")
    on_final = _no_hook("on_final")
    del _no_hook

    def add_states(self, *args: Any, **kwargs: Any) -> None:
        self._state_by_value.clear()  # a name added again replaces its State
        super().add_states(*args, **kwargs)

    def state_of(self, value: Any) -> State:
        """The State for a model's attribute value (an Enum member or a name), as
        ``get_state`` answers it, remembered per value. A value only equal to a
        remembered one (a str Enum's plain string) is looked up anew, as the
        library would, and refused when it is not a state's name."""
        known = self._state_by_value.get(value)
        if known is not None and type(value) is known[1]:
            return known[0]
        state = self.get_state(value)
        self._state_by_value[value] = (state, type(value))
        return state
