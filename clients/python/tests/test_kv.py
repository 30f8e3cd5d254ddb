"""The kv namespace: put/get/ls/rm/history, versions, ttl, and watching kv keys.

These tests skip, saying so, only when the agent answers 404 for /v1/kv (a
binary built before the kv namespace).
"""

import pytest

import rumor
from conftest import poll, unique


def kv_or_skip(client):
    try:
        client.kv_ls("/")
    except rumor.NotFound as e:
        pytest.skip(f"this agent has no kv routes (GET /v1/kv answered 404: {e.message})")
    return client


@pytest.fixture
def kv(client):
    return kv_or_skip(client)


def test_put_get_versions(kv, agent):
    key = f"/config/{unique('app')}/prod/db_url"
    e = kv.kv_put(key, "postgres://db1")
    assert (e["key"], e["value"], e["writer"]) == (key, "postgres://db1", agent.node)
    assert e["version"] >= 1 and e["stamp"]
    got = kv.kv_get(key)
    assert got["value"] == "postgres://db1" and got["version"] == e["version"]
    with pytest.raises(rumor.Denied):
        kv.kv_put(key, "create only", if_version=0)  # 0: the key must not exist
    e2 = kv.kv_put(key, b"postgres://db2", if_version=e["version"])
    assert e2["version"] > e["version"] and kv.kv_value(key) == "postgres://db2"
    with pytest.raises(rumor.Denied) as ei:  # a stale version: HTTP 409, code denied
        kv.kv_put(key, "lost update", if_version=e["version"])
    assert ei.value.status == 409 and ei.value.code == "denied"
    assert kv.kv_value(key) == "postgres://db2"
    hist = kv.kv_history(key)
    assert [h["value"] for h in hist] == ["postgres://db2", "postgres://db1"]  # newest first
    assert hist[0].get("current") and not hist[1].get("current")
    fresh = f"/config/{unique('app')}/new"
    assert kv.kv_put(fresh, "x", if_version=0)["version"] == 1


def test_ls_rm_and_unicode(kv):
    app = f"/config/{unique('app')}"
    for name, value in [("a", "1"), ("b", "ünïcødé ✓"), ("c/d", "nested")]:
        kv.kv_put(f"{app}/{name}", value)
    assert [(e["key"], e["value"]) for e in kv.kv_ls(app + "/")] == [
        (f"{app}/a", "1"), (f"{app}/b", "ünïcødé ✓"), (f"{app}/c/d", "nested")]
    e = kv.kv_get(f"{app}/a")
    with pytest.raises(rumor.Denied):
        kv.kv_rm(f"{app}/a", if_version=e["version"] + 1)
    gone = kv.kv_rm(f"{app}/a", if_version=e["version"])
    assert gone["key"] == f"{app}/a" and gone.get("deleted")
    kv.kv_rm(f"{app}/b")
    assert kv.kv_history(f"{app}/b")[0].get("deleted")
    with pytest.raises(rumor.NotFound):
        kv.kv_get(f"{app}/a")
    assert kv.kv_value(f"{app}/b", "gone") == "gone"
    assert [e["key"] for e in kv.kv_ls(app + "/")] == [f"{app}/c/d"]
    assert f"{app}/c/d" in {e["key"] for e in kv.kv_ls()}
    with pytest.raises(rumor.BadRequest, match="empty segment"):
        kv.kv_put(f"{app}//x", "v")


def test_ttl(kv):
    key = f"/tmp/{unique('session')}"
    e = kv.kv_put(key, "x", ttl=0.5)
    assert e.get("expires")
    poll("the key expires", lambda: kv.kv_value(key) is None, timeout=10)


def test_watch_kv_across_agents(cluster):
    a1, a2, _ = cluster
    kv_or_skip(a1.client)
    app = f"/config/{unique('app')}/"
    with a2.client.watch_kv(app) as w:
        assert w.next(timeout=10).op == "synced"
        a1.client.kv_put(app + "feature_x", "on")
        ev = w.next(timeout=10)
        assert (ev.op, ev.key, ev.node) == ("put", "kv" + app + "feature_x", a1.node) and ev.cursor
        assert ev.value["value"] == "on" and ev.value["writer"] == a1.node
        poll("a2 has the key", lambda: a2.client.kv_value(app + "feature_x") == "on")
        a2.client.kv_rm(app + "feature_x")  # any member may write kv by default
        assert w.next(timeout=10).op == "delete"
