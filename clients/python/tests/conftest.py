"""Fixtures: the real rumor binary, one agent, a TCP-API agent, and a three-agent cluster.

The binary is $RUMOR_BIN, else the repository's bin/rumor (make build), else
built with go into a temporary directory. Agents listen on 127.0.0.1 with
OS-chosen ports, each with its own data dir and Unix socket; everything is
waited for by polling with a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator, List, Optional, TypeVar

import pytest

import rumor

REPO = Path(__file__).resolve().parents[3]
T = TypeVar("T")


def poll(what: str, cond: Callable[[], Optional[T]], timeout: float = 10.0, every: float = 0.02) -> T:
    """Call ``cond`` until it returns something truthy (returned) or ``timeout`` passes (fail).

    An exception from ``cond`` counts as not yet; the last one is reported.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            v = cond()
            if v:
                return v
            last = v
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        if time.monotonic() >= deadline:
            pytest.fail(f"{what}: not reached within {timeout} s (last: {last!r})")
        time.sleep(every)


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def rumor_threads() -> List[threading.Thread]:
    """The client's background threads still alive."""
    return [t for t in threading.enumerate() if t.name.startswith("rumor-") and t.is_alive()]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every test must leave no client thread behind: sessions and watches stop theirs on exit."""
    assert not rumor_threads(), "threads left by an earlier test"
    yield
    assert not rumor_threads(), "a session or watch left its thread running"


@pytest.fixture(scope="session")
def rumor_bin() -> Iterator[str]:
    env = os.environ.get("RUMOR_BIN")
    if env:
        yield env
        return
    built = REPO / "bin" / "rumor"
    if built.exists():
        yield str(built)
        return
    tmp = tempfile.mkdtemp(prefix="rumor-bin-")
    out = os.path.join(tmp, "rumor")
    r = subprocess.run(["go", "build", "-o", out, "./cmd/rumor"], cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"go build ./cmd/rumor failed:\n{r.stderr}")
    yield out
    shutil.rmtree(tmp, ignore_errors=True)


class Agent:
    """One `rumor agent` process with its own data dir and socket."""

    def __init__(
        self, binary: str, join: Optional[List[str]] = None, config: Optional[str] = None, extra: Optional[List[str]] = None,
        data_dir: Optional[str] = None,
    ) -> None:
        # A short path: a Unix socket's path is limited to ~107 bytes.
        self.dir = data_dir or tempfile.mkdtemp(prefix="rumor-py-")
        self.socket = os.path.join(self.dir, "rumor.sock")
        self.log_path = os.path.join(self.dir, "agent.log")
        self.args = [binary, "agent", "--data-dir", self.dir, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics-addr", "127.0.0.1:0",
                     "--settle", "200ms", "--log-level", "info", "--log-format", "json"]
        for j in join or []:
            self.args += ["--join", j]
        if config:
            self.args += ["--config", config]
        self.args += extra or []
        self._log = open(self.log_path, "ab")
        self.client = rumor.Client(self.socket, timeout=10)
        self.start()

    def start(self) -> None:
        """Start the agent process (again, on the same data dir) and wait until it serves its socket."""
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT)
        st = poll("agent serves its socket", self._status, timeout=15)
        self.node: str = st["node"]
        self.addrs: List[str] = [a for a in st.get("addrs", []) if a.startswith("/ip4/127.0.0.1/")]

    def terminate(self) -> None:
        """Stop the agent process gracefully (SIGTERM) and wait for it; its data dir stays."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _status(self) -> Optional[rumor.types.Status]:
        if self.proc.poll() is not None:
            pytest.fail(f"agent exited with {self.proc.returncode}:\n{self.log()}")
        return self.client.status()

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def log_lines(self) -> Iterator[dict]:
        for line in self.log().splitlines():
            try:
                yield json.loads(line)
            except ValueError:
                continue

    def stop(self) -> None:
        """Stop the agent and remove its data dir."""
        self.terminate()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def agent(rumor_bin: str) -> Iterator[Agent]:
    """One agent on its own."""
    a = Agent(rumor_bin)
    yield a
    a.stop()


@pytest.fixture
def client(agent: Agent) -> rumor.Client:
    return agent.client


@pytest.fixture(scope="session")
def cluster(rumor_bin: str) -> Iterator[List[Agent]]:
    """Three agents joined together, each seeing the three alive."""
    first = Agent(rumor_bin)
    agents = [first]
    try:
        agents += [Agent(rumor_bin, join=first.addrs[:1]) for _ in range(2)]
        for a in agents:
            poll(f"{a.node[-8:]} sees three members alive",
                 lambda a=a: sum(1 for m in a.client.members() if m.get("state") == "alive") == 3, timeout=20)
        yield agents
    finally:
        for a in agents:
            a.stop()


@pytest.fixture(scope="session")
def tcp_agent(rumor_bin: str) -> Iterator[tuple]:
    """An agent that also serves its API on loopback TCP with a bearer token: (agent, url, token_file)."""
    cfgdir = tempfile.mkdtemp(prefix="rumor-cfg-")
    token_file = os.path.join(cfgdir, "token")
    token = uuid.uuid4().hex
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    cfg = os.path.join(cfgdir, "rumor.yaml")
    with open(cfg, "w") as f:
        f.write(f"api_listen: 127.0.0.1:0\napi_token_file: {token_file}\n")
    a = Agent(rumor_bin, config=cfg)

    def addr() -> Optional[str]:
        for rec in a.log_lines():
            if rec.get("msg", "").startswith("local API listening on TCP"):
                return rec.get("addr")
        return None

    url = "http://" + poll("the agent logs its TCP API address", addr)
    yield a, url, token_file
    a.stop()
    shutil.rmtree(cfgdir, ignore_errors=True)
