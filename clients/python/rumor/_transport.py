"""HTTP/1.1 over the agent's Unix socket or its loopback TCP API (standard library only)."""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import socket
import stat
import threading
from typing import IO, Any, Dict, Optional, Tuple
from urllib.parse import quote

from .errors import BadRequest, Internal, Unreachable, error_from_body, error_from_object

# Where the agent listens unless told otherwise (the CLI's default, and RUMOR_SOCKET).
DEFAULT_SOCKET = "./data/rumor.sock"


class _UnixConnection(http.client.HTTPConnection):
    """An HTTPConnection to a Unix socket."""

    def __init__(self, path: str, timeout: Optional[float]) -> None:
        super().__init__("rumor", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(self.timeout)
            s.connect(self._path)
        except BaseException:
            s.close()
            raise
        self.sock = s


def read_token(path: str) -> str:
    """Read the TCP API's bearer token from ``path``, as the agent and CLI do.

    The file must be a regular file that other users cannot read or write
    (mode 0600 or 0400), holding one token on one line.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        raise BadRequest(f"API token file: {e}") from e
    if not stat.S_ISREG(st.st_mode):
        raise BadRequest(f"API token file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise BadRequest(f"API token file {path} has mode {oct(st.st_mode & 0o777)}: other users may read it; chmod 600 {path}")
    with open(path, encoding="utf-8") as f:
        tok = f.read().strip()
    if not tok:
        raise BadRequest(f"API token file {path} is empty")
    if any(c in tok for c in " \t\r\n"):
        raise BadRequest(f"API token file {path} must hold one token on one line")
    return tok


def parse_loopback(api: str) -> Tuple[str, int]:
    """Split ``http://HOST:PORT`` (or ``HOST:PORT``) and check HOST is loopback.

    The TCP API is for this host's users only, so the token never leaves the host.
    """
    hostport = api
    if hostport.startswith("http://"):
        hostport = hostport[len("http://"):]
    hostport = hostport.rstrip("/")
    if "://" in hostport or "/" in hostport:
        raise BadRequest(f"API address {api!r}: want http://HOST:PORT")
    host, sep, port_s = hostport.rpartition(":")
    if not sep or not port_s.isdigit():
        raise BadRequest(f"API address {api!r}: want host:port")
    host = host.strip("[]")
    if host != "localhost":
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is None or not ip.is_loopback:
            raise BadRequest(f"the TCP API must be on 127.0.0.1, ::1 or localhost, got {api!r}")
    return host, int(port_s)


def segment(name: str, value: str) -> str:
    """Escape ``value`` as one URL path segment; it must be non-empty and hold no '/'."""
    if not isinstance(value, str) or value == "":
        raise BadRequest(f"{name} must not be empty")
    if "/" in value:
        raise BadRequest(f"{name} {value!r} must not contain '/'")
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")


class Stream:
    """One open NDJSON response: read lines with :meth:`readline`, end it with :meth:`close`.

    :meth:`close` may be called from another thread: it shuts the socket down,
    which wakes a reader blocked in :meth:`readline` (it then sees the end).
    """

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, sock: socket.socket) -> None:
        self._conn = conn
        self._resp = resp
        self._sock = sock
        self._lock = threading.Lock()
        self._closed = False

    def readline(self) -> Optional[Dict[str, Any]]:
        """Return the next line's JSON object, or None at the end of the stream.

        A line that is an error object (``code`` with ``message`` or ``error``)
        is raised as the matching :class:`RumorError`.
        """
        while True:
            try:
                line = self._resp.readline()
            except (OSError, ValueError, AttributeError, http.client.HTTPException):
                return None  # closed under us, or the connection broke
            if not line:
                return None
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise Internal(f"bad stream line {line[:200]!r}: {e}") from e
            if not isinstance(obj, dict):
                raise Internal(f"bad stream line {line[:200]!r}: not an object")
            if "op" not in obj and "event" not in obj and ("error" in obj or "message" in obj or "code" in obj):
                raise error_from_object(obj)
            return obj

    def close(self) -> None:
        """End the stream (the agent sees the connection close); safe to call twice, from any thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._resp.close()
        except Exception:  # noqa: BLE001 - closing must not fail
            pass
        self._conn.close()


class Transport:
    """Sends requests to one agent; a new connection per request (cheap on a local socket)."""

    def __init__(self, socket_path: Optional[str], host: Optional[str], port: int, token: Optional[str], timeout: Optional[float]) -> None:
        self.socket_path = socket_path
        self.host = host
        self.port = port
        self.token = token
        self.timeout = timeout
        self.where = socket_path if socket_path is not None else f"http://{host}:{port}"

    def _connection(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        if self.socket_path is not None:
            return _UnixConnection(self.socket_path, timeout)
        assert self.host is not None
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _headers(self, body: Optional[bytes]) -> Dict[str, str]:
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if body is not None:
            h["Content-Type"] = "application/json"
        return h

    def _send(
        self, method: str, path: str, body: Any, timeout: Optional[float]
    ) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse, socket.socket]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        conn = self._connection(timeout)
        try:
            conn.connect()
        except OSError as e:
            conn.close()
            raise Unreachable(f"cannot reach the rumor agent at {self.where}: is \"rumor agent\" running? ({e})") from e
        sock = conn.sock
        try:
            try:
                conn.request(method, path, body=data, headers=self._headers(data))
            except (BrokenPipeError, ConnectionResetError):
                # The agent answered and closed before taking the whole body
                # (too large, say): its answer says why.
                pass
            resp = conn.getresponse()
        except socket.timeout as e:
            conn.close()
            raise Internal(f"{method} {path}: the agent did not answer within {timeout} s") from e
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise Internal(f"{method} {path}: {e}") from e
        return conn, resp, sock

    def request(self, method: str, path: str, body: Any = None, timeout: Optional[float] = -1.0) -> Any:
        """Send one request and return its decoded JSON answer (None for 204).

        ``timeout`` is in seconds; -1 takes the transport's, None waits forever.
        """
        t = self.timeout if timeout is not None and timeout < 0 else timeout
        conn, resp, _ = self._send(method, path, body, t)
        try:
            try:
                raw = resp.read()
            except (OSError, http.client.HTTPException) as e:
                raise Internal(f"{method} {path}: read response: {e}") from e
            if resp.status // 100 != 2:
                raise error_from_body(resp.status, resp.reason, raw)
            if resp.status == 204 or not raw.strip():
                return None
            try:
                return json.loads(raw)
            except ValueError as e:
                raise Internal(f"{method} {path}: decode response: {e}") from e
        finally:
            conn.close()

    def download(self, path: str, out: IO[bytes]) -> int:
        """GET ``path`` and copy its body to ``out``; a body shorter than its
        Content-Length is an error, never a short success. Returns its size."""
        conn, resp, sock = self._send("GET", path, None, self.timeout)
        try:
            if resp.status != 200:
                raise error_from_body(resp.status, resp.reason, resp.read())
            sock.settimeout(None)  # a large body takes as long as it takes
            n = 0
            try:
                while True:
                    chunk = resp.read(1 << 16)
                    if not chunk:
                        break
                    out.write(chunk)
                    n += len(chunk)
            except (OSError, http.client.HTTPException) as e:
                raise Internal(f"GET {path}: cut short after {n} bytes: {e}") from e
            want = resp.getheader("Content-Length")
            if want is not None and int(want) != n:
                raise Internal(f"GET {path}: cut short: {n} of {want} bytes")
            return n
        finally:
            conn.close()

    def stream(self, method: str, path: str, body: Any = None) -> Stream:
        """Open an NDJSON stream; a non-200 answer is raised as its error."""
        conn, resp, sock = self._send(method, path, body, self.timeout)
        if resp.status != 200:
            try:
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            conn.close()
            raise error_from_body(resp.status, resp.reason, raw)
        sock.settimeout(None)  # a stream waits for its next line as long as it takes
        return Stream(conn, resp, sock)
