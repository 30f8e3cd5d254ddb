"""Kernel leases and task take sessions: context managers, keepalives, loss, and no leaked threads."""

import os
import signal
import threading

import pytest

import rumor
from conftest import Agent, poll, unique


def test_lock_holds_renews_and_releases(client, agent):
    k = unique("gpu")
    with client.lock(k, ttl=0.9, job="train") as lease:
        assert lease.epoch >= 1 and lease.holder == agent.node and lease.session
        assert lease.kernel["job"] == "train" and lease.valid
        assert {t.name for t in lease.threads} == {f"rumor-lease-{k}", f"rumor-lease-{k}-keepalive"}
        kn = client.kernel_get(k)
        assert kn["live"] and kn["holder"] == agent.node and kn["session"] == lease.session
        # Held past several ttls: the keepalive thread renews it.
        expires0 = kn["expires"]
        poll("the lease is renewed", lambda: client.kernel_get(k)["expires"] != expires0, timeout=5)
        assert not lease.lost.wait(1.5) and lease.valid  # more than a whole ttl later
        lease.check()
        assert 0 < lease.remaining <= 0.9
        with pytest.raises(rumor.LockNotGranted) as ei:
            with client.lock(k):
                pass
        assert (ei.value.holder, ei.value.epoch) == (agent.node, lease.epoch)
        first = lease.epoch
    assert not client.kernel_get(k)["live"]  # released on exit, at once
    with pytest.raises(rumor.LeaseLost, match="not held"):
        lease.check()
    with client.lock(k) as again:
        assert again.epoch > first  # the fencing token grows


def test_lock_waits_for_the_holder(client):
    k = unique("jupyter")
    holder = client.lock(k, ttl=5).acquire()
    got = {}

    def wait_for_it():
        with client.lock(k, ttl=5, wait=20) as lease:
            got["epoch"] = lease.epoch
            got["waiting"] = lease.waiting

    t = threading.Thread(target=wait_for_it)
    t.start()
    poll("the second claim queues", lambda: client.kernel_get(k).get("waiters"))
    holder.release()
    t.join(20)
    assert got["epoch"] > holder.epoch
    assert got["waiting"]["holder"] == holder.holder


def test_forced_release_is_signalled_as_loss(client):
    k = unique("stuck")
    with client.lock(k, ttl=10) as lease:
        client.kernel_release(k, force=True, reason="operator")
        assert lease.lost.wait(10), "the loss was not signalled"
        assert lease.reason == "lost" and not lease.valid and lease.remaining == 0
        with pytest.raises(rumor.LeaseLost) as ei:
            lease.check()
        assert ei.value.reason == "lost"
    # The operator's release took the next epoch: a stale holder's epoch is smaller.
    assert client.kernel_get(k)["epoch"] > lease.epoch


def test_unconfirmed_renewals_end_the_lease_on_the_client(rumor_bin):
    """A paused agent cannot renew: the client stops trusting the lease at its deadline."""
    a = Agent(rumor_bin)
    try:
        lease = a.client.lock("paused", ttl=1.5).acquire()
        try:
            os.kill(a.proc.pid, signal.SIGSTOP)
            try:
                assert lease.lost.wait(5), "the deadline passed unnoticed"
                assert lease.reason == "deadline"
                with pytest.raises(rumor.LeaseLost, match="deadline"):
                    lease.check()
            finally:
                os.kill(a.proc.pid, signal.SIGCONT)
        finally:
            lease.release()
    finally:
        a.stop()


def test_take_session_done_on_clean_exit(client, agent):
    q = unique("jobs")
    tid = unique("t")
    client.task_submit(q, tid, b"work", max_attempts=2)
    with client.take(q, visibility=0.9) as task:
        assert (task.id, task.payload, task.attempt, task.queue) == (tid, b"work", 1, q)
        assert task.epoch >= 1 and task.task["owner"] == agent.node
        assert not task.lost.wait(1.5)  # kept alive past its visibility timeout
        assert client.task_get(tid)["state"] == "running"
    assert task.state == "done" and client.task_get(tid)["state"] == "done"
    with pytest.raises(rumor.NoTask):
        with client.take(q):
            pass


def test_take_session_gives_the_task_back_on_error(client):
    q = unique("jobs")
    tid = unique("t")
    client.task_submit(q, tid, "x")
    with pytest.raises(RuntimeError):
        with client.take(q) as task:
            raise RuntimeError("worker crashed")
    assert task.state == ""
    poll("the task is queued again", lambda: client.task_get(tid)["state"] == "queued")
    with client.take(q, wait=5) as again:
        assert again.id == tid and again.attempt == 2 and again.epoch > task.epoch
        again.fail("gave up")
    assert client.task_get(tid)["state"] == "failed"


def test_take_session_cancel(client):
    q = unique("jobs")
    tid = unique("long")
    client.task_submit(q, tid, "x")
    with client.take(q) as task:
        def worker():
            assert task.cancel_requested.wait(10)
            task.cancelled("stopped early")

        t = threading.Thread(target=worker)
        t.start()
        assert client.task_cancel(task.id, wait=10)["state"] == "cancelled"
        t.join(10)
    assert task.state == "cancelled" and client.task_get(tid)["result"] == "stopped early"


def test_take_waits_for_a_task(client):
    q = unique("jobs")
    tid = unique("late")
    submit = threading.Timer(0.3, client.task_submit, args=(q, tid, "x"))
    submit.start()
    with client.take(q, wait=10) as task:
        assert task.id == tid
    submit.join()


def test_refused_lease_leaves_nothing_behind(client):
    k = unique("short")
    with pytest.raises(rumor.BadRequest, match="minimum lease TTL"):
        with client.lock(k, ttl=0.1):
            pass
    lease = client.lock(k, ttl=0.1)
    with pytest.raises(rumor.BadRequest):
        lease.acquire()
    lease.release()  # harmless after a failed acquire: no session, nothing to release
    with pytest.raises(rumor.LeaseLost, match="not held"):
        lease.check()
    with pytest.raises(RuntimeError, match="acquired once"):
        lease.acquire()


def test_agent_stopping_ends_leases_and_takes(rumor_bin):
    a = Agent(rumor_bin)
    try:
        a.client.task_submit("q", "t1", "x")
        with pytest.raises(rumor.LeaseLost, match="before it was done"):
            with a.client.lock("k", ttl=5) as lease, a.client.take("q", visibility=5) as task:
                stopper = threading.Thread(target=a.terminate)
                stopper.start()
                assert lease.lost.wait(10) and task.lost.wait(10)
                assert (lease.reason, task.reason) == ("stopping", "stopping")
                stopper.join()
                # Leaving the take's block normally with its lease lost raises:
                # the task was not recorded done, another worker may run it.
        assert not lease.valid
    finally:
        a.stop()
