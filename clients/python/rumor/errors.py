"""Exceptions raised by the rumor client, mapped from the agent's error codes.

The agent answers a failed request with a JSON body ``{"code": ..., "message":
...}`` (older agents: ``{"code": ..., "error": ...}``) and an HTTP status.
:func:`error_from_body` turns it into the matching subclass of
:class:`RumorError`, so callers catch what they mean::

    try:
        client.svc_get("web", "w1")
    except rumor.NotFound:
        ...
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Type

__all__ = [
    "RumorError",
    "BadRequest",
    "TooLarge",
    "MethodNotAllowed",
    "NotFound",
    "Denied",
    "Conflict",
    "Busy",
    "Timeout",
    "Unauthorized",
    "Internal",
    "Unreachable",
    "StreamClosed",
    "LockNotGranted",
    "NoTask",
    "LeaseLost",
    "error_from_body",
]


class RumorError(Exception):
    """Any error of the rumor client or of the agent.

    ``code`` is the agent's error code (``bad_request``, ``not_found``,
    ``denied``, ``busy``, ``timeout``, ``unauthorized``, ``internal``),
    ``status`` the HTTP status (0 when the agent was not reached), and
    ``details`` the optional details object of the agent's error body.
    """

    code: str = "internal"

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        status: int = 0,
        details: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status
        self.details: Dict[str, Any] = details or {}


class BadRequest(RumorError):
    """The request is malformed (HTTP 400, code ``bad_request``)."""

    code = "bad_request"


class TooLarge(BadRequest):
    """The request body is over the agent's max_request_bytes (HTTP 413, code ``too_large``)."""

    code = "too_large"


class MethodNotAllowed(BadRequest):
    """The route exists, but not with this method (HTTP 405, code ``method_not_allowed``)."""

    code = "method_not_allowed"


class NotFound(RumorError):
    """No such key (HTTP 404, code ``not_found``)."""

    code = "not_found"


class Denied(RumorError):
    """Refused by ownership, a lease or a version check (HTTP 409, code ``denied``).

    :class:`Conflict` is the same class under the name HTTP gives it.
    """

    code = "denied"


Conflict = Denied


class Busy(RumorError):
    """A limit of the agent is reached, e.g. max_watchers (HTTP 429, code ``busy``)."""

    code = "busy"


class Timeout(RumorError):
    """The request outlived the agent's request_timeout (HTTP 503, code ``timeout``)."""

    code = "timeout"


class Unauthorized(RumorError):
    """The TCP API needs the right bearer token (HTTP 401, code ``unauthorized``)."""

    code = "unauthorized"


class Internal(RumorError):
    """The agent failed, or answered something this client cannot read."""

    code = "internal"


class Unreachable(RumorError):
    """Nothing answers on the socket or TCP address: is ``rumor agent`` running?"""

    code = "unreachable"


class StreamClosed(RumorError):
    """A watch or session stream ended without saying why (the agent stopped)."""

    code = "closed"


class LockNotGranted(Denied):
    """A lease was not granted: another claimant holds it (or the wait ran out).

    ``holder`` and ``epoch`` name the current holder, when known.
    """

    def __init__(self, message: str, *, holder: str = "", epoch: int = 0) -> None:
        super().__init__(message, code="denied")
        self.holder = holder
        self.epoch = epoch


class NoTask(RumorError):
    """A take found no task in the queue (within its wait)."""

    code = "empty"


class LeaseLost(RumorError):
    """A lease (a lock's, or a taken task's) is no longer held: stop using it.

    ``reason`` is the session event or failure that ended it (``lost``,
    ``expired``, ``suspect``, ``stopping``, ``deadline``...).
    """

    code = "lost"

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


_BY_CODE: Dict[str, Type[RumorError]] = {
    "bad_request": BadRequest,
    "too_large": TooLarge,
    "method_not_allowed": MethodNotAllowed,
    "not_found": NotFound,
    "denied": Denied,
    "busy": Busy,
    "timeout": Timeout,
    "unauthorized": Unauthorized,
    "internal": Internal,
}

_BY_STATUS: Dict[int, Type[RumorError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    409: Denied,
    413: TooLarge,
    429: Busy,
    503: Timeout,
}


def error_from_object(obj: Dict[str, Any], status: int = 0) -> RumorError:
    """Build the exception for a decoded error object (a body or a stream's last line).

    Both the current ``message`` field and the older ``error`` field are read.
    """
    code = str(obj.get("code") or "")
    msg = obj.get("message")
    if not msg:
        msg = obj.get("error")
    if not msg:
        msg = code or "agent error"
    details = obj.get("details")
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status) or Internal
    return cls(str(msg), code=code or cls.code, status=status, details=details if isinstance(details, dict) else None)


def error_from_body(status: int, reason: str, body: bytes) -> RumorError:
    """Build the exception for a non-2xx response with this status and body."""
    try:
        obj = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        obj = None
    if isinstance(obj, dict) and (obj.get("code") or obj.get("message") or obj.get("error")):
        return error_from_object(obj, status)
    text = body.decode("utf-8", "replace").strip() or reason
    cls = _BY_STATUS.get(status, Internal)
    return cls(f"agent answered {status} {reason}: {text}", code=cls.code, status=status)
