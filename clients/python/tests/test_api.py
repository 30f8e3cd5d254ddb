"""Every namespace's routes against one real agent."""

import base64
import datetime
import os
import subprocess
import tempfile
import threading
import time

import pytest

import rumor
from conftest import Agent, poll, rumor_threads, unique


def test_status_and_members(agent, client):
    st = client.status()
    assert st["node"] == agent.node and st["addrs"]
    ms = client.members()
    assert [m["node"] for m in ms if m.get("self")] == [agent.node]


def test_services(client, agent):
    svc = unique("web")
    s = client.svc_set(svc, "w1", addr="10.0.0.1:8080", tags={"zone": "a"}, ttl=60)
    assert (s["service"], s["instance"], s["status"], s["addr"], s["tags"], s["owner"]) == (
        svc, "w1", "up", "10.0.0.1:8080", {"zone": "a"}, agent.node)
    assert s["up"] and s["expires"]
    client.svc_set(svc, "w2", status="down")
    assert client.svc_get(svc, "w1")["addr"] == "10.0.0.1:8080"
    assert sorted(x["instance"] for x in client.svc_ls(svc)) == ["w1", "w2"]
    assert [x["instance"] for x in client.svc_ls(svc, up=True)] == ["w1"]
    assert svc in {x["service"] for x in client.svc_ls()}
    client.svc_rm(svc, "w2")
    with pytest.raises(rumor.NotFound) as ei:
        client.svc_get(svc, "w2")
    assert ei.value.status == 404 and ei.value.code == "not_found"


def test_blacklists(client):
    bl = unique("fraud")
    e = client.bl_add(bl, "user42", reason="chargeback", ttl=datetime.timedelta(hours=1))
    assert (e["list"], e["id"], e["reason"]) == (bl, "user42", "chargeback") and e["expires"]
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)
    e2 = client.bl_add(bl, "user43", expires=expiry)
    got = datetime.datetime.fromisoformat(e2["expires"].replace("Z", "+00:00"))
    assert abs((got - expiry).total_seconds()) < 5
    client.bl_add(bl, "user44")  # for good
    assert client.bl_has(bl, "user42") and client.bl_get(bl, "user42")["reason"] == "chargeback"
    assert client.bl_check(bl, "nobody") is None and not client.bl_has(bl, "nobody")
    with pytest.raises(rumor.NotFound):
        client.bl_get(bl, "nobody")
    assert sorted(x["id"] for x in client.bl_ls(bl)) == ["user42", "user43", "user44"]
    assert {"list": bl, "entries": 3} in client.bl_lists()
    client.bl_rm(bl, "user42")
    assert not client.bl_has(bl, "user42")
    with pytest.raises(rumor.BadRequest, match="in the past"):
        client.bl_add(bl, "x", expires=datetime.datetime(2000, 1, 1))


def test_short_ttl_expires(client):
    bl = unique("tmp")
    client.bl_add(bl, "u", ttl=0.3)
    poll("the entry expires", lambda: not client.bl_has(bl, "u"), timeout=5)


def test_assigned_task_cancel_and_wait(client, agent):
    tid = unique("report")
    t = client.task_assign(tid)
    assert t["owner"] == agent.node
    assert client.task_get(tid)["state"] == "queued"
    assert client.task_state(tid, "running")["state"] == "running"  # the owner starts it
    assert tid in {x["id"] for x in client.task_ls(owner=agent.node)}
    assert client.task_cancel(tid)["state"] == "cancel-requested"
    with pytest.raises(rumor.Timeout, match="has not acknowledged the cancel"):
        client.task_cancel(tid, wait=0.3)
    # The worker (this node, the owner) confirms from another thread while we wait.
    threading.Thread(target=client.task_state, args=(tid, "cancelled"), kwargs={"result": "stopped"}).start()
    assert client.task_cancel(tid, wait=10)["state"] == "cancelled"
    assert client.task_get(tid)["result"] == "stopped"
    with pytest.raises(rumor.NotFound):
        client.task_get(unique("none"))


def test_one_shot_queue_worker(client):
    q = unique("render")
    a, b = unique("a"), unique("b")
    client.task_submit(q, b, "text payload", max_attempts=1)
    client.task_submit(q, a, b"\x00\x01payload", priority=5)
    assert {t["id"] for t in client.task_ls(queue=q, state="queued")} == {a, b}
    t = client.task_take(q, visibility=60)
    assert base64.b64decode(t["payload"]) == b"\x00\x01payload"
    assert t["id"] == a and t["state"] == "running" and t["epoch"] >= 1  # the higher priority first
    assert client.task_touch(a, visibility=120)["id"] == a
    assert client.task_done(a, "s3://bucket/a")["state"] == "done"
    t = client.task_take(q)
    assert t["id"] == b
    assert client.task_fail(b, "bad input")["state"] == "failed"
    assert client.task_take(q) is None
    assert client.task_take(q, wait=0.2) is None
    with pytest.raises(rumor.Denied):
        client.task_touch(a)  # ended: nothing to touch


def test_kernel_one_shot(client, agent):
    k = unique("kernel")
    r = client.kernel_claim(k, ttl=30, job="notebook-1")
    assert r["granted"] and r["kernel"]["holder"] == agent.node and r["kernel"]["job"] == "notebook-1"
    assert client.kernel_renew(k, ttl=30)["live"]
    assert k in {x["id"] for x in client.kernel_ls()}
    assert client.kernel_release(k)["released"]
    assert not client.kernel_get(k)["live"]


def test_watch_snapshot_changes_and_resume(client):
    svc = unique("watched")
    client.svc_set(svc, "a")
    prefix = f"svc/{svc}/"
    with client.watch(prefix) as w:
        ev = w.next(timeout=10)
        assert (ev.op, ev.key, ev.cursor) == ("snapshot", prefix + "a", "")
        assert ev.value["instance"] == "a" and ev["key"] == ev.key
        synced = w.next(timeout=10)
        assert synced.op == "synced" and synced.cursor and w.cursor == synced.cursor
        client.svc_set(svc, "b")
        ev = w.next(timeout=10)
        assert (ev.op, ev.key) == ("put", prefix + "b") and ev.cursor and w.cursor == ev.cursor
        with pytest.raises(TimeoutError):
            w.next(timeout=0.2)
        resume = w.cursor
    assert w.closed
    with pytest.raises(StopIteration):
        w.next(timeout=1)
    client.svc_rm(svc, "a")
    client.svc_set(svc, "c")
    with client.watch(prefix, since=resume) as w2:  # right after "b": the changes made meanwhile
        got = [(e.op, e.key) for e in (w2.next(timeout=10), w2.next(timeout=10))]
    assert got == [("delete", prefix + "a"), ("put", prefix + "c")]
    assert not rumor_threads()


def test_watch_resync_and_keepalives(client):
    with client.watch(f"svc/{unique('quiet')}/", since="0123456789abcdef-1", keepalive=0.1, keepalives=True) as w:
        ev = w.next(timeout=10)
        assert (ev.op, ev.reason) == ("resync", "foreign")
        ops = []
        while "keepalive" not in ops:
            ops.append(w.next(timeout=10).op)
        assert "synced" in ops and ops.index("synced") < ops.index("keepalive")
    with client.watch(f"svc/{unique('quiet')}/", keepalive=0.1) as w:  # keepalives move the cursor, unseen
        while w.next(timeout=10).op != "synced":
            pass
        synced = w.cursor
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):  # keepalives every 0.1 s do not stretch the timeout
            w.next(timeout=0.3)
        assert time.monotonic() - t0 < 2
        client.bl_add(unique("elsewhere"), "x")  # a change outside the prefix

        def moved():
            try:
                w.next(timeout=0.2)
                pytest.fail("a keepalive line was yielded")
            except TimeoutError:
                pass
            return w.cursor != synced

        poll("a keepalive moves the cursor past the other change", moved)


def test_watch_refused_by_the_agent(client):
    with pytest.raises(rumor.BadRequest, match="keepalive"):
        client.watch("svc/", keepalive=0.01)
    assert not rumor_threads()


def test_watch_iterates(client):
    bl = unique("iter")
    for i in range(3):
        client.bl_add(bl, f"id{i}")
    with client.watch(f"bl/{bl}/") as w:
        keys = []
        for ev in w:
            if ev.op == "synced":
                break
            keys.append(ev.key)
    assert keys == [f"bl/{bl}/id{i}" for i in range(3)]


def test_watch_limit_is_busy(rumor_bin, tmp_path):
    cfg = tmp_path / "rumor.yaml"
    cfg.write_text("max_watchers: 1\n")
    a = Agent(rumor_bin, config=str(cfg))
    try:
        with a.client.watch("svc/") as w:
            assert w.next(timeout=10).op == "synced"
            with pytest.raises(rumor.Busy, match="max_watchers") as ei:
                a.client.watch("bl/")
            assert ei.value.status == 429
        # The slot is free again once the first watch is closed.
        poll("a watch is accepted again", lambda: a.client.watch("bl/").close() or True)
    finally:
        a.stop()


def test_watch_reconnects_across_an_agent_restart(rumor_bin):
    a = Agent(rumor_bin)
    try:
        a.client.bl_add("l", "before")
        with a.client.watch("bl/l/", reconnect=30) as w:
            assert [w.next(timeout=10).op for _ in range(2)] == ["snapshot", "synced"]
            a.terminate()
            a.start()  # same data dir and socket; a new cursor generation
            a.client.bl_add("l", "after")
            ops = []
            while not {("snapshot", "bl/l/after"), ("put", "bl/l/after")} & set(ops) or ("synced", "") not in ops:
                ev = w.next(timeout=20)
                ops.append((ev.op, ev.key))
            # The old cursor is foreign to the restarted agent: resync, then a
            # fresh snapshot (with "after" in it, or as a change after synced).
            assert ops[0] == ("resync", "") and ("snapshot", "bl/l/before") in ops
        with pytest.raises(rumor.StreamClosed):
            with a.client.watch("bl/l/") as w2:
                w2.next(timeout=10)
                a.terminate()
                while True:
                    w2.next(timeout=20)  # no reconnect: the end is raised
    finally:
        a.stop()


def test_agent_refusals_are_typed(client):
    with pytest.raises(rumor.BadRequest, match="max_request_bytes"):  # TooLarge (413) on agents that say so
        client.svc_set(unique("big"), "i", addr="x" * (2 << 20))
    tid = unique("t")
    client.task_assign(tid)
    with pytest.raises(rumor.BadRequest, match="finished"):  # past the client's own check
        client._req("POST", f"/v1/task/{tid}/state", {"state": "finished"})
    with pytest.raises(rumor.BadRequest, match="unknown field"):
        client._req("PUT", f"/v1/svc/{tid}/i", {"status": "up", "colour": "blue"})


def test_records_and_explain(client, agent):
    bl = unique("explained")
    client.bl_add(bl, "u1", reason="r")
    recs = client.records(f"bl/{bl}/")
    assert [(r["key"], r["op"], r["node"]) for r in recs] == [(f"bl/{bl}/u1", "put", agent.node)]
    ex = client.explain(f"bl/{bl}/u1")
    assert ex["key"] == f"bl/{bl}/u1" and ex["rule"] and ex["verdict"] and ex["records"]


def test_backup_restores(client, rumor_bin):
    svc = unique("backed-up")
    client.svc_set(svc, "i1", addr="127.0.0.1:1")
    poll("the write is flushed", lambda: client.status()["unflushed"] == 0)
    with tempfile.NamedTemporaryFile(prefix="rumor-py-backup-") as f:
        n = client.backup(f)
        f.flush()
        assert n > 0 and os.path.getsize(f.name) == n
        restored = tempfile.mkdtemp(prefix="rumor-py-")
        r = subprocess.run([rumor_bin, "restore", "--data-dir", restored, f.name], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    b = Agent(rumor_bin, data_dir=restored)
    try:
        assert b.client.svc_get(svc, "i1")["addr"] == "127.0.0.1:1"
    finally:
        b.stop()
