"""The shapes of the agent's JSON answers (rpc/types.go), as TypedDicts, and watch events.

Answers are plain dicts decoded from JSON; these TypedDicts name their keys
for type checkers. Times are RFC 3339 strings as the agent sends them.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, TypedDict, Union

__all__ = [
    "Duration",
    "Status",
    "Member",
    "Service",
    "BlacklistEntry",
    "Task",
    "Kernel",
    "KvEntry",
    "Event",
    "to_millis",
    "to_go_duration",
]

# A duration: seconds (int or float) or a datetime.timedelta.
Duration = Union[int, float, datetime.timedelta]


def to_seconds(d: Optional[Duration]) -> float:
    """Seconds in ``d`` (0 for None)."""
    if d is None:
        return 0.0
    if isinstance(d, datetime.timedelta):
        return d.total_seconds()
    if isinstance(d, bool) or not isinstance(d, (int, float)):
        raise TypeError(f"want seconds or a timedelta, got {d!r}")
    return float(d)


def to_millis(d: Optional[Duration]) -> int:
    """Whole milliseconds in ``d`` (0 for None); a positive duration is at least 1 ms."""
    s = to_seconds(d)
    if s < 0:
        raise ValueError(f"duration must not be negative, got {d!r}")
    ms = int(round(s * 1000))
    return 1 if s > 0 and ms == 0 else ms


def to_go_duration(d: Duration) -> str:
    """``d`` as a Go duration string, e.g. ``"1500ms"``."""
    return f"{to_millis(d)}ms"


class _Origin(TypedDict, total=False):
    origin: str
    stamp: str
    age_ms: int
    origin_state: str


class Status(TypedDict, total=False):
    """The local agent (``GET /v1/status``)."""

    node: str
    cluster: str
    region: str
    version: str
    commit: str
    addrs: List[str]
    peers: int
    keys: int
    watchers: int
    started: str


class Member(TypedDict, total=False):
    """One node as the agent sees it (``GET /v1/members``)."""

    node: str
    addrs: List[str]
    region: str
    version: str
    self: bool
    state: str
    connected: bool
    last_heard: str
    services: int
    leases: int


class Service(_Origin, total=False):
    """One service instance."""

    service: str
    instance: str
    addr: str
    status: str
    tags: Dict[str, str]
    owner: str
    updated: str
    expires: str
    up: bool
    owner_state: str
    reported: str


class BlacklistEntry(_Origin, total=False):
    """One id on a blacklist."""

    list: str
    id: str
    reason: str
    added_by: str
    added: str
    expires: str


class Task(_Origin, total=False):
    """One task and where it runs; ``payload`` is base64 as the agent sends it."""

    id: str
    owner: str
    state: str
    result: str
    updated_by: str
    updated: str
    queue: str
    payload: str
    priority: int
    attempt: int
    max_attempts: int
    epoch: int


class Kernel(_Origin, total=False):
    """A kernel's lease as the agent sees it."""

    id: str
    holder: str
    epoch: int
    job: str
    granted: str
    expires: str
    released: bool
    live: bool
    session: str
    waiters: List[Dict[str, Any]]


class KvEntry(TypedDict, total=False):
    """One kv key (or, in a history, one write to it): its value (UTF-8 text),
    its version (1 for a new key), who wrote it and when."""

    key: str
    value: str
    version: int
    writer: str
    stamp: str
    updated: str
    expires: str
    deleted: bool
    current: bool
    conflict: bool


@dataclass(frozen=True)
class Event:
    """One line of a watch stream: a change, a snapshot entry, or a marker.

    ``op`` is the write's (``put``, ``delete``, ``claim``, ``renew``,
    ``release``) or a marker's (``snapshot``, ``synced``, ``refresh``,
    ``expired``, ``owner-down``, ``owner-up``, ``conflict``, ``lease``,
    ``keepalive``, ``resync``). ``cursor`` is where to resume after this line
    (``since=``); snapshot and resync lines have none. ``lost`` is the write
    that lost, for a kv ``conflict``. ``raw`` is the line as decoded.
    """

    op: str
    key: str = ""
    node: str = ""
    stamp: str = ""
    time: str = ""
    value: Any = None
    cursor: str = ""
    reason: str = ""
    lease: str = ""
    lost: Optional[Dict[str, Any]] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: Dict[str, Any]) -> "Event":
        """Build an Event from a decoded stream line."""
        return cls(
            op=str(obj.get("op", "")),
            key=str(obj.get("key", "")),
            node=str(obj.get("node", "")),
            stamp=str(obj.get("stamp", "")),
            time=str(obj.get("time", "")),
            value=obj.get("value"),
            cursor=str(obj.get("cursor", "")),
            reason=str(obj.get("reason", "")),
            lease=str(obj.get("lease", "")),
            lost=obj.get("lost"),
            raw=obj,
        )

    def __getitem__(self, name: str) -> Any:
        """``event["key"]``: the decoded line's field, for dict-style code."""
        return self.raw[name]

    def get(self, name: str, default: Any = None) -> Any:
        """The decoded line's field ``name``, or ``default``."""
        return self.raw.get(name, default)
