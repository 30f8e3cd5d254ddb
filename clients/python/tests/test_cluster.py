"""Three agents joined on 127.0.0.1: leases are exclusive across agents, watches see other agents' writes."""

import threading

import pytest

import rumor
from conftest import poll, rumor_threads, unique


class FencedResource:
    """A resource that refuses a holder whose epoch is older than the newest it has seen."""

    def __init__(self):
        self.newest = 0
        self.log = []

    def write(self, epoch, what):
        if epoch < self.newest:
            raise PermissionError(f"stale holder: epoch {epoch} < {self.newest}")
        self.newest = epoch
        self.log.append((epoch, what))


def test_lock_is_exclusive_across_agents(cluster):
    a1, a2, a3 = cluster
    k = unique("gpu")
    res = FencedResource()
    got = {}
    with a1.client.lock(k, ttl=5) as lease1:
        res.write(lease1.epoch, "a1")
        poll("a2 sees a1's lease", lambda: a2.client.kernel_get(k).get("holder") == a1.node)
        with pytest.raises(rumor.LockNotGranted) as ei:
            a2.client.lock(k).acquire()
        assert ei.value.holder == a1.node and ei.value.epoch == lease1.epoch
        assert not a2.client.kernel_claim(k, ttl=5)["granted"]

        def a3_waits():
            with a3.client.lock(k, ttl=5, wait=20) as lease3:
                got["epoch"] = lease3.epoch
                got["holder"] = lease3.holder
                res.write(lease3.epoch, "a3")

        t = threading.Thread(target=a3_waits)
        t.start()
        poll("a3 queues for the lease", lambda: a3.client.kernel_get(k).get("waiters"))
        assert not lease1.lost.is_set()
    t.join(20)
    assert got["holder"] == a3.node and got["epoch"] > lease1.epoch
    with pytest.raises(PermissionError, match="stale holder"):
        res.write(lease1.epoch, "a1 again, too late")
    assert res.log == [(lease1.epoch, "a1"), (got["epoch"], "a3")]
    assert not rumor_threads()


def test_forced_release_from_another_agent(cluster):
    a1, a2, _ = cluster
    k = unique("stuck")
    with a1.client.lock(k, ttl=10) as lease:
        poll("a2 sees the lease", lambda: a2.client.kernel_get(k).get("live"))
        a2.client.kernel_release(k, force=True, reason="holder stuck")
        assert lease.lost.wait(10), "a1's session did not report the loss"
        with pytest.raises(rumor.LeaseLost):
            lease.check()
    assert not rumor_threads()


def test_watch_sees_another_agents_writes(cluster):
    a1, a2, a3 = cluster
    svc = unique("api")
    prefix = f"svc/{svc}/"
    with a2.client.watch(prefix) as w:
        assert w.next(timeout=10).op == "synced"
        a1.client.svc_set(svc, "i1", addr="127.0.0.1:9001")
        ev = w.next(timeout=10)
        assert (ev.op, ev.key, ev.node) == ("put", prefix + "i1", a1.node)
        assert ev.value["owner"] == a1.node and ev.value["addr"] == "127.0.0.1:9001"
        a3.client.svc_set(svc, "i3")
        ev = w.next(timeout=10)
        assert (ev.op, ev.key, ev.node) == ("put", prefix + "i3", a3.node)
        cursor = w.cursor
    a1.client.svc_rm(svc, "i1")
    # Resumed on the same agent: only what happened since.
    with a2.client.watch(prefix, since=cursor) as w:
        ev = w.next(timeout=10)
        assert (ev.op, ev.key) == ("delete", prefix + "i1")
    # A cursor is one agent's: another agent says resync and starts over.
    with a3.client.watch(prefix, since=cursor) as w:
        ev = w.next(timeout=10)
        assert (ev.op, ev.reason) == ("resync", "foreign")
        assert [w.next(timeout=10).op for _ in range(2)] == ["snapshot", "synced"]


def test_ownership_is_enforced(cluster):
    a1, a2, _ = cluster
    svc = unique("owned")
    a1.client.svc_set(svc, "i1")
    poll("a2 sees the instance", lambda: a2.client.svc_get(svc, "i1"))
    with pytest.raises(rumor.Denied) as ei:
        a2.client.svc_rm(svc, "i1")
    assert ei.value.status == 409
    tid = unique("task")
    a1.client.task_assign(tid)
    poll("a2 sees the task", lambda: a2.client.task_get(tid))
    with pytest.raises(rumor.Denied):
        a2.client.task_state(tid, "done")


def test_a_task_taken_on_one_agent_is_done_for_all(cluster):
    a1, a2, a3 = cluster
    q = unique("render")
    tid = unique("frame")
    a1.client.task_submit(q, tid, b"frame 1")
    poll("a3 sees the task", lambda: a3.client.task_get(tid))
    with a3.client.take(q, wait=5) as task:
        assert task.payload == b"frame 1"
        poll("a2 sees it running on a3", lambda: a2.client.task_get(tid).get("owner") == a3.node)
    poll("a1 sees it done", lambda: a1.client.task_get(tid)["state"] == "done")
