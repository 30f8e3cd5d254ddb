"""Sessions: a kernel lease (:class:`Lease`) or a taken task (:class:`TakenTask`)
held while a background thread keeps the session's stream open and renews it.
"""

from __future__ import annotations

import base64
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, Optional, cast

from ._transport import segment
from .errors import Denied, Internal, LeaseLost, LockNotGranted, NoTask, NotFound, RumorError, StreamClosed
from .types import Kernel, Task

if TYPE_CHECKING:  # pragma: no cover
    from ._transport import Stream, Transport

__all__ = ["Lease", "TakenTask"]

# Session events that end a held lease: stop using it.
_LOSING = ("lost", "expired", "suspect", "stopping")


class _Session:
    """What a kernel session and a task session share: the stream, the
    verdict, the keepalives, the deadline and the loss."""

    _kind = "session"

    def __init__(self, transport: "Transport", path: str, body: Dict[str, Any], wait: float, label: str) -> None:
        self._transport = transport
        self._path = path
        self._body = body
        self._wait = wait
        self._label = label
        #: Set when the lease is lost (or expired, suspect, the agent stopping,
        #: a renewal refused, or its deadline passed without a confirmed
        #: renewal): stop using what it guards. :attr:`reason` says why.
        self.lost = threading.Event()
        #: Why :attr:`lost` was set ("" while held).
        self.reason = ""
        #: The session's id on the agent.
        self.session = ""
        #: The lease's length and the agent's lease_margin, in seconds.
        self.ttl = 0.0
        self.margin = 0.0
        self._granted: Optional[Dict[str, Any]] = None
        self._verdict = threading.Event()
        self._failure: Optional[BaseException] = None
        self._deadline = 0.0
        self._mu = threading.Lock()
        self._stop = threading.Event()
        self._releasing = False
        self._started = False
        self._closed = False
        self._stream: Optional["Stream"] = None
        self._reader: Optional[threading.Thread] = None
        self._keeper: Optional[threading.Thread] = None

    # -- acquisition ---------------------------------------------------------

    def _acquire(self) -> None:
        if self._started:
            raise RuntimeError(f"{self._label}: a session is acquired once")
        self._started = True
        try:
            self._stream = self._transport.stream("POST", self._path, self._body)
        except BaseException:
            self._closed = True
            raise
        self._reader = threading.Thread(target=self._read, name=f"rumor-{self._kind}-{self._label}", daemon=True)
        self._reader.start()
        try:
            self._await_grant()
        except BaseException:
            # Denied, failed, unconfirmed or interrupted (KeyboardInterrupt):
            # closing the stream makes the agent drop the claim or release it.
            self._releasing = True
            self._shutdown()
            raise
        self._keeper = threading.Thread(target=self._keep, name=f"rumor-{self._kind}-{self._label}-keepalive", daemon=True)
        self._keeper.start()

    def _await_grant(self) -> None:
        t = self._transport.timeout
        limit = None if t is None else self._wait + max(t, 10.0)
        if not self._verdict.wait(limit):
            raise Internal(f"{self._label}: no verdict from the agent within {limit} s")
        if self._failure is not None:
            raise self._failure
        ev = self._granted
        assert ev is not None
        if ev.get("event") != "granted":
            raise self._denied(ev)
        self.session = str(ev.get("session", ""))
        self.ttl = float(ev.get("ttl_ms", 0)) / 1000.0
        self.margin = float(ev.get("margin_ms", 0)) / 1000.0
        self._on_granted(ev)
        # Confirm the lease before handing it out: the deadline counts from a
        # renewal sent after the grant.
        try:
            self._renew_now()
        except RumorError as e:
            raise LeaseLost(f"{self._label} was granted but could not be confirmed: {e}", reason="unconfirmed") from e

    def _denied(self, ev: Dict[str, Any]) -> RumorError:
        raise NotImplementedError

    def _on_granted(self, ev: Dict[str, Any]) -> None:
        pass

    def _on_event(self, ev: Dict[str, Any]) -> None:
        pass

    # -- the stream ----------------------------------------------------------

    def _read(self) -> None:
        stream = self._stream
        assert stream is not None
        why = "the agent ended the session stream"
        try:
            while True:
                ev = stream.readline()
                if ev is None:
                    break
                name = ev.get("event", "")
                if not self._verdict.is_set():
                    if name in ("granted", "denied"):
                        self._granted = ev
                        self._verdict.set()
                        if name == "denied":
                            return
                    else:
                        self._on_event(ev)
                    continue
                if name in _LOSING:
                    self._lose(name)
                elif name == "released":
                    if not self._releasing:
                        self._lose("released")
                else:
                    self._on_event(ev)
        except BaseException as e:  # noqa: BLE001 - the session's end
            why = str(e)
            if not self._verdict.is_set():
                self._failure = e
        finally:
            if not self._verdict.is_set():
                if self._failure is None:
                    self._failure = StreamClosed(f"{self._label}: {why} before its verdict")
                self._verdict.set()
            elif not self._releasing:
                self._lose("closed")

    # -- keepalives ----------------------------------------------------------

    def _renew_request(self) -> None:
        raise NotImplementedError

    def _renew_now(self) -> None:
        sent = time.monotonic()
        self._renew_request()
        with self._mu:
            self._deadline = max(self._deadline, sent + self.ttl - self.margin)

    def _keep(self) -> None:
        interval = max(self.ttl / 3, 0.05)
        next_at = time.monotonic() + interval
        while not self.lost.is_set():
            now = time.monotonic()
            with self._mu:
                deadline = self._deadline
            if now >= deadline:
                self._lose("deadline")
                return
            if self._stop.wait(max(min(next_at, deadline) - now, 0)):
                return
            if time.monotonic() < next_at:
                continue  # woke for the deadline: checked at the top
            try:
                self._renew_now()
                next_at = time.monotonic() + interval
            except (Denied, NotFound) as e:
                self._lose(f"renewal refused: {e}")
                return
            except RumorError:
                next_at = time.monotonic() + min(self.ttl / 10, 1.0)  # the deadline stands

    def _lose(self, reason: str) -> None:
        with self._mu:
            if self.lost.is_set():
                return
            self.reason = reason
            self.lost.set()
        self._stop.set()

    # -- the holder's checks ---------------------------------------------------

    @property
    def remaining(self) -> float:
        """Seconds left before the lease may have run out (its deadline minus
        the agent's lease_margin, on this process's monotonic clock, from the
        last renewal the agent confirmed); 0 once lost."""
        if self.lost.is_set():
            return 0.0
        with self._mu:
            return max(self._deadline - time.monotonic(), 0.0)

    @property
    def valid(self) -> bool:
        """Whether the lease is still held: not lost and before its deadline."""
        try:
            self.check()
        except LeaseLost:
            return False
        return True

    def check(self) -> None:
        """Raise :class:`~rumor.errors.LeaseLost` if the lease is lost or past
        its deadline; call it before each step that needs the lease."""
        if self.lost.is_set():
            raise LeaseLost(f"{self._label}: lease lost ({self.reason})", reason=self.reason)
        if not self._started or self._closed or not self.session:
            raise LeaseLost(f"{self._label}: not held", reason="not held")
        if time.monotonic() >= self._deadline:
            self._lose("deadline")
            raise LeaseLost(f"{self._label}: lease lost (deadline)", reason="deadline")

    # -- the end ---------------------------------------------------------------

    def _release_request(self) -> None:
        pass

    def _shutdown(self) -> None:
        """Stop the threads and close the stream."""
        self._stop.set()
        if self._keeper is not None and self._keeper is not threading.current_thread():
            self._keeper.join(timeout=10)
        if self._stream is not None:
            self._stream.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=10)
        self._closed = True

    def release(self) -> None:
        """Give the lease back and stop the session's threads; safe to call twice."""
        if self._closed or not self._started:
            return
        self._releasing = True
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join(timeout=10)
        if self.session:
            # Also after a loss (a lost lease's release is refused, a suspect
            # or stopping one's is not): the agent releases it anyway once
            # the stream closes, but this makes the release immediate.
            try:
                self._release_request()
            except RumorError:
                pass
        self._shutdown()

    @property
    def threads(self) -> "list[threading.Thread]":
        """The session's background threads (for tests and diagnostics)."""
        return [t for t in (self._reader, self._keeper) if t is not None]


class Lease(_Session):
    """A kernel's lease held by a session: ``with client.lock("gpu-0") as lease:``.

    Entering claims the kernel (waiting up to ``wait`` while another
    claimant holds it, else raising :class:`~rumor.errors.LockNotGranted`),
    confirms the lease, and starts a thread that renews it every third of
    its ttl. :attr:`epoch` is the fencing token: pass it to the resource the
    lease guards and have the resource refuse any smaller epoch than the
    largest it has seen, so a stale holder cannot act. Leaving releases it.

    The lease can end while held (another claim won after a partition
    healed, a forced release, the agent cut off from most of the cluster or
    stopping, renewals not confirmed in time): :attr:`lost` is then set and
    :meth:`check` raises :class:`~rumor.errors.LeaseLost`.
    """

    _kind = "lease"

    def __init__(self, transport: "Transport", name: str, *, ttl_ms: int = 0, wait: float = 0.0, job: str = "") -> None:
        body: Dict[str, Any] = {}
        if ttl_ms:
            body["ttl_ms"] = ttl_ms
        if job:
            body["job"] = job
        if wait > 0:
            body["wait_ms"] = int(wait * 1000)
        self.name = name
        self._ttl_ms = ttl_ms
        self._seg = segment("kernel", name)
        super().__init__(transport, f"/v1/kernel/{self._seg}/session", body, wait, name)
        #: The kernel as granted (a dict, see :class:`~rumor.types.Kernel`).
        self.kernel: Kernel = {}
        #: The kernel as the last "waiting" event showed it (its holder then).
        self.waiting: Optional[Kernel] = None

    @property
    def epoch(self) -> int:
        """The fencing token: the lease's epoch, larger than every earlier holder's."""
        return int(self.kernel.get("epoch", 0))

    @property
    def holder(self) -> str:
        """The node id that holds the lease (this agent's)."""
        return str(self.kernel.get("holder", ""))

    def _denied(self, ev: Dict[str, Any]) -> RumorError:
        k = ev.get("kernel") or {}
        holder, epoch = str(k.get("holder", "")), int(k.get("epoch", 0))
        if holder and k.get("live"):
            return LockNotGranted(f"lock {self.name} is held by {holder} (epoch {epoch})", holder=holder, epoch=epoch)
        return LockNotGranted(f"lock {self.name} was not granted", holder=holder, epoch=epoch)

    def _on_granted(self, ev: Dict[str, Any]) -> None:
        self.kernel = cast(Kernel, ev.get("kernel") or {})

    def _on_event(self, ev: Dict[str, Any]) -> None:
        if ev.get("event") == "waiting":
            self.waiting = cast(Kernel, ev.get("kernel") or {})

    def _renew_request(self) -> None:
        body: Dict[str, Any] = {"session": self.session}
        if self._ttl_ms:
            body["ttl_ms"] = self._ttl_ms
        self._transport.request("POST", f"/v1/kernel/{self._seg}/renew", body, timeout=max(self.ttl / 3, 0.1))

    def _release_request(self) -> None:
        self._transport.request("POST", f"/v1/kernel/{self._seg}/release", {"session": self.session})

    def acquire(self) -> "Lease":
        """Claim the lease (what entering the ``with`` block does); returns self."""
        self._acquire()
        return self

    def __enter__(self) -> "Lease":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "lost" if self.lost.is_set() else ("released" if self._closed else "held")
        return f"<Lease {self.name} epoch={self.epoch} holder={self.holder} {state}>"


class TakenTask(_Session):
    """A task taken from a work queue on a session: ``with client.take("q") as task:``.

    Entering takes the next task (waiting up to ``wait`` for one, else
    raising :class:`~rumor.errors.NoTask`) and starts a thread that touches
    it within each visibility timeout. End it with :meth:`done` or
    :meth:`fail`; leaving the block normally ends it as done if neither was
    called, and leaving it with an exception gives the task back (queued
    again for another attempt, up to its max_attempts); leaving it normally
after the lease was lost raises :class:`~rumor.errors.LeaseLost` (another
worker may run the task again). A cancel requested
    from any node sets :attr:`cancel_requested`: stop, then call
    :meth:`cancelled`. :attr:`lost` and :meth:`check` work as a Lease's.
    """

    _kind = "take"

    def __init__(self, transport: "Transport", queue_name: str, *, visibility_ms: int = 0, wait: float = 0.0) -> None:
        body: Dict[str, Any] = {}
        if visibility_ms:
            body["visibility_ms"] = visibility_ms
        if wait > 0:
            body["wait_ms"] = int(wait * 1000)
        self.queue = queue_name
        self._visibility_ms = visibility_ms
        super().__init__(transport, f"/v1/queue/{segment('queue', queue_name)}/session", body, wait, queue_name)
        #: The task as taken (a dict, see :class:`~rumor.types.Task`).
        self.task: Task = {}
        #: Set when a cancel of the task was requested: stop, then :meth:`cancelled`.
        self.cancel_requested = threading.Event()
        #: The task's final state once this worker ended it ("" before).
        self.state = ""

    @property
    def id(self) -> str:
        """The task's id."""
        return str(self.task.get("id", ""))

    @property
    def payload(self) -> bytes:
        """The task's payload, decoded."""
        p = self.task.get("payload") or ""
        return base64.b64decode(p) if p else b""

    @property
    def epoch(self) -> int:
        """The fencing epoch of this attempt."""
        return int(self.task.get("epoch", 0))

    @property
    def attempt(self) -> int:
        """Which attempt at the task this is (1 for the first)."""
        return int(self.task.get("attempt", 0))

    def _denied(self, ev: Dict[str, Any]) -> RumorError:
        return NoTask(f"no task to take from queue {self.queue}")

    def _on_granted(self, ev: Dict[str, Any]) -> None:
        self.task = cast(Task, ev.get("task") or {})
        self._label = f"{self.queue}/{self.id}"

    def _on_event(self, ev: Dict[str, Any]) -> None:
        if ev.get("event") == "cancel-requested":
            self.cancel_requested.set()

    def _renew_request(self) -> None:
        body: Dict[str, Any] = {"session": self.session}
        if self._visibility_ms:
            body["visibility_ms"] = self._visibility_ms
        self._transport.request("POST", f"/v1/task/{segment('id', self.id)}/touch", body, timeout=max(self.ttl / 3, 0.1))

    def _finish(self, state: str, result: Optional[str]) -> Task:
        if self.state:
            raise Denied(f"task {self.id} is already {self.state}")
        self.check()
        body: Dict[str, Any] = {"state": state, "session": self.session}
        if result:
            body["result"] = result
        self._releasing = True
        try:
            t = self._transport.request("POST", f"/v1/task/{segment('id', self.id)}/state", body)
        except BaseException:
            self._releasing = False
            raise
        self.state = state
        self.task = t or self.task
        self.release()
        return self.task

    def done(self, result: Optional[str] = None) -> Task:
        """End the task as done (``result``: the outcome, or where it is) and end the session."""
        return self._finish("done", result)

    def fail(self, result: Optional[str] = None) -> Task:
        """End the task as failed and end the session."""
        return self._finish("failed", result)

    def cancelled(self, result: Optional[str] = None) -> Task:
        """Acknowledge a requested cancel: end the task as cancelled."""
        return self._finish("cancelled", result)

    def acquire(self) -> "TakenTask":
        """Take the task (what entering the ``with`` block does); returns self."""
        self._acquire()
        return self

    def __enter__(self) -> "TakenTask":
        return self.acquire()

    def __exit__(self, exc_type: Optional[type], exc: Optional[BaseException], tb: Any) -> None:
        try:
            if exc_type is None and not self.state and not self._closed:
                if self.lost.is_set():
                    raise LeaseLost(f"task {self.id}: lease lost ({self.reason}) before it was done", reason=self.reason)
                self.done()
        finally:
            self.release()

    def __repr__(self) -> str:
        return f"<TakenTask {self.queue}/{self.id} attempt={self.attempt} epoch={self.epoch} state={self.state or 'running'}>"
