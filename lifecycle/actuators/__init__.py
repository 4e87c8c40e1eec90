"""Actuators: what carries out the reconciler's steps on real infrastructure.

``base`` holds the step contract (:class:`Step`, the :class:`Actuator`
protocol, :class:`ActuatorError`); ``simulated`` the default actuator, which
changes nothing real. Actuators import the domain and the errors, never the
service or the HTTP edge.
"""

from __future__ import annotations

from lifecycle.actuators.base import Actuator, ActuatorError, Step
from lifecycle.actuators.simulated import SimulatedActuator

__all__ = ["Actuator", "ActuatorError", "SimulatedActuator", "Step"]
