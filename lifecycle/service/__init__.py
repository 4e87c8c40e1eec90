"""The application layer: the seven operations over a store, and the reconciler.

``service`` holds :class:`ExperimentService` (one method per operation:
request -> event -> versioned save); ``reconciler`` the :class:`Reconciler`
that moves transitional statuses on through an actuator. Request plans,
response building and list tokens sit beside them, private. The service
imports the domain, the wire shapes, the stores and the actuators; never the
HTTP edge or the commands. ``_async`` holds the asyncio API over them:
:class:`AsyncExperimentService` (each call in a bounded worker pool) and
:class:`AsyncReconciler` (the reconciler as an asyncio task).
"""

from __future__ import annotations

from lifecycle.service._async import AsyncExperimentService, AsyncReconciler
from lifecycle.service.reconciler import Reconciler
from lifecycle.service.service import OPERATIONS, ExperimentService, Listener

__all__ = [
    "OPERATIONS",
    "AsyncExperimentService",
    "AsyncReconciler",
    "ExperimentService",
    "Listener",
    "Reconciler",
]
