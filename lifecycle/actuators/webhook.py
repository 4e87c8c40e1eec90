"""The webhook actuator: each step POSTed as JSON to a control plane written in any language.

The protocol (``docs/actuators.md``): one ``POST`` per :meth:`WebhookActuator.apply`,
its body a JSON object of exactly :data:`STEP_MEMBERS`, with the headers
``Content-Type: application/json``, ``Idempotency-Key: <step.key>`` and, with
a secret, ``X-Lifecycle-Signature: sha256=<hex HMAC-SHA256 of the body>``.
What the answer means:

- 2xx: done. 409: done before (the receiver had that key).
- 408, 429, 5xx, and no answer (refused, reset, timed out): a retryable
  :class:`~lifecycle.errors.ActuatorError`; the reconciler tries again later
  with the same key.
- Any other status (4xx, a redirect, which is not followed): an
  ``ActuatorError`` that is not retryable, with the status and the start of
  the receiver's body in its message; the experiment fails at once.
"""

from __future__ import annotations

import json

from lifecycle.actuators._http import SendError, SignedSender
from lifecycle.actuators.base import Step
from lifecycle.errors import ActuatorError

__all__ = ["STEP_MEMBERS", "WebhookActuator", "step_body"]

#: the members of the JSON body, in the order they are sent
STEP_MEMBERS = (
    "key",
    "account",
    "experiment",
    "arn",
    "endpoint",
    "action",
    "variant",
    "model_name",
    "infrastructure",
    "attempt",
)
#: 4xx statuses that say "not now" rather than "never"
_RETRYABLE_4XX = frozenset({408, 429})


def step_body(step: Step) -> bytes:
    """The JSON body a step is sent as (UTF-8, no insignificant whitespace)."""
    members = {name: getattr(step, name) for name in STEP_MEMBERS}
    return json.dumps(members, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookActuator(SignedSender):
    """Carries out each step by POSTing it to ``url``; the receiver does the work.

    ``WebhookActuator(url, *, secret=None, timeout=10.0, context=None)``:
    ``secret`` signs every body; ``timeout`` (seconds) bounds the connect and
    every read of each call; ``context`` is the TLS context of an ``https``
    URL. Each thread keeps one connection alive; :meth:`close` (or leaving a
    ``with`` block) closes them all. ``ValueError`` for a URL that is not
    ``http(s)://host[:port][/path]``.
    """

    def apply(self, step: Step) -> None:
        try:
            reply = self.post(step_body(step), {"Idempotency-Key": step.key})
        except SendError as exc:
            raise ActuatorError(str(exc), retryable=True) from exc
        if 200 <= reply.status < 300 or reply.status == 409:
            return
        answer = f"the webhook answered {reply.status} {reply.reason}".rstrip()
        text = reply.text()
        if text:
            answer = f"{answer}: {text}"
        if 300 <= reply.status < 400:
            answer += " (redirects are not followed: give the final URL)"
        retryable = reply.status >= 500 or reply.status in _RETRYABLE_4XX
        raise ActuatorError(answer, retryable=retryable)
