"""A Python client for the rumor agent's local API.

Standard library only: HTTP/JSON over the agent's Unix socket, or over its
loopback TCP API with a bearer token. ::

    import rumor

    client = rumor.Client("/run/rumor/rumor.sock")
    client.svc_set("web", "w1", addr="10.0.0.1:8080", ttl=15)
    with client.lock("gpu-0", ttl=30, wait=60) as lease:
        run_job(fence=lease.epoch)
    with client.watch("svc/web/") as w:
        for ev in w:
            print(ev.op, ev.key, ev.cursor)
"""

from .client import TASK_STATES, Client
from .errors import (
    BadRequest,
    Busy,
    Conflict,
    Denied,
    Internal,
    LeaseLost,
    LockNotGranted,
    MethodNotAllowed,
    NoTask,
    NotFound,
    RumorError,
    StreamClosed,
    Timeout,
    TooLarge,
    Unauthorized,
    Unreachable,
)
from .session import Lease, TakenTask
from .types import Event
from .watch import Watch

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Lease",
    "TakenTask",
    "Watch",
    "Event",
    "TASK_STATES",
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
]
