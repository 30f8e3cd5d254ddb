"""Watch streams: an iterator over the agent's NDJSON watch lines."""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Iterator, Optional, Union
from urllib.parse import urlencode

from .errors import RumorError, StreamClosed
from .types import Duration, Event, to_go_duration, to_seconds

if TYPE_CHECKING:  # pragma: no cover
    from ._transport import Stream, Transport

__all__ = ["Watch"]

# What the reader thread hands the consumer: an event, an error that ended
# the watch, or None for the end.
_Item = Union[Event, BaseException, None]


def _reconnectable(e: BaseException) -> bool:
    """Whether a watch that ended with ``e`` may be opened again (as the Go client decides)."""
    if isinstance(e, RumorError):
        return e.code in ("internal", "busy", "timeout", "closed", "unreachable")
    return False


class Watch:
    """A watch of the keys under a prefix: iterate it for :class:`~rumor.types.Event` lines.

    The stream starts with one ``snapshot`` line per live key and a
    ``synced`` line (unless resumed with ``since=``), then every change.
    ``keepalive`` lines only move :attr:`cursor` unless ``keepalives=True``;
    ``resync`` lines are yielded (drop what you built: a fresh snapshot and
    ``synced`` follow). :attr:`cursor` is the cursor of the last line handed
    out: pass it as ``since=`` to a later watch to resume right after it.

    A background thread reads the stream into a bounded buffer. End the watch
    with :meth:`close` (or use it as a context manager); the thread stops
    then. :meth:`next` takes a timeout. If the stream breaks and
    ``reconnect`` > 0, the watch opens it again from the last cursor read,
    up to ``reconnect`` failed attempts in a row, so nothing is missed. An
    error that ends the watch (e.g. :class:`~rumor.errors.Busy`) is raised by
    the next :meth:`next` or iteration step.
    """

    def __init__(
        self,
        transport: "Transport",
        prefix: str = "",
        *,
        since: Optional[str] = None,
        keepalive: Optional[Duration] = None,
        reconnect: int = 0,
        keepalives: bool = False,
        buffer: int = 1024,
    ) -> None:
        self.prefix = prefix
        self.cursor: Optional[str] = since or None
        self._transport = transport
        self._keepalive = keepalive
        self._reconnect = reconnect
        self._keepalives = keepalives
        self._items: "queue.Queue[_Item]" = queue.Queue(maxsize=max(buffer, 1))
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._stream: Optional["Stream"] = None
        self._done = False
        # The first stream is opened here, so a refusal (bad prefix, busy,
        # unreachable) is raised by client.watch itself.
        self._read_cursor = self.cursor
        first = self._open()
        self._thread = threading.Thread(target=self._run, args=(first,), name=f"rumor-watch-{prefix}", daemon=True)
        self._thread.start()

    def _path(self) -> str:
        q = {"prefix": self.prefix}
        if self._read_cursor:
            q["since"] = self._read_cursor
        if self._keepalive is not None:
            q["keepalive"] = "0" if to_seconds(self._keepalive) == 0 else to_go_duration(self._keepalive)
        return "/v1/watch?" + urlencode(q)

    def _open(self) -> "Stream":
        s = self._transport.stream("GET", self._path())
        with self._lock:
            self._stream = s
            closed = self._closed.is_set()
        if closed:
            s.close()
        return s

    def _put(self, item: _Item) -> bool:
        """Queue ``item`` for the consumer; False if the watch was closed meanwhile."""
        while not self._closed.is_set():
            try:
                self._items.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, stream: "Union[Stream, _FailedStream]") -> None:
        failed, wait = 0, 0.1
        while True:
            read = False
            err: Optional[BaseException] = None
            try:
                while True:
                    obj = stream.readline()
                    if obj is None:
                        err = StreamClosed(f"the agent ended the watch of {self.prefix!r}")
                        break
                    read = True
                    ev = Event.from_json(obj)
                    if ev.cursor:
                        self._read_cursor = ev.cursor
                    if not self._put(ev):
                        break
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                err = e
            finally:
                stream.close()
            if self._closed.is_set():
                break
            if read:
                failed, wait = 0, 0.1
            failed += 1
            if err is None or not _reconnectable(err) or failed > self._reconnect:
                self._put(err)
                break
            if self._closed.wait(wait):
                break
            wait = min(2 * wait, 5.0)
            try:
                stream = self._open()
            except BaseException as e:  # noqa: BLE001
                stream = _FailedStream(e)
        self._put(None)

    def next(self, timeout: Optional[float] = None) -> Event:
        """Return the next event, waiting up to ``timeout`` seconds (None: forever).

        Raises :class:`TimeoutError` if none came in time, :class:`StopIteration`
        once the watch is closed, or the error that ended the watch.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._done:
                raise StopIteration
            try:
                left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                item = self._items.get(timeout=left)
            except queue.Empty:
                raise TimeoutError(f"no watch event within {timeout} s") from None
            if item is None:
                self._done = True
                raise StopIteration
            if isinstance(item, BaseException):
                self._done = True
                raise item
            if item.cursor:
                self.cursor = item.cursor
            if item.op == "keepalive" and not self._keepalives:
                continue
            return item

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        return self.next()

    def close(self) -> None:
        """End the watch and wait for its reader thread to stop."""
        with self._lock:
            self._closed.set()
            s = self._stream
        if s is not None:
            s.close()
        self._thread.join(timeout=10)
        self._done = True

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed.is_set()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _FailedStream:
    """A stream whose opening failed: reading it raises that failure."""

    def __init__(self, err: BaseException) -> None:
        self._err = err

    def readline(self) -> None:
        raise self._err

    def close(self) -> None:
        pass
