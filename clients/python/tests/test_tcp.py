"""The loopback TCP API with a bearer token."""

import pytest

import rumor
from conftest import rumor_threads, unique


def test_tcp_api_with_token(tcp_agent):
    a, url, token_file = tcp_agent
    c = rumor.Client(api=url, token_file=token_file)
    assert c.status()["node"] == a.node
    svc = unique("tcp")
    c.svc_set(svc, "i1")
    with c.watch(f"svc/{svc}/") as w:  # streams work over TCP too
        assert w.next(timeout=10).op == "snapshot"
    with c.lock(unique("k"), ttl=3) as lease:
        assert lease.holder == a.node
    assert not rumor_threads()


def test_tcp_api_environment(tcp_agent, monkeypatch):
    a, url, token_file = tcp_agent
    monkeypatch.setenv("RUMOR_API", url)
    monkeypatch.setenv("RUMOR_TOKEN_FILE", token_file)
    assert rumor.Client().status()["node"] == a.node


def test_tcp_api_wrong_token(tcp_agent):
    _, url, _ = tcp_agent
    c = rumor.Client(api=url, token="not-the-token")
    with pytest.raises(rumor.Unauthorized, match="wrong API token") as ei:
        c.status()
    assert ei.value.status == 401
    with pytest.raises(rumor.Unauthorized):
        c.watch("svc/")
