"""Every route of the agent's OpenAPI document has its call in the client."""

import pytest

import rumor

# (method, path) -> the Client methods that use it.
ROUTES = {
    ("get", "/v1/status"): ["status"],
    ("get", "/v1/members"): ["members"],
    ("get", "/v1/svc"): ["svc_ls"],
    ("put", "/v1/svc/{service}/{instance}"): ["svc_set"],
    ("get", "/v1/svc/{service}/{instance}"): ["svc_get"],
    ("delete", "/v1/svc/{service}/{instance}"): ["svc_rm"],
    ("get", "/v1/bl"): ["bl_lists"],
    ("get", "/v1/bl/{list}"): ["bl_ls"],
    ("put", "/v1/bl/{list}/{id}"): ["bl_add"],
    ("get", "/v1/bl/{list}/{id}"): ["bl_get", "bl_check", "bl_has"],
    ("delete", "/v1/bl/{list}/{id}"): ["bl_rm"],
    ("get", "/v1/kv"): ["kv_ls"],
    ("put", "/v1/kv/{key}"): ["kv_put"],
    ("get", "/v1/kv/{key}"): ["kv_get", "kv_value"],
    ("delete", "/v1/kv/{key}"): ["kv_rm"],
    ("get", "/v1/kv-history/{key}"): ["kv_history"],
    ("get", "/v1/records"): ["records"],
    ("get", "/v1/explain"): ["explain"],
    ("get", "/v1/task"): ["task_ls"],
    ("get", "/v1/task/{id}"): ["task_get"],
    ("post", "/v1/task/{id}/assign"): ["task_assign"],
    ("post", "/v1/task/{id}/state"): ["task_state", "task_done", "task_fail"],
    ("post", "/v1/task/{id}/cancel"): ["task_cancel"],
    ("post", "/v1/task/{id}/touch"): ["task_touch"],
    ("post", "/v1/queue/{queue}/submit"): ["task_submit"],
    ("post", "/v1/queue/{queue}/take"): ["task_take"],
    ("post", "/v1/queue/{queue}/session"): ["take"],
    ("get", "/v1/kernel"): ["kernel_ls"],
    ("get", "/v1/kernel/{id}"): ["kernel_get"],
    ("post", "/v1/kernel/{id}/claim"): ["kernel_claim"],
    ("post", "/v1/kernel/{id}/renew"): ["kernel_renew"],
    ("post", "/v1/kernel/{id}/release"): ["kernel_release"],
    ("post", "/v1/kernel/{id}/session"): ["lock"],
    ("get", "/v1/watch"): ["watch", "watch_kv"],
    ("get", "/v1/backup"): ["backup"],
    ("get", "/v1/openapi.json"): ["openapi"],
}


def test_every_route_has_a_call(client):
    try:
        doc = client.openapi()
    except rumor.NotFound:
        pytest.skip("this agent does not serve /v1/openapi.json")
    served = {(m, p) for p, ops in doc["paths"].items() for m in ops if m in ("get", "put", "post", "delete", "patch")}
    assert served, "no routes in the document"
    missing = sorted(served - set(ROUTES))
    assert not missing, f"routes the Python client has no call for: {missing}"
    for methods in ROUTES.values():
        for name in methods:
            assert callable(getattr(rumor.Client, name, None)), f"no Client.{name}"
