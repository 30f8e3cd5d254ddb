"""The rumor client: every route of the agent's local API (rpc/httpapi/server.go, rpc/httpapi/openapi.yaml)."""

from __future__ import annotations

import base64
import datetime
import os
import time
from typing import IO, Any, Dict, List, Optional, Union
from urllib.parse import urlencode

from ._transport import DEFAULT_SOCKET, Transport, parse_loopback, read_token, segment
from .errors import BadRequest, NotFound, RumorError, Timeout
from .session import Lease, TakenTask
from .types import BlacklistEntry, Duration, Kernel, KvEntry, Member, Service, Status, Task, to_millis, to_seconds
from .watch import Watch

__all__ = ["Client"]

# Task states a task's owner may set (rumor task state).
TASK_STATES = ("running", "done", "failed", "cancelled")


def _seg(ns: str, *segs: "tuple[str, str]") -> str:
    return "/v1/" + ns + "".join("/" + segment(name, value) for name, value in segs)


def _query(path: str, **params: Optional[str]) -> str:
    q = {k: v for k, v in params.items() if v}
    return path + ("?" + urlencode(q) if q else "")


def _kv_path(key: str, base: str = "/v1/kv") -> str:
    """``base`` + key, each segment escaped; a key starts with '/' and has no empty segment."""
    if not isinstance(key, str) or not key.startswith("/") or key == "/":
        raise BadRequest(f"kv key {key!r} must start with '/' and name a key (like /config/app/env/name)")
    parts = key[1:].split("/")
    if "" in parts:
        raise BadRequest(f"kv key {key!r} has an empty segment (a doubled or trailing '/')")
    return base + "".join("/" + segment("kv key segment", p) for p in parts)


class Client:
    """A client of one rumor agent, over its Unix socket or its loopback TCP API.

    ``Client()`` uses ``$RUMOR_API`` with ``$RUMOR_TOKEN_FILE`` if set, else
    the socket ``$RUMOR_SOCKET``, else ``./data/rumor.sock`` (as the CLI
    does). ``Client("/run/rumor/rumor.sock")`` names the socket;
    ``Client(api="http://127.0.0.1:7070", token_file="/etc/rumor/token")``
    (or ``token=``) uses the TCP API, whose address must be loopback.

    ``timeout`` (seconds, None: none) bounds each request; streams (watches,
    sessions) have none. A Client holds no connection between calls and is
    safe to share between threads. Failures raise subclasses of
    :class:`~rumor.errors.RumorError`.
    """

    def __init__(
        self,
        socket: Optional[str] = None,
        *,
        api: Optional[str] = None,
        token: Optional[str] = None,
        token_file: Optional[str] = None,
        timeout: Optional[float] = 30.0,
    ) -> None:
        if socket is None and api is None:
            api = os.environ.get("RUMOR_API") or None
            if api is not None and token is None and token_file is None:
                token_file = os.environ.get("RUMOR_TOKEN_FILE") or None
            if api is None:
                socket = os.environ.get("RUMOR_SOCKET") or DEFAULT_SOCKET
        if socket is not None and api is not None:
            raise BadRequest("give the socket or the TCP api, not both")
        if api is None:
            if token is not None or token_file is not None:
                raise BadRequest("a token goes with api= (the socket needs none)")
            self._t = Transport(socket, None, 0, None, timeout)
            return
        if token is None and token_file is not None:
            token = read_token(token_file)
        if not token:
            raise BadRequest("the TCP API needs a token (token= or token_file=, or RUMOR_TOKEN_FILE)")
        host, port = parse_loopback(api)
        self._t = Transport(None, host, port, token, timeout)

    @property
    def where(self) -> str:
        """The socket path or TCP URL this client talks to."""
        return self._t.where

    def __repr__(self) -> str:
        return f"<rumor.Client {self.where}>"

    def _req(self, method: str, path: str, body: Any = None, timeout: Optional[float] = -1.0) -> Any:
        return self._t.request(method, path, body, timeout)

    # -- the agent -------------------------------------------------------------

    def status(self) -> Status:
        """The local agent's status (node id, addresses, peers, counters)."""
        return self._req("GET", "/v1/status")

    def members(self) -> List[Member]:
        """The nodes the agent knows, with their failure detector state."""
        return self._req("GET", "/v1/members")

    # -- services --------------------------------------------------------------

    def svc_set(
        self,
        service: str,
        instance: str,
        *,
        status: str = "up",
        addr: Optional[str] = None,
        tags: Optional[Dict[str, str]] = None,
        ttl: Optional[Duration] = None,
    ) -> Service:
        """Write an instance of a service, owned by this agent's node.

        ``ttl`` makes it expire unless set again within it.
        """
        body: Dict[str, Any] = {"status": status}
        if addr:
            body["addr"] = addr
        if tags:
            body["tags"] = dict(tags)
        if ttl is not None:
            body["ttl_ms"] = to_millis(ttl)
        return self._req("PUT", _seg("svc", ("service", service), ("instance", instance)), body)

    def svc_get(self, service: str, instance: str) -> Service:
        """One instance of a service; :class:`~rumor.errors.NotFound` if absent."""
        return self._req("GET", _seg("svc", ("service", service), ("instance", instance)))

    def svc_ls(self, service: Optional[str] = None, *, up: bool = False) -> List[Service]:
        """Instances of ``service`` (None: of all services); ``up`` keeps the live, up ones."""
        return self._req("GET", _query("/v1/svc", service=service, up="1" if up else None))

    def svc_rm(self, service: str, instance: str) -> None:
        """Delete an instance of a service."""
        self._req("DELETE", _seg("svc", ("service", service), ("instance", instance)))

    # -- blacklists --------------------------------------------------------------

    def bl_add(
        self,
        list_name: str,
        id: str,
        *,
        reason: Optional[str] = None,
        ttl: Optional[Duration] = None,
        expires: Optional[datetime.datetime] = None,
    ) -> BlacklistEntry:
        """Put ``id`` on a list, for ``ttl`` or until ``expires`` (an aware or UTC datetime), else for good."""
        if ttl is not None and expires is not None:
            raise BadRequest("give ttl or expires, not both")
        if expires is not None:
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=datetime.timezone.utc)
            left = (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
            if left <= 0:
                raise BadRequest(f"expires {expires.isoformat()} is in the past")
            ttl = left
        body: Dict[str, Any] = {}
        if reason:
            body["reason"] = reason
        if ttl is not None:
            body["ttl_ms"] = to_millis(ttl)
        return self._req("PUT", _seg("bl", ("list", list_name), ("id", id)), body)

    def bl_rm(self, list_name: str, id: str) -> None:
        """Take ``id`` off a list."""
        self._req("DELETE", _seg("bl", ("list", list_name), ("id", id)))

    def bl_get(self, list_name: str, id: str) -> BlacklistEntry:
        """The entry of ``id`` on a list; :class:`~rumor.errors.NotFound` if it is not on it."""
        out = self._req("GET", _seg("bl", ("list", list_name), ("id", id)))
        if not out or not out.get("present", True):
            raise NotFound(f"{id} is not on list {list_name}")
        return out.get("entry", out)

    def bl_check(self, list_name: str, id: str) -> Optional[BlacklistEntry]:
        """The entry of ``id`` on a list, or None if it is not on it."""
        try:
            return self.bl_get(list_name, id)
        except NotFound:
            return None

    def bl_has(self, list_name: str, id: str) -> bool:
        """Whether ``id`` is on a list now."""
        return self.bl_check(list_name, id) is not None

    def bl_ls(self, list_name: str) -> List[BlacklistEntry]:
        """The ids on a list."""
        return self._req("GET", _seg("bl", ("list", list_name)))

    def bl_lists(self) -> List[Dict[str, Any]]:
        """Every list with an id on it: ``[{"list": ..., "entries": n}, ...]``."""
        return self._req("GET", "/v1/bl")

    # -- tasks ---------------------------------------------------------------------

    def task_get(self, id: str) -> Task:
        """A task and where it runs (its owner and state)."""
        return self._req("GET", _seg("task", ("id", id)))

    def task_ls(self, *, state: Optional[str] = None, queue: Optional[str] = None, owner: Optional[str] = None) -> List[Task]:
        """The tasks selected by state, queue and owner (None: any)."""
        return self._req("GET", _query("/v1/task", state=state, queue=queue, owner=owner))

    def task_assign(self, id: str, node: Optional[str] = None) -> Task:
        """Record the owner of a task (None: this agent's node)."""
        return self._req("POST", _seg("task", ("id", id)) + "/assign", {"node": node} if node else {})

    def task_state(self, id: str, state: str, result: Optional[str] = None, *, session: Optional[str] = None) -> Task:
        """Set the state of a task this node owns: running, done, failed or cancelled."""
        if state not in TASK_STATES:
            raise BadRequest(f"bad task state {state!r}: want {', '.join(TASK_STATES)}")
        body: Dict[str, Any] = {"state": state}
        if result:
            body["result"] = result
        if session:
            body["session"] = session
        return self._req("POST", _seg("task", ("id", id)) + "/state", body)

    def task_done(self, id: str, result: Optional[str] = None) -> Task:
        """End a task this node took as done."""
        return self.task_state(id, "done", result)

    def task_fail(self, id: str, result: Optional[str] = None) -> Task:
        """End a task this node took as failed."""
        return self.task_state(id, "failed", result)

    def task_cancel(self, id: str, *, wait: Optional[Duration] = None, poll: float = 0.1) -> Task:
        """Ask a task's worker to cancel it, from any node.

        A task no worker runs is cancelled at once; one a worker runs becomes
        cancel-requested until the worker confirms. With ``wait``, poll the
        task until it leaves cancel-requested/running, and raise
        :class:`~rumor.errors.Timeout` if it has not within ``wait``.
        """
        t: Task = self._req("POST", _seg("task", ("id", id)) + "/cancel")
        limit = to_seconds(wait)
        if limit <= 0:
            return t
        deadline = time.monotonic() + limit
        while True:
            t = self.task_get(id)
            if t.get("state") not in ("cancel-requested", "running"):
                return t
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(
                    f"task {id} is still {t.get('state')} after {limit} s: "
                    f"its worker (node {t.get('owner')}) has not acknowledged the cancel"
                )
            time.sleep(min(poll, left))

    def task_submit(
        self,
        queue: str,
        id: str,
        payload: Union[bytes, str, None] = None,
        *,
        priority: int = 0,
        max_attempts: int = 0,
    ) -> Task:
        """Queue a new task ``id`` on a work queue (``payload``: bytes, or str as UTF-8)."""
        body: Dict[str, Any] = {"id": id}
        if payload:
            raw = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
            body["payload"] = base64.b64encode(raw).decode("ascii")
        if priority:
            body["priority"] = priority
        if max_attempts:
            body["max_attempts"] = max_attempts
        return self._req("POST", _seg("queue", ("queue", queue)) + "/submit", body)

    def task_take(self, queue: str, *, wait: Optional[Duration] = None, visibility: Optional[Duration] = None) -> Optional[Task]:
        """Take the next task of a queue for a one-shot worker, or None if there is none (within ``wait``).

        The task is this node's until ``visibility`` (default 5 minutes)
        passes; :meth:`task_touch` extends it, :meth:`task_done` or
        :meth:`task_fail` ends it. For a worker that holds the task while it
        runs, use :meth:`take` instead.
        """
        body: Dict[str, Any] = {}
        w = to_millis(wait)
        if w:
            body["wait_ms"] = w
        if visibility is not None:
            body["visibility_ms"] = to_millis(visibility)
        out = self._req("POST", _seg("queue", ("queue", queue)) + "/take", body, timeout=self._after(w))
        return out.get("task") if out and out.get("taken") else None

    def task_touch(self, id: str, *, visibility: Optional[Duration] = None, session: Optional[str] = None) -> Task:
        """Extend the hold of a task this node took (a session's keepalive with ``session``)."""
        body: Dict[str, Any] = {}
        if visibility is not None:
            body["visibility_ms"] = to_millis(visibility)
        if session:
            body["session"] = session
        return self._req("POST", _seg("task", ("id", id)) + "/touch", body)

    def take(self, queue: str, *, wait: Optional[Duration] = None, visibility: Optional[Duration] = None) -> TakenTask:
        """Take the next task of a queue on a session; use it as a context manager.

        ::

            with client.take("render", wait=30) as task:
                render(task.payload)      # done when the block ends normally

        Raises :class:`~rumor.errors.NoTask` if there is none within
        ``wait``. ``visibility`` is how long the task stays this worker's
        without a keepalive (the session sends them every third of it).
        See :class:`~rumor.session.TakenTask`.
        """
        return TakenTask(self._t, queue, visibility_ms=to_millis(visibility), wait=to_seconds(wait))

    # -- kernels -------------------------------------------------------------------

    def lock(self, name: str, *, ttl: Optional[Duration] = None, wait: Optional[Duration] = None, job: str = "") -> Lease:
        """A kernel's lease for a session; use it as a context manager.

        ::

            with client.lock("gpu-0", ttl=30, wait=60) as lease:
                run(fence=lease.epoch)    # released when the block ends

        Raises :class:`~rumor.errors.LockNotGranted` if another claimant
        holds it beyond ``wait``. See :class:`~rumor.session.Lease`.
        """
        return Lease(self._t, name, ttl_ms=to_millis(ttl), wait=to_seconds(wait), job=job)

    def kernel_claim(
        self,
        id: str,
        *,
        ttl: Optional[Duration] = None,
        job: str = "",
        keep: bool = False,
        wait: Optional[Duration] = None,
    ) -> Dict[str, Any]:
        """Claim a kernel's lease once (no session): ``{"granted": bool, "kernel": {...}}``.

        Without ``keep`` the lease runs out after ``ttl`` unless renewed
        (:meth:`kernel_renew`); with it the agent renews it until released.
        A denial is a result with granted false, not an error.
        """
        body: Dict[str, Any] = {}
        if ttl is not None:
            body["ttl_ms"] = to_millis(ttl)
        if job:
            body["job"] = job
        if keep:
            body["keep"] = True
        w = to_millis(wait)
        if w:
            body["wait_ms"] = w
        return self._req("POST", _seg("kernel", ("id", id)) + "/claim", body, timeout=self._after(w))

    def kernel_renew(self, id: str, *, ttl: Optional[Duration] = None, session: Optional[str] = None) -> Kernel:
        """Extend a lease this node holds (a one-shot claim's, or ``session``'s)."""
        body: Dict[str, Any] = {}
        if ttl is not None:
            body["ttl_ms"] = to_millis(ttl)
        if session:
            body["session"] = session
        return self._req("POST", _seg("kernel", ("id", id)) + "/renew", body)

    def kernel_release(self, id: str, *, session: Optional[str] = None, force: bool = False, reason: Optional[str] = None) -> Kernel:
        """Give up a lease this node holds; ``force`` frees it whoever holds it (an operator's act)."""
        body: Dict[str, Any] = {}
        if session:
            body["session"] = session
        if force:
            body["force"] = True
        if reason:
            body["reason"] = reason
        return self._req("POST", _seg("kernel", ("id", id)) + "/release", body)

    def kernel_get(self, id: str) -> Kernel:
        """A kernel's lease as the agent sees it: holder, epoch, live, waiters."""
        return self._req("GET", _seg("kernel", ("id", id)))

    def kernel_ls(self) -> List[Kernel]:
        """Every kernel the agent knows."""
        return self._req("GET", "/v1/kernel")

    # -- kv --------------------------------------------------------------------------

    def kv_put(self, key: str, value: Union[str, bytes], *, ttl: Optional[Duration] = None, if_version: Optional[int] = None) -> KvEntry:
        """Write ``value`` (UTF-8 text) at ``key``, a path such as ``/config/app/env/name``.

        ``ttl`` deletes the key after that long. ``if_version`` writes only
        if this agent's version of the key is that (0: the key must not
        exist), else raises :class:`~rumor.errors.Denied` (HTTP 409): a
        compare-and-set. Returns the entry written, with its new version.
        """
        v = value.decode("utf-8") if isinstance(value, bytes) else value
        body: Dict[str, Any] = {"value": v}
        if ttl is not None:
            body["ttl_ms"] = to_millis(ttl)
        if if_version is not None:
            body["if_version"] = if_version
        return self._req("PUT", _kv_path(key), body)

    def kv_get(self, key: str) -> KvEntry:
        """The entry at ``key``; :class:`~rumor.errors.NotFound` if absent."""
        return self._req("GET", _kv_path(key))

    def kv_value(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """The value at ``key``, or ``default`` if absent."""
        try:
            return self.kv_get(key).get("value", default)
        except NotFound:
            return default

    def kv_ls(self, prefix: str = "") -> List[KvEntry]:
        """The live entries whose keys start with ``prefix`` ("": all), in key order."""
        return self._req("GET", "/v1/kv?" + urlencode({"prefix": prefix}) if prefix else "/v1/kv")

    def kv_rm(self, key: str, *, if_version: Optional[int] = None) -> KvEntry:
        """Delete ``key`` (only if this agent's version of it is ``if_version``, when given,
        else :class:`~rumor.errors.Denied`); returns the delete (``deleted`` true)."""
        p = _kv_path(key)
        if if_version is not None:
            p += "?" + urlencode({"if_version": str(if_version)})
        return self._req("DELETE", p)

    def kv_history(self, key: str) -> List[KvEntry]:
        """The writes to ``key`` this agent kept, newest first (``current`` marks the
        one that holds, ``deleted`` a delete, ``conflict`` a write that lost to a
        concurrent one)."""
        return self._req("GET", _kv_path(key, "/v1/kv-history"))

    def watch_kv(self, prefix: str = "/", **kw: Any) -> Watch:
        """Watch the kv keys under ``prefix`` (a path prefix such as ``/config/app/``); see :meth:`watch`.

        Event keys are store keys (``kv/config/app/x``); a ``conflict`` event
        carries the winner in ``value`` and the losing write in ``lost``.
        """
        if not prefix.startswith("/"):
            raise BadRequest(f"kv prefix {prefix!r}: want a path such as /config/app/")
        return self.watch("kv" + prefix, **kw)

    # -- watches -----------------------------------------------------------------------

    def watch(
        self,
        prefix: str = "",
        *,
        since: Optional[str] = None,
        keepalive: Optional[Duration] = None,
        reconnect: int = 0,
        keepalives: bool = False,
    ) -> Watch:
        """Watch the keys under ``prefix`` (``svc/web/``, ``bl/``, ``task/``, ``kernel/``...).

        Returns a :class:`~rumor.watch.Watch`: iterate it for events (a
        snapshot, ``synced``, then every change); resume a later watch after
        a line with ``since=watch.cursor``. ``keepalive`` sets the agent's
        keepalive interval (0: none); ``keepalives=True`` yields those lines
        too. ``reconnect`` > 0 reopens a broken stream from the last cursor.
        Close it (or use ``with``) to stop its reader thread.
        """
        return Watch(self._t, prefix, since=since, keepalive=keepalive, reconnect=reconnect, keepalives=keepalives)

    # -- inspection and backup -------------------------------------------------------

    def records(self, prefix: str = "") -> List[Dict[str, Any]]:
        """The stored writes of every key under ``prefix`` (store keys, e.g. ``bl/fraud/``), in key order."""
        return self._req("GET", "/v1/records?" + urlencode({"prefix": prefix}))

    def explain(self, key: str) -> Dict[str, Any]:
        """What the agent holds for a store key (``bl/fraud/user42``) and which rule made its value win."""
        return self._req("GET", "/v1/explain?" + urlencode({"key": key}))

    def backup(self, out: IO[bytes]) -> int:
        """Write a consistent snapshot of the agent's state to the binary file ``out``
        (install it with ``rumor restore``); returns its size. A snapshot cut short
        raises :class:`~rumor.errors.Internal`."""
        return self._t.download("/v1/backup", out)

    def openapi(self) -> Dict[str, Any]:
        """The agent's OpenAPI 3.0 document of this API (``GET /v1/openapi.json``)."""
        return self._req("GET", "/v1/openapi.json")

    # -- helpers -------------------------------------------------------------------------

    def _after(self, wait_ms: int) -> Optional[float]:
        """A request timeout that leaves room for the agent's own wait."""
        if self._t.timeout is None:
            return None
        return self._t.timeout + wait_ms / 1000.0

    def ping(self) -> bool:
        """Whether the agent answers (a status request)."""
        try:
            self.status()
            return True
        except RumorError:
            return False
