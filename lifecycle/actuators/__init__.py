"""Actuators: what carries out the reconciler's steps on real infrastructure.

``base`` holds the step contract (:class:`Step`, the :class:`Actuator`
protocol, :class:`ActuatorError`); ``simulated`` the default actuator, which
changes nothing real; ``webhook`` the actuator that POSTs each step to a
control plane over HTTP (``_http`` its signed sender). Actuators import the
domain and the errors, never the service or the HTTP edge. ``docs/actuators.md``
states the contract and the webhook protocol.
"""

from __future__ import annotations

from lifecycle.actuators.base import Actuator, ActuatorError, Step
from lifecycle.actuators.simulated import SimulatedActuator
from lifecycle.actuators.webhook import WebhookActuator

__all__ = ["Actuator", "ActuatorError", "SimulatedActuator", "Step", "WebhookActuator"]
