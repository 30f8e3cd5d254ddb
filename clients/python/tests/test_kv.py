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
    e2 = kv.kv_put(key, b"postgres://db2", if_version=e["version"])
    assert e2["version"] > e["version"] and kv.kv_value(key) == "postgres://db2"
    with pytest.raises(rumor.Denied) as ei:  # a stale version: HTTP 409, code denied
        kv.kv_put(key, "lost update", if_version=e["version"])
    assert ei.value.status == 409 and ei.value.code == "denied"
    assert kv.kv_value(key) == "postgres://db2"
    assert [h["value"] for h in kv.kv_history(key)][:2] == ["postgres://db2", "postgres://db1"]  # newest first


def test_ls_rm_and_unicode(kv):
    app = f"/config/{unique('app')}"
    for name, value in [("a", "1"), ("b", "ünïcødé ✓"), ("c/d", "nested")]:
        kv.kv_put(f"{app}/{name}", value)
    assert [(e["key"], e["value"]) for e in kv.kv_ls(app + "/")] == [
        (f"{app}/a", "1"), (f"{app}/b", "ünïcødé ✓"), (f"{app}/c/d", "nested")]
    e = kv.kv_get(f"{app}/a")
    with pytest.raises(rumor.Denied):
        kv.kv_rm(f"{app}/a", if_version=e["version"] + 1)
    kv.kv_rm(f"{app}/a", if_version=e["version"])
    kv.kv_rm(f"{app}/b")
    with pytest.raises(rumor.NotFound):
        kv.kv_get(f"{app}/a")
    assert kv.kv_value(f"{app}/b", "gone") == "gone"
    assert [e["key"] for e in kv.kv_ls(app + "/")] == [f"{app}/c/d"]


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
        assert ev.op == "put" and ev.key.endswith(app + "feature_x") and ev.node == a1.node
        assert ev.cursor
