"""Error decoding and client-side checks: no agent needed."""

import os
import stat
import tempfile

import pytest

import rumor
from rumor.errors import error_from_body, error_from_object


@pytest.mark.parametrize(
    "status,body,cls,code,msg",
    [
        (404, b'{"code":"not_found","error":"no service web/x"}\n', rumor.NotFound, "not_found", "no service web/x"),
        (409, b'{"code":"denied","message":"version 3, not 2","details":{"version":3}}', rumor.Denied, "denied", "version 3, not 2"),
        (400, b'{"code":"bad_request","message":"bad body"}', rumor.BadRequest, "bad_request", "bad body"),
        (429, b'{"code":"busy","error":"too many watch streams"}', rumor.Busy, "busy", "too many watch streams"),
        (503, b'{"code":"timeout","error":"slow"}', rumor.Timeout, "timeout", "slow"),
        (401, b'{"code":"unauthorized","error":"wrong API token"}', rumor.Unauthorized, "unauthorized", "wrong API token"),
        (500, b'{"code":"internal","error":"disk full"}', rumor.Internal, "internal", "disk full"),
        (413, b'{"code":"too_large","message":"over 1048576 bytes","details":{"limit":1048576}}', rumor.TooLarge, "too_large",
         "over 1048576 bytes"),
        (405, b'{"code":"method_not_allowed","message":"POST /v1/status"}', rumor.MethodNotAllowed, "method_not_allowed",
         "POST /v1/status"),
    ],
)
def test_error_bodies_map_to_exceptions(status, body, cls, code, msg):
    e = error_from_body(status, "X", body)
    assert type(e) is cls
    assert (e.code, e.message, e.status, str(e)) == (code, msg, status, msg)


def test_error_details_and_both_fields():
    e = error_from_body(409, "Conflict", b'{"code":"denied","message":"new","error":"old","details":{"version":3}}')
    assert e.message == "new" and e.details == {"version": 3}
    assert isinstance(e, rumor.Conflict)  # Conflict is Denied's HTTP name


def test_error_without_json_body_maps_by_status():
    e = error_from_body(404, "Not Found", b"404 page not found\n")
    assert isinstance(e, rumor.NotFound) and "404 page not found" in e.message
    e = error_from_body(502, "Bad Gateway", b"")
    assert isinstance(e, rumor.Internal) and "Bad Gateway" in e.message


def test_unknown_code_falls_back_on_status():
    e = error_from_object({"code": "something_new", "message": "m"}, 409)
    assert isinstance(e, rumor.Denied) and e.code == "something_new"


def test_lock_not_granted_is_denied():
    e = rumor.LockNotGranted("held", holder="n1", epoch=4)
    assert isinstance(e, rumor.Denied) and (e.holder, e.epoch) == ("n1", 4)


def test_unreachable_socket():
    c = rumor.Client(os.path.join(tempfile.gettempdir(), "rumor-py-none.sock"), timeout=2)
    with pytest.raises(rumor.Unreachable, match="is \"rumor agent\" running"):
        c.status()
    assert not c.ping()


def test_client_side_argument_checks():
    c = rumor.Client("/nonexistent.sock")
    with pytest.raises(rumor.BadRequest, match="must not be empty"):
        c.svc_get("web", "")
    with pytest.raises(rumor.BadRequest, match="must not contain '/'"):
        c.bl_add("fraud", "a/b")
    with pytest.raises(rumor.BadRequest, match="bad task state"):
        c.task_state("t", "finished")
    with pytest.raises(rumor.BadRequest, match="kv key"):
        c.kv_get("config/no-leading-slash")
    with pytest.raises(ValueError):
        c.svc_set("web", "w1", ttl=-1)


def test_tcp_client_checks(tmp_path):
    with pytest.raises(rumor.BadRequest, match="loopback|127.0.0.1"):
        rumor.Client(api="http://10.1.2.3:7070", token="t")
    with pytest.raises(rumor.BadRequest, match="needs a token"):
        rumor.Client(api="http://127.0.0.1:7070")
    with pytest.raises(rumor.BadRequest, match="not both"):
        rumor.Client("/x.sock", api="127.0.0.1:1", token="t")
    tf = tmp_path / "token"
    tf.write_text("secret\n")
    tf.chmod(0o644)
    with pytest.raises(rumor.BadRequest, match="other users may read it"):
        rumor.Client(api="127.0.0.1:7070", token_file=str(tf))
    tf.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert rumor.Client(api="localhost:7070", token_file=str(tf)).where == "http://localhost:7070"


def test_environment_picks_the_socket(monkeypatch):
    monkeypatch.delenv("RUMOR_API", raising=False)
    monkeypatch.setenv("RUMOR_SOCKET", "/run/x/rumor.sock")
    assert rumor.Client().where == "/run/x/rumor.sock"
    monkeypatch.delenv("RUMOR_SOCKET")
    assert rumor.Client().where == "./data/rumor.sock"


def test_too_large_and_method_not_allowed_are_bad_requests():
    assert issubclass(rumor.TooLarge, rumor.BadRequest) and issubclass(rumor.MethodNotAllowed, rumor.BadRequest)
    assert isinstance(error_from_body(413, "Request Entity Too Large", b"too big"), rumor.TooLarge)


def test_event_lines_decode():
    line = {"key": "kv/config/a", "op": "conflict", "node": "n1", "stamp": "1.0", "value": {"value": "won", "version": 3},
            "lost": {"key": "/config/a", "value": "lost", "version": 3, "writer": "n2"}, "cursor": "g-7"}
    ev = rumor.Event.from_json(line)
    assert (ev.op, ev.key, ev.cursor, ev.value["value"], ev.lost["value"]) == ("conflict", "kv/config/a", "g-7", "won", "lost")
    assert ev["node"] == "n1" and ev.get("reason", "") == "" and ev.raw is line
    ka = rumor.Event.from_json({"op": "keepalive", "cursor": "g-8"})
    assert (ka.op, ka.key, ka.value, ka.lost) == ("keepalive", "", None, None)
